// The web chat's dev server: serves the page and the SDK's browser bundle, and plays the
// tenant's backend for the demo — `POST /api/token {"user":"alice"}` mints a user token
// with the app's secret (a real backend would check who is asking first).
//
//   TERN_URL=http://127.0.0.1:8080 TERN_APP_KEY=ak_… TERN_APP_SECRET=sk_… node examples/web-chat/server.mjs
//   then open http://127.0.0.1:5173/
// (run `npm run build` first: the page loads dist/browser/tern.min.js)

import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(dirname(fileURLToPath(import.meta.url)))); // sdks/typescript
const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".map": "application/json" };
const files = {
  "/": "examples/web-chat/index.html",
  "/app.js": "examples/web-chat/app.js",
  "/style.css": "examples/web-chat/style.css",
  "/tern.min.js": "dist/browser/tern.min.js",
};

/** Starts the dev server; `port` 0 picks a free one. Resolves to its URL and a `close`. */
export async function startWebChat({ ternUrl, appKey, appSecret, port = 0, host = "127.0.0.1" }) {
  const { mintUserToken } = await import(join(root, "dist/esm/server.js"));
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", "http://x");
      if (req.method === "POST" && url.pathname === "/api/token") {
        let body = "";
        for await (const chunk of req) {
          body += chunk;
          if (body.length > 1024) throw new Error("body too large");
        }
        const user = String(JSON.parse(body || "{}").user ?? "");
        if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(user)) {
          res.writeHead(400, { "content-type": "application/json" }).end('{"error":"bad user id"}');
          return;
        }
        const token = mintUserToken(appKey, appSecret, user, { ttlSeconds: 3600 });
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token, url: ternUrl }));
        return;
      }
      const file = files[url.pathname];
      if (!file || req.method !== "GET") {
        res.writeHead(404).end("not found");
        return;
      }
      const data = await readFile(join(root, normalize(file)));
      res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" }).end(data);
    } catch (e) {
      res.writeHead(500).end(String(e));
    }
  });
  await new Promise((r) => server.listen(port, host, r));
  const addr = server.address();
  return {
    url: `http://${host}:${addr.port}/`,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { TERN_URL, TERN_APP_KEY, TERN_APP_SECRET, PORT } = process.env;
  if (!TERN_URL || !TERN_APP_KEY || !TERN_APP_SECRET) {
    console.error("set TERN_URL, TERN_APP_KEY and TERN_APP_SECRET");
    process.exit(2);
  }
  const s = await startWebChat({ ternUrl: TERN_URL, appKey: TERN_APP_KEY, appSecret: TERN_APP_SECRET, port: Number(PORT ?? 5173) });
  console.log(`web chat on ${s.url}`);
}
