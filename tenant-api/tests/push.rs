//! Offline push through the REST server API, on SQLite and (when configured) PostgreSQL:
//! devices, APNs and FCM credentials (validated, sealed, never shown back), app isolation
//! and bad input.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{json, Value};
use support::*;
use tern_platform::push::test_keys;
use tern_sdk::server::ServerClient;

const TOKEN_A: &str = "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90";
const TOKEN_B: &str = "0000000000000000000000000000000000000000000000000000000000000001";

macro_rules! on_every_store {
    ($name:ident, $body:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for (backend, store, dir) in stores().await {
                eprintln!("{} on {backend}", stringify!($name));
                let config = EngineConfig {
                    run_worker: false,
                    ..EngineConfig::default()
                };
                let server = TestServer::start_with(store, dir, config).await;
                $body(server).await;
            }
        }
    };
}

async fn call(c: &ServerClient, method: &str, path: &str, body: Option<Value>) -> Value {
    c.request::<Value>(method, path, body.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
}

async fn fails(c: &ServerClient, method: &str, path: &str, body: Option<Value>) -> String {
    let e = c
        .request::<Value>(method, path, body.as_ref())
        .await
        .expect_err(&format!("{method} {path} should fail"));
    e.code().unwrap_or("<none>").to_owned()
}

async fn users(c: &ServerClient, ids: &[&str]) {
    let list: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
    c.upsert_users(&list).await.unwrap();
}

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
