//! The provider port: one adapter per push service (APNs and FCM here; Huawei, Xiaomi or a
//! tenant's own webhook would each be one more), all answering in the same terms so the
//! worker decides retries, removals and the log the same way for every one of them.

use std::time::Duration;

use async_trait::async_trait;

use super::credentials::ProviderCredentials;
use crate::domain::{PushDevice, PushNotification, PushProvider};

/// Where the providers are and how the HTTP clients reach them. The defaults are Apple's
/// and Google's; tests point every URL at the provider double.
#[derive(Debug, Clone)]
pub struct PushConfig {
    pub apns_production_url: String,
    pub apns_sandbox_url: String,
    /// FCM HTTP v1's base: `{fcm_url}/v1/projects/{project}/messages:send`.
    pub fcm_url: String,
    /// Where service-account assertions are exchanged for access tokens.
    pub oauth_token_url: String,
    /// A PEM certificate to trust besides the system's (the double's), for tests.
    pub extra_root_pem: Option<String>,
    /// Time allowed for one request to a provider, connect to last byte.
    pub request_timeout: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            apns_production_url: "https://api.push.apple.com".into(),
            apns_sandbox_url: "https://api.sandbox.push.apple.com".into(),
            fcm_url: "https://fcm.googleapis.com".into(),
            oauth_token_url: "https://oauth2.googleapis.com/token".into(),
            extra_root_pem: None,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// What the worker does after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The provider took the notification.
    Sent,
    /// Worth trying again later (429, 5xx, network, an expired provider token).
    Retry,
    /// Refused for good; the reason says why.
    Failed,
    /// The token is no longer valid: the device is removed.
    TokenDead,
}

/// A provider's answer to one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAnswer {
    pub verdict: Verdict,
    /// The HTTP status; 0 when the provider was not reached.
    pub status: u16,
    /// The provider's reason (`BadDeviceToken`, `UNREGISTERED`) or the local error.
    pub reason: Option<String>,
    /// The provider's id of the notification (`apns-id`, the FCM message name).
    pub provider_id: Option<String>,
}

impl ProviderAnswer {
    pub fn local(verdict: Verdict, reason: impl Into<String>) -> Self {
        Self {
            verdict,
            status: 0,
            reason: Some(reason.into()),
            provider_id: None,
        }
    }
}

/// One push service.
#[async_trait]
pub trait PushChannel: Send + Sync + 'static {
    fn provider(&self) -> PushProvider;
    /// Sends `notification` to `device` with the app's credentials. `push_id` identifies
    /// this job (the same on every attempt) where the provider takes one (`apns-id`).
    async fn send(
        &self,
        credentials: &ProviderCredentials,
        device: &PushDevice,
        notification: &PushNotification,
        push_id: &str,
    ) -> ProviderAnswer;
}

/// An HTTP client for a provider: HTTP/2 only (APNs allows nothing else), rustls, and
/// the extra root of `config` if any.
pub(crate) fn http_client(config: &PushConfig, http2_only: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .pool_idle_timeout(Duration::from_secs(300))
        .use_rustls_tls();
    if http2_only {
        b = b.http2_prior_knowledge();
    }
    if let Some(pem) = &config.extra_root_pem {
        match reqwest::Certificate::from_pem(pem.as_bytes()) {
            Ok(cert) => b = b.add_root_certificate(cert),
            Err(e) => tracing::warn!(error = %e, "the extra push root certificate does not parse; ignored"),
        }
    }
    b.build().unwrap_or_else(|e| {
        tracing::error!(error = %e, "push HTTP client could not be built with its settings; using the defaults");
        reqwest::Client::new()
    })
}

/// A stable id for one job, in the UUID form APNs wants for `apns-id`: the same job gets
/// the same id on every attempt.
pub fn push_uuid(key: &str) -> String {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    // Version 8 (custom), variant RFC 4122.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hx = hex::encode(b).to_ascii_uppercase();
    format!(
        "{}-{}-{}-{}-{}",
        &hx[0..8],
        &hx[8..12],
        &hx[12..16],
        &hx[16..20],
        &hx[20..32]
    )
}
