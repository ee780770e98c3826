// Offline push from the TypeScript SDK against a real `tern serve` (docs/push.md): a device
// registers, rotates and removes its push token and the user sets do-not-disturb hours and
// mutes conversations over the WebSocket (commands 130-134, in both subprotocols), and what
// the user set is what the server API sees; the server client's push operations.

import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, ClientError } from "../src/index.node.js";
import { ServerApiError, ServerClient, mintUserToken } from "../src/server/index.js";
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

async function connected(user: string, protocol: "proto" | "json"): Promise<Client> {
  await api.upsertUsers([{ id: user, name: user }]);
  const token = mintUserToken(app.appKey, app.appSecret, user, { ttlSeconds: 3600 });
  const c = new Client({ url: server.base, token, protocol, minBackoffMs: 100, maxBackoffMs: 1000 });
  clients.push(c);
  await c.connect();
  return c;
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ClientError || e instanceof ServerApiError) return e.code;
    throw e;
  }
  throw new Error("it succeeded");
}

const APNS_TOKEN = "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90";
const ROTATED = "00000000000000000000000000000000000000000000000000000000000000ff";

describe.each(["proto", "json"] as const)("push over tern.v1.%s", (protocol) => {
  it("a phone registers, rotates and removes its token; the server API sees each step", async () => {
    const user = `pp-ann-${protocol}`;
    const ann = await connected(user, protocol);

    const phone = await ann.registerPushToken({ provider: "apns", token: APNS_TOKEN, environment: "sandbox", locale: "en-US" });
    expect(phone.deviceId).toMatch(/^dev_/);
    expect(phone).toMatchObject({ provider: "apns", token: APNS_TOKEN.toLowerCase(), environment: "sandbox", locale: "en-US" });
    expect(phone.createdAt).toBeGreaterThan(Date.now() - 60_000);
    const web = await ann.registerPushToken({ provider: "fcm", token: `fcm:${protocol}-browser` });
    expect(web.environment).toBe("production");
    // The same token again keeps its device id.
    const again = await ann.registerPushToken({ provider: "apns", token: APNS_TOKEN, environment: "sandbox" });
    expect(again.deviceId).toBe(phone.deviceId);

    let listed = (await api.listDevices(user)).devices;
    expect(listed.map((d) => d.device_id).sort()).toEqual([phone.deviceId, web.deviceId].sort());

    // Apple rotated the token; the locale is cleared.
    const rotated = await ann.updatePushToken(phone.deviceId, { token: ROTATED, locale: "" });
    expect(rotated).toMatchObject({ deviceId: phone.deviceId, token: ROTATED });
    expect(rotated.locale).toBeUndefined();
    listed = (await api.listDevices(user)).devices;
    expect(listed.find((d) => d.device_id === phone.deviceId)).toMatchObject({ token: ROTATED, locale: null });

    // Bad input gets stable codes and changes nothing.
    expect(await code(ann.registerPushToken({ provider: "apns", token: "not-hex" }))).toBe("invalid_argument");
    expect(await code(ann.registerPushToken({ provider: "huawei" as "fcm", token: "t" }))).toBe("invalid_argument");
    expect(await code(ann.updatePushToken("dev_nope", { locale: "fr" }))).toMatch(/^(not_found|invalid_argument)$/);

    // Another user's device is not this user's to change or remove.
    const bo = await connected(`pp-bo-${protocol}`, protocol);
    expect(await code(bo.removePushToken(phone.deviceId))).toBe("not_found");
    expect(await code(bo.updatePushToken(phone.deviceId, { locale: "fr" }))).toBe("not_found");

    // Sign-out: the phone is removed.
    await ann.removePushToken(phone.deviceId);
    listed = (await api.listDevices(user)).devices;
    expect(listed.map((d) => d.device_id)).toEqual([web.deviceId]);
    expect(await code(ann.removePushToken(phone.deviceId))).toBe("not_found");
  });

  it("a user sets do-not-disturb hours and mutes a conversation, all or nothing", async () => {
    const user = `pp-cy-${protocol}`;
    const cy = await connected(user, protocol);
    await api.upsertUsers([{ id: `pp-dee-${protocol}`, name: "Dee" }]);
    const direct = `d:${[user, `pp-dee-${protocol}`].sort().join(":")}`;

    expect(await cy.pushSettings()).toEqual({ mutedConversations: [] });
    const set = await cy.updatePushSettings({
      dnd: { start: "22:00", end: "07:30", utcOffsetMinutes: 60 },
      mute: [direct],
    });
    expect(set).toEqual({ dnd: { start: "22:00", end: "07:30", utcOffsetMinutes: 60 }, mutedConversations: [direct] });
    expect(await cy.pushSettings()).toEqual(set);
    // The server API sees what the user chose.
    const seen = await api.pushSettings(user);
    expect(seen).toEqual({ dnd: { start: "22:00", end: "07:30", utc_offset_minutes: 60 }, muted_conversations: [direct] });

    // Refused as a whole: a room cannot be muted, a time must be one, dnd and clear_dnd conflict.
    expect(await code(cy.updatePushSettings({ unmute: [direct], mute: ["r:lobby"] }))).toBe("invalid_argument");
    expect(await code(cy.updatePushSettings({ dnd: { start: "25:00", end: "07:00" } }))).toBe("invalid_argument");
    expect(await code(cy.updatePushSettings({ dnd: { start: "22:00", end: "07:00" }, clearDnd: true }))).toBe(
      "invalid_argument",
    );
    expect(await code(cy.updatePushSettings({ mute: ["d:someone:else"] }))).toBe("invalid_argument");
    expect(await cy.pushSettings()).toEqual(set);

    const cleared = await cy.updatePushSettings({ clearDnd: true, unmute: [direct] });
    expect(cleared).toEqual({ mutedConversations: [] });
    expect(await api.pushSettings(user)).toEqual({ dnd: null, muted_conversations: [] });
  });
});

describe("the server client's push operations", () => {
  it("devices, settings, credentials, test pushes and the log, with stable codes", async () => {
    await api.upsertUsers([{ id: "sv-eve", name: "Eve" }]);
    const d = await api.registerDevice("sv-eve", { provider: "fcm", token: "eve-tablet", locale: "de-DE" });
    expect(d).toMatchObject({ user_id: "sv-eve", provider: "fcm", token: "eve-tablet", locale: "de-DE" });
    const changed = await api.updateDevice("sv-eve", d.device_id, { token: "eve-tablet-2" });
    expect(changed.token).toBe("eve-tablet-2");
    expect((await api.listDevices("sv-eve")).devices).toHaveLength(1);

    const settings = await api.updatePushSettings("sv-eve", { dnd: { start: "23:00", end: "06:00" } });
    expect(settings.dnd).toMatchObject({ start: "23:00", end: "06:00", utc_offset_minutes: 0 });

    // Without FCM credentials, a test push says why nothing was sent.
    expect(await code(api.testPush("sv-eve", d.device_id))).toBe("push_not_configured");
    // A key that does not load is refused when set; a real P-256 key is kept, never shown back.
    const bad = { key_id: "ABC123DEFG", team_id: "TEAM123456", bundle_id: "com.example.chat", private_key: "nope" };
    expect(await code(api.setApnsCredentials(bad))).toBe("invalid_push_credentials");
    const p8 = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey.export({ type: "pkcs8", format: "pem" });
    const set = await api.setApnsCredentials({ ...bad, private_key: String(p8) });
    expect(set).toMatchObject({ provider: "apns", summary: { key_id: "ABC123DEFG", team_id: "TEAM123456" } });
    const creds = await api.pushCredentials();
    expect(creds.credentials.map((c) => c.provider)).toEqual(["apns"]);
    expect(JSON.stringify(creds)).not.toContain("PRIVATE KEY");
    await api.removePushCredentials("apns");
    expect((await api.pushCredentials()).credentials).toEqual([]);
    expect(await code(api.removePushCredentials("apns"))).toBe("not_found");

    // Nothing was pushed: the log is empty, and its filters are checked.
    expect((await api.pushLog({ user_id: "sv-eve" })).entries).toEqual([]);
    expect(await code(api.pushLog({ device_id: "phone" }))).toBe("invalid_argument");

    await api.removeDevice("sv-eve", d.device_id);
    expect((await api.listDevices("sv-eve")).devices).toEqual([]);
    expect(await code(api.listDevices("sv-nobody"))).toBe("not_found");
  });
});
