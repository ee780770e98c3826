// Writes docs/protocol-frames.json: protocol frames in both encodings. `json` is the
// frame in the proto3 JSON mapping as Tern writes it (proto field names, 64-bit integers
// as strings, defaults left out); `proto_hex` is the same frame in binary protobuf. Any
// implementation must decode the two to the same frame (the TypeScript SDK's test checks
// it). The frames are the examples of docs/protocol.md.
//   node scripts/golden-frames.mjs          write the file
//   node scripts/golden-frames.mjs --check  fail if the file is not what this writes

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromJson, toBinary } from "@bufbuild/protobuf";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const out = join(here, "../../docs/protocol-frames.json");
// From the build (npm run build first): the generated schemas.
const { proto } = await import(join(here, "dist/esm/index.js"));
const { ClientFrameSchema, ServerFrameSchema } = proto;

const msg = {
  msg_id: "m_01jh0000000000000000000000",
  conversation_id: "d:alice:bob",
  seq: "8",
  sender: "bob",
  client_msg_id: "c-1",
  type: "text",
  content: { text: "hey 👋", nested: { list: [1.5, "two", true, null] } },
  created_at: "1767225600456",
};

const client = {
  auth: { id: "1", auth: { token: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.sig", device_id: "laptop-1", platform: "PLATFORM_DESKTOP", sync_version: "0" } },
  send_user: { id: "2", send: { client_msg_id: "c-0001", user: "bob", type: "text", content: { text: "hi bob" } } },
  send_group_mentions: { id: "43", send: { client_msg_id: "c-0009", group: "team", type: "text", content: { text: "@bob look" }, mentions: ["bob"] } },
  send_room_reply: { id: "5", send: { client_msg_id: "c-0004", room: "live", type: "text", content: { text: "yes!" }, reply_to: "m_01jh" } },
  sync: { id: "5", sync: { since_version: "42", limit: 50 } },
  history_after: { id: "6", history: { conversation_id: "d:alice:bob", after_seq: "7", limit: 100 } },
  history_before: { id: "7", history: { conversation_id: "g:g1", before_seq: "120", limit: 20 } },
  read: { id: "8", read: { conversation_id: "d:alice:bob", seq: "9" } },
  recall: { id: "9", recall: { msg_id: "m_01jh" } },
  typing: { id: "10", typing: { conversation_id: "d:alice:bob" } },
  ping: { id: "11", ping: { nonce: "5" } },
  subscribe_presence: { id: "12", subscribe_presence: { user_ids: ["bob", "carol"] } },
  join_room: { id: "14", join_room: { room_id: "live" } },
  edit_message: { id: "30", edit_message: { msg_id: "m_01jh", content: { text: "see you at 8" } } },
  update_extensions: { id: "32", update_extensions: { msg_id: "m_01jh", updates: [{ key: "poll:yes", value: "3", expected_version: "2" }, { key: "draft" }] } },
  add_reaction: { id: "33", add_reaction: { msg_id: "m_01jh", reaction: "👍" } },
  get_changes: { id: "36", get_changes: { conversation_id: "d:alice:bob", since_version: "42", limit: 100 } },
  create_group: { id: "30", create_group: { group_id: "team", name: "Team", members: ["bob", "carol"], announcement: "hi all", metadata: { topic: "work" } } },
  mute_member: { id: "41", mute_member: { group_id: "team", user_id: "carol", until: "1798761600000" } },
  update_friend: { id: "24", update_friend: { friend_id: "bob", remark: "", tags: ["work"], set_tags: true } },
  register_push_token: { id: "70", register_push_token: { provider: "apns", token: "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90", environment: "sandbox", locale: "en-GB" } },
  update_push_token_clear_locale: { id: "71", update_push_token: { device_id: "dev_01jh0000000000000000000000", token: "00000000000000000000000000000000000000000000000000000000000000ff", locale: "" } },
  remove_push_token: { id: "72", remove_push_token: { device_id: "dev_01jh0000000000000000000000" } },
  update_push_settings: { id: "73", update_push_settings: { dnd: { start: "22:00", end: "07:00", utc_offset_minutes: 60 }, mute: ["g:climbers"], unmute: ["d:alice:bob"] } },
  update_push_settings_clear_dnd: { id: "75", update_push_settings: { clear_dnd: true } },
  get_push_settings: { id: "74", get_push_settings: {} },
};

const server = {
  auth_ok: { id: "1", auth_ok: { user_id: "alice", session_id: "gw-1/17", heartbeat_interval_ms: "30000", server_time: "1767225600123", sync: { conversations: [{ conversation_id: "d:alice:bob", last_seq: "9", read_seq: "7", unread: "2", version: "45", last_message: msg, updated_at: "1767225600456" }], version: "45" } } },
  send_ack: { id: "2", send_ack: { msg_id: "m_01jh", conversation_id: "d:alice:bob", seq: "7", created_at: "1767225600456", client_msg_id: "c-0001" } },
  sync_result_more: { id: "5", sync_result: { conversations: [{ conversation_id: "g:team", last_seq: "3", version: "46", mentioned: true }], version: "46", has_more: true } },
  history_result: { id: "6", history_result: { conversation_id: "d:alice:bob", messages: [msg] } },
  message_push: { message: msg },
  message_system: { message: { msg_id: "m_2", conversation_id: "g:team", seq: "9", client_msg_id: "sys-01jh", type: "system", content: { event: "member_removed", group_id: "team", by: "alice", user: "dave" }, created_at: "1767225600456" } },
  message_reply: { message: { ...msg, seq: "9", reply_to: "m_01jh", quoted: { msg_id: "m_01jh", seq: "8", sender: "alice", type: "text", content: { text: "lunch?" }, created_at: "1767225600000" }, version: "57", extensions: [{ key: "k", value: "v", version: "3", updated_by: "bob", updated_at: "1767225600999" }], reactions: [{ reaction: "👍", count: "2", reacted: true, users: ["bob", "carol"] }] } },
  receipt: { receipt: { conversation_id: "d:alice:bob", user_id: "bob", read_seq: "8" } },
  recall: { recall: { message: { msg_id: "m_01jh", conversation_id: "d:alice:bob", seq: "8", sender: "alice", type: "text", created_at: "1767225600456", recalled: true, version: "57" }, by: "alice", recalled_at: "1767225601000" } },
  change_reaction: { change: { conversation_id: "d:alice:bob", msg_id: "m_01jh", seq: "8", version: "58", by: "bob", changed_at: "1767225601000", reaction: { reaction: "👍", user_id: "bob", added: true, count: "2" } } },
  change_extensions: { change: { conversation_id: "d:alice:bob", msg_id: "m_01jh", seq: "8", version: "59", by: "bob", changed_at: "1767225601000", extensions: { items: [{ key: "k", value: "v", version: "3" }, { key: "gone", version: "4" }] } } },
  change_deleted: { change: { conversation_id: "d:alice:bob", msg_id: "m_01jh", seq: "8", version: "60", by: "alice", changed_at: "1767225601000", deleted: {} } },
  typing: { typing: { conversation_id: "d:alice:bob", user_id: "bob" } },
  presence_offline: { presence: { user_id: "bob", last_seen: "1767225600999" } },
  notification_kept: { notification: { notification_id: "m_01jh", content: { text: "maintenance tonight" }, created_at: "1767225600000", conversation_id: "s:alice", seq: "3", type: "text" } },
  room_joined: { id: "14", room_joined: { room_id: "live", conversation_id: "r:live", recent: [{ ...msg, conversation_id: "r:live", seq: "41" }], member_count: "3", room: { room_id: "live", name: "Live", metadata: { stage: "main" }, member_count: "3", created_at: "1767225600000", updated_at: "1767225600000" }, last_seq: "41" } },
  pong: { id: "11", pong: { nonce: "5", server_time: "1767225600999" } },
  ok: { id: "9", ok: {} },
  kicked: { kicked: { code: "session_replaced", reason: "a newer session of this user on this platform" } },
  error_rate_limited: { id: "3", error: { code: "rate_limited", message: "too many sends", retry_after_ms: "250" } },
  error_push: { error: { code: "slow_consumer", message: "the outbound queue overflowed" } },
  push_device: { id: "70", push_device: { device_id: "dev_01jh0000000000000000000000", provider: "apns", token: "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90", environment: "sandbox", locale: "en-GB", created_at: "1767225600456", updated_at: "1767225600456" } },
  push_settings: { id: "73", push_settings: { dnd: { start: "22:00", end: "07:00", utc_offset_minutes: 60 }, muted_conversations: ["g:climbers"] } },
  push_settings_none: { id: "74", push_settings: {} },
};

const hex = (b) => Buffer.from(b).toString("hex");
const frames = [];
for (const [name, json] of Object.entries(client)) {
  frames.push({ name, frame: "ClientFrame", json, proto_hex: hex(toBinary(ClientFrameSchema, fromJson(ClientFrameSchema, json))) });
}
for (const [name, json] of Object.entries(server)) {
  frames.push({ name, frame: "ServerFrame", json, proto_hex: hex(toBinary(ServerFrameSchema, fromJson(ServerFrameSchema, json))) });
}
const text =
  JSON.stringify(
    {
      description:
        "Golden frames of the client protocol (docs/protocol.md): each frame in the proto3 JSON mapping (tern.v1.json) and in binary protobuf (tern.v1.proto, hex). Both encodings of a frame decode to the same message. Written by sdks/typescript/scripts/golden-frames.mjs.",
      frames,
    },
    null,
    1,
  ) + "\n";
if (process.argv.includes("--check")) {
  if (readFileSync(out, "utf8") !== text) {
    console.error("docs/protocol-frames.json is stale: run node scripts/golden-frames.mjs");
    process.exit(1);
  }
} else {
  writeFileSync(out, text);
  console.log(`wrote ${frames.length} frames to docs/protocol-frames.json`);
}
