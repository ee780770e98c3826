//! From the platform's domain values to the gRPC messages (and the JSON ↔
//! `google.protobuf.Struct` of content and metadata): the gRPC door's rendering, as
//! `rest::dto` and the views beside the REST handlers are the REST door's.

use tern_platform::domain::{
    Block, Broadcast, ConversationEntry, Extension, Friend, FriendRequest, Group, GroupJoinRequest, GroupMember,
    Message, QuotedMessage, ReactionSummary, RoomMute, SendReceipt, User, WordList, WordPolicy,
};
use tern_platform::groups::{Joined, ReadCount};
use tern_platform::ids::UserId;
use tern_platform::presence::UserPresence;
use tern_platform::proto::server_v1 as pb;
use tern_platform::rooms::RoomDetail;
use tern_platform::service::users::UserDetail;
use tern_platform::struct_json::prost as struct_json;

/// A Struct as a JSON object (`tern_platform::struct_json`, the one conversion).
pub fn struct_to_json(s: prost_types::Struct) -> serde_json::Value {
    struct_json::struct_to_json(&s)
}

/// A JSON object as a Struct; anything else (null) as no Struct.
pub fn json_to_struct(v: serde_json::Value) -> Option<prost_types::Struct> {
    struct_json::json_to_struct(&v)
}

pub fn user(u: User) -> pb::User {
    pb::User {
        id: u.id.into_string(),
        name: u.name,
        avatar_url: u.avatar_url,
        metadata: json_to_struct(u.metadata),
        banned_until: u.banned_until,
        muted_until: u.muted_until,
        created_at: u.created_at,
        updated_at: u.updated_at,
        online: false,
        devices: Vec::new(),
        last_seen: None,
    }
}

pub fn user_detail(d: UserDetail) -> pb::User {
    let p = d.presence;
    pb::User {
        online: p.as_ref().is_some_and(|p| p.online),
        devices: p.as_ref().map(|p| p.devices.clone()).unwrap_or_default(),
        last_seen: p.and_then(|p| p.last_seen),
        ..user(d.user)
    }
}

pub fn users(users: Vec<User>, next_cursor: Option<String>) -> pb::UsersResponse {
    pb::UsersResponse {
        users: users.into_iter().map(user).collect(),
        next_cursor: next_cursor.unwrap_or_default(),
    }
}

pub fn word_list(l: WordList) -> pb::WordList {
    pb::WordList {
        name: l.name,
        policy: match l.policy {
            WordPolicy::Replace => "replace".into(),
            WordPolicy::Reject => "reject".into(),
        },
        words: l.words,
        created_at: l.created_at,
        updated_at: l.updated_at,
    }
}

pub fn send(r: SendReceipt) -> pb::SendResponse {
    pb::SendResponse {
        msg_id: r.msg_id.into_string(),
        conversation_id: r.conversation_id.to_string(),
        seq: r.seq,
        created_at: r.created_at,
    }
}

fn user_ids(ids: Vec<UserId>) -> Vec<String> {
    ids.into_iter().map(UserId::into_string).collect()
}

pub fn message(m: Message) -> pb::Message {
    pb::Message {
        msg_id: m.msg_id.into_string(),
        conversation_id: m.conversation_id.to_string(),
        seq: m.seq,
        from: m.sender.user().map(|u| u.to_string()),
        client_msg_id: m.client_msg_id.into_string(),
        r#type: m.msg_type.as_str().to_owned(),
        content: json_to_struct(m.content),
        created_at: m.created_at,
        recalled: m.recalled,
        edited_at: m.edited_at,
        reply_to: m.reply_to.map(|r| r.into_string()),
        quoted: m.quoted.map(|q| quoted(*q)),
        version: m.version,
        extensions: m.extensions.into_iter().map(extension).collect(),
        reactions: m.reactions.into_iter().map(reaction).collect(),
        mentions: user_ids(m.mentions),
        mention_all: m.mention_all,
    }
}

// ---- message lifecycle ----

pub fn quoted(q: QuotedMessage) -> pb::QuotedMessage {
    pb::QuotedMessage {
        msg_id: q.msg_id.into_string(),
        seq: q.seq,
        from: q.sender.user().map(|u| u.to_string()),
        r#type: q.msg_type.as_str().to_owned(),
        content: json_to_struct(q.content),
        created_at: q.created_at,
        recalled: q.recalled,
        edited_at: q.edited_at,
    }
}

pub fn extension(e: Extension) -> pb::Extension {
    pb::Extension {
        key: e.key,
        value: e.value,
        version: e.version,
        updated_by: e.updated_by.map(UserId::into_string),
        updated_at: e.updated_at,
    }
}

pub fn extensions(list: Vec<Extension>, version: i64) -> pb::ExtensionsResponse {
    pb::ExtensionsResponse {
        extensions: list.into_iter().map(extension).collect(),
        version,
    }
}

pub fn reaction(r: ReactionSummary) -> pb::ReactionSummary {
    pb::ReactionSummary {
        reaction: r.reaction,
        count: r.count,
        reacted: r.reacted,
        users: user_ids(r.users),
    }
}

pub fn conversation(c: ConversationEntry) -> pb::Conversation {
    // The kind's name as the domain serialises it (`direct`, `group`, `room`, `system`).
    let kind = serde_json::to_value(c.conversation_id.kind())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    pb::Conversation {
        conversation_id: c.conversation_id.to_string(),
        kind,
        last_seq: c.last_seq,
        read_seq: c.read_seq,
        unread: c.unread,
        version: c.version,
        last_message: c.last_message.map(message),
        updated_at: c.updated_at,
        mentioned: c.mentioned,
    }
}

pub fn presence(p: UserPresence) -> pb::UserPresence {
    pb::UserPresence {
        user_id: p.user_id.into_string(),
        online: p.online,
        last_seen: p.last_seen,
        devices: p.devices,
    }
}

// ---- groups ----

pub fn group(g: Group) -> pb::Group {
    pb::Group {
        id: g.id.into_string(),
        name: g.name,
        owner: g.owner.into_string(),
        member_count: g.member_count,
        metadata: json_to_struct(g.metadata),
        created_at: g.created_at,
        updated_at: g.updated_at,
        avatar_url: g.avatar_url,
        announcement: g.announcement,
        join_policy: g.join_policy.as_str().to_owned(),
        mute_all: g.mute_all,
    }
}

pub fn member(m: GroupMember) -> pb::Member {
    pb::Member {
        user_id: m.user_id.into_string(),
        role: m.role.as_str().to_owned(),
        joined_at: m.joined_at,
        muted_until: m.muted_until,
    }
}

pub fn join_request(r: GroupJoinRequest) -> pb::JoinRequest {
    pb::JoinRequest {
        group_id: r.group_id.into_string(),
        user_id: r.user_id.into_string(),
        message: r.message,
        inviter: r.inviter.map(UserId::into_string),
        state: r.state.as_str().to_owned(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

pub fn joined(j: Joined) -> pb::JoinGroupResponse {
    match j {
        Joined::Member(m) => pb::JoinGroupResponse {
            joined: true,
            member: Some(member(m)),
            request: None,
        },
        Joined::Requested(r) => pb::JoinGroupResponse {
            joined: false,
            member: None,
            request: Some(join_request(r)),
        },
    }
}

pub fn read_count(c: ReadCount) -> pb::ReadCount {
    pb::ReadCount {
        msg_id: c.msg_id.into_string(),
        seq: c.seq,
        read: c.read,
        unread: c.unread,
    }
}

// ---- rooms and broadcasts ----

pub fn room(d: RoomDetail) -> pb::Room {
    pb::Room {
        id: d.room.id.into_string(),
        name: d.room.name,
        metadata: json_to_struct(d.room.metadata),
        created_by: d.room.created_by.as_str().to_owned(),
        created_at: d.room.created_at,
        updated_at: d.room.updated_at,
        member_count: i64::try_from(d.member_count).unwrap_or(i64::MAX),
        last_seq: d.room.last_seq,
    }
}

pub fn room_mute(m: RoomMute) -> pb::RoomMute {
    pb::RoomMute {
        user_id: m.user_id.into_string(),
        until: m.until,
    }
}

pub fn broadcast(b: Broadcast) -> pb::Broadcast {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    pb::Broadcast {
        id: b.id,
        status: b.state.as_str().to_owned(),
        users_seen: count(b.users_seen),
        sent: count(b.sent),
        failed: count(b.failed),
        created_at: b.created_at,
        error: b.error,
        audience: b.audience.as_str().to_owned(),
        total: b.total.map(count),
        r#type: b.msg_type.as_str().to_owned(),
        content: json_to_struct(b.content),
        updated_at: b.updated_at,
        finished_at: b.finished_at,
    }
}

// ---- friends ----

pub fn friend_request(r: FriendRequest) -> pb::FriendRequest {
    pb::FriendRequest {
        from: r.from.into_string(),
        to: r.to.into_string(),
        message: r.message,
        state: r.state.as_str().to_owned(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

pub fn friend(f: Friend) -> pb::Friend {
    pb::Friend {
        user_id: f.user_id.into_string(),
        friend_id: f.friend_id.into_string(),
        remark: f.remark,
        tags: f.tags,
        created_at: f.created_at,
        updated_at: f.updated_at,
    }
}

pub fn block(b: Block) -> pb::BlockedUser {
    pb::BlockedUser {
        user_id: b.user_id.into_string(),
        blocked_id: b.blocked_id.into_string(),
        created_at: b.created_at,
    }
}

/// A request's page: its cursor (`""`: from the start) and its limit (0: the default), as
/// the platform's paged operations take them.
pub fn page(cursor: &str, limit: u32) -> (Option<&str>, u32) {
    ((!cursor.is_empty()).then_some(cursor), limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_struct() {
        let v = json!({"text": "hi", "n": 3, "f": 1.5, "ok": true, "none": null, "list": [1, "a"], "o": {"k": "v"}});
        let s = json_to_struct(v.clone()).unwrap();
        assert_eq!(struct_to_json(s), v);
        assert!(json_to_struct(json!(null)).is_none());
    }
}
