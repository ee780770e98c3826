// A WebSocket man in the middle between the client and `tern serve`, for what a real
// network does to a client: frames lost while the socket looks healthy, a malformed frame,
// a connection cut.

import { WebSocket, WebSocketServer, type RawData } from "ws";
import type { AddressInfo } from "node:net";

export class Proxy {
  private server: WebSocketServer;
  /** Server → client frames for which this returns true are dropped (once each). */
  dropIf: ((data: RawData, isBinary: boolean) => boolean) | undefined;
  /** The next server → client frame for which this returns true is passed on, then that
   * connection is cut (once). */
  cutAfter: ((data: RawData, isBinary: boolean) => boolean) | undefined;
  /** Client → server frames for which this returns an answer are not passed on: the answer
   * goes back to the client as if the server had sent it. */
  answerIf: ((data: RawData, isBinary: boolean) => Buffer | undefined) | undefined;
  /** While true, connections are refused (cut as soon as they open). */
  down = false;
  connections = 0;
  private open = new Set<WebSocket>();

  private constructor(upstream: string) {
    this.server = new WebSocketServer({
      port: 0,
      host: "127.0.0.1",
      handleProtocols: (protocols) => [...protocols][0] ?? false,
    });
    this.server.on("connection", (client, req) => {
      if (this.down) {
        client.terminate();
        return;
      }
      this.connections++;
      this.open.add(client);
      const protocol = req.headers["sec-websocket-protocol"]?.split(",")[0]?.trim();
      const up = new WebSocket(upstream, protocol ? [protocol] : []);
      const early: [RawData, boolean][] = [];
      up.on("open", () => {
        for (const [d, b] of early) up.send(d, { binary: b });
      });
      client.on("message", (d, isBinary) => {
        const answer = this.answerIf?.(d, isBinary);
        if (answer) {
          client.send(answer, { binary: isBinary });
          return;
        }
        if (up.readyState === WebSocket.OPEN) up.send(d, { binary: isBinary });
        else early.push([d, isBinary]);
      });
      up.on("message", (d, isBinary) => {
        if (this.dropIf?.(d, isBinary)) return;
        if (client.readyState === WebSocket.OPEN) client.send(d, { binary: isBinary });
        if (this.cutAfter?.(d, isBinary)) {
          this.cutAfter = undefined;
          // Once the frame is written; nothing after it gets through.
          client.close();
          up.terminate();
        }
      });
      const closeBoth = () => {
        this.open.delete(client);
        client.terminate();
        up.terminate();
      };
      client.on("close", closeBoth);
      up.on("close", closeBoth);
      client.on("error", closeBoth);
      up.on("error", closeBoth);
    });
  }

  static async start(upstream: string): Promise<Proxy> {
    const p = new Proxy(upstream);
    await new Promise<void>((r) => p.server.once("listening", () => r()));
    return p;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/connect`;
  }

  /** Sends this raw message to every client, as if the server had. */
  inject(data: string | Buffer, binary: boolean): void {
    for (const c of this.open) c.send(data, { binary });
  }

  /** Cuts every open connection. */
  cutAll(): void {
    for (const c of this.open) c.terminate();
  }

  async stop(): Promise<void> {
    for (const c of this.open) c.terminate();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
