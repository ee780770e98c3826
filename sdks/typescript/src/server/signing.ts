// The client side of SIGNING.md: signed server API requests (§1), user and server bearer
// tokens (§2) and webhook signatures (§3). Node only (node:crypto); written from
// SIGNING.md alone and checked against docs/signing-vectors.json.

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const HEADER_APP_KEY = "X-Tern-App-Key";
export const HEADER_TIMESTAMP = "X-Tern-Timestamp";
export const HEADER_NONCE = "X-Tern-Nonce";
export const HEADER_SIGNATURE = "X-Tern-Signature";

const UNRESERVED = /^[A-Za-z0-9\-_.~]$/;

/** Percent-decodes to bytes; `+` stays `+`, a `%` starting no valid escape stays literal. */
function decodeComponent(raw: string): Buffer {
  const src = Buffer.from(raw, "utf8");
  const out: number[] = [];
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    if (b === 0x25 && i + 2 < src.length && isHex(src[i + 1]) && isHex(src[i + 2])) {
      out.push(parseInt(String.fromCharCode(src[i + 1]!, src[i + 2]!), 16));
      i += 2;
    } else {
      out.push(b);
    }
  }
  return Buffer.from(out);
}

function isHex(b: number | undefined): boolean {
  return b !== undefined && ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66));
}

/** Encodes every byte but `A-Z a-z 0-9 - _ . ~` as upper-case `%XX`. */
function encodeComponent(bytes: Buffer): string {
  let s = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    s += b < 0x80 && UNRESERVED.test(c) ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return s;
}

function compareBytes(a: string, b: string): number {
  // Canonical components are ASCII, so UTF-16 order is byte order.
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The canonical query of SIGNING.md §1 for a raw query (without `?`). */
export function canonicalQuery(rawQuery: string): string {
  const pairs: [string, string][] = [];
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? "" : part.slice(eq + 1);
    pairs.push([encodeComponent(decodeComponent(key)), encodeComponent(decodeComponent(value))]);
  }
  pairs.sort((x, y) => compareBytes(x[0], y[0]) || compareBytes(x[1], y[1]));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

export function sha256Hex(body: Uint8Array | string): string {
  return createHash("sha256").update(body).digest("hex");
}

/** The seven-line string to sign of SIGNING.md §1. */
export function stringToSign(
  timestamp: string,
  nonce: string,
  method: string,
  path: string,
  rawQuery: string,
  body: Uint8Array | string,
): string {
  return [
    "TERN1-HMAC-SHA256",
    timestamp,
    nonce,
    method.toUpperCase(),
    path,
    canonicalQuery(rawQuery),
    sha256Hex(body),
  ].join("\n");
}

/** `v1=` and the lowercase hex HMAC-SHA256 of the string to sign under the AppSecret. */
export function signature(appSecret: string, toSign: string): string {
  return "v1=" + createHmac("sha256", Buffer.from(appSecret, "utf8")).update(toSign, "utf8").digest("hex");
}

/** A fresh nonce: 32 characters of `[A-Za-z0-9_-]`. */
export function newNonce(): string {
  return randomBytes(24).toString("base64url");
}

export function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

export interface SignOptions {
  /** Unix seconds; now by default. */
  timestamp?: number;
  /** New for every request; a random one by default. */
  nonce?: string;
}

/**
 * The four headers that sign one request. `pathAndQuery` is the request target exactly as
 * it will be sent (`/v1/users?limit=10`), percent-encoding kept.
 */
export function signRequest(
  appKey: string,
  appSecret: string,
  method: string,
  pathAndQuery: string,
  body: Uint8Array | string = "",
  options: SignOptions = {},
): Record<string, string> {
  const q = pathAndQuery.indexOf("?");
  const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
  const query = q < 0 ? "" : pathAndQuery.slice(q + 1);
  const timestamp = String(options.timestamp ?? unixNow());
  const nonce = options.nonce ?? newNonce();
  return {
    [HEADER_APP_KEY]: appKey,
    [HEADER_TIMESTAMP]: timestamp,
    [HEADER_NONCE]: nonce,
    [HEADER_SIGNATURE]: signature(appSecret, stringToSign(timestamp, nonce, method, path, query, body)),
  };
}

function hs256(secret: string, claims: Record<string, unknown>): string {
  const enc = (s: string) => Buffer.from(s, "utf8").toString("base64url");
  const input = `${enc('{"alg":"HS256","typ":"JWT"}')}.${enc(JSON.stringify(claims))}`;
  const mac = createHmac("sha256", Buffer.from(secret, "utf8")).update(input, "utf8").digest("base64url");
  return `${input}.${mac}`;
}

export interface UserTokenOptions {
  /** Unix seconds; now by default. */
  iat?: number;
  /** Lifetime in seconds when `exp` is not given; 3600 by default. */
  ttlSeconds?: number;
  /** Unix seconds; `iat + ttlSeconds` by default. */
  exp?: number;
  jti?: string;
}

/**
 * A user token (SIGNING.md §2), minted locally with the AppSecret: no call to Tern.
 * Claims are written in the order `iss, sub, iat, exp[, jti]`.
 */
export function mintUserToken(appKey: string, appSecret: string, userId: string, options: UserTokenOptions = {}): string {
  const iat = options.iat ?? unixNow();
  const exp = options.exp ?? iat + (options.ttlSeconds ?? 3600);
  const claims: Record<string, unknown> = { iss: appKey, sub: userId, iat, exp };
  if (options.jti !== undefined) claims.jti = options.jti;
  return hs256(appSecret, claims);
}

/** A server bearer token (`Authorization: Bearer …`); Tern refuses lifetimes over 3600 s. */
export function mintServerToken(appKey: string, appSecret: string, iat = unixNow(), exp = iat + 3600): string {
  return hs256(appSecret, { iss: appKey, scope: "server", iat, exp });
}

/** Signatures older (or further ahead) than this are refused. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

export type WebhookVerifyFailure = "malformed_signature" | "timestamp_out_of_window" | "bad_signature";

export class WebhookVerifyError extends Error {
  readonly code: WebhookVerifyFailure;
  constructor(code: WebhookVerifyFailure, message: string) {
    super(message);
    this.name = "WebhookVerifyError";
    this.code = code;
  }
}

/**
 * Verifies a webhook (SIGNING.md §3) before its body is parsed: `header` is the
 * `X-Tern-Signature` value, `rawBody` the request body exactly as received, `secret` the
 * app's webhook secret. During a secret rotation any one `v1` matching is enough. Throws
 * `WebhookVerifyError`; returns nothing when the webhook is Tern's.
 */
export function verifyWebhook(
  header: string,
  rawBody: Uint8Array | string,
  secret: string,
  now: number = unixNow(),
): void {
  let t: string | undefined;
  const candidates: string[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) throw new WebhookVerifyError("malformed_signature", "X-Tern-Signature: expected t=<unix seconds>,v1=<hex>");
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "t") {
      if (t !== undefined || !/^[0-9]{1,12}$/.test(value)) {
        throw new WebhookVerifyError("malformed_signature", "X-Tern-Signature: t must be Unix seconds, once");
      }
      t = value;
    } else if (key === "v1") {
      candidates.push(value);
    }
  }
  if (t === undefined || candidates.length === 0) {
    throw new WebhookVerifyError("malformed_signature", "X-Tern-Signature: expected t=<unix seconds>,v1=<hex>");
  }
  if (Math.abs(now - Number(t)) > WEBHOOK_TOLERANCE_SECONDS) {
    throw new WebhookVerifyError("timestamp_out_of_window", "the webhook's timestamp is more than 300 s from now");
  }
  const body = typeof rawBody === "string" ? Buffer.from(rawBody, "utf8") : Buffer.from(rawBody);
  const expected = createHmac("sha256", Buffer.from(secret, "utf8"))
    .update(Buffer.concat([Buffer.from(`${t}.`, "utf8"), body]))
    .digest();
  const ok = candidates.some((c) => {
    if (!/^[0-9a-fA-F]{64}$/.test(c)) return false;
    return timingSafeEqual(Buffer.from(c, "hex"), expected);
  });
  if (!ok) throw new WebhookVerifyError("bad_signature", "the webhook's signature does not match this body and secret");
}
