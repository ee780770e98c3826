//! The app's view of its webhooks: the delivery log (every attempt), the events given up
//! and their redelivery, a test event sent now, this node's before-send breaker, and the
//! configuration itself (checked and stored by [`configure`], for every door).

use crate::auth::credentials::CredentialCache;
use crate::delivery::{clamp_limit, DeliveryError, Pipeline};
use crate::domain::{App, AppSettings, UnixMillis};
use crate::store::{AttemptFilter, OutboxEvent, StoreResult, WebhookAttempt};
use crate::webhook::before_send::HttpBeforeSendHook;
use crate::webhook::{parse_spec, BreakerState, TestSender, WebhookSpec};

use super::paging::{decode_cursor, Page};

/// After-events that failed for 24 hours and were given up, by id after `after` (the
/// console pages by event id).
pub async fn dead_events(p: &Pipeline, app: &App, after: Option<&str>, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
    p.store().dead_events(&app.id, after, limit).await
}

/// A page of the after-events that failed for 24 hours and were given up, by id after the
/// opaque `cursor` (`invalid_argument` if malformed); at most `limit`, clamped as every
/// page is. REST's `GET /v1/webhook/dead-events` and gRPC `Webhooks.ListDeadEvents`.
pub async fn dead_page(
    p: &Pipeline,
    app: &App,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<OutboxEvent>, DeliveryError> {
    let limit = clamp_limit(limit);
    let after = cursor.map(decode_cursor).transpose()?;
    let list = dead_events(p, app, after.as_deref(), limit).await?;
    Ok(Page::of(list, limit, |e| e.id.clone()))
}

/// Puts a dead event back in the queue, due `now`, and wakes the worker;
/// `NotFound` if the app has no such dead event.
pub async fn redeliver(p: &Pipeline, app: &App, id: &str, now: UnixMillis) -> StoreResult<()> {
    p.store().redeliver_event(&app.id, id, now).await?;
    p.outbox_written(true);
    Ok(())
}

/// The app's delivery log, newest first: every attempt to POST an after-event or a test
/// event, at most `limit` lines (clamped as every page is). Lines are kept 7 days.
pub async fn attempts(
    p: &Pipeline,
    app: &App,
    filter: &AttemptFilter,
    limit: u32,
) -> Result<Vec<WebhookAttempt>, DeliveryError> {
    if let Some(b) = &filter.before {
        // Log ids are `wa_` and a ULID; anything else would only page nowhere.
        if !(b.starts_with("wa_") && b.len() == 29 && b.is_ascii()) {
            return Err(DeliveryError::InvalidArgument("that page link is malformed".into()));
        }
    }
    if let Some(e) = &filter.event_id {
        if !(e.starts_with("wh_") && e.len() <= 64 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')) {
            return Err(DeliveryError::InvalidArgument(format!(
                "“{e}” is not an event id (wh_…)"
            )));
        }
    }
    Ok(p.store().webhook_attempts(&app.id, filter, clamp_limit(limit)).await?)
}

/// Sends a `webhook.test` event to the app's endpoint now (not retried) and answers with
/// its line of the delivery log; `InvalidArgument` if the app has no webhook URL.
pub async fn send_test(sender: &TestSender, app: &App) -> Result<WebhookAttempt, DeliveryError> {
    sender.send(app).await
}

/// This node's circuit breaker of the app's before-send hook (each node keeps its own).
pub fn breaker(hook: &HttpBeforeSendHook, app: &App) -> BreakerState {
    hook.breaker_state(&app.id)
}

/// Checks a new webhook configuration (`parse_spec`: known events, the before-send hook's
/// ranges, and a URL that resolves to a public address unless `allow_private`) and stores
/// it as the app's, answering the app's settings as they are now; `InvalidArgument` naming
/// the field that is wrong.
pub async fn configure(
    p: &Pipeline,
    credentials: &CredentialCache,
    app: &App,
    spec: WebhookSpec,
    allow_private: bool,
) -> Result<AppSettings, DeliveryError> {
    let webhook = parse_spec(spec, allow_private)
        .await
        .map_err(|e| DeliveryError::InvalidArgument(e.0))?;
    let mut settings = app.settings.clone();
    settings.webhook = webhook;
    super::settings::replace(p, credentials, app, &settings).await?;
    Ok(settings)
}
