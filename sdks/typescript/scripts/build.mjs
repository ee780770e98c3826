// Builds dist/: ESM and CJS of each entry (dependencies left to the app's bundler or
// Node), .d.ts by tsc, and dist/browser/tern.min.js — the client entry with its
// dependencies, minified, for <script type="module"> and for measuring the bundle size.

import { execFileSync } from "node:child_process";
import { rmSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
process.chdir(here);
rmSync("dist", { recursive: true, force: true });

const external = ["@bufbuild/protobuf", "ws", "node:*"];
const common = { bundle: true, sourcemap: true, target: "es2020", external, logLevel: "warning" };

// Universal/browser entry: nothing of Node may be reachable from it.
await build({ ...common, entryPoints: { index: "src/index.ts" }, platform: "browser", format: "esm", outdir: "dist/esm", external: ["@bufbuild/protobuf"] });
await build({ ...common, entryPoints: { index: "src/index.ts" }, platform: "browser", format: "cjs", outdir: "dist/cjs", outExtension: { ".js": ".cjs" }, external: ["@bufbuild/protobuf"] });
// Node entries: the client with `ws`, and the server API client.
await build({ ...common, entryPoints: { "index.node": "src/index.node.ts", server: "src/server/index.ts" }, platform: "node", format: "esm", outdir: "dist/esm" });
await build({ ...common, entryPoints: { "index.node": "src/index.node.ts", server: "src/server/index.ts" }, platform: "node", format: "cjs", outdir: "dist/cjs", outExtension: { ".js": ".cjs" } });
// Self-contained, minified browser bundle.
await build({ entryPoints: ["src/index.ts"], bundle: true, minify: true, format: "esm", platform: "browser", target: "es2020", outfile: "dist/browser/tern.min.js", logLevel: "warning" });

execFileSync(join(here, "node_modules/.bin/tsc"), ["-p", "."], { stdio: "inherit" });

const min = readFileSync("dist/browser/tern.min.js");
const size = { minified: min.length, gzipped: gzipSync(min, { level: 9 }).length };
writeFileSync("dist/size.json", JSON.stringify(size) + "\n");
console.log(`dist/browser/tern.min.js: ${(size.minified / 1024).toFixed(1)} KiB minified, ${(size.gzipped / 1024).toFixed(1)} KiB gzipped`);
