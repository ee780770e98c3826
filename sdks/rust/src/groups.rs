//! Groups from the `Client`: the user acts for themselves, within what their role allows
//! (docs/groups.md has the rules).
//!
//! Changes to a group arrive as `Event::Message`s of type `system` in the group's
//! conversation (`g:<id>`), in order with everything else; `GroupNotice::of` reads one. A
//! user put out of a group (removed, or the group dismissed) gets one in their own `s:<user>`
//! conversation. Join requests reach the owner and admins as `Event::Notification` with
//! `content["type"] == "group_join_request"`; the answer reaches the asker in their
//! `s:<user>` conversation (`join_request_accepted` or `join_request_declined`), read with
//! `GroupNotice::of_notification`.

use crate::client::{unexpected, Client};
use crate::content::{json_to_struct, struct_to_json};
use crate::proto as pb;
use crate::types::{ClientError, Event, Message};

use pb::client_frame::Command;
use pb::server_frame::Body;

/// A group's profile.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInfo {
    pub group_id: String,
    pub name: String,
    pub owner: String,
    pub member_count: i64,
    pub metadata: serde_json::Value,
    pub avatar_url: Option<String>,
    pub announcement: String,
    /// `free`, `approval` or `invite_only`.
    pub join_policy: String,
    /// Only the owner and admins may send.
    pub mute_all: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<pb::GroupInfo> for GroupInfo {
    fn from(g: pb::GroupInfo) -> Self {
        Self {
            group_id: g.group_id,
            name: g.name,
            owner: g.owner,
            member_count: g.member_count,
            metadata: g.metadata.as_ref().map_or(serde_json::json!({}), struct_to_json),
            avatar_url: (!g.avatar_url.is_empty()).then_some(g.avatar_url),
            announcement: g.announcement,
            join_policy: g.join_policy,
            mute_all: g.mute_all,
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub user_id: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    pub joined_at: i64,
    /// Until when they may not send in the group.
    pub muted_until: Option<i64>,
}

impl From<pb::GroupMemberInfo> for MemberInfo {
    fn from(m: pb::GroupMemberInfo) -> Self {
        Self {
            user_id: m.user_id,
            role: m.role,
            joined_at: m.joined_at,
            muted_until: (m.muted_until != 0).then_some(m.muted_until),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequestInfo {
    pub group_id: String,
    pub user_id: String,
    pub message: String,
    /// The member whose invitation this is.
    pub inviter: Option<String>,
    /// `pending`, `accepted` or `declined`.
    pub state: String,
    pub created_at: i64,
}

impl From<pb::JoinRequestInfo> for JoinRequestInfo {
    fn from(r: pb::JoinRequestInfo) -> Self {
        Self {
            group_id: r.group_id,
            user_id: r.user_id,
            message: r.message,
            inviter: (!r.inviter.is_empty()).then_some(r.inviter),
            state: r.state,
            created_at: r.created_at,
        }
    }
}

/// What an invitation did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InviteResult {
    /// Members now.
    pub added: Vec<String>,
    /// Waiting for an admin (a member's invitation to an `approval` group).
    pub requested: Vec<String>,
}

/// What asking to join did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    Joined(MemberInfo),
    Requested(JoinRequestInfo),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCount {
    pub msg_id: String,
    pub seq: i64,
    /// Members other than the sender, there when it was sent, who have read it.
    pub read: i64,
    pub unread: i64,
}

/// A new group.
#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    /// Empty: the server makes one.
    pub group_id: String,
    pub name: String,
    /// Members besides the creator (who owns the group).
    pub members: Vec<String>,
    pub avatar_url: Option<String>,
    pub announcement: String,
    pub metadata: Option<serde_json::Value>,
    /// `free`, `approval` (the default) or `invite_only`.
    pub join_policy: Option<String>,
}

/// A change to a group's profile; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct GroupChanges {
    pub name: Option<String>,
    /// `Some(None)` clears it.
    pub avatar_url: Option<Option<String>>,
    pub announcement: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub join_policy: Option<String>,
    pub mute_all: Option<bool>,
}

/// A group change as a `system` message shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupNotice {
    /// `group_created`, `members_added`, `member_joined`, `member_left`, `member_removed`,
    /// `member_muted`, `member_unmuted`, `role_changed`, `owner_transferred`,
    /// `group_updated`; in `s:<user>`: `removed_from_group`, `group_dismissed`,
    /// `join_request_accepted`, `join_request_declined`.
    pub event: String,
    pub group_id: String,
    /// Who did it; `None` for the app's backend (or a user acting alone, e.g. leaving).
    pub by: Option<String>,
    /// The rest: `users`, `user`, `role`, `until`, `from`, `to`, `changed`, `name`, ...
    pub content: serde_json::Value,
}

impl GroupNotice {
    /// The group change a message of the group's timeline announces, if it is one.
    pub fn of(m: &Message) -> Option<Self> {
        if m.msg_type != "system" {
            return None;
        }
        Self::from_content(&m.content)
    }

    /// The group change a notice of the user's own system conversation announces
    /// (`removed_from_group`, `group_dismissed`, the answer to a join request), if it is
    /// one: those arrive as
    /// `Event::Notification` with `msg_type: Some("system")`.
    pub fn of_notification(e: &Event) -> Option<Self> {
        match e {
            Event::Notification {
                msg_type: Some(t),
                content,
                ..
            } if t == "system" => Self::from_content(content),
            _ => None,
        }
    }

    fn from_content(content: &serde_json::Value) -> Option<Self> {
        let event = content.get("event")?.as_str()?.to_owned();
        let group_id = content.get("group_id")?.as_str()?.to_owned();
        let by = content.get("by").and_then(|b| b.as_str()).map(str::to_owned);
        Some(Self {
            event,
            group_id,
            by,
            content: content.clone(),
        })
    }
}

impl Client {
    async fn group_info(&self, cmd: Command) -> Result<GroupInfo, ClientError> {
        match self.request(cmd).await? {
            Body::Group(g) => Ok(g.into()),
            _ => Err(unexpected()),
        }
    }

    async fn member_info(&self, cmd: Command) -> Result<MemberInfo, ClientError> {
        match self.request(cmd).await? {
            Body::Member(m) => Ok(m.into()),
            _ => Err(unexpected()),
        }
    }

    /// Creates a group this user owns (when the app lets users create groups).
    pub async fn create_group(&self, group: NewGroup) -> Result<GroupInfo, ClientError> {
        let metadata = match &group.metadata {
            Some(m) => Some(
                json_to_struct(m)
                    .ok_or_else(|| ClientError::InvalidArgument("metadata must be a JSON object".into()))?,
            ),
            None => None,
        };
        self.group_info(Command::CreateGroup(pb::CreateGroup {
            group_id: group.group_id,
            name: group.name,
            members: group.members,
            avatar_url: group.avatar_url.unwrap_or_default(),
            announcement: group.announcement,
            metadata,
            join_policy: group.join_policy.unwrap_or_default(),
        }))
        .await
    }

    /// A group's profile (any user of the app may read it).
    pub async fn group(&self, group_id: &str) -> Result<GroupInfo, ClientError> {
        self.group_info(Command::GetGroup(pb::GetGroup {
            group_id: group_id.to_owned(),
        }))
        .await
    }

    /// Changes the profile (the owner and admins).
    pub async fn update_group(&self, group_id: &str, changes: GroupChanges) -> Result<GroupInfo, ClientError> {
        let metadata = match &changes.metadata {
            Some(m) => Some(
                json_to_struct(m)
                    .ok_or_else(|| ClientError::InvalidArgument("metadata must be a JSON object".into()))?,
            ),
            None => None,
        };
        self.group_info(Command::UpdateGroup(pb::UpdateGroup {
            group_id: group_id.to_owned(),
            name: changes.name,
            avatar_url: changes.avatar_url.map(Option::unwrap_or_default),
            announcement: changes.announcement,
            metadata,
            join_policy: changes.join_policy,
            mute_all: changes.mute_all,
        }))
        .await
    }

    /// Dismisses the group (the owner).
    pub async fn dismiss_group(&self, group_id: &str) -> Result<(), ClientError> {
        self.request(Command::DismissGroup(pb::DismissGroup {
            group_id: group_id.to_owned(),
        }))
        .await
        .map(|_| ())
    }

    /// Invites users: admins add them at once; members too, except in `approval` groups,
    /// where each becomes a join request.
    pub async fn invite(&self, group_id: &str, user_ids: &[&str]) -> Result<InviteResult, ClientError> {
        let cmd = Command::InviteMembers(pb::InviteMembers {
            group_id: group_id.to_owned(),
            user_ids: user_ids.iter().map(|u| (*u).to_owned()).collect(),
        });
        match self.request(cmd).await? {
            Body::InviteResult(r) => Ok(InviteResult {
                added: r.added,
                requested: r.requested,
            }),
            _ => Err(unexpected()),
        }
    }

    /// Removes a member (admins remove members, the owner admins too).
    pub async fn remove_member(&self, group_id: &str, user_id: &str) -> Result<(), ClientError> {
        self.request(Command::RemoveMember(pb::RemoveMember {
            group_id: group_id.to_owned(),
            user_id: user_id.to_owned(),
        }))
        .await
        .map(|_| ())
    }

    /// Leaves the group (the owner must transfer it first).
    pub async fn leave_group(&self, group_id: &str) -> Result<(), ClientError> {
        self.request(Command::LeaveGroup(pb::LeaveGroup {
            group_id: group_id.to_owned(),
        }))
        .await
        .map(|_| ())
    }

    /// Asks to join: joined at once (`free`), a request for the admins (`approval`);
    /// `invite_only` groups refuse with `forbidden`.
    pub async fn join_group(&self, group_id: &str, message: &str) -> Result<JoinOutcome, ClientError> {
        let cmd = Command::JoinGroup(pb::JoinGroup {
            group_id: group_id.to_owned(),
            message: message.to_owned(),
        });
        match self.request(cmd).await? {
            Body::JoinResult(pb::JoinResult {
                joined: true,
                member: Some(m),
                ..
            }) => Ok(JoinOutcome::Joined(m.into())),
            Body::JoinResult(pb::JoinResult { request: Some(r), .. }) => Ok(JoinOutcome::Requested(r.into())),
            _ => Err(unexpected()),
        }
    }

    /// Pending join requests, by user id (the owner and admins); pass the last user id as
    /// `after` for the next page.
    pub async fn join_requests(
        &self,
        group_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JoinRequestInfo>, ClientError> {
        let cmd = Command::ListJoinRequests(pb::ListJoinRequests {
            group_id: group_id.to_owned(),
            after: after.unwrap_or("").to_owned(),
            limit,
        });
        match self.request(cmd).await? {
            Body::JoinRequestList(l) => Ok(l.requests.into_iter().map(Into::into).collect()),
            _ => Err(unexpected()),
        }
    }

    /// Accepts (the user becomes a member) or declines a pending request.
    pub async fn answer_join_request(
        &self,
        group_id: &str,
        user_id: &str,
        accept: bool,
    ) -> Result<JoinRequestInfo, ClientError> {
        let cmd = Command::AnswerJoinRequest(pb::AnswerJoinRequest {
            group_id: group_id.to_owned(),
            user_id: user_id.to_owned(),
            accept,
        });
        match self.request(cmd).await? {
            Body::JoinRequest(r) => Ok(r.into()),
            _ => Err(unexpected()),
        }
    }

    /// Members by user id (members only); pass the last user id as `after` for the next page.
    pub async fn members(
        &self,
        group_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MemberInfo>, ClientError> {
        let cmd = Command::ListMembers(pb::ListMembers {
            group_id: group_id.to_owned(),
            after: after.unwrap_or("").to_owned(),
            limit,
        });
        match self.request(cmd).await? {
            Body::MemberList(l) => Ok(l.members.into_iter().map(Into::into).collect()),
            _ => Err(unexpected()),
        }
    }

    pub async fn member(&self, group_id: &str, user_id: &str) -> Result<MemberInfo, ClientError> {
        self.member_info(Command::GetMember(pb::GetMember {
            group_id: group_id.to_owned(),
            user_id: user_id.to_owned(),
        }))
        .await
    }

    /// Makes a member an admin (`"admin"`) or an admin a member (`"member"`); the owner only.
    pub async fn set_member_role(&self, group_id: &str, user_id: &str, role: &str) -> Result<MemberInfo, ClientError> {
        self.member_info(Command::SetMemberRole(pb::SetMemberRole {
            group_id: group_id.to_owned(),
            user_id: user_id.to_owned(),
            role: role.to_owned(),
        }))
        .await
    }

    /// Hands the group to another member; this user becomes a member.
    pub async fn transfer_group(&self, group_id: &str, new_owner: &str) -> Result<GroupInfo, ClientError> {
        self.group_info(Command::TransferOwner(pb::TransferOwner {
            group_id: group_id.to_owned(),
            user_id: new_owner.to_owned(),
        }))
        .await
    }

    /// Mutes a member until `until` (unix ms; `None`: until lifted).
    pub async fn mute_member(
        &self,
        group_id: &str,
        user_id: &str,
        until: Option<i64>,
    ) -> Result<MemberInfo, ClientError> {
        self.member_info(Command::MuteMember(pb::MuteMember {
            group_id: group_id.to_owned(),
            user_id: user_id.to_owned(),
            until,
            lift: false,
        }))
        .await
    }

    pub async fn unmute_member(&self, group_id: &str, user_id: &str) -> Result<MemberInfo, ClientError> {
        self.member_info(Command::MuteMember(pb::MuteMember {
            group_id: group_id.to_owned(),
            user_id: user_id.to_owned(),
            until: None,
            lift: true,
        }))
        .await
    }

    /// The groups this user is in, by id; pass the last id as `after` for the next page.
    pub async fn my_groups(&self, after: Option<&str>, limit: u32) -> Result<Vec<GroupInfo>, ClientError> {
        let cmd = Command::ListMyGroups(pb::ListMyGroups {
            after: after.unwrap_or("").to_owned(),
            limit,
        });
        match self.request(cmd).await? {
            Body::GroupList(l) => Ok(l.groups.into_iter().map(Into::into).collect()),
            _ => Err(unexpected()),
        }
    }

    /// How many members have read each of these messages (up to 100), in groups up to the
    /// app's read-receipt limit.
    pub async fn read_counts(&self, group_id: &str, msg_ids: &[&str]) -> Result<Vec<ReadCount>, ClientError> {
        let cmd = Command::GetReadCounts(pb::GetReadCounts {
            group_id: group_id.to_owned(),
            msg_ids: msg_ids.iter().map(|m| (*m).to_owned()).collect(),
        });
        match self.request(cmd).await? {
            Body::ReadCounts(l) => Ok(l
                .counts
                .into_iter()
                .map(|c| ReadCount {
                    msg_id: c.msg_id,
                    seq: c.seq,
                    read: c.read,
                    unread: c.unread,
                })
                .collect()),
            _ => Err(unexpected()),
        }
    }

    /// Who has read a message (with `unread`, who has not), by user id; pass the last id
    /// as `after` for the next page.
    pub async fn readers(
        &self,
        group_id: &str,
        msg_id: &str,
        unread: bool,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, ClientError> {
        let cmd = Command::ListReaders(pb::ListReaders {
            group_id: group_id.to_owned(),
            msg_id: msg_id.to_owned(),
            unread,
            after: after.unwrap_or("").to_owned(),
            limit,
        });
        match self.request(cmd).await? {
            Body::Readers(l) => Ok(l.user_ids),
            _ => Err(unexpected()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(msg_type: &str, content: serde_json::Value) -> Message {
        Message {
            msg_id: "m1".into(),
            conversation_id: "g:team".into(),
            seq: 3,
            sender: None,
            client_msg_id: "sys-1".into(),
            msg_type: msg_type.into(),
            content,
            created_at: 0,
            recalled: false,
            edited_at: None,
            reply_to: None,
            quoted: None,
            version: 0,
            extensions: Vec::new(),
            reactions: Vec::new(),
            mentions: Vec::new(),
            mention_all: false,
        }
    }

    #[test]
    fn a_system_message_reads_as_a_notice() {
        let m = message(
            "system",
            json!({"event": "member_removed", "group_id": "team", "by": "alice", "user": "bob"}),
        );
        let n = GroupNotice::of(&m).unwrap();
        assert_eq!(
            (n.event.as_str(), n.group_id.as_str(), n.by.as_deref()),
            ("member_removed", "team", Some("alice"))
        );
        assert_eq!(n.content["user"], "bob");
        assert!(GroupNotice::of(&message("text", json!({"event": "x", "group_id": "g"}))).is_none());
        assert!(GroupNotice::of(&message("system", json!({"text": "hi"}))).is_none());
    }
}
