// Node's entry of `@tern/sdk`: the same client, with `ws` as its WebSocket (Node 20 has
// no global one).

import WebSocket from "ws";
import { setDefaultSocketFactory, type SocketLike } from "./client/socket.js";

if (typeof globalThis.WebSocket !== "function") {
  setDefaultSocketFactory((url, protocols) => new WebSocket(url, protocols, { maxPayload: 1 << 20 }) as unknown as SocketLike);
}

export * from "./index.js";
