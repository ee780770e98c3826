//! APNs over HTTP/2 with token-based authentication: `POST /3/device/{token}` with an
//! ES256 provider JWT, the `apns-*` headers and the `aps` payload. Apple allows one team per
//! connection, so each team gets its own client (its own pool); a provider token is reused
//! for 40 minutes, inside Apple's window of 20 to 60 (refreshing more often gets
//! `TooManyProviderTokenUpdates`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;

use super::credentials::{ApnsCredentials, ProviderCredentials};
use super::provider::{http_client, ProviderAnswer, PushChannel, PushConfig, Verdict};
use crate::domain::{PushDevice, PushEnvironment, PushNotification, PushProvider};

/// A provider token is reused this long.
pub const TOKEN_REUSE: Duration = Duration::from_secs(40 * 60);
/// After `ExpiredProviderToken`, a token younger than this is kept (Apple refuses updates
/// more often than every 20 minutes).
const MIN_TOKEN_AGE: Duration = Duration::from_secs(20 * 60);

/// The longest `apns-collapse-id` Apple accepts, in bytes.
pub const MAX_COLLAPSE_ID: usize = 64;

struct CachedToken {
    jwt: String,
    made: Instant,
}

pub struct Apns {
    config: PushConfig,
    /// One client per team id: Apple does not allow several teams on one connection.
    clients: Mutex<HashMap<String, reqwest::Client>>,
    /// Provider tokens by (team id, key id).
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Apns {
    pub fn new(config: PushConfig) -> Self {
        Self {
            config,
            clients: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, team: &str) -> reqwest::Client {
        lock(&self.clients)
            .entry(team.to_owned())
            .or_insert_with(|| http_client(&self.config, true))
            .clone()
    }

    fn provider_token(&self, c: &ApnsCredentials) -> Result<String, String> {
        let key = (c.team_id.clone(), c.key_id.clone());
        if let Some(t) = lock(&self.tokens).get(&key).filter(|t| t.made.elapsed() < TOKEN_REUSE) {
            return Ok(t.jwt.clone());
        }
        let jwt = c
            .provider_token(crate::domain::now_ms().div_euclid(1000))
            .map_err(|e| e.0)?;
        lock(&self.tokens).insert(
            key,
            CachedToken {
                jwt: jwt.clone(),
                made: Instant::now(),
            },
        );
        Ok(jwt)
    }

    /// Apple said the token expired: drop it if it is old enough to be replaced.
    fn token_expired(&self, c: &ApnsCredentials) {
        let key = (c.team_id.clone(), c.key_id.clone());
        let mut tokens = lock(&self.tokens);
        if tokens.get(&key).is_some_and(|t| t.made.elapsed() >= MIN_TOKEN_AGE) {
            tokens.remove(&key);
        }
    }

    /// How many provider tokens were made since start (for tests of the reuse rule).
    pub fn tokens_cached(&self) -> usize {
        lock(&self.tokens).len()
    }
}

/// The JSON body: `aps` with the alert, badge, sound and thread, and the app's data beside it.
pub fn payload(n: &PushNotification) -> serde_json::Value {
    let mut aps = json!({
        "alert": {"title": n.title, "body": n.body},
        "sound": "default",
    });
    if let Some(b) = n.badge {
        aps["badge"] = json!(b);
    }
    if let Some(c) = n.data.get("conversation_id") {
        aps["thread-id"] = json!(c);
    }
    let mut body = json!({ "aps": aps });
    for (k, v) in &n.data {
        if k != "aps" {
            body[k] = json!(v);
        }
    }
    body
}

/// Apple's answer in the worker's terms: 410 and the reasons that mean the token is dead
/// remove it; 429 and 5xx retry; an expired provider token is made again and retried.
fn verdict(status: u16, reason: Option<&str>) -> Verdict {
    match (status, reason) {
        (200, _) => Verdict::Sent,
        (410, _) | (_, Some("BadDeviceToken" | "Unregistered" | "DeviceTokenNotForTopic")) => Verdict::TokenDead,
        (403, Some("ExpiredProviderToken")) => Verdict::Retry,
        (429, _) | (500..=599, _) => Verdict::Retry,
        _ => Verdict::Failed,
    }
}

#[async_trait]
impl PushChannel for Apns {
    fn provider(&self) -> PushProvider {
        PushProvider::Apns
    }

    async fn send(
        &self,
        credentials: &ProviderCredentials,
        device: &PushDevice,
        n: &PushNotification,
        push_id: &str,
    ) -> ProviderAnswer {
        let ProviderCredentials::Apns(c) = credentials else {
            return ProviderAnswer::local(Verdict::Failed, "the app's credentials are not APNs credentials");
        };
        let jwt = match self.provider_token(c) {
            Ok(j) => j,
            Err(e) => return ProviderAnswer::local(Verdict::Failed, e),
        };
        let base = match device.environment {
            PushEnvironment::Sandbox => &self.config.apns_sandbox_url,
            PushEnvironment::Production => &self.config.apns_production_url,
        };
        let topic = if device.topic.is_empty() {
            &c.bundle_id
        } else {
            &device.topic
        };
        let mut req = self
            .client(&c.team_id)
            .post(format!("{base}/3/device/{}", device.token.as_str()))
            .header("authorization", format!("bearer {jwt}"))
            .header("apns-topic", topic.as_str())
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .header("apns-expiration", "0")
            .header("apns-id", push_id)
            .json(&payload(n));
        if let Some(id) = n.collapse_id.as_deref().filter(|id| id.len() <= MAX_COLLAPSE_ID) {
            req = req.header("apns-collapse-id", id);
        }
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => return ProviderAnswer::local(Verdict::Retry, format!("network: {e}")),
        };
        let status = res.status().as_u16();
        let apns_id = res
            .headers()
            .get("apns-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = res.bytes().await.unwrap_or_default();
        let reason = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["reason"].as_str().map(str::to_owned));
        if reason.as_deref() == Some("ExpiredProviderToken") {
            self.token_expired(c);
        }
        ProviderAnswer {
            verdict: verdict(status, reason.as_deref()),
            status,
            reason,
            provider_id: apns_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apples_answers_map_to_what_the_worker_does() {
        assert_eq!(verdict(200, None), Verdict::Sent);
        assert_eq!(verdict(410, Some("Unregistered")), Verdict::TokenDead);
        assert_eq!(verdict(400, Some("BadDeviceToken")), Verdict::TokenDead);
        assert_eq!(verdict(400, Some("BadCollapseId")), Verdict::Failed);
        assert_eq!(verdict(403, Some("InvalidProviderToken")), Verdict::Failed);
        assert_eq!(verdict(403, Some("ExpiredProviderToken")), Verdict::Retry);
        assert_eq!(verdict(429, Some("TooManyRequests")), Verdict::Retry);
        assert_eq!(verdict(503, Some("ServiceUnavailable")), Verdict::Retry);
    }
}
