//! Webhook signatures (SIGNING.md §3): the `X-Tern-Signature` header Tern puts on every
//! webhook it sends, and the check a receiver runs on it. Tern signs with every active
//! webhook secret so a receiver keeps working through a rotation; Tern's own tests verify
//! with the receiver's check.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How old (or how far ahead) a signature's `t` may be before a receiver refuses it.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WebhookSignatureError {
    #[error("the signature header is malformed: expected t=<unix seconds>,v1=<hex>[,v1=<hex>]")]
    Malformed,
    #[error("the signature timestamp is more than {tolerance} s away from now")]
    TimestampOutOfWindow { tolerance: i64 },
    #[error("no v1 signature matches this body and secret")]
    NoMatch,
}

/// Lowercase hex HMAC-SHA256(secret, "<t>.<body>").
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, t, body).finalize().into_bytes())
}

fn mac(secret: &str, t: i64, body: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC-SHA256 takes keys of any length"));
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `X-Tern-Signature` value: `t=<t>,v1=<hex>` with one `v1` per active secret, in the
/// order given (the newest first, by convention).
pub fn signature_header(secrets: &[&str], t: i64, body: &[u8]) -> String {
    let mut header = format!("t={t}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&sign(secret, t, body));
    }
    header
}

/// A parsed `X-Tern-Signature`. Unknown keys are skipped, so a later scheme (`v2=`) can be
/// added beside `v1` without breaking receivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    pub t: i64,
    pub v1: Vec<String>,
}

pub fn parse_header(header: &str) -> Result<ParsedSignature, WebhookSignatureError> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(WebhookSignatureError::Malformed)?;
        match key {
            "t" => {
                if t.is_some() || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(WebhookSignatureError::Malformed);
                }
                t = Some(value.parse::<i64>().map_err(|_| WebhookSignatureError::Malformed)?);
            }
            "v1" => v1.push(value.to_owned()),
            _ => {}
        }
    }
    match t {
        Some(t) if !v1.is_empty() => Ok(ParsedSignature { t, v1 }),
        _ => Err(WebhookSignatureError::Malformed),
    }
}

/// The receiver's check: the header parses, `t` is within `tolerance` seconds of `now`
/// (either way), and one of the `v1` values is the HMAC of `"<t>.<body>"` under `secret`
/// (compared in constant time).
pub fn verify(header: &str, body: &[u8], secret: &str, now: i64, tolerance: i64) -> Result<(), WebhookSignatureError> {
    let parsed = parse_header(header)?;
    if (now - parsed.t).abs() > tolerance {
        return Err(WebhookSignatureError::TimestampOutOfWindow { tolerance });
    }
    let expected = mac(secret, parsed.t, body).finalize().into_bytes();
    let mut matched = false;
    for candidate in &parsed.v1 {
        if let Ok(bytes) = hex::decode(candidate) {
            matched |= bool::from(bytes.as_slice().ct_eq(expected.as_slice()));
        }
    }
    if matched {
        Ok(())
    } else {
        Err(WebhookSignatureError::NoMatch)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // The `webhook` vector of signing-vectors.json (computed by an independent implementation).
    const SECRET: &str = "whsec_9a8b7c6d5e4f3a2b1c0d";
    const T: i64 = 1_767_225_700;
    const BODY: &str = r#"{"id":"wh_01","type":"message.sent","app_key":"ak_demo_4k2m9p7q","created_at":"2026-01-01T00:00:00Z","data":{"msg_id":"m1"}}"#;
    const HEADER: &str = "t=1767225700,v1=a8d9b597862450c6c84f8ca0678df2fb1235bf533bda9d066ae7ab5852f3a8ea";

    #[test]
    fn reproduces_the_vector() {
        assert_eq!(signature_header(&[SECRET], T, BODY.as_bytes()), HEADER);
        assert_eq!(
            verify(HEADER, BODY.as_bytes(), SECRET, T + 10, DEFAULT_TOLERANCE_SECONDS),
            Ok(())
        );
    }

    #[test]
    fn rotation_puts_one_v1_per_secret_and_either_secret_verifies() {
        let header = signature_header(&["whsec_new", SECRET], T, BODY.as_bytes());
        assert_eq!(header.matches(",v1=").count(), 2);
        assert!(header.ends_with(HEADER.trim_start_matches("t=1767225700")));
        assert_eq!(verify(&header, BODY.as_bytes(), SECRET, T, 300), Ok(()));
        assert_eq!(verify(&header, BODY.as_bytes(), "whsec_new", T, 300), Ok(()));
        assert_eq!(
            verify(&header, BODY.as_bytes(), "whsec_other", T, 300),
            Err(WebhookSignatureError::NoMatch)
        );
    }

    #[test]
    fn refuses_old_tampered_and_malformed() {
        let body = BODY.as_bytes();
        assert_eq!(
            verify(HEADER, body, SECRET, T + 301, 300),
            Err(WebhookSignatureError::TimestampOutOfWindow { tolerance: 300 })
        );
        assert_eq!(
            verify(HEADER, body, SECRET, T - 301, 300),
            Err(WebhookSignatureError::TimestampOutOfWindow { tolerance: 300 })
        );
        let mut tampered = BODY.to_owned();
        tampered.push(' ');
        assert_eq!(
            verify(HEADER, tampered.as_bytes(), SECRET, T, 300),
            Err(WebhookSignatureError::NoMatch)
        );
        for bad in [
            "",
            "v1=ab",
            "t=1767225700",
            "t=abc,v1=ab",
            "t=1,t=2,v1=ab",
            "t=-5,v1=ab",
            "garbage",
        ] {
            assert_eq!(
                verify(bad, body, SECRET, T, 300),
                Err(WebhookSignatureError::Malformed),
                "{bad:?}"
            );
        }
        // A non-hex v1 beside a good one does not spoil the good one.
        let with_junk = format!("{HEADER},v1=zz,v2=whatever");
        assert_eq!(verify(&with_junk, body, SECRET, T, 300), Ok(()));
    }
}
