// The ordering core on its own: every message once and in seq order, gaps held and
// filled, seqs a page passes over skipped, each change once and after its message.

import { describe, expect, it } from "vitest";
import { Timeline, type Out } from "../src/client/timeline.js";
import type { Message, MessageChange } from "../src/index.js";

const msg = (seq: number, version = 0): Message => ({
  msgId: `m${seq}`,
  conversationId: "d:a:b",
  seq,
  sender: "a",
  clientMsgId: `c${seq}`,
  type: "text",
  content: { text: String(seq) },
  createdAt: 0,
  recalled: false,
  editedAt: 0,
  replyTo: "",
  quoted: undefined,
  version,
  extensions: [],
  reactions: [],
  mentions: [],
  mentionAll: false,
});

const change = (seq: number, version: number, kind: "reaction" | "deleted" = "reaction"): MessageChange => ({
  conversationId: "d:a:b",
  msgId: `m${seq}`,
  seq,
  version,
  by: "b",
  changedAt: 0,
  change:
    kind === "deleted"
      ? { case: "deleted", value: {} }
      : { case: "reaction", value: { reaction: "+1", userId: "b", added: true, count: 1 } },
});

const trace = (out: Out[]) => out.map((o) => ("message" in o ? `m${o.message.seq}` : `c${o.change.version}`));

describe("timeline", () => {
  it("drops duplicates and holds what comes after a gap", () => {
    const t = new Timeline();
    t.baseline(0);
    expect(trace(t.offer(msg(1)))).toEqual(["m1"]);
    expect(trace(t.offer(msg(1)))).toEqual([]);
    expect(trace(t.offer(msg(3)))).toEqual([]);
    expect(t.gapAfter()).toBe(1);
    expect(trace(t.offer(msg(2)))).toEqual(["m2", "m3"]);
    expect(t.gapAfter()).toBeUndefined();
  });

  it("a page that passes over seqs skips them, and stops at its last message", () => {
    const t = new Timeline();
    t.baseline(1);
    t.knownUpTo(6);
    expect(trace(t.offer(msg(6)))).toEqual([]);
    expect(trace(t.offerPage(1, [msg(3), msg(5)]))).toEqual(["m3", "m5", "m6"]);
    const u = new Timeline();
    u.baseline(0);
    u.knownUpTo(9);
    expect(trace(u.offerPage(0, [msg(1), msg(2)]))).toEqual(["m1", "m2"]);
    expect(u.gapAfter()).toBe(2);
    expect(trace(u.offerPage(2, []))).toEqual([]);
    expect(u.gapAfter()).toBeUndefined();
  });

  it("each change once, after its message, unless the message already has it", () => {
    const t = new Timeline();
    t.baseline(0);
    t.knownUpTo(3);
    expect(t.change(change(2, 20))).toEqual([]);
    expect(t.change(change(3, 30))).toEqual([]);
    expect(t.change(change(3, 31))).toEqual([]);
    expect(trace(t.offerPage(0, [msg(1), msg(2), msg(3, 30)]))).toEqual(["m1", "m2", "c20", "m3", "c31"]);
    for (const [s, v] of [[2, 20], [3, 30], [3, 31]] as const) expect(t.change(change(s, v))).toEqual([]);
    t.pulledThrough(31);
    expect(t.change(change(3, 31))).toEqual([]);
    expect(trace(t.change(change(3, 32)))).toEqual(["c32"]);
  });

  it("a message deleted for this user takes no more changes", () => {
    const t = new Timeline();
    t.baseline(0);
    t.offer(msg(1));
    expect(trace(t.change(change(1, 5, "deleted")))).toEqual(["c5"]);
    expect(t.change(change(1, 6))).toEqual([]);
  });

  it("a room re-join shows the backlog once and restarts when the room was made again", () => {
    const t = new Timeline();
    t.joinedAt(3, 5);
    expect(trace([...t.offer(msg(4)), ...t.offer(msg(5))])).toEqual(["m4", "m5"]);
    t.joinedAt(3, 8);
    expect(trace([4, 5, 6, 7, 8].flatMap((s) => t.offer(msg(s))))).toEqual(["m6", "m7", "m8"]);
    t.joinedAt(49, 60);
    expect(t.gapAfter()).toBe(49);
    t.joinedAt(0, 1);
    expect(trace(t.offer(msg(1)))).toEqual(["m1"]);
  });
});
