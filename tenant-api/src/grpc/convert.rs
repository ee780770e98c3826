//! Between the REST views (JSON) and the gRPC messages: `google.protobuf.Struct` holds what
//! REST carries as a JSON object (content, metadata).

use prost_types::value::Kind;
use tern_platform::proto::server_v1 as pb;

use crate::rest::dto::*;

pub fn json_to_value(v: serde_json::Value) -> prost_types::Value {
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.into_iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o.into_iter().map(|(k, v)| (k, json_to_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

pub fn value_to_json(v: prost_types::Value) -> serde_json::Value {
    match v.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => b.into(),
        Some(Kind::NumberValue(n)) => {
            // Whole numbers come back as integers, as a JSON caller would have sent them.
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                serde_json::Value::from(n as i64)
            } else {
                serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
        Some(Kind::StringValue(s)) => s.into(),
        Some(Kind::ListValue(l)) => l.values.into_iter().map(value_to_json).collect(),
        Some(Kind::StructValue(s)) => struct_to_json(s),
    }
}

pub fn struct_to_json(s: prost_types::Struct) -> serde_json::Value {
    serde_json::Value::Object(s.fields.into_iter().map(|(k, v)| (k, value_to_json(v))).collect())
}

/// A JSON object as a Struct; anything else (null) as no Struct.
pub fn json_to_struct(v: serde_json::Value) -> Option<prost_types::Struct> {
    match json_to_value(v).kind {
        Some(Kind::StructValue(s)) => Some(s),
        _ => None,
    }
}

pub fn user(u: UserView) -> pb::User {
    pb::User {
        id: u.id,
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
    pb::User {
        online: d.online,
        devices: d.devices,
        last_seen: d.last_seen,
        ..user(d.user)
    }
}

pub fn users(a: UsersAnswer) -> pb::UsersResponse {
    pb::UsersResponse {
        users: a.users.into_iter().map(user).collect(),
        next_cursor: a.next_cursor.unwrap_or_default(),
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
