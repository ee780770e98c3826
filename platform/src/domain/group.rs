use serde::{Deserialize, Serialize};

use super::UnixMillis;
use crate::ids::{GroupId, UserId};

/// Default and ceiling for members of one group; apps may set their own limit in between.
pub const DEFAULT_GROUP_MEMBER_LIMIT: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupRole {
    Owner,
    Admin,
    Member,
}

impl GroupRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    pub owner: UserId,
    pub member_count: i64,
    pub metadata: serde_json::Value,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMember {
    pub user_id: UserId,
    pub role: GroupRole,
    pub joined_at: UnixMillis,
    /// The group's last seq when this member joined: they see messages after it.
    pub joined_seq: i64,
}
