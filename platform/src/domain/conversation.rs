//! Conversations as a user's list shows them: position, unread count and change version.

use serde::{Deserialize, Serialize};

use super::{Message, UnixMillis};
use crate::ids::ConversationId;

/// One line of a user's conversation list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationEntry {
    pub conversation_id: ConversationId,
    /// Seq of the newest message in the conversation (0 when it has none).
    pub last_seq: i64,
    /// Highest seq this user has read.
    pub read_seq: i64,
    /// Messages after `read_seq` not sent by this user.
    pub unread: i64,
    /// Monotonic per app: the version at which this entry last changed. A client that
    /// remembers the highest version it saw asks for entries changed after it.
    pub version: i64,
    pub last_message: Option<Message>,
    pub updated_at: UnixMillis,
    /// A message after `read_seq` mentions this user by name or mentions everyone
    /// (groups); reading past it clears the flag.
    pub mentioned: bool,
}
