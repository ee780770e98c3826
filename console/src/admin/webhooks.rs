//! `/admin/v1/tenants/{tenant}/apps/{app}/webhook…`: the webhooks page as JSON. The
//! configuration (URL, after-events, the before-send hook) with this node's breaker, read
//! and replaced (checked by `service::webhooks::configure`, as the page and `PUT
//! /v1/webhook` are); the delivery log, filtered by event and paged; the dead events and
//! their redelivery; a test event sent now. Same roles and audit lines as the page.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::{now_ms, ConsoleRole, WebhookSettings};
use tern_platform::error::DeliveryError;
use tern_platform::service::webhooks as service;
use tern_platform::store::{AttemptFilter, OutboxEvent, WebhookAttempt};
use tern_platform::webhook::breaker::FAILURE_THRESHOLD;
use tern_platform::webhook::settings::{spec_of, BeforeSendSpec, WebhookSpec};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::{AdminError, JsonBody};
use super::views::{AdminDone, ErrorEnvelope};
use crate::auth::app_scope;
use crate::state::ConsoleState;

/// The before-send hook's settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminBeforeSend {
    pub enabled: bool,
    /// `sdk`, `server_api`; empty: both.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Message types the hook sees; empty: all.
    #[serde(default)]
    pub types: Vec<String>,
    pub timeout_ms: u64,
    /// `fail_open` or `fail_closed`.
    pub policy: String,
}

/// A change to the before-send hook: what is absent stays as it is.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminBeforeSendChange {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub sources: Option<Vec<String>>,
    #[serde(default)]
    pub types: Option<Vec<String>>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub policy: Option<String>,
}

/// This node's circuit breaker of the before-send hook (each node keeps its own).
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminBreaker {
    /// Open: the hook is not called and its failure policy applies until `paused_until`.
    pub open: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<i64>,
    pub consecutive_failures: u32,
    /// Failures in a row that open it.
    pub threshold: u32,
    /// The length of the current pause, or of the next one.
    pub cooldown_ms: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminWebhook {
    /// The endpoint (its password, if any, hidden); absent: webhooks are off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// After-events delivered; empty: all.
    pub events: Vec<String>,
    pub before_send: AdminBeforeSend,
    pub breaker: AdminBreaker,
}

/// A new configuration: `url` absent or null turns webhooks off; `events` empty (or absent)
/// is every event; `before_send` absent keeps the hook's settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminWebhookConfig {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub before_send: Option<AdminBeforeSendChange>,
}

/// One line of the delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminWebhookAttempt {
    pub id: String,
    pub at: i64,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i32,
    /// `delivered`, `retrying`, `dead` or `failed`.
    pub outcome: String,
    /// The endpoint's HTTP status; 0 when it was not reached.
    pub http_status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: i64,
    /// The first 300 characters of the endpoint's answer, as text.
    pub response_excerpt: String,
}

impl From<WebhookAttempt> for AdminWebhookAttempt {
    fn from(a: WebhookAttempt) -> Self {
        Self {
            id: a.id,
            at: a.at,
            event_id: a.event_id,
            event_type: a.event_type,
            attempt: a.attempt,
            outcome: a.outcome.as_str().to_owned(),
            http_status: a.http_status,
            error: a.error,
            latency_ms: a.latency_ms,
            response_excerpt: a.response_excerpt,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminWebhookAttempts {
    /// Newest first.
    pub attempts: Vec<AdminWebhookAttempt>,
    /// Pass as `before` for the older page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

/// An after-event given up after 24 hours of failures.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminDeadEvent {
    pub id: String,
    pub event_type: String,
    pub created_at: i64,
    pub attempts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The event's JSON body, as it would be posted.
    pub body: String,
}

impl From<OutboxEvent> for AdminDeadEvent {
    fn from(e: OutboxEvent) -> Self {
        Self {
            id: e.id,
            event_type: e.event_type,
            created_at: e.created_at,
            attempts: e.attempts,
            last_error: e.last_error,
            body: e.body,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminDeadEvents {
    /// By id.
    pub events: Vec<AdminDeadEvent>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// What a test event came to: its line of the delivery log, or why nothing was sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminWebhookTest {
    /// A POST was made (whatever the endpoint answered).
    pub sent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<AdminWebhookAttempt>,
    /// Why nothing was sent (no URL configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

fn view(st: &ConsoleState, app: &tern_platform::domain::App, webhook: &WebhookSettings) -> AdminWebhook {
    let spec = spec_of(webhook);
    let b = spec.before_send.unwrap_or_default();
    let breaker = service::breaker(&st.before_send, app);
    AdminWebhook {
        url: spec.url,
        events: spec.events,
        before_send: AdminBeforeSend {
            enabled: b.enabled,
            sources: b.sources,
            types: b.types,
            timeout_ms: b.timeout_ms,
            policy: b.policy,
        },
        breaker: AdminBreaker {
            open: breaker.paused_until.is_some(),
            paused_until: breaker.paused_until,
            consecutive_failures: breaker.consecutive_failures,
            threshold: FAILURE_THRESHOLD,
            cooldown_ms: breaker.cooldown_ms,
        },
    }
}

/// The app's webhook configuration and this node's before-send breaker.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/webhook", operation_id = "admin_get_webhook", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id")),
    responses((status = 200, body = AdminWebhook), (status = "4XX", body = ErrorEnvelope)))]
pub async fn get(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<AdminWebhook>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    Ok(Json(view(&st, &app, &app.settings.webhook)))
}

/// Replaces the webhook configuration (developer and up), checked as the console's page and
/// `PUT /v1/webhook` check it: known events, the hook's ranges, and a URL that resolves to
/// a public address unless the server allows private ones (`TERN_WEBHOOK_ALLOW_PRIVATE`).
#[utoipa::path(put, path = "/admin/v1/tenants/{tenant}/apps/{app}/webhook", operation_id = "admin_set_webhook", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id")),
    request_body = AdminWebhookConfig,
    responses((status = 200, body = AdminWebhook), (status = "4XX", body = ErrorEnvelope)))]
pub async fn set(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    JsonBody(body): JsonBody<AdminWebhookConfig>,
) -> Result<Json<AdminWebhook>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Changing webhooks")?;
    let current = spec_of(&app.settings.webhook).before_send.unwrap_or_default();
    let b = body.before_send.unwrap_or_default();
    let spec = WebhookSpec {
        url: body.url.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()),
        events: body.events,
        before_send: Some(BeforeSendSpec {
            enabled: b.enabled.unwrap_or(current.enabled),
            sources: b.sources.unwrap_or(current.sources),
            types: b.types.unwrap_or(current.types),
            timeout_ms: b.timeout_ms.unwrap_or(current.timeout_ms),
            policy: b.policy.unwrap_or(current.policy),
        }),
    };
    let settings = service::configure(&st.pipeline, &st.credentials, &app, spec, st.webhook_allow_private)
        .await
        .map_err(|e| match e {
            DeliveryError::InvalidArgument(m) => AdminError::invalid_field(field_of(&m), m),
            other => other.into(),
        })?;
    c.audit(
        &st,
        None,
        Some(&app),
        "app.webhook",
        &app.name,
        crate::pages::webhooks::audit_detail(&settings.webhook),
    )
    .await?;
    Ok(Json(view(&st, &app, &settings.webhook)))
}

/// The field a refusal of `parse_spec` is about (its messages start with it or name it).
fn field_of(message: &str) -> &'static str {
    if message.starts_with("url") {
        "url"
    } else if message.contains("event") && !message.contains("before") {
        "events"
    } else {
        "before_send"
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttemptsQuery {
    /// Only this event's attempts (`wh_…`).
    event: Option<String>,
    /// Lines older than this one (the previous page's `next_before`).
    before: Option<String>,
    /// 1 to 200 (default 50).
    limit: Option<u32>,
}

/// The delivery log: every attempt to POST an after-event or a test event, newest first
/// (kept 7 days).
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/webhook/attempts", operation_id = "admin_webhook_attempts", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"), AttemptsQuery),
    responses((status = 200, body = AdminWebhookAttempts), (status = "4XX", body = ErrorEnvelope)))]
pub async fn attempts(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<AttemptsQuery>,
) -> Result<Json<AdminWebhookAttempts>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let filter = AttemptFilter {
        event_id: q.event.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()),
        before: q.before.map(|b| b.trim().to_owned()).filter(|b| !b.is_empty()),
    };
    let lines = service::attempts(&st.pipeline, &app, &filter, limit)
        .await
        .map_err(|e| match e {
            DeliveryError::InvalidArgument(m) if m.contains("event id") => AdminError::invalid_field("event", m),
            DeliveryError::InvalidArgument(m) => AdminError::invalid_field("before", m),
            other => other.into(),
        })?;
    let next_before = (lines.len() as u32 == limit)
        .then(|| lines.last().map(|l| l.id.clone()))
        .flatten();
    Ok(Json(AdminWebhookAttempts {
        attempts: lines.into_iter().map(AdminWebhookAttempt::from).collect(),
        next_before,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadQuery {
    /// The last event id of the previous page.
    after: Option<String>,
    /// 1 to 200 (default 50).
    limit: Option<u32>,
}

/// The after-events given up after 24 hours of failures, by id.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/webhook/dead-events", operation_id = "admin_dead_events", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"), DeadQuery),
    responses((status = 200, body = AdminDeadEvents), (status = "4XX", body = ErrorEnvelope)))]
pub async fn dead(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<DeadQuery>,
) -> Result<Json<AdminDeadEvents>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let after = q.after.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
    if let Some(a) = &after {
        if !is_event_id(a) {
            return Err(AdminError::invalid_field(
                "after",
                format!("“{a}” is not an event id (wh_…)"),
            ));
        }
    }
    let events = service::dead_events(&st.pipeline, &app, after.as_deref(), limit).await?;
    let next_after = (events.len() as u32 == limit)
        .then(|| events.last().map(|e| e.id.clone()))
        .flatten();
    Ok(Json(AdminDeadEvents {
        events: events.into_iter().map(AdminDeadEvent::from).collect(),
        next_after,
    }))
}

fn is_event_id(e: &str) -> bool {
    e.starts_with("wh_") && e.len() <= 64 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Puts a dead event back in the queue, due now (developer and up).
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/apps/{app}/webhook/dead-events/{event}/redeliver", operation_id = "admin_redeliver_event", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"),
        ("event" = String, Path, description = "The dead event's id (wh_…)")),
    responses((status = 200, body = AdminDone), (status = "4XX", body = ErrorEnvelope)))]
pub async fn redeliver(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, event)): Path<(String, String, String)>,
) -> Result<Json<AdminDone>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    if !is_event_id(&event) {
        return Err(AdminError::not_found());
    }
    scope.require(ConsoleRole::Developer, "Redelivering events")?;
    service::redeliver(&st.pipeline, &app, &event, now_ms()).await?;
    c.audit(&st, None, Some(&app), "app.webhook.redeliver", &event, String::new())
        .await?;
    Ok(Json(AdminDone { done: true }))
}

/// Sends one signed `webhook.test` event to the endpoint now (developer and up) and answers
/// with its line of the delivery log, or why nothing was sent.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/apps/{app}/webhook/test", operation_id = "admin_test_webhook", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id")),
    responses((status = 200, body = AdminWebhookTest), (status = "4XX", body = ErrorEnvelope)))]
pub async fn test(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<AdminWebhookTest>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Sending a test event")?;
    let answer = match service::send_test(&st.webhook_test, &app).await {
        Ok(line) => AdminWebhookTest {
            sent: true,
            attempt: Some(line.into()),
            why: None,
        },
        Err(DeliveryError::InvalidArgument(why)) => AdminWebhookTest {
            sent: false,
            attempt: None,
            why: Some(why),
        },
        Err(e) => return Err(e.into()),
    };
    let detail = match &answer.attempt {
        Some(a) => format!("{} {} in {} ms", a.outcome, a.http_status, a.latency_ms),
        None => format!("not sent: {}", answer.why.as_deref().unwrap_or_default()),
    };
    c.audit(&st, None, Some(&app), "app.webhook.test", &app.name, detail)
        .await?;
    Ok(Json(answer))
}
