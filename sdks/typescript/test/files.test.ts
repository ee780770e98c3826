// Files against a real `tern serve` (docs/files.md): the SDK's upload and download helpers,
// and an off-the-shelf tus client (tus-js-client from npm) on Tern's embedded tus endpoint,
// each with the connection cut in the middle of the upload and the upload resumed.

import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tus from "tus-js-client";
import { ServerApiError, ServerClient, sha256Hex } from "../src/server/index.js";
import { TcpProxy } from "./tcp-proxy.js";
import { TernServer, type App } from "./tern.js";

let server: TernServer;
let app: App;
let api: ServerClient;
let proxy: TcpProxy;

const MiB = 1024 * 1024;

beforeAll(async () => {
  server = await TernServer.start();
  app = server.createApp();
  api = new ServerClient({ baseUrl: server.base, appKey: app.appKey, appSecret: app.appSecret });
  await api.upsertUsers([{ id: "alice" }, { id: "bob" }, { id: "carol" }]);
  proxy = await TcpProxy.start(server.base);
});

afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
});

function digest(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

describe("files", () => {
  it("uploads resume after a cut connection; members download, others may not", async () => {
    // uploadFile: announce, pieces with checksums, the complete file's download answer.
    const small = new Uint8Array(randomBytes(300_000));
    const s = await api.uploadFile({ uploader: "alice", name: "a.bin", contentType: "application/octet-stream", data: small });
    expect(s.file).toMatchObject({ state: "complete", size: small.length, sha256: sha256Hex(small) });
    expect(digest(await api.downloadFile(s.file.id))).toBe(digest(small));

    // resumeUpload through a proxy that cuts the connection in the middle.
    const data = new Uint8Array(randomBytes(10 * MiB + 123));
    const ticket = await api.createFile({
      uploader: "alice",
      name: "report.pdf",
      size: data.length,
      content_type: "application/pdf",
      sha256: sha256Hex(data),
    });
    proxy.cutAfterBytes = 5 * MiB;
    const cutsBefore = proxy.cuts;
    const progress: number[] = [];
    await api.resumeUpload(ticket.upload_url.replace(server.base, proxy.base), data, {
      onProgress: (sent) => progress.push(sent),
    });
    expect(proxy.cuts).toBe(cutsBefore + 1);
    expect(progress.at(-1)).toBe(data.length);
    const d = await api.fileUrl(ticket.file_id);
    expect(d.file).toMatchObject({ state: "complete", size: data.length, sha256: sha256Hex(data) });
    expect(d.thumbnail_url).toBeUndefined();

    await api.sendMessage({ from: "alice", to: { user: "bob" }, type: "file", content: { file_id: d.file.id } });
    const got = await api.downloadFile(d.file.id, "bob");
    expect(digest(got)).toBe(digest(data));
    const e = await api.fileUrl(d.file.id, "carol").catch((e: unknown) => e);
    expect(e).toBeInstanceOf(ServerApiError);
    expect((e as ServerApiError).code).toBe("not_found");
    const storage = await api.storage();
    expect(storage.files).toBeGreaterThanOrEqual(1);
  });

  it("a wrong checksum is refused and nothing is served", async () => {
    const data = new Uint8Array(randomBytes(1000));
    const ticket = await api.createFile({
      uploader: "alice",
      name: "x.bin",
      size: data.length,
      content_type: "application/octet-stream",
      sha256: "0".repeat(64),
    });
    const e = await api.resumeUpload(ticket.upload_url, data).catch((e: unknown) => e);
    expect((e as ServerApiError).code).toBe("checksum_mismatch");
    const again = await api.fileUrl(ticket.file_id).catch((e: unknown) => e);
    expect((again as ServerApiError).code).toBe("file_not_ready");
  });

  it("tus-js-client uploads to the embedded endpoint and resumes after a cut", async () => {
    const data = Buffer.from(randomBytes(12 * MiB + 7));
    const ticket = await api.createFile({
      uploader: "alice",
      name: "holiday.mov",
      size: data.length,
      content_type: "video/quicktime",
      sha256: sha256Hex(data),
    });
    // The same signed URL, reached through the proxy.
    const uploadUrl = ticket.upload_url.replace(server.base, proxy.base);
    expect(uploadUrl.startsWith(proxy.base)).toBe(true);
    proxy.cutAfterBytes = 6 * MiB;
    const cutsBefore = proxy.cuts;
    const errors: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        uploadUrl,
        retryDelays: [0, 200, 500, 1000, 2000, 3000],
        onShouldRetry: (err) => {
          errors.push(String(err));
          // tus-js-client's own rule: network errors, 5xx, 409 and 423 are tried again.
          const status = err.originalResponse?.getStatus() ?? 0;
          return status < 400 || status >= 500 || status === 409 || status === 423;
        },
        onError: reject,
        onSuccess: () => resolve(),
      });
      upload.start();
    });
    expect(proxy.cuts).toBe(cutsBefore + 1);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(await api.uploadOffset(ticket.upload_url)).toBe(data.length);
    const d = await api.fileUrl(ticket.file_id);
    expect(d.file.state).toBe("complete");
    expect(digest(await api.downloadFile(ticket.file_id))).toBe(digest(data));
  });
});
