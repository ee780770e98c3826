// Errors the SDK raises. Every error from Tern carries a stable snake_case `code`
// (docs/errors.md, docs/protocol.md): program against the code, never the message.

/** Base of every error this SDK throws; `code` is stable. */
export class TernError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "TernError";
    this.code = code;
  }
}

/** An error answer from the server API (REST). */
export class ServerApiError extends TernError {
  /** HTTP status of the answer. */
  readonly status: number;
  /** `X-Request-Id`: quote it when reporting a problem. */
  readonly requestId: string;
  /** From `Retry-After` (seconds), on `rate_limited` and `unavailable`; else undefined. */
  readonly retryAfterSeconds: number | undefined;
  constructor(status: number, code: string, message: string, requestId: string, retryAfterSeconds?: number) {
    super(code, message);
    this.name = "ServerApiError";
    this.status = status;
    this.requestId = requestId;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * An error answer to a client command (the connection stays open), or why the client
 * stopped (`closed`, a token code, a kick code).
 */
export class ClientError extends TernError {
  /** For `rate_limited`: when to try again, in milliseconds. */
  readonly retryAfterMs: number | undefined;
  constructor(code: string, message: string, retryAfterMs?: number) {
    super(code, message);
    this.name = "ClientError";
    this.retryAfterMs = retryAfterMs;
  }
}

/** Codes with which the server refuses a user token at login (close 4003). */
export const TOKEN_CODES: ReadonlySet<string> = new Set([
  "token_invalid",
  "unknown_app_key",
  "bad_signature",
  "token_expired",
  "token_lifetime_too_long",
  "token_not_yet_valid",
  "token_revoked",
  "app_suspended",
  "user_not_found",
  "user_banned",
]);
