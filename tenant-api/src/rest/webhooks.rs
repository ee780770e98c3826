//! An app configures its own webhooks (SIGNING.md §3): endpoint, events, the before-send
//! hook; reads its breaker state; lists dead after-events and redelivers them.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::{now_ms, App, WebhookSettings};
use tern_platform::store::OutboxEvent;
use tern_platform::webhook::{spec_of, BeforeSendSpec, WebhookSpec};
use utoipa::ToSchema;

use super::dto::PageQuery;
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::state::ApiState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BeforeSendConfig {
    #[serde(default)]
    pub enabled: bool,
    /// `sdk`, `server_api`; empty: both.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Message types the hook sees; empty: all.
    #[serde(default)]
    pub types: Vec<String>,
    /// 100 to 5000; default 1500.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// `fail_open` (default) or `fail_closed`.
    #[serde(default = "default_policy")]
    pub policy: String,
}

fn default_timeout() -> u64 {
    tern_platform::webhook::settings::DEFAULT_TIMEOUT_MS
}

fn default_policy() -> String {
    BeforeSendSpec::default().policy
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The endpoint; `null` turns webhooks off. Internal addresses are refused unless the
    /// operator set TERN_WEBHOOK_ALLOW_PRIVATE=1.
    pub url: Option<String>,
    /// After-events to deliver; empty: all.
    #[serde(default)]
    pub events: Vec<String>,
    pub before_send: Option<BeforeSendConfig>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BreakerView {
    /// Unix ms until which the before-send hook is paused (the failure policy applies).
    pub paused_until: Option<i64>,
    pub consecutive_failures: u32,
    pub cooldown_ms: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookAnswer {
    pub config: WebhookConfig,
    /// The before-send circuit breaker of this node.
    pub breaker: Option<BreakerView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: i32,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// The exact body that is POSTed.
    pub body: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventsAnswer {
    pub events: Vec<EventView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl From<WebhookSpec> for WebhookConfig {
    fn from(s: WebhookSpec) -> Self {
        Self {
            url: s.url,
            events: s.events,
            before_send: s.before_send.map(|b| BeforeSendConfig {
                enabled: b.enabled,
                sources: b.sources,
                types: b.types,
                timeout_ms: b.timeout_ms,
                policy: b.policy,
            }),
        }
    }
}

impl From<WebhookConfig> for WebhookSpec {
    fn from(c: WebhookConfig) -> Self {
        Self {
            url: c.url,
            events: c.events,
            before_send: c.before_send.map(|b| BeforeSendSpec {
                enabled: b.enabled,
                sources: b.sources,
                types: b.types,
                timeout_ms: b.timeout_ms,
                policy: b.policy,
            }),
        }
    }
}

fn answer(st: &ApiState, app: &App, w: &WebhookSettings) -> WebhookAnswer {
    let breaker = st.before_send.as_ref().map(|h| {
        let b = h.breaker_state(&app.id);
        BreakerView {
            paused_until: b.paused_until,
            consecutive_failures: b.consecutive_failures,
            cooldown_ms: b.cooldown_ms,
        }
    });
    WebhookAnswer {
        config: spec_of(w).into(),
        breaker,
    }
}

/// The app's webhook configuration and before-send breaker state.
#[utoipa::path(get, path = "/v1/webhook", operation_id = "get_webhook", tag = "webhooks",
    responses((status = 200, body = WebhookAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get(State(st): State<ApiState>, req: Signed<()>) -> Result<Json<WebhookAnswer>, ApiError> {
    Ok(Json(current(&st, &req.app)))
}

/// The app's webhook configuration and breaker state.
pub(crate) fn current(st: &ApiState, app: &App) -> WebhookAnswer {
    answer(st, app, &app.settings.webhook)
}

/// Replaces the app's webhook configuration.
#[utoipa::path(put, path = "/v1/webhook", operation_id = "set_webhook", tag = "webhooks", request_body = WebhookConfig,
    responses((status = 200, body = WebhookAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn put(State(st): State<ApiState>, req: Signed<WebhookConfig>) -> Result<Json<WebhookAnswer>, ApiError> {
    Ok(Json(replace(&st, &req.app, req.body).await?))
}

/// Checks and stores a new webhook configuration.
pub(crate) async fn replace(st: &ApiState, app: &App, config: WebhookConfig) -> Result<WebhookAnswer, ApiError> {
    let settings = tern_platform::service::webhooks::configure(
        &st.pipeline,
        st.verifier.credentials(),
        app,
        config.into(),
        st.webhook_allow_private,
    )
    .await?;
    Ok(answer(st, app, &settings.webhook))
}

fn event_view(e: OutboxEvent) -> EventView {
    let state = serde_json::to_value(e.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    EventView {
        id: e.id,
        event_type: e.event_type,
        state,
        attempts: e.attempts,
        created_at: e.created_at,
        next_attempt_at: e.next_attempt_at,
        last_error: e.last_error,
        body: e.body,
    }
}

/// After-events that failed for 24 hours and were given up.
#[utoipa::path(get, path = "/v1/webhook/dead-events", operation_id = "list_dead_events", tag = "webhooks", params(PageQuery),
    responses((status = 200, body = EventsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn dead(State(st): State<ApiState>, req: Signed<()>) -> Result<Json<EventsAnswer>, ApiError> {
    let q: PageQuery = req.query()?;
    Ok(Json(
        dead_page(&st, &req.app, q.cursor.as_deref(), q.limit.unwrap_or(0)).await?,
    ))
}

/// A page of dead events after the opaque `cursor`.
pub(crate) async fn dead_page(
    st: &ApiState,
    app: &App,
    cursor: Option<&str>,
    limit: u32,
) -> Result<EventsAnswer, ApiError> {
    let page = tern_platform::service::webhooks::dead_page(&st.pipeline, app, cursor, limit).await?;
    Ok(EventsAnswer {
        events: page.items.into_iter().map(event_view).collect(),
        next_cursor: page.next_cursor,
    })
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Redelivered {
    pub id: String,
    /// When it was put back in the queue (unix ms).
    pub queued_at: i64,
}

/// Puts a dead event back in the queue, due now.
#[utoipa::path(post, path = "/v1/webhook/dead-events/{event_id}/redeliver", operation_id = "redeliver_event", tag = "webhooks", params(("event_id" = String, Path)),
    responses((status = 200, body = Redelivered), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn redeliver(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<Redelivered>, ApiError> {
    Ok(Json(redeliver_event(&st, &req.app, id).await?))
}

/// Puts a dead event of the app back in the queue.
pub(crate) async fn redeliver_event(st: &ApiState, app: &App, id: String) -> Result<Redelivered, ApiError> {
    let now = now_ms();
    tern_platform::service::webhooks::redeliver(&st.pipeline, app, &id, now)
        .await
        .map_err(|e| match e {
            tern_platform::store::StoreError::NotFound(_) => ApiError::not_found("dead event"),
            e => e.into(),
        })?;
    Ok(Redelivered { id, queued_at: now })
}
