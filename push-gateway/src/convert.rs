//! Translation between the engine's types (`tern_platform::domain`, `bus::Push`) and the
//! wire frames generated from `proto/tern/v1/client.proto`.

use tern_platform::bus::Push;
use tern_platform::domain::{
    ChangeKind, ConversationEntry, Extension, Message, MessageChange, QuotedMessage, ReactionSummary, Sender,
};
use tern_platform::presence::UserPresence;
use tern_platform::proto::v1 as pb;

/// The one JSON ↔ Struct conversion (`tern_platform::struct_json`), for the client frames.
pub use tern_platform::struct_json::pbjson::{json_to_struct, struct_to_json};

pub fn message(m: &Message) -> pb::Message {
    pb::Message {
        msg_id: m.msg_id.to_string(),
        conversation_id: m.conversation_id.to_string(),
        seq: m.seq,
        sender: match &m.sender {
            Sender::User(u) => u.to_string(),
            Sender::System => String::new(),
        },
        client_msg_id: m.client_msg_id.to_string(),
        r#type: m.msg_type.as_str().to_owned(),
        content: json_to_struct(&m.content),
        created_at: m.created_at,
        recalled: m.recalled,
        edited_at: m.edited_at.unwrap_or(0),
        reply_to: m.reply_to.as_ref().map(|r| r.to_string()).unwrap_or_default(),
        quoted: m.quoted.as_deref().map(quoted),
        version: m.version,
        extensions: m.extensions.iter().map(extension).collect(),
        reactions: m.reactions.iter().map(reaction_summary).collect(),
        mentions: m.mentions.iter().map(|u| u.to_string()).collect(),
        mention_all: m.mention_all,
    }
}

pub fn conversation(e: &ConversationEntry) -> pb::ConversationState {
    pb::ConversationState {
        conversation_id: e.conversation_id.to_string(),
        last_seq: e.last_seq,
        read_seq: e.read_seq,
        unread: e.unread,
        version: e.version,
        last_message: e.last_message.as_ref().map(message),
        updated_at: e.updated_at,
        mentioned: e.mentioned,
    }
}

pub fn presence(p: &UserPresence) -> pb::PresenceUpdate {
    pb::PresenceUpdate {
        user_id: p.user_id.to_string(),
        online: p.online,
        last_seen: p.last_seen.unwrap_or(0),
    }
}

/// The frame a push becomes; `None` for `Kick`, which closes the session instead.
pub fn push_frame(push: &Push) -> Option<pb::ServerFrame> {
    use pb::server_frame::Body;
    let body = match push {
        Push::Message { message: m } => Body::Message(message(m)),
        Push::Receipt {
            conversation_id,
            user_id,
            read_seq,
        } => Body::Receipt(pb::Receipt {
            conversation_id: conversation_id.to_string(),
            user_id: user_id.to_string(),
            read_seq: *read_seq,
        }),
        Push::Typing {
            conversation_id,
            user_id,
        } => Body::Typing(pb::TypingIndicator {
            conversation_id: conversation_id.to_string(),
            user_id: user_id.to_string(),
        }),
        Push::Presence {
            user_id,
            online,
            last_seen,
        } => Body::Presence(pb::PresenceUpdate {
            user_id: user_id.to_string(),
            online: *online,
            last_seen: *last_seen,
        }),
        Push::Notification {
            id,
            content,
            created_at,
        } => Body::Notification(pb::Notification {
            notification_id: id.clone(),
            content: json_to_struct(content),
            created_at: *created_at,
            ..Default::default()
        }),
        Push::Kick { .. } | Push::Replaced { .. } => return None,
        // ---- message lifecycle ----
        Push::MessageChanged { change: c } => match &c.kind {
            // A recall keeps its own push (the contract's `recall`).
            ChangeKind::Recalled { message: m } => Body::Recall(recalled(m, c)),
            _ => Body::Change(change(c)),
        },
        // ---- rooms and broadcasts ----
        Push::KeptNotification { message: m } => Body::Notification(pb::Notification {
            notification_id: m.msg_id.to_string(),
            content: json_to_struct(&m.content),
            created_at: m.created_at,
            conversation_id: m.conversation_id.to_string(),
            seq: m.seq,
            r#type: m.msg_type.as_str().to_owned(),
        }),
        Push::RoomLeft { room, reason, .. } => Body::RoomLeft(pb::RoomLeft {
            room_id: room.to_string(),
            reason: reason.clone(),
        }),
    };
    Some(pb::ServerFrame {
        id: String::new(),
        body: Some(body),
    })
}

// ---- message lifecycle ----

fn sender_id(s: &Sender) -> String {
    s.user().map(|u| u.to_string()).unwrap_or_default()
}

pub fn quoted(q: &QuotedMessage) -> pb::QuotedMessage {
    pb::QuotedMessage {
        msg_id: q.msg_id.to_string(),
        seq: q.seq,
        sender: sender_id(&q.sender),
        r#type: q.msg_type.as_str().to_owned(),
        content: json_to_struct(&q.content),
        created_at: q.created_at,
        recalled: q.recalled,
        edited_at: q.edited_at.unwrap_or(0),
    }
}

pub fn extension(e: &Extension) -> pb::Extension {
    pb::Extension {
        key: e.key.clone(),
        value: e.value.clone(),
        version: e.version,
        updated_by: e.updated_by.as_ref().map(|u| u.to_string()).unwrap_or_default(),
        updated_at: e.updated_at,
    }
}

pub fn reaction_summary(r: &ReactionSummary) -> pb::ReactionSummary {
    pb::ReactionSummary {
        reaction: r.reaction.clone(),
        count: r.count,
        reacted: r.reacted,
        users: r.users.iter().map(|u| u.to_string()).collect(),
    }
}

fn recalled(m: &Message, c: &MessageChange) -> pb::Recalled {
    pb::Recalled {
        message: Some(message(m)),
        by: c.by.as_ref().map(|u| u.to_string()).unwrap_or_default(),
        recalled_at: c.changed_at,
    }
}

/// A change as pushed and as `get_changes` returns it.
pub fn change(c: &MessageChange) -> pb::MessageChange {
    use pb::message_change::Change;
    let body = match &c.kind {
        ChangeKind::Recalled { message: m } => Change::Recall(recalled(m, c)),
        ChangeKind::Edited { content, edited_at } => Change::Edit(pb::MessageEdited {
            content: json_to_struct(content),
            edited_at: *edited_at,
        }),
        ChangeKind::Extensions { items } => Change::Extensions(pb::ExtensionsChanged {
            items: items
                .iter()
                .map(|i| pb::ExtensionChange {
                    key: i.key.clone(),
                    value: i.value.clone(),
                    version: i.version,
                })
                .collect(),
        }),
        ChangeKind::Reaction {
            reaction,
            user_id,
            added,
            count,
        } => Change::Reaction(pb::ReactionChanged {
            reaction: reaction.clone(),
            user_id: user_id.to_string(),
            added: *added,
            count: *count,
        }),
        ChangeKind::Deleted => Change::Deleted(pb::DeletedForUser {}),
    };
    pb::MessageChange {
        conversation_id: c.conversation_id.to_string(),
        msg_id: c.msg_id.to_string(),
        seq: c.seq,
        version: c.version,
        by: c.by.as_ref().map(|u| u.to_string()).unwrap_or_default(),
        changed_at: c.changed_at,
        change: Some(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_survives_the_round_trip_with_integers_intact() {
        let v = json!({"text": "hi", "n": 1000, "f": 1.5, "l": [true, null, {"x": "y"}]});
        let s = json_to_struct(&v);
        assert!(s.is_some());
        assert_eq!(s.map(|s| struct_to_json(&s)), Some(v));
        assert!(json_to_struct(&json!("not an object")).is_none());
    }
}
