//! The console's nouns: accounts (platform operators and tenant members), a member's role
//! in a tenant, sign-in sessions and the audit log of changes made through the console.

use serde::{Deserialize, Serialize};

use super::UnixMillis;
use crate::ids::{AppId, TenantId};

/// What a tenant member may do in that tenant. Ordered: each role may do all a lower one may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ConsoleRole {
    /// Sees the tenant's apps, users, messages, webhooks and audit log; changes nothing.
    Viewer,
    /// Also changes app settings and webhooks, moderates users, redelivers events.
    Developer,
    /// Also creates apps, rotates and revokes their secrets, adds members.
    Admin,
    /// The tenant's owner: everything a member can do.
    Owner,
}

impl ConsoleRole {
    pub const ALL: [ConsoleRole; 4] = [Self::Owner, Self::Admin, Self::Developer, Self::Viewer];

    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// Someone who signs in to the console.
#[derive(Clone, PartialEq)]
pub struct ConsoleAccount {
    pub id: i64,
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// A platform operator sees and changes every tenant.
    pub operator: bool,
    /// Wrong passwords since the last successful sign-in.
    pub failed_logins: i32,
    /// Sign-in is refused until then, whatever the password.
    pub locked_until: Option<UnixMillis>,
    pub created_at: UnixMillis,
}

impl std::fmt::Debug for ConsoleAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleAccount")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("operator", &self.operator)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

/// One tenant an account belongs to, and its role there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub account_id: i64,
    pub email: String,
    pub tenant_id: TenantId,
    pub role: ConsoleRole,
    pub created_at: UnixMillis,
}

/// A signed-in browser. The token itself is never stored, only its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub token_hash: String,
    pub account_id: i64,
    /// Sent back with every form and htmx request of this session.
    pub csrf_token: String,
    pub ip: String,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession")
            .field("account_id", &self.account_id)
            .field("ip", &self.ip)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A named token for the operator API (`/admin/v1`), as kept: never the token itself,
/// only its SHA-256 (in the store). It acts as its account, bounded by `tenant_id` and `role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// `at_` + random hex; names the token in the console and the audit log.
    pub id: String,
    pub account_id: i64,
    /// The owner's email (from the account).
    pub email: String,
    pub name: String,
    /// `None`: a platform token (an operator's; every tenant). Otherwise the one tenant it acts in.
    pub tenant_id: Option<TenantId>,
    /// The most it may do in its tenant (its owner's role caps it again at every use).
    pub role: Option<ConsoleRole>,
    pub created_at: UnixMillis,
    pub revoked_at: Option<UnixMillis>,
    /// When it stops working; `None`: no end (until revoked).
    pub expires_at: Option<UnixMillis>,
    /// When it last authenticated a call, to the minute: written at most once a minute, so
    /// reads stay reads.
    pub last_used_at: Option<UnixMillis>,
}

/// A change to write to the audit log. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// The account's email (kept as text: the log outlives accounts).
    pub actor: String,
    pub ip: String,
    /// The tenant the change belongs to; `None` for platform-wide changes.
    pub tenant_id: Option<TenantId>,
    pub app_id: Option<AppId>,
    /// What was done, e.g. `app.secret.rotate`.
    pub action: String,
    /// What it was done to (an id or a name).
    pub target: String,
    /// A short description of the change, without secrets.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: UnixMillis,
    pub entry: NewAuditEntry,
}

/// A public sign-up waiting for its email to be verified: the tenant and owner account it
/// will create. Only the SHA-256 of the emailed link's token is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSignup {
    pub token_hash: String,
    pub email: String,
    /// argon2id PHC string of the owner's password.
    pub password_hash: String,
    pub tenant_name: String,
    /// Where the sign-up came from.
    pub ip: String,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

impl std::fmt::Debug for NewSignup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSignup")
            .field("email", &self.email)
            .field("tenant_name", &self.tenant_name)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One mail the platform sent or tried to send, as the outbox lists it: never the body
/// (its links carry single-use tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    /// The tenant it is about, if any.
    pub tenant_id: Option<TenantId>,
    pub recipient: String,
    /// What it is: `signup.verify`, `tenant.approved`, `tenant.declined`, `invitation`, …
    pub kind: String,
    pub subject: String,
    /// `smtp` or `file` (written to the mail folder).
    pub transport: String,
    /// `sent` or `failed`.
    pub status: String,
    /// Why it failed; empty when sent.
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRecord {
    pub id: i64,
    pub at: UnixMillis,
    pub mail: NewMail,
}

/// An invitation to become a platform operator, sent by an operator and mailed as a
/// single-use link that works for 24 hours. Only the SHA-256 of the link's token is kept; it
/// also names the invitation in the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorInvitation {
    pub token_hash: String,
    pub email: String,
    /// The operator who sent it (their email).
    pub invited_by: String,
    pub created_at: UnixMillis,
    /// The link stops working then (revoking sets it to the moment of revoking).
    pub expires_at: UnixMillis,
    pub accepted_at: Option<UnixMillis>,
}

/// An invitation to join a tenant with a role, mailed as a single-use link. Only the
/// SHA-256 of the link's token is kept; it also names the invitation in the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub token_hash: String,
    pub tenant_id: TenantId,
    pub email: String,
    pub role: ConsoleRole,
    /// Who sent it (an email, or `cli`).
    pub invited_by: String,
    pub created_at: UnixMillis,
    /// The link stops working then (revoking sets it to the moment of revoking).
    pub expires_at: UnixMillis,
    pub accepted_at: Option<UnixMillis>,
}
