// `@tern/sdk`: the real-time client for browsers (and, through the Node entry, Node).
// Nothing here needs Node: the browser build imports only this.

export { Client, tokenExpiry, type Args, type ClientOptions, type PlatformName, type SendOptions } from "./client/client.js";
export { ClientError, TernError, TOKEN_CODES } from "./errors.js";
export { MemoryOutbox, IndexedDbOutbox, type OutboxEntry, type OutboxStore } from "./client/outbox.js";
export { setDefaultSocketFactory, type SocketFactory, type SocketLike } from "./client/socket.js";
export {
  SUBPROTOCOLS,
  MAX_FRAME_BYTES,
  decodeServerFrame,
  encodeClientFrame,
  decodeClientFrame,
  encodeServerFrame,
  BadFrame,
  type Subprotocol,
} from "./client/codec.js";
export { toPlain, type Plain } from "./client/plain.js";
export type * from "./client/types.js";
export * as proto from "./gen/tern/v1/client_pb.js";
