//! A user's conversation list, one conversation, and marking read as a user.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use tern_platform::domain::App;
use tern_platform::ids::ConversationId;
use tern_platform::service::conversations;
use utoipa::ToSchema;

use super::dto::*;
use super::users::parse_user;
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::state::ApiState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// Read up to and including this seq (clamped to the conversation's last seq; read
    /// positions never move back).
    pub seq: i64,
}

/// The user's conversations, most recently active first, each with its last message and
/// the user's unread count.
#[utoipa::path(get, path = "/v1/users/{user_id}/conversations", operation_id = "list_conversations", tag = "conversations", params(("user_id" = String, Path), PageQuery),
    responses((status = 200, body = ConversationsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn list(
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<ConversationsAnswer>, ApiError> {
    list_conversations(&st, &req.app, &user, req.query()?).await.map(Json)
}

pub async fn list_conversations(
    st: &ApiState,
    app: &App,
    user: &str,
    q: PageQuery,
) -> Result<ConversationsAnswer, ApiError> {
    let user = parse_user(user)?;
    let page = conversations::list_page(&st.pipeline, app, &user, q.cursor.as_deref(), q.limit.unwrap_or(0)).await?;
    Ok(ConversationsAnswer {
        conversations: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    })
}

/// One conversation as the user sees it.
#[utoipa::path(get, path = "/v1/users/{user_id}/conversations/{conversation_id}", operation_id = "get_conversation", tag = "conversations",
    params(("user_id" = String, Path), ("conversation_id" = String, Path)),
    responses((status = 200, body = ConversationView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get(
    State(st): State<ApiState>,
    ApiPath((user, conv)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<ConversationView>, ApiError> {
    get_conversation(&st, &req.app, &user, &conv).await.map(Json)
}

pub async fn get_conversation(st: &ApiState, app: &App, user: &str, conv: &str) -> Result<ConversationView, ApiError> {
    let user = parse_user(user)?;
    let conv = ConversationId::parse(conv)?;
    Ok(conversations::get(&st.pipeline, app, &user, &conv).await?.into())
}

/// Marks the conversation read by the user up to `seq`; the other side gets a receipt.
#[utoipa::path(post, path = "/v1/users/{user_id}/conversations/{conversation_id}/read", operation_id = "mark_read", tag = "conversations",
    params(("user_id" = String, Path), ("conversation_id" = String, Path)), request_body = MarkRead,
    responses((status = 200, body = ConversationView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn mark_read(
    State(st): State<ApiState>,
    ApiPath((user, conv)): ApiPath<(String, String)>,
    req: Signed<MarkRead>,
) -> Result<Json<ConversationView>, ApiError> {
    mark_conversation_read(&st, &req.app, &user, &conv, req.body.seq)
        .await
        .map(Json)
}

pub async fn mark_conversation_read(
    st: &ApiState,
    app: &App,
    user: &str,
    conv: &str,
    seq: i64,
) -> Result<ConversationView, ApiError> {
    let user = parse_user(user)?;
    let conv = ConversationId::parse(conv)?;
    let entry = conversations::mark_read(&st.pipeline, app, &user, &conv, seq).await?;
    Ok(entry.into())
}
