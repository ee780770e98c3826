//! An app's webhooks: where they go, which after-events, the before-send hook's policy and
//! this node's breaker; "send a test event" with the endpoint's answer; the delivery log
//! (every attempt: when, event, status, latency, the start of the answer), filtered by event
//! and paged by log id; the events given up after 24 hours of failures, each with a
//! redeliver button. The platform keeps and decides all of it
//! (`tern_platform::service::webhooks`); this page renders it.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tern_platform::domain::{now_ms, ConsoleRole};
use tern_platform::error::DeliveryError;
use tern_platform::service::webhooks as service;
use tern_platform::store::{AttemptFilter, AttemptOutcome, WebhookAttempt};
use tern_platform::webhook::breaker::FAILURE_THRESHOLD;
use tern_platform::webhook::settings::{spec_of, BeforeSendSpec, WebhookSpec, EVENT_TYPES};

use super::{audit, notice, see_other};
use crate::auth::{app_scope, Auth, NoFields, Posted};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, Chrome};

/// Dead events, and lines of the delivery log, per page.
const PAGE: u32 = 50;
/// Characters of an event's body shown in the list.
const EXCERPT_CHARS: usize = 240;

pub struct EventChoice {
    pub name: &'static str,
    pub checked: bool,
}

pub struct DeadRow {
    pub id: String,
    pub event_type: String,
    pub created: String,
    pub attempts: i32,
    pub last_error: String,
    pub excerpt: String,
}

/// One line of the delivery log, ready to show.
pub struct AttemptRow {
    pub at: String,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i32,
    pub outcome: &'static str,
    /// Not delivered (shown in warning colours).
    pub bad: bool,
    /// The endpoint answered (an HTTP status); otherwise it was not reached.
    pub reached: bool,
    pub http_status: String,
    pub error: String,
    pub latency_ms: i64,
    pub excerpt: String,
}

impl From<WebhookAttempt> for AttemptRow {
    fn from(a: WebhookAttempt) -> Self {
        Self {
            at: when(a.at),
            event_id: a.event_id,
            event_type: a.event_type,
            attempt: a.attempt,
            outcome: a.outcome.as_str(),
            bad: a.outcome != AttemptOutcome::Delivered,
            reached: a.http_status != 0,
            http_status: if a.http_status == 0 {
                "—".into()
            } else {
                a.http_status.to_string()
            },
            error: a.error.unwrap_or_default(),
            latency_ms: a.latency_ms,
            excerpt: a.response_excerpt,
        }
    }
}

/// This node's before-send breaker, in words.
pub struct BreakerView {
    /// Paused: the hook is not called, the policy applies.
    pub open: bool,
    pub paused_until: String,
    pub failures: u32,
    pub threshold: u32,
    pub cooldown_s: u64,
}

/// What a test event came to: its log line, or why nothing was sent.
pub struct TestResult {
    pub row: Option<AttemptRow>,
    pub why: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    url: String,
    events: Vec<EventChoice>,
    all_events: bool,
    before_send_enabled: bool,
    timeout_ms: u64,
    fail_closed: bool,
    dead: Vec<DeadRow>,
    next: Option<String>,
    can_edit: bool,
    can_manage: bool,
    before_send_breaker: BreakerView,
    /// The event the log is filtered by (empty: all).
    event: String,
    attempts: Vec<AttemptRow>,
    /// The last log id of this page, when there may be older lines.
    older: Option<String>,
    test: Option<TestResult>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct WebhooksQuery {
    /// The last dead event of the previous page.
    after: Option<String>,
    done: Option<String>,
    /// Only this event's attempts.
    event: Option<String>,
    /// The last log id of the previous page of the delivery log.
    before: Option<String>,
}

pub async fn show(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<WebhooksQuery>,
) -> Result<Response, PageError> {
    page(&st, &auth, &tenant, &app, q, None).await
}

/// Builds the page (with a test event's result); 400 when the log's filter does not parse.
async fn page(
    st: &ConsoleState,
    auth: &Auth,
    tenant: &str,
    app: &str,
    q: WebhooksQuery,
    test: Option<TestResult>,
) -> Result<Response, PageError> {
    let (scope, app) = app_scope(st, &auth.viewer, tenant, app).await?;
    let spec = spec_of(&app.settings.webhook);
    let before = spec.before_send.clone().unwrap_or_default();
    let dead_events = service::dead_events(&st.pipeline, &app, q.after.as_deref(), PAGE).await?;
    let next = (dead_events.len() as u32 == PAGE)
        .then(|| dead_events.last().map(|e| e.id.clone()))
        .flatten();
    let dead = dead_events
        .into_iter()
        .map(|e| DeadRow {
            excerpt: e.body.chars().take(EXCERPT_CHARS).collect(),
            id: e.id,
            event_type: e.event_type,
            created: when(e.created_at),
            attempts: e.attempts,
            last_error: e.last_error.unwrap_or_default(),
        })
        .collect();
    let b = service::breaker(&st.before_send, &app);
    let open = b.paused_until.is_some();
    let before_send_breaker = BreakerView {
        open,
        paused_until: b.paused_until.map(when).unwrap_or_default(),
        failures: b.consecutive_failures,
        threshold: FAILURE_THRESHOLD,
        cooldown_s: b.cooldown_ms / 1000,
    };
    let event = q.event.as_deref().unwrap_or_default().trim().to_owned();
    let filter = AttemptFilter {
        event_id: (!event.is_empty()).then(|| event.clone()),
        before: q
            .before
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_owned),
    };
    let (attempts, older, error) = match service::attempts(&st.pipeline, &app, &filter, PAGE).await {
        Ok(lines) => {
            let older = (lines.len() as u32 == PAGE)
                .then(|| lines.last().map(|l| l.id.clone()))
                .flatten();
            (lines.into_iter().map(AttemptRow::from).collect(), older, None)
        }
        Err(DeliveryError::InvalidArgument(m)) => (Vec::new(), None, Some(m)),
        Err(e) => return Err(e.into()),
    };
    let chrome = Chrome::new(&auth.viewer, format!("Webhooks of {}", app.name))
        .in_tenant(&scope)
        .in_app(&app, "webhooks")
        .notice(notice(q.done.as_deref()));
    let bad_filter = error.is_some();
    let mut r = html(WebhooksPage {
        chrome,
        url: spec.url.clone().unwrap_or_default(),
        all_events: spec.events.is_empty(),
        events: EVENT_TYPES
            .iter()
            .map(|name| EventChoice {
                name,
                checked: spec.events.iter().any(|e| e == name),
            })
            .collect(),
        before_send_enabled: before.enabled,
        timeout_ms: before.timeout_ms,
        fail_closed: before.policy == "fail_closed",
        dead,
        next,
        can_edit: scope.role >= ConsoleRole::Developer,
        can_manage: scope.role >= ConsoleRole::Admin,
        before_send_breaker,
        event,
        attempts,
        older,
        test,
        error,
    });
    if bad_filter {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

/// Sends a `webhook.test` event to the endpoint now and shows the page with its answer at
/// the top (it is also the newest line of the log). A reload repeats only a test, so the
/// answer is the page itself rather than a redirect, as for test pushes.
pub async fn test(
    State(st): State<ConsoleState>,
    Path((tenant, app_raw)): Path<(String, String)>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app_raw).await?;
    scope.require(ConsoleRole::Developer, "Sending a test event")?;
    let result = match service::send_test(&st.webhook_test, &app).await {
        Ok(line) => TestResult {
            row: Some(line.into()),
            why: String::new(),
        },
        Err(DeliveryError::InvalidArgument(why)) => TestResult { row: None, why },
        Err(e) => return Err(e.into()),
    };
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.webhook.test",
        &app.name,
        match &result.row {
            Some(row) => format!("{} {} in {} ms", row.outcome, row.http_status, row.latency_ms),
            None => format!("not sent: {}", result.why),
        },
    )
    .await?;
    page(&st, auth, &tenant, &app_raw, WebhooksQuery::default(), Some(result)).await
}

/// Saves the webhook: URL (empty turns webhooks off), events (none checked: all), and the
/// before-send hook's switch, timeout and failure policy. Checked by the platform
/// (`parse_spec`: a public URL unless private addresses are allowed, known events).
pub async fn save(
    State(st): State<ConsoleState>,
    Path((tenant, app)): Path<(String, String)>,
    posted: Posted<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Changing webhooks")?;
    let form = &posted.form;
    let url = form.get("url").map(|u| u.trim().to_owned()).filter(|u| !u.is_empty());
    let events = EVENT_TYPES
        .iter()
        .filter(|e| form.contains_key(&format!("event.{e}")))
        .map(|e| (*e).to_owned())
        .collect();
    let current = spec_of(&app.settings.webhook).before_send.unwrap_or_default();
    let timeout_ms = match form.get("timeout_ms").map(|t| t.trim()) {
        None | Some("") => current.timeout_ms,
        Some(t) => t
            .parse()
            .map_err(|_| PageError::Invalid("timeout_ms must be a whole number of milliseconds".into()))?,
    };
    let spec = WebhookSpec {
        url,
        events,
        before_send: Some(BeforeSendSpec {
            enabled: form.contains_key("before_send"),
            timeout_ms,
            policy: if form.get("policy").map(String::as_str) == Some("fail_closed") {
                "fail_closed".into()
            } else {
                "fail_open".into()
            },
            ..current
        }),
    };
    let settings = service::configure(&st.pipeline, &st.credentials, &app, spec, st.webhook_allow_private).await?;
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.webhook",
        &app.name,
        audit_detail(&settings.webhook),
    )
    .await?;
    Ok(see_other(&format!(
        "{}/t/{}/apps/{}/webhooks?done=webhook-saved",
        crate::BASE,
        app.tenant_id,
        app.id
    )))
}

/// The audit line of a saved configuration: where, which events, the hook on or off.
pub(crate) fn audit_detail(webhook: &tern_platform::domain::WebhookSettings) -> String {
    let shown = spec_of(webhook);
    format!(
        "url {}, events {}, before-send {}",
        shown.url.as_deref().unwrap_or("(off)"),
        if shown.events.is_empty() {
            "all".into()
        } else {
            shown.events.join(" ")
        },
        if webhook.before_send.enabled { "on" } else { "off" }
    )
}

pub async fn redeliver(
    State(st): State<ConsoleState>,
    Path((tenant, app, event)): Path<(String, String, String)>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Redelivering events")?;
    tern_platform::service::webhooks::redeliver(&st.pipeline, &app, &event, now_ms()).await?;
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.webhook.redeliver",
        &event,
        String::new(),
    )
    .await?;
    Ok(see_other(&format!(
        "{}/t/{}/apps/{}/webhooks?done=redelivered",
        crate::BASE,
        app.tenant_id,
        app.id
    )))
}
