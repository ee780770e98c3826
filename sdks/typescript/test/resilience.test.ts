// What goes wrong on real networks: the server killed and started again, frames lost
// while the socket looks healthy, a malformed frame. Every time, each message reaches the
// app once and in order, and sends made meanwhile are neither lost nor doubled.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client } from "../src/index.node.js";
import { getDefaultSocketFactory } from "../src/client/socket.js";
import { ClientFrameSchema, ServerFrameSchema } from "../src/gen/tern/v1/client_pb.js";
import { ServerClient, mintUserToken } from "../src/server/index.js";
import { collect, sleep, texts, until } from "./helpers.js";
import { Proxy } from "./proxy.js";
import { TernServer, type App } from "./tern.js";

let server: TernServer;
let app: App;
let api: ServerClient;
const clients: Client[] = [];

beforeAll(async () => {
  server = await TernServer.start({ TERN_HEARTBEAT_SECONDS: "2" });
  app = server.createApp();
  api = new ServerClient({ baseUrl: server.base, appKey: app.appKey, appSecret: app.appSecret });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.stop();
});

function client(user: string, url: string, protocol: "proto" | "json" = "proto"): Client {
  const c = new Client({
    url,
    token: mintUserToken(app.appKey, app.appSecret, user),
    protocol,
    minBackoffMs: 100,
    maxBackoffMs: 800,
  });
  clients.push(c);
  return c;
}

const conv = (a: string, b: string) => `d:${[a, b].sort().join(":")}`;

describe("the server killed and restarted", () => {
  it("the client comes back by itself, syncs, and sends what was queued", async () => {
    const alice = client("r-alice", server.wsUrl);
    const bob = client("r-bob", server.wsUrl, "json");
    const got = collect(bob, "message");
    const states = collect(bob, "state");
    await Promise.all([alice.connect(), bob.connect()]);
    await alice.sendText({ user: "r-bob" }, "before 1");
    await alice.sendText({ user: "r-bob" }, "before 2");
    await until("two messages", () => got.length === 2);
    await api.upsertUsers([{ id: "r-carol" }]);

    await server.kill();
    await until("bob notices", () => bob.state !== "connected");
    // Sent while the server is down: queued, then sent once it is back.
    const queued = [alice.sendText({ user: "r-bob" }, "queued 1"), alice.sendText({ user: "r-bob" }, "queued 2")];
    expect(alice.queuedSends).toBe(2);
    await sleep(1500); // a few failed reconnects
    await server.restart();
    // While the clients are still reconnecting, the backend sends too.
    for (let n = 1; n <= 3; n++) {
      await api.sendMessage({
        from: "r-carol",
        to: { user: "r-bob" },
        client_msg_id: `carol-${n}`,
        type: "text",
        content: { text: `carol ${n}` },
      });
    }
    const acks = await Promise.all(queued);
    expect(acks.map((a) => a.seq)).toEqual([3, 4]);
    expect(alice.queuedSends).toBe(0);
    await until("every message", () => got.length === 7);
    await sleep(300);

    const fromAlice = texts(got, conv("r-alice", "r-bob"));
    expect(fromAlice).toEqual(["before 1", "before 2", "queued 1", "queued 2"]);
    expect(texts(got, conv("r-bob", "r-carol"))).toEqual(["carol 1", "carol 2", "carol 3"]);
    const seqs = got.filter((e) => e.message.conversationId === conv("r-alice", "r-bob")).map((e) => e.message.seq);
    expect(seqs).toEqual([1, 2, 3, 4]);
    expect(got.length).toBe(7);
    expect(states.map((s) => s.state)).toContain("disconnected");
    expect(bob.state).toBe("connected");
    // Nothing was stored twice.
    const history = await bob.history(conv("r-alice", "r-bob"));
    expect(history.map((m) => m.content?.text)).toEqual(fromAlice);
  });
});

describe("while the server is away", () => {
  it("reconnect attempts back off (no tight loop) and the client keeps trying", async () => {
    let opened = 0;
    const inner = getDefaultSocketFactory()!;
    const c = new Client({
      url: server.wsUrl,
      token: mintUserToken(app.appKey, app.appSecret, "b-bob"),
      minBackoffMs: 200,
      maxBackoffMs: 1000,
      socketFactory: (url, protocols) => {
        opened++;
        return inner(url, protocols);
      },
    });
    clients.push(c);
    await c.connect();
    await server.kill();
    await until("disconnected", () => c.state !== "connected");
    const before = opened;
    await sleep(4000);
    // Delays of 100-200, 200-400, 400-800, then 500-1000 ms: at most 9 tries in 4 s.
    const tries = opened - before;
    expect(tries).toBeGreaterThanOrEqual(3);
    expect(tries).toBeLessThanOrEqual(9);
    await server.restart();
    await until("back", () => c.state === "connected", 10_000);
  });
});

describe("through a lossy middle", () => {
  let proxy: Proxy;
  beforeAll(async () => {
    proxy = await Proxy.start(server.wsUrl);
  });
  afterAll(async () => proxy.stop());

  it("a push lost while the socket looks healthy is pulled when the next one shows the gap", async () => {
    const alice = client("l-alice", server.wsUrl);
    const bob = client("l-bob", proxy.url);
    const got = collect(bob, "message");
    await Promise.all([alice.connect(), bob.connect()]);
    let dropped = 0;
    proxy.dropIf = (data, binary) => {
      if (!binary || dropped > 0) return false;
      const f = fromBinary(ServerFrameSchema, new Uint8Array(data as Buffer));
      if (f.body.case === "message" && f.body.value.content?.text === "two") {
        dropped++;
        return true;
      }
      return false;
    };
    await alice.sendText({ user: "l-bob" }, "one");
    await alice.sendText({ user: "l-bob" }, "two");
    await until("the drop", () => dropped === 1);
    await alice.sendText({ user: "l-bob" }, "three");
    await until("three messages", () => got.length === 3);
    expect(texts(got)).toEqual(["one", "two", "three"]);
    expect(proxy.connections).toBe(1); // no reconnect was needed
    proxy.dropIf = undefined;
  });

  it("a malformed frame is reported, the connection reset, nothing lost", async () => {
    const alice = client("m-alice", server.wsUrl);
    const bob = client("m-bob", proxy.url);
    const got = collect(bob, "message");
    const errors = collect(bob, "error");
    await Promise.all([alice.connect(), bob.connect()]);
    const before = proxy.connections;
    await alice.sendText({ user: "m-bob" }, "first");
    await until("first", () => got.length === 1);
    proxy.inject(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), true);
    // A message sent while bob is reconnecting is synced after.
    await alice.sendText({ user: "m-bob" }, "second");
    await until("bad_frame reported", () => errors.some((e) => e.code === "bad_frame"));
    await until("reconnected", () => proxy.connections > before && bob.state === "connected");
    await alice.sendText({ user: "m-bob" }, "third");
    await until("three", () => got.length === 3);
    expect(texts(got)).toEqual(["first", "second", "third"]);
  });

  it("a text frame on tern.v1.proto and an oversized frame are bad frames too", async () => {
    const bob = client("o-bob", proxy.url);
    const errors = collect(bob, "error");
    await bob.connect();
    proxy.inject('{"message":{}}', false);
    await until("first bad_frame", () => errors.length === 1);
    await until("reconnected", () => bob.state === "connected");
    proxy.inject(Buffer.alloc(70_000, 1), true);
    await until("second bad_frame", () => errors.length === 2);
    expect(errors.map((e) => e.code)).toEqual(["bad_frame", "bad_frame"]);
    await until("reconnected again", () => bob.state === "connected");
  });

  it("a silent server (no frames at all) is noticed by the heartbeat", async () => {
    const bob = client("s-bob", proxy.url);
    const states = collect(bob, "state");
    await bob.connect();
    const before = proxy.connections;
    proxy.dropIf = () => true; // the socket stays open, nothing comes through
    await until("disconnected", () => states.some((s) => s.state === "disconnected"), 15_000);
    proxy.dropIf = undefined;
    await until("back", () => bob.state === "connected" && proxy.connections > before, 15_000);
  });

  /** Drops bob's push of `text` (once) and answers his history pulls with `refuse(n)`'s
   * error for as long as it returns one (`n` counts the pulls from 1). */
  function lose(text: string, refuse: (n: number) => { code: string; retryAfterMs?: number } | undefined) {
    let dropped = 0;
    const pulls: number[] = [];
    proxy.dropIf = (data, binary) => {
      if (!binary || dropped > 0) return false;
      const f = fromBinary(ServerFrameSchema, new Uint8Array(data as Buffer));
      if (f.body.case === "message" && f.body.value.content?.text === text) return ++dropped === 1;
      return false;
    };
    proxy.answerIf = (data, binary) => {
      if (!binary) return undefined;
      const f = fromBinary(ClientFrameSchema, new Uint8Array(data as Buffer));
      if (f.command.case !== "history") return undefined;
      pulls.push(Date.now());
      const error = refuse(pulls.length);
      if (!error) return undefined;
      const answer = create(ServerFrameSchema, {
        id: f.id,
        body: {
          case: "error",
          value: { code: error.code, message: "refused by the test", retryAfterMs: BigInt(error.retryAfterMs ?? 0) },
        },
      });
      return Buffer.from(toBinary(ServerFrameSchema, answer));
    };
    return { pulls, dropped: () => dropped };
  }

  it("a history pull refused for good is not asked again: what came after the gap is shown", async () => {
    const alice = client("p-alice", server.wsUrl);
    const bob = client("p-bob", proxy.url);
    const got = collect(bob, "message");
    const states = collect(bob, "state");
    await Promise.all([alice.connect(), bob.connect()]);
    const { pulls, dropped } = lose("two", () => ({ code: "not_found" }));
    await alice.sendText({ user: "p-bob" }, "one");
    await alice.sendText({ user: "p-bob" }, "two");
    await until("the drop", () => dropped() === 1);
    await alice.sendText({ user: "p-bob" }, "three");
    await until("three shown", () => got.length === 2);
    await sleep(1_500);
    proxy.dropIf = proxy.answerIf = undefined;
    // Without the fix the client asked again at once, thousands of times a second.
    expect(pulls.length).toBe(1);
    expect(texts(got)).toEqual(["one", "three"]);
    expect(states.filter((s) => s.state === "disconnected")).toEqual([]); // no reconnect either
  });

  it("a history pull refused for now is asked again later, and then fills the gap in order", async () => {
    const alice = client("q-alice", server.wsUrl);
    const bob = client("q-bob", proxy.url);
    const got = collect(bob, "message");
    await Promise.all([alice.connect(), bob.connect()]);
    const { pulls, dropped } = lose("two", (n) => (n <= 2 ? { code: "rate_limited", retryAfterMs: 300 } : undefined));
    await alice.sendText({ user: "q-bob" }, "one");
    await alice.sendText({ user: "q-bob" }, "two");
    await until("the drop", () => dropped() === 1);
    await alice.sendText({ user: "q-bob" }, "three");
    await until("all three", () => got.length === 3, 10_000);
    proxy.dropIf = proxy.answerIf = undefined;
    expect(texts(got)).toEqual(["one", "two", "three"]);
    expect(pulls.length).toBe(3);
    // 1 s after the first refusal, 2 s after the second: never at once.
    expect(pulls[1]! - pulls[0]!).toBeGreaterThanOrEqual(900);
    expect(pulls[2]! - pulls[1]!).toBeGreaterThanOrEqual(1_900);
  });
});

// A sync lists only the conversations changed since the previous sync. A pull that sync
// started and that a lost connection cut off is not listed by the next one, so the client
// must make it again by itself (docs/protocol.md, "Sync").
describe("a pull cut off by a lost connection", () => {
  let proxy: Proxy;
  beforeAll(async () => {
    proxy = await Proxy.start(server.wsUrl);
  });
  afterAll(async () => proxy.stop());

  const isAuthOk = (data: unknown, binary: boolean) =>
    binary && fromBinary(ServerFrameSchema, new Uint8Array(data as Buffer)).body.case === "authOk";

  /** Cuts bob off, lets `meanwhile` happen, then lets his next connection through only up
   * to its `auth_ok` (which carries the sync): whatever that sync asks for is never answered. */
  async function cutOffTheSyncPulls(bob: Client, meanwhile: () => Promise<void>): Promise<void> {
    proxy.down = true;
    proxy.cutAll();
    await until("bob disconnected", () => bob.state !== "connected");
    await meanwhile();
    const before = proxy.connections;
    proxy.cutAfter = isAuthOk;
    proxy.down = false;
    await until("the sync's connection cut", () => proxy.connections > before && proxy.cutAfter === undefined);
  }

  it("missing messages are pulled on the next connection, though its sync does not list them", async () => {
    const alice = client("c-alice", server.wsUrl);
    const bob = client("c-bob", proxy.url);
    const got = collect(bob, "message");
    await Promise.all([alice.connect(), bob.connect()]);
    await alice.sendText({ user: "c-bob" }, "msg 1");
    await until("msg 1", () => got.length === 1);

    await cutOffTheSyncPulls(bob, async () => {
      for (let n = 2; n <= 5; n++) await alice.sendText({ user: "c-bob" }, `msg ${n}`);
    });
    await until("msgs 2 to 5", () => got.length === 5, 8_000);
    await sleep(300);
    expect(texts(got)).toEqual(["msg 1", "msg 2", "msg 3", "msg 4", "msg 5"]);
    expect(got.map((e) => e.message.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it("a changes pull is made again on the next connection, though its sync does not list it", async () => {
    const alice = client("cc-alice", server.wsUrl);
    const bob = client("cc-bob", proxy.url);
    const got = collect(bob, "message");
    const changed = collect(bob, "changed");
    await Promise.all([alice.connect(), bob.connect()]);
    const ack = await alice.sendText({ user: "cc-bob" }, "oops");
    await until("oops", () => got.length === 1);

    await cutOffTheSyncPulls(bob, async () => {
      await alice.recall(ack.msgId);
      // Let the recall settle before the sync that lists it (without this pause the unfixed
      // client once got the recall anyway, on an unclear path).
      await sleep(300);
    });
    await until("the recall", () => changed.length === 1, 8_000);
    await sleep(300);
    expect(changed.map((e) => [e.change.msgId, e.change.seq, e.change.change.case])).toEqual([[ack.msgId, 1, "recall"]]);
    expect(got.length).toBe(1);
  });
});
