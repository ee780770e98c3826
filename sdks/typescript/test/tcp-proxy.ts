// A TCP man in the middle between an HTTP client and `tern serve`, for a connection cut
// in the middle of a request body, as a real network does to a long upload.

import { createConnection, createServer, type AddressInfo, type Server, type Socket } from "node:net";

export class TcpProxy {
  private server: Server;
  private open = new Set<Socket>();
  /** Once a connection has carried more than this many bytes towards the server, it is cut (once). */
  cutAfterBytes: number | undefined;
  cuts = 0;
  connections = 0;

  private constructor(target: { host: string; port: number }) {
    this.server = createServer((client) => {
      this.connections++;
      const up = createConnection(target);
      this.open.add(client).add(up);
      let sent = 0;
      // Set at the cut: what the client still sends while the half chunk is being written
      // must not follow it (that would put a gap in the middle of the stream, not cut it).
      let cut = false;
      client.on("data", (d: Buffer) => {
        if (cut) return;
        sent += d.length;
        if (this.cutAfterBytes !== undefined && sent > this.cutAfterBytes) {
          this.cutAfterBytes = undefined;
          this.cuts++;
          cut = true;
          // Part of this chunk gets through, then nothing: both sides see the connection drop.
          up.write(d.subarray(0, d.length >> 1), () => {
            client.destroy();
            up.destroy();
          });
          return;
        }
        up.write(d);
      });
      up.on("data", (d: Buffer) => client.write(d));
      const closeBoth = () => {
        this.open.delete(client);
        this.open.delete(up);
        client.destroy();
        up.destroy();
      };
      client.on("close", closeBoth).on("error", closeBoth);
      up.on("close", closeBoth).on("error", closeBoth);
    });
  }

  /** A proxy on 127.0.0.1:0 to the host and port of `base` (`http://host:port`). */
  static async start(base: string): Promise<TcpProxy> {
    const u = new URL(base);
    const p = new TcpProxy({ host: u.hostname, port: Number(u.port) });
    await new Promise<void>((r) => p.server.listen(0, "127.0.0.1", () => r()));
    return p;
  }

  get base(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.open) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
