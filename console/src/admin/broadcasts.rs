//! `/admin/v1/tenants/{tenant}/apps/{app}/broadcasts…`: the broadcasts page as JSON. Start
//! one (a text to every user or to a list of user ids; an idempotency key makes a retried
//! start one job, as the page's form key does), the jobs newest first with their progress,
//! and cancel a running one. The platform checks and runs the jobs
//! (`tern_platform::{broadcasts, service::broadcasts}`); same roles and audit lines as the page.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tern_platform::broadcasts::{self, StartBroadcast};
use tern_platform::domain::{Audience, Broadcast, ConsoleRole, MessageType};
use tern_platform::error::DeliveryError;
use tern_platform::ids::{ClientMsgId, UserId};
use tern_platform::service::broadcasts as service;
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::{AdminError, JsonBody};
use super::views::ErrorEnvelope;
use crate::auth::app_scope;
use crate::state::ConsoleState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminBroadcast {
    pub id: String,
    /// `running`, `done`, `cancelled` or `failed`.
    pub state: String,
    /// Absent: every user of the app; else the list's user ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<String>>,
    #[serde(rename = "type")]
    pub msg_type: String,
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    /// Users handled so far (`sent + failed`).
    pub users_seen: i64,
    /// Of how many: the list's length; absent for every user (known at the end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    pub sent: i64,
    /// Users who could not be reached (not a user of the app).
    pub failed: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
}

impl From<Broadcast> for AdminBroadcast {
    fn from(b: Broadcast) -> Self {
        Self {
            id: b.id,
            state: b.state.as_str().to_owned(),
            users: match b.audience {
                Audience::AllUsers => None,
                Audience::Users(list) => Some(list.into_iter().map(|u| u.to_string()).collect()),
            },
            msg_type: b.msg_type.as_str().to_owned(),
            content: b.content,
            users_seen: b.users_seen,
            total: b.total,
            sent: b.sent,
            failed: b.failed,
            error: b.error,
            created_at: b.created_at,
            finished_at: b.finished_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminBroadcasts {
    /// Newest first.
    pub broadcasts: Vec<AdminBroadcast>,
    /// Pass as `before` for the older page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BroadcastsQuery {
    /// Jobs older than this one (the previous page's `next_before`).
    before: Option<String>,
    /// 1 to 200 (default 25).
    limit: Option<u32>,
}

/// Job ids are `bc_` and a ULID.
fn is_job_id(b: &str) -> bool {
    b.starts_with("bc_") && b.len() == 29 && b.is_ascii()
}

/// The app's broadcasts, newest first, each with its progress.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/broadcasts", operation_id = "admin_list_broadcasts", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"), BroadcastsQuery),
    responses((status = 200, body = AdminBroadcasts), (status = "4XX", body = ErrorEnvelope)))]
pub async fn list(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<BroadcastsQuery>,
) -> Result<Json<AdminBroadcasts>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let before = q.before.map(|b| b.trim().to_owned()).filter(|b| !b.is_empty());
    if before.as_deref().is_some_and(|b| !is_job_id(b)) {
        return Err(AdminError::invalid_field("before", "that page link is malformed"));
    }
    let limit = q.limit.unwrap_or(25).clamp(1, 200);
    let found = broadcasts::list(&st.pipeline, &app, before.as_deref(), limit).await?;
    let next_before = (found.len() as u32 == limit)
        .then(|| found.last().map(|b| b.id.clone()))
        .flatten();
    Ok(Json(AdminBroadcasts {
        broadcasts: found.into_iter().map(AdminBroadcast::from).collect(),
        next_before,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminNewBroadcast {
    /// The text sent to each user, checked like any message (size, the app's word lists).
    pub text: String,
    /// 1 to 10,000 user ids; absent: every user of the app.
    #[serde(default)]
    pub users: Option<Vec<String>>,
    /// Makes the start idempotent: a start with a key used before answers that job (200)
    /// instead of starting another.
    pub idempotency_key: String,
}

/// Starts a broadcast of a text message (developer and up): 201 with the new job, or 200
/// with the job an earlier start with the same `idempotency_key` made.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/apps/{app}/broadcasts", operation_id = "admin_start_broadcast", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id")),
    request_body = AdminNewBroadcast,
    responses((status = 201, body = AdminBroadcast), (status = 200, body = AdminBroadcast), (status = "4XX", body = ErrorEnvelope)))]
pub async fn start(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    JsonBody(body): JsonBody<AdminNewBroadcast>,
) -> Result<(StatusCode, Json<AdminBroadcast>), AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Starting a broadcast")?;
    let text = body.text.trim();
    if text.is_empty() {
        return Err(AdminError::invalid_field("text", "the message is empty"));
    }
    let key = ClientMsgId::parse(body.idempotency_key.trim())
        .map_err(|e| AdminError::invalid_field("idempotency_key", e.to_string()))?;
    let users = match body.users {
        None => None,
        Some(raw) => {
            broadcasts::check_audience_size(raw.len())
                .map_err(|e| AdminError::invalid_field("users", e.to_string()))?;
            Some(
                raw.iter()
                    .map(|u| {
                        UserId::parse(u.trim())
                            .map_err(|_| AdminError::invalid_field("users", format!("“{u}” is not a user id")))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )
        }
    };
    let (job, created) = service::start_or_find(
        &st.pipeline,
        &app,
        StartBroadcast {
            msg_type: MessageType::Text,
            content: json!({ "text": text }),
            client_msg_id: Some(key),
            users,
        },
        &st.broadcast_wake,
    )
    .await
    .map_err(|e| match e {
        DeliveryError::InvalidArgument(m) | DeliveryError::ContentTooLarge(m) => AdminError::invalid_field("text", m),
        other => other.into(),
    })?;
    // A key used before answers its job: 200, and nothing new to audit.
    let job = AdminBroadcast::from(job);
    if !created {
        return Ok((StatusCode::OK, Json(job)));
    }
    let to = match &job.users {
        None => "every user".to_owned(),
        Some(l) if l.len() == 1 => "1 user".to_owned(),
        Some(l) => format!("{} users", l.len()),
    };
    c.audit(
        &st,
        None,
        Some(&app),
        "app.broadcast.start",
        &job.id,
        format!("to {to}"),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(job)))
}

/// Stops a running broadcast (developer and up); users it reached keep their notification.
/// A finished job is answered as it is.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/apps/{app}/broadcasts/{broadcast}/cancel", operation_id = "admin_cancel_broadcast", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"),
        ("broadcast" = String, Path, description = "The job's id (bc_…)")),
    responses((status = 200, body = AdminBroadcast), (status = "4XX", body = ErrorEnvelope)))]
pub async fn cancel(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, id)): Path<(String, String, String)>,
) -> Result<Json<AdminBroadcast>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    if !is_job_id(&id) {
        return Err(AdminError::not_found());
    }
    scope.require(ConsoleRole::Developer, "Cancelling a broadcast")?;
    let job = broadcasts::cancel(&st.pipeline, &app, &id).await?;
    c.audit(
        &st,
        None,
        Some(&app),
        "app.broadcast.cancel",
        &job.id,
        format!("{}: {} sent, {} failed", job.state.as_str(), job.sent, job.failed),
    )
    .await?;
    Ok(Json(job.into()))
}
