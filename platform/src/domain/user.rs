//! Users of an app: profile, moderation state (ban, mute, token revocation) and the limits
//! a profile is checked against.

use serde::{Deserialize, Serialize};

use super::UnixMillis;
use crate::ids::UserId;

/// Largest `metadata` document of a user, serialised.
pub const MAX_USER_METADATA_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub avatar_url: Option<String>,
    /// A JSON object of the tenant's own fields, at most 4 KiB serialised.
    pub metadata: serde_json::Value,
    pub banned_until: Option<UnixMillis>,
    /// Until then the user may connect and read but not send (an app-wide mute).
    pub muted_until: Option<UnixMillis>,
    /// Tokens issued (`iat`) before this instant are refused.
    pub tokens_revoked_before: Option<UnixMillis>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl User {
    pub fn is_banned_at(&self, now: UnixMillis) -> bool {
        self.banned_until.is_some_and(|t| t > now)
    }

    pub fn is_muted_at(&self, now: UnixMillis) -> bool {
        self.muted_until.is_some_and(|t| t > now)
    }
}

/// The fields of a user that an upsert sets; `None` leaves a stored value as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserProfile {
    pub name: Option<String>,
    pub avatar_url: Option<Option<String>>,
    pub metadata: Option<serde_json::Value>,
}

/// Checks a profile against the documented limits; the message names the field.
pub fn validate_profile(p: &UserProfile) -> Result<(), String> {
    if let Some(name) = &p.name {
        if name.chars().count() > 100 {
            return Err("name must be at most 100 characters".into());
        }
        if super::has_forbidden_chars(name) {
            return Err("name must not contain control or bidirectional formatting characters".into());
        }
    }
    if let Some(Some(url)) = &p.avatar_url {
        if url.len() > 1024 {
            return Err("avatar_url must be at most 1024 characters".into());
        }
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err("avatar_url must be an http(s) URL".into());
        }
    }
    if let Some(meta) = &p.metadata {
        if !meta.is_object() {
            return Err("metadata must be a JSON object".into());
        }
        if serde_json::to_vec(meta).map(|v| v.len()).unwrap_or(usize::MAX) > MAX_USER_METADATA_BYTES {
            return Err("metadata must be at most 4096 bytes serialised".into());
        }
    }
    Ok(())
}
