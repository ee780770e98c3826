//! App settings changed while sessions are open apply to those sessions: a session does
//! not keep the settings it logged in with. (Through `PATCH /v1/app/settings` on a real
//! `tern serve`: tests/doors.rs.) On SQLite, and on PostgreSQL when `TERN_TEST_DATABASE_URL`
//! is set.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{json, Value};
use support::*;
use tern_platform::domain::AppSettings;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use futures::{SinkExt, StreamExt};

type Raw = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw(url: &str, token: &str) -> Raw {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "tern.v1.json".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let auth = json!({"id": "a", "auth": {"token": token, "device_id": "d1", "platform": "PLATFORM_IOS"}});
    ws.send(WsMessage::text(auth.to_string())).await.unwrap();
    assert!(answer(&mut ws, "a").await.get("auth_ok").is_some());
    ws
}

/// The answer to frame `id` (pushes in between are skipped).
async fn answer(ws: &mut Raw, id: &str) -> Value {
    loop {
        let m = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("an answer in time")
            .expect("the connection stays open")
            .unwrap();
        if let WsMessage::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["id"] == id {
                return v;
            }
        }
    }
}

async fn send_text(ws: &mut Raw, id: &str, to: &str, text: &str) -> Value {
    let f = json!({"id": id, "send": {"client_msg_id": id, "user": to, "type": "text", "content": {"text": text}}});
    ws.send(WsMessage::text(f.to_string())).await.unwrap();
    answer(ws, id).await
}

/// Sends with fresh ids until an answer carries an error code; returns that code and how
/// many sends were accepted before it. Fails if none comes within the test's patience.
async fn until_refused(ws: &mut Raw, to: &str, text: &str) -> (String, usize) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut accepted = 0;
    let mut i = 0;
    loop {
        i += 1;
        let a = send_text(ws, &format!("try-{i}"), to, text).await;
        if let Some(code) = a["error"]["code"].as_str() {
            return (code.to_owned(), accepted);
        }
        assert!(a.get("send_ack").is_some(), "{a}");
        accepted += 1;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new setting never reached the open session"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_lower_text_limit_reaches_a_session_opened_before_it() {
    for (store, env) in Env::all().await {
        eprintln!("on {store}");
        lower_text_limit(env).await;
    }
}

async fn lower_text_limit(env: Env) {
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "bob"]).await;
    let server = env.start(None).await;
    let mut ws = raw(&server.url, &app.token("alice")).await;
    let long = "x".repeat(2_000);
    let first = send_text(&mut ws, "before", "bob", &long).await;
    assert!(first.get("send_ack").is_some(), "{first}");

    let settings = AppSettings {
        max_text_bytes: 1_000,
        ..app.app.settings.clone()
    };
    server.store.update_app_settings(&app.app.id, &settings).await.unwrap();
    let (code, _) = until_refused(&mut ws, "bob", &long).await;
    assert_eq!(code, "content_too_large");
    // The same session still sends what the new limit allows.
    let short = send_text(&mut ws, "short", "bob", "fits").await;
    assert!(short.get("send_ack").is_some(), "{short}");
    server.stop().await;
}

#[tokio::test]
async fn a_lower_send_rate_reaches_a_session_opened_before_it() {
    for (store, env) in Env::all().await {
        eprintln!("on {store}");
        lower_send_rate(env).await;
    }
}

async fn lower_send_rate(env: Env) {
    let app = env.app(|s| s.user_send_rate_per_second = 100_000).await;
    app.users(&env, &["alice", "bob"]).await;
    let server = env.start(None).await;
    let mut ws = raw(&server.url, &app.token("alice")).await;
    for i in 0..10 {
        let a = send_text(&mut ws, &format!("fast-{i}"), "bob", "hi").await;
        assert!(a.get("send_ack").is_some(), "{a}");
    }
    let settings = AppSettings {
        user_send_rate_per_second: 1,
        ..app.app.settings.clone()
    };
    server.store.update_app_settings(&app.app.id, &settings).await.unwrap();
    // Sends 20 a second: past one a second, the new limit refuses.
    let (code, _) = until_refused(&mut ws, "bob", "hi").await;
    assert_eq!(code, "rate_limited");
    server.stop().await;
}

#[tokio::test]
async fn a_setting_of_one_app_does_not_reach_another_apps_sessions() {
    for (store, env) in Env::all().await {
        eprintln!("on {store}");
        other_app_unchanged(env).await;
    }
}

async fn other_app_unchanged(env: Env) {
    let changed = env.app(|_| {}).await;
    let other = env.app(|_| {}).await;
    changed.users(&env, &["alice", "bob"]).await;
    other.users(&env, &["alice", "bob"]).await;
    let server = env.start(None).await;
    let mut changed_ws = raw(&server.url, &changed.token("alice")).await;
    let mut other_ws = raw(&server.url, &other.token("alice")).await;
    let long = "x".repeat(2_000);
    let settings = AppSettings {
        max_text_bytes: 1_000,
        ..changed.app.settings.clone()
    };
    server
        .store
        .update_app_settings(&changed.app.id, &settings)
        .await
        .unwrap();
    let (code, _) = until_refused(&mut changed_ws, "bob", &long).await;
    assert_eq!(code, "content_too_large");
    // By now the changed app's sessions see the change; the other app's still send.
    let a = send_text(&mut other_ws, "other", "bob", &long).await;
    assert!(a.get("send_ack").is_some(), "{a}");
    server.stop().await;
}
