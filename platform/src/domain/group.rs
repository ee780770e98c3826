//! Groups: members and roles, join policies and requests, read positions, patches, and the
//! limits on names, announcements, metadata and mentions.

use serde::{Deserialize, Serialize};

use super::UnixMillis;
use crate::ids::{GroupId, UserId};

/// Default and ceiling for members of one group; apps may set their own limit in between.
pub const DEFAULT_GROUP_MEMBER_LIMIT: usize = 2_000;

/// Longest group name, characters.
pub const MAX_GROUP_NAME_CHARS: usize = 100;
/// Longest announcement, characters.
pub const MAX_ANNOUNCEMENT_CHARS: usize = 2_000;
/// Largest serialised group metadata, bytes.
pub const MAX_GROUP_METADATA_BYTES: usize = 4 * 1024;
/// Longest join request message, characters.
pub const MAX_JOIN_MESSAGE_CHARS: usize = 500;
/// Most users one add, invite or creation call names (beyond the owner).
pub const MAX_MEMBERS_PER_CALL: usize = 500;
/// Most users one message may @mention by name.
pub const MAX_MENTIONS: usize = 100;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum GroupRole {
    Owner,
    Admin,
    Member,
}

impl GroupRole {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
    /// Owners and admins manage the group.
    pub fn is_admin(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

/// How a user who is not a member gets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum JoinPolicy {
    /// Anyone joins at once; any member's invitation adds at once.
    Free,
    /// Joining makes a request that an admin accepts or declines; an admin's invitation
    /// adds at once, a member's becomes a request.
    Approval,
    /// Nobody joins by themselves; any member's invitation adds at once.
    InviteOnly,
}

impl JoinPolicy {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    pub owner: UserId,
    pub member_count: i64,
    pub metadata: serde_json::Value,
    pub avatar_url: Option<String>,
    pub announcement: String,
    pub join_policy: JoinPolicy,
    /// Only the owner and admins may send.
    pub mute_all: bool,
    /// Changes with every change to the group or its members (the member cache's key).
    pub version: i64,
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
    /// Until when they may not send here.
    pub muted_until: Option<UnixMillis>,
}

impl GroupMember {
    pub fn is_muted_at(&self, now: UnixMillis) -> bool {
        self.muted_until.is_some_and(|t| t > now)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum JoinRequestState {
    Pending,
    Accepted,
    Declined,
}

impl JoinRequestState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// A user's wish to join a group with `approval`, or a member's invitation there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupJoinRequest {
    pub group_id: GroupId,
    pub user_id: UserId,
    pub message: String,
    /// The member whose invitation this is; `None` when the user asked themselves.
    pub inviter: Option<UserId>,
    pub state: JoinRequestState,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// How far a member has read a group, for read receipts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPosition {
    pub user_id: UserId,
    pub read_seq: i64,
    pub joined_seq: i64,
}

/// The changeable part of a group's profile; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupPatch {
    pub name: Option<String>,
    /// `Some(None)` clears it.
    pub avatar_url: Option<Option<String>>,
    pub announcement: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub join_policy: Option<JoinPolicy>,
    pub mute_all: Option<bool>,
}

impl GroupPatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Checks every field it sets; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(n) = &self.name {
            validate_group_name(n)?;
        }
        if let Some(Some(u)) = &self.avatar_url {
            validate_avatar_url(u)?;
        }
        if let Some(a) = &self.announcement {
            if a.chars().count() > MAX_ANNOUNCEMENT_CHARS {
                return Err(format!(
                    "announcement must be at most {MAX_ANNOUNCEMENT_CHARS} characters"
                ));
            }
        }
        if let Some(m) = &self.metadata {
            validate_group_metadata(m)?;
        }
        Ok(())
    }

    /// This patch applied to `g` (what the store writes).
    pub fn apply(&self, g: &Group) -> Group {
        let mut out = g.clone();
        if let Some(n) = &self.name {
            out.name = n.clone();
        }
        if let Some(u) = &self.avatar_url {
            out.avatar_url = u.clone();
        }
        if let Some(a) = &self.announcement {
            out.announcement = a.clone();
        }
        if let Some(m) = &self.metadata {
            out.metadata = m.clone();
        }
        if let Some(p) = self.join_policy {
            out.join_policy = p;
        }
        if let Some(m) = self.mute_all {
            out.mute_all = m;
        }
        out
    }

    /// The fields this patch really changes in `g`, as JSON (for notices and webhooks).
    pub fn changes(&self, g: &Group) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        let next = self.apply(g);
        if next.name != g.name {
            out.insert("name".into(), next.name.clone().into());
        }
        if next.avatar_url != g.avatar_url {
            out.insert("avatar_url".into(), next.avatar_url.clone().into());
        }
        if next.announcement != g.announcement {
            out.insert("announcement".into(), next.announcement.clone().into());
        }
        if next.metadata != g.metadata {
            out.insert("metadata".into(), next.metadata.clone());
        }
        if next.join_policy != g.join_policy {
            out.insert("join_policy".into(), next.join_policy.as_str().into());
        }
        if next.mute_all != g.mute_all {
            out.insert("mute_all".into(), next.mute_all.into());
        }
        out
    }
}

pub fn validate_group_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > MAX_GROUP_NAME_CHARS {
        return Err(format!("name must be 1 to {MAX_GROUP_NAME_CHARS} characters"));
    }
    if super::has_forbidden_chars(name) {
        return Err("name must not contain control or bidirectional formatting characters".into());
    }
    Ok(())
}

pub fn validate_avatar_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048 {
        return Err("avatar_url must be an http(s) URL of at most 2048 characters".into());
    }
    Ok(())
}

pub fn validate_group_metadata(m: &serde_json::Value) -> Result<(), String> {
    if !m.is_object() {
        return Err("metadata must be a JSON object".into());
    }
    let size = serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_GROUP_METADATA_BYTES {
        return Err(format!("metadata must be at most {MAX_GROUP_METADATA_BYTES} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group() -> Group {
        Group {
            id: GroupId::parse("g").unwrap_or_else(|e| panic!("{e}")),
            name: "G".into(),
            owner: UserId::parse("o").unwrap_or_else(|e| panic!("{e}")),
            member_count: 1,
            metadata: json!({}),
            avatar_url: None,
            announcement: String::new(),
            join_policy: JoinPolicy::Approval,
            mute_all: false,
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_patch_reports_only_what_it_changes() {
        let p = GroupPatch {
            name: Some("G".into()),
            announcement: Some("hello".into()),
            mute_all: Some(true),
            ..GroupPatch::default()
        };
        let changed = p.changes(&group());
        assert_eq!(
            serde_json::Value::Object(changed),
            json!({"announcement": "hello", "mute_all": true})
        );
        assert!(GroupPatch::default().is_empty());
    }

    #[test]
    fn patches_are_checked_field_by_field() {
        let bad = [
            GroupPatch {
                name: Some(" ".into()),
                ..GroupPatch::default()
            },
            GroupPatch {
                avatar_url: Some(Some("ftp://x".into())),
                ..GroupPatch::default()
            },
            GroupPatch {
                announcement: Some("x".repeat(MAX_ANNOUNCEMENT_CHARS + 1)),
                ..GroupPatch::default()
            },
            GroupPatch {
                metadata: Some(json!([1])),
                ..GroupPatch::default()
            },
            GroupPatch {
                metadata: Some(json!({"k": "x".repeat(MAX_GROUP_METADATA_BYTES)})),
                ..GroupPatch::default()
            },
        ];
        for p in bad {
            assert!(p.validate().is_err(), "{p:?}");
        }
        let ok = GroupPatch {
            avatar_url: Some(None),
            announcement: Some(String::new()),
            ..GroupPatch::default()
        };
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn policies_and_roles_round_trip() {
        for p in [JoinPolicy::Free, JoinPolicy::Approval, JoinPolicy::InviteOnly] {
            assert_eq!(JoinPolicy::parse(p.as_str()), Some(p));
        }
        for r in [GroupRole::Owner, GroupRole::Admin, GroupRole::Member] {
            assert_eq!(GroupRole::parse(r.as_str()), Some(r));
        }
        assert!(GroupRole::Admin.is_admin() && !GroupRole::Member.is_admin());
    }
}
