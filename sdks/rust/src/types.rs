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
    Recall(Message),
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
    Notification {
        id: String,
        content: serde_json::Value,
        created_at: i64,
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
