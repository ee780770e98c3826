//! "Send a test event" (the console's webhooks page): one signed `webhook.test` POST to the
//! app's endpoint now, outside the outbox and never retried, written to the delivery log
//! like any attempt, so whoever configures an endpoint sees at once whether it answers, how
//! fast, and what it said.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::client::{WebhookClient, WebhookRequest};
use super::secrets::WebhookSecrets;
use super::{new_webhook_id, rfc3339};
use crate::auth::webhook::signature_header;
use crate::clock::Clock;
use crate::domain::App;
use crate::error::DeliveryError;
use crate::store::{AttemptOutcome, Store, WebhookAttempt};

/// The event type of a test event (`X-Tern-Event`, `type` in the body).
pub const TEST_EVENT_TYPE: &str = "webhook.test";
/// Time allowed for a test event, connect to last byte (an after-event's too).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends test events; one per engine, sharing the worker's HTTP client and secrets.
pub struct TestSender {
    store: Arc<dyn Store>,
    client: Arc<WebhookClient>,
    secrets: Arc<dyn WebhookSecrets>,
    clock: Arc<dyn Clock>,
}

impl TestSender {
    pub fn new(
        store: Arc<dyn Store>,
        client: Arc<WebhookClient>,
        secrets: Arc<dyn WebhookSecrets>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            client,
            secrets,
            clock,
        }
    }

    /// POSTs a `webhook.test` event to the app's endpoint and answers with its line of the
    /// delivery log (`delivered` on a 2xx, else `failed` with the status or the reason).
    /// `InvalidArgument` when the app has no webhook URL: nothing is sent then.
    pub async fn send(&self, app: &App) -> Result<WebhookAttempt, DeliveryError> {
        let Some(url) = app.settings.webhook.url.as_deref() else {
            return Err(DeliveryError::InvalidArgument(
                "the app has no webhook URL: set one and save first".into(),
            ));
        };
        let secrets = self
            .secrets
            .secrets(&app.id)
            .await
            .map_err(|e| DeliveryError::Unavailable(e.to_string()))?;
        let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let now = self.clock.now_ms();
        let id = new_webhook_id();
        let body = json!({
            "id": id,
            "type": TEST_EVENT_TYPE,
            "app_key": app.app_key,
            "created_at": rfc3339(now),
            "data": {"note": "a test event sent from the console; it needs no action"},
        })
        .to_string();
        let signature = signature_header(&secret_refs, now.div_euclid(1000), body.as_bytes());
        let started = Instant::now();
        let answer = self
            .client
            .post(&WebhookRequest {
                url,
                webhook_id: &id,
                event_type: TEST_EVENT_TYPE,
                attempt: 1,
                signature: &signature,
                body: &body,
                timeout: TEST_TIMEOUT,
            })
            .await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (outcome, http_status, error, excerpt) = match answer {
            Ok(r) if r.is_success() => (
                AttemptOutcome::Delivered,
                r.status,
                None,
                WebhookAttempt::excerpt(&r.body),
            ),
            Ok(r) => (
                AttemptOutcome::Failed,
                r.status,
                Some(format!("HTTP {}", r.status)),
                WebhookAttempt::excerpt(&r.body),
            ),
            Err(e) => (AttemptOutcome::Failed, 0, Some(e.to_string()), String::new()),
        };
        let line = WebhookAttempt {
            id: WebhookAttempt::new_id(),
            app_id: app.id.clone(),
            at: now,
            event_id: id,
            event_type: TEST_EVENT_TYPE.to_owned(),
            attempt: 1,
            outcome,
            http_status,
            error,
            latency_ms,
            response_excerpt: excerpt,
        };
        self.store.record_webhook_attempt(&line).await?;
        Ok(line)
    }
}
