// Collecting a client's events and waiting for what a user would notice.

import type { Client, EventMap, EventType, Message } from "../src/index.node.js";

export function collect<K extends EventType>(client: Client, type: K): EventMap[K][] {
  const out: EventMap[K][] = [];
  client.on(type, (e) => out.push(e));
  return out;
}

export async function until(what: string, f: () => boolean, timeoutMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!f()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The texts of these messages, in the order they arrived. */
export function texts(messages: { message: Message }[], conversationId?: string): string[] {
  return messages
    .filter((e) => !conversationId || e.message.conversationId === conversationId)
    .map((e) => String(e.message.content?.text));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
