// The signed REST client for a tenant's backend (Node 18+, global fetch). Every
// operation of docs/openapi.json is callable, typed from it, through `request`; the
// common ones have named methods. Errors are `ServerApiError` with the stable code and,
// for `rate_limited`/`unavailable`, `Retry-After`.

import { ServerApiError } from "../errors.js";
import type { components, paths } from "../gen/openapi.js";
import { fetchBytes, sendBytes, sha256Hex, uploadOffset, type SendBytesOptions } from "./files.js";
import { mintUserToken, newNonce, signRequest, unixNow, type UserTokenOptions } from "./signing.js";

export type Schemas = components["schemas"];
export type HttpMethod = "get" | "post" | "put" | "patch" | "delete";

/** The paths that have an operation for this method. */
export type PathsFor<M extends HttpMethod> = {
  [P in keyof paths]: paths[P][M] extends { responses: unknown } ? P : never;
}[keyof paths];

type Operation<P extends keyof paths, M extends HttpMethod> = NonNullable<paths[P][M]>;
type JsonContent<T> = T extends { content: { "application/json": infer B } } ? B : never;
type RequiredBody<O> = O extends { requestBody: infer R } ? JsonContent<R> : never;
type OptionalBody<O> = O extends { requestBody?: infer R } ? JsonContent<NonNullable<R>> : never;
type PathOf<O> = O extends { parameters: { path: infer P } } ? (P extends Record<string, unknown> ? P : never) : never;
type QueryOf<O> = O extends { parameters: { query?: infer Q } } ? Q : never;
/** Query parameters as given: `null` counts as absent, so a page's `next_cursor` passes as it is. */
type NullableQuery<Q> = { [K in keyof Q]?: Q[K] | null };
/** The JSON answer of an operation (its 2xx content). */
export type AnswerOf<O> = O extends { responses: infer R }
  ? 200 extends keyof R
    ? JsonContent<R[200]>
    : 201 extends keyof R
      ? JsonContent<R[201]>
      : unknown
  : unknown;

/** What a typed request takes besides method and path: only the parts the operation has. */
export type RequestParts<O> = ([PathOf<O>] extends [never] ? { path?: undefined } : { path: PathOf<O> }) &
  ([QueryOf<O>] extends [never] ? { query?: undefined } : { query?: NullableQuery<QueryOf<O>> }) &
  ([RequiredBody<O>] extends [never]
    ? [OptionalBody<O>] extends [never]
      ? { body?: undefined }
      : { body?: OptionalBody<O> }
    : { body: RequiredBody<O> });

export interface ServerClientOptions {
  /** The server's HTTP root, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  appKey: string;
  appSecret: string;
  /** Per request; 15 s by default. */
  timeoutMs?: number;
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof fetch;
}

/** Percent-encodes one path segment (conversation ids hold `:`). */
export function encodeSegment(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

function buildQuery(query: Record<string, unknown> | undefined): string {
  if (!query) return "";
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null) continue;
    const values = Array.isArray(v) ? v : [v];
    for (const item of values) parts.push(`${encodeSegment(k)}=${encodeSegment(String(item))}`);
  }
  return parts.length ? "?" + parts.join("&") : "";
}

export class ServerClient {
  readonly baseUrl: string;
  readonly appKey: string;
  readonly #secret: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: ServerClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.appKey = options.appKey;
    this.#secret = options.appSecret;
    this.#timeoutMs = options.timeoutMs ?? 15_000;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /**
   * Any operation of the server API, typed from docs/openapi.json:
   * `request("get", "/v1/users/{user_id}", { path: { user_id: "alice" } })`.
   */
  async request<M extends HttpMethod, P extends PathsFor<M>>(
    method: M,
    path: P,
    parts: RequestParts<Operation<P, M>>,
  ): Promise<AnswerOf<Operation<P, M>>> {
    const p = parts as { path?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown };
    let target = String(path).replace(/\{([a-z_]+)\}/g, (_, name: string) => {
      const v = p.path?.[name];
      if (v === undefined || v === null || v === "") throw new TypeError(`missing path parameter ${name}`);
      return encodeSegment(String(v));
    });
    target += buildQuery(p.query);
    return (await this.raw(method.toUpperCase(), target, p.body)) as AnswerOf<Operation<P, M>>;
  }

  /**
   * A signed request with the target sent (and signed) exactly as given; for paths this
   * SDK's types do not know yet. Resolves to the parsed JSON answer.
   */
  async raw(method: string, pathAndQuery: string, body?: unknown): Promise<unknown> {
    const bytes = body === undefined ? "" : JSON.stringify(body);
    const headers: Record<string, string> = signRequest(this.appKey, this.#secret, method, pathAndQuery, bytes, {
      timestamp: unixNow(),
      nonce: newNonce(),
    });
    if (body !== undefined) headers["content-type"] = "application/json";
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#timeoutMs);
    let res: Response;
    try {
      res = await this.#fetch(this.baseUrl + pathAndQuery, {
        method,
        headers,
        body: body === undefined ? undefined : bytes,
        signal: controller.signal,
      });
    } catch (e) {
      throw new ServerApiError(0, "network_error", `${method} ${pathAndQuery}: ${(e as Error).message}`, "");
    } finally {
      clearTimeout(timer);
    }
    const text = await res.text();
    const requestId = res.headers.get("x-request-id") ?? "";
    if (!res.ok) {
      const retryAfter = res.headers.get("retry-after");
      const retryAfterSeconds = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : undefined;
      let code = "http_" + res.status;
      let message = text.slice(0, 500);
      try {
        const env = JSON.parse(text) as { error?: { code?: string; message?: string; request_id?: string } };
        if (env.error?.code) {
          code = env.error.code;
          message = env.error.message ?? "";
        }
      } catch {
        // not Tern's error shape (a proxy's page): keep the status as the code
      }
      throw new ServerApiError(res.status, code, message, requestId, retryAfterSeconds);
    }
    if (text === "") return {};
    try {
      return JSON.parse(text);
    } catch {
      throw new ServerApiError(res.status, "invalid_answer", "the server's answer is not JSON", requestId);
    }
  }

  // ---- users and tokens ----

  /** Creates or updates 1–100 users. */
  upsertUsers(users: Schemas["UpsertUsers"]["users"]) {
    return this.request("post", "/v1/users", { body: { users } });
  }

  getUser(userId: string) {
    return this.request("get", "/v1/users/{user_id}", { path: { user_id: userId } });
  }

  deleteUser(userId: string) {
    return this.request("delete", "/v1/users/{user_id}", { path: { user_id: userId } });
  }

  /** Asks Tern for a user token (`ttlSeconds` up to the app's maximum lifetime). */
  issueUserToken(userId: string, ttlSeconds?: number) {
    return this.request("post", "/v1/users/{user_id}/tokens", {
      path: { user_id: userId },
      body: ttlSeconds === undefined ? {} : { ttl_seconds: ttlSeconds },
    });
  }

  /** Mints a user token locally with the AppSecret (no call to Tern). */
  mintUserToken(userId: string, options?: UserTokenOptions): string {
    return mintUserToken(this.appKey, this.#secret, userId, options);
  }

  /** Revokes the user's earlier tokens and closes their sessions. */
  revokeTokens(userId: string) {
    return this.request("post", "/v1/users/{user_id}/tokens/revoke", { path: { user_id: userId } });
  }

  kick(userId: string) {
    return this.request("post", "/v1/users/{user_id}/kick", { path: { user_id: userId } });
  }

  // ---- messages ----

  /** Sends a message as a user (`from`) or as the system; idempotent on `client_msg_id`. */
  sendMessage(message: Schemas["SendMessage"]) {
    return this.request("post", "/v1/messages", { body: message });
  }

  /** Messages after `afterSeq` (or before `beforeSeq`), oldest first. */
  history(conversationId: string, query: { after_seq?: number; before_seq?: number; limit?: number } = {}) {
    return this.request("get", "/v1/conversations/{conversation_id}/messages", {
      path: { conversation_id: conversationId },
      query,
    });
  }

  recall(msgId: string) {
    return this.request("post", "/v1/messages/{msg_id}/recall", { path: { msg_id: msgId } });
  }

  // ---- groups ----

  createGroup(group: Schemas["CreateGroup"]) {
    return this.request("post", "/v1/groups", { body: group });
  }

  addMembers(groupId: string, members: string[]) {
    return this.request("post", "/v1/groups/{group_id}/members", { path: { group_id: groupId }, body: { members } });
  }

  removeMember(groupId: string, userId: string) {
    return this.request("delete", "/v1/groups/{group_id}/members/{user_id}", {
      path: { group_id: groupId, user_id: userId },
    });
  }

  // ---- files (docs/files.md) ----

  /** Announces a file (name, size, type, hex SHA-256); the answer's `upload_url` takes its bytes (tus 1.0). */
  createFile(file: Schemas["CreateFile"]) {
    return this.request("post", "/v1/files", { body: file });
  }

  /**
   * Uploads `data` as a file of `uploader`: announces it with its SHA-256, then sends the
   * bytes to the tus upload URL in pieces, resuming after a dropped connection. Resolves
   * with the file once it is complete.
   */
  async uploadFile(
    upload: { uploader: string; name: string; contentType: string; data: Uint8Array },
    options: SendBytesOptions = {},
  ) {
    const ticket = await this.createFile({
      uploader: upload.uploader,
      name: upload.name,
      size: upload.data.length,
      content_type: upload.contentType,
      sha256: sha256Hex(upload.data),
    });
    await sendBytes(this.#fetch, ticket.upload_url, upload.data, options);
    return this.fileUrl(ticket.file_id);
  }

  /** Sends the rest of `data` to an upload URL handed out earlier (say, before a restart). */
  resumeUpload(uploadUrl: string, data: Uint8Array, options: SendBytesOptions = {}): Promise<void> {
    return sendBytes(this.#fetch, uploadUrl, data, options);
  }

  /** How many bytes of an upload the server holds. */
  uploadOffset(uploadUrl: string): Promise<number> {
    return uploadOffset(this.#fetch, uploadUrl, this.#timeoutMs);
  }

  /**
   * An expiring download URL (and `thumbnail_url` for an image) of a complete file: for
   * `user` if they uploaded it or are in a conversation it was sent in, else `not_found`;
   * without `user`, for the app's backend itself.
   */
  fileUrl(fileId: string, user?: string) {
    return this.request("get", "/v1/files/{file_id}", { path: { file_id: fileId }, query: { user } });
  }

  /** The bytes of a complete file (by way of `fileUrl`). */
  async downloadFile(fileId: string, user?: string): Promise<Uint8Array> {
    const d = await this.fileUrl(fileId, user);
    return fetchBytes(this.#fetch, d.url, this.#timeoutMs);
  }

  /** What the app keeps in the file store, its quota and largest file. */
  storage() {
    return this.request("get", "/v1/app/storage", {});
  }

  // ---- offline push (docs/push.md) ----

  /** Registers a device of `userId` for offline pushes; the same token again keeps its device id. */
  registerDevice(userId: string, device: Schemas["RegisterDevice"]) {
    return this.request("post", "/v1/users/{user_id}/devices", { path: { user_id: userId }, body: device });
  }

  /** The devices `userId` registered, oldest first. */
  listDevices(userId: string) {
    return this.request("get", "/v1/users/{user_id}/devices", { path: { user_id: userId } });
  }

  /** A rotated token, or a new environment or locale (`""` clears it), for a device of `userId`. */
  updateDevice(userId: string, deviceId: string, change: Schemas["UpdateDevice"]) {
    return this.request("patch", "/v1/users/{user_id}/devices/{device_id}", {
      path: { user_id: userId, device_id: deviceId },
      body: change,
    });
  }

  removeDevice(userId: string, deviceId: string) {
    return this.request("delete", "/v1/users/{user_id}/devices/{device_id}", {
      path: { user_id: userId, device_id: deviceId },
    });
  }

  /** Sends a test notification to one device now; answers with its log line (the provider's status and reason). */
  testPush(userId: string, deviceId: string) {
    return this.request("post", "/v1/users/{user_id}/devices/{device_id}/test-push", {
      path: { user_id: userId, device_id: deviceId },
    });
  }

  /** `userId`'s do-not-disturb hours and muted conversations. */
  pushSettings(userId: string) {
    return this.request("get", "/v1/users/{user_id}/push-settings", { path: { user_id: userId } });
  }

  /** Changes `userId`'s push settings: `dnd` (`null` clears), `mute`, `unmute`. */
  updatePushSettings(userId: string, change: Schemas["UpdatePushSettings"]) {
    return this.request("patch", "/v1/users/{user_id}/push-settings", { path: { user_id: userId }, body: change });
  }

  /** The delivery log, newest first, by user, device or message; pass `next_cursor` on. */
  pushLog(query: { user_id?: string; device_id?: string; msg_id?: string; cursor?: string | null; limit?: number } = {}) {
    return this.request("get", "/v1/push/log", { query });
  }

  /** The app's APNs and FCM credentials, by provider (never the keys). */
  pushCredentials() {
    return this.request("get", "/v1/push/credentials", {});
  }

  /** Sets the APNs token-auth credentials (the .p8 key's text, key id, team id, bundle id). */
  setApnsCredentials(credentials: Schemas["SetApnsCredentials"]) {
    return this.request("put", "/v1/push/credentials/apns", { body: credentials });
  }

  /** Sets the FCM HTTP v1 credentials (the service-account JSON, as an object or its text). */
  setFcmCredentials(serviceAccount: Record<string, unknown> | string) {
    // The server takes the JSON's text as well as the object (the schema names only the object).
    const service_account = serviceAccount as Record<string, unknown>;
    return this.request("put", "/v1/push/credentials/fcm", { body: { service_account } });
  }

  removePushCredentials(provider: "apns" | "fcm") {
    return this.request("delete", "/v1/push/credentials/{provider}", { path: { provider } });
  }
}
