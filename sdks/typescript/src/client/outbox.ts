// Where unacknowledged sends wait. A send keeps its `client_msg_id` until the server
// answers it, across reconnects and, in the browser, across page loads (IndexedDB): the
// server answers a retry with the first answer, so nothing is sent twice or lost.

/** One queued send: the `send` command in proto3 JSON, with its client_msg_id inside. */
export interface OutboxEntry {
  /** Orders the queue: sends go out in the order the app made them. */
  key: number;
  clientMsgId: string;
  /** The `send` command as proto3 JSON (proto field names). */
  send: Record<string, unknown>;
}

export interface OutboxStore {
  load(): Promise<OutboxEntry[]>;
  put(entry: OutboxEntry): Promise<void>;
  delete(key: number): Promise<void>;
}

/** Node's default: the queue lives as long as the process. */
export class MemoryOutbox implements OutboxStore {
  private entries = new Map<number, OutboxEntry>();
  async load(): Promise<OutboxEntry[]> {
    return [...this.entries.values()].sort((a, b) => a.key - b.key);
  }
  async put(entry: OutboxEntry): Promise<void> {
    this.entries.set(entry.key, entry);
  }
  async delete(key: number): Promise<void> {
    this.entries.delete(key);
  }
}

/** The browser's default: one IndexedDB database per (user, device). */
export class IndexedDbOutbox implements OutboxStore {
  private db: Promise<IDBDatabase>;
  constructor(name: string) {
    this.db = new Promise((resolve, reject) => {
      const req = indexedDB.open(name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore("outbox", { keyPath: "key" });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  private async tx<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.db;
    return new Promise((resolve, reject) => {
      const t = db.transaction("outbox", mode);
      const r = f(t.objectStore("outbox"));
      t.oncomplete = () => resolve(r.result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  }
  async load(): Promise<OutboxEntry[]> {
    const all = (await this.tx("readonly", (s) => s.getAll())) as OutboxEntry[];
    return all.sort((a, b) => a.key - b.key);
  }
  async put(entry: OutboxEntry): Promise<void> {
    await this.tx("readwrite", (s) => s.put(entry));
  }
  async delete(key: number): Promise<void> {
    await this.tx("readwrite", (s) => s.delete(key));
  }
}

export function defaultOutbox(name: string): OutboxStore {
  return typeof indexedDB !== "undefined" ? new IndexedDbOutbox(name) : new MemoryOutbox();
}
