use serde::{Deserialize, Serialize};

use super::UnixMillis;
use crate::ids::{AppId, AppKey, SecretId, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppStatus {
    Active,
    Suspended,
}

impl AppStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// Per-app settings, stored as one JSON document so new settings need no migration.
/// Every field has a default, so an old document still reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppSettings {
    /// Longest lifetime a user token may have (`exp - iat`), seconds. Default 30 days.
    pub max_token_ttl_seconds: i64,
    /// Users unknown to the app are created when they first log in with a valid token.
    pub auto_create_users: bool,
    /// Server API writes (sends, upserts, ...) per second, per app.
    pub write_rate_per_second: u32,
    /// Server API reads per second, per app.
    pub read_rate_per_second: u32,
    /// Largest `content.text` of a text message, bytes.
    pub max_text_bytes: usize,
    /// Largest serialised `content` of any other message type, bytes.
    pub max_content_bytes: usize,
    /// How long a sender may recall their own message, seconds.
    pub recall_window_seconds: i64,
    /// Messages per second one user may send from the SDK.
    pub user_send_rate_per_second: u32,
    /// Sessions per user per platform before the oldest is closed.
    pub max_sessions_mobile: u32,
    pub max_sessions_web: u32,
    /// How long a rotated-out AppSecret stays valid, seconds. Default 24 h.
    pub secret_grace_seconds: i64,
    /// Where and how Tern calls the app's backend (SIGNING.md §3).
    pub webhook: WebhookSettings,
    /// Direct messages between users who are not friends (on both sides) fail with
    /// `not_friends`. Off by default.
    pub friendship_required_for_direct: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// The endpoint every webhook is POSTed to; `None` turns webhooks off.
    pub url: Option<String>,
    /// After-events to deliver (`message.sent`, ...); empty means all of them.
    pub events: Vec<String>,
    pub before_send: BeforeSendSettings,
}

impl WebhookSettings {
    /// Whether an after-event of this type is to be written to the outbox.
    pub fn wants(&self, event_type: &str) -> bool {
        self.url.is_some() && (self.events.is_empty() || self.events.iter().any(|e| e == event_type))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    FailOpen,
    FailClosed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeforeSendSettings {
    pub enabled: bool,
    /// Which doors' messages the hook sees: `sdk`, `server_api`; empty means both.
    pub sources: Vec<super::Source>,
    /// Which message types it sees; empty means all.
    pub types: Vec<super::MessageType>,
    /// 100 to 5000 ms.
    pub timeout_ms: u64,
    pub policy: FailurePolicy,
}

impl Default for BeforeSendSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            sources: Vec::new(),
            types: Vec::new(),
            timeout_ms: 1500,
            policy: FailurePolicy::FailOpen,
        }
    }
}

impl BeforeSendSettings {
    pub fn selects(&self, source: super::Source, msg_type: super::MessageType) -> bool {
        self.enabled
            && (self.sources.is_empty() || self.sources.contains(&source))
            && (self.types.is_empty() || self.types.contains(&msg_type))
    }
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            max_token_ttl_seconds: 30 * 24 * 3600,
            auto_create_users: true,
            write_rate_per_second: 10_000,
            read_rate_per_second: 10_000,
            max_text_bytes: 12 * 1024,
            max_content_bytes: 16 * 1024,
            recall_window_seconds: 120,
            user_send_rate_per_second: 20,
            max_sessions_mobile: 3,
            max_sessions_web: 10,
            secret_grace_seconds: 24 * 3600,
            webhook: WebhookSettings::default(),
            friendship_required_for_direct: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub id: AppId,
    pub tenant_id: TenantId,
    /// Unique within the tenant; 1–100 characters.
    pub name: String,
    pub app_key: AppKey,
    pub status: AppStatus,
    pub settings: AppSettings,
    pub created_at: UnixMillis,
}

/// An AppSecret as the store keeps it: the secret itself only encrypted.
#[derive(Clone, PartialEq)]
pub struct AppSecretRecord {
    pub id: SecretId,
    pub app_id: AppId,
    /// AES-256-GCM ciphertext from `SecretBox::seal`, with the app id as associated data.
    pub ciphertext: Vec<u8>,
    pub created_at: UnixMillis,
    /// When a rotation or revocation ends this secret's validity; `None` while it is current.
    pub expires_at: Option<UnixMillis>,
}

impl AppSecretRecord {
    pub fn is_active_at(&self, now: UnixMillis) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

impl std::fmt::Debug for AppSecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSecretRecord")
            .field("id", &self.id)
            .field("app_id", &self.app_id)
            .field("ciphertext", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// App names follow the same rule as tenant names.
pub fn validate_app_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("app name must not be empty");
    }
    if name.chars().count() > 100 {
        return Err("app name must be at most 100 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("app name must not contain control characters");
    }
    Ok(())
}
