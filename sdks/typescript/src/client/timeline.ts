// Exactly once, in order: one conversation's messages go to the app by seq, with no gaps
// and no repeats, whether they came as live pushes, sync-driven history pulls or a room's
// backlog, in whatever order those arrive. Changes to messages go out once per version,
// after their message; a change the message already carries (its `version` covers it) is
// not repeated. Same algorithm as the Rust SDK's timeline (docs/protocol.md, "Sync").

import type { Message, MessageChange } from "./types.js";

/** Most messages held back waiting for a gap to fill. */
const MAX_BUFFERED = 10_000;

export type Out = { message: Message } | { change: MessageChange };

export class Timeline {
  /** Highest seq handed out (or the baseline); undefined until first sighting. */
  delivered: number | undefined;
  /** Highest seq known to exist. */
  target = 0;
  /** Arrived, not yet deliverable (a gap before them). */
  private buffer = new Map<number, Message>();
  /** A history pull is in flight (or waits to be asked again after a refusal). */
  filling = false;
  /** History pulls refused in a row with a retryable code: how long the next waits. */
  fillRefusals = 0;
  /** Seqs up to this that a history page passed over do not exist for this user. */
  private skipThrough = 0;
  /** Changes of messages not delivered yet, by seq. */
  private held = new Map<number, MessageChange[]>();
  /** Seq -> version, for delivered messages that changed before they were delivered. */
  private reflected = new Map<number, number>();
  /** Versions handed out (or found in their message) above `watermark`. */
  private applied = new Set<number>();
  /** Every change up to this version was pulled. */
  watermark = 0;
  /** Seqs deleted for this user. */
  private deleted = new Set<number>();
  /** A pull of changes from this version was started and has not reached its last page. */
  changesOwed: number | undefined;

  baseline(seq: number): void {
    if (this.delivered === undefined) this.delivered = Math.max(seq, 0);
  }

  started(): boolean {
    return this.delivered !== undefined;
  }

  knownUpTo(lastSeq: number): void {
    this.target = Math.max(this.target, lastSeq);
  }

  offer(m: Message): Out[] {
    this.baseline(m.seq - 1);
    this.insert(m);
    return this.drain();
  }

  private insert(m: Message): void {
    this.target = Math.max(this.target, m.seq);
    if (m.seq > (this.delivered ?? 0) && this.buffer.size < MAX_BUFFERED) this.buffer.set(m.seq, m);
  }

  /** A page of history asked for after `after`: seqs it passes over are skipped. */
  offerPage(after: number, page: Message[]): Out[] {
    if (page.length === 0) return this.skipGap();
    const top = Math.max(...page.map((m) => m.seq));
    this.baseline(after);
    for (const m of page) this.insert(m);
    this.skipThrough = Math.max(this.skipThrough, top);
    return this.drain();
  }

  private drain(): Out[] {
    const out: Out[] = [];
    let delivered = this.delivered ?? 0;
    for (;;) {
      const next = delivered + 1;
      const m = this.buffer.get(next);
      if (m) {
        this.buffer.delete(next);
        delivered = next;
        out.push({ message: m });
        if (m.version > this.watermark) this.reflected.set(m.seq, m.version);
        const held = this.held.get(next) ?? [];
        this.held.delete(next);
        for (const c of held) {
          if (c.version > m.version) out.push(...this.handle(c, next));
          else this.applied.add(c.version);
        }
      } else if (next <= this.skipThrough) {
        delivered = next;
        this.held.delete(next);
      } else {
        break;
      }
    }
    this.delivered = delivered;
    return out;
  }

  /** Where a history pull should start, if messages are missing and none is in flight. */
  gapAfter(): number | undefined {
    if (this.delivered === undefined || this.filling) return undefined;
    return this.delivered < this.target ? this.delivered : undefined;
  }

  /** A room was joined: its backlog starts after `start`, it reaches `lastSeq`. */
  joinedAt(start: number, lastSeq: number): void {
    const d = this.delivered;
    if (d !== undefined && d > lastSeq) {
      Object.assign(this, new Timeline());
      this.delivered = Math.max(start, 0);
    } else if (d !== undefined && d < start) {
      this.delivered = start;
      for (const seq of [...this.buffer.keys()]) if (seq <= start) this.buffer.delete(seq);
    } else if (d === undefined) {
      this.delivered = Math.max(start, 0);
    }
    this.target = Math.max(this.target, lastSeq);
  }

  /** A pull found nothing where more was expected: skip to what exists. */
  skipGap(): Out[] {
    const keys = [...this.buffer.keys()];
    const next = keys.length ? Math.min(...keys) - 1 : this.target;
    this.skipThrough = Math.max(this.skipThrough, next);
    return this.drain();
  }

  change(c: MessageChange): Out[] {
    if (c.version <= this.watermark || this.applied.has(c.version)) return [];
    if (this.delivered !== undefined && c.seq > this.delivered) {
      const held = this.held.get(c.seq) ?? [];
      if (!held.some((h) => h.version === c.version)) {
        held.push(c);
        held.sort((a, b) => a.version - b.version);
      }
      this.held.set(c.seq, held);
      return [];
    }
    return this.handle(c, c.seq);
  }

  private handle(c: MessageChange, seq: number): Out[] {
    if (this.applied.has(c.version)) return [];
    this.applied.add(c.version);
    if (this.deleted.has(seq)) return [];
    const r = this.reflected.get(seq);
    if (r !== undefined && r >= c.version) return [];
    if (c.change.case === "deleted") this.deleted.add(seq);
    return [{ change: c }];
  }

  pulledThrough(version: number): void {
    if (version <= this.watermark) return;
    this.watermark = version;
    for (const v of [...this.applied]) if (v <= version) this.applied.delete(v);
    for (const [seq, v] of [...this.reflected]) if (v <= version) this.reflected.delete(seq);
  }
}
