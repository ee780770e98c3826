// The server away for 60 s, as the issue puts it: the client keeps trying with its
// backoff (capped at 10 s here, 30 s by default), comes back by itself and syncs; sends
// made during the outage go out once; everything shows once and in order.

import { afterAll, beforeAll, expect, it } from "vitest";
import { Client } from "../src/index.node.js";
import { ServerClient, mintUserToken } from "../src/server/index.js";
import { collect, sleep, texts, until } from "./helpers.js";
import { TernServer } from "./tern.js";

let server: TernServer;
beforeAll(async () => {
  server = await TernServer.start();
});
afterAll(async () => server?.stop());

it("a 60 s outage: back by itself, synced, nothing lost or doubled", { timeout: 120_000 }, async () => {
  const app = server.createApp();
  const api = new ServerClient({ baseUrl: server.base, appKey: app.appKey, appSecret: app.appSecret });
  const make = (user: string) =>
    new Client({ url: server.base, token: mintUserToken(app.appKey, app.appSecret, user), maxBackoffMs: 10_000 });
  const alice = make("o-alice");
  const bob = make("o-bob");
  const got = collect(bob, "message");
  const states = collect(bob, "state");
  try {
    await Promise.all([alice.connect(), bob.connect()]);
    await api.upsertUsers([{ id: "o-backend" }]);
    await alice.sendText({ user: "o-bob" }, "before");
    await until("before", () => got.length === 1);

    await server.kill();
    const queued = alice.sendText({ user: "o-bob" }, "during the outage");
    await sleep(60_000);
    await server.restart();
    await api.sendMessage({ from: "o-backend", to: { user: "o-bob" }, client_msg_id: "b-1", type: "text", content: { text: "after" } });
    expect((await queued).seq).toBe(2);
    await until("all three", () => got.length === 3, 30_000);
    await sleep(300);
    expect(texts(got, "d:o-alice:o-bob")).toEqual(["before", "during the outage"]);
    expect(texts(got, "d:o-backend:o-bob")).toEqual(["after"]);
    expect(got).toHaveLength(3);
    // It kept trying, but not in a tight loop: a few attempts a minute.
    const attempts = states.filter((s) => s.state === "connecting").length;
    expect(attempts).toBeGreaterThan(3);
    expect(attempts).toBeLessThan(20);
  } finally {
    alice.close();
    bob.close();
  }
});
