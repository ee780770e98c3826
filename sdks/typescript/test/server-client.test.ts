// The signed REST client against a real `tern serve`: the operations a backend uses, and
// the documented error codes for wrong credentials and bad input.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServerApiError, ServerClient, signRequest } from "../src/server/index.js";
import { TernServer, type App } from "./tern.js";

let server: TernServer;
let app: App;
let api: ServerClient;

beforeAll(async () => {
  server = await TernServer.start();
  app = server.createApp();
  api = new ServerClient({ baseUrl: server.base, appKey: app.appKey, appSecret: app.appSecret });
});

afterAll(async () => server?.stop());

async function failure(p: Promise<unknown>): Promise<ServerApiError> {
  const e = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(e).toBeInstanceOf(ServerApiError);
  return e as ServerApiError;
}

describe("server API", () => {
  it("users, tokens, messages and history", async () => {
    const up = await api.upsertUsers([{ id: "alice", name: "Alice" }, { id: "bob", name: "Bob" }]);
    expect(up.users.map((u) => u.id)).toEqual(["alice", "bob"]);
    const alice = await api.getUser("alice");
    expect(alice).toMatchObject({ id: "alice", name: "Alice", online: false });

    const t = await api.issueUserToken("alice", 600);
    expect(t.token.split(".")).toHaveLength(3);
    expect(t.expires_at).toBeGreaterThan(Date.now() / 1000);

    const body = { from: "alice", to: { user: "bob" }, client_msg_id: "c-1", type: "text", content: { text: "hi" } };
    const first = await api.sendMessage(body);
    expect(first).toMatchObject({ conversation_id: "d:alice:bob", seq: 1 });
    // Idempotent: the same client_msg_id answers the first answer and stores nothing new.
    const again = await api.sendMessage(body);
    expect(again.msg_id).toBe(first.msg_id);
    await api.sendMessage({ ...body, client_msg_id: "c-2", content: { text: "there" } });
    const page = await api.history("d:alice:bob", { after_seq: 0, limit: 10 });
    expect(page.messages.map((m) => [m.seq, m.content?.text])).toEqual([
      [1, "hi"],
      [2, "there"],
    ]);

    // Any operation through the typed `request`, with a query that is signed too.
    const convs = await api.request("get", "/v1/users/{user_id}/conversations", {
      path: { user_id: "bob" },
      query: { limit: 10 },
    });
    expect(convs.conversations[0]).toMatchObject({ conversation_id: "d:alice:bob", last_seq: 2, unread: 2 });
  });

  it("groups", async () => {
    await api.upsertUsers([{ id: "carol" }]);
    const g = await api.createGroup({ id: "g1", name: "G1", owner: "alice", members: ["bob"] });
    expect(g).toMatchObject({ id: "g1", owner: "alice" });
    await api.addMembers("g1", ["carol"]);
    const members = await api.request("get", "/v1/groups/{group_id}/members", { path: { group_id: "g1" } });
    expect(members.members.map((m) => m.user_id).sort()).toEqual(["alice", "bob", "carol"]);
    await api.removeMember("g1", "carol");
    const e = await failure(api.createGroup({ id: "g1", name: "again", owner: "alice" }));
    expect([e.status, e.code]).toEqual([409, "conflict"]);
  });

  it("PUT, PATCH and DELETE, and list parameters sent as query (paged)", async () => {
    await api.upsertUsers([{ id: "u1" }, { id: "u2" }, { id: "u3" }, { id: "u4" }]);
    const patched = await api.request("patch", "/v1/users/{user_id}", { path: { user_id: "u1" }, body: { name: "User One" } });
    expect(patched.name).toBe("User One");
    for (const b of ["u2", "u3", "u4"]) {
      await api.request("put", "/v1/users/{user_id}/blocks/{blocked_id}", { path: { user_id: "u1", blocked_id: b } });
    }
    const first = await api.request("get", "/v1/users/{user_id}/blocks", { path: { user_id: "u1" }, query: { limit: 2 } });
    expect(first.blocks.map((x) => x.blocked_id)).toHaveLength(2);
    expect(first.next_cursor).toBeTruthy();
    const rest = await api.request("get", "/v1/users/{user_id}/blocks", {
      path: { user_id: "u1" },
      query: { limit: 2, cursor: first.next_cursor },
    });
    expect([...first.blocks, ...rest.blocks].map((x) => x.blocked_id).sort()).toEqual(["u2", "u3", "u4"]);
    await api.request("delete", "/v1/users/{user_id}/blocks/{blocked_id}", { path: { user_id: "u1", blocked_id: "u2" } });
    const after = await api.request("get", "/v1/users/{user_id}/blocks", { path: { user_id: "u1" } });
    expect(after.blocks.map((x) => x.blocked_id).sort()).toEqual(["u3", "u4"]);
  });

  it("ids with reserved characters are encoded in the path and signed as sent", async () => {
    await api.upsertUsers([{ id: "dan.o-neil@example.com" }]);
    expect((await api.getUser("dan.o-neil@example.com")).id).toBe("dan.o-neil@example.com");
    const convId = (await api.sendMessage({ from: "dan.o-neil@example.com", to: { user: "alice" }, type: "text", content: { text: "x" } }))
      .conversation_id;
    expect(convId).toContain(":");
    const page = await api.history(convId, { after_seq: 0 });
    expect(page.messages).toHaveLength(1);
  });
});

describe("errors carry the documented code", () => {
  it("a wrong secret is bad_signature (401)", async () => {
    const wrong = new ServerClient({ baseUrl: server.base, appKey: app.appKey, appSecret: "sk_wrong" });
    const e = await failure(wrong.getUser("alice"));
    expect([e.status, e.code]).toEqual([401, "bad_signature"]);
    expect(e.requestId).not.toBe("");
  });

  it("an unknown app key is unknown_app_key", async () => {
    const nobody = new ServerClient({ baseUrl: server.base, appKey: "ak_nobody", appSecret: app.appSecret });
    expect((await failure(nobody.getUser("alice"))).code).toBe("unknown_app_key");
  });

  it("missing headers, an old timestamp, a reused nonce", async () => {
    const url = `${server.base}/v1/users/alice`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect((await none.json()).error.code).toBe("missing_credentials");

    const old = signRequest(app.appKey, app.appSecret, "GET", "/v1/users/alice", "", {
      timestamp: Math.floor(Date.now() / 1000) - 301,
    });
    expect((await (await fetch(url, { headers: old })).json()).error.code).toBe("timestamp_out_of_window");

    const once = signRequest(app.appKey, app.appSecret, "GET", "/v1/users/alice", "", { nonce: "nonce-used-only-once-1" });
    expect((await fetch(url, { headers: once })).status).toBe(200);
    expect((await (await fetch(url, { headers: once })).json()).error.code).toBe("nonce_reused");
  });

  it("bad input: not found, invalid arguments, an oversized body", async () => {
    const nf = await failure(api.getUser("no-such-user"));
    expect([nf.status, nf.code]).toEqual([404, "not_found"]);
    const bad = await failure(
      api.sendMessage({ from: "alice", to: { user: "bob" }, client_msg_id: "c-x", type: "nonsense", content: {} }),
    );
    expect([bad.status, bad.code]).toEqual([400, "invalid_argument"]);
    const unknownField = await failure(api.raw("POST", "/v1/users", { users: [{ id: "x" }], surprise: 1 }));
    expect(unknownField.code).toBe("invalid_json");
    const big = await failure(api.raw("POST", "/v1/users", { users: [{ id: "y", name: "x".repeat(300 * 1024) }] }));
    expect([big.status, big.code]).toEqual([413, "payload_too_large"]);
    await expect(api.getUser("")).rejects.toThrow(/user_id/);
  });

  it("Retry-After is read into the error", async () => {
    const limited = new ServerClient({
      baseUrl: "http://127.0.0.1:9",
      appKey: "ak",
      appSecret: "sk",
      fetch: async () =>
        new Response(JSON.stringify({ error: { code: "rate_limited", message: "slow down", request_id: "r1" } }), {
          status: 429,
          headers: { "retry-after": "7", "x-request-id": "r1" },
        }),
    });
    const e = await failure(limited.getUser("alice"));
    expect(e).toMatchObject({ status: 429, code: "rate_limited", retryAfterSeconds: 7, requestId: "r1" });
  });

  it("an unreachable server is network_error", async () => {
    const down = new ServerClient({ baseUrl: "http://127.0.0.1:9", appKey: "ak", appSecret: "sk", timeoutMs: 2000 });
    expect((await failure(down.getUser("alice"))).code).toBe("network_error");
  });
});
