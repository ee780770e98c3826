//! The shared signing vectors (docs/signing-vectors.json, computed by an independent
//! implementation) must come out of Tern's own code byte for byte: canonical query,
//! string to sign, signature, user token. SDKs in other languages check the same file.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use tern_platform::auth::canonical::canonical_query;
use tern_platform::auth::request::{sign, string_to_sign};
use tern_platform::auth::token::{mint_user_token, verify_hs256, UserClaims};
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
