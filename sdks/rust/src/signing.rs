//! The client side of SIGNING.md: signing server API requests (§1) and minting user and
//! server bearer tokens (§2). This crate does not depend on the server's code, so this is
//! a second, independent implementation of the same format; both are checked against
//! docs/signing-vectors.json.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};

pub const HEADER_APP_KEY: &str = "X-Tern-App-Key";
pub const HEADER_TIMESTAMP: &str = "X-Tern-Timestamp";
pub const HEADER_NONCE: &str = "X-Tern-Nonce";
pub const HEADER_SIGNATURE: &str = "X-Tern-Signature";

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `message` under `key`. The key is first brought to one 64-byte block
/// as RFC 2104 does (hashed when longer, zero-padded), so construction cannot fail.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = hmac::digest::Key::<HmacSha256>::default();
    if key.len() > block.len() {
        let digest = Sha256::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <HmacSha256 as hmac::digest::KeyInit>::new(&block);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Escaped in the canonical query: every byte but `A-Z a-z 0-9 - _ . ~`.
const ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One key or value in its canonical spelling: decoded (`+` stays `+`, a `%` that starts
/// no valid escape stays a literal `%`), then encoded with upper-case hex.
fn canonical_component(raw: &str) -> String {
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    percent_encoding::percent_encode(&decoded, ESCAPED).to_string()
}

/// The canonical query of SIGNING.md §1 for a raw query (without `?`).
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((canonical_component(key), canonical_component(value)));
    }
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The seven-line string to sign of SIGNING.md §1.
pub fn string_to_sign(timestamp: &str, nonce: &str, method: &str, path: &str, raw_query: &str, body: &[u8]) -> String {
    [
        "TERN1-HMAC-SHA256".to_owned(),
        timestamp.to_owned(),
        nonce.to_owned(),
        method.to_ascii_uppercase(),
        path.to_owned(),
        canonical_query(raw_query),
        hex::encode(Sha256::digest(body)),
    ]
    .join("\n")
}

/// `v1=` and the lowercase hex HMAC-SHA256 of the string to sign.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    format!(
        "v1={}",
        hex::encode(hmac_sha256(secret.as_bytes(), string_to_sign.as_bytes()))
    )
}

/// A fresh nonce: 32 random alphanumeric characters.
pub fn new_nonce() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

/// Now, in Unix seconds, for `X-Tern-Timestamp`.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The four headers that sign one request. `path_and_query` is the request target exactly
/// as it will be sent (`/v1/search?q=x`); `timestamp` is Unix seconds (`unix_now()`),
/// `nonce` new for every request (`new_nonce()`).
pub fn sign_request(
    app_key: &str,
    secret: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    timestamp: i64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let timestamp = timestamp.to_string();
    let sts = string_to_sign(&timestamp, nonce, method, path, query, body);
    vec![
        (HEADER_APP_KEY, app_key.to_owned()),
        (HEADER_TIMESTAMP, timestamp),
        (HEADER_NONCE, nonce.to_owned()),
        (HEADER_SIGNATURE, signature(secret, &sts)),
    ]
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn encode_hs256(secret: &str, claims_json: &str) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims_json)
    );
    let mac = hmac_sha256(secret.as_bytes(), signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac))
}

/// A user token (SIGNING.md §2) for `user`, valid from `iat` to `exp` (Unix seconds).
/// Claims are written in the order `iss, sub, iat, exp[, jti]`.
pub fn mint_user_token(app_key: &str, secret: &str, user: &str, iat: i64, exp: i64, jti: Option<&str>) -> String {
    let mut claims = format!(
        r#"{{"iss":{},"sub":{},"iat":{iat},"exp":{exp}"#,
        json_string(app_key),
        json_string(user)
    );
    if let Some(jti) = jti {
        claims.push_str(&format!(r#","jti":{}"#, json_string(jti)));
    }
    claims.push('}');
    encode_hs256(secret, &claims)
}

/// A server bearer token (`Authorization: Bearer ...`) for gRPC streams and tools that
/// cannot sign a body. The server refuses lifetimes over 3600 s.
pub fn mint_server_token(app_key: &str, secret: &str, iat: i64, exp: i64) -> String {
    let claims = format!(
        r#"{{"iss":{},"scope":"server","iat":{iat},"exp":{exp}}}"#,
        json_string(app_key)
    );
    encode_hs256(secret, &claims)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn vectors() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/signing-vectors.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn s<'a>(v: &'a Value, field: &str) -> &'a str {
        v[field].as_str().unwrap()
    }

    #[test]
    fn every_request_vector_matches() {
        let v = vectors();
        let requests = v["requests"].as_array().unwrap();
        assert!(requests.len() >= 7);
        for r in requests {
            let body = hex::decode(s(r, "body_hex")).unwrap();
            assert_eq!(canonical_query(s(r, "raw_query")), s(r, "canonical_query"));
            let sts = string_to_sign(
                s(r, "timestamp"),
                s(r, "nonce"),
                s(r, "method"),
                s(r, "path"),
                s(r, "raw_query"),
                &body,
            );
            assert_eq!(sts, s(r, "string_to_sign"));
            let target = if s(r, "raw_query").is_empty() {
                s(r, "path").to_owned()
            } else {
                format!("{}?{}", s(r, "path"), s(r, "raw_query"))
            };
            let headers = sign_request(
                s(&v, "app_key"),
                s(&v, "app_secret"),
                s(r, "method"),
                &target,
                &body,
                s(r, "timestamp").parse().unwrap(),
                s(r, "nonce"),
            );
            assert_eq!(
                headers,
                vec![
                    (HEADER_APP_KEY, s(&v, "app_key").to_owned()),
                    (HEADER_TIMESTAMP, s(r, "timestamp").to_owned()),
                    (HEADER_NONCE, s(r, "nonce").to_owned()),
                    (HEADER_SIGNATURE, s(r, "signature").to_owned()),
                ]
            );
        }
    }

    #[test]
    fn the_user_token_vector_matches() {
        let v = vectors();
        let t = &v["user_token"];
        let c = &t["claims"];
        let token = mint_user_token(
            s(c, "iss"),
            s(&v, "app_secret"),
            s(c, "sub"),
            c["iat"].as_i64().unwrap(),
            c["exp"].as_i64().unwrap(),
            None,
        );
        assert_eq!(token, s(t, "token"));
    }

    /// Tern's own edge-case vector from docs/signing.md (computed independently in Python).
    #[test]
    fn the_edge_case_vector_of_the_docs_matches() {
        let headers = sign_request(
            "ak_demo_4k2m9p7q",
            "sk_test_7f3a9c2e5b1d4f60a8e2c9b7d5f3a1e0",
            "GET",
            "/v1/search?tag=%zz&q=100%&name=%e4%bd%a0&q=a+b&empty",
            b"",
            1767225607,
            "edge-case-nonce-01",
        );
        assert_eq!(
            headers[3],
            (
                HEADER_SIGNATURE,
                "v1=6e9f17f2f2cc12c955fc3bb83c15dafe46e3c31533c4d031da3463d075c4b928".to_owned()
            )
        );
        assert_eq!(
            mint_server_token("ak_demo_4k2m9p7q", "sk_test_7f3a9c2e5b1d4f60a8e2c9b7d5f3a1e0", 1767225600, 1767229200),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJha19kZW1vXzRrMm05cDdxIiwic2NvcGUiOiJzZXJ2ZXIiLCJpYXQiOjE3NjcyMjU2MDAsImV4cCI6MTc2NzIyOTIwMH0.o-aM6p5bxYvAchLzGhtTUqXLT6e8m3rfSTXmSQOnhiU"
        );
    }

    #[test]
    fn canonical_query_edge_cases() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("a=b=c&&x"), "a=b%3Dc&x=");
        assert_eq!(canonical_query("q=%zz&q=%4"), "q=%254&q=%25zz");
        assert_eq!(canonical_query("q=%e4%bd%a0"), "q=%E4%BD%A0");
    }

    #[test]
    fn nonces_are_fresh_and_valid() {
        let a = new_nonce();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, new_nonce());
    }

    #[test]
    fn server_tokens_carry_the_server_scope() {
        let token = mint_server_token("ak_demo_4k2m9p7q", "sk", 10, 20);
        let claims = token.split('.').nth(1).unwrap();
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(
            claims,
            r#"{"iss":"ak_demo_4k2m9p7q","scope":"server","iat":10,"exp":20}"#
        );
    }
}
