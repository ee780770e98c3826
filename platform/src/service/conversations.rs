//! A user's conversation list, as the server API reads it.

use crate::delivery::Pipeline;
use crate::domain::{App, ConversationEntry, UnixMillis};
use crate::ids::{ConversationId, UserId};
use crate::store::{StoreError, StoreResult};

use super::existing_user;

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
