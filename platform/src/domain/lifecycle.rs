//! What happens to a message after it is sent: edits, recalls, deletes for one user,
//! extensions (versioned key-value pairs) and reactions, and the change records that carry
//! each of them to every device (live as a push, later through a sync pull).
//!
//! Every change takes the app's next change version, so one number orders all changes of an
//! app and a device applies each change once: a change whose version is at or below a
//! message's `version` is already part of that message.

use serde::{Deserialize, Serialize};

use super::{Message, MessageType, Sender, UnixMillis};
use crate::ids::{ConversationId, MsgId, UserId};

/// Longest extension key, bytes (keys are `[A-Za-z0-9_.:/-]`).
pub const MAX_EXTENSION_KEY_BYTES: usize = 64;
/// Longest extension value, bytes of UTF-8.
pub const MAX_EXTENSION_VALUE_BYTES: usize = 1024;
/// Most keys one message may hold at once.
pub const MAX_EXTENSIONS_PER_MESSAGE: usize = 100;
/// Most keys one update may set or delete.
pub const MAX_EXTENSION_UPDATES: usize = 20;
/// Longest reaction, bytes of UTF-8 (room for any emoji sequence, or a short word).
pub const MAX_REACTION_BYTES: usize = 32;
/// Most distinct reactions one message may carry.
pub const MAX_REACTIONS_PER_MESSAGE: usize = 50;
/// Most reactions one user may put on one message.
pub const MAX_REACTIONS_PER_USER: usize = 20;
/// How many of a reaction's users a message shows (the first to react).
pub const REACTION_USERS_SHOWN: u32 = 3;
/// Most messages one delete-for-me removes.
pub const MAX_DELETE_BATCH: usize = 100;

/// The message a reply quotes, as it is when the reply is read: an edit shows, a recall
/// shows as recalled (no content).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotedMessage {
    pub msg_id: MsgId,
    pub seq: i64,
    pub sender: Sender,
    #[serde(rename = "type")]
    pub msg_type: MessageType,
    /// `null` once recalled.
    pub content: serde_json::Value,
    pub created_at: UnixMillis,
    pub recalled: bool,
    pub edited_at: Option<UnixMillis>,
}

impl From<&Message> for QuotedMessage {
    fn from(m: &Message) -> Self {
        Self {
            msg_id: m.msg_id.clone(),
            seq: m.seq,
            sender: m.sender.clone(),
            msg_type: m.msg_type,
            content: m.content.clone(),
            created_at: m.created_at,
            recalled: m.recalled,
            edited_at: m.edited_at,
        }
    }
}

/// One key-value pair on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub key: String,
    pub value: String,
    /// Grows by one with every set or delete of this key (a deleted key keeps counting).
    pub version: i64,
    /// Who set it last; `None` when the app's backend did.
    pub updated_by: Option<UserId>,
    pub updated_at: UnixMillis,
}

/// One key set (`value` present) or deleted (`value` absent) by an extension change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionChange {
    pub key: String,
    pub value: Option<String>,
    pub version: i64,
}

/// One key of an update request: set it to `value` or, with `None`, delete it; with
/// `expected_version`, only if the key's version is that (0: never set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionUpdate {
    pub key: String,
    pub value: Option<String>,
    pub expected_version: Option<i64>,
}

/// One reaction on a message, as one reader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionSummary {
    pub reaction: String,
    pub count: i64,
    /// Whether the reader is among those who reacted (always false for the server API).
    pub reacted: bool,
    /// The first users to react with it, earliest first (at most `REACTION_USERS_SHOWN`).
    pub users: Vec<UserId>,
}

/// One change to a stored message, as pushed to online devices and pulled by the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageChange {
    pub conversation_id: ConversationId,
    pub msg_id: MsgId,
    /// The changed message's seq.
    pub seq: i64,
    /// The app change version this change took; unique per app.
    pub version: i64,
    /// Who made it; `None` for the app's backend (server API).
    pub by: Option<UserId>,
    pub changed_at: UnixMillis,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ChangeKind {
    /// The message as it is now: recalled, content gone.
    Recalled {
        message: Box<Message>,
    },
    Edited {
        content: serde_json::Value,
        edited_at: UnixMillis,
    },
    Extensions {
        items: Vec<ExtensionChange>,
    },
    Reaction {
        reaction: String,
        user_id: UserId,
        added: bool,
        /// How many users hold this reaction after the change.
        count: i64,
    },
    /// Deleted for the user whose devices get this change (never pushed to anyone else).
    Deleted,
}

impl ChangeKind {
    /// The stored name of the kind (`message_changes.kind`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Recalled { .. } => "recall",
            Self::Edited { .. } => "edit",
            Self::Extensions { .. } => "extensions",
            Self::Reaction { .. } => "reaction",
            Self::Deleted => "deleted",
        }
    }
}

/// Checks an extension key: 1 to 64 bytes of `[A-Za-z0-9_.:/-]`.
pub fn validate_extension_key(key: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-');
    if key.is_empty() || key.len() > MAX_EXTENSION_KEY_BYTES || !key.chars().all(ok_char) {
        return Err(format!(
            "extension key {key:?} must be 1 to {MAX_EXTENSION_KEY_BYTES} characters of A-Z a-z 0-9 _ . : / -"
        ));
    }
    Ok(())
}

/// Checks one extension update request as a whole: 1 to 20 distinct valid keys, values of
/// at most 1 KiB, expected versions of 0 or more.
pub fn validate_extension_updates(updates: &[ExtensionUpdate]) -> Result<(), String> {
    if updates.is_empty() || updates.len() > MAX_EXTENSION_UPDATES {
        return Err(format!("an update sets or deletes 1 to {MAX_EXTENSION_UPDATES} keys"));
    }
    let mut seen = std::collections::HashSet::new();
    for u in updates {
        validate_extension_key(&u.key)?;
        if !seen.insert(u.key.as_str()) {
            return Err(format!("extension key {:?} appears twice", u.key));
        }
        if u.value.as_ref().is_some_and(|v| v.len() > MAX_EXTENSION_VALUE_BYTES) {
            return Err(format!(
                "the value of {:?} is longer than {MAX_EXTENSION_VALUE_BYTES} bytes",
                u.key
            ));
        }
        if u.expected_version.is_some_and(|v| v < 0) {
            return Err(format!("expected_version of {:?} must be 0 or more", u.key));
        }
    }
    Ok(())
}

/// Checks a reaction: 1 to 32 bytes, no whitespace or control characters.
pub fn validate_reaction(reaction: &str) -> Result<(), String> {
    if reaction.is_empty()
        || reaction.len() > MAX_REACTION_BYTES
        || reaction
            .chars()
            .any(|c| c.is_whitespace() || super::is_forbidden_in_short_text(c))
    {
        return Err(format!(
            "a reaction is 1 to {MAX_REACTION_BYTES} bytes without spaces or control characters"
        ));
    }
    Ok(())
}

/// An edit, as the store applies it.
#[derive(Debug, Clone)]
pub struct MessageEdit {
    pub content: serde_json::Value,
    pub edited_at: UnixMillis,
    pub by: Option<UserId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: &str) -> ExtensionUpdate {
        ExtensionUpdate {
            key: key.into(),
            value: Some(value.into()),
            expected_version: None,
        }
    }

    #[test]
    fn extension_keys_and_values_are_bounded() {
        assert!(validate_extension_key("vote:yes").is_ok());
        assert!(validate_extension_key("a/b-c_d.e").is_ok());
        assert!(validate_extension_key("").is_err());
        assert!(validate_extension_key("has space").is_err());
        assert!(validate_extension_key("ключ").is_err());
        assert!(validate_extension_key(&"k".repeat(65)).is_err());
        assert!(validate_extension_updates(&[set("a", "1"), set("b", "2")]).is_ok());
        assert!(validate_extension_updates(&[]).is_err());
        assert!(validate_extension_updates(&[set("a", "1"), set("a", "2")]).is_err());
        assert!(validate_extension_updates(&[set("a", &"v".repeat(1025))]).is_err());
        let many: Vec<_> = (0..21).map(|i| set(&format!("k{i}"), "v")).collect();
        assert!(validate_extension_updates(&many).is_err());
        let mut stale = set("a", "1");
        stale.expected_version = Some(-1);
        assert!(validate_extension_updates(&[stale]).is_err());
    }

    #[test]
    fn reactions_are_short_strings_without_spaces() {
        assert!(validate_reaction("👍").is_ok());
        assert!(validate_reaction("👨‍👩‍👧‍👦").is_ok());
        assert!(validate_reaction("+1").is_ok());
        assert!(validate_reaction("").is_err());
        assert!(validate_reaction("thumbs up").is_err());
        assert!(validate_reaction("a\n").is_err());
        assert!(validate_reaction(&"x".repeat(33)).is_err());
    }
}
