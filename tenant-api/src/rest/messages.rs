//! Sending (one, or one sender to many), reading, recalling and paging messages.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tern_platform::delivery::{Actor, Recipient, SendOptions, SendRequest};
use tern_platform::domain::{App, MessageType, Sender, Source};
use tern_platform::ids::{ClientMsgId, ConversationId, GroupId, MsgId, RoomId, UserId};
use tern_platform::store::SeqRange;
use utoipa::ToSchema;

use super::dto::*;
use super::users::parse_user;
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
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
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Messages with seq greater than this (default 0), oldest first.
    pub after_seq: Option<i64>,
    /// Or: the page of messages just before this seq, still returned oldest first.
    pub before_seq: Option<i64>,
    /// 1 to 100 (larger values are clamped); default 50.
    pub limit: Option<u32>,
}

fn parse_type(t: &str) -> Result<MessageType, ApiError> {
    MessageType::parse_sendable(t)
        .ok_or_else(|| ApiError::invalid("type must be one of text, image, file, audio, video, location, custom"))
}

/// The users a message mentions; a list longer than a message may mention is refused
/// before any id is parsed.
pub(crate) fn mentions(ids: &[String]) -> Result<Vec<UserId>, ApiError> {
    tern_platform::groups::rules::check_mention_count(ids.len())?;
    ids.iter().map(|u| parse_user(u)).collect()
}

fn parse_target(t: &Target) -> Result<Recipient, ApiError> {
    match (&t.user, &t.group, &t.room) {
        (Some(u), None, None) => Ok(Recipient::User(parse_user(u)?)),
        (None, Some(g), None) => Ok(Recipient::Group(GroupId::parse(g)?)),
        (None, None, Some(r)) => Ok(Recipient::Room(RoomId::parse(r)?)),
        _ => Err(ApiError::invalid("to must name exactly one of user, group or room")),
    }
}

/// Sends a message as a user or as the system, through the same pipeline as the SDK.
#[utoipa::path(post, path = "/v1/messages", tag = "messages", request_body = SendMessage,
    responses((status = 200, body = SendAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope), (status = "5XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn send(State(st): State<ApiState>, req: Signed<SendMessage>) -> Result<Json<SendAnswer>, ApiError> {
    send_message(&st, &req.app, req.body).await.map(Json)
}

pub async fn send_message(st: &ApiState, app: &App, b: SendMessage) -> Result<SendAnswer, ApiError> {
    let sender = match &b.from {
        Some(u) => Sender::User(parse_user(u)?),
        None => Sender::System,
    };
    let to = parse_target(&b.to)?;
    let request = SendRequest {
        sender,
        to,
        client_msg_id: b.client_msg_id.as_deref().map(ClientMsgId::parse).transpose()?,
        msg_type: parse_type(&b.msg_type)?,
        content: b.content,
        source: Source::ServerApi,
        options: SendOptions {
            mentions: mentions(&b.mentions)?,
            mention_all: b.mention_all,
            reply_to: b.reply_to.as_deref().map(MsgId::parse).transpose()?,
        },
    };
    let receipt = st.pipeline.send(app, request).await?;
    Ok(receipt.into())
}

/// Key of one recipient's message within a keyed batch: stable, at most 64 characters.
fn batch_key(batch_key: &str, to: &str) -> Result<ClientMsgId, ApiError> {
    let digest = Sha256::digest(format!("{batch_key}\u{0}{to}").as_bytes());
    Ok(ClientMsgId::parse(&format!("batch-{}", &hex::encode(digest)[..40]))?)
}

/// One sender to up to 500 users, each getting their own direct message.
#[utoipa::path(post, path = "/v1/messages/batch", tag = "messages", request_body = BatchSend,
    responses((status = 200, body = BatchAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn batch_send(State(st): State<ApiState>, req: Signed<BatchSend>) -> Result<Json<BatchAnswer>, ApiError> {
    batch(&st, &req.app, req.body).await.map(Json)
}

pub async fn batch(st: &ApiState, app: &App, b: BatchSend) -> Result<BatchAnswer, ApiError> {
    if !(1..=500).contains(&b.to.len()) {
        return Err(ApiError::invalid("to must hold 1 to 500 users"));
    }
    let from = parse_user(&b.from)?;
    let msg_type = parse_type(&b.msg_type)?;
    if let Some(k) = &b.client_msg_id {
        ClientMsgId::parse(k)?;
    }
    let mut recipients = Vec::with_capacity(b.to.len());
    for t in &b.to {
        recipients.push(parse_user(t)?);
    }
    let sends = recipients.into_iter().map(|to| {
        let st = st.clone();
        let app = app.clone();
        let request = b
            .client_msg_id
            .as_deref()
            .map(|k| batch_key(k, to.as_str()))
            .transpose()
            .map(|client_msg_id| SendRequest {
                sender: Sender::User(from.clone()),
                to: Recipient::User(to.clone()),
                client_msg_id,
                msg_type,
                content: b.content.clone(),
                source: Source::ServerApi,
                options: Default::default(),
            });
        async move {
            let result = match request {
                Ok(r) => st.pipeline.send(&app, r).await.map_err(|e| e.code().to_owned()),
                Err(e) => Err(e.code.to_owned()),
            };
            match result {
                Ok(r) => BatchResult {
                    to: to.into_string(),
                    message: Some(r.into()),
                    error: None,
                },
                Err(code) => BatchResult {
                    to: to.into_string(),
                    message: None,
                    error: Some(code),
                },
            }
        }
    });
    // Concurrent, so the group-commit writer can batch them.
    let results = futures::future::join_all(sends).await;
    Ok(BatchAnswer { results })
}

/// One message by id.
#[utoipa::path(get, path = "/v1/messages/{msg_id}", tag = "messages", params(("msg_id" = String, Path)),
    responses((status = 200, body = MessageView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<MessageView>, ApiError> {
    get_message(&st, &req.app, &id).await.map(Json)
}

pub async fn get_message(st: &ApiState, app: &App, id: &str) -> Result<MessageView, ApiError> {
    let id = MsgId::parse(id).map_err(|_| ApiError::not_found("message"))?;
    let m = tern_platform::lifecycle::message_for(&st.pipeline, app, &Actor::Server, &id).await?;
    Ok(m.into())
}

/// Recalls a message (the server API may recall any message, at any time).
#[utoipa::path(post, path = "/v1/messages/{msg_id}/recall", tag = "messages", params(("msg_id" = String, Path)),
    responses((status = 200, body = MessageView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn recall(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<MessageView>, ApiError> {
    recall_message(&st, &req.app, &id).await.map(Json)
}

pub async fn recall_message(st: &ApiState, app: &App, id: &str) -> Result<MessageView, ApiError> {
    let id = MsgId::parse(id).map_err(|_| ApiError::not_found("message"))?;
    let m = st.pipeline.recall(app, &Actor::Server, &id).await?;
    Ok(m.into())
}

/// A conversation's messages by seq range, in seq order.
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}/messages", tag = "messages",
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
    let range = match (q.after_seq, q.before_seq) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("give after_seq or before_seq, not both")),
        (_, Some(b)) => SeqRange::Before(b),
        (a, None) => SeqRange::After(a.unwrap_or(0)),
    };
    let msgs = st
        .pipeline
        .history(app, &Actor::Server, &conversation, range, q.limit.unwrap_or(0))
        .await?;
    Ok(MessagesAnswer {
        messages: msgs.into_iter().map(Into::into).collect(),
    })
}
