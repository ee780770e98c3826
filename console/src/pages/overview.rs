//! The overview: open alerts first, then messages, API calls and errors, peak connections
//! and webhook success over the last hour, day and 30 days, with the last 24 hours charted
//! (uPlot, from the page's data) and the connections open on this node now; for one app, or
//! for the whole platform (operators only: every app's open alerts). The figures come from
//! `tern_platform::service::overview`, the alerts from `service::alerts`.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use tern_platform::alerts::Alert;
use tern_platform::domain::now_ms;
use tern_platform::domain::App;
use tern_platform::service::alerts;
use tern_platform::service::overview::{self, Overview};

use crate::auth::{app_scope, Auth};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, Chrome};

/// An open alert, as the overview lists it.
pub struct OpenAlert {
    pub raised: String,
    pub label: &'static str,
    pub summary: String,
    pub app_name: String,
    /// The app's alerts page.
    pub url: String,
}

impl OpenAlert {
    fn new(alert: &Alert, app: &App) -> Self {
        Self {
            raised: when(alert.raised_at),
            label: alert.kind.label(),
            summary: alert.summary.clone(),
            app_name: app.name.clone(),
            url: format!("{}/t/{}/apps/{}/alerts", crate::BASE, app.tenant_id, app.id),
        }
    }
}

pub struct WindowRow {
    pub label: &'static str,
    pub messages: i64,
    pub api_calls: i64,
    pub api_errors: i64,
    /// `12.5 %` of the calls, or empty without calls.
    pub error_percent: String,
    /// Over 5 % of the calls (warning colours).
    pub errors_bad: bool,
    pub peak_connections: i64,
    /// `98.5 %` of `200` attempts, or empty without attempts.
    pub webhook_success: String,
    pub webhook_attempts: i64,
    /// The window is longer than the delivery log keeps.
    pub webhook_partial: bool,
    /// Under 90 % delivered (warning colours).
    pub webhook_bad: bool,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    /// Whose figures: the app's name, or "the platform".
    subject: String,
    platform: bool,
    windows: Vec<WindowRow>,
    chart: String,
    live: i64,
    log_days: i64,
    alerts: Vec<OpenAlert>,
}

fn page(chrome: Chrome, subject: String, platform: bool, o: Overview, alerts: Vec<OpenAlert>) -> Response {
    let chart = serde_json::json!({
        "x": o.hourly.iter().map(|(h, _)| h / 1000).collect::<Vec<_>>(),
        "series": [
            {"label": "Messages", "values": o.hourly.iter().map(|(_, c)| c.messages).collect::<Vec<_>>()},
            {"label": "API calls", "values": o.hourly.iter().map(|(_, c)| c.api_calls).collect::<Vec<_>>()},
            {"label": "API errors", "values": o.hourly.iter().map(|(_, c)| c.errors).collect::<Vec<_>>()},
            {"label": "Peak connections", "values": o.hourly.iter().map(|(_, c)| c.connections).collect::<Vec<_>>()},
        ],
    })
    .to_string();
    let windows = o
        .windows
        .iter()
        .map(|w| {
            let percent = w.webhook_success_percent();
            let errors = w.error_percent();
            WindowRow {
                label: w.label,
                messages: w.messages,
                api_calls: w.api_calls,
                api_errors: w.api_errors,
                error_percent: errors.map(|p| format!("{p:.1} %")).unwrap_or_default(),
                errors_bad: errors.is_some_and(|p| p > 5.0),
                peak_connections: w.peak_connections,
                webhook_success: percent.map(|p| format!("{p:.1} %")).unwrap_or_default(),
                webhook_attempts: w.webhook_attempts,
                webhook_partial: w.hours > overview::WEBHOOK_LOG_DAYS * 24,
                webhook_bad: percent.is_some_and(|p| p < 90.0),
            }
        })
        .collect();
    html(OverviewPage {
        chrome,
        subject,
        platform,
        windows,
        chart,
        live: o.live_connections_here,
        log_days: overview::WEBHOOK_LOG_DAYS,
        alerts,
    })
}

/// One app's overview.
pub async fn app(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    let o = overview::overview(&st.pipeline, Some(&app), now_ms()).await?;
    let open = alerts::open_alerts(&st.pipeline, Some(&app)).await?;
    let chrome = Chrome::new(&auth.viewer, format!("Overview of {}", app.name))
        .in_tenant(&scope)
        .in_app(&app, "overview");
    let open = open.iter().map(|(a, app)| OpenAlert::new(a, app)).collect();
    Ok(page(chrome, app.name.clone(), false, o, open))
}

/// Every app together (operators; anyone else gets the 404 of a page that does not exist).
pub async fn platform(State(st): State<ConsoleState>, auth: Auth) -> Result<Response, PageError> {
    if !auth.viewer.account.operator {
        return Err(PageError::NotFound);
    }
    let o = overview::overview(&st.pipeline, None, now_ms()).await?;
    let open = alerts::open_alerts(&st.pipeline, None).await?;
    let chrome = Chrome::new(&auth.viewer, "Platform overview");
    let open = open.iter().map(|(a, app)| OpenAlert::new(a, app)).collect();
    Ok(page(chrome, "the platform".into(), true, o, open))
}
