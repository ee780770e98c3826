//! The verifiers against a real (SQLite) store: every failure code of SIGNING.md §1 in
//! its documented order, secret rotation and revocation, server bearer tokens, and every
//! rule of §2 for user tokens. The clock is injected, so nothing here depends on timing.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tern_platform::auth::credentials::CredentialCache;
use tern_platform::auth::request::{sign, string_to_sign, RequestVerifier, SignedRequest};
use tern_platform::auth::token::{mint_server_token, mint_user_token, UserTokenVerifier};
use tern_platform::auth::AuthError;
use tern_platform::domain::{App, AppSecretRecord, AppSettings, AppStatus, Tenant, TenantStatus, UnixMillis};
use tern_platform::ids::{AppId, AppKey, SecretId, TenantId, UserId};
use tern_platform::nonce::MemoryNonceStore;
use tern_platform::secret_box::SecretBox;
use tern_platform::store::testing::sqlite_temp;
use tern_platform::store::{NewApp, Store};

const KEY_A: &str = "ak_demo_4k2m9p7q";
const SECRET_A: &str = "sk_test_7f3a9c2e5b1d4f60a8e2c9b7d5f3a1e0";
const KEY_B: &str = "ak_other_app_0001";
const SECRET_B: &str = "sk_test_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
/// 2026-01-01T00:00:00Z, the time of the shared vectors.
const T0: i64 = 1_767_225_600;

struct World {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
    secret_box: SecretBox,
    /// The injected clock, Unix milliseconds.
    now: Arc<AtomicI64>,
    requests: RequestVerifier,
    tokens: UserTokenVerifier,
    tenant: Tenant,
    app_a: App,
    app_b: App,
}

impl World {
    async fn new() -> Self {
        Self::with_settings(AppSettings::default()).await
    }

    async fn with_settings(settings_a: AppSettings) -> Self {
        let (store, dir) = sqlite_temp().await;
        let secret_box = SecretBox::from_key([42; 32]);
        let now = Arc::new(AtomicI64::new(T0 * 1000));
        let tenant = Tenant {
            id: TenantId::generate(),
            name: "acme".into(),
            status: TenantStatus::Active,
            created_at: T0 * 1000 - 86_400_000,
        };
        store.create_tenant(&tenant).await.unwrap();
        let app_a = create_app(&*store, &secret_box, &tenant, "a", KEY_A, SECRET_A, settings_a).await;
        let app_b = create_app(
            &*store,
            &secret_box,
            &tenant,
            "b",
            KEY_B,
            SECRET_B,
            AppSettings::default(),
        )
        .await;
        let cache = Arc::new(CredentialCache::new(store.clone(), secret_box.clone()));
        let clock = now.clone();
        let requests = RequestVerifier::with_cache(cache.clone(), Arc::new(MemoryNonceStore::new()))
            .with_clock(move || clock.load(Ordering::SeqCst));
        let tokens = UserTokenVerifier::with_cache(cache);
        Self {
            store,
            _dir: dir,
            secret_box,
            now,
            requests,
            tokens,
            tenant,
            app_a,
            app_b,
        }
    }

    fn now_ms(&self) -> UnixMillis {
        self.now.load(Ordering::SeqCst)
    }

    fn now_s(&self) -> i64 {
        self.now_ms() / 1000
    }

    /// Moves the clock on, past the credential cache's 5 s lifetime when `secs` > 5.
    fn advance(&self, secs: i64) {
        self.now.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    async fn verify(&self, r: &Req) -> Result<App, AuthError> {
        self.requests.verify(r.as_signed()).await
    }

    async fn rotate_secret(&self, app: &App, new_secret: &str, grace_s: i64) -> SecretId {
        let id = SecretId::generate();
        let record = AppSecretRecord {
            id: id.clone(),
            app_id: app.id.clone(),
            ciphertext: self.secret_box.seal(app.id.as_str(), new_secret.as_bytes()),
            created_at: self.now_ms(),
            expires_at: None,
        };
        self.store
            .add_app_secret(&record, self.now_ms() + grace_s * 1000)
            .await
            .unwrap();
        id
    }
}

async fn create_app(
    store: &dyn Store,
    secret_box: &SecretBox,
    tenant: &Tenant,
    name: &str,
    key: &str,
    secret: &str,
    settings: AppSettings,
) -> App {
    let id = AppId::generate();
    store
        .create_app(&NewApp {
            id: id.clone(),
            tenant_id: tenant.id.clone(),
            name: name.into(),
            app_key: AppKey::parse(key).unwrap(),
            settings,
            first_secret: AppSecretRecord {
                id: SecretId::generate(),
                app_id: id.clone(),
                ciphertext: secret_box.seal(id.as_str(), secret.as_bytes()),
                created_at: T0 * 1000 - 86_400_000,
                expires_at: None,
            },
            webhook_secret_ciphertext: secret_box.seal(id.as_str(), b"whsec_test"),
        })
        .await
        .unwrap()
}

/// One request as a client would send it; fields are edited by tests to break it.
#[derive(Clone)]
struct Req {
    app_key: Option<String>,
    timestamp: Option<String>,
    nonce: Option<String>,
    signature: Option<String>,
    authorization: Option<String>,
    method: String,
    path: String,
    query: String,
    body: Vec<u8>,
}

impl Req {
    /// A correctly signed `POST /v1/messages?x=1` at `ts`.
    fn signed(key: &str, secret: &str, ts: i64, nonce: &str) -> Self {
        Self::signed_with(
            key,
            secret,
            ts,
            nonce,
            "POST",
            "/v1/messages",
            "x=1",
            br#"{"text":"hi"}"#,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn signed_with(
        key: &str,
        secret: &str,
        ts: i64,
        nonce: &str,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Self {
        let ts = ts.to_string();
        let signature = sign(secret, &string_to_sign(&ts, nonce, method, path, query, body));
        Self {
            app_key: Some(key.into()),
            timestamp: Some(ts),
            nonce: Some(nonce.into()),
            signature: Some(signature),
            authorization: None,
            method: method.into(),
            path: path.into(),
            query: query.into(),
            body: body.to_vec(),
        }
    }

    fn bearer(token: &str) -> Self {
        Self {
            app_key: None,
            timestamp: None,
            nonce: None,
            signature: None,
            authorization: Some(format!("Bearer {token}")),
            method: "POST".into(),
            path: "/tern.server.v1.Messages/Send".into(),
            query: String::new(),
            body: Vec::new(),
        }
    }

    fn as_signed(&self) -> SignedRequest<'_> {
        SignedRequest {
            app_key: self.app_key.as_deref(),
            timestamp: self.timestamp.as_deref(),
            nonce: self.nonce.as_deref(),
            signature: self.signature.as_deref(),
            authorization: self.authorization.as_deref(),
            method: &self.method,
            path: &self.path,
            raw_query: &self.query,
            body: &self.body,
        }
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, AuthError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

/// A nonce unique within a test.
fn nonce(n: u32) -> String {
    format!("test-nonce-{n:08}")
}

#[tokio::test]
async fn every_shared_vector_is_accepted_by_the_verifier() {
    let w = World::new().await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/signing-vectors.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for r in v["requests"].as_array().unwrap() {
        let ts: i64 = r["timestamp"].as_str().unwrap().parse().unwrap();
        w.now.store(ts * 1000, Ordering::SeqCst);
        let req = Req {
            app_key: Some(v["app_key"].as_str().unwrap().into()),
            timestamp: Some(r["timestamp"].as_str().unwrap().into()),
            nonce: Some(r["nonce"].as_str().unwrap().into()),
            signature: Some(r["signature"].as_str().unwrap().into()),
            authorization: None,
            method: r["method"].as_str().unwrap().into(),
            path: r["path"].as_str().unwrap().into(),
            query: r["raw_query"].as_str().unwrap().into(),
            body: hex::decode(r["body_hex"].as_str().unwrap()).unwrap(),
        };
        let app = w
            .verify(&req)
            .await
            .unwrap_or_else(|e| panic!("{} {}: {e}", req.method, req.path));
        assert_eq!(app.id, w.app_a.id);
    }
}

#[tokio::test]
async fn a_signed_request_identifies_its_app() {
    let w = World::new().await;
    let a = w.verify(&Req::signed(KEY_A, SECRET_A, T0, &nonce(1))).await.unwrap();
    assert_eq!(a.id, w.app_a.id);
    let b = w.verify(&Req::signed(KEY_B, SECRET_B, T0, &nonce(1))).await.unwrap();
    assert_eq!(b.id, w.app_b.id, "the same nonce is fine for another app");
}

#[tokio::test]
async fn missing_or_malformed_headers_are_missing_credentials() {
    let w = World::new().await;
    let good = Req::signed(KEY_A, SECRET_A, T0, &nonce(1));
    let mut cases: Vec<(&str, Req)> = Vec::new();
    let mut r = good.clone();
    r.app_key = None;
    cases.push(("no app key", r));
    let mut r = good.clone();
    r.timestamp = None;
    cases.push(("no timestamp", r));
    let mut r = good.clone();
    r.nonce = None;
    cases.push(("no nonce", r));
    let mut r = good.clone();
    r.signature = None;
    cases.push(("no signature", r));
    cases.push(("nonce too short", Req::signed(KEY_A, SECRET_A, T0, "abcdefghijklmno")));
    cases.push((
        "nonce with a forbidden character",
        Req::signed(KEY_A, SECRET_A, T0, "abcdefghijklmno+"),
    ));
    cases.push(("nonce too long", Req::signed(KEY_A, SECRET_A, T0, &"n".repeat(65))));
    let mut r = good.clone();
    r.timestamp = Some(format!("{T0}.5"));
    cases.push(("fractional timestamp", r));
    let mut r = good.clone();
    r.signature = r.signature.map(|s| s.to_uppercase().replace("V1=", "v1="));
    cases.push(("upper-case hex signature", r));
    let mut r = good.clone();
    r.signature = r.signature.map(|s| s.trim_start_matches("v1=").to_owned());
    cases.push(("signature without v1=", r));
    let mut r = good.clone();
    r.app_key = Some(SECRET_A.into());
    cases.push(("secret sent as the app key", r));
    // Missing headers win over every later check, even with an unknown key.
    let mut r = Req::signed("ak_nobody_here", SECRET_A, T0 - 1000, &nonce(2));
    r.nonce = None;
    cases.push(("no nonce and an unknown key", r));
    for (what, req) in cases {
        let err = w.verify(&req).await.unwrap_err();
        assert_eq!(err.code(), "missing_credentials", "{what}: {err}");
        assert_eq!(err.http_status(), 401);
    }
    // No credentials at all.
    let mut none = good.clone();
    none.app_key = None;
    none.timestamp = None;
    none.nonce = None;
    none.signature = None;
    assert_eq!(code(w.verify(&none).await), "missing_credentials");
    // And the untouched request still passes: the failures above were the edits.
    w.verify(&good).await.unwrap();
}

#[tokio::test]
async fn an_unknown_key_is_reported_before_time_and_signature() {
    let w = World::new().await;
    let r = Req::signed("ak_nobody_here", "whatever", T0, &nonce(1));
    assert_eq!(code(w.verify(&r).await), "unknown_app_key");
    let r = Req::signed("ak_nobody_here", "whatever", T0 - 10_000, &nonce(2));
    assert_eq!(code(w.verify(&r).await), "unknown_app_key");
}

#[tokio::test]
async fn timestamps_more_than_300_s_off_either_way_are_refused() {
    let w = World::new().await;
    for (offset, n) in [(301, 1), (-301, 2)] {
        let r = Req::signed(KEY_A, SECRET_A, T0 + offset, &nonce(n));
        let err = w.verify(&r).await.unwrap_err();
        assert_eq!(err.code(), "timestamp_out_of_window", "offset {offset}");
        // Out of window is decided before the signature: a wrong secret changes nothing.
        let r = Req::signed(KEY_A, "sk_wrong", T0 + offset, &nonce(n + 10));
        assert_eq!(code(w.verify(&r).await), "timestamp_out_of_window");
    }
    // A timestamp in milliseconds by mistake is a well-formed number far in the future.
    let r = Req::signed(KEY_A, SECRET_A, T0 * 1000, &nonce(5));
    assert_eq!(code(w.verify(&r).await), "timestamp_out_of_window");
    for (offset, n) in [(300, 3), (-300, 4)] {
        let r = Req::signed(KEY_A, SECRET_A, T0 + offset, &nonce(n));
        w.verify(&r).await.unwrap_or_else(|e| panic!("offset {offset}: {e}"));
    }
}

#[tokio::test]
async fn a_signature_by_any_other_secret_or_over_other_bytes_is_bad() {
    let w = World::new().await;
    let r = Req::signed(KEY_A, "sk_test_not_the_secret", T0, &nonce(1));
    assert_eq!(code(w.verify(&r).await), "bad_signature");
    // App A's key with app B's (valid, active) secret.
    let r = Req::signed(KEY_A, SECRET_B, T0, &nonce(2));
    assert_eq!(code(w.verify(&r).await), "bad_signature");
    // Every signed part matters.
    let good = Req::signed(KEY_A, SECRET_A, T0, &nonce(3));
    let mut edits: Vec<(&str, Req)> = Vec::new();
    let mut r = good.clone();
    r.body = br#"{"text":"hI"}"#.to_vec();
    edits.push(("body", r));
    let mut r = good.clone();
    r.query = "x=2".into();
    edits.push(("query", r));
    let mut r = good.clone();
    r.path = "/v1/messages/".into();
    edits.push(("path", r));
    let mut r = good.clone();
    r.method = "PUT".into();
    edits.push(("method", r));
    let mut r = good.clone();
    r.nonce = Some(nonce(4));
    edits.push(("nonce", r));
    let mut r = good.clone();
    r.timestamp = Some((T0 + 1).to_string());
    edits.push(("timestamp", r));
    let mut r = good.clone();
    r.timestamp = Some(format!("0{T0}"));
    edits.push(("timestamp spelling (signed as sent)", r));
    for (what, req) in edits {
        assert_eq!(code(w.verify(&req).await), "bad_signature", "{what}");
    }
    // A re-ordered, re-escaped query is the same canonical query, so it still verifies.
    let mut r = Req::signed_with(
        KEY_A,
        SECRET_A,
        T0,
        &nonce(5),
        "GET",
        "/v1/search",
        "b=2&a=%e4%bd%a0",
        b"",
    );
    r.query = "a=%E4%BD%A0&b=2".into();
    w.verify(&r).await.unwrap();
}

#[tokio::test]
async fn a_nonce_is_accepted_once_and_only_a_good_signature_records_it() {
    let w = World::new().await;
    // A forger sends a bad signature with the nonce first: it must not burn the nonce.
    let forged = Req::signed(KEY_A, "sk_forged", T0, &nonce(1));
    assert_eq!(code(w.verify(&forged).await), "bad_signature");
    let r = Req::signed(KEY_A, SECRET_A, T0, &nonce(1));
    w.verify(&r).await.unwrap();
    let err = w.verify(&r).await.unwrap_err();
    assert_eq!(err.code(), "nonce_reused");
    assert_eq!(err.http_status(), 401);
    // A replay with a fresh timestamp but the same nonce is still a replay.
    w.advance(10);
    let r = Req::signed(KEY_A, SECRET_A, w.now_s(), &nonce(1));
    assert_eq!(code(w.verify(&r).await), "nonce_reused");
}

#[tokio::test]
async fn a_suspended_app_or_tenant_is_refused_with_403() {
    let w = World::new().await;
    w.verify(&Req::signed(KEY_A, SECRET_A, T0, &nonce(1))).await.unwrap();
    w.store.set_app_status(&w.app_a.id, AppStatus::Suspended).await.unwrap();
    w.advance(6);
    let err = w
        .verify(&Req::signed(KEY_A, SECRET_A, w.now_s(), &nonce(2)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "app_suspended");
    assert_eq!(err.http_status(), 403);
    // The checks before it still come first: a bad signature is still a bad signature.
    let r = Req::signed(KEY_A, SECRET_B, w.now_s(), &nonce(3));
    assert_eq!(code(w.verify(&r).await), "bad_signature");
    // Another app of the same tenant is unaffected.
    w.verify(&Req::signed(KEY_B, SECRET_B, w.now_s(), &nonce(4)))
        .await
        .unwrap();

    w.store.set_app_status(&w.app_a.id, AppStatus::Active).await.unwrap();
    w.store
        .set_tenant_status(&w.tenant.id, TenantStatus::Suspended)
        .await
        .unwrap();
    w.advance(6);
    for (key, secret) in [(KEY_A, SECRET_A), (KEY_B, SECRET_B)] {
        let err = w
            .verify(&Req::signed(key, secret, w.now_s(), &nonce(5)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "app_suspended", "{key}");
    }
    w.store
        .set_tenant_status(&w.tenant.id, TenantStatus::Active)
        .await
        .unwrap();
    w.advance(6);
    w.verify(&Req::signed(KEY_A, SECRET_A, w.now_s(), &nonce(6)))
        .await
        .unwrap();
}

#[tokio::test]
async fn during_rotation_old_and_new_secrets_both_work_until_the_grace_period_ends() {
    let w = World::new().await;
    let new_secret = "sk_test_rotated_0000000000000000";
    // The app's credentials are cached now, before the rotation.
    w.verify(&Req::signed(KEY_A, SECRET_A, w.now_s(), &nonce(100)))
        .await
        .unwrap();
    w.advance(2);
    w.rotate_secret(&w.app_a, new_secret, 3600).await;
    let mut n = 0;
    let mut next = || {
        n += 1;
        nonce(n)
    };
    w.verify(&Req::signed(KEY_A, SECRET_A, w.now_s(), &next()))
        .await
        .unwrap();
    w.verify(&Req::signed(KEY_A, new_secret, w.now_s(), &next()))
        .await
        .unwrap();
    // One second before the grace period ends the old secret still works...
    w.advance(3600 - 1);
    w.verify(&Req::signed(KEY_A, SECRET_A, w.now_s(), &next()))
        .await
        .unwrap();
    // ...and at its end it stops, even though the app's credentials were just cached.
    w.advance(1);
    assert_eq!(
        code(w.verify(&Req::signed(KEY_A, SECRET_A, w.now_s(), &next())).await),
        "bad_signature"
    );
    w.verify(&Req::signed(KEY_A, new_secret, w.now_s(), &next()))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_revoked_secret_stops_working_within_the_cache_ttl() {
    let w = World::new().await;
    let new_secret = "sk_test_rotated_1111111111111111";
    let new_id = w.rotate_secret(&w.app_a, new_secret, 86_400).await;
    w.advance(6);
    w.verify(&Req::signed(KEY_A, new_secret, w.now_s(), &nonce(1)))
        .await
        .unwrap();
    w.store
        .revoke_app_secret(&w.app_a.id, &new_id, w.now_ms())
        .await
        .unwrap();
    w.advance(6);
    assert_eq!(
        code(w.verify(&Req::signed(KEY_A, new_secret, w.now_s(), &nonce(2))).await),
        "bad_signature"
    );
    w.verify(&Req::signed(KEY_A, SECRET_A, w.now_s(), &nonce(3)))
        .await
        .unwrap();
}

#[tokio::test]
async fn server_bearer_tokens() {
    let w = World::new().await;
    let key_a = AppKey::parse(KEY_A).unwrap();
    let now = w.now_s();
    let good = mint_server_token(&key_a, SECRET_A, now, now + 3600);
    let app = w.verify(&Req::bearer(&good)).await.unwrap();
    assert_eq!(app.id, w.app_a.id);
    // A bearer token is not single-use: it may be presented again until it expires.
    w.verify(&Req::bearer(&good)).await.unwrap();

    let cases = [
        (
            "signed with app B's secret",
            mint_server_token(&key_a, SECRET_B, now, now + 60),
            "bad_signature",
        ),
        (
            "expired",
            mint_server_token(&key_a, SECRET_A, now - 120, now - 1),
            "token_expired",
        ),
        (
            "expires now",
            mint_server_token(&key_a, SECRET_A, now - 120, now),
            "token_expired",
        ),
        (
            "lives longer than an hour",
            mint_server_token(&key_a, SECRET_A, now, now + 3601),
            "token_lifetime_too_long",
        ),
        (
            "issued in the future",
            mint_server_token(&key_a, SECRET_A, now + 61, now + 600),
            "token_not_yet_valid",
        ),
        (
            "unknown issuer",
            mint_server_token(&AppKey::parse("ak_nobody_here").unwrap(), SECRET_A, now, now + 60),
            "unknown_app_key",
        ),
        (
            "a user token used as a server token",
            mint_user_token(&key_a, SECRET_A, &UserId::parse("alice").unwrap(), now, now + 60, None),
            "token_invalid",
        ),
        ("not a JWT", "not-a-jwt".to_owned(), "token_invalid"),
    ];
    for (what, token, expected) in cases {
        assert_eq!(code(w.verify(&Req::bearer(&token)).await), expected, "{what}");
    }
    let mut basic = Req::bearer("x");
    basic.authorization = Some("Basic dXNlcjpwYXNz".into());
    assert_eq!(code(w.verify(&basic).await), "missing_credentials");

    w.store.set_app_status(&w.app_a.id, AppStatus::Suspended).await.unwrap();
    w.advance(6);
    let now = w.now_s();
    let fresh = mint_server_token(&key_a, SECRET_A, now, now + 60);
    assert_eq!(code(w.verify(&Req::bearer(&fresh)).await), "app_suspended");
}

#[tokio::test]
async fn signature_headers_take_precedence_over_a_bearer_token() {
    let w = World::new().await;
    let key_a = AppKey::parse(KEY_A).unwrap();
    let token = mint_server_token(&key_a, SECRET_A, T0, T0 + 60);
    let mut r = Req::signed(KEY_A, "sk_wrong", T0, &nonce(1));
    r.authorization = Some(format!("Bearer {token}"));
    assert_eq!(code(w.verify(&r).await), "bad_signature");
}

fn alice() -> UserId {
    UserId::parse("alice").unwrap()
}

#[tokio::test]
async fn the_vector_user_token_logs_alice_in_and_creates_her() {
    let w = World::new().await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/signing-vectors.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let token = v["user_token"]["token"].as_str().unwrap();
    assert!(w.store.user(&w.app_a.id, &alice()).await.unwrap().is_none());
    let (app, user) = w.tokens.verify(token, T0 * 1000 + 5_000).await.unwrap();
    assert_eq!(app.id, w.app_a.id);
    assert_eq!(user.id, alice());
    assert!(
        w.store.user(&w.app_a.id, &alice()).await.unwrap().is_some(),
        "created on first login"
    );
    // Logging in again finds the same user.
    let (_, again) = w.tokens.verify(token, T0 * 1000 + 6_000).await.unwrap();
    assert_eq!(again.created_at, user.created_at);
    // Its exp is T0 + 3600.
    assert_eq!(code(w.tokens.verify(token, (T0 + 3600) * 1000).await), "token_expired");
}

#[tokio::test]
async fn user_token_rules_in_order() {
    let w = World::with_settings(AppSettings {
        max_token_ttl_seconds: 3600,
        ..AppSettings::default()
    })
    .await;
    let key_a = AppKey::parse(KEY_A).unwrap();
    let now_ms = w.now_ms();
    let now = w.now_s();
    let mint = |secret: &str, iat: i64, exp: i64| mint_user_token(&key_a, secret, &alice(), iat, exp, None);

    let cases = [
        ("garbage", "a.b.c".to_owned(), "token_invalid"),
        (
            "server token",
            mint_server_token(&key_a, SECRET_A, now, now + 60),
            "token_invalid",
        ),
        (
            "unknown issuer",
            mint_user_token(
                &AppKey::parse("ak_nobody_here").unwrap(),
                SECRET_A,
                &alice(),
                now,
                now + 60,
                None,
            ),
            "unknown_app_key",
        ),
        ("app B's secret", mint(SECRET_B, now, now + 60), "bad_signature"),
        (
            "wrong secret and expired",
            mint("sk_x", now - 100, now - 50),
            "bad_signature",
        ),
        ("expired", mint(SECRET_A, now - 100, now - 50), "token_expired"),
        (
            "longer than the app allows",
            mint(SECRET_A, now, now + 3601),
            "token_lifetime_too_long",
        ),
        (
            "issued 61 s ahead",
            mint(SECRET_A, now + 61, now + 600),
            "token_not_yet_valid",
        ),
    ];
    for (what, token, expected) in cases {
        let err = w.tokens.verify(&token, now_ms).await.unwrap_err();
        assert_eq!(err.code(), expected, "{what}: {err}");
        assert_eq!(err.http_status(), 401, "{what}");
    }
    // None of the refused tokens created the user.
    assert!(w.store.user(&w.app_a.id, &alice()).await.unwrap().is_none());
    // At the limits the token is fine.
    w.tokens.verify(&mint(SECRET_A, now, now + 3600), now_ms).await.unwrap();
    w.tokens
        .verify(&mint(SECRET_A, now + 60, now + 600), now_ms)
        .await
        .unwrap();
}

#[tokio::test]
async fn revoked_tokens_banned_users_and_suspended_apps() {
    let w = World::new().await;
    let key_a = AppKey::parse(KEY_A).unwrap();
    let now = w.now_s();
    let old = mint_user_token(&key_a, SECRET_A, &alice(), now - 10, now + 3600, None);
    w.tokens.verify(&old, w.now_ms()).await.unwrap();

    w.store
        .revoke_user_tokens(&w.app_a.id, &alice(), w.now_ms())
        .await
        .unwrap();
    let err = w.tokens.verify(&old, w.now_ms()).await.unwrap_err();
    assert_eq!(err.code(), "token_revoked");
    // A token minted after the revocation is accepted.
    w.advance(1);
    let fresh = mint_user_token(&key_a, SECRET_A, &alice(), w.now_s(), w.now_s() + 3600, None);
    w.tokens.verify(&fresh, w.now_ms()).await.unwrap();

    w.store
        .set_user_ban(&w.app_a.id, &alice(), Some(w.now_ms() + 60_000))
        .await
        .unwrap();
    let err = w.tokens.verify(&fresh, w.now_ms()).await.unwrap_err();
    assert_eq!(err.code(), "user_banned");
    assert_eq!(err.http_status(), 403);
    // The ban ends by itself.
    w.advance(61);
    w.tokens.verify(&fresh, w.now_ms()).await.unwrap();

    w.store.set_app_status(&w.app_a.id, AppStatus::Suspended).await.unwrap();
    w.advance(6);
    let err = w.tokens.verify(&fresh, w.now_ms()).await.unwrap_err();
    assert_eq!(err.code(), "app_suspended");
    // Suspension is checked before users are created.
    let bob = mint_user_token(
        &key_a,
        SECRET_A,
        &UserId::parse("bob").unwrap(),
        w.now_s(),
        w.now_s() + 60,
        None,
    );
    assert_eq!(code(w.tokens.verify(&bob, w.now_ms()).await), "app_suspended");
    assert!(w
        .store
        .user(&w.app_a.id, &UserId::parse("bob").unwrap())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn unknown_users_are_refused_when_the_app_does_not_create_them() {
    let w = World::with_settings(AppSettings {
        auto_create_users: false,
        ..AppSettings::default()
    })
    .await;
    let key_a = AppKey::parse(KEY_A).unwrap();
    let now = w.now_s();
    let token = mint_user_token(&key_a, SECRET_A, &alice(), now, now + 60, None);
    let err = w.tokens.verify(&token, w.now_ms()).await.unwrap_err();
    assert_eq!(err.code(), "user_not_found");
    assert_eq!(err.http_status(), 403);
    assert!(w.store.user(&w.app_a.id, &alice()).await.unwrap().is_none());
    // Once the tenant imports her, she can log in.
    w.store
        .upsert_users(&w.app_a.id, &[(alice(), Default::default())], w.now_ms())
        .await
        .unwrap();
    let (_, user) = w.tokens.verify(&token, w.now_ms()).await.unwrap();
    assert_eq!(user.id, alice());
    // A sub that is not a valid user id is an invalid token, not a lookup.
    let claims = format!(r#"{{"iss":"{KEY_A}","sub":"al ice","iat":{now},"exp":{}}}"#, now + 60);
    assert_eq!(
        code(w.tokens.verify(&forge_token(&claims, SECRET_A), w.now_ms()).await),
        "token_invalid"
    );
}

/// A correctly signed HS256 token with arbitrary claims, as a tenant's JWT library could make.
fn forge_token(claims_json: &str, secret: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::Mac;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims_json)
    );
    let mut mac = tern_platform::auth::credentials::keyed_hmac(secret.as_bytes());
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn tokens_from_other_jwt_libraries_are_accepted() {
    let w = World::new().await;
    let now = w.now_s();
    // Claims in another order, with jti, nbf and an unknown claim; no typ in the header
    // would be fine too (unit-tested).
    let claims = format!(
        r#"{{"exp":{},"sub":"alice","jti":"j1","nbf":{now},"role":"x","iat":{now},"iss":"{KEY_A}"}}"#,
        now + 600
    );
    let (_, user) = w
        .tokens
        .verify(&forge_token(&claims, SECRET_A), w.now_ms())
        .await
        .unwrap();
    assert_eq!(user.id, alice());
    let claims = format!(
        r#"{{"iss":"{KEY_A}","sub":"alice","iat":{now},"exp":{},"nbf":{}}}"#,
        now + 600,
        now + 120
    );
    assert_eq!(
        code(w.tokens.verify(&forge_token(&claims, SECRET_A), w.now_ms()).await),
        "token_not_yet_valid"
    );
}

#[tokio::test]
async fn user_tokens_signed_by_a_rotated_in_secret_work_at_once() {
    let w = World::new().await;
    let key_a = AppKey::parse(KEY_A).unwrap();
    let new_secret = "sk_test_rotated_2222222222222222";
    let first = mint_user_token(&key_a, SECRET_A, &alice(), w.now_s(), w.now_s() + 600, None);
    w.tokens.verify(&first, w.now_ms()).await.unwrap();
    w.advance(2);
    w.rotate_secret(&w.app_a, new_secret, 60).await;
    let now = w.now_s();
    for secret in [SECRET_A, new_secret] {
        let token = mint_user_token(&key_a, secret, &alice(), now, now + 600, None);
        w.tokens.verify(&token, w.now_ms()).await.unwrap();
    }
    // The grace period (60 s from the rotation) ends.
    w.advance(60);
    let now = w.now_s();
    let old = mint_user_token(&key_a, SECRET_A, &alice(), now, now + 600, None);
    assert_eq!(code(w.tokens.verify(&old, w.now_ms()).await), "bad_signature");
}

#[tokio::test]
async fn a_full_credential_cache_still_serves_every_app() {
    let w = World::new().await;
    let cache = Arc::new(CredentialCache::with_limits(
        w.store.clone(),
        w.secret_box.clone(),
        5_000,
        1,
    ));
    let clock = w.now.clone();
    let verifier = RequestVerifier::with_cache(cache, Arc::new(MemoryNonceStore::new()))
        .with_clock(move || clock.load(Ordering::SeqCst));
    for i in 0..6 {
        let (key, secret) = if i % 2 == 0 {
            (KEY_A, SECRET_A)
        } else {
            (KEY_B, SECRET_B)
        };
        let app = verifier
            .verify(Req::signed(key, secret, T0, &nonce(i)).as_signed())
            .await
            .unwrap();
        assert_eq!(app.app_key.as_str(), key);
        let forged = Req::signed(key, SECRET_A.replace('7', "8").as_str(), T0, &nonce(100 + i));
        assert_eq!(code(verifier.verify(forged.as_signed()).await), "bad_signature");
    }
}

#[tokio::test]
async fn a_request_signed_at_the_window_edge_is_never_accepted_twice() {
    let w = World::new().await;
    // Signed 300 s ahead of the clock, the window's far edge: it passes the window until
    // the clock reaches ts + 301 s, so its nonce must be kept that long, not only 600 s.
    let r = Req::signed(KEY_A, SECRET_A, T0 + 300, &nonce(1));
    w.verify(&r).await.unwrap();
    for (offset_ms, expected) in [
        (1_000, "nonce_reused"),
        (600_000, "nonce_reused"),
        (600_100, "nonce_reused"),
        (600_999, "nonce_reused"),
        (601_000, "timestamp_out_of_window"),
    ] {
        w.now.store(T0 * 1000 + offset_ms, Ordering::SeqCst);
        assert_eq!(code(w.verify(&r).await), expected, "at +{offset_ms} ms");
    }
    // The documented 600 s still holds for a nonce used with a current timestamp.
    w.now.store(T0 * 1000, Ordering::SeqCst);
    let first = Req::signed(KEY_A, SECRET_A, T0, &nonce(2));
    w.verify(&first).await.unwrap();
    w.now.store(T0 * 1000 + 599_999, Ordering::SeqCst);
    let again = Req::signed(KEY_A, SECRET_A, T0 + 599, &nonce(2));
    assert_eq!(code(w.verify(&again).await), "nonce_reused");
    w.now.store(T0 * 1000 + 600_000, Ordering::SeqCst);
    let later = Req::signed(KEY_A, SECRET_A, T0 + 600, &nonce(2));
    w.verify(&later).await.unwrap();
}

#[tokio::test]
async fn a_full_nonce_record_refuses_with_rate_limited_and_spares_other_apps() {
    let w = World::new().await;
    let cache = w.requests.credentials().clone();
    let clock = w.now.clone();
    let requests = RequestVerifier::with_cache(cache, Arc::new(MemoryNonceStore::with_limit(2)))
        .with_clock(move || clock.load(Ordering::SeqCst));
    for n in 1..=2 {
        let r = Req::signed(KEY_A, SECRET_A, T0, &nonce(n));
        requests.verify(r.as_signed()).await.unwrap();
    }
    let third = Req::signed(KEY_A, SECRET_A, T0, &nonce(3));
    let err = requests.verify(third.as_signed()).await.unwrap_err();
    assert_eq!(err.code(), "rate_limited");
    assert_eq!(err.http_status(), 429);
    // A replay of a kept nonce is still a replay, and app B has its own record.
    let replay = Req::signed(KEY_A, SECRET_A, T0, &nonce(1));
    assert_eq!(code(requests.verify(replay.as_signed()).await), "nonce_reused");
    let other = Req::signed(KEY_B, SECRET_B, T0, &nonce(3));
    requests.verify(other.as_signed()).await.unwrap();
    // When the first nonces expire, app A is served again.
    w.advance(601);
    let later = Req::signed(KEY_A, SECRET_A, w.now_s(), &nonce(3));
    requests.verify(later.as_signed()).await.unwrap();
}

#[tokio::test]
async fn tokens_with_times_at_the_integer_extremes_are_refused() {
    let w = World::new().await;
    let key_a = AppKey::parse(KEY_A).unwrap();
    let (min, max) = (i64::MIN, i64::MAX);
    // exp - iat wraps to -1 without checked arithmetic: a token that never expires.
    let user_claims = [
        format!(r#"{{"iss":"{KEY_A}","sub":"alice","iat":{min},"exp":{max}}}"#),
        format!(r#"{{"iss":"{KEY_A}","sub":"alice","iat":{},"exp":{max}}}"#, T0),
        format!(r#"{{"iss":"{KEY_A}","sub":"alice","iat":{min},"exp":{}}}"#, T0 + 60),
        format!(r#"{{"iss":"{KEY_A}","sub":"alice","iat":0,"exp":{}}}"#, T0 + 60),
        format!(r#"{{"iss":"{KEY_A}","sub":"alice","iat":{},"exp":4102444801}}"#, T0),
        format!(
            r#"{{"iss":"{KEY_A}","sub":"alice","iat":{},"exp":{},"nbf":{min}}}"#,
            T0,
            T0 + 60
        ),
    ];
    for claims in &user_claims {
        let err = w
            .tokens
            .verify(&forge_token(claims, SECRET_A), w.now_ms())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "token_invalid", "{claims}");
    }
    for (iat, exp) in [(min, max), (T0, max), (min, T0 + 60), (0, T0 + 60)] {
        let token = mint_server_token(&key_a, SECRET_A, iat, exp);
        assert_eq!(
            code(w.verify(&Req::bearer(&token)).await),
            "token_invalid",
            "{iat}..{exp}"
        );
    }
}
