//! Webhooks (SIGNING.md §3): after-events written to the outbox in the same transaction
//! as the change that caused them, delivered at least once by the worker; and the
//! before-send hook the pipeline calls synchronously.
//!
//! - `client`: the HTTP caller with its SSRF guard, shared by both kinds of webhook.
//! - `before_send`: the synchronous hook, its failure policy and `breaker`.
//! - `worker`: the durable after-event delivery loop.
//! - `settings`: the written configuration and its validation (REST and CLI share it).
//! - `test_event`: "send a test event", one signed POST now, written to the delivery log.
//! - `secrets`: the app's webhook secrets in plaintext, just in time for signing.
//! - the time they run on is `crate::clock` (re-exported here), replaceable in tests.
//!
//! Signatures themselves live in `crate::auth::webhook`.

use serde_json::json;

pub mod before_send;
pub mod breaker;
pub mod client;
pub mod secrets;
pub mod settings;
pub mod test_event;
pub mod worker;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use before_send::HttpBeforeSendHook;
pub use breaker::BreakerState;
pub use client::{check_webhook_url_syntax, validate_webhook_url, WebhookClient, WebhookError};
pub use secrets::{StaticSecrets, StoreSecrets, WebhookSecrets};
pub use settings::{parse_spec, settings_of, spec_of, BeforeSendSpec, InvalidWebhookConfig, WebhookSpec, EVENT_TYPES};
pub use test_event::{TestSender, TEST_EVENT_TYPE};
pub use worker::WorkerConfig;

use crate::domain::{App, UnixMillis};
use crate::store::NewOutboxEvent;

/// Formats milliseconds since the epoch as RFC 3339 in UTC, e.g. `2026-01-01T00:00:00.000Z`.
pub fn rfc3339(ms: UnixMillis) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A fresh `X-Tern-Webhook-Id`: `wh_` and a lowercase ULID.
pub fn new_webhook_id() -> String {
    format!("wh_{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
}

/// The outbox row for an after-event, or `None` if the app does not want this event
/// (no webhook URL, or not subscribed). The body is fixed now, so every retry sends the
/// same bytes under the same `wh_` id.
pub fn after_event(app: &App, event_type: &str, data: serde_json::Value, now: UnixMillis) -> Option<NewOutboxEvent> {
    if !app.settings.webhook.wants(event_type) {
        return None;
    }
    let id = new_webhook_id();
    let body = json!({
        "id": id,
        "type": event_type,
        "app_key": app.app_key,
        "created_at": rfc3339(now),
        "data": data,
    });
    Some(NewOutboxEvent {
        id,
        app_id: app.id.clone(),
        event_type: event_type.to_owned(),
        body: body.to_string(),
        created_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc() {
        assert_eq!(rfc3339(1_767_225_600_000), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
    }
}
