//! Broadcasts through the server API (docs/broadcasts.md): a notification to every user of
//! the app or to a list, as a durable job a worker runs in batches; its progress is read
//! here. The operations are `tern_platform::broadcasts`, shared with gRPC.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::broadcasts;
use tern_platform::domain::{App, Broadcast};
use tern_platform::service::broadcasts as service;
use utoipa::ToSchema;

use super::dto::PageQuery;
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::input;
use crate::state::ApiState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBroadcast {
    /// `text`, `image`, `file`, `audio`, `video`, `location` or `custom`.
    #[serde(rename = "type")]
    pub msg_type: String,
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    /// Makes starting idempotent: a second start with the same key answers the first job
    /// (and reaches nobody twice).
    pub client_msg_id: Option<String>,
    /// 1 to 10,000 user ids; absent: every user of the app. Ids that are not users of the
    /// app are counted in `failed`.
    pub users: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BroadcastView {
    pub id: String,
    /// `running`, `done`, `cancelled` or `failed`.
    pub status: String,
    /// `all` (every user of the app) or `list`.
    pub audience: String,
    /// Users in the list; absent for `all`.
    pub total: Option<u64>,
    /// Users handled so far (`sent + failed`).
    pub users_seen: u64,
    /// Users whose notification is stored (and pushed, if they are online).
    pub sent: u64,
    /// Users of the list who are not users of the app.
    pub failed: u64,
    #[serde(rename = "type")]
    pub msg_type: String,
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
}

impl From<Broadcast> for BroadcastView {
    fn from(b: Broadcast) -> Self {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Self {
            id: b.id,
            status: b.state.as_str().to_owned(),
            audience: b.audience.as_str().to_owned(),
            total: b.total.map(count),
            users_seen: count(b.users_seen),
            sent: count(b.sent),
            failed: count(b.failed),
            msg_type: b.msg_type.as_str().to_owned(),
            content: b.content,
            created_at: b.created_at,
            updated_at: b.updated_at,
            finished_at: b.finished_at,
            error: b.error,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BroadcastsAnswer {
    /// Newest first.
    pub broadcasts: Vec<BroadcastView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Starts a broadcast: each user gets the message as a notification in their `s:<user>`
/// conversation (pushed at once if online, found on sync if not). Answers at once with the
/// job; read its progress with `GET /v1/broadcasts/{id}`.
#[utoipa::path(post, path = "/v1/broadcasts", operation_id = "start_broadcast", tag = "broadcasts", request_body = StartBroadcast,
    responses((status = 202, body = BroadcastView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn start(
    State(st): State<ApiState>,
    req: Signed<StartBroadcast>,
) -> Result<(StatusCode, Json<BroadcastView>), ApiError> {
    let v = start_broadcast(&st, &req.app, req.body).await?;
    Ok((StatusCode::ACCEPTED, Json(v)))
}

pub async fn start_broadcast(st: &ApiState, app: &App, b: StartBroadcast) -> Result<BroadcastView, ApiError> {
    let request = input::broadcast_request(&b.msg_type, b.content, b.client_msg_id.as_deref(), b.users.as_deref())?;
    let job = service::start(&st.pipeline, app, request, &st.broadcast_wake).await?;
    Ok(job.into())
}

/// The app's broadcasts, newest first, paged.
#[utoipa::path(get, path = "/v1/broadcasts", operation_id = "list_broadcasts", tag = "broadcasts", params(PageQuery),
    responses((status = 200, body = BroadcastsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn list(State(st): State<ApiState>, req: Signed<()>) -> Result<Json<BroadcastsAnswer>, ApiError> {
    list_broadcasts(&st, &req.app, req.query()?).await.map(Json)
}

pub async fn list_broadcasts(st: &ApiState, app: &App, q: PageQuery) -> Result<BroadcastsAnswer, ApiError> {
    let page = service::list_page(&st.pipeline, app, q.cursor.as_deref(), q.limit.unwrap_or(0)).await?;
    Ok(BroadcastsAnswer {
        broadcasts: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    })
}

/// A broadcast and its progress.
#[utoipa::path(get, path = "/v1/broadcasts/{broadcast_id}", operation_id = "get_broadcast", tag = "broadcasts", params(("broadcast_id" = String, Path)),
    responses((status = 200, body = BroadcastView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<BroadcastView>, ApiError> {
    get_broadcast(&st, &req.app, &id).await.map(Json)
}

pub async fn get_broadcast(st: &ApiState, app: &App, id: &str) -> Result<BroadcastView, ApiError> {
    Ok(broadcasts::get(&st.pipeline, app, id).await?.into())
}

/// Stops a running broadcast; users it reached keep their notification. A finished one is
/// answered as it is.
#[utoipa::path(post, path = "/v1/broadcasts/{broadcast_id}/cancel", operation_id = "cancel_broadcast", tag = "broadcasts", params(("broadcast_id" = String, Path)),
    responses((status = 200, body = BroadcastView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn cancel(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<BroadcastView>, ApiError> {
    cancel_broadcast(&st, &req.app, &id).await.map(Json)
}

pub async fn cancel_broadcast(st: &ApiState, app: &App, id: &str) -> Result<BroadcastView, ApiError> {
    Ok(broadcasts::cancel(&st.pipeline, app, id).await?.into())
}
