// The app-facing types of the real-time client: messages, conversations, changes and the
// one stream of typed events.

import type { JsonObject } from "@bufbuild/protobuf";
import type * as pb from "../gen/tern/v1/client_pb.js";
import type { Plain } from "./plain.js";

/** A stored message. `sender` is "" for what the app sent as the system. */
export type Message = Plain<pb.Message>;
/** One line of the user's conversation list (with `unread` and `lastMessage`). */
export type Conversation = Plain<pb.ConversationState>;
/**
 * A change to a message: `change.case` is `edit`, `extensions`, `reaction`, `deleted`
 * (for this user) or `recall`. Each `version` reaches the app once.
 */
export type MessageChange = Plain<pb.MessageChange>;
export type SendAck = Plain<pb.SendAck>;
export type Presence = Plain<pb.PresenceUpdate>;
export type Group = Plain<pb.GroupInfo>;
export type GroupMember = Plain<pb.GroupMemberInfo>;
export type JoinRequest = Plain<pb.JoinRequestInfo>;
export type FriendRequest = Plain<pb.FriendRequestInfo>;
export type Friend = Plain<pb.FriendInfo>;
export type Room = Plain<pb.RoomInfo>;
export type RoomJoined = Plain<pb.RoomJoined>;
export type Extension = Plain<pb.Extension>;
export type ReactionSummary = Plain<pb.ReactionSummary>;
export type ReadCount = Plain<pb.ReadCount>;
/** A device registered for offline pushes (docs/push.md). */
export type PushDevice = Plain<pb.PushDeviceInfo>;
/** The connected user's do-not-disturb hours (`dnd`, absent: none) and muted conversations. */
export type PushSettings = Plain<pb.PushSettingsInfo>;

/** A push token to register for the connected user. */
export interface PushTokenInit {
  provider: "apns" | "fcm";
  /** APNs: the device token in hex (64 to 200 characters). FCM: the registration token. */
  token: string;
  /** APNs only: the app's bundle id, when it differs from the one in the app's credentials. */
  bundleId?: string;
  /** `production` by default; APNs development builds use `sandbox`. */
  environment?: "sandbox" | "production";
  /** The device's locale (`en-US`). */
  locale?: string;
}

/** A change of a registered device; absent parts are kept. */
export interface PushTokenChange {
  /** A rotated token from the provider for the same device. */
  token?: string;
  environment?: "sandbox" | "production";
  /** `""` clears it. */
  locale?: string;
}

/**
 * Do-not-disturb hours: no pushes from `start` to `end` (local times of day, `"22:00"`,
 * `"07:00"`; an end before the start runs over midnight), local time being UTC plus
 * `utcOffsetMinutes` (-840 to 840; 0 by default).
 */
export interface DndHours {
  start: string;
  end: string;
  utcOffsetMinutes?: number;
}

/** A change of the connected user's push settings, applied all or nothing; empty parts change nothing. */
export interface PushSettingsChange {
  /** New do-not-disturb hours. */
  dnd?: DndHours;
  /** Removes the do-not-disturb hours (refused together with `dnd`). */
  clearDnd?: boolean;
  /** Conversations whose messages stop being pushed to this user (at most 100); live delivery is unchanged. */
  mute?: string[];
  /** Applied after `mute` (at most 100). */
  unmute?: string[];
}

export type Target = { user: string } | { group: string } | { room: string };

export type ConnectionState = "idle" | "connecting" | "connected" | "disconnected" | "closed";

/** Every event, by `type`. */
export interface EventMap {
  /** The connection changed. `closed` is final: `code` says why (`closed` by the app, a token code, a kick code). */
  state: { type: "state"; state: ConnectionState; reason?: string; code?: string };
  /** Exactly once per (conversation, seq), in seq order per conversation. */
  message: { type: "message"; message: Message };
  /** A change to a message, each version once. */
  changed: { type: "changed"; change: MessageChange };
  /** The conversation list moved (sync, a read, a new message): the entry as the server has it. */
  conversation: { type: "conversation"; conversation: Conversation };
  receipt: { type: "receipt"; conversationId: string; userId: string; readSeq: number };
  typing: { type: "typing"; conversationId: string; userId: string };
  presence: { type: "presence"; presence: Presence };
  /**
   * Outside the chats. Kept ones (broadcasts, system messages of the app's backend) carry
   * `conversationId` (`s:<user>`) and `seq` and arrive once; passing ones (friend requests) neither.
   */
  notification: {
    type: "notification";
    id: string;
    content: JsonObject;
    createdAt: number;
    conversationId?: string;
    seq?: number;
    messageType?: string;
  };
  roomLeft: { type: "roomLeft"; roomId: string; reason: string };
  kicked: { type: "kicked"; code: string; reason: string };
  /** A queued send was stored (also sends restored from a previous page load). */
  sent: { type: "sent"; ack: SendAck };
  /** A queued send was refused for good (`code` as in docs/protocol.md). */
  sendFailed: { type: "sendFailed"; clientMsgId: string; code: string; message: string };
  /**
   * Something went wrong that the client handles by itself (a malformed frame: the
   * connection is reset and synced; a token refused: the provider is asked again).
   */
  error: { type: "error"; code: string; message: string };
}

export type EventType = keyof EventMap;
export type TernEvent = EventMap[EventType];
