//! Checking Tern's webhooks in a tenant's Rust backend (SIGNING.md §3): every webhook
//! carries `X-Tern-Signature: t=<unix s>,v1=<hex>[,v1=<hex>]`, an HMAC-SHA256 of
//! `"<t>.<raw body>"` under the app's webhook secret. A receiver calls `verify_webhook` on
//! the raw body bytes before parsing them, and dedupes on `X-Tern-Webhook-Id`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Signatures older (or further ahead) than this are refused.
pub const WEBHOOK_TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookVerifyError {
    #[error("X-Tern-Signature is malformed: expected t=<unix seconds>,v1=<hex>")]
    Malformed,
    #[error("the webhook's timestamp is more than 300 s away from now (a replay, or a wrong clock)")]
    TimestampOutOfWindow,
    #[error("the webhook's signature does not match this body and secret")]
    BadSignature,
}

/// Verifies a webhook: `signature_header` is the `X-Tern-Signature` value, `body` the raw
/// request body, `secret` the app's webhook secret, `now` the current Unix time in seconds.
/// During a secret rotation the header carries one `v1` per secret; any match is enough.
pub fn verify_webhook(signature_header: &str, body: &[u8], secret: &str, now: i64) -> Result<(), WebhookVerifyError> {
    let mut t: Option<i64> = None;
    let mut signatures = Vec::new();
    for part in signature_header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(WebhookVerifyError::Malformed)?;
        match key {
            "t" => {
                if t.is_some() || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(WebhookVerifyError::Malformed);
                }
                t = Some(value.parse().map_err(|_| WebhookVerifyError::Malformed)?);
            }
            "v1" => signatures.push(value),
            // Other schemes may be added beside v1 later.
            _ => {}
        }
    }
    let t = t.ok_or(WebhookVerifyError::Malformed)?;
    if signatures.is_empty() {
        return Err(WebhookVerifyError::Malformed);
    }
    if (now - t).abs() > WEBHOOK_TOLERANCE_SECONDS {
        return Err(WebhookVerifyError::TimestampOutOfWindow);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC-SHA256 takes keys of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let matched = signatures
        .iter()
        .any(|candidate| hex::decode(candidate).is_ok_and(|bytes| mac.clone().verify_slice(&bytes).is_ok()));
    if matched {
        Ok(())
    } else {
        Err(WebhookVerifyError::BadSignature)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // The `webhook` vector of SIGNING.md's signing-vectors.json.
    const SECRET: &str = "whsec_9a8b7c6d5e4f3a2b1c0d";
    const BODY: &str = r#"{"id":"wh_01","type":"message.sent","app_key":"ak_demo_4k2m9p7q","created_at":"2026-01-01T00:00:00Z","data":{"msg_id":"m1"}}"#;
    const HEADER: &str = "t=1767225700,v1=a8d9b597862450c6c84f8ca0678df2fb1235bf533bda9d066ae7ab5852f3a8ea";
    const T: i64 = 1_767_225_700;

    #[test]
    fn accepts_the_vector() {
        assert_eq!(verify_webhook(HEADER, BODY.as_bytes(), SECRET, T), Ok(()));
        assert_eq!(verify_webhook(HEADER, BODY.as_bytes(), SECRET, T + 300), Ok(()));
    }

    #[test]
    fn accepts_either_secret_during_rotation() {
        let v1 = HEADER.split_once(",v1=").unwrap().1;
        let header = format!("t={T},v1={},v1={v1}", "00".repeat(32));
        assert_eq!(verify_webhook(&header, BODY.as_bytes(), SECRET, T), Ok(()));
    }

    #[test]
    fn refuses_replays_tampering_wrong_secrets_and_garbage() {
        assert_eq!(
            verify_webhook(HEADER, BODY.as_bytes(), SECRET, T + 301),
            Err(WebhookVerifyError::TimestampOutOfWindow)
        );
        assert_eq!(
            verify_webhook(HEADER, BODY.replace("m1", "m2").as_bytes(), SECRET, T),
            Err(WebhookVerifyError::BadSignature)
        );
        assert_eq!(
            verify_webhook(HEADER, BODY.as_bytes(), "whsec_wrong", T),
            Err(WebhookVerifyError::BadSignature)
        );
        let moved = HEADER.replace("t=1767225700", "t=1767225701");
        assert_eq!(
            verify_webhook(&moved, BODY.as_bytes(), SECRET, T),
            Err(WebhookVerifyError::BadSignature)
        );
        for bad in ["", "t=1767225700", "v1=abc", "t=x,v1=ab", "nonsense"] {
            assert_eq!(
                verify_webhook(bad, BODY.as_bytes(), SECRET, T),
                Err(WebhookVerifyError::Malformed),
                "{bad:?}"
            );
        }
    }
}
