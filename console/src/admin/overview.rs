//! `/admin/v1/overview` and `…/apps/{app}/overview`: the overview page's figures as JSON —
//! messages, API calls and errors, peak connections and webhook success over the last hour, 24 hours
//! and 30 days, the last 24 hours hour by hour, and the connections open on the answering
//! node — for one app, or for the whole platform (operators). From
//! `tern_platform::service::overview`, as the page.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use tern_platform::domain::now_ms;
use tern_platform::service::overview::{self, Overview, Window};
use utoipa::ToSchema;

use super::caller::Caller;
use super::error::AdminError;
use super::views::{AdminUsageHour, ErrorEnvelope};
use crate::auth::app_scope;
use crate::state::ConsoleState;

/// One window's figures (the window ends with the current UTC hour).
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminWindow {
    /// 1, 24 or 720.
    pub hours: i64,
    pub messages: i64,
    pub api_calls: i64,
    /// Of `api_calls`, those that answered an error (4xx or 5xx).
    pub api_errors: i64,
    /// The most SDK connections open at once in any hour (the platform: the apps' peaks added up).
    pub peak_connections: i64,
    /// After-event attempts delivered, and all attempts (test events left out; the log keeps 7 days).
    pub webhook_delivered: i64,
    pub webhook_attempts: i64,
    /// Delivered of all attempts, in percent; absent without attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_success_percent: Option<f64>,
}

impl From<&Window> for AdminWindow {
    fn from(w: &Window) -> Self {
        Self {
            hours: w.hours,
            messages: w.messages,
            api_calls: w.api_calls,
            api_errors: w.api_errors,
            peak_connections: w.peak_connections,
            webhook_delivered: w.webhook_delivered,
            webhook_attempts: w.webhook_attempts,
            webhook_success_percent: w.webhook_success_percent(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminOverview {
    /// The last hour, 24 hours and 30 days.
    pub windows: Vec<AdminWindow>,
    /// The last 24 hours, oldest first, zeros included.
    pub hourly: Vec<AdminUsageHour>,
    /// SDK connections open on the node that answered, now.
    pub live_connections_here: i64,
}

impl From<Overview> for AdminOverview {
    fn from(o: Overview) -> Self {
        Self {
            windows: o.windows.iter().map(AdminWindow::from).collect(),
            hourly: o.hourly.into_iter().map(AdminUsageHour::from).collect(),
            live_connections_here: o.live_connections_here,
        }
    }
}

/// One app's overview.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/overview", operation_id = "admin_app_overview", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id")),
    responses((status = 200, body = AdminOverview), (status = "4XX", body = ErrorEnvelope)))]
pub async fn app(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<AdminOverview>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    Ok(Json(
        overview::overview(&st.pipeline, Some(&app), now_ms()).await?.into(),
    ))
}

/// Every app together (operators).
#[utoipa::path(get, path = "/admin/v1/overview", operation_id = "admin_platform_overview", tag = "operator API",
    responses((status = 200, body = AdminOverview), (status = "4XX", body = ErrorEnvelope)))]
pub async fn platform(State(st): State<ConsoleState>, c: Caller) -> Result<Json<AdminOverview>, AdminError> {
    c.require_operator("read the platform's overview")?;
    Ok(Json(overview::overview(&st.pipeline, None, now_ms()).await?.into()))
}
