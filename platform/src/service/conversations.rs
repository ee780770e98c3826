//! A user's conversation list, as the server API reads it.

use crate::bus::Push;
use crate::context::Ctx;
use crate::delivery::{clamp_limit, DeliveryError, Pipeline};
use crate::domain::{App, ConversationEntry, UnixMillis};
use crate::ids::{ConversationId, UserId};
use crate::store::{StoreError, StoreResult};

use super::existing_user;
use super::paging::{decode_cursor, Page};

/// The position a conversation-list cursor holds: `(updated_at, conversation id)`.
fn list_position(cursor: &str) -> Result<(UnixMillis, String), DeliveryError> {
    let malformed = || DeliveryError::InvalidArgument("cursor is malformed".into());
    let raw = decode_cursor(cursor)?;
    let (t, id) = raw.split_once('|').ok_or_else(malformed)?;
    Ok((t.parse().map_err(|_| malformed())?, id.to_owned()))
}

/// A page of the user's conversations, most recently active first, after the one a
/// `cursor` names (`limit` 0: the default); `not_found` for no such user.
pub async fn list_page(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<ConversationEntry>, DeliveryError> {
    let limit = clamp_limit(limit);
    let after = cursor.map(list_position).transpose()?;
    let list = list(p, app, user, after, limit).await?;
    Ok(Page::of(list, limit, |c| {
        format!("{}|{}", c.updated_at, c.conversation_id)
    }))
}

/// The user's conversations, most recently active first, after the cursor
/// `(updated_at, conversation id)`; `not_found` for no such user.
pub async fn list(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    after: Option<(UnixMillis, String)>,
    limit: u32,
) -> StoreResult<Vec<ConversationEntry>> {
    existing_user(p, app, user).await?;
    p.store().conversations(&app.id, user, after, limit).await
}

/// One conversation as the user sees it; `not_found` ("conversation not found") if they
/// have no entry for it.
pub async fn get(p: &Pipeline, app: &App, user: &UserId, id: &ConversationId) -> StoreResult<ConversationEntry> {
    p.store()
        .conversation(&app.id, user, id)
        .await?
        .ok_or(StoreError::NotFound("conversation"))
}

/// The user's entries changed since `version` (their sync state), lowest version first.
pub async fn changed_since(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    version: i64,
    limit: u32,
) -> StoreResult<Vec<ConversationEntry>> {
    p.store()
        .conversations_changed_since(&app.id, user, version, limit)
        .await
}

/// Marks `conversation` read by `user` up to `seq`, and tells the other side (direct
/// chats) and the user's other devices.
pub async fn mark_read(
    p: &Ctx,
    app: &App,
    user: &UserId,
    conversation: &ConversationId,
    seq: i64,
) -> Result<ConversationEntry, DeliveryError> {
    if seq < 0 {
        return Err(DeliveryError::InvalidArgument("seq must be 0 or more".into()));
    }
    // In a group, the senders of what this read covers get a receipt (see below).
    let read_before = match conversation {
        ConversationId::Group(_) => p
            .store()
            .conversation(&app.id, user, conversation)
            .await?
            .map(|e| e.read_seq),
        _ => None,
    };
    let entry = p
        .store()
        .mark_read(&app.id, user, conversation, seq)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound(_) => DeliveryError::NotFound("conversation"),
            e => e.into(),
        })?;
    let mut users = vec![user.clone()];
    if let Some(peer) = conversation.peer_of(user) {
        if peer != user {
            users.push(peer.clone());
        }
    }
    let push = Push::Receipt {
        conversation_id: conversation.clone(),
        user_id: user.clone(),
        read_seq: entry.read_seq,
    };
    p.publish_to_users(app, &users, push).await;
    if let (ConversationId::Group(g), Some(before)) = (conversation, read_before) {
        if entry.read_seq > before {
            crate::groups::tell_senders(p, app, user, g, before, entry.read_seq).await;
        }
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::super::paging::encode_cursor;
    use super::*;

    #[test]
    fn a_list_cursor_holds_a_time_and_a_conversation() {
        let pos = list_position(&encode_cursor("17|d:alice:bob")).ok();
        assert_eq!(pos, Some((17, "d:alice:bob".to_owned())));
        for bad in ["no-bar", "x|d:alice:bob"] {
            let e = list_position(&encode_cursor(bad)).err().map(|e| e.to_string());
            assert_eq!(e.as_deref(), Some("cursor is malformed"), "{bad}");
        }
    }
}
