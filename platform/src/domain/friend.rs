//! Friends and blocks: who a user has accepted, and who they refuse to hear from.
//!
//! A friendship is held once per side: each side has its own remark and tags and may
//! delete its own side alone. Two users are friends (for `friendship_required_for_direct`)
//! only while both sides hold each other.

use serde::{Deserialize, Serialize};

use super::UnixMillis;
use crate::ids::UserId;

/// Longest friend request message, in characters.
pub const MAX_FRIEND_REQUEST_MESSAGE_CHARS: usize = 500;
/// Longest remark, in characters.
pub const MAX_FRIEND_REMARK_CHARS: usize = 100;
/// Most tags on one friend, each at most `MAX_FRIEND_TAG_CHARS`.
pub const MAX_FRIEND_TAGS: usize = 20;
pub const MAX_FRIEND_TAG_CHARS: usize = 32;

/// One side of a friendship: `friend_id` as `user_id` sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Friend {
    pub user_id: UserId,
    pub friend_id: UserId,
    pub remark: Option<String>,
    pub tags: Vec<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum FriendRequestState {
    Pending,
    Accepted,
    Declined,
}

impl FriendRequestState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FriendRequest {
    pub from: UserId,
    pub to: UserId,
    pub message: String,
    pub state: FriendRequestState,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub user_id: UserId,
    pub blocked_id: UserId,
    pub created_at: UnixMillis,
}

/// Checks a remark and tags against the limits above; the message names what is wrong.
pub fn validate_friend_profile(remark: Option<&str>, tags: &[String]) -> Result<(), String> {
    if let Some(r) = remark {
        if r.chars().count() > MAX_FRIEND_REMARK_CHARS || super::has_forbidden_chars(r) {
            return Err(format!(
                "remark must be at most {MAX_FRIEND_REMARK_CHARS} characters without control characters"
            ));
        }
    }
    if tags.len() > MAX_FRIEND_TAGS {
        return Err(format!("at most {MAX_FRIEND_TAGS} tags"));
    }
    for t in tags {
        if t.trim().is_empty() || t.chars().count() > MAX_FRIEND_TAG_CHARS || super::has_forbidden_chars(t) {
            return Err(format!(
                "each tag must be 1 to {MAX_FRIEND_TAG_CHARS} characters without control characters"
            ));
        }
    }
    Ok(())
}
