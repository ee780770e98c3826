//! The before-send hook over HTTP (SIGNING.md §3): the pipeline asks the app's backend,
//! synchronously and once per selected message, whether to allow, reject or rewrite it.
//! Every way the call can go wrong (timeout, refused address, non-200, an answer that is not
//! one of the three) is a failure that the app's policy turns into a decision, and that
//! feeds the app's circuit breaker.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::breaker::{Breaker, BreakerState};
use super::client::{WebhookClient, WebhookError, WebhookRequest};
use super::secrets::{SecretsError, WebhookSecrets};
use super::{new_webhook_id, rfc3339};
use crate::auth::webhook::signature_header;
use crate::clock::{Clock, SystemClock};
use crate::delivery::{BeforeSendHook, HookDecision, HookDraft};
use crate::domain::{App, FailurePolicy};
use crate::ids::AppId;

pub const EVENT_TYPE: &str = "message.before_send";
pub const MIN_TIMEOUT_MS: u64 = 100;
pub const MAX_TIMEOUT_MS: u64 = 5000;
/// Said to the sender when the receiver rejects without a reason.
const DEFAULT_REJECT_REASON: &str = "rejected by the app's before-send webhook";

/// Why a call produced no usable verdict.
#[derive(Debug, thiserror::Error)]
pub enum BeforeSendError {
    #[error("the app has no webhook URL")]
    NoUrl,
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Http(#[from] WebhookError),
    #[error("the endpoint answered HTTP {0}, not 200")]
    Status(u16),
    #[error("the endpoint's answer is not a before-send verdict: {0}")]
    BadAnswer(String),
}

/// The three answers a receiver may give. Extra fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Answer {
    Allow,
    Reject {
        #[serde(default)]
        reason: Option<String>,
    },
    Replace {
        content: serde_json::Value,
    },
}

pub struct HttpBeforeSendHook {
    client: Arc<WebhookClient>,
    secrets: Arc<dyn WebhookSecrets>,
    clock: Arc<dyn Clock>,
    breaker: Breaker,
}

impl HttpBeforeSendHook {
    pub fn new(client: Arc<WebhookClient>, secrets: Arc<dyn WebhookSecrets>) -> Self {
        Self::with_clock(client, secrets, Arc::new(SystemClock))
    }

    /// With a clock of the caller's choosing (for tests of the breaker's cool-down).
    pub fn with_clock(client: Arc<WebhookClient>, secrets: Arc<dyn WebhookSecrets>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            secrets,
            breaker: Breaker::new(clock.clone()),
            clock,
        }
    }

    /// The app's circuit breaker, for the API and the console.
    pub fn breaker_state(&self, app_id: &AppId) -> BreakerState {
        self.breaker.state(app_id)
    }

    /// One call, without policy or breaker: the receiver's verdict or why there is none.
    pub async fn call(&self, app: &App, draft: &HookDraft) -> Result<HookDecision, BeforeSendError> {
        let url = app.settings.webhook.url.as_deref().ok_or(BeforeSendError::NoUrl)?;
        let secrets = self.secrets.secrets(&app.id).await?;
        let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let now = self.clock.now_ms();
        let id = new_webhook_id();
        let body = json!({
            "id": id,
            "type": EVENT_TYPE,
            "app_key": app.app_key,
            "created_at": rfc3339(now),
            "data": draft,
        })
        .to_string();
        let signature = signature_header(&secret_refs, now.div_euclid(1000), body.as_bytes());
        let timeout_ms = app
            .settings
            .webhook
            .before_send
            .timeout_ms
            .clamp(MIN_TIMEOUT_MS, MAX_TIMEOUT_MS);
        let response = self
            .client
            .post(&WebhookRequest {
                url,
                webhook_id: &id,
                event_type: EVENT_TYPE,
                attempt: 1,
                signature: &signature,
                body: &body,
                timeout: Duration::from_millis(timeout_ms),
            })
            .await?;
        if response.status != 200 {
            return Err(BeforeSendError::Status(response.status));
        }
        if response.truncated {
            return Err(BeforeSendError::BadAnswer("the answer is too long".into()));
        }
        parse_answer(&response.body)
    }
}

fn parse_answer(body: &[u8]) -> Result<HookDecision, BeforeSendError> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| BeforeSendError::BadAnswer(e.to_string()))?;
    Ok(match answer {
        Answer::Allow => HookDecision::Allow,
        Answer::Reject { reason } => HookDecision::Reject {
            reason: reason
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_REJECT_REASON.to_owned()),
        },
        Answer::Replace { content } if content.is_object() => HookDecision::Replace { content },
        Answer::Replace { .. } => {
            return Err(BeforeSendError::BadAnswer(
                "replace content must be a JSON object".into(),
            ))
        }
    })
}

#[async_trait]
impl BeforeSendHook for HttpBeforeSendHook {
    async fn check(&self, app: &App, draft: &HookDraft) -> HookDecision {
        let policy = app.settings.webhook.before_send.policy;
        if !self.breaker.allows(&app.id) {
            metrics::counter!("tern_webhook_before_send_total", "outcome" => "paused").increment(1);
            return on_failure(policy);
        }
        match self.call(app, draft).await {
            Ok(decision) => {
                self.breaker.record_success(&app.id);
                metrics::counter!("tern_webhook_before_send_total", "outcome" => "answered").increment(1);
                decision
            }
            Err(e) => {
                self.breaker.record_failure(&app.id);
                metrics::counter!("tern_webhook_before_send_total", "outcome" => "failed").increment(1);
                tracing::warn!(app = %app.id, error = %e, ?policy, "before-send webhook failed");
                on_failure(policy)
            }
        }
    }
}

fn on_failure(policy: FailurePolicy) -> HookDecision {
    match policy {
        FailurePolicy::FailOpen => HookDecision::Allow,
        FailurePolicy::FailClosed => HookDecision::Unavailable,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_into_decisions() {
        assert_eq!(parse_answer(br#"{"action":"allow"}"#).unwrap(), HookDecision::Allow);
        assert_eq!(
            parse_answer(br#"{"action":"reject","reason":"spam"}"#).unwrap(),
            HookDecision::Reject { reason: "spam".into() }
        );
        assert_eq!(
            parse_answer(br#"{"action":"reject"}"#).unwrap(),
            HookDecision::Reject {
                reason: DEFAULT_REJECT_REASON.into()
            }
        );
        assert_eq!(
            parse_answer(br#"{"action":"replace","content":{"text":"***"},"extra":1}"#).unwrap(),
            HookDecision::Replace {
                content: json!({"text":"***"})
            }
        );
        for bad in [
            &br#"{"action":"maybe"}"#[..],
            br#"{"action":"replace"}"#,
            br#"{"action":"replace","content":"x"}"#,
            br#"{}"#,
            b"allow",
            b"",
        ] {
            assert!(matches!(parse_answer(bad), Err(BeforeSendError::BadAnswer(_))));
        }
    }
}
