// The web chat (examples/web-chat) in headless Chromium: two users in two browser
// contexts chat; one goes offline, messages are sent both ways meanwhile, and when it is
// back every message shows once and in order on both sides. Saves a screenshot.

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type Page } from "playwright-core";
import { ServerClient } from "../src/server/index.js";
import { TernServer, type App } from "./tern.js";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// Into test-results/ (ignored by git); UPDATE_SCREENSHOT=1 writes the one in docs/.
const screenshot = fileURLToPath(
  new URL(process.env.UPDATE_SCREENSHOT ? "../../../docs/sdk-typescript-web-chat.png" : "../test-results/web-chat.png", import.meta.url),
);

let server: TernServer;
let app: App;
let browser: Browser;
let webChat: { url: string; close: () => Promise<void> };

beforeAll(async () => {
  if (!existsSync(chromiumPath)) throw new Error(`no Chromium at ${chromiumPath} (set CHROMIUM_PATH)`);
  if (!existsSync(fileURLToPath(new URL("../dist/browser/tern.min.js", import.meta.url)))) {
    throw new Error("run npm run build first: the page loads dist/browser/tern.min.js");
  }
  // The node compresses for clients that offer permessage-deflate (Chromium does): every
  // test below runs over compressed WebSockets.
  server = await TernServer.start({ TERN_WS_DEFLATE: "on" });
  app = server.createApp();
  // @ts-expect-error: a plain .mjs without types
  const { startWebChat } = await import("../examples/web-chat/server.mjs");
  webChat = await startWebChat({ ternUrl: server.base, appKey: app.appKey, appSecret: app.appSecret });
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox", "--disable-gpu"] });
});

afterAll(async () => {
  await browser?.close();
  await webChat?.close();
  await server?.stop();
});

interface LoggedIn {
  page: Page;
  setOffline: (o: boolean) => Promise<void>;
  close: () => Promise<void>;
  /** The Sec-WebSocket-Extensions of every WebSocket handshake the page made, in order. */
  extensions: string[];
}

async function login(user: string): Promise<LoggedIn> {
  const context = await browser.newContext({ viewport: { width: 960, height: 600 } });
  const page = await context.newPage();
  const extensions: string[] = [];
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  cdp.on("Network.webSocketHandshakeResponseReceived", (e) => {
    const headers = Object.fromEntries(Object.entries(e.response.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
    extensions.push(headers["sec-websocket-extensions"] ?? "");
  });
  page.on("pageerror", (e) => console.error(`[${user}] page error:`, e));
  page.on("console", (m) => console.log(`[${user}] ${m.text()}`));
  await page.goto(webChat.url);
  await page.fill("#user", user);
  await page.click("#login button");
  await page.waitForSelector('#status[data-state="connected"]');
  page.setDefaultTimeout(10_000);
  return { page, setOffline: (o) => context.setOffline(o), close: () => context.close(), extensions };
}

const shown = (page: Page) => page.$$eval("#messages .msg[data-seq]", (els) => els.map((e) => e.querySelector(".text")!.textContent));
const shownSeqs = (page: Page) => page.$$eval("#messages .msg[data-seq]", (els) => els.map((e) => Number((e as HTMLElement).dataset.seq)));

async function send(page: Page, text: string): Promise<void> {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

describe("web chat in Chromium", () => {
  it("two users chat, one goes offline and back, every message once and in order", async () => {
    const alice = await login("wb-alice");
    const bob = await login("wb-bob");
    const conv = "d:wb-alice:wb-bob";

    await alice.page.fill("#peer", "wb-bob");
    await alice.page.press("#peer", "Enter");
    await send(alice.page, "hello bob");
    await send(alice.page, "are you there?");

    // Bob's list shows the conversation with two unread; opening it shows the history.
    const badge = bob.page.locator(`.conv[data-id="${conv}"] .unread`);
    await expect.poll(() => badge.textContent({ timeout: 1000 }).catch(() => null)).toBe("2");
    await bob.page.click(`.conv[data-id="${conv}"]`);
    await expect.poll(() => shown(bob.page)).toEqual(["hello bob", "are you there?"]);
    await expect.poll(() => badge.getAttribute("data-count")).toBe("0");
    // Alice sees that Bob read them.
    await expect.poll(() => alice.page.locator(".receipt.read").count()).toBe(2);

    // Typing reaches the other side.
    await bob.page.type("#text", "yes");
    await expect.poll(() => alice.page.textContent("#typing")).toBe("wb-bob is typing…");
    await bob.page.press("#text", "Enter");
    await expect.poll(() => shown(alice.page)).toEqual(["hello bob", "are you there?", "yes"]);

    // Bob goes offline. Both write meanwhile; Bob's message waits in his outbox.
    await bob.setOffline(true);
    await bob.page.waitForSelector('#status[data-state="disconnected"]');
    for (const t of ["one", "two", "three"]) await send(alice.page, t);
    await send(bob.page, "written offline");
    await expect.poll(() => bob.page.locator(".msg.pending").count()).toBe(1);
    expect(await shown(bob.page)).toEqual(["hello bob", "are you there?", "yes"]);

    await bob.setOffline(false);
    await bob.page.waitForSelector('#status[data-state="connected"]');
    const all = ["hello bob", "are you there?", "yes", "one", "two", "three", "written offline"];
    await expect.poll(() => shown(bob.page), { timeout: 20_000 }).toEqual(all);
    await expect.poll(() => shown(alice.page), { timeout: 20_000 }).toEqual(all);
    expect(await bob.page.locator(".msg.pending").count()).toBe(0);
    expect(await shownSeqs(bob.page)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // Bob read everything on arrival; Alice's list shows nothing unread either.
    await expect.poll(() => alice.page.locator(".receipt.read").count()).toBe(5);
    await expect.poll(() => alice.page.locator(`.conv[data-id="${conv}"] .unread`).getAttribute("data-count")).toBe("0");

    // A recall reaches the other side's page.
    await alice.page.evaluate(`(async () => {
      const h = await window.chat.client.history(${JSON.stringify(conv)}, 0, 10);
      await window.chat.client.recall(h.find((m) => m.content?.text === "three").msgId);
    })()`);
    await expect.poll(() => shown(bob.page)).toEqual(all.map((t) => (t === "three" ? "(recalled)" : t)));

    // Both pages talked over compressed WebSockets, Bob's reconnect included, each without
    // context takeover (what the server imposes to bound memory per connection).
    for (const who of [alice, bob]) {
      expect(who.extensions.length).toBeGreaterThan(0);
      for (const e of who.extensions) {
        expect(e).toContain("permessage-deflate");
        expect(e).toContain("client_no_context_takeover");
      }
    }
    expect(bob.extensions.length).toBeGreaterThan(1);

    await alice.page.screenshot({ path: screenshot });
  });

  it("a user back after a while sees what came meanwhile as unread", async () => {
    const first = await login("wb-dave");
    await first.close();
    const carol = await login("wb-carol");
    await carol.page.fill("#peer", "wb-dave");
    await carol.page.press("#peer", "Enter");
    await send(carol.page, "hi dave");
    await send(carol.page, "still there?");
    await expect.poll(() => shown(carol.page)).toEqual(["hi dave", "still there?"]);
    const dave = await login("wb-dave");
    // The conversation list from the sync at login shows it, unread, without opening it.
    const badge = dave.page.locator('.conv[data-id="d:wb-carol:wb-dave"] .unread');
    await expect.poll(() => badge.textContent({ timeout: 1000 }).catch(() => null)).toBe("2");
    await dave.page.click('.conv[data-id="d:wb-carol:wb-dave"]');
    await expect.poll(() => shown(dave.page)).toEqual(["hi dave", "still there?"]);
    await expect.poll(() => badge.getAttribute("data-count", { timeout: 1000 }).catch(() => null)).toBe("0");
  });

  it("a send queued in IndexedDB survives a page load and goes out once", async () => {
    const { page } = await login("wb-erin");
    const token = (await (await fetch(new URL("/api/token", webChat.url), { method: "POST", body: '{"user":"wb-erin"}' })).json()).token;
    // Nothing listens on port 1: the send waits in the outbox (IndexedDB) when the page goes away.
    // As strings: vitest would rewrite an import() inside a function.
    await page.evaluate(`(async (token) => {
      const { Client } = await import("/tern.min.js");
      const c = new Client({ url: "ws://127.0.0.1:1", token, deviceId: "dev-persist" });
      c.connect().catch(() => undefined);
      c.sendText({ user: "wb-alice" }, "from the last visit", { clientMsgId: "c-persist-1" }).catch(() => undefined);
      const count = () =>
        new Promise((resolve) => {
          const r = indexedDB.open("tern-outbox:dev-persist");
          r.onsuccess = () => {
            const q = r.result.transaction("outbox").objectStore("outbox").count();
            q.onsuccess = () => resolve(q.result);
          };
        });
      while ((await count()) !== 1) await new Promise((r) => setTimeout(r, 20));
      c.close();
    })(${JSON.stringify(token)})`);
    await page.reload();
    const ack = await page.evaluate(
      `(async ([token, url]) => {
        const { Client } = await import("/tern.min.js");
        const c = new Client({ url, token, deviceId: "dev-persist" });
        const sent = new Promise((resolve) => c.on("sent", (e) => resolve(e.ack)));
        await c.connect();
        const ack = await sent;
        const left = await new Promise((resolve) => {
          const r = indexedDB.open("tern-outbox:dev-persist");
          r.onsuccess = () => {
            const q = r.result.transaction("outbox").objectStore("outbox").count();
            q.onsuccess = () => resolve(q.result);
          };
        });
        c.close();
        return { ack, left };
      })(${JSON.stringify([token, server.base])})`,
    );
    expect(ack).toMatchObject({ ack: { clientMsgId: "c-persist-1", seq: 1 }, left: 0 });
    // The server stored it once.
    const alice = await login("wb-alice");
    await alice.page.click('.conv[data-id="d:wb-alice:wb-erin"]');
    await expect.poll(() => shown(alice.page)).toEqual(["from the last visit"]);
  });

  it("the browser bundle registers a web push token and sets do-not-disturb hours", async () => {
    const { page } = await login("wb-fay");
    const token = (await (await fetch(new URL("/api/token", webChat.url), { method: "POST", body: '{"user":"wb-fay"}' })).json()).token;
    const got = await page.evaluate(
      `(async ([token, url]) => {
        const { Client } = await import("/tern.min.js");
        const c = new Client({ url, token, deviceId: "fay-browser" });
        await c.connect();
        const device = await c.registerPushToken({ provider: "fcm", token: "web-push:fay-1", locale: navigator.language });
        const settings = await c.updatePushSettings({ dnd: { start: "21:00", end: "08:00", utcOffsetMinutes: 120 } });
        let refused = "";
        try { await c.registerPushToken({ provider: "apns", token: "nope" }); } catch (e) { refused = e.code; }
        c.close();
        return { device, settings, refused };
      })(${JSON.stringify([token, server.base])})`,
    ) as { device: { deviceId: string; provider: string }; settings: unknown; refused: string };
    expect(got.device).toMatchObject({ provider: "fcm", token: "web-push:fay-1" });
    expect(got.settings).toEqual({ dnd: { start: "21:00", end: "08:00", utcOffsetMinutes: 120 }, mutedConversations: [] });
    expect(got.refused).toBe("invalid_argument");
    const api = new ServerClient({ baseUrl: server.base, appKey: app.appKey, appSecret: app.appSecret });
    const devices = (await api.listDevices("wb-fay")).devices;
    expect(devices.map((d) => d.device_id)).toEqual([got.device.deviceId]);
    expect((await api.pushSettings("wb-fay")).dnd).toEqual({ start: "21:00", end: "08:00", utc_offset_minutes: 120 });
  });
});
