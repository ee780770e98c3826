// The WebSocket the client drives: the browser's own, or `ws` in Node (set by the Node
// entry), or any object with the same shape (tests, React Native).

export interface SocketLike {
  binaryType: string;
  readonly protocol: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type SocketFactory = (url: string, protocols: string[]) => SocketLike;

let defaultFactory: SocketFactory | undefined =
  typeof globalThis.WebSocket === "function"
    ? (url, protocols) => new globalThis.WebSocket(url, protocols) as unknown as SocketLike
    : undefined;

export function setDefaultSocketFactory(f: SocketFactory): void {
  defaultFactory = f;
}

export function getDefaultSocketFactory(): SocketFactory | undefined {
  return defaultFactory;
}
