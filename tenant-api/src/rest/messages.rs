//! Sending (one, or one sender to many), reading, recalling and paging messages.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::delivery::Actor;
use tern_platform::domain::App;
use tern_platform::ids::{ClientMsgId, ConversationId};
use tern_platform::service::messages as service;
use utoipa::ToSchema;

use super::dto::*;
use super::users::parse_user;
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::input::{self, MessageInput};
use crate::state::ApiState;

/// Exactly one of `user`, `group`, `room`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub user: Option<String>,
    pub group: Option<String>,
    pub room: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// The sending user; absent to send as the system (to a user, a group or a room).
    pub from: Option<String>,
    pub to: Target,
    /// Idempotency key: a retry with the same key returns the first answer, even if the
    /// content differs. Generated when absent (then retries are not deduplicated).
    pub client_msg_id: Option<String>,
    /// `text`, `image`, `file`, `audio`, `video`, `location` or `custom`.
    #[serde(rename = "type")]
    pub msg_type: String,
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    /// The message this one replies to (quotes): one of the same conversation that the
    /// sender can see and that is not recalled.
    pub reply_to: Option<String>,
    /// Group messages: members mentioned by name (up to 100); their conversation shows
    /// `mentioned` until they read past the message.
    #[serde(default)]
    pub mentions: Vec<String>,
    /// Group messages: mention every member (@all).
    #[serde(default)]
    pub mention_all: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchSend {
    pub from: String,
    /// 1 to 500 users; each gets their own direct message.
    pub to: Vec<String>,
    /// Optional idempotency key for the whole batch; each recipient's message is keyed by it.
    pub client_msg_id: Option<String>,
    #[serde(rename = "type")]
    pub msg_type: String,
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResult {
    pub to: String,
    /// Present when this recipient's message was stored.
    pub message: Option<SendAnswer>,
    /// Present when it was not: the error code.
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchAnswer {
    pub results: Vec<BatchResult>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Messages with seq greater than this (default 0), oldest first.
    pub after_seq: Option<i64>,
    /// Or: the page of messages just before this seq, still returned oldest first.
    pub before_seq: Option<i64>,
    /// 1 to 100 (larger values are clamped); default 50.
    pub limit: Option<u32>,
}

/// Sends a message as a user or as the system, through the same pipeline as the SDK.
#[utoipa::path(post, path = "/v1/messages", operation_id = "send_message", tag = "messages", request_body = SendMessage,
    responses((status = 200, body = SendAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope), (status = "5XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn send(State(st): State<ApiState>, req: Signed<SendMessage>) -> Result<Json<SendAnswer>, ApiError> {
    send_message(&st, &req.app, req.body).await.map(Json)
}

pub async fn send_message(st: &ApiState, app: &App, b: SendMessage) -> Result<SendAnswer, ApiError> {
    let request = input::send_request(MessageInput {
        from: b.from.as_deref(),
        to_user: b.to.user.as_deref(),
        to_group: b.to.group.as_deref(),
        to_room: b.to.room.as_deref(),
        client_msg_id: b.client_msg_id.as_deref(),
        msg_type: &b.msg_type,
        content: b.content,
        reply_to: b.reply_to.as_deref(),
        mentions: &b.mentions,
        mention_all: b.mention_all,
    })?;
    let receipt = st.pipeline.send(app, request).await?;
    Ok(receipt.into())
}

/// One sender to up to 500 users, each getting their own direct message.
#[utoipa::path(post, path = "/v1/messages/batch", operation_id = "batch_send_messages", tag = "messages", request_body = BatchSend,
    responses((status = 200, body = BatchAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn batch_send(State(st): State<ApiState>, req: Signed<BatchSend>) -> Result<Json<BatchAnswer>, ApiError> {
    batch(&st, &req.app, req.body).await.map(Json)
}

pub async fn batch(st: &ApiState, app: &App, b: BatchSend) -> Result<BatchAnswer, ApiError> {
    service::check_batch(b.to.len())?;
    let from = parse_user(&b.from)?;
    let msg_type = input::message_type(&b.msg_type)?;
    let client_msg_id = b.client_msg_id.as_deref().map(ClientMsgId::parse).transpose()?;
    let to = b.to.iter().map(|t| parse_user(t)).collect::<Result<Vec<_>, _>>()?;
    let batch = service::BatchSend {
        from,
        to,
        client_msg_id,
        msg_type,
        content: b.content,
    };
    let results = service::send_batch(&st.pipeline, app, batch).await?;
    Ok(BatchAnswer {
        results: results
            .into_iter()
            .map(|(to, result)| match result {
                Ok(r) => BatchResult {
                    to: to.into_string(),
                    message: Some(r.into()),
                    error: None,
                },
                Err(e) => BatchResult {
                    to: to.into_string(),
                    message: None,
                    error: Some(e.code().to_owned()),
                },
            })
            .collect(),
    })
}

/// One message by id.
#[utoipa::path(get, path = "/v1/messages/{msg_id}", operation_id = "get_message", tag = "messages", params(("msg_id" = String, Path)),
    responses((status = 200, body = MessageView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<MessageView>, ApiError> {
    get_message(&st, &req.app, &id).await.map(Json)
}

pub async fn get_message(st: &ApiState, app: &App, id: &str) -> Result<MessageView, ApiError> {
    let id = input::msg_id(id)?;
    let m = tern_platform::lifecycle::message_for(&st.pipeline, app, &Actor::Server, &id).await?;
    Ok(m.into())
}

/// Recalls a message (the server API may recall any message, at any time).
#[utoipa::path(post, path = "/v1/messages/{msg_id}/recall", operation_id = "recall_message", tag = "messages", params(("msg_id" = String, Path)),
    responses((status = 200, body = MessageView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn recall(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<MessageView>, ApiError> {
    recall_message(&st, &req.app, &id).await.map(Json)
}

pub async fn recall_message(st: &ApiState, app: &App, id: &str) -> Result<MessageView, ApiError> {
    let id = input::msg_id(id)?;
    let m = service::recall(&st.pipeline, app, &Actor::Server, &id).await?;
    Ok(m.into())
}

/// A conversation's messages by seq range, in seq order.
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}/messages", operation_id = "get_history", tag = "messages",
    params(("conversation_id" = String, Path, description = "d:<a>:<b> (sorted), g:<group>, r:<room> or s:<user>"), HistoryQuery),
    responses((status = 200, body = MessagesAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn history(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<MessagesAnswer>, ApiError> {
    conversation_history(&st, &req.app, &id, req.query()?).await.map(Json)
}

pub async fn conversation_history(
    st: &ApiState,
    app: &App,
    id: &str,
    q: HistoryQuery,
) -> Result<MessagesAnswer, ApiError> {
    let conversation = ConversationId::parse(id)?;
    let msgs = service::history(
        &st.pipeline,
        app,
        &Actor::Server,
        &conversation,
        q.after_seq,
        q.before_seq,
        q.limit.unwrap_or(0),
    )
    .await?;
    Ok(MessagesAnswer {
        messages: msgs.into_iter().map(Into::into).collect(),
    })
}
