// The real-time client against a real `tern serve`: chatting in both subprotocols, one
// socket per client, refused and expiring tokens, and the commands of the Rust SDK.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromJsonString, toJson } from "@bufbuild/protobuf";
import { ServerFrameSchema } from "../src/gen/tern/v1/client_pb.js";
import { Client, ClientError, type ClientOptions, type SocketFactory } from "../src/index.node.js";
import { getDefaultSocketFactory } from "../src/client/socket.js";
import { ServerClient, mintUserToken } from "../src/server/index.js";
import { collect, texts, until } from "./helpers.js";
import { TernServer, type App } from "./tern.js";

let server: TernServer;
let app: App;
let api: ServerClient;
const clients: Client[] = [];

beforeAll(async () => {
  server = await TernServer.start();
  app = server.createApp();
  api = new ServerClient({ baseUrl: server.base, appKey: app.appKey, appSecret: app.appSecret });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.stop();
});

const token = (user: string, ttlSeconds = 3600) => mintUserToken(app.appKey, app.appSecret, user, { ttlSeconds });

/** A socket factory that counts the sockets it opens. */
function counting(): { factory: SocketFactory; opened: () => number } {
  let n = 0;
  const inner = getDefaultSocketFactory()!;
  return {
    factory: (url, protocols) => {
      n++;
      return inner(url, protocols);
    },
    opened: () => n,
  };
}

function client(user: string, options: Partial<ClientOptions> = {}): Client {
  const c = new Client({ url: server.base, token: token(user), minBackoffMs: 100, maxBackoffMs: 1000, ...options });
  clients.push(c);
  return c;
}

describe.each(["proto", "json"] as const)("two users chat over tern.v1.%s", (protocol) => {
  it("messages, receipts, typing and presence arrive once", async () => {
    const [a, b] = [`alice-${protocol}`, `bob-${protocol}`];
    const alice = client(a, { protocol });
    const bob = client(b, { protocol });
    const bobMessages = collect(bob, "message");
    const aliceMessages = collect(alice, "message");
    const receipts = collect(alice, "receipt");
    const typing = collect(bob, "typing");
    const presence = collect(alice, "presence");
    await Promise.all([alice.connect(), bob.connect()]);
    expect(alice.protocol).toBe(`tern.v1.${protocol}`);
    expect(alice.userId).toBe(a);

    const watched = await alice.subscribePresence([b]);
    expect(watched).toEqual([expect.objectContaining({ userId: b, online: true })]);

    const ack = await alice.sendText({ user: b }, "hi bob");
    expect(ack.seq).toBe(1);
    expect(ack.conversationId).toBe(`d:${[a, b].sort().join(":")}`);
    await alice.typing(ack.conversationId);
    await alice.sendText({ user: b }, "how are you?");
    await until("bob's two messages", () => bobMessages.length === 2);
    expect(texts(bobMessages)).toEqual(["hi bob", "how are you?"]);
    expect(bobMessages.map((e) => e.message.seq)).toEqual([1, 2]);
    expect(bobMessages[0]!.message.sender).toBe(a);
    await until("typing", () => typing.length === 1);
    expect(typing[0]).toMatchObject({ conversationId: ack.conversationId, userId: a });

    const entry = await bob.read(ack.conversationId, 2);
    expect(entry.readSeq).toBe(2);
    expect(entry.unread).toBe(0);
    await until("alice's receipt", () => receipts.length > 0);
    expect(receipts.at(-1)).toMatchObject({ conversationId: ack.conversationId, userId: b, readSeq: 2 });

    // The sender's own connection gets its messages too, once each.
    await until("alice's echo", () => aliceMessages.length === 2);
    expect(texts(aliceMessages)).toEqual(["hi bob", "how are you?"]);

    const history = await bob.history(ack.conversationId, 0, 10);
    expect(history.map((m) => m.content?.text)).toEqual(["hi bob", "how are you?"]);

    bob.close();
    await until("bob offline", () => presence.some((p) => p.presence.userId === b && !p.presence.online));
  });
});

describe("Tern's JSON is canonical proto3 JSON", () => {
  it("every text frame the server sends is exactly what protobuf-es writes for it", async () => {
    const frames: string[] = [];
    const inner = getDefaultSocketFactory()!;
    const capture: SocketFactory = (url, protocols) => {
      const s = inner(url, protocols);
      const on = (ev: { data: unknown }) => typeof ev.data === "string" && frames.push(ev.data);
      (s as unknown as { addEventListener: (t: string, f: (e: { data: unknown }) => void) => void }).addEventListener("message", on);
      return s;
    };
    const a = client("canon-a", { protocol: "json", socketFactory: capture });
    const b = client("canon-b", { protocol: "json" });
    await Promise.all([a.connect(), b.connect()]);
    await a.subscribePresence(["canon-b"]);
    const sent = await a.sendText({ user: "canon-b" }, "hello", {});
    await b.reply({ user: "canon-a" }, sent.msgId, "text", { text: "hi", n: 3, list: [1.5, null, true] });
    await a.addReaction(sent.msgId, "👍");
    await b.read(sent.conversationId, 2);
    await a.history(sent.conversationId);
    await until("frames", () => frames.some((f) => f.includes("receipt")));
    expect(frames.length).toBeGreaterThan(6);
    for (const text of frames) {
      const canonical = toJson(ServerFrameSchema, fromJsonString(ServerFrameSchema, text), { useProtoFieldName: true });
      expect(JSON.parse(text)).toEqual(canonical);
    }
  });
});

describe("one socket per client", () => {
  it("connect twice (even at once) opens one socket", async () => {
    const sockets = counting();
    const c = client("carol", { socketFactory: sockets.factory });
    const p1 = c.connect();
    const p2 = c.connect();
    expect(p2).toBe(p1);
    await Promise.all([p1, p2]);
    await c.connect();
    expect(c.state).toBe("connected");
    expect(sockets.opened()).toBe(1);
  });

  it("connect after close is refused", async () => {
    const c = client("carol2");
    await c.connect();
    c.close();
    await expect(c.connect()).rejects.toMatchObject({ code: "closed" });
    expect(c.state).toBe("closed");
  });
});

describe("tokens", () => {
  it("a token signed with the wrong secret is one clear error, no reconnect loop", async () => {
    const sockets = counting();
    const bad = mintUserToken(app.appKey, "sk_not_the_secret", "mallory");
    const c = client("mallory", { token: bad, socketFactory: sockets.factory });
    const states = collect(c, "state");
    const err = await c.connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe("bad_signature");
    expect(c.state).toBe("closed");
    await new Promise((r) => setTimeout(r, 500));
    expect(sockets.opened()).toBe(1);
    expect(states.at(-1)).toMatchObject({ state: "closed", code: "bad_signature" });
  });

  it("garbage instead of a token is token_invalid", async () => {
    const c = client("x", { token: "not-a-jwt" });
    await expect(c.connect()).rejects.toMatchObject({ code: "token_invalid" });
  });

  it("an expired token makes the client ask the provider and connect", async () => {
    const expired = mintUserToken(app.appKey, app.appSecret, "dave", { iat: 1_700_000_000, exp: 1_700_000_600 });
    let asked = 0;
    const c = client("dave", {
      token: expired,
      tokenProvider: async () => {
        asked++;
        return token("dave");
      },
    });
    const errors = collect(c, "error");
    await c.connect();
    expect(asked).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(["token_expired"]);
  });

  it("a revoked user's provider gets asked once, then one clear error", async () => {
    await api.upsertUsers([{ id: "erin" }]);
    await api.revokeTokens("erin");
    // Tokens issued in the same second as the revocation are refused too.
    const old = mintUserToken(app.appKey, app.appSecret, "erin", { iat: Math.floor(Date.now() / 1000) - 10 });
    let asked = 0;
    const sockets = counting();
    const c = client("erin", {
      token: undefined,
      socketFactory: sockets.factory,
      tokenProvider: async () => {
        asked++;
        return old;
      },
    });
    await expect(c.connect()).rejects.toMatchObject({ code: "token_revoked" });
    await new Promise((r) => setTimeout(r, 1000));
    expect(asked).toBe(1);
    expect(sockets.opened()).toBe(1);
  });

  it("a provider's token is refreshed before it expires", async () => {
    let asked = 0;
    const c = client("frank", {
      token: undefined,
      tokenProvider: async () => {
        asked++;
        // 3 s tokens: the refresh comes a fifth of the lifetime early (at least 1 s after).
        return mintUserToken(app.appKey, app.appSecret, "frank", { ttlSeconds: 3 });
      },
    });
    await c.connect();
    expect(asked).toBe(1);
    await until("a refresh", () => asked >= 2, 5_000);
  });

  it("a kicked client stops and says why", async () => {
    const c = client("gina");
    const kicked = collect(c, "kicked");
    await c.connect();
    await api.kick("gina");
    await until("closed", () => c.state === "closed");
    expect(kicked[0]?.code).toBe("kicked");
  });
});

describe("commands", () => {
  let h: Client;
  let i: Client;
  const hEvents: { message: import("../src/index.js").Message }[] = [];
  const iChanges: import("../src/index.js").EventMap["changed"][] = [];
  beforeAll(async () => {
    h = client("hank");
    i = client("iris");
    h.on("message", (e) => hEvents.push(e));
    i.on("changed", (e) => iChanges.push(e));
    await Promise.all([h.connect(), i.connect()]);
  });

  it("reply, edit, reactions, extensions, recall and delete for me", async () => {
    const first = await h.sendText({ user: "iris" }, "lunch?");
    const reply = await i.reply({ user: "hank" }, first.msgId, "text", { text: "yes!" });
    await until("the reply", () => hEvents.some((e) => e.message.msgId === reply.msgId));
    const got = hEvents.find((e) => e.message.msgId === reply.msgId)!.message;
    expect(got.replyTo).toBe(first.msgId);
    expect(got.quoted?.content?.text).toBe("lunch?");

    const edited = await h.edit(first.msgId, { text: "lunch at 12?" });
    expect(edited.content?.text).toBe("lunch at 12?");
    expect(edited.editedAt).toBeGreaterThan(0);
    const r = await i.addReaction(first.msgId, "👍");
    expect(r).toMatchObject({ reaction: "👍", count: 1, reacted: true });
    const users = await h.reactionUsers(first.msgId, "👍");
    expect(users.users.map((u) => u.userId)).toEqual(["iris"]);
    const ext = await h.updateExtensions(first.msgId, [{ key: "poll:yes", value: "1", expectedVersion: 0 }]);
    expect(ext.extensions).toEqual([expect.objectContaining({ key: "poll:yes", value: "1", version: 1 })]);
    await expect(h.updateExtensions(first.msgId, [{ key: "poll:yes", value: "2", expectedVersion: 0 }])).rejects.toMatchObject({
      code: "version_conflict",
    });
    await until("iris sees the edit", () => iChanges.some((c) => c.change.change.case === "edit"));

    await h.recall(first.msgId);
    await until("iris sees the recall", () => iChanges.some((c) => c.change.change.case === "recall"));
    await expect(i.addReaction(first.msgId, "👍")).rejects.toMatchObject({ code: "message_recalled" });

    await i.deleteForMe([reply.msgId]);
    const left = await i.history(first.conversationId);
    expect(left.map((m) => m.msgId)).not.toContain(reply.msgId);
    // Each change version went to the app once.
    const versions = iChanges.map((c) => c.change.version);
    expect(new Set(versions).size).toBe(versions.length);
  });

  it("groups: create, send, members, read counts, leave", async () => {
    const g = await h.createGroup({ groupId: "g-ts", name: "TS", members: ["iris"], metadata: { topic: "sdk" } });
    expect(g).toMatchObject({ groupId: "g-ts", owner: "hank", memberCount: 2, metadata: { topic: "sdk" } });
    const got = collect(i, "message");
    const ack = await h.sendText({ group: "g-ts" }, "welcome", { mentions: ["iris"] });
    await until("the group message", () => texts(got).includes("welcome"));
    expect(got.find((e) => e.message.msgId === ack.msgId)?.message.mentions).toEqual(["iris"]);
    const members = await h.listMembers("g-ts");
    expect(members.members.map((m) => m.userId).sort()).toEqual(["hank", "iris"]);
    await h.setMemberRole("g-ts", "iris", "admin");
    expect((await h.getMember("g-ts", "iris")).role).toBe("admin");
    await i.read(ack.conversationId, ack.seq);
    const counts = await h.getReadCounts("g-ts", [ack.msgId]);
    expect(counts.counts[0]).toMatchObject({ msgId: ack.msgId, read: 1 });
    expect((await i.listMyGroups()).groups.map((x) => x.groupId)).toContain("g-ts");
    await i.leaveGroup("g-ts");
    await expect(i.sendText({ group: "g-ts" }, "still here?")).rejects.toMatchObject({ code: "forbidden" });
    await expect(h.getGroup("no-such-group")).rejects.toMatchObject({ code: "not_found" });
  });

  it("rooms: join, send, leave", async () => {
    const joined = await h.joinRoom("lobby");
    expect(joined.conversationId).toBe("r:lobby");
    await i.joinRoom("lobby");
    const got = collect(i, "message");
    await h.sendText({ room: "lobby" }, "hello room");
    await until("the room message", () => texts(got).includes("hello room"));
    expect((await h.getRoom("lobby")).memberCount).toBe(2);
    await i.leaveRoom("lobby");
    await expect(i.sendText({ room: "lobby" }, "x")).rejects.toMatchObject({ code: "not_in_room" });
  });

  it("friends and blocks", async () => {
    const notes = collect(i, "notification");
    const req = await h.sendFriendRequest("iris", "hi, it's Hank");
    expect(req).toMatchObject({ from: "hank", to: "iris", state: "pending" });
    await until("the friend request notification", () => notes.some((n) => n.content.type === "friend_request"));
    expect((await i.listFriendRequests()).requests.length).toBeGreaterThan(0);
    await i.answerFriendRequest("hank", true);
    expect((await h.listFriends()).friends.map((f) => f.friendId)).toEqual(["iris"]);
    const f = await h.updateFriend({ friendId: "iris", remark: "Iris W", tags: ["work"], setTags: true });
    expect(f).toMatchObject({ remark: "Iris W", tags: ["work"] });
    await h.deleteFriend("iris");
    await i.blockUser("hank");
    expect((await i.listBlocks()).userIds).toEqual(["hank"]);
    await expect(h.sendText({ user: "iris" }, "hey")).rejects.toMatchObject({ code: "blocked" });
    await i.unblockUser("hank");
    await h.sendText({ user: "iris" }, "hey again");
  });

  it("bad input gets the documented codes and the connection stays", async () => {
    await expect(h.send({ user: "iris" }, "no-such-type", { text: "x" })).rejects.toMatchObject({ code: "invalid_argument" });
    // Over 64 KiB: refused before it is queued (the server would close the connection).
    await expect(h.sendText({ user: "iris" }, "x".repeat(70_000))).rejects.toMatchObject({ code: "frame_too_large" });
    expect(h.queuedSends).toBe(0);
    // Under the frame limit but over the app's text limit: the server's code.
    await expect(h.sendText({ user: "iris" }, "x".repeat(20_000))).rejects.toMatchObject({ code: "content_too_large" });
    await expect(h.history("d:nobody:else")).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(h.history("g:no-such-group")).rejects.toMatchObject({ code: "not_found" });
    await expect(h.recall("m_does_not_exist")).rejects.toMatchObject({ code: "invalid_argument" });
    expect(h.state).toBe("connected");
    expect(await h.ping()).toBeGreaterThan(0);
  });
});
