//! An app's usage per hour (messages, API calls and the errors among them, peak
//! connections): a uPlot chart (drawn by `console.js` from the page's data, no
//! inline script), the busiest hours' table, and the same numbers as CSV. Read from the
//! store (`usage_hourly`), which every node adds its counters to.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tern_platform::domain::now_ms;
use tern_platform::usage::{hour_of, UsageCounts, HOUR_MS};

use crate::auth::{app_scope, Auth};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, Chrome};

/// The periods offered, in hours: a day, a week, 30 days.
const PERIODS: [(i64, &str); 3] = [(24, "Last 24 hours"), (168, "Last 7 days"), (720, "Last 30 days")];

pub struct Period {
    pub hours: i64,
    pub label: &'static str,
    pub current: bool,
}

pub struct Row {
    pub hour: String,
    pub messages: i64,
    pub api_calls: i64,
    pub errors: i64,
    pub connections: i64,
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage {
    chrome: Chrome,
    app_name: String,
    hours: i64,
    periods: Vec<Period>,
    /// JSON for the chart (escaped into the attribute by askama).
    chart: String,
    rows: Vec<Row>,
    total_messages: i64,
    total_calls: i64,
    total_errors: i64,
    peak: i64,
}

#[derive(Deserialize)]
pub struct UsageQuery {
    hours: Option<i64>,
}

fn period(q: &UsageQuery) -> Result<i64, PageError> {
    match q.hours {
        None => Ok(24),
        Some(h) if PERIODS.iter().any(|(p, _)| *p == h) => Ok(h),
        Some(_) => Err(PageError::Invalid("hours must be 24, 168 or 720".into())),
    }
}

/// Every hour of the period, oldest first, with zeros where nothing was counted.
pub(crate) async fn hours_of(
    st: &ConsoleState,
    app: &tern_platform::domain::App,
    hours: i64,
) -> Result<Vec<(i64, UsageCounts)>, PageError> {
    let to = hour_of(now_ms()) + HOUR_MS;
    let from = to - hours * HOUR_MS;
    let stored = tern_platform::service::console::usage(&st.pipeline, app, from, to).await?;
    let mut at = stored.into_iter().peekable();
    let mut all = Vec::with_capacity(hours as usize);
    let mut h = from;
    while h < to {
        let counts = match at.peek() {
            Some(u) if u.hour == h => at.next().map(|u| u.counts).unwrap_or_default(),
            _ => UsageCounts::default(),
        };
        all.push((h, counts));
        h += HOUR_MS;
    }
    Ok(all)
}

pub async fn show(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<UsageQuery>,
) -> Result<Response, PageError> {
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    let hours = period(&q)?;
    let all = hours_of(&st, &app, hours).await?;
    let chart = serde_json::json!({
        "x": all.iter().map(|(h, _)| h / 1000).collect::<Vec<_>>(),
        "series": [
            {"label": "Messages", "values": all.iter().map(|(_, c)| c.messages).collect::<Vec<_>>()},
            {"label": "API calls", "values": all.iter().map(|(_, c)| c.api_calls).collect::<Vec<_>>()},
            {"label": "API errors", "values": all.iter().map(|(_, c)| c.errors).collect::<Vec<_>>()},
            {"label": "Peak connections", "values": all.iter().map(|(_, c)| c.connections).collect::<Vec<_>>()},
        ],
    })
    .to_string();
    let rows = all
        .iter()
        .rev()
        .filter(|(_, c)| *c != UsageCounts::default())
        .map(|(h, c)| Row {
            hour: when(*h),
            messages: c.messages,
            api_calls: c.api_calls,
            errors: c.errors,
            connections: c.connections,
        })
        .collect();
    let page = UsagePage {
        chrome: Chrome::new(&auth.viewer, format!("{} usage", app.name))
            .in_tenant(&scope)
            .in_app(&app, "usage"),
        app_name: app.name.clone(),
        hours,
        periods: PERIODS
            .iter()
            .map(|(h, label)| Period {
                hours: *h,
                label,
                current: *h == hours,
            })
            .collect(),
        chart,
        rows,
        total_messages: all.iter().map(|(_, c)| c.messages).sum(),
        total_calls: all.iter().map(|(_, c)| c.api_calls).sum(),
        total_errors: all.iter().map(|(_, c)| c.errors).sum(),
        peak: all.iter().map(|(_, c)| c.connections).max().unwrap_or(0),
    };
    Ok(html(page))
}

/// The same hours as CSV: `hour_utc,messages,api_calls,peak_connections,errors`, oldest
/// first (`errors` came last, so scripts reading the first four columns still work).
pub async fn csv(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<UsageQuery>,
) -> Result<Response, PageError> {
    let (_, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    let hours = period(&q)?;
    let mut out = String::from("hour_utc,messages,api_calls,peak_connections,errors\n");
    for (h, c) in hours_of(&st, &app, hours).await? {
        let t = when(h);
        let iso = t.trim_end_matches(" UTC").replacen(' ', "T", 1) + "Z";
        out.push_str(&format!(
            "{iso},{},{},{},{}\n",
            c.messages, c.api_calls, c.connections, c.errors
        ));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"usage-{}-{hours}h.csv\"", app.id),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        out,
    )
        .into_response())
}
