//! `/admin/v1/tenants/{tenant}/apps/{app}/push…`: the push page as JSON. The delivery log
//! (every attempt to push to a device, with the provider's answer; filtered by user, device
//! or message, paged by log id), a user's registered devices, and a test push to one of
//! them with what the provider answered (`tern_platform::push`, as the page and the server
//! API do). Same roles and audit lines as the page.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::{ConsoleRole, PushDevice, PushLogEntry, PushLogFilter};
use tern_platform::error::DeliveryError;
use tern_platform::ids::{DeviceId, MsgId, UserId};
use tern_platform::push;
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::{AdminError, JsonBody};
use super::views::ErrorEnvelope;
use crate::auth::app_scope;
use crate::state::ConsoleState;

/// One attempt to push to a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminPushAttempt {
    pub id: String,
    pub at: i64,
    pub user_id: String,
    pub device_id: String,
    /// Absent for a test push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
    /// `apns` or `fcm`.
    pub provider: String,
    /// `sent`, `retrying`, `failed` or `token_removed`.
    pub outcome: String,
    /// The provider's HTTP status; 0 when it was not reached.
    pub http_status: u16,
    /// The provider's reason (`BadDeviceToken`, `UNREGISTERED`, …) or the local error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The provider's id for the notification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    pub latency_ms: i64,
    pub attempt: i32,
}

impl From<PushLogEntry> for AdminPushAttempt {
    fn from(l: PushLogEntry) -> Self {
        Self {
            id: l.id,
            at: l.at,
            user_id: l.user_id.to_string(),
            device_id: l.device_id.to_string(),
            msg_id: l.msg_id.map(|m| m.to_string()),
            provider: l.provider.as_str().to_owned(),
            outcome: l.outcome.as_str().to_owned(),
            http_status: l.http_status,
            reason: l.reason,
            provider_id: l.provider_id,
            latency_ms: l.latency_ms,
            attempt: l.attempt,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminPushLog {
    /// Newest first.
    pub attempts: Vec<AdminPushAttempt>,
    /// Pass as `before` for the older page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminPushDevice {
    pub id: String,
    pub provider: String,
    pub token: String,
    pub topic: String,
    /// `production` or `sandbox`.
    pub environment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<PushDevice> for AdminPushDevice {
    fn from(d: PushDevice) -> Self {
        Self {
            id: d.id.to_string(),
            provider: d.provider.as_str().to_owned(),
            token: d.token.as_str().to_owned(),
            topic: d.topic,
            environment: d.environment.as_str().to_owned(),
            locale: d.locale,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminPushDevices {
    pub devices: Vec<AdminPushDevice>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PushLogQuery {
    /// Only this user's attempts.
    user: Option<String>,
    /// Only this device's (`dev_…`).
    device: Option<String>,
    /// Only this message's.
    msg: Option<String>,
    /// Lines older than this one (the previous page's `next_before`).
    before: Option<String>,
    /// 1 to 200 (default 50).
    limit: Option<u32>,
}

fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The filters parsed; a malformed one is `invalid_argument` naming it.
fn filter_of(q: PushLogQuery) -> Result<PushLogFilter, AdminError> {
    Ok(PushLogFilter {
        user_id: given(q.user)
            .map(|u| {
                UserId::parse(&u).map_err(|_| AdminError::invalid_field("user", format!("“{u}” is not a user id")))
            })
            .transpose()?,
        device_id: given(q.device)
            .map(|d| {
                DeviceId::parse(&d)
                    .map_err(|_| AdminError::invalid_field("device", format!("“{d}” is not a device id (dev_…)")))
            })
            .transpose()?,
        msg_id: given(q.msg)
            .map(|m| {
                MsgId::parse(&m).map_err(|_| AdminError::invalid_field("msg", format!("“{m}” is not a message id")))
            })
            .transpose()?,
        // Log ids are `pl_` and a ULID; anything else would only page nowhere.
        before: match given(q.before) {
            None => None,
            Some(b) if b.starts_with("pl_") && b.len() == 29 && b.is_ascii() => Some(b),
            Some(_) => return Err(AdminError::invalid_field("before", "that page link is malformed")),
        },
    })
}

/// The push delivery log, newest first: every attempt to push to a device.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/push/log", operation_id = "admin_push_log", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"), PushLogQuery),
    responses((status = 200, body = AdminPushLog), (status = "4XX", body = ErrorEnvelope)))]
pub async fn log(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<PushLogQuery>,
) -> Result<Json<AdminPushLog>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let filter = filter_of(q)?;
    let entries = push::log(&st.pipeline, &app, &filter, limit).await?;
    let next_before = (entries.len() as u32 == limit)
        .then(|| entries.last().map(|l| l.id.clone()))
        .flatten();
    Ok(Json(AdminPushLog {
        attempts: entries.into_iter().map(AdminPushAttempt::from).collect(),
        next_before,
    }))
}

/// A user's registered push devices.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/users/{user}/devices", operation_id = "admin_user_devices", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"),
        ("user" = String, Path, description = "The user's id")),
    responses((status = 200, body = AdminPushDevices), (status = "4XX", body = ErrorEnvelope)))]
pub async fn devices(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, user)): Path<(String, String, String)>,
) -> Result<Json<AdminPushDevices>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let user = UserId::parse(&user).map_err(|_| AdminError::not_found())?;
    let list = push::devices(&st.pipeline, &app, &user).await?;
    Ok(Json(AdminPushDevices {
        devices: list.into_iter().map(AdminPushDevice::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminPushTestRequest {
    pub user: String,
    /// One of the user's devices (`dev_…`).
    pub device: String,
}

/// What a test push came to: the provider's answer (its log line), or why nothing was sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminPushTest {
    /// The provider was asked (whatever it answered).
    pub sent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<AdminPushAttempt>,
    /// Why nothing was sent (e.g. the app has no credentials for the device's provider).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Sends a test notification to one device of a user now (developer and up) and answers
/// what the provider said; it is also the newest line of the log.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/apps/{app}/push/test", operation_id = "admin_test_push", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id")),
    request_body = AdminPushTestRequest,
    responses((status = 200, body = AdminPushTest), (status = "4XX", body = ErrorEnvelope)))]
pub async fn test(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    JsonBody(body): JsonBody<AdminPushTestRequest>,
) -> Result<Json<AdminPushTest>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Sending a test push")?;
    let user = UserId::parse(body.user.trim()).map_err(|_| AdminError::not_found())?;
    let device = DeviceId::parse(body.device.trim()).map_err(|_| AdminError::not_found())?;
    let answer = match push::test_push(&st.pusher, &app, &user, &device).await {
        Ok(entry) => AdminPushTest {
            sent: true,
            attempt: Some(entry.into()),
            why: None,
        },
        Err(e @ (DeliveryError::NotFound(_) | DeliveryError::Unavailable(_) | DeliveryError::Internal(_))) => {
            return Err(e.into())
        }
        Err(e) => AdminPushTest {
            sent: false,
            attempt: None,
            why: Some(e.to_string()),
        },
    };
    let detail = match &answer.attempt {
        Some(a) => format!("user {user}: {} {}", a.outcome, a.http_status),
        None => format!("user {user}: not sent: {}", answer.why.as_deref().unwrap_or_default()),
    };
    c.audit(&st, None, Some(&app), "app.push.test", device.as_str(), detail)
        .await?;
    Ok(Json(answer))
}
