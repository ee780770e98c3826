//! A user's conversation list, as the server API reads it.

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
