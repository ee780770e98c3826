//! Signed server API requests (SIGNING.md §1): the string to sign, the `v1=` signature,
//! parsing of the four `X-Tern-*` headers, and `RequestVerifier`, which applies the
//! checks in exactly the documented order and returns the calling app.
//!
//! The same code serves HTTP and gRPC: a gRPC front door passes method `POST`, the gRPC
//! method path, an empty query and the unary request message's bytes (or an empty body
//! for streams), and the lowercase metadata values of the same headers.

use std::sync::Arc;

use hmac::Mac;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::canonical::canonical_query;
use super::credentials::{keyed_hmac, AppCredentials, CredentialCache};
use super::token::authenticate_server_token;
use super::AuthError;
use crate::domain::{now_ms, App, UnixMillis};
use crate::ids::AppKey;
use crate::nonce::{NonceStore, NONCE_TTL_MS};
use crate::secret_box::SecretBox;
use crate::store::Store;

pub const HEADER_APP_KEY: &str = "X-Tern-App-Key";
pub const HEADER_TIMESTAMP: &str = "X-Tern-Timestamp";
pub const HEADER_NONCE: &str = "X-Tern-Nonce";
pub const HEADER_SIGNATURE: &str = "X-Tern-Signature";
/// The headers that carry credentials; a request must send each at most once (REST
/// headers and gRPC metadata alike).
pub const CREDENTIAL_HEADERS: [&str; 5] = [
    HEADER_APP_KEY,
    HEADER_TIMESTAMP,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    "Authorization",
];
/// First line of every string to sign; names the scheme so it can change one day.
pub const SCHEME: &str = "TERN1-HMAC-SHA256";
/// How far a request's timestamp may be from the server's clock, either way.
pub const TIMESTAMP_WINDOW_SECONDS: i64 = 300;

/// The seven-line string to sign. `timestamp` and `nonce` are the header values as sent,
/// `path` is the path as sent (percent-encoding kept) without the query, `raw_query` the
/// part after `?` without the `?` (empty when there is none).
pub fn string_to_sign(timestamp: &str, nonce: &str, method: &str, path: &str, raw_query: &str, body: &[u8]) -> String {
    let body_hash = hex::encode(Sha256::digest(body));
    let query = canonical_query(raw_query);
    let method = method.to_ascii_uppercase();
    let mut s = String::with_capacity(
        SCHEME.len() + timestamp.len() + nonce.len() + method.len() + path.len() + query.len() + 64 + 6,
    );
    for (i, line) in [SCHEME, timestamp, nonce, &method, path, &query, &body_hash]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(line);
    }
    s
}

/// `v1=` and the lowercase hex HMAC-SHA256 of `string_to_sign` under `secret`.
pub fn sign(secret: &str, string_to_sign: &str) -> String {
    let mut mac = keyed_hmac(secret.as_bytes());
    mac.update(string_to_sign.as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// `X-Tern-Timestamp`: Unix seconds, ASCII digits only (no sign, no fraction).
pub fn parse_timestamp(value: &str) -> Option<i64> {
    if value.is_empty() || value.len() > 15 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// `X-Tern-Nonce`: 16 to 64 characters of `[A-Za-z0-9_-]`.
pub fn is_valid_nonce(value: &str) -> bool {
    (16..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `X-Tern-Signature`: `v1=` and exactly 64 lowercase hex digits, as the 32 MAC bytes.
pub fn parse_signature(value: &str) -> Option<[u8; 32]> {
    let hex_digits = value.strip_prefix("v1=")?;
    if hex_digits.len() != 64
        || !hex_digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut out).ok()?;
    Some(out)
}

/// What the front door hands over of one request. Header values are `None` when the
/// header is absent (or not valid UTF-8/visible ASCII, which the front door treats the same).
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub app_key: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
    /// The `Authorization` header, for the bearer alternative.
    pub authorization: Option<&'a str>,
    pub method: &'a str,
    /// The path as sent, percent-encoding kept, without the query.
    pub path: &'a str,
    /// The query as sent, without `?`; empty when there is none.
    pub raw_query: &'a str,
    pub body: &'a [u8],
}

/// The signature headers, parsed.
struct SignatureHeaders<'a> {
    app_key: AppKey,
    timestamp_text: &'a str,
    timestamp: i64,
    nonce: &'a str,
    signature: [u8; 32],
}

fn parse_signature_headers<'a>(req: &SignedRequest<'a>) -> Result<SignatureHeaders<'a>, AuthError> {
    let app_key = req
        .app_key
        .ok_or(AuthError::MissingCredentials("X-Tern-App-Key is missing"))?;
    let timestamp_text = req
        .timestamp
        .ok_or(AuthError::MissingCredentials("X-Tern-Timestamp is missing"))?;
    let nonce = req
        .nonce
        .ok_or(AuthError::MissingCredentials("X-Tern-Nonce is missing"))?;
    let signature = req
        .signature
        .ok_or(AuthError::MissingCredentials("X-Tern-Signature is missing"))?;
    let app_key = AppKey::parse(app_key)
        .map_err(|_| AuthError::MissingCredentials("X-Tern-App-Key is not an AppKey (ak_...)"))?;
    let timestamp = parse_timestamp(timestamp_text).ok_or(AuthError::MissingCredentials(
        "X-Tern-Timestamp must be Unix seconds in decimal",
    ))?;
    if !is_valid_nonce(nonce) {
        return Err(AuthError::MissingCredentials(
            "X-Tern-Nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -",
        ));
    }
    let signature = parse_signature(signature).ok_or(AuthError::MissingCredentials(
        "X-Tern-Signature must be v1= followed by 64 lowercase hex digits",
    ))?;
    Ok(SignatureHeaders {
        app_key,
        timestamp_text,
        timestamp,
        nonce,
        signature,
    })
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether any secret of `app` active at `now` signs `message` as `signature`. Every
/// secret is tried without stopping at a match, and each comparison is constant-time, so
/// timing tells nothing about the secrets or the signature.
fn signed_by_any(app: &AppCredentials, message: &str, signature: &[u8; 32], now: UnixMillis) -> bool {
    app.secrets_at(now).fold(false, |ok, secret| {
        let mut mac = secret.mac();
        mac.update(message.as_bytes());
        let expected = mac.finalize().into_bytes();
        bool::from(expected.as_slice().ct_eq(signature)) | ok
    })
}

type Clock = Arc<dyn Fn() -> UnixMillis + Send + Sync>;

/// Authenticates server API calls. One per process, shared by the REST and gRPC front
/// doors; cheap to call concurrently.
pub struct RequestVerifier {
    credentials: Arc<CredentialCache>,
    nonces: Arc<dyn NonceStore>,
    clock: Clock,
}

impl RequestVerifier {
    pub fn new(store: Arc<dyn Store>, secret_box: SecretBox, nonces: Arc<dyn NonceStore>) -> Self {
        Self::with_cache(Arc::new(CredentialCache::new(store, secret_box)), nonces)
    }

    /// Shares a cache with a `UserTokenVerifier` (or uses one with other limits).
    pub fn with_cache(credentials: Arc<CredentialCache>, nonces: Arc<dyn NonceStore>) -> Self {
        Self {
            credentials,
            nonces,
            clock: Arc::new(now_ms),
        }
    }

    /// Replaces the system clock (Unix milliseconds), for tests.
    pub fn with_clock(mut self, clock: impl Fn() -> UnixMillis + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn credentials(&self) -> &Arc<CredentialCache> {
        &self.credentials
    }

    /// The app that sent `req`, or why it is refused.
    ///
    /// When the request carries none of `X-Tern-Timestamp`, `X-Tern-Nonce` and
    /// `X-Tern-Signature` but has an `Authorization: Bearer` header, the bearer token is
    /// checked instead (see `token::authenticate_server_token`). Otherwise, in order:
    /// `missing_credentials`, `unknown_app_key`, `timestamp_out_of_window`,
    /// `bad_signature`, `nonce_reused`, `app_suspended`.
    pub async fn verify(&self, req: SignedRequest<'_>) -> Result<App, AuthError> {
        let now = (self.clock)();
        let signature_attempted = req.timestamp.is_some() || req.nonce.is_some() || req.signature.is_some();
        if !signature_attempted {
            if let Some(authorization) = req.authorization {
                let token = bearer_token(authorization)
                    .ok_or(AuthError::MissingCredentials("Authorization must be Bearer <token>"))?;
                return authenticate_server_token(&self.credentials, token, now).await;
            }
        }
        self.verify_signature(&req, now).await
    }

    async fn verify_signature(&self, req: &SignedRequest<'_>, now: UnixMillis) -> Result<App, AuthError> {
        let headers = parse_signature_headers(req)?;
        let mut app = self.credentials.get(&headers.app_key, now).await?;
        let now_s = now.div_euclid(1000);
        if headers.timestamp.abs_diff(now_s) > TIMESTAMP_WINDOW_SECONDS.unsigned_abs() {
            return Err(AuthError::TimestampOutOfWindow);
        }
        let message = string_to_sign(
            headers.timestamp_text,
            headers.nonce,
            req.method,
            req.path,
            req.raw_query,
            req.body,
        );
        let mut matched = signed_by_any(&app, &message, &headers.signature, now);
        if !matched {
            // Perhaps a secret added since the app was cached.
            if let Some(fresh) = self.credentials.refresh(&app, now).await? {
                matched = signed_by_any(&fresh, &message, &headers.signature, now);
                app = fresh;
            }
        }
        if !matched {
            return Err(AuthError::BadSignature);
        }
        // Only now: a request with a bad signature cannot burn someone else's nonce. Kept
        // for 600 s, and until the request's own timestamp leaves the window: a request
        // signed at the window's far edge stays replayable for that much longer.
        let window_closes = headers
            .timestamp
            .saturating_add(TIMESTAMP_WINDOW_SECONDS + 1)
            .saturating_mul(1000);
        let keep_until = now.saturating_add(NONCE_TTL_MS).max(window_closes);
        if !self
            .nonces
            .record(headers.app_key.as_str(), headers.nonce, now, keep_until)
            .await?
        {
            return Err(AuthError::NonceReused);
        }
        if !app.is_active() {
            return Err(AuthError::AppSuspended);
        }
        Ok(app.app.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_plain_decimal_seconds() {
        assert_eq!(parse_timestamp("1767225600"), Some(1767225600));
        assert_eq!(parse_timestamp("0"), Some(0));
        for bad in [
            "",
            "-1",
            "+1767225600",
            "1767225600.0",
            " 1767225600",
            "17672256OO",
            "1e9",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_timestamp("1767225600000000"),
            None,
            "milliseconds-sized values are refused"
        );
    }

    #[test]
    fn nonces_have_16_to_64_safe_characters() {
        assert!(is_valid_nonce("abcdefghijklmnop"));
        assert!(is_valid_nonce("Zx9_-Qw3Er5Ty7Ui"));
        assert!(is_valid_nonce(&"a".repeat(64)));
        assert!(!is_valid_nonce("abcdefghijklmno"));
        assert!(!is_valid_nonce(&"a".repeat(65)));
        assert!(!is_valid_nonce("abcdefghijklmno="));
        assert!(!is_valid_nonce("abcdefghijklmnoé"));
    }

    #[test]
    fn signatures_are_v1_and_64_lowercase_hex() {
        let hex64 = "0fc3aed2123f1fa6f4f7702481d351e06fa04b7272320d2896cdb1e9b125ae6e";
        assert!(parse_signature(&format!("v1={hex64}")).is_some());
        assert!(parse_signature(hex64).is_none());
        assert!(parse_signature(&format!("v1={}", hex64.to_uppercase())).is_none());
        assert!(parse_signature(&format!("v2={hex64}")).is_none());
        assert!(parse_signature(&format!("v1={}", &hex64[..62])).is_none());
        assert!(parse_signature(&format!("v1={hex64}00")).is_none());
    }

    #[test]
    fn method_is_upper_cased_and_query_canonicalised() {
        let s = string_to_sign("1", "n", "get", "/p%2F", "b=1&a=2", b"");
        assert_eq!(
            s,
            "TERN1-HMAC-SHA256\n1\nn\nGET\n/p%2F\na=2&b=1\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
