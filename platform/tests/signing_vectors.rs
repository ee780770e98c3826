//! The shared signing vectors (docs/signing-vectors.json, computed by an independent
//! implementation) must come out of Tern's own code byte for byte: canonical query,
//! string to sign, signature, user token. SDKs in other languages check the same file.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use tern_platform::auth::canonical::canonical_query;
use tern_platform::auth::request::{sign, string_to_sign};
use tern_platform::auth::token::{mint_server_token, mint_user_token, verify_hs256, UserClaims};
use tern_platform::auth::AuthError;
use tern_platform::ids::{AppKey, UserId};

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/signing-vectors.json");
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {field} missing"))
}

#[test]
fn every_request_vector_matches() {
    let v = vectors();
    let secret = s(&v, "app_secret");
    let requests = v["requests"].as_array().unwrap();
    assert!(requests.len() >= 7, "the shared file has seven request vectors");
    for r in requests {
        let body = hex::decode(s(r, "body_hex")).unwrap();
        let what = format!("{} {}?{}", s(r, "method"), s(r, "path"), s(r, "raw_query"));
        assert_eq!(canonical_query(s(r, "raw_query")), s(r, "canonical_query"), "{what}");
        let sts = string_to_sign(
            s(r, "timestamp"),
            s(r, "nonce"),
            s(r, "method"),
            s(r, "path"),
            s(r, "raw_query"),
            &body,
        );
        assert_eq!(sts, s(r, "string_to_sign"), "{what}");
        assert_eq!(sign(secret, &sts), s(r, "signature"), "{what}");
        assert_ne!(sign("sk_other", &sts), s(r, "signature"), "{what}");
    }
}

#[test]
fn the_user_token_vector_matches() {
    let v = vectors();
    let t = &v["user_token"];
    let c = &t["claims"];
    let app_key = AppKey::parse(s(c, "iss")).unwrap();
    assert_eq!(app_key.as_str(), s(&v, "app_key"));
    let user = UserId::parse(s(c, "sub")).unwrap();
    let token = mint_user_token(
        &app_key,
        s(&v, "app_secret"),
        &user,
        c["iat"].as_i64().unwrap(),
        c["exp"].as_i64().unwrap(),
        None,
    );
    assert_eq!(token, s(t, "token"));
    let claims: UserClaims = verify_hs256(s(t, "token"), &[s(&v, "app_secret")]).unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.iat, 1767225600);
    assert_eq!(claims.exp, 1767229200);
}

/// Tern's own edge-case vectors from docs/signing.md, computed independently with Python.
#[test]
fn the_edge_case_vectors_of_the_docs_match() {
    let raw_query = "tag=%zz&q=100%&name=%e4%bd%a0&q=a+b&empty";
    assert_eq!(
        canonical_query(raw_query),
        "empty=&name=%E4%BD%A0&q=100%25&q=a%2Bb&tag=%25zz"
    );
    let sts = string_to_sign("1767225607", "edge-case-nonce-01", "GET", "/v1/search", raw_query, b"");
    assert_eq!(
        sign("sk_test_7f3a9c2e5b1d4f60a8e2c9b7d5f3a1e0", &sts),
        "v1=6e9f17f2f2cc12c955fc3bb83c15dafe46e3c31533c4d031da3463d075c4b928"
    );
    let key = AppKey::parse("ak_demo_4k2m9p7q").unwrap();
    let secret = "sk_test_7f3a9c2e5b1d4f60a8e2c9b7d5f3a1e0";
    assert_eq!(
        mint_user_token(&key, secret, &UserId::parse("alice").unwrap(), 1767225600, 1767229200, Some("login-0001")),
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJha19kZW1vXzRrMm05cDdxIiwic3ViIjoiYWxpY2UiLCJpYXQiOjE3NjcyMjU2MDAsImV4cCI6MTc2NzIyOTIwMCwianRpIjoibG9naW4tMDAwMSJ9.ueGwIMsj5l-iy85rL9mCTLqoNYODUezGT0VY48uY3T4"
    );
    assert_eq!(
        mint_server_token(&key, secret, 1767225600, 1767229200),
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJha19kZW1vXzRrMm05cDdxIiwic2NvcGUiOiJzZXJ2ZXIiLCJpYXQiOjE3NjcyMjU2MDAsImV4cCI6MTc2NzIyOTIwMH0.o-aM6p5bxYvAchLzGhtTUqXLT6e8m3rfSTXmSQOnhiU"
    );
}

/// docs/signing.md shows every shared vector verbatim and documents every error code.
#[test]
fn the_docs_carry_the_shared_vectors_and_every_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/signing.md")).unwrap();
    let v = vectors();
    for r in v["requests"].as_array().unwrap() {
        assert!(
            doc.contains(s(r, "string_to_sign")),
            "{} {}",
            s(r, "method"),
            s(r, "path")
        );
        assert!(doc.contains(s(r, "signature")), "{}", s(r, "signature"));
    }
    assert!(doc.contains(s(&v["user_token"], "token")));
    assert!(doc.contains(s(&v["webhook"], "header")));
    for code in AuthError::ALL_CODES {
        assert!(
            doc.contains(&format!("| `{code}` |")),
            "{code} is not in the docs' tables"
        );
    }
}
