//! What the app sees: messages, events, acknowledgements, errors.

use serde::{Deserialize, Serialize};

use crate::content::struct_to_json;
use crate::proto as pb;

/// The kind of device, for the server's multi-device policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Ios,
    Android,
    Web,
    Desktop,
    Other,
}

impl Platform {
    pub(crate) fn to_proto(self) -> pb::Platform {
        match self {
            Self::Ios => pb::Platform::Ios,
            Self::Android => pb::Platform::Android,
            Self::Web => pb::Platform::Web,
            Self::Desktop => pb::Platform::Desktop,
            Self::Other => pb::Platform::Other,
        }
    }
}

impl std::str::FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "ios" => Self::Ios,
            "android" => Self::Android,
            "web" => Self::Web,
            "desktop" => Self::Desktop,
            "other" => Self::Other,
            _ => return Err(format!("unknown platform {s:?}: ios, android, web, desktop or other")),
        })
    }
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    User(String),
    Group(String),
    Room(String),
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub msg_id: String,
    pub conversation_id: String,
    /// Gapless per conversation, from 1.
    pub seq: i64,
    /// `None` for messages the app sent as the system.
    pub sender: Option<String>,
    pub client_msg_id: String,
    #[serde(rename = "type")]
    pub msg_type: String,
    /// `null` once recalled.
    pub content: serde_json::Value,
    pub created_at: i64,
    pub recalled: bool,
    pub edited_at: Option<i64>,
    // ---- message lifecycle ----
    /// The message this one replies to.
    pub reply_to: Option<String>,
    /// That message as it was when this one was read (an edit shows, a recall shows as
    /// recalled). Keep it fresh from your own copy and the changes you get.
    pub quoted: Option<Box<QuotedMessage>>,
    /// The version of the message's last change (0: never changed): a `MessageChange` with
    /// a version at or below it is already in this message.
    pub version: i64,
    /// Its extensions, by key.
    pub extensions: Vec<Extension>,
    /// Its reactions, in the order they were first used; `reacted` is this user's.
    pub reactions: Vec<ReactionSummary>,
    /// Group members this message mentions by name.
    #[serde(default)]
    pub mentions: Vec<String>,
    /// It mentions every member of the group (@all).
    #[serde(default)]
    pub mention_all: bool,
}

impl From<&pb::Message> for Message {
    fn from(m: &pb::Message) -> Self {
        Self {
            msg_id: m.msg_id.clone(),
            conversation_id: m.conversation_id.clone(),
            seq: m.seq,
            sender: (!m.sender.is_empty()).then(|| m.sender.clone()),
            client_msg_id: m.client_msg_id.clone(),
            msg_type: m.r#type.clone(),
            content: m.content.as_ref().map_or(serde_json::Value::Null, struct_to_json),
            created_at: m.created_at,
            recalled: m.recalled,
            edited_at: (m.edited_at != 0).then_some(m.edited_at),
            reply_to: (!m.reply_to.is_empty()).then(|| m.reply_to.clone()),
            quoted: m.quoted.as_ref().map(|q| Box::new(QuotedMessage::from(q))),
            version: m.version,
            extensions: m.extensions.iter().map(Extension::from).collect(),
            reactions: m.reactions.iter().map(ReactionSummary::from).collect(),
            mentions: m.mentions.clone(),
            mention_all: m.mention_all,
        }
    }
}

/// What a message says beyond its content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Group members to mention by name (up to 100); each sees `mentioned` on the group in
    /// their conversation list until they read past the message.
    pub mentions: Vec<String>,
    /// Mention everyone in the group (the owner and admins only).
    pub mention_all: bool,
}

/// The server's answer to a send: the message is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendAck {
    pub msg_id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub created_at: i64,
    pub client_msg_id: String,
}

/// One line of the user's conversation list.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub conversation_id: String,
    pub last_seq: i64,
    pub read_seq: i64,
    pub unread: i64,
    pub version: i64,
    /// A message after `read_seq` mentions this user (groups); reading clears it.
    pub mentioned: bool,
}

impl From<&pb::ConversationState> for Conversation {
    fn from(c: &pb::ConversationState) -> Self {
        Self {
            conversation_id: c.conversation_id.clone(),
            last_seq: c.last_seq,
            read_seq: c.read_seq,
            unread: c.unread,
            version: c.version,
            mentioned: c.mentioned,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceInfo {
    pub user_id: String,
    pub online: bool,
    /// When they were last online; `None` while online or if never seen.
    pub last_seen: Option<i64>,
}

impl From<&pb::PresenceUpdate> for PresenceInfo {
    fn from(p: &pb::PresenceUpdate) -> Self {
        Self {
            user_id: p.user_id.clone(),
            online: p.online,
            last_seen: (p.last_seen != 0).then_some(p.last_seen),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting,
    /// Authenticated; a sync follows at once.
    Connected,
    /// Lost; the client reconnects by itself.
    Disconnected {
        reason: String,
    },
    /// For good: the token was refused, the session was kicked, or `close` was called.
    Closed {
        code: String,
        reason: String,
    },
}

/// Everything that happens, in one stream. Messages arrive exactly once, in seq order per
/// conversation, whether pushed live or pulled after a reconnect.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Message(Message),
    /// A change to a message you may hold (recalled, edited, extensions, a reaction, or
    /// deleted for this user): live while connected, and after a reconnect for what changed
    /// meanwhile, each change once. It may name a message this client never delivered
    /// (one older than what it loaded); ignore those or update your own copy.
    Changed(MessageChange),
    Receipt {
        conversation_id: String,
        user_id: String,
        read_seq: i64,
    },
    Typing {
        conversation_id: String,
        user_id: String,
    },
    Presence(PresenceInfo),
    /// Something for the user outside their chats. Kept ones (broadcasts, system messages
    /// from the app's backend) carry the conversation (`s:<user>`) and seq they are kept
    /// at, and arrive exactly once whether pushed live or pulled after being offline;
    /// passing ones (a friend request) carry neither.
    Notification {
        id: String,
        content: serde_json::Value,
        created_at: i64,
        conversation_id: Option<String>,
        seq: Option<i64>,
        /// The message type of a kept notification (`text`, `custom`, ...).
        msg_type: Option<String>,
    },
    /// This client is no longer in the room: `reason` is `dismissed` (the app dismissed
    /// the room) or `removed` (the app took the user out). It is not re-joined on reconnect.
    RoomLeft {
        room_id: String,
        reason: String,
    },
    Kicked {
        code: String,
        reason: String,
    },
    Connection(ConnectionState),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server refused the command; `code` is stable (docs/protocol.md).
    #[error("{code}: {message}")]
    Server { code: String, message: String },
    #[error("not connected")]
    NotConnected,
    #[error("the client is closed")]
    Closed,
    #[error("no answer in time")]
    Timeout,
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ClientError {
    /// The server's error code, if the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Server { code, .. } => Some(code),
            _ => None,
        }
    }
}

// ---- message lifecycle -----------------------------------------------------------------

fn optional(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The message a reply quotes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotedMessage {
    pub msg_id: String,
    pub seq: i64,
    pub sender: Option<String>,
    #[serde(rename = "type")]
    pub msg_type: String,
    /// `null` once recalled.
    pub content: serde_json::Value,
    pub created_at: i64,
    pub recalled: bool,
    pub edited_at: Option<i64>,
}

impl From<&pb::QuotedMessage> for QuotedMessage {
    fn from(q: &pb::QuotedMessage) -> Self {
        Self {
            msg_id: q.msg_id.clone(),
            seq: q.seq,
            sender: optional(&q.sender),
            msg_type: q.r#type.clone(),
            content: q.content.as_ref().map_or(serde_json::Value::Null, struct_to_json),
            created_at: q.created_at,
            recalled: q.recalled,
            edited_at: (q.edited_at != 0).then_some(q.edited_at),
        }
    }
}

/// A key-value pair on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub key: String,
    pub value: String,
    /// Grows with every set or delete of the key; pass it as `expected_version` to change
    /// the key only if nobody changed it since.
    pub version: i64,
    /// `None` when the app's backend set it.
    pub updated_by: Option<String>,
    pub updated_at: i64,
}

impl From<&pb::Extension> for Extension {
    fn from(e: &pb::Extension) -> Self {
        Self {
            key: e.key.clone(),
            value: e.value.clone(),
            version: e.version,
            updated_by: optional(&e.updated_by),
            updated_at: e.updated_at,
        }
    }
}

/// One reaction on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionSummary {
    pub reaction: String,
    pub count: i64,
    /// Whether this user reacted with it.
    pub reacted: bool,
    /// The first users to react, earliest first (up to 3).
    pub users: Vec<String>,
}

impl From<&pb::ReactionSummary> for ReactionSummary {
    fn from(r: &pb::ReactionSummary) -> Self {
        Self {
            reaction: r.reaction.clone(),
            count: r.count,
            reacted: r.reacted,
            users: r.users.clone(),
        }
    }
}

/// One change to a message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageChange {
    pub conversation_id: String,
    pub msg_id: String,
    pub seq: i64,
    /// Unique per change (per app); apply each once.
    pub version: i64,
    /// Who made it; `None` for the app's backend.
    pub by: Option<String>,
    pub changed_at: i64,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// Content, extensions and reactions are gone.
    Recalled,
    Edited {
        content: serde_json::Value,
        edited_at: i64,
    },
    /// Keys set (`value` present) or deleted.
    Extensions(Vec<ExtensionChange>),
    Reaction {
        reaction: String,
        user_id: String,
        added: bool,
        /// How many users hold it now.
        count: i64,
    },
    /// Deleted for this user (on one of their devices): hide it.
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionChange {
    pub key: String,
    /// `None`: the key was deleted.
    pub value: Option<String>,
    pub version: i64,
}

impl From<&pb::Recalled> for MessageChange {
    fn from(r: &pb::Recalled) -> Self {
        let m = r.message.clone().unwrap_or_default();
        Self {
            conversation_id: m.conversation_id,
            msg_id: m.msg_id,
            seq: m.seq,
            version: m.version,
            by: optional(&r.by),
            changed_at: r.recalled_at,
            kind: ChangeKind::Recalled,
        }
    }
}

impl From<&pb::MessageChange> for MessageChange {
    fn from(c: &pb::MessageChange) -> Self {
        use pb::message_change::Change;
        let kind = match &c.change {
            Some(Change::Recall(_)) | None => ChangeKind::Recalled,
            Some(Change::Edit(e)) => ChangeKind::Edited {
                content: e.content.as_ref().map_or(serde_json::Value::Null, struct_to_json),
                edited_at: e.edited_at,
            },
            Some(Change::Extensions(x)) => ChangeKind::Extensions(
                x.items
                    .iter()
                    .map(|i| ExtensionChange {
                        key: i.key.clone(),
                        value: i.value.clone(),
                        version: i.version,
                    })
                    .collect(),
            ),
            Some(Change::Reaction(r)) => ChangeKind::Reaction {
                reaction: r.reaction.clone(),
                user_id: r.user_id.clone(),
                added: r.added,
                count: r.count,
            },
            Some(Change::Deleted(_)) => ChangeKind::Deleted,
        };
        Self {
            conversation_id: c.conversation_id.clone(),
            msg_id: c.msg_id.clone(),
            seq: c.seq,
            version: c.version,
            by: optional(&c.by),
            changed_at: c.changed_at,
            kind,
        }
    }
}
