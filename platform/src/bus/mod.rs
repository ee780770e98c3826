//! The Bus port: how a delivery reaches the gateway nodes that hold its recipients, and how
//! a change made on one node makes every node drop what it cached of the changed thing.
//! The pipeline asks `Presence` which nodes hold which users and publishes one event per
//! node, never to every node; invalidations alone go to every node. In one process the
//! `memory` adapter is a channel per node.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::domain::{Message, MessageChange, UnixMillis};
use crate::ids::{AppId, AppKey, ConversationId, GroupId, RoomId, UserId};

pub mod memory;

pub type NodeId = String;

/// Where the Pulsar adapter's topics live when `TERN_PULSAR_TOPIC_PREFIX` is unset. Here,
/// outside the feature-gated `pulsar_bus` module, so that a binary built without the
/// feature still names the same default in its configuration.
pub const DEFAULT_PULSAR_TOPIC_PREFIX: &str = "persistent://public/default/tern";

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

/// Who on the receiving node gets an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Target {
    /// Every session of these users on the node.
    Users { users: Vec<UserId> },
    /// Every session joined to the room on the node.
    Room { room: RoomId },
}

/// What is pushed to sessions. Gateways turn these into `ServerFrame`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Push {
    Message {
        message: Message,
    },
    Receipt {
        conversation_id: ConversationId,
        user_id: UserId,
        read_seq: i64,
    },
    Typing {
        conversation_id: ConversationId,
        user_id: UserId,
    },
    Presence {
        user_id: UserId,
        online: bool,
        last_seen: UnixMillis,
    },
    Notification {
        id: String,
        content: serde_json::Value,
        created_at: UnixMillis,
    },
    /// Close these users' sessions with this reason (kick, token revocation, ban).
    Kick {
        code: String,
        reason: String,
    },
    /// Close these sessions of the target user: newer sessions of the same device class
    /// opened on other nodes beyond the app's device limit (`session_replaced`).
    Replaced {
        sessions: Vec<u64>,
    },
    // ---- message lifecycle ----
    /// A change to a stored message: an edit, recall, extension or reaction (to the
    /// conversation's members) or a delete for one user (to that user's devices).
    MessageChanged {
        change: MessageChange,
    },
    // ---- rooms and broadcasts ----
    /// A notification kept in the user's system conversation `s:<user>` (a broadcast, or a
    /// system message from the server API): pushed as `notification` with its seq, so a
    /// client that also pulls the conversation shows it once.
    KeptNotification {
        message: Message,
    },
    /// Sessions on the receiving node leave the room (sent with `Target::Room`): all of them
    /// when `user` is `None` (the room was dismissed), else that user's (they were removed).
    /// `reason` is `dismissed` or `removed`.
    RoomLeft {
        room: RoomId,
        user: Option<UserId>,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusEvent {
    pub app_id: AppId,
    pub target: Target,
    pub push: Push,
}

/// Something a node may hold in a cache that a change has made stale. Each node drops its
/// copy when it hears one; a node that misses it (Redis away) holds the copy until the
/// cache's own expiry (seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Invalidation {
    /// The app's credentials, status and settings.
    App { app_key: AppKey },
    /// A user's ban, mute and existence, and whom they block.
    User { app_id: AppId, user: UserId },
    /// A group's member snapshot.
    Group { app_id: AppId, group: GroupId },
    /// A room and its mutes.
    Room { app_id: AppId, room: RoomId },
    /// The app's word lists.
    Words { app_id: AppId },
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    async fn publish(&self, node: &str, event: BusEvent) -> Result<(), BusError>;
    /// The events for `node`. One subscriber per node; a second call replaces the first.
    async fn subscribe(&self, node: &str) -> Result<mpsc::Receiver<BusEvent>, BusError>;
    /// Tells every node, this one included, to drop a stale cache entry.
    async fn invalidate(&self, invalidation: Invalidation) -> Result<(), BusError>;
    /// The invalidations sent by every node, for this process's engine.
    async fn invalidations(&self) -> Result<mpsc::Receiver<Invalidation>, BusError>;
}
