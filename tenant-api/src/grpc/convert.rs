//! Between the REST views (JSON) and the gRPC messages: `google.protobuf.Struct` holds what
//! REST carries as a JSON object (content, metadata).

use tern_platform::domain::{User, WordList, WordPolicy};
use tern_platform::proto::server_v1 as pb;
use tern_platform::service::users::UserDetail;
use tern_platform::struct_json::prost as struct_json;

use crate::rest::dto::*;

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

pub fn send(a: SendAnswer) -> pb::SendResponse {
    pb::SendResponse {
        msg_id: a.msg_id,
        conversation_id: a.conversation_id,
        seq: a.seq,
        created_at: a.created_at,
    }
}

pub fn message(m: MessageView) -> pb::Message {
    pb::Message {
        msg_id: m.msg_id,
        conversation_id: m.conversation_id,
        seq: m.seq,
        from: m.from,
        client_msg_id: m.client_msg_id,
        r#type: m.msg_type,
        content: json_to_struct(m.content),
        created_at: m.created_at,
        recalled: m.recalled,
        edited_at: m.edited_at,
        reply_to: m.reply_to,
        quoted: m.quoted.map(quoted),
        version: m.version,
        extensions: m.extensions.into_iter().map(extension).collect(),
        reactions: m.reactions.into_iter().map(reaction).collect(),
        mentions: m.mentions,
        mention_all: m.mention_all,
    }
}

// ---- message lifecycle ----

pub fn quoted(q: crate::rest::lifecycle::QuotedView) -> pb::QuotedMessage {
    pb::QuotedMessage {
        msg_id: q.msg_id,
        seq: q.seq,
        from: q.from,
        r#type: q.msg_type,
        content: json_to_struct(q.content),
        created_at: q.created_at,
        recalled: q.recalled,
        edited_at: q.edited_at,
    }
}

pub fn extension(e: crate::rest::lifecycle::ExtensionView) -> pb::Extension {
    pb::Extension {
        key: e.key,
        value: e.value,
        version: e.version,
        updated_by: e.updated_by,
        updated_at: e.updated_at,
    }
}

pub fn reaction(r: crate::rest::lifecycle::ReactionView) -> pb::ReactionSummary {
    pb::ReactionSummary {
        reaction: r.reaction,
        count: r.count,
        reacted: r.reacted,
        users: r.users,
    }
}

pub fn conversation(c: ConversationView) -> pb::Conversation {
    pb::Conversation {
        conversation_id: c.conversation_id,
        kind: c.kind,
        last_seq: c.last_seq,
        read_seq: c.read_seq,
        unread: c.unread,
        version: c.version,
        last_message: c.last_message.map(message),
        updated_at: c.updated_at,
        mentioned: c.mentioned,
    }
}

pub fn group(g: GroupView) -> pb::Group {
    pb::Group {
        id: g.id,
        name: g.name,
        owner: g.owner,
        member_count: g.member_count,
        metadata: json_to_struct(g.metadata),
        created_at: g.created_at,
        updated_at: g.updated_at,
        avatar_url: g.avatar_url,
        announcement: g.announcement,
        join_policy: g.join_policy,
        mute_all: g.mute_all,
    }
}

pub fn member(m: MemberView) -> pb::Member {
    pb::Member {
        user_id: m.user_id,
        role: m.role,
        joined_at: m.joined_at,
        muted_until: m.muted_until,
    }
}

pub fn presence(p: PresenceView) -> pb::UserPresence {
    pb::UserPresence {
        user_id: p.user_id,
        online: p.online,
        last_seen: p.last_seen,
        devices: p.devices,
    }
}

pub fn page(cursor: String, limit: u32) -> PageQuery {
    PageQuery {
        cursor: (!cursor.is_empty()).then_some(cursor),
        limit: (limit > 0).then_some(limit),
    }
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
