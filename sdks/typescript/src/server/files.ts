// The bytes of files (docs/files.md): sending them to a tus 1.0 upload URL in pieces, each
// with its SHA-256 checksum, resuming from where the server says it stands after a dropped
// connection; and fetching a download URL. The upload and download URLs carry their own
// signatures: these requests are not signed with the AppSecret.

import { createHash } from "node:crypto";
import { ServerApiError } from "../errors.js";

/** Bytes per PATCH by default: the server stores what arrives in pieces of this size. */
export const UPLOAD_CHUNK_BYTES = 4 * 1024 * 1024;

export interface SendBytesOptions {
  /** Bytes per PATCH request; 4 MiB by default. */
  chunkBytes?: number;
  /** Failed attempts in a row (network errors, 423, 5xx) before giving up; 8 by default. */
  retries?: number;
  /** Called after every piece the server acknowledged. */
  onProgress?: (sent: number, total: number) => void;
  /** Per request; 60 s by default. */
  timeoutMs?: number;
}

/** The upload went wrong in a way another try cannot fix. */
function fatal(status: number): boolean {
  return status >= 400 && status < 500 && status !== 409 && status !== 423 && status !== 429;
}

async function failure(res: Response, what: string): Promise<ServerApiError> {
  const text = await res.text().catch(() => "");
  let code = "http_" + res.status;
  let message = `${what}: ${text.slice(0, 300)}`;
  try {
    const env = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (env.error?.code) {
      code = env.error.code;
      message = env.error.message ?? "";
    }
  } catch {
    // not Tern's error shape
  }
  return new ServerApiError(res.status, code, message, res.headers.get("x-request-id") ?? "");
}

async function timed(f: typeof fetch, url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return await f(url, { ...init, signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}

/** The bytes the server holds of an upload (tus HEAD). */
export async function uploadOffset(f: typeof fetch, uploadUrl: string, timeoutMs = 60_000): Promise<number> {
  const res = await timed(f, uploadUrl, { method: "HEAD", headers: { "tus-resumable": "1.0.0" } }, timeoutMs);
  if (res.status !== 200) throw await failure(res, "HEAD upload");
  return Number(res.headers.get("upload-offset") ?? "0");
}

/**
 * Sends what the server does not have yet of `data` to a tus upload URL, `chunkBytes` per
 * PATCH with an `Upload-Checksum`; after a network error, a busy upload or a server error
 * it asks where the upload stands (HEAD) and goes on from there. Resolves once every byte
 * is acknowledged: the file is then complete (or refused with `checksum_mismatch`).
 */
export async function sendBytes(
  f: typeof fetch,
  uploadUrl: string,
  data: Uint8Array,
  options: SendBytesOptions = {},
): Promise<void> {
  const chunk = Math.max(1, options.chunkBytes ?? UPLOAD_CHUNK_BYTES);
  const retries = options.retries ?? 8;
  const timeoutMs = options.timeoutMs ?? 60_000;
  let failures = 0;
  let offset: number | undefined;
  let last: unknown;
  while (true) {
    try {
      if (offset === undefined) offset = await uploadOffset(f, uploadUrl, timeoutMs);
      if (offset >= data.length) return;
      // A copy: fetch takes a view of an ArrayBuffer (not of a shared one).
      const piece = data.slice(offset, Math.min(offset + chunk, data.length));
      const sum = createHash("sha256").update(piece).digest("base64");
      const res = await timed(
        f,
        uploadUrl,
        {
          method: "PATCH",
          headers: {
            "tus-resumable": "1.0.0",
            "content-type": "application/offset+octet-stream",
            "upload-offset": String(offset),
            "upload-checksum": `sha256 ${sum}`,
          },
          body: piece,
        },
        timeoutMs,
      );
      if (res.status === 204) {
        offset = Number(res.headers.get("upload-offset"));
        failures = 0;
        options.onProgress?.(offset, data.length);
        if (offset >= data.length) return;
        continue;
      }
      const e = await failure(res, "PATCH upload");
      if (fatal(res.status)) throw e;
      last = e;
    } catch (e) {
      if (e instanceof ServerApiError && fatal(e.status)) throw e;
      last = e;
    }
    // Where does the upload stand now? Ask before the next try.
    offset = undefined;
    failures++;
    if (failures > retries) {
      if (last instanceof ServerApiError) throw last;
      throw new ServerApiError(0, "network_error", `upload failed: ${(last as Error)?.message ?? last}`, "");
    }
    await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** (failures - 1), 5_000)));
  }
}

/** The hex SHA-256 of `data`, as `POST /v1/files` takes it. */
export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The bytes behind a download URL (Tern's own or a store's presigned one). */
export async function fetchBytes(f: typeof fetch, url: string, timeoutMs = 60_000): Promise<Uint8Array> {
  const res = await timed(f, url, { method: "GET" }, timeoutMs);
  if (!res.ok) throw await failure(res, "GET file");
  return new Uint8Array(await res.arrayBuffer());
}
