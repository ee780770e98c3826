//! What the operator API answers, as JSON with its OpenAPI schema: each view is built from
//! the platform's types here, so a handler only picks which. Times are Unix milliseconds.

use serde::{Deserialize, Serialize};
use tern_platform::domain::{ApiToken, App, AuditEntry, Message, Sender, Tenant, User};
use tern_platform::service::console::SecretInfo;
use tern_platform::usage::UsageCounts;
use utoipa::ToSchema;

/// Every error answer: `{"error": {"code", "message", "request_id"}}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code; see the list in the API description.
    pub code: String,
    pub message: String,
    /// `invalid_argument`: the request's field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub request_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminTenant {
    pub id: String,
    pub name: String,
    /// `pending_approval`, `active`, `suspended` or `declined`.
    pub status: String,
    pub created_at: i64,
}

impl From<Tenant> for AdminTenant {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name,
            status: t.status.as_str().into(),
            created_at: t.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminTenantList {
    pub tenants: Vec<AdminTenant>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminApp {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub app_key: String,
    pub status: String,
    pub created_at: i64,
}

impl From<&App> for AdminApp {
    fn from(a: &App) -> Self {
        Self {
            id: a.id.to_string(),
            tenant_id: a.tenant_id.to_string(),
            name: a.name.clone(),
            app_key: a.app_key.to_string(),
            status: a.status.as_str().into(),
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAppList {
    pub apps: Vec<AdminApp>,
}

/// An AppSecret as listed: never its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminSecret {
    pub id: String,
    pub created_at: i64,
    /// When it stops working (a rotated-out secret's grace period); absent: no end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl From<SecretInfo> for AdminSecret {
    fn from(s: SecretInfo) -> Self {
        Self {
            id: s.id.to_string(),
            created_at: s.created_at,
            expires_at: s.expires_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAppDetail {
    pub app: AdminApp,
    /// Every setting, as `GET /v1/app/settings` names them.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// The secrets that work now, newest first.
    pub secrets: Vec<AdminSecret>,
}

/// A new app with its secrets, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminCreatedApp {
    pub app: AdminApp,
    pub app_secret: String,
    pub webhook_secret: String,
}

/// A new AppSecret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminRotatedSecret {
    pub secret_id: String,
    pub app_secret: String,
    /// When the secrets that were active before stop working.
    pub previous_expire_at: i64,
}

/// A new webhook secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminRotatedWebhookSecret {
    pub webhook_secret: String,
    /// Until then webhooks carry a signature by the earlier secret too.
    pub previous_expire_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUser {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub banned_until: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_revoked_before: Option<i64>,
    pub created_at: i64,
}

impl From<User> for AdminUser {
    fn from(u: User) -> Self {
        Self {
            id: u.id.to_string(),
            name: u.name,
            avatar_url: u.avatar_url,
            metadata: u.metadata,
            banned_until: u.banned_until,
            muted_until: u.muted_until,
            tokens_revoked_before: u.tokens_revoked_before,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserList {
    pub users: Vec<AdminUser>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminConversation {
    pub id: String,
    pub last_seq: i64,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserDetail {
    pub user: AdminUser,
    pub online: bool,
    /// Device ids of the sessions open now.
    pub devices: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
    /// Their most recently active conversations (up to 50).
    pub conversations: Vec<AdminConversation>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminReaction {
    pub reaction: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminMessage {
    pub seq: i64,
    pub msg_id: String,
    pub conversation_id: String,
    /// The sending user; absent for a system message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(rename = "type")]
    pub msg_type: String,
    /// `null` once recalled.
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    pub created_at: i64,
    pub recalled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    pub reactions: Vec<AdminReaction>,
}

impl From<Message> for AdminMessage {
    fn from(m: Message) -> Self {
        Self {
            seq: m.seq,
            msg_id: m.msg_id.to_string(),
            conversation_id: m.conversation_id.to_string(),
            sender: match m.sender {
                Sender::User(u) => Some(u.to_string()),
                Sender::System => None,
            },
            msg_type: m.msg_type.as_str().to_owned(),
            content: m.content,
            created_at: m.created_at,
            recalled: m.recalled,
            edited_at: m.edited_at,
            reactions: m
                .reactions
                .into_iter()
                .map(|r| AdminReaction {
                    reaction: r.reaction,
                    count: r.count,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminMessagePage {
    /// Oldest first.
    pub messages: Vec<AdminMessage>,
    /// Pass as `before` for the older page; absent when this page starts at seq 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUsageHour {
    /// The hour's start, Unix milliseconds (UTC).
    pub hour: i64,
    pub messages: i64,
    pub api_calls: i64,
    /// Of `api_calls`, those that answered an error (4xx or 5xx).
    pub errors: i64,
    pub peak_connections: i64,
}

/// One hour of the store's usage counters, as the usage and overview answers show it.
impl From<(i64, UsageCounts)> for AdminUsageHour {
    fn from((hour, c): (i64, UsageCounts)) -> Self {
        Self {
            hour,
            messages: c.messages,
            api_calls: c.api_calls,
            errors: c.errors,
            peak_connections: c.connections,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUsage {
    pub hours: i64,
    /// Every hour of the period, oldest first, zeros included.
    pub rows: Vec<AdminUsageHour>,
    pub total_messages: i64,
    pub total_api_calls: i64,
    pub total_errors: i64,
    pub peak_connections: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAuditEntry {
    pub id: i64,
    pub at: i64,
    /// Who: an email, with `(token NAME)` when a token made the change.
    pub actor: String,
    /// From where: the caller's address.
    pub ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    pub action: String,
    pub target: String,
    pub detail: String,
}

impl From<AuditEntry> for AdminAuditEntry {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor: e.entry.actor,
            ip: e.entry.ip,
            tenant_id: e.entry.tenant_id.map(|t| t.to_string()),
            app_id: e.entry.app_id.map(|a| a.to_string()),
            action: e.entry.action,
            target: e.entry.target,
            detail: e.entry.detail,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAuditPage {
    /// Newest first.
    pub entries: Vec<AdminAuditEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminToken {
    pub id: String,
    pub name: String,
    /// The owner's email.
    pub owner: String,
    /// Absent: a platform token (every tenant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    /// When it stops working; absent: no end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// When it last authenticated a call (recorded at most once a minute); absent: never used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
}

impl From<ApiToken> for AdminToken {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id,
            name: t.name,
            owner: t.email,
            tenant_id: t.tenant_id.map(|t| t.to_string()),
            role: t.role.map(|r| r.as_str().to_owned()),
            created_at: t.created_at,
            revoked_at: t.revoked_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminTokenList {
    pub tokens: Vec<AdminToken>,
}

/// What a change answers when it has nothing else to say.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminDone {
    pub done: bool,
}
