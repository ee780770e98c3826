//! Offline push through the REST server API, on SQLite and (when configured) PostgreSQL:
//! devices, APNs and FCM credentials (validated, sealed, never shown back), app isolation
//! and bad input.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use serde_json::{json, Value};
use support::*;
use tern_platform::push::test_keys;
use tern_sdk::server::ServerClient;

const TOKEN_A: &str = "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90";
const TOKEN_B: &str = "0000000000000000000000000000000000000000000000000000000000000001";

fn apns_body(key: &str) -> Value {
    json!({"key_id": "ABC123DEFG", "team_id": "TEAM123456", "bundle_id": "com.example.chat", "private_key": key})
}

async fn devices_are_registered_moved_changed_and_removed(s: TestServer) {
    let a = s.app("push-a").await;
    let b = s.app("push-b").await;
    let c = &a.client;
    users(c, &["alice", "bob"]).await;
    users(&b.client, &["alice"]).await;

    let phone = call(
        c,
        "POST",
        "/v1/users/alice/devices",
        Some(json!({"provider": "apns", "token": TOKEN_A, "environment": "sandbox", "locale": "en-US"})),
    )
    .await;
    let id = phone["device_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("dev_"));
    assert_eq!(
        phone["token"],
        TOKEN_A.to_ascii_lowercase(),
        "APNs tokens are kept in lowercase"
    );
    assert_eq!(
        (phone["environment"].as_str(), phone["locale"].as_str()),
        (Some("sandbox"), Some("en-US"))
    );
    let tablet = call(
        c,
        "POST",
        "/v1/users/alice/devices",
        Some(json!({"provider": "fcm", "token": "fcm-token:abc_123"})),
    )
    .await;
    assert_eq!(tablet["environment"], "production");
    let list = call(c, "GET", "/v1/users/alice/devices", None).await;
    assert_eq!(list["devices"].as_array().unwrap().len(), 2);

    // The phone changes hands: the same token registered by bob keeps its id and is bob's.
    let moved = call(
        c,
        "POST",
        "/v1/users/bob/devices",
        Some(json!({"provider": "apns", "token": TOKEN_A})),
    )
    .await;
    assert_eq!(
        (moved["device_id"].as_str(), moved["user_id"].as_str()),
        (Some(id.as_str()), Some("bob"))
    );
    assert_eq!(
        call(c, "GET", "/v1/users/alice/devices", None).await["devices"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A rotated token; the locale cleared.
    let path = format!("/v1/users/bob/devices/{id}");
    let changed = call(c, "PATCH", &path, Some(json!({"token": TOKEN_B, "locale": ""}))).await;
    assert_eq!(
        (changed["token"].as_str(), changed["locale"].as_str()),
        (Some(TOKEN_B), None)
    );
    // Only bob's own device, only in this app.
    assert_eq!(
        fails(
            c,
            "PATCH",
            &format!("/v1/users/alice/devices/{id}"),
            Some(json!({"locale": "fr"}))
        )
        .await,
        "not_found"
    );
    assert_eq!(fails(&b.client, "DELETE", &path, None).await, "not_found");
    assert_eq!(
        fails(&b.client, "GET", "/v1/users/bob/devices", None).await,
        "not_found"
    );
    assert!(call(&b.client, "GET", "/v1/users/alice/devices", None).await["devices"]
        .as_array()
        .unwrap()
        .is_empty());

    assert_eq!(call(c, "DELETE", &path, None).await["ok"], true);
    assert_eq!(fails(c, "DELETE", &path, None).await, "not_found");
    assert!(call(c, "GET", "/v1/users/bob/devices", None).await["devices"]
        .as_array()
        .unwrap()
        .is_empty());
}
on_every_store!(devices_through_rest, devices_are_registered_moved_changed_and_removed);

async fn bad_device_input_gets_stable_codes(s: TestServer) {
    let a = s.app("push-bad").await;
    let c = &a.client;
    users(c, &["alice"]).await;
    let register = |body: Value| async move { fails(c, "POST", "/v1/users/alice/devices", Some(body)).await };
    assert_eq!(
        register(json!({"provider": "huawei", "token": TOKEN_A})).await,
        "invalid_argument"
    );
    assert_eq!(
        register(json!({"provider": "apns", "token": "not-hex"})).await,
        "invalid_argument"
    );
    assert_eq!(
        register(json!({"provider": "apns", "token": "ab"})).await,
        "invalid_argument"
    );
    assert_eq!(
        register(json!({"provider": "fcm", "token": "has space"})).await,
        "invalid_argument"
    );
    assert_eq!(
        register(json!({"provider": "fcm", "token": "x".repeat(5000)})).await,
        "invalid_argument"
    );
    assert_eq!(
        register(json!({"provider": "fcm", "token": "t", "bundle_id": "com.x"})).await,
        "invalid_argument"
    );
    assert_eq!(
        register(json!({"provider": "apns", "token": TOKEN_A, "environment": "staging"})).await,
        "invalid_argument"
    );
    assert_eq!(
        register(json!({"provider": "apns", "token": TOKEN_A, "locale": "en US"})).await,
        "invalid_argument"
    );
    assert_eq!(
        register(json!({"provider": "apns", "token": TOKEN_A, "colour": "red"})).await,
        "invalid_json"
    );
    assert_eq!(register(json!({"provider": "fcm"})).await, "invalid_json");
    assert_eq!(
        fails(
            c,
            "POST",
            "/v1/users/nobody/devices",
            Some(json!({"provider": "fcm", "token": "t"}))
        )
        .await,
        "not_found"
    );
    assert_eq!(
        fails(
            c,
            "POST",
            "/v1/users/bad%20id/devices",
            Some(json!({"provider": "fcm", "token": "t"}))
        )
        .await,
        "invalid_argument"
    );
    assert_eq!(
        fails(c, "DELETE", "/v1/users/alice/devices/dev_nope", None).await,
        "invalid_argument"
    );
    assert_eq!(
        fails(
            c,
            "POST",
            "/v1/users/alice/devices",
            Some(json!({"provider": "fcm", "token": "x".repeat(300 * 1024)}))
        )
        .await,
        "payload_too_large"
    );
    // Unsigned: refused before anything is read.
    let r = s
        .http()
        .post(format!("{}/v1/users/alice/devices", s.base))
        .json(&json!({"provider": "fcm", "token": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A token already another device's cannot be patched onto a second device.
    let one = call(
        c,
        "POST",
        "/v1/users/alice/devices",
        Some(json!({"provider": "fcm", "token": "one"})),
    )
    .await;
    call(
        c,
        "POST",
        "/v1/users/alice/devices",
        Some(json!({"provider": "fcm", "token": "two"})),
    )
    .await;
    let path = format!("/v1/users/alice/devices/{}", one["device_id"].as_str().unwrap());
    assert_eq!(
        fails(c, "PATCH", &path, Some(json!({"token": "two"}))).await,
        "conflict"
    );
    assert_eq!(
        fails(c, "PATCH", &path, Some(json!({"token": "a b"}))).await,
        "invalid_argument"
    );
}
on_every_store!(bad_device_input, bad_device_input_gets_stable_codes);

async fn credentials_are_validated_sealed_and_never_shown(s: TestServer) {
    let a = s.app("creds-a").await;
    let b = s.app("creds-b").await;
    let c = &a.client;
    let (p8, _) = test_keys::p256();

    let set = call(c, "PUT", "/v1/push/credentials/apns", Some(apns_body(&p8))).await;
    assert_eq!(set["provider"], "apns");
    assert_eq!(
        set["summary"],
        json!({"key_id": "ABC123DEFG", "team_id": "TEAM123456", "bundle_id": "com.example.chat"})
    );
    let sa = test_keys::service_account("demo-project", "push@demo-project.iam.gserviceaccount.com");
    let fcm = call(
        c,
        "PUT",
        "/v1/push/credentials/fcm",
        Some(json!({"service_account": sa})),
    )
    .await;
    assert_eq!(fcm["summary"]["project_id"], "demo-project");
    // The JSON file's text works as well as the object.
    call(
        c,
        "PUT",
        "/v1/push/credentials/fcm",
        Some(json!({"service_account": sa.to_string()})),
    )
    .await;

    let listed = call(c, "GET", "/v1/push/credentials", None).await;
    let text = listed.to_string();
    assert_eq!(listed["credentials"].as_array().unwrap().len(), 2);
    assert!(!text.contains("PRIVATE KEY"), "keys are never shown: {text}");
    // At rest: only ciphertext.
    for r in s.store.push_credentials(&a.app.id).await.unwrap() {
        let raw = String::from_utf8_lossy(&r.ciphertext);
        assert!(
            !raw.contains("PRIVATE KEY") && !raw.contains("BEGIN"),
            "{:?} stored in clear",
            r.provider
        );
    }
    // Another app sees none of them and cannot remove them.
    assert!(
        call(&b.client, "GET", "/v1/push/credentials", None).await["credentials"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        fails(&b.client, "DELETE", "/v1/push/credentials/apns", None).await,
        "not_found"
    );

    // Malformed credentials: refused, with the field named, and nothing replaced.
    for (body, needle) in [
        (apns_body("not a key"), "private_key"),
        (apns_body(test_keys::RSA_PEM), "P-256"),
        (
            json!({"key_id": "short", "team_id": "TEAM123456", "bundle_id": "com.example.chat", "private_key": p8}),
            "key_id",
        ),
    ] {
        let e = c
            .request::<Value>("PUT", "/v1/push/credentials/apns", Some(&body))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("invalid_push_credentials"));
        assert!(format!("{e:?}").contains(needle), "{e:?} should name {needle}");
    }
    let mut wrong = sa.clone();
    wrong["private_key"] = json!(p8);
    assert_eq!(
        fails(
            c,
            "PUT",
            "/v1/push/credentials/fcm",
            Some(json!({"service_account": wrong}))
        )
        .await,
        "invalid_push_credentials"
    );
    assert_eq!(
        fails(
            c,
            "PUT",
            "/v1/push/credentials/fcm",
            Some(json!({"service_account": "{not json"}))
        )
        .await,
        "invalid_push_credentials"
    );
    assert_eq!(
        fails(
            c,
            "PUT",
            "/v1/push/credentials/apns",
            Some(json!({"key_id": "ABC123DEFG"}))
        )
        .await,
        "invalid_json"
    );
    let still = call(c, "GET", "/v1/push/credentials", None).await;
    assert_eq!(still["credentials"][0]["summary"]["key_id"], "ABC123DEFG");

    // A test push to a device whose provider has no credentials.
    users(c, &["erin"]).await;
    let d = call(
        c,
        "POST",
        "/v1/users/erin/devices",
        Some(json!({"provider": "fcm", "token": "erin-1"})),
    )
    .await;
    call(c, "DELETE", "/v1/push/credentials/fcm", None).await;
    let path = format!("/v1/users/erin/devices/{}/test-push", d["device_id"].as_str().unwrap());
    assert_eq!(fails(c, "POST", &path, None).await, "push_not_configured");
    assert_eq!(fails(&b.client, "POST", &path, None).await, "not_found");
    call(
        c,
        "PUT",
        "/v1/push/credentials/fcm",
        Some(json!({"service_account": sa})),
    )
    .await;

    assert_eq!(
        fails(c, "DELETE", "/v1/push/credentials/huawei", None).await,
        "invalid_argument"
    );
    assert_eq!(call(c, "DELETE", "/v1/push/credentials/apns", None).await["ok"], true);
    assert_eq!(fails(c, "DELETE", "/v1/push/credentials/apns", None).await, "not_found");
    let left = call(c, "GET", "/v1/push/credentials", None).await;
    assert_eq!(left["credentials"][0]["provider"], "fcm");
}
on_every_store!(
    credentials_through_rest,
    credentials_are_validated_sealed_and_never_shown
);

// ---- end to end: messages to offline users reach the provider double ----------------

use std::time::Duration;
use tern_platform::domain::{PushLogFilter, PushOutcome};
use tern_platform::ids::UserId;
use tern_platform::push::double::{DoubleAnswer, ProviderDouble};
use tern_platform::push::worker::PushWorkerConfig;

const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "TEAM123456";
const WAIT: Duration = Duration::from_secs(15);

/// A server whose push worker sends to the double, quickly (short polls and backoff), and
/// an app with APNs and FCM credentials the double trusts.
async fn pushing_server(
    store: std::sync::Arc<dyn tern_platform::store::Store>,
    dir: Option<tempfile::TempDir>,
) -> (TestServer, TestApp, ProviderDouble) {
    let (s, a, double, p8) = server_with_double(store, dir).await;
    set_credentials(&a.client, &p8).await;
    (s, a, double)
}

/// A server whose push worker sends to the double, and an app with no credentials yet; the
/// APNs key the double trusts, for `set_credentials`.
async fn server_with_double(
    store: std::sync::Arc<dyn tern_platform::store::Store>,
    dir: Option<tempfile::TempDir>,
) -> (TestServer, TestApp, ProviderDouble, String) {
    let double = ProviderDouble::start().await.unwrap();
    let (p8, public) = test_keys::p256();
    double.trust_apns_key(KEY_ID, TEAM_ID, &public);
    let config = EngineConfig {
        push: double.push_config(),
        push_worker: PushWorkerConfig {
            poll_interval: Duration::from_millis(50),
            backoff_base: Duration::from_millis(40),
            ..PushWorkerConfig::default()
        },
        ..EngineConfig::default()
    };
    let s = TestServer::start_with(store, dir, config).await;
    let a = s.app("pushing").await;
    (s, a, double, p8)
}

/// Gives the app APNs (with the key `p8`) and FCM credentials.
async fn set_credentials(c: &ServerClient, p8: &str) {
    call(c, "PUT", "/v1/push/credentials/apns", Some(apns_body(p8))).await;
    let sa = test_keys::service_account("demo-project", "push@demo-project.iam.gserviceaccount.com");
    call(
        c,
        "PUT",
        "/v1/push/credentials/fcm",
        Some(json!({"service_account": sa})),
    )
    .await;
}

async fn send(c: &ServerClient, from: &str, to: Value, text: &str, key: &str) -> Value {
    call(
        c,
        "POST",
        "/v1/messages",
        Some(json!({"from": from, "to": to, "client_msg_id": key, "type": "text", "content": {"text": text}})),
    )
    .await
}

async fn log_of(s: &TestServer, a: &TestApp, user: &str, want: usize) -> Vec<tern_platform::domain::PushLogEntry> {
    let filter = PushLogFilter {
        user_id: Some(UserId::parse(user).unwrap()),
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = s.store.push_log(&a.app.id, &filter, 100).await.unwrap();
        if log.len() >= want || tokio::time::Instant::now() >= deadline {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn offline_users_get_pushes_to_every_device(
    store: std::sync::Arc<dyn tern_platform::store::Store>,
    dir: Option<tempfile::TempDir>,
) {
    let (s, a, double) = pushing_server(store, dir).await;
    let c = &a.client;
    c.upsert_users(&[
        json!({"id": "alice", "name": "Alice"}),
        json!({"id": "bob"}),
        json!({"id": "carol"}),
    ])
    .await
    .unwrap();
    call(
        c,
        "POST",
        "/v1/users/bob/devices",
        Some(json!({"provider": "apns", "token": TOKEN_A, "environment": "sandbox"})),
    )
    .await;
    call(
        c,
        "POST",
        "/v1/users/bob/devices",
        Some(json!({"provider": "fcm", "token": "bob-android:1"})),
    )
    .await;

    let sent = send(c, "alice", json!({"user": "bob"}), "hello bob", "m1").await;
    // The same send retried: one message, so still one push per device.
    send(c, "alice", json!({"user": "bob"}), "hello bob", "m1").await;
    let got = double.wait_for(2, WAIT).await;
    assert_eq!(got.len(), 2, "one push per device: {got:?}");

    let apns = got
        .iter()
        .find(|r| r.provider == tern_platform::domain::PushProvider::Apns)
        .unwrap();
    assert_eq!((apns.status, apns.http2), (200, true), "accepted over HTTP/2: {apns:?}");
    assert_eq!(apns.token, TOKEN_A.to_ascii_lowercase());
    assert_eq!(apns.headers["apns-topic"], "com.example.chat");
    assert_eq!(apns.headers["apns-push-type"], "alert");
    assert_eq!(apns.headers["apns-priority"], "10");
    assert_eq!(apns.headers["apns-collapse-id"], "d:alice:bob");
    assert!(apns.headers["authorization"].starts_with("bearer "));
    assert_eq!(
        apns.body["aps"]["alert"],
        json!({"title": "Alice", "body": "hello bob"})
    );
    assert_eq!(apns.body["msg_id"], sent["msg_id"]);
    assert_eq!(apns.body["conversation_id"], "d:alice:bob");

    let fcm = got
        .iter()
        .find(|r| r.provider == tern_platform::domain::PushProvider::Fcm)
        .unwrap();
    assert_eq!(fcm.status, 200, "{fcm:?}");
    assert_eq!(fcm.body["message"]["token"], "bob-android:1");
    assert_eq!(
        fcm.body["message"]["notification"],
        json!({"title": "Alice", "body": "hello bob"})
    );
    assert_eq!(fcm.body["message"]["android"]["collapse_key"], "d:alice:bob");
    assert_eq!(fcm.body["message"]["data"]["msg_id"], sent["msg_id"]);
    assert_eq!(double.token_exchanges(), 1);

    let log = log_of(&s, &a, "bob", 2).await;
    assert_eq!(log.len(), 2);
    assert!(log
        .iter()
        .all(|l| l.outcome == PushOutcome::Sent && l.http_status == 200 && l.attempt == 1));
    assert!(log
        .iter()
        .all(|l| l.msg_id.as_ref().map(|m| m.as_str()) == sent["msg_id"].as_str()));

    // The log through the API: bob's two pushes, newest first, paged.
    let page = call(c, "GET", "/v1/push/log?user_id=bob&limit=1", None).await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    assert_eq!(page["entries"][0]["outcome"], "sent");
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = call(c, "GET", &format!("/v1/push/log?user_id=bob&cursor={cursor}"), None).await;
    assert_eq!(rest["entries"].as_array().unwrap().len(), 1);
    let by_msg = call(
        c,
        "GET",
        &format!("/v1/push/log?msg_id={}", sent["msg_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(by_msg["entries"].as_array().unwrap().len(), 2);
    assert_eq!(
        fails(c, "GET", "/v1/push/log?user_id=bad%20id", None).await,
        "invalid_argument"
    );
    assert_eq!(
        fails(c, "GET", "/v1/push/log?colour=red", None).await,
        "invalid_argument"
    );

    // A test push answers with the provider's verdict and is logged without a message.
    let devices = call(c, "GET", "/v1/users/bob/devices", None).await;
    let phone = devices["devices"][0]["device_id"].as_str().unwrap().to_owned();
    let test = call(c, "POST", &format!("/v1/users/bob/devices/{phone}/test-push"), None).await;
    assert_eq!(
        (test["outcome"].as_str(), test["http_status"].as_u64()),
        (Some("sent"), Some(200))
    );
    assert!(test["msg_id"].is_null());
    let got = double.wait_for(3, WAIT).await;
    assert_eq!(got[2].body["aps"]["alert"]["title"], "Test push");

    // Online now (a session on some node): no push; the sender is never pushed.
    let bob = UserId::parse("bob").unwrap();
    s.pipeline
        .presence()
        .session_opened(&a.app.id, &bob, "node-x", 7, "ios-1", "ios")
        .await
        .unwrap();
    send(c, "alice", json!({"user": "bob"}), "you are online", "m2").await;
    // A later push to an offline user proves the worker went past m2.
    call(
        c,
        "POST",
        "/v1/users/carol/devices",
        Some(json!({"provider": "fcm", "token": "carol-1"})),
    )
    .await;
    send(c, "alice", json!({"user": "carol"}), "hi carol", "m3").await;
    let got = double.wait_for(4, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_now = double.received();
    assert_eq!(got_now.len(), 4, "nothing for online bob: {got_now:?}");
    assert_eq!(got[3].token, "carol-1");
    assert_eq!(
        double.token_exchanges(),
        1,
        "the access token is reused until it expires"
    );
}

async fn dead_tokens_are_removed_and_retries_send_once(
    store: std::sync::Arc<dyn tern_platform::store::Store>,
    dir: Option<tempfile::TempDir>,
) {
    let (s, a, double) = pushing_server(store, dir).await;
    let c = &a.client;
    users(c, &["alice", "bob", "carol", "dave"]).await;
    double.script(
        &TOKEN_B.to_ascii_lowercase(),
        vec![DoubleAnswer::reject(400, "BadDeviceToken")],
    );
    double.script("carol-gone", vec![DoubleAnswer::reject(404, "UNREGISTERED")]);
    double.script(
        "dave-busy",
        vec![
            DoubleAnswer::reject(503, "UNAVAILABLE"),
            DoubleAnswer::reject(429, "QUOTA_EXCEEDED"),
        ],
    );
    call(
        c,
        "POST",
        "/v1/users/bob/devices",
        Some(json!({"provider": "apns", "token": TOKEN_B})),
    )
    .await;
    call(
        c,
        "POST",
        "/v1/users/carol/devices",
        Some(json!({"provider": "fcm", "token": "carol-gone"})),
    )
    .await;
    call(
        c,
        "POST",
        "/v1/users/dave/devices",
        Some(json!({"provider": "fcm", "token": "dave-busy"})),
    )
    .await;

    send(c, "alice", json!({"user": "bob"}), "1", "k1").await;
    send(c, "alice", json!({"user": "carol"}), "2", "k2").await;
    send(c, "alice", json!({"user": "dave"}), "3", "k3").await;

    let bob = log_of(&s, &a, "bob", 1).await;
    assert_eq!(bob.len(), 1);
    assert_eq!(
        (bob[0].outcome, bob[0].http_status, bob[0].reason.as_deref()),
        (PushOutcome::TokenRemoved, 400, Some("BadDeviceToken"))
    );
    let carol = log_of(&s, &a, "carol", 1).await;
    assert_eq!(
        (carol[0].outcome, carol[0].http_status, carol[0].reason.as_deref()),
        (PushOutcome::TokenRemoved, 404, Some("UNREGISTERED"))
    );
    for u in ["bob", "carol"] {
        let devices = call(c, "GET", &format!("/v1/users/{u}/devices"), None).await;
        assert!(
            devices["devices"].as_array().unwrap().is_empty(),
            "{u}'s dead token is removed"
        );
    }
    // 503, then 429, then accepted: three attempts, one delivery.
    let dave = log_of(&s, &a, "dave", 3).await;
    let outcomes: Vec<(PushOutcome, u16, i32)> = dave
        .iter()
        .rev()
        .map(|l| (l.outcome, l.http_status, l.attempt))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (PushOutcome::Retrying, 503, 1),
            (PushOutcome::Retrying, 429, 2),
            (PushOutcome::Sent, 200, 3)
        ]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let accepted = double
        .received()
        .iter()
        .filter(|r| r.token == "dave-busy" && r.status == 200)
        .count();
    assert_eq!(accepted, 1, "delivered exactly once");

    // A message after the removal pushes nothing to the removed devices.
    let before = double.received().len();
    send(c, "alice", json!({"user": "bob"}), "4", "k4").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(double.received().len(), before);
}

async fn group_members_offline_are_pushed_and_apps_stay_apart(
    store: std::sync::Arc<dyn tern_platform::store::Store>,
    dir: Option<tempfile::TempDir>,
) {
    let (s, a, double) = pushing_server(store, dir).await;
    let c = &a.client;
    users(c, &["alice", "bob", "carol"]).await;
    call(
        c,
        "POST",
        "/v1/users/bob/devices",
        Some(json!({"provider": "fcm", "token": "bob-1"})),
    )
    .await;
    call(
        c,
        "POST",
        "/v1/users/alice/devices",
        Some(json!({"provider": "fcm", "token": "alice-1"})),
    )
    .await;
    c.create_group_with(&json!({"id": "g1", "name": "Climbers", "owner": "alice", "members": ["bob", "carol"]}))
        .await
        .unwrap();
    // Another app without credentials, with the same user and token: never pushed.
    let other = s.app("quiet").await;
    users(&other.client, &["alice", "bob"]).await;
    call(
        &other.client,
        "POST",
        "/v1/users/bob/devices",
        Some(json!({"provider": "fcm", "token": "bob-1"})),
    )
    .await;
    send(
        &other.client,
        "alice",
        json!({"user": "bob"}),
        "from the other app",
        "o1",
    )
    .await;

    send(c, "alice", json!({"group": "g1"}), "summit at 6", "g-1").await;
    let got = double.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_now = double.received();
    assert_eq!(
        got_now.len(),
        1,
        "only bob: the sender and the app without credentials get none: {got:?}"
    );
    assert_eq!(got_now[0].token, "bob-1");
    assert_eq!(
        got_now[0].body["message"]["notification"],
        json!({"title": "Climbers", "body": "alice: summit at 6"})
    );
    assert_eq!(got_now[0].body["message"]["android"]["collapse_key"], "g:g1");
    assert!(s
        .store
        .push_log(&other.app.id, &PushLogFilter::default(), 10)
        .await
        .unwrap()
        .is_empty());
}

/// Do-not-disturb hours around the current UTC minute, in the user's offset `offset`:
/// `inside` picks a window containing now, otherwise one that does not.
fn dnd_around_now(inside: bool, offset: i64) -> Value {
    let now_min = (tern_platform::domain::now_ms() / 60_000 + offset).rem_euclid(1440);
    let (start, end) = if inside {
        (now_min - 30, now_min + 60)
    } else {
        (now_min + 60, now_min + 120)
    };
    let clock = |m: i64| format!("{:02}:{:02}", m.rem_euclid(1440) / 60, m.rem_euclid(1440) % 60);
    json!({"start": clock(start), "end": clock(end), "utc_offset_minutes": offset})
}

async fn mute_dnd_mentions_templates_and_badges_decide_the_push(
    store: std::sync::Arc<dyn tern_platform::store::Store>,
    dir: Option<tempfile::TempDir>,
) {
    let (s, a, double) = pushing_server(store, dir).await;
    let c = &a.client;
    c.upsert_users(&[
        json!({"id": "alice", "name": "Alice"}),
        json!({"id": "bob"}),
        json!({"id": "carol"}),
        json!({"id": "dave"}),
    ])
    .await
    .unwrap();
    for u in ["bob", "carol", "dave"] {
        call(
            c,
            "POST",
            &format!("/v1/users/{u}/devices"),
            Some(json!({"provider": "fcm", "token": format!("{u}-phone")})),
        )
        .await;
    }

    // The settings API: defaults, then bad input changes nothing.
    let none = call(c, "GET", "/v1/users/bob/push-settings", None).await;
    assert_eq!(none, json!({"dnd": null, "muted_conversations": []}));
    for (body, why) in [
        (json!({"dnd": {"start": "25:00", "end": "07:00"}}), "hour out of range"),
        (json!({"dnd": {"start": "22:00", "end": "22:00"}}), "empty window"),
        (
            json!({"dnd": {"start": "22:00", "end": "07:00", "utc_offset_minutes": 900}}),
            "offset",
        ),
        (json!({"mute": ["r:lobby"]}), "a room"),
        (json!({"mute": ["d:alice:carol"]}), "someone else's chat"),
        (json!({"mute": ["not a conversation"]}), "bad id"),
        (
            json!({"mute": (0..101).map(|i| format!("g:g{i}")).collect::<Vec<_>>()}),
            "too many",
        ),
    ] {
        assert_eq!(
            fails(c, "PATCH", "/v1/users/bob/push-settings", Some(body)).await,
            "invalid_argument",
            "{why}"
        );
    }
    assert_eq!(
        fails(
            c,
            "PATCH",
            "/v1/users/bob/push-settings",
            Some(json!({"mute": ["g:g1"], "colour": "red"}))
        )
        .await,
        "invalid_json"
    );
    assert_eq!(call(c, "GET", "/v1/users/bob/push-settings", None).await, none);
    assert_eq!(
        fails(c, "GET", "/v1/users/nobody/push-settings", None).await,
        "not_found"
    );
    assert_eq!(
        fails(
            c,
            "PATCH",
            "/v1/users/nobody/push-settings",
            Some(json!({"mute": ["g:g1"]}))
        )
        .await,
        "not_found"
    );
    let bad_template = json!({"push": {"templates": {"text": {"body": "{name} wrote"}}}});
    assert_eq!(
        fails(c, "PATCH", "/v1/app/settings", Some(bad_template)).await,
        "invalid_argument"
    );

    // bob mutes alice; carol is in her do-not-disturb hours (in UTC+5:30); dave's hours
    // are later today. Live delivery is not affected: only pushes are.
    let muted = call(
        c,
        "PATCH",
        "/v1/users/bob/push-settings",
        Some(json!({"mute": ["d:alice:bob"]})),
    )
    .await;
    assert_eq!(muted["muted_conversations"], json!(["d:alice:bob"]));
    // Another customer's app never sees or changes this app's settings: its own bob is
    // another user, with his own (default) settings; one it does not have is not found.
    let stranger = s.app_in_new_tenant("elsewhere").await;
    assert_eq!(
        fails(&stranger.client, "GET", "/v1/users/bob/push-settings", None).await,
        "not_found"
    );
    assert_eq!(
        fails(
            &stranger.client,
            "PATCH",
            "/v1/users/bob/push-settings",
            Some(json!({"unmute": ["d:alice:bob"], "dnd": null}))
        )
        .await,
        "not_found"
    );
    users(&stranger.client, &["bob"]).await;
    assert_eq!(
        call(&stranger.client, "GET", "/v1/users/bob/push-settings", None).await,
        none
    );
    call(
        &stranger.client,
        "PATCH",
        "/v1/users/bob/push-settings",
        Some(json!({"mute": ["g:g1"], "unmute": ["d:alice:bob"]})),
    )
    .await;
    assert_eq!(
        call(c, "GET", "/v1/users/bob/push-settings", None).await["muted_conversations"],
        json!(["d:alice:bob"])
    );
    let dnd = call(
        c,
        "PATCH",
        "/v1/users/carol/push-settings",
        Some(json!({"dnd": dnd_around_now(true, 330)})),
    )
    .await;
    assert_eq!(dnd["dnd"]["utc_offset_minutes"], 330);
    call(
        c,
        "PATCH",
        "/v1/users/dave/push-settings",
        Some(json!({"dnd": dnd_around_now(false, -240)})),
    )
    .await;

    send(c, "alice", json!({"user": "bob"}), "muted one", "q1").await;
    send(c, "alice", json!({"user": "carol"}), "while carol sleeps", "q2").await;
    send(c, "alice", json!({"user": "dave"}), "first", "q3").await;
    // One at a time, so each push's badge is known.
    double.wait_for(1, WAIT).await;
    send(c, "alice", json!({"user": "dave"}), "second", "q4").await;
    double.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = double.received();
    assert_eq!(got.len(), 2, "only dave's two: bob muted, carol in DND: {got:?}");
    assert!(got.iter().all(|r| r.token == "dave-phone"));
    // The badge is dave's unread count when each push was made.
    let badges: Vec<Value> = got
        .iter()
        .map(|r| r.body["message"]["apns"]["payload"]["aps"]["badge"].clone())
        .collect();
    assert_eq!(badges, vec![json!(1), json!(2)], "{got:?}");
    let conversations = call(c, "GET", "/v1/users/bob/conversations", None).await;
    assert!(
        conversations.to_string().contains("muted one"),
        "muting silences pushes, not the message: {conversations}"
    );

    // Unmuted, bob's next push carries his two unread messages as the badge.
    call(
        c,
        "PATCH",
        "/v1/users/bob/push-settings",
        Some(json!({"unmute": ["d:alice:bob"]})),
    )
    .await;
    send(c, "alice", json!({"user": "bob"}), "heard now", "q5").await;
    let got = double.wait_for(3, WAIT).await;
    assert_eq!(got[2].token, "bob-phone");
    assert_eq!(got[2].body["message"]["apns"]["payload"]["aps"]["badge"], 2);
    assert_eq!(
        got[2].body["message"]["notification"],
        json!({"title": "Alice", "body": "heard now"})
    );

    // A large group (4 members > 2) is pushed only on @mention; no preview; a template.
    call(
        c,
        "PATCH",
        "/v1/app/settings",
        Some(
            json!({"push": {"show_preview": false, "badge": false, "mention_only_group_size": 2,
            "templates": {"text": {"title": "{group} ({sender})"}}}}),
        ),
    )
    .await;
    c.create_group_with(
        &json!({"id": "g1", "name": "Climbers", "owner": "alice", "members": ["bob", "carol", "dave"]}),
    )
    .await
    .unwrap();
    send(c, "alice", json!({"group": "g1"}), "nobody is mentioned", "q6").await;
    call(
        c,
        "POST",
        "/v1/messages",
        Some(
            json!({"from": "alice", "to": {"group": "g1"}, "client_msg_id": "q7", "type": "text",
            "content": {"text": "@dave the rope"}, "mentions": ["dave"]}),
        ),
    )
    .await;
    let got = double.wait_for(4, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_now = double.received();
    assert_eq!(got_now.len(), 4, "only the mention of dave: {got_now:?}");
    assert_eq!(got[3].token, "dave-phone");
    assert_eq!(
        got[3].body["message"]["notification"],
        json!({"title": "Climbers (Alice)", "body": "Alice: New message"})
    );
    assert!(got[3].body["message"]["apns"]["payload"]["aps"]["badge"].is_null());
}

/// An app without credentials pushes nothing (and its messages cost the push worker
/// nothing); once it sets them the next message is pushed at once, and once it removes
/// them pushes stop again.
async fn pushes_start_and_stop_with_the_credentials(
    store: std::sync::Arc<dyn tern_platform::store::Store>,
    dir: Option<tempfile::TempDir>,
) {
    let (s, a, double, p8) = server_with_double(store, dir).await;
    let c = &a.client;
    c.upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
        .await
        .unwrap();
    call(
        c,
        "POST",
        "/v1/users/bob/devices",
        Some(json!({"provider": "fcm", "token": "bob-android:1"})),
    )
    .await;

    send(c, "alice", json!({"user": "bob"}), "before credentials", "n1").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(double.received().is_empty(), "no credentials, no push");
    assert!(log_of(&s, &a, "bob", 0).await.is_empty(), "and nothing to log");

    set_credentials(c, &p8).await;
    send(c, "alice", json!({"user": "bob"}), "after credentials", "n2").await;
    let got = double.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "pushed as soon as the credentials are set: {got:?}");
    assert_eq!(got[0].body["message"]["notification"]["body"], "after credentials");

    call(c, "DELETE", "/v1/push/credentials/fcm", None).await;
    call(c, "DELETE", "/v1/push/credentials/apns", None).await;
    send(c, "alice", json!({"user": "bob"}), "after removal", "n3").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(double.received().len(), 1, "no push once the credentials are removed");
}

macro_rules! pushing {
    ($name:ident, $body:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for (backend, store, dir) in stores().await {
                eprintln!("{} on {backend}", stringify!($name));
                $body(store, dir).await;
            }
        }
    };
}
pushing!(offline_user_gets_a_push, offline_users_get_pushes_to_every_device);
pushing!(dead_tokens_and_retries, dead_tokens_are_removed_and_retries_send_once);
pushing!(
    group_push_and_isolation,
    group_members_offline_are_pushed_and_apps_stay_apart
);
pushing!(when_to_push, mute_dnd_mentions_templates_and_badges_decide_the_push);
pushing!(
    credentials_turn_pushes_on_and_off,
    pushes_start_and_stop_with_the_credentials
);
