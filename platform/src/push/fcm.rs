//! FCM HTTP v1: `POST /v1/projects/{project}/messages:send` with an OAuth2 access token
//! got by exchanging an RS256 JWT assertion of the app's service account (RFC 7523), cached
//! until a minute before it expires. Errors are read from Google's body
//! (`error.status` and the `FcmError` detail's `errorCode`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;

use super::credentials::{FcmCredentials, ProviderCredentials};
use super::provider::{http_client, ProviderAnswer, PushChannel, PushConfig, Verdict};
use crate::domain::{PushDevice, PushNotification, PushProvider};

/// An access token is not used in its last minute.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

struct CachedToken {
    access_token: String,
    expires: Instant,
}

pub struct Fcm {
    config: PushConfig,
    client: reqwest::Client,
    /// Access tokens by service account email.
    tokens: Mutex<HashMap<String, CachedToken>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fcm {
    pub fn new(config: PushConfig) -> Self {
        let client = http_client(&config, false);
        Self {
            config,
            client,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    async fn access_token(&self, c: &FcmCredentials) -> Result<String, ProviderAnswer> {
        if let Some(t) = lock(&self.tokens)
            .get(&c.client_email)
            .filter(|t| t.expires > Instant::now() + EXPIRY_MARGIN)
        {
            return Ok(t.access_token.clone());
        }
        let url = &self.config.oauth_token_url;
        let assertion = c
            .assertion(url, crate::domain::now_ms().div_euclid(1000))
            .map_err(|e| ProviderAnswer::local(Verdict::Failed, e.0))?;
        let res = self
            .client
            .post(url)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| ProviderAnswer::local(Verdict::Retry, format!("oauth2 token exchange: {e}")))?;
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        let (Some(token), true) = (body["access_token"].as_str(), status == 200) else {
            let reason = body["error"].as_str().unwrap_or("token exchange refused");
            return Err(ProviderAnswer {
                verdict: if status >= 500 || status == 429 {
                    Verdict::Retry
                } else {
                    Verdict::Failed
                },
                status,
                reason: Some(format!("oauth2: {reason}")),
                provider_id: None,
            });
        };
        let ttl = body["expires_in"].as_u64().unwrap_or(3600);
        lock(&self.tokens).insert(
            c.client_email.clone(),
            CachedToken {
                access_token: token.to_owned(),
                expires: Instant::now() + Duration::from_secs(ttl),
            },
        );
        Ok(token.to_owned())
    }
}

/// The v1 message: the notification, the data, and the Android and APNs specifics that
/// carry the badge and the collapse key.
pub fn message(token: &str, n: &PushNotification) -> serde_json::Value {
    let mut android = json!({"priority": "high", "notification": {}});
    let mut apns_aps = json!({});
    if let Some(c) = &n.collapse_id {
        android["collapse_key"] = json!(c);
        android["notification"]["tag"] = json!(c);
    }
    if let Some(b) = n.badge {
        android["notification"]["notification_count"] = json!(b);
        apns_aps["badge"] = json!(b);
    }
    json!({
        "message": {
            "token": token,
            "notification": {"title": n.title, "body": n.body},
            "data": n.data,
            "android": android,
            "apns": {"payload": {"aps": apns_aps}},
        }
    })
}

/// Google's `errorCode` (or, without one, `error.status`) in the worker's terms.
fn verdict(status: u16, code: Option<&str>) -> Verdict {
    match (status, code) {
        (200, _) => Verdict::Sent,
        (_, Some("UNREGISTERED")) | (404, _) => Verdict::TokenDead,
        (401, _) | (429, _) | (500..=599, _) => Verdict::Retry,
        (_, Some("QUOTA_EXCEEDED" | "UNAVAILABLE" | "INTERNAL")) => Verdict::Retry,
        _ => Verdict::Failed,
    }
}

#[async_trait]
impl PushChannel for Fcm {
    fn provider(&self) -> PushProvider {
        PushProvider::Fcm
    }

    async fn send(
        &self,
        credentials: &ProviderCredentials,
        device: &PushDevice,
        n: &PushNotification,
        _push_id: &str,
    ) -> ProviderAnswer {
        let ProviderCredentials::Fcm(c) = credentials else {
            return ProviderAnswer::local(Verdict::Failed, "the app's credentials are not FCM credentials");
        };
        let token = match self.access_token(c).await {
            Ok(t) => t,
            Err(answer) => return answer,
        };
        let url = format!("{}/v1/projects/{}/messages:send", self.config.fcm_url, c.project_id);
        let res = match self
            .client
            .post(url)
            .bearer_auth(&token)
            .json(&message(device.token.as_str(), n))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return ProviderAnswer::local(Verdict::Retry, format!("network: {e}")),
        };
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        if status == 401 {
            // The access token was refused: the next attempt exchanges a new one.
            lock(&self.tokens).remove(&c.client_email);
        }
        let error_code = body["error"]["details"]
            .as_array()
            .and_then(|d| d.iter().find_map(|x| x["errorCode"].as_str()))
            .or_else(|| body["error"]["status"].as_str())
            .map(str::to_owned);
        ProviderAnswer {
            verdict: verdict(status, error_code.as_deref()),
            status,
            reason: error_code,
            provider_id: body["name"].as_str().map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn googles_answers_map_to_what_the_worker_does() {
        assert_eq!(verdict(200, None), Verdict::Sent);
        assert_eq!(verdict(404, Some("UNREGISTERED")), Verdict::TokenDead);
        assert_eq!(verdict(400, Some("UNREGISTERED")), Verdict::TokenDead);
        assert_eq!(verdict(400, Some("INVALID_ARGUMENT")), Verdict::Failed);
        assert_eq!(verdict(403, Some("SENDER_ID_MISMATCH")), Verdict::Failed);
        assert_eq!(verdict(429, Some("QUOTA_EXCEEDED")), Verdict::Retry);
        assert_eq!(verdict(503, Some("UNAVAILABLE")), Verdict::Retry);
        assert_eq!(verdict(401, Some("UNAUTHENTICATED")), Verdict::Retry);
    }
}
