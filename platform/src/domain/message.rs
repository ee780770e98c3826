//! Messages: their types, senders and sources, the stored record, the send receipt, and the
//! content limits a message is checked against.

use serde::{Deserialize, Serialize};

use super::UnixMillis;
use crate::ids::{ClientMsgId, ConversationId, MsgId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum MessageType {
    Text,
    Image,
    File,
    Audio,
    Video,
    Location,
    Custom,
    /// Written by Tern itself (membership changes and the like); never accepted from callers.
    System,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    /// Parses a type a caller may send (everything but `system`).
    pub fn parse_sendable(s: &str) -> Option<Self> {
        Self::parse_stored(s).filter(|t| *t != Self::System)
    }
    pub fn parse_stored(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// Who sent a message: an app user (through the SDK or the server API on their behalf),
/// or the app itself (server API only, no `from`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Sender {
    User(UserId),
    System,
}

impl Sender {
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Self::User(u) => Some(u),
            Self::System => None,
        }
    }
    /// The key under which idempotency is tracked: the user id, or empty for the system.
    pub fn idempotency_key(&self) -> &str {
        match self {
            Self::User(u) => u.as_str(),
            Self::System => "",
        }
    }
}

/// Which door a send came in by; the before-send hook and metrics select on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Sdk,
    ServerApi,
}

/// A stored message, as history and pushes show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub msg_id: MsgId,
    pub conversation_id: ConversationId,
    pub seq: i64,
    pub sender: Sender,
    pub client_msg_id: ClientMsgId,
    #[serde(rename = "type")]
    pub msg_type: MessageType,
    /// `null` once the message is recalled.
    pub content: serde_json::Value,
    pub created_at: UnixMillis,
    pub recalled: bool,
    pub edited_at: Option<UnixMillis>,
    // ---- message lifecycle ----
    /// The message this one replies to (quotes), in the same conversation.
    #[serde(default)]
    pub reply_to: Option<MsgId>,
    /// The app change version of the message's last change (edit, recall, extensions,
    /// reaction); 0 when it never changed. Changes at or below it are part of this message.
    #[serde(default)]
    pub version: i64,
    /// The quoted message as it is now; filled when the message is shown to someone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted: Option<Box<super::QuotedMessage>>,
    /// Filled when the message is shown to someone, by key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<super::Extension>,
    /// Filled when the message is shown to someone, in the order they were first used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<super::ReactionSummary>,
    /// Group members this message @mentions by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    /// @all: it mentions every member of the group.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mention_all: bool,
}

/// What the sender is told: the message is durable once they have this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    pub msg_id: MsgId,
    pub conversation_id: ConversationId,
    pub seq: i64,
    pub created_at: UnixMillis,
}

impl Message {
    pub fn receipt(&self) -> SendReceipt {
        SendReceipt {
            msg_id: self.msg_id.clone(),
            conversation_id: self.conversation_id.clone(),
            seq: self.seq,
            created_at: self.created_at,
        }
    }
}

/// Limits applied when validating content, from the app's settings.
#[derive(Debug, Clone, Copy)]
pub struct ContentLimits {
    pub max_text_bytes: usize,
    pub max_content_bytes: usize,
}

/// Why a message's content was refused. The text is shown to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("{0}")]
    Invalid(String),
    #[error("content is larger than {0} bytes")]
    TooLarge(usize),
}

fn require_str<'a>(c: &'a serde_json::Map<String, serde_json::Value>, key: &str) -> Result<&'a str, ContentError> {
    match c.get(key) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(ContentError::Invalid(format!(
            "content.{key} must be a non-empty string"
        ))),
        None => Err(ContentError::Invalid(format!("content.{key} is required"))),
    }
}

fn require_url(c: &serde_json::Map<String, serde_json::Value>, key: &str) -> Result<(), ContentError> {
    let url = require_str(c, key)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048 {
        return Err(ContentError::Invalid(format!(
            "content.{key} must be an http(s) URL of at most 2048 characters"
        )));
    }
    Ok(())
}

fn require_number(
    c: &serde_json::Map<String, serde_json::Value>,
    key: &str,
    min: f64,
    max: f64,
) -> Result<f64, ContentError> {
    match c.get(key).and_then(serde_json::Value::as_f64) {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(ContentError::Invalid(format!(
            "content.{key} must be a number from {min} to {max}"
        ))),
    }
}

/// A media message's source: an uploaded file (`file_id`) or a link (`url`). `true` for a
/// link.
fn require_media(obj: &serde_json::Map<String, serde_json::Value>) -> Result<bool, ContentError> {
    match obj.get("file_id") {
        Some(serde_json::Value::String(id)) if crate::ids::FileId::parse(id).is_ok() => Ok(false),
        Some(_) => Err(ContentError::Invalid(
            "content.file_id must be a file id (file_...)".into(),
        )),
        None => require_url(obj, "url").map(|_| true),
    }
}

/// The uploaded file a media message names, if it names one.
pub fn content_file_id(t: MessageType, content: &serde_json::Value) -> Option<crate::ids::FileId> {
    match t {
        MessageType::Image | MessageType::Video | MessageType::Audio | MessageType::File => content
            .get("file_id")
            .and_then(serde_json::Value::as_str)
            .and_then(|id| crate::ids::FileId::parse(id).ok()),
        _ => None,
    }
}

/// Validates `content` for its type: what each type requires is documented in docs/server-api.md.
pub fn validate_content(
    t: MessageType,
    content: &serde_json::Value,
    limits: ContentLimits,
) -> Result<(), ContentError> {
    let obj = content
        .as_object()
        .ok_or_else(|| ContentError::Invalid("content must be a JSON object".into()))?;
    let size = serde_json::to_vec(content).map(|v| v.len()).unwrap_or(usize::MAX);
    match t {
        MessageType::Text => {
            let text = require_str(obj, "text")?;
            if text.len() > limits.max_text_bytes {
                return Err(ContentError::TooLarge(limits.max_text_bytes));
            }
            if size > limits.max_text_bytes + limits.max_content_bytes {
                return Err(ContentError::TooLarge(limits.max_text_bytes));
            }
            return Ok(());
        }
        // Media either name an uploaded file (`file_id`, checked and completed from the
        // file's record by the pipeline's attach_file stage) or link elsewhere (`url`).
        MessageType::Image | MessageType::Video => {
            require_media(obj)?;
        }
        MessageType::File => {
            if require_media(obj)? {
                require_str(obj, "name")?;
            }
        }
        MessageType::Audio => {
            require_media(obj)?;
            require_number(obj, "duration_ms", 0.0, 24.0 * 3600.0 * 1000.0)?;
        }
        MessageType::Location => {
            require_number(obj, "latitude", -90.0, 90.0)?;
            require_number(obj, "longitude", -180.0, 180.0)?;
        }
        MessageType::Custom => {
            if !obj.contains_key("data") {
                return Err(ContentError::Invalid("content.data is required".into()));
            }
        }
        MessageType::System => {}
    }
    if size > limits.max_content_bytes {
        return Err(ContentError::TooLarge(limits.max_content_bytes));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: ContentLimits = ContentLimits {
        max_text_bytes: 16,
        max_content_bytes: 200,
    };

    #[test]
    fn text_needs_a_non_empty_string_within_the_limit() {
        assert!(validate_content(MessageType::Text, &json!({"text": "hi"}), LIMITS).is_ok());
        assert!(validate_content(MessageType::Text, &json!({"text": ""}), LIMITS).is_err());
        assert!(validate_content(MessageType::Text, &json!({"text": 5}), LIMITS).is_err());
        assert!(validate_content(MessageType::Text, &json!("hi"), LIMITS).is_err());
        assert_eq!(
            validate_content(MessageType::Text, &json!({"text": "x".repeat(17)}), LIMITS),
            Err(ContentError::TooLarge(16))
        );
    }

    #[test]
    fn each_type_checks_its_fields() {
        assert!(validate_content(MessageType::Image, &json!({"url": "https://x/y.png"}), LIMITS).is_ok());
        assert!(validate_content(MessageType::Image, &json!({"url": "javascript:alert(1)"}), LIMITS).is_err());
        assert!(validate_content(MessageType::File, &json!({"url": "https://x/f"}), LIMITS).is_err());
        assert!(validate_content(MessageType::Location, &json!({"latitude": 91, "longitude": 0}), LIMITS).is_err());
        assert!(validate_content(MessageType::Location, &json!({"latitude": 1.5, "longitude": 2}), LIMITS).is_ok());
        assert!(validate_content(MessageType::Custom, &json!({"data": {"k": 1}}), LIMITS).is_ok());
        assert_eq!(
            validate_content(MessageType::Custom, &json!({"data": "x".repeat(300)}), LIMITS),
            Err(ContentError::TooLarge(200))
        );
    }
}
