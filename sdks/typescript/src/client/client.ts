// The real-time `Client`: one WebSocket to `/v1/connect`, kept alive by reconnecting with
// jittered exponential backoff forever (and at once when the browser comes back online).
// After every (re)connect it re-authenticates (asking the token provider when the token
// is refused or about to expire), re-joins rooms and presence subscriptions, syncs the
// conversation list by version, pulls every message it missed by conversation seq, and
// resends unacknowledged sends with their original `client_msg_id`. The app gets each
// message once, in seq order per conversation, as typed events.

import { create, fromJson, toJson, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import {
  ClientFrameSchema,
  Platform,
  SendSchema,
  type ClientFrame,
  type ServerFrame,
} from "../gen/tern/v1/client_pb.js";
import { ClientError, TOKEN_CODES } from "../errors.js";
import { BadFrame, MAX_FRAME_BYTES, decodeServerFrame, encodeClientFrame, type Subprotocol } from "./codec.js";
import { defaultOutbox, type OutboxEntry, type OutboxStore } from "./outbox.js";
import { toPlain, type Plain } from "./plain.js";
import { getDefaultSocketFactory, type SocketFactory, type SocketLike } from "./socket.js";
import { Timeline, type Out } from "./timeline.js";
import type {
  Conversation,
  ConnectionState,
  EventMap,
  EventType,
  Message,
  MessageChange,
  PushDevice,
  PushSettings,
  PushSettingsChange,
  PushTokenChange,
  PushTokenInit,
  SendAck,
  Target,
  TernEvent,
} from "./types.js";

/** Answers to a history pull that say "not now" rather than "never": asked again later. */
const RETRYABLE = new Set(["rate_limited", "unavailable", "internal"]);

/** How long to wait before asking again after the `refusals`-th refusal in a row: the
 * server's `retry_after_ms` if longer, else 1 s doubling to 30 s. */
function fillRetryMs(refusals: number, retryAfterMs: number): number {
  return Math.max(retryAfterMs, Math.min(1000 * 2 ** Math.min(refusals, 5), 30_000));
}

/** Page size of the history pulls that fill gaps. */
const FILL_PAGE = 100;

export type PlatformName = "ios" | "android" | "web" | "desktop" | "other";

export interface ClientOptions {
  /** `ws(s)://host/v1/connect`, or the server's root (`http://host:8080`): `/v1/connect` is added. */
  url: string;
  /** A user token (SIGNING.md §2). Give this or `tokenProvider`. */
  token?: string;
  /**
   * Returns a fresh user token (from the app's backend). Asked at connect, shortly before
   * the token expires, and once when the server refuses the token; if the server refuses
   * the fresh one too, the client closes with that code instead of looping.
   */
  tokenProvider?: () => Promise<string>;
  /** Stable per installation (1–128 characters); a random one by default. */
  deviceId?: string;
  /** `web` in a browser, `other` elsewhere, by default. */
  platform?: PlatformName;
  /** `proto` (binary, the default) or `json`. */
  protocol?: "proto" | "json";
  /** First reconnect delay (doubles per failure, with jitter); 500 ms by default. */
  minBackoffMs?: number;
  /** Longest reconnect delay; 30 s by default. */
  maxBackoffMs?: number;
  /** How long a command (and the connect and auth handshake) may take; 15 s by default. */
  requestTimeoutMs?: number;
  /** Where unacknowledged sends wait: IndexedDB in a browser, memory in Node, by default. */
  outbox?: OutboxStore;
  /** Makes the WebSocket; the platform's by default (`ws` in Node). */
  socketFactory?: SocketFactory;
}

/** Options of a send. */
export interface SendOptions {
  /** The idempotency key; a fresh one by default. Keep it to retry the same send. */
  clientMsgId?: string;
  /** Quotes this message of the same conversation. */
  replyTo?: string;
  /** Group members mentioned by name. */
  mentions?: string[];
  /** Mentions everyone (group owner and admins). */
  mentionAll?: boolean;
}

type CommandUnion = NonNullable<ClientFrame["command"]>;
type CommandCase = CommandUnion["case"];
type CommandInitUnion = NonNullable<MessageInitShape<typeof ClientFrameSchema>["command"]>;
type CommandInit<K extends CommandCase> = Omit<Extract<CommandInitUnion, { case: K }>["value"], "$typeName">;
type BodyUnion = NonNullable<ServerFrame["body"]>;
type BodyCase = BodyUnion["case"];
type BodyValue<B extends BodyCase> = Extract<BodyUnion, { case: B }>["value"];

/** Arguments of a command: its fields, numbers for 64-bit integers, plain JSON for Struct fields. */
export type Args<K extends CommandCase> = {
  [F in keyof CommandInit<K>]?: NonNullable<CommandInit<K>[F]> extends bigint
    ? number | bigint
    : F extends "content" | "metadata"
      ? JsonObject
      : CommandInit<K>[F];
};

type Pending =
  | { kind: "user"; resolve: (b: BodyUnion) => void; reject: (e: ClientError) => void; timer: ReturnType<typeof setTimeout> }
  | { kind: "send"; key: number }
  | { kind: "sync" }
  | { kind: "fill"; conv: string; after: number }
  | { kind: "changes"; conv: string }
  | { kind: "join" }
  | { kind: "presence" }
  | { kind: "ping" };

/** How a connection ended: retry (after backoff; from the shortest if it had been up), or stop for good. */
type End = { retry: string; wasUp?: boolean } | { stop: string; reason: string };

interface Queued {
  entry: OutboxEntry;
  resolve?: (ack: SendAck) => void;
  reject?: (e: ClientError) => void;
}

function randomId(prefix: string): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return prefix + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function platformOf(name: PlatformName | undefined): Platform {
  switch (name ?? (typeof window !== "undefined" ? "web" : "other")) {
    case "ios":
      return Platform.IOS;
    case "android":
      return Platform.ANDROID;
    case "web":
      return Platform.WEB;
    case "desktop":
      return Platform.DESKTOP;
    default:
      return Platform.OTHER;
  }
}

function connectUrl(url: string): string {
  let u = url.replace(/\/+$/, "");
  if (u.startsWith("http://")) u = "ws://" + u.slice(7);
  else if (u.startsWith("https://")) u = "wss://" + u.slice(8);
  return u.endsWith("/v1/connect") ? u : u + "/v1/connect";
}

/** `exp` of a JWT in Unix seconds, read without checking it (the server checks it). */
export function tokenExpiry(token: string): number | undefined {
  try {
    const part = token.split(".")[1];
    if (!part) return undefined;
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const claims = JSON.parse(json) as { exp?: unknown; iat?: unknown };
    return typeof claims.exp === "number" ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}

export class Client {
  readonly #url: string;
  readonly #options: ClientOptions;
  readonly #deviceId: string;
  readonly #protocol: Subprotocol;
  readonly #factory: SocketFactory;
  readonly #outboxStore: OutboxStore;
  readonly #handlers = new Map<EventType | "*", Set<(e: TernEvent) => void>>();

  #state: ConnectionState = "idle";
  #userId = "";
  #token: string | undefined;
  #tokenFresh = false;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #connecting: Promise<void> | undefined;
  #firstResolve: (() => void) | undefined;
  #firstReject: ((e: ClientError) => void) | undefined;
  #closed = false;
  #wake: (() => void) | undefined;

  // One connection at a time.
  #socket: SocketLike | undefined;
  #pending = new Map<string, Pending>();
  #nextId = 0;
  #endConnection: ((end: End) => void) | undefined;

  // What survives reconnects.
  #timelines = new Map<string, Timeline>();
  #version = 0;
  #syncSince = 0;
  #listedAll = false;
  #outbox = new Map<number, Queued>();
  #nextOutbox = 0;
  #rooms = new Set<string>();
  #watching = new Set<string>();
  #onlineListener: (() => void) | undefined;
  #offlineListener: (() => void) | undefined;

  constructor(options: ClientOptions) {
    if (!options.token && !options.tokenProvider) throw new ClientError("invalid_argument", "give a token or a tokenProvider");
    const factory = options.socketFactory ?? getDefaultSocketFactory();
    if (!factory) throw new ClientError("invalid_argument", "no WebSocket here: pass socketFactory (Node: import the package's Node entry)");
    this.#options = options;
    this.#url = connectUrl(options.url);
    this.#deviceId = options.deviceId ?? randomId("dev-");
    this.#protocol = options.protocol === "json" ? "tern.v1.json" : "tern.v1.proto";
    this.#factory = factory;
    this.#token = options.token;
    this.#outboxStore = options.outbox ?? defaultOutbox(`tern-outbox:${this.#deviceId}`);
  }

  /** The connection's state now. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The logged-in user (after the first `auth_ok`). */
  get userId(): string {
    return this.#userId;
  }

  get deviceId(): string {
    return this.#deviceId;
  }

  /** Which subprotocol this client speaks. */
  get protocol(): Subprotocol {
    return this.#protocol;
  }

  // ---- events ----

  /** Calls `handler` for every event of this type (`"*"`: every event); returns the unsubscribe. */
  on<K extends EventType>(type: K, handler: (e: EventMap[K]) => void): () => void;
  on(type: "*", handler: (e: TernEvent) => void): () => void;
  on(type: EventType | "*", handler: (e: never) => void): () => void {
    let set = this.#handlers.get(type);
    if (!set) this.#handlers.set(type, (set = new Set()));
    const h = handler as (e: TernEvent) => void;
    set.add(h);
    return () => set.delete(h);
  }

  #emit(e: TernEvent): void {
    for (const key of [e.type, "*"] as const) {
      for (const h of this.#handlers.get(key) ?? []) {
        try {
          h(e);
        } catch (err) {
          // An app handler's exception must not break the connection.
          setTimeout(() => {
            throw err;
          });
        }
      }
    }
  }

  #setState(state: ConnectionState, reason?: string, code?: string): void {
    this.#state = state;
    this.#emit({ type: "state", state, reason, code });
  }

  // ---- lifecycle ----

  /**
   * Connects and keeps connected until `close`. Resolves at the first `auth_ok`; rejects
   * only if the client closes for good first (a refused token, a kick, `close`). Calling it
   * again while connecting or connected returns the same promise: never a second socket.
   */
  connect(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClientError("closed", "the client is closed"));
    if (this.#connecting) return this.#connecting;
    this.#connecting = new Promise<void>((resolve, reject) => {
      this.#firstResolve = resolve;
      this.#firstReject = reject;
    });
    this.#listenToNetwork();
    void this.#run();
    return this.#connecting;
  }

  /** Closes for good: the socket closes, pending commands fail with `closed`. Queued sends stay in the outbox store. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    this.#unlistenToNetwork();
    this.#endConnection?.({ stop: "closed", reason: "closed by the app" });
    this.#wake?.();
    for (const q of this.#outbox.values()) q.reject?.(new ClientError("closed", "the client is closed"));
    for (const q of this.#outbox.values()) {
      q.resolve = undefined;
      q.reject = undefined;
    }
    if (this.#state !== "closed") this.#setState("closed", "closed by the app", "closed");
    this.#firstReject?.(new ClientError("closed", "the client is closed"));
  }

  /** Drops the current connection and reconnects at once (say, on a network change). */
  reconnectNow(): void {
    this.#endConnection?.({ retry: "reconnect requested" });
    this.#wake?.();
  }

  /** Replaces the token for the next (re)connect. */
  setToken(token: string): void {
    this.#token = token;
    this.#tokenFresh = true;
  }

  #listenToNetwork(): void {
    if (typeof window === "undefined" || typeof window.addEventListener !== "function") return;
    this.#onlineListener = () => this.reconnectNow();
    this.#offlineListener = () => this.#endConnection?.({ retry: "the browser went offline" });
    window.addEventListener("online", this.#onlineListener);
    window.addEventListener("offline", this.#offlineListener);
  }

  #unlistenToNetwork(): void {
    if (this.#onlineListener && typeof window !== "undefined") {
      window.removeEventListener("online", this.#onlineListener);
      window.removeEventListener("offline", this.#offlineListener!);
      this.#onlineListener = undefined;
    }
  }

  async #loadOutbox(): Promise<void> {
    let entries: OutboxEntry[] = [];
    try {
      entries = await this.#outboxStore.load();
    } catch (e) {
      this.#emit({ type: "error", code: "outbox_unavailable", message: String(e) });
    }
    for (const entry of entries) {
      if ([...this.#outbox.values()].some((q) => q.entry.clientMsgId === entry.clientMsgId)) continue;
      this.#outbox.set(entry.key, { entry });
      this.#nextOutbox = Math.max(this.#nextOutbox, entry.key);
    }
  }

  async #currentToken(forceFresh: boolean): Promise<string> {
    const provider = this.#options.tokenProvider;
    if (provider && (forceFresh || !this.#token)) {
      this.#token = await provider();
      this.#tokenFresh = true;
      this.#scheduleRefresh();
    }
    return this.#token ?? "";
  }

  /** Asks the provider for a new token a while before this one expires. */
  #scheduleRefresh(): void {
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    const provider = this.#options.tokenProvider;
    const exp = this.#token ? tokenExpiry(this.#token) : undefined;
    if (!provider || exp === undefined) return;
    const left = exp * 1000 - Date.now();
    const wait = Math.max(left - Math.min(60_000, left / 5), 1_000);
    this.#refreshTimer = setTimeout(() => {
      provider().then(
        (t) => {
          this.#token = t;
          this.#tokenFresh = true;
          this.#scheduleRefresh();
        },
        (e) => this.#emit({ type: "error", code: "token_provider_failed", message: String(e) }),
      );
    }, Math.min(wait, 2 ** 31 - 1));
    // In Node, a pending refresh alone must not keep the process alive.
    (this.#refreshTimer as { unref?: () => void }).unref?.();
  }

  #backoff(attempt: number): number {
    const min = this.#options.minBackoffMs ?? 500;
    const max = Math.max(this.#options.maxBackoffMs ?? 30_000, 1);
    const d = Math.min(Math.max(min * 2 ** Math.min(attempt - 1, 20), 1), max);
    return d / 2 + Math.random() * (d / 2);
  }

  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#wake = done;
    });
    this.#wake = undefined;
  }

  #finish(code: string, reason: string): void {
    this.#closed = true;
    this.#unlistenToNetwork();
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    for (const q of this.#outbox.values()) {
      q.reject?.(new ClientError(code, reason));
      q.resolve = undefined;
      q.reject = undefined;
    }
    this.#setState("closed", reason, code);
    this.#firstReject?.(new ClientError(code, reason));
    this.#firstReject = undefined;
    this.#firstResolve = undefined;
  }

  async #run(): Promise<void> {
    await this.#loadOutbox();
    this.#scheduleRefresh();
    let attempt = 0;
    let forceFresh = false;
    while (!this.#closed) {
      if (typeof navigator !== "undefined" && navigator.onLine === false) {
        // The browser says it is offline: wait for its `online` event (or try anyway after
        // the longest backoff, in case it is wrong).
        if (this.#state !== "disconnected") this.#setState("disconnected", "the browser is offline");
        await this.#sleep(this.#options.maxBackoffMs ?? 30_000);
        if (this.#closed) break;
      }
      this.#setState("connecting");
      let token: string;
      try {
        token = await this.#currentToken(forceFresh);
      } catch (e) {
        this.#emit({ type: "error", code: "token_provider_failed", message: String(e) });
        attempt++;
        this.#setState("disconnected", "the token provider failed");
        await this.#sleep(this.#backoff(attempt));
        continue;
      }
      const fresh = this.#tokenFresh;
      this.#tokenFresh = false;
      forceFresh = false;
      const end = await this.#connection(token);
      if (this.#closed) break;
      if ("stop" in end) {
        if (TOKEN_CODES.has(end.stop) && this.#options.tokenProvider && !fresh) {
          // The token we had was refused (expired, revoked meanwhile): ask for a new one,
          // once. A fresh token refused too ends here: no loop on a revoked user.
          this.#emit({ type: "error", code: end.stop, message: `${end.reason}; asking the token provider` });
          forceFresh = true;
          this.#setState("disconnected", end.reason, end.stop);
          await this.#sleep(this.#backoff(1));
          continue;
        }
        this.#finish(end.stop, end.reason);
        break;
      }
      if (end.wasUp) attempt = 0;
      attempt++;
      this.#setState("disconnected", end.retry);
      if (this.#closed) break;
      await this.#sleep(this.#backoff(attempt));
    }
  }

  /** One connection, from opening the socket to its end. */
  #connection(token: string): Promise<End> {
    return new Promise<End>((resolveEnd) => {
      let ended = false;
      let authed = false;
      let lastHeard = Date.now();
      let heartbeat: ReturnType<typeof setInterval> | undefined;
      const timeout = this.#options.requestTimeoutMs ?? 15_000;
      let socket: SocketLike;
      const end = (e: End) => {
        if (ended) return;
        ended = true;
        clearTimeout(authTimer);
        if (heartbeat) clearInterval(heartbeat);
        this.#endConnection = undefined;
        this.#socket = undefined;
        try {
          socket.onmessage = null;
          socket.onclose = null;
          socket.onerror = null;
          socket.onopen = null;
          socket.close(1000);
        } catch {
          // already closed
        }
        this.#disconnected();
        resolveEnd("retry" in e ? { retry: e.retry, wasUp: authed } : e);
      };
      this.#endConnection = end;
      const authTimer = setTimeout(() => end({ retry: "no answer to auth in time" }), timeout);
      try {
        socket = this.#factory(this.#url, [this.#protocol]);
      } catch (e) {
        clearTimeout(authTimer);
        this.#endConnection = undefined;
        resolveEnd({ retry: `cannot open the socket: ${(e as Error).message}` });
        return;
      }
      socket.binaryType = "arraybuffer";
      socket.onerror = () => {
        // onclose follows with the details
      };
      socket.onclose = (ev) => end({ retry: `connection closed (${ev.code}${ev.reason ? ": " + ev.reason : ""})` });
      socket.onopen = () => {
        this.#socket = socket;
        this.#syncSince = this.#version;
        this.#write(
          {
            case: "auth",
            value: {
              token,
              deviceId: this.#deviceId,
              platform: platformOf(this.#options.platform),
              syncVersion: BigInt(this.#version),
            },
          },
          { kind: "ping" },
          "auth",
        );
      };
      socket.onmessage = (ev) => {
        lastHeard = Date.now();
        let frame: ServerFrame;
        try {
          frame = decodeServerFrame(ev.data, this.#protocol);
        } catch (e) {
          // A malformed frame: report it and start over; the sync after the reconnect
          // brings whatever that frame was.
          this.#emit({ type: "error", code: "bad_frame", message: (e as BadFrame).message });
          end({ retry: "malformed frame from the server" });
          return;
        }
        if (!authed) {
          const body = frame.body;
          if (body.case === "authOk") {
            authed = true;
            clearTimeout(authTimer);
            this.#pending.delete("auth");
            this.#userId = body.value.userId;
            const hb = Math.max(Number(body.value.heartbeatIntervalMs) || 30_000, 100);
            heartbeat = setInterval(() => {
              if (Date.now() - lastHeard > hb * 2.5) {
                end({ retry: "nothing heard from the server" });
                return;
              }
              this.#write({ case: "ping", value: {} }, { kind: "ping" });
            }, hb);
            this.#setState("connected");
            this.#firstResolve?.();
            this.#firstResolve = undefined;
            this.#firstReject = undefined;
            this.#afterAuth(body.value.sync ? toPlain(body.value.sync) : undefined);
          } else if (body.case === "error") {
            // A refused token (4003) is for the app or the token provider to solve; anything
            // else before auth_ok (`unavailable`, `auth_timeout`, ...) is worth a retry.
            const { code, message } = body.value;
            end(TOKEN_CODES.has(code) ? { stop: code, reason: message } : { retry: `${code}: ${message}` });
          } else if (body.case === "kicked") {
            const { code, reason } = body.value;
            end(code === "going_away" ? { retry: reason } : { stop: code, reason });
          }
          return;
        }
        const stop = this.#onFrame(frame);
        if (stop) end(stop);
      };
    });
  }

  /** Everything in flight on the connection that just ended. */
  #disconnected(): void {
    for (const [, p] of this.#pending) {
      if (p.kind === "user") {
        clearTimeout(p.timer);
        p.reject(
          this.#closed
            ? new ClientError("closed", "the client was closed before the answer")
            : new ClientError("not_connected", "the connection was lost before the answer"),
        );
      } else if (p.kind === "fill") {
        const t = this.#timelines.get(p.conv);
        if (t) t.filling = false;
      }
    }
    this.#pending.clear();
  }

  #write(command: CommandInitUnion, pending: Pending, id?: string): boolean {
    const socket = this.#socket;
    if (!socket) return false;
    const frameId = id ?? `r${++this.#nextId}`;
    const frame = create(ClientFrameSchema, { id: frameId, command });
    this.#pending.set(frameId, pending);
    try {
      socket.send(encodeClientFrame(frame, this.#protocol));
      return true;
    } catch {
      this.#pending.delete(frameId);
      this.#endConnection?.({ retry: "write failed" });
      return false;
    }
  }

  /** Restores rooms and presence, takes in the first sync page, resends the outbox. */
  #afterAuth(sync: Plain<import("../gen/tern/v1/client_pb.js").SyncResult> | undefined): void {
    for (const roomId of this.#rooms) this.#write({ case: "joinRoom", value: { roomId } }, { kind: "join" });
    if (this.#watching.size) {
      this.#write({ case: "subscribePresence", value: { userIds: [...this.#watching] } }, { kind: "presence" });
    }
    if (sync) this.#onSync(sync);
    else this.#write({ case: "sync", value: { sinceVersion: BigInt(this.#version) } }, { kind: "sync" });
    this.#resumePulls();
    for (const key of [...this.#outbox.keys()].sort((a, b) => a - b)) this.#writeSend(key);
  }

  #writeSend(key: number): void {
    const q = this.#outbox.get(key);
    if (!q) return;
    const send = fromJson(SendSchema, q.entry.send as JsonObject);
    this.#write({ case: "send", value: send }, { kind: "send", key });
  }

  // ---- inbound ----

  #timeline(conv: string): Timeline {
    let t = this.#timelines.get(conv);
    if (!t) this.#timelines.set(conv, (t = new Timeline()));
    return t;
  }

  /** Handles a frame after auth; returns how the connection ends if it does. */
  #onFrame(f: ServerFrame): End | undefined {
    const body = f.body;
    if (body.case === undefined) return undefined;
    if (f.id) {
      const p = this.#pending.get(f.id);
      if (!p) return undefined;
      this.#pending.delete(f.id);
      this.#onAnswer(p, body);
      return undefined;
    }
    switch (body.case) {
      case "message": {
        const m = toPlain(body.value);
        const t = this.#timeline(m.conversationId);
        // A direct conversation that began after the first sync starts at its first
        // message: pushes of two sides' concurrent sends may arrive out of order.
        if (this.#listedAll && m.conversationId.startsWith("d:")) t.baseline(0);
        this.#deliver(t.offer(m));
        this.#fill(m.conversationId);
        break;
      }
      case "recall": {
        const r = body.value;
        const msg = r.message;
        if (!msg) break;
        this.#onChange({
          conversationId: msg.conversationId,
          msgId: msg.msgId,
          seq: Number(msg.seq),
          version: Number(msg.version),
          by: r.by,
          changedAt: Number(r.recalledAt),
          change: { case: "recall", value: toPlain(r) },
        });
        break;
      }
      case "change":
        this.#onChange(toPlain(body.value));
        break;
      case "receipt":
        this.#emit({
          type: "receipt",
          conversationId: body.value.conversationId,
          userId: body.value.userId,
          readSeq: Number(body.value.readSeq),
        });
        break;
      case "typing":
        this.#emit({ type: "typing", conversationId: body.value.conversationId, userId: body.value.userId });
        break;
      case "presence":
        this.#emit({ type: "presence", presence: toPlain(body.value) });
        break;
      case "notification": {
        const n = toPlain(body.value);
        if (n.conversationId && n.seq > 0) {
          // A kept notification goes through its conversation's timeline, so a pull of
          // the same conversation does not show it again.
          const m: Message = {
            msgId: n.notificationId,
            conversationId: n.conversationId,
            seq: n.seq,
            sender: "",
            clientMsgId: "",
            type: n.type,
            content: n.content,
            createdAt: n.createdAt,
            recalled: false,
            editedAt: 0,
            replyTo: "",
            quoted: undefined,
            version: 0,
            extensions: [],
            reactions: [],
            mentions: [],
            mentionAll: false,
          };
          this.#deliver(this.#timeline(m.conversationId).offer(m));
          this.#fill(m.conversationId);
        } else {
          this.#emit({ type: "notification", id: n.notificationId, content: n.content ?? {}, createdAt: n.createdAt });
        }
        break;
      }
      case "roomLeft": {
        const { roomId, reason } = body.value;
        this.#rooms.delete(roomId);
        if (reason === "dismissed") this.#timelines.delete(`r:${roomId}`);
        this.#emit({ type: "roomLeft", roomId, reason });
        break;
      }
      case "kicked": {
        const { code, reason } = body.value;
        this.#emit({ type: "kicked", code, reason });
        return code === "going_away" ? { retry: reason } : { stop: code, reason };
      }
      case "error":
        // An error push precedes a close (slow consumer, heartbeat, ...): reconnect.
        this.#emit({ type: "error", code: body.value.code, message: body.value.message });
        return { retry: `${body.value.code}: ${body.value.message}` };
      default:
        break;
    }
    return undefined;
  }

  #onAnswer(p: Pending, body: BodyUnion): void {
    switch (p.kind) {
      case "user":
        clearTimeout(p.timer);
        if (body.case === "roomJoined") this.#onRoomJoined(toPlain(body.value));
        if (body.case === "conversation") this.#emit({ type: "conversation", conversation: toPlain(body.value) });
        if (body.case === "error") {
          p.reject(new ClientError(body.value.code, body.value.message, Number(body.value.retryAfterMs) || undefined));
        } else {
          p.resolve(body);
        }
        break;
      case "send": {
        const q = this.#outbox.get(p.key);
        if (!q) break;
        if (body.case === "sendAck") {
          const ack = toPlain(body.value);
          this.#outbox.delete(p.key);
          void this.#outboxStore.delete(p.key).catch(() => undefined);
          q.resolve?.(ack);
          this.#emit({ type: "sent", ack });
        } else if (body.case === "error" && (body.value.code === "rate_limited" || body.value.code === "unavailable")) {
          const wait = Math.max(Number(body.value.retryAfterMs) || 0, 50);
          setTimeout(() => {
            if (this.#outbox.has(p.key) && this.#state === "connected") this.#writeSend(p.key);
          }, wait);
        } else if (body.case === "error") {
          this.#outbox.delete(p.key);
          void this.#outboxStore.delete(p.key).catch(() => undefined);
          const { code, message } = body.value;
          q.reject?.(new ClientError(code, message, Number(body.value.retryAfterMs) || undefined));
          this.#emit({ type: "sendFailed", clientMsgId: q.entry.clientMsgId, code, message });
        }
        break;
      }
      case "sync":
        if (body.case === "syncResult") this.#onSync(toPlain(body.value));
        break;
      case "fill": {
        const t = this.#timelines.get(p.conv);
        if (!t) break;
        t.filling = false;
        if (body.case === "historyResult") {
          t.fillRefusals = 0;
          this.#deliver(t.offerPage(p.after, body.value.messages.map((m) => toPlain(m))));
          this.#fill(p.conv);
        } else if (body.case === "error" && RETRYABLE.has(body.value.code)) {
          // Asked again later, never at once: held as filling meanwhile, so no push re-asks.
          const wait = fillRetryMs(t.fillRefusals++, Number(body.value.retryAfterMs) || 0);
          t.filling = true;
          setTimeout(() => {
            if (this.#timelines.get(p.conv) !== t) return;
            t.filling = false;
            this.#fill(p.conv);
          }, wait);
        } else {
          // The user may not read what is missing (they left the group, say): hand out
          // what came after it instead of asking for it for ever.
          t.fillRefusals = 0;
          this.#deliver(t.skipGap());
        }
        break;
      }
      case "changes":
        if (body.case === "changesResult") {
          const r = toPlain(body.value);
          const t = this.#timeline(p.conv);
          const out: Out[] = [];
          for (const c of r.changes) out.push(...t.change(c));
          t.pulledThrough(r.version);
          if (!r.hasMore) t.changesOwed = undefined;
          this.#deliver(out);
          if (r.hasMore) this.#pullChanges(p.conv, r.version);
        }
        break;
      case "join":
        if (body.case === "roomJoined") this.#onRoomJoined(toPlain(body.value));
        break;
      case "presence":
        if (body.case === "presenceResult") {
          for (const u of body.value.users) this.#emit({ type: "presence", presence: toPlain(u) });
        }
        break;
      case "ping":
        break;
    }
  }

  #onRoomJoined(r: Plain<import("../gen/tern/v1/client_pb.js").RoomJoined>): void {
    const start = r.recent.length ? r.recent[0]!.seq - 1 : r.lastSeq;
    const t = this.#timeline(r.conversationId);
    t.joinedAt(start, r.lastSeq);
    const out: Out[] = [];
    for (const m of r.recent) out.push(...t.offer(m));
    this.#deliver(out);
    this.#fill(r.conversationId);
  }

  #onSync(s: Plain<import("../gen/tern/v1/client_pb.js").SyncResult>): void {
    const convs: string[] = [];
    const changed: [string, number][] = [];
    for (const c of s.conversations) {
      const t = this.#timeline(c.conversationId);
      // Changes since the last sync, or since where a pull that a lost connection cut off
      // stopped, if earlier.
      if (t.started()) {
        const since = t.changesOwed === undefined ? this.#syncSince : Math.min(t.changesOwed, this.#syncSince);
        changed.push([c.conversationId, Math.max(since, t.watermark)]);
      }
      t.baseline(c.readSeq);
      t.knownUpTo(c.lastSeq);
      convs.push(c.conversationId);
      this.#emit({ type: "conversation", conversation: c });
    }
    this.#version = Math.max(this.#version, s.version);
    for (const [conv, since] of changed) this.#pullChanges(conv, since);
    for (const conv of convs) this.#fill(conv);
    if (s.hasMore) {
      this.#write({ case: "sync", value: { sinceVersion: BigInt(this.#version) } }, { kind: "sync" });
    } else {
      this.#listedAll = true;
    }
  }

  /**
   * After a (re)connect's sync: a sync lists only what changed since the previous one, so
   * a history or changes pull that a lost connection cut off is not listed again. Make
   * every such pull again, whatever the sync listed (docs/protocol.md, "Sync"). Rooms are
   * left out: their re-join brings their backlog.
   */
  #resumePulls(): void {
    const pulling = new Set<string>();
    for (const p of this.#pending.values()) if (p.kind === "changes") pulling.add(p.conv);
    const convs = [...this.#timelines.keys()].sort();
    for (const conv of convs) {
      const t = this.#timelines.get(conv)!;
      const owed = t.changesOwed;
      if (owed !== undefined && !pulling.has(conv)) this.#pullChanges(conv, Math.max(owed, t.watermark));
    }
    // Changes first, so they apply to the messages held and the fill brings newer ones as they are now.
    for (const conv of convs) if (!conv.startsWith("r:")) this.#fill(conv);
  }

  #fill(conv: string): void {
    const t = this.#timelines.get(conv);
    const after = t?.gapAfter();
    if (!t || after === undefined || !this.#socket) return;
    t.filling = true;
    this.#write(
      { case: "history", value: { conversationId: conv, afterSeq: BigInt(after), limit: FILL_PAGE } },
      { kind: "fill", conv, after },
    );
  }

  #pullChanges(conv: string, since: number): void {
    const t = this.#timelines.get(conv);
    if (t) t.changesOwed = since;
    this.#write(
      { case: "getChanges", value: { conversationId: conv, sinceVersion: BigInt(since), limit: 100 } },
      { kind: "changes", conv },
    );
  }

  #onChange(c: MessageChange): void {
    this.#deliver(this.#timeline(c.conversationId).change(c));
  }

  /** Hands out messages and changes; messages of `s:<user>` are the user's notifications. */
  #deliver(out: Out[]): void {
    for (const o of out) {
      if ("message" in o) {
        const m = o.message;
        if (m.conversationId.startsWith("s:")) {
          this.#emit({
            type: "notification",
            id: m.msgId,
            content: m.content ?? {},
            createdAt: m.createdAt,
            conversationId: m.conversationId,
            seq: m.seq,
            messageType: m.type,
          });
        } else {
          this.#emit({ type: "message", message: m });
        }
      } else {
        this.#emit({ type: "changed", change: o.change });
      }
    }
  }

  // ---- commands ----

  /**
   * Any command of the protocol, answered by `answer` (docs/protocol.md). Fails with
   * `not_connected` while there is no connection, with the server's code on an `error`
   * answer, and with `timeout` if no answer comes in time.
   */
  async command<K extends CommandCase, B extends BodyCase>(
    command: K,
    args: Args<K>,
    answer: B | B[],
  ): Promise<Plain<BodyValue<B>>> {
    if (this.#closed) throw new ClientError("closed", "the client is closed");
    if (!this.#socket || this.#state !== "connected") throw new ClientError("not_connected", "not connected");
    const accept = Array.isArray(answer) ? answer : [answer];
    const body = await new Promise<BodyUnion>((resolve, reject) => {
      const timer = setTimeout(() => {
        for (const [id, p] of this.#pending) if (p.kind === "user" && p.timer === timer) this.#pending.delete(id);
        reject(new ClientError("timeout", `no answer to ${command} in time`));
      }, this.#options.requestTimeoutMs ?? 15_000);
      const init = args as Record<string, unknown>;
      const ok = this.#write({ case: command, value: init } as CommandInitUnion, { kind: "user", resolve, reject, timer });
      if (!ok) {
        clearTimeout(timer);
        reject(new ClientError("not_connected", "not connected"));
      }
    });
    if (!accept.includes(body.case as B)) {
      throw new ClientError("unexpected_answer", `the server answered ${command} with ${body.case}`);
    }
    return toPlain(body.value) as Plain<BodyValue<B>>;
  }

  /**
   * Sends a message and resolves when the server has stored it. Survives reconnects (and,
   * in a browser, page loads): the send is retried with the same `client_msg_id` until
   * it is acknowledged or refused (rejects with the server's code).
   */
  async send(to: Target, type: string, content: JsonObject, options: SendOptions = {}): Promise<SendAck> {
    if (this.#closed) throw new ClientError("closed", "the client is closed");
    const clientMsgId = options.clientMsgId ?? randomId("c-");
    const existing = [...this.#outbox.values()].find((q) => q.entry.clientMsgId === clientMsgId);
    if (existing) {
      return new Promise((resolve, reject) => {
        const prev = { resolve: existing.resolve, reject: existing.reject };
        existing.resolve = (a) => (prev.resolve?.(a), resolve(a));
        existing.reject = (e) => (prev.reject?.(e), reject(e));
      });
    }
    const toCase = "user" in to ? "user" : "group" in to ? "group" : "room";
    const toValue = "user" in to ? to.user : "group" in to ? to.group : to.room;
    const send = create(SendSchema, {
      clientMsgId,
      to: { case: toCase, value: toValue },
      type,
      content,
      replyTo: options.replyTo ?? "",
      mentions: options.mentions ?? [],
      mentionAll: options.mentionAll ?? false,
    });
    // A send the server would refuse by its size (and close the connection for) must not
    // enter the queue: it would be resent after every reconnect.
    const size = encodeClientFrame(create(ClientFrameSchema, { id: "r000000", command: { case: "send", value: send } }), this.#protocol).length;
    if (size > MAX_FRAME_BYTES - 64) {
      throw new ClientError("frame_too_large", `the send is ${size} bytes; a frame is at most ${MAX_FRAME_BYTES}`);
    }
    const key = Math.max(++this.#nextOutbox, Date.now() * 1000 + (this.#nextOutbox % 1000));
    this.#nextOutbox = key;
    const entry: OutboxEntry = { key, clientMsgId, send: toJson(SendSchema, send) as Record<string, unknown> };
    const promise = new Promise<SendAck>((resolve, reject) => this.#outbox.set(key, { entry, resolve, reject }));
    await this.#outboxStore.put(entry).catch((e) =>
      this.#emit({ type: "error", code: "outbox_unavailable", message: String(e) }),
    );
    if (this.#state === "connected") this.#writeSend(key);
    return promise;
  }

  /** Sends `text` as a `text` message. */
  sendText(to: Target, text: string, options?: SendOptions): Promise<SendAck> {
    return this.send(to, "text", { text }, options);
  }

  /** Sends a message that quotes `replyTo` (a message of the same conversation). */
  reply(to: Target, replyTo: string, type: string, content: JsonObject): Promise<SendAck> {
    return this.send(to, type, content, { replyTo });
  }

  /** How many sends wait for their acknowledgement. */
  get queuedSends(): number {
    return this.#outbox.size;
  }

  /** A page of history, oldest first: messages after `afterSeq`. */
  async history(conversationId: string, afterSeq = 0, limit = 50): Promise<Message[]> {
    const r = await this.command("history", { conversationId, afterSeq, limit }, "historyResult");
    return r.messages;
  }

  /** The `limit` messages just before `beforeSeq`, oldest first. */
  async historyBefore(conversationId: string, beforeSeq: number, limit = 50): Promise<Message[]> {
    const r = await this.command("history", { conversationId, beforeSeq: Math.max(beforeSeq, 1), limit }, "historyResult");
    return r.messages;
  }

  /** The conversation list entries changed after `sinceVersion` (0: all), every page. */
  async conversations(sinceVersion = 0): Promise<Conversation[]> {
    const all: Conversation[] = [];
    let since = sinceVersion;
    for (;;) {
      const r = await this.command("sync", { sinceVersion: since, limit: 100 }, "syncResult");
      all.push(...r.conversations);
      if (!r.hasMore || r.version <= since) break;
      since = r.version;
    }
    return all;
  }

  /** Marks a conversation read up to `seq`; the other side gets a receipt. */
  read(conversationId: string, seq: number): Promise<Conversation> {
    return this.command("read", { conversationId, seq }, "conversation");
  }

  async recall(msgId: string): Promise<void> {
    await this.command("recall", { msgId }, "ok");
  }

  async typing(conversationId: string): Promise<void> {
    await this.command("typing", { conversationId }, "ok");
  }

  async ping(): Promise<number> {
    const r = await this.command("ping", { nonce: BigInt(Date.now()) }, "pong");
    return r.serverTime;
  }

  /** Watches users' presence (kept across reconnects); returns their state now. */
  async subscribePresence(userIds: string[]) {
    const r = await this.command("subscribePresence", { userIds }, "presenceResult");
    for (const u of userIds) this.#watching.add(u);
    return r.users;
  }

  async unsubscribePresence(userIds: string[]): Promise<void> {
    for (const u of userIds) this.#watching.delete(u);
    await this.command("unsubscribePresence", { userIds }, "ok");
  }

  /** Joins a room (re-joined after every reconnect); its messages arrive as `message` events. */
  async joinRoom(roomId: string) {
    const r = await this.command("joinRoom", { roomId }, "roomJoined");
    this.#rooms.add(roomId);
    return r;
  }

  async leaveRoom(roomId: string): Promise<void> {
    this.#rooms.delete(roomId);
    await this.command("leaveRoom", { roomId }, "ok");
  }

  getRoom(roomId: string) {
    return this.command("getRoom", { roomId }, "room");
  }

  // message lifecycle (docs/messages.md)

  /** Replaces the content of one of this user's messages; returns it as stored. */
  edit(msgId: string, content: JsonObject): Promise<Message> {
    return this.command("editMessage", { msgId, content }, "editResult");
  }

  /** Deletes 1–100 messages for this user only, on all their devices. */
  async deleteForMe(msgIds: string[]): Promise<void> {
    await this.command("deleteMessages", { msgIds }, "ok");
  }

  /** Sets (with `value`) and deletes (without) extension keys, all or none. */
  updateExtensions(msgId: string, updates: { key: string; value?: string; expectedVersion?: number }[]) {
    return this.command(
      "updateExtensions",
      {
        msgId,
        updates: updates.map((u) => ({
          key: u.key,
          value: u.value,
          expectedVersion: u.expectedVersion === undefined ? undefined : BigInt(u.expectedVersion),
        })),
      },
      "extensionsResult",
    );
  }

  addReaction(msgId: string, reaction: string) {
    return this.command("addReaction", { msgId, reaction }, "reactionResult");
  }

  removeReaction(msgId: string, reaction: string) {
    return this.command("removeReaction", { msgId, reaction }, "reactionResult");
  }

  reactionUsers(msgId: string, reaction: string, cursor = "", limit = 50) {
    return this.command("listReactionUsers", { msgId, reaction, cursor, limit }, "reactionUsers");
  }

  getChanges(conversationId: string, sinceVersion: number, limit = 100) {
    return this.command("getChanges", { conversationId, sinceVersion, limit }, "changesResult");
  }

  // friends and blocks (docs/friends.md)

  sendFriendRequest(to: string, message = "") {
    return this.command("sendFriendRequest", { to, message }, "friendRequest");
  }
  answerFriendRequest(from: string, accept: boolean) {
    return this.command("answerFriendRequest", { from, accept }, "friendRequest");
  }
  listFriendRequests(after = "", limit = 50) {
    return this.command("listFriendRequests", { after, limit }, "friendRequestList");
  }
  listFriends(after = "", limit = 50) {
    return this.command("listFriends", { after, limit }, "friendList");
  }
  updateFriend(args: Args<"updateFriend">) {
    return this.command("updateFriend", args, "friend");
  }
  async deleteFriend(friendId: string, both = false): Promise<void> {
    await this.command("deleteFriend", { friendId, both }, "ok");
  }
  async blockUser(userId: string): Promise<void> {
    await this.command("blockUser", { userId }, "ok");
  }
  async unblockUser(userId: string): Promise<void> {
    await this.command("unblockUser", { userId }, "ok");
  }
  listBlocks(after = "", limit = 50) {
    return this.command("listBlocks", { after, limit }, "blockList");
  }

  // groups (docs/groups.md)

  createGroup(args: Args<"createGroup">) {
    return this.command("createGroup", args, "group");
  }
  getGroup(groupId: string) {
    return this.command("getGroup", { groupId }, "group");
  }
  updateGroup(args: Args<"updateGroup">) {
    return this.command("updateGroup", args, "group");
  }
  async dismissGroup(groupId: string): Promise<void> {
    await this.command("dismissGroup", { groupId }, "ok");
  }
  inviteMembers(groupId: string, userIds: string[]) {
    return this.command("inviteMembers", { groupId, userIds }, "inviteResult");
  }
  async removeMember(groupId: string, userId: string): Promise<void> {
    await this.command("removeMember", { groupId, userId }, "ok");
  }
  async leaveGroup(groupId: string): Promise<void> {
    await this.command("leaveGroup", { groupId }, "ok");
  }
  joinGroup(groupId: string, message = "") {
    return this.command("joinGroup", { groupId, message }, "joinResult");
  }
  listJoinRequests(groupId: string, after = "", limit = 50) {
    return this.command("listJoinRequests", { groupId, after, limit }, "joinRequestList");
  }
  answerJoinRequest(groupId: string, userId: string, accept: boolean) {
    return this.command("answerJoinRequest", { groupId, userId, accept }, "joinRequest");
  }
  listMembers(groupId: string, after = "", limit = 50) {
    return this.command("listMembers", { groupId, after, limit }, "memberList");
  }
  getMember(groupId: string, userId: string) {
    return this.command("getMember", { groupId, userId }, "member");
  }
  setMemberRole(groupId: string, userId: string, role: "admin" | "member") {
    return this.command("setMemberRole", { groupId, userId, role }, "member");
  }
  transferOwner(groupId: string, userId: string) {
    return this.command("transferOwner", { groupId, userId }, "group");
  }
  /** Mutes a member until `untilMs` (Unix ms; undefined: until lifted), or lifts the mute. */
  muteMember(groupId: string, userId: string, untilMs?: number, lift = false) {
    return this.command("muteMember", { groupId, userId, until: untilMs === undefined ? undefined : BigInt(untilMs), lift }, "member");
  }
  listMyGroups(after = "", limit = 50) {
    return this.command("listMyGroups", { after, limit }, "groupList");
  }
  getReadCounts(groupId: string, msgIds: string[]) {
    return this.command("getReadCounts", { groupId, msgIds }, "readCounts");
  }
  listReaders(groupId: string, msgId: string, options: { unread?: boolean; after?: string; limit?: number } = {}) {
    return this.command("listReaders", { groupId, msgId, ...options }, "readers");
  }

  // offline push (docs/push.md): this device's push token, the user's mute and do-not-disturb

  /**
   * Registers this device's push token (APNs or FCM) for the connected user, so messages
   * reach it while no session is connected. The same token again keeps its device id (and
   * moves to this user if another had it); keep `deviceId` to update or remove it later.
   */
  registerPushToken(t: PushTokenInit): Promise<PushDevice> {
    return this.command(
      "registerPushToken",
      { provider: t.provider, token: t.token, bundleId: t.bundleId, environment: t.environment, locale: t.locale },
      "pushDevice",
    );
  }
  /** A rotated token, or a new environment or locale (`""` clears it), for a device of the connected user. */
  updatePushToken(deviceId: string, change: PushTokenChange): Promise<PushDevice> {
    return this.command(
      "updatePushToken",
      { deviceId, token: change.token, environment: change.environment, locale: change.locale },
      "pushDevice",
    );
  }
  /** Removes a device of the connected user (on sign-out): no more pushes reach it. */
  async removePushToken(deviceId: string): Promise<void> {
    await this.command("removePushToken", { deviceId }, "ok");
  }
  /** The connected user's do-not-disturb hours and muted conversations. */
  pushSettings(): Promise<PushSettings> {
    return this.command("getPushSettings", {}, "pushSettings");
  }
  /** Changes the connected user's push settings, all or nothing; answers them as they now are. */
  updatePushSettings(change: PushSettingsChange): Promise<PushSettings> {
    const dnd = change.dnd && { start: change.dnd.start, end: change.dnd.end, utcOffsetMinutes: change.dnd.utcOffsetMinutes ?? 0 };
    return this.command(
      "updatePushSettings",
      { dnd, clearDnd: change.clearDnd ?? false, mute: change.mute ?? [], unmute: change.unmute ?? [] },
      "pushSettings",
    );
  }
}
