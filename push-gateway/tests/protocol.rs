//! The protocol's edges over raw WebSockets: the JSON subprotocol as a developer would
//! type it, every kind of bad frame or bad token (each gets an error code and a close while
//! other sessions carry on), kicks, revocation, the multi-device policy, heartbeats, slow
//! consumers and the connection cap.
#![allow(clippy::unwrap_used)]

mod support;

use futures::{SinkExt, StreamExt};
use prost::Message as _;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tern_platform::bus::Push;
use tern_platform::domain::now_ms;
use tern_platform::ids::UserId;
use tern_platform::proto::v1 as pb;
use tern_sdk::{ClientError, ConnectionState, Event, Platform, Target};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Raw = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw(url: &str, subprotocol: &str) -> Raw {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(subprotocol).unwrap());
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some(subprotocol)
    );
    ws
}

/// Reads until the server closes: every JSON frame, and the close code.
async fn json_until_close(ws: &mut Raw) -> (Vec<Value>, Option<u16>) {
    let mut frames = Vec::new();
    let r = tokio::time::timeout(PATIENCE, async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(WsMessage::Text(t)) => frames.push(serde_json::from_str::<Value>(&t).unwrap()),
                Ok(WsMessage::Binary(b)) => {
                    let f = pb::ServerFrame::decode(b.as_ref()).unwrap();
                    frames.push(serde_json::to_value(&f).unwrap());
                }
                Ok(WsMessage::Close(c)) => return c.map(|c| u16::from(c.code)),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("read error: {e}");
                    return None;
                }
            }
        }
        None
    })
    .await
    .expect("the server did not close the connection");
    (frames, r)
}

async fn next_json(ws: &mut Raw) -> Value {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WsMessage::Text(t) => return serde_json::from_str(&t).unwrap(),
            WsMessage::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

fn auth_json(token: &str) -> String {
    json!({"id": "a1", "auth": {"token": token, "device_id": "raw", "platform": "PLATFORM_WEB"}}).to_string()
}

/// The last frame's error (or kicked) code and the close code.
fn ending(frames: &[Value], close: Option<u16>) -> (String, Option<u16>) {
    let last = frames.last().cloned().unwrap_or(Value::Null);
    let code = last["error"]["code"]
        .as_str()
        .or(last["kicked"]["code"].as_str())
        .unwrap_or("<none>")
        .to_owned();
    (code, close)
}

#[tokio::test]
async fn the_json_subprotocol_speaks_snake_case_proto3_json() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["bob"]).await;
    let server = env.start(None).await;
    let mut ws = raw(&server.url, "tern.v1.json").await;
    ws.send(WsMessage::text(auth_json(&app.token("alice")))).await.unwrap();
    let ok = next_json(&mut ws).await;
    assert_eq!(ok["id"], "a1");
    assert_eq!(ok["auth_ok"]["user_id"], "alice");

    ws.send(WsMessage::text(json!({"id": "p1", "ping": {"nonce": "7"}}).to_string()))
        .await
        .unwrap();
    let pong = next_json(&mut ws).await;
    assert_eq!(
        (pong["id"].as_str(), pong["pong"]["nonce"].as_str()),
        (Some("p1"), Some("7"))
    );

    let send = json!({"id": "s1", "send": {"client_msg_id": "c1", "user": "bob", "type": "text",
                      "content": {"text": "hi", "n": 3}}});
    ws.send(WsMessage::text(send.to_string())).await.unwrap();
    // The push of her own message and the answer both arrive; order between them is free.
    let (mut ack, mut push) = (Value::Null, Value::Null);
    for _ in 0..2 {
        let f = next_json(&mut ws).await;
        if f["id"] == "s1" {
            ack = f;
        } else {
            push = f;
        }
    }
    assert_eq!(ack["send_ack"]["conversation_id"], "d:alice:bob");
    assert_eq!(ack["send_ack"]["seq"], "1");
    assert_eq!(push["message"]["content"], json!({"text": "hi", "n": 3.0}));
    assert_eq!(push["message"]["sender"], "alice");

    // A failed command is an error answer, not a close.
    ws.send(WsMessage::text(
        json!({"id": "h1", "history": {"conversation_id": "nonsense"}}).to_string(),
    ))
    .await
    .unwrap();
    let err = next_json(&mut ws).await;
    assert_eq!(
        (err["id"].as_str(), err["error"]["code"].as_str()),
        (Some("h1"), Some("invalid_argument"))
    );
    // Reactions with control or bidirectional formatting characters are refused.
    let msg_id = push["message"]["msg_id"].as_str().unwrap().to_owned();
    for (i, reaction) in ["\u{202E}", "a\u{0}b", "\u{2066}x"].into_iter().enumerate() {
        let id = format!("r{i}");
        let frame = json!({"id": id, "add_reaction": {"msg_id": msg_id, "reaction": reaction}});
        ws.send(WsMessage::text(frame.to_string())).await.unwrap();
        let err = next_json(&mut ws).await;
        assert_eq!(
            (err["id"].as_str(), err["error"]["code"].as_str()),
            (Some(id.as_str()), Some("invalid_argument")),
            "{reaction:?}: {err}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_frames_and_bad_tokens_get_a_code_and_a_close_while_others_carry_on() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    let other = env.app(|_| {}).await;
    let server = env.start(None).await;
    let url = server.url.clone();
    let (alice, mut alice_ev) = connect(&url, &app, "alice", "a").await;

    let authed_json = || async {
        let mut ws = raw(&url, "tern.v1.json").await;
        ws.send(WsMessage::text(auth_json(&app.token("mallory"))))
            .await
            .unwrap();
        assert!(next_json(&mut ws).await.get("auth_ok").is_some());
        ws
    };

    // Random bytes on the binary subprotocol.
    let mut ws = raw(&url, "tern.v1.proto").await;
    ws.send(WsMessage::binary(vec![0xff, 0x13, 0x37, 0x00, 0x42, 0xfe]))
        .await
        .unwrap();
    let (f, c) = json_until_close(&mut ws).await;
    assert_eq!(ending(&f, c), ("bad_frame".into(), Some(4000)));

    // JSON on the binary subprotocol.
    let mut ws = raw(&url, "tern.v1.proto").await;
    ws.send(WsMessage::text(auth_json(&app.token("mallory"))))
        .await
        .unwrap();
    let (f, c) = json_until_close(&mut ws).await;
    assert_eq!(ending(&f, c), ("bad_frame".into(), Some(4000)));

    // Malformed JSON.
    let mut ws = authed_json().await;
    ws.send(WsMessage::text("{\"id\": \"x\", ")).await.unwrap();
    let (f, c) = json_until_close(&mut ws).await;
    assert_eq!(ending(&f, c), ("bad_frame".into(), Some(4000)));

    // A key repeated inside a frame (here inside `content`): which one counts would be
    // ambiguous, so the frame is bad.
    let mut ws = authed_json().await;
    let twice = r#"{"id":"d1","send":{"client_msg_id":"c9","user":"alice","type":"text","content":{"text":"hi","text":"pay mallory"}}}"#;
    ws.send(WsMessage::text(twice)).await.unwrap();
    let (f, c) = json_until_close(&mut ws).await;
    assert_eq!(ending(&f, c), ("bad_frame".into(), Some(4000)));

    // An unknown command, in JSON and in binary (an unknown field number).
    let mut ws = authed_json().await;
    ws.send(WsMessage::text(json!({"id": "x", "frobnicate": {}}).to_string()))
        .await
        .unwrap();
    let (f, c) = json_until_close(&mut ws).await;
    assert_eq!(ending(&f, c), ("bad_frame".into(), Some(4000)));
    let mut ws = raw(&url, "tern.v1.proto").await;
    let auth = pb::ClientFrame {
        id: "a".into(),
        command: Some(pb::client_frame::Command::Auth(pb::Auth {
            token: app.token("mallory"),
            device_id: "raw".into(),
            platform: pb::Platform::Android as i32,
            sync_version: None,
        })),
    };
    ws.send(WsMessage::binary(auth.encode_to_vec())).await.unwrap();
    // Field 99 (varint 1): a command this server does not know.
    ws.send(WsMessage::binary(vec![0x0a, 0x01, b'x', 0x98, 0x06, 0x01]))
        .await
        .unwrap();
    let (f, c) = json_until_close(&mut ws).await;
    assert!(f[0].get("auth_ok").is_some());
    assert_eq!(ending(&f, c), ("bad_frame".into(), Some(4000)));

    // A command before auth.
    let mut ws = raw(&url, "tern.v1.json").await;
    ws.send(WsMessage::text(json!({"id": "p", "ping": {}}).to_string()))
        .await
        .unwrap();
    let (f, c) = json_until_close(&mut ws).await;
    assert_eq!(ending(&f, c), ("not_authenticated".into(), Some(4002)));

    // Nothing at all: closed after the auth timeout.
    let mut ws = raw(&url, "tern.v1.json").await;
    let (f, c) = json_until_close(&mut ws).await;
    assert_eq!(ending(&f, c), ("auth_timeout".into(), Some(4002)));

    // Tokens: expired, signed with another app's secret, for an unknown app, forged.
    let expired = app.token_with("mallory", -7200, 3600);
    let wrong_secret = TestApp {
        app: app.app.clone(),
        secret: other.secret.clone(),
    }
    .token("mallory");
    let mut unknown_app = other.app.clone();
    unknown_app.app_key = tern_platform::ids::AppKey::generate();
    let unknown = TestApp {
        app: unknown_app,
        secret: other.secret.clone(),
    }
    .token("mallory");
    let mut forged = app.token("mallory");
    // Change one character inside the signature (not the last, whose low bits are padding).
    let at = forged.len() - 10;
    let swap = if &forged[at..at + 1] == "a" { "b" } else { "a" };
    forged.replace_range(at..at + 1, swap);
    for (token, code) in [
        (expired, "token_expired"),
        (wrong_secret, "bad_signature"),
        (unknown, "unknown_app_key"),
        (forged, "bad_signature"),
        ("not-a-jwt".to_owned(), "token_invalid"),
    ] {
        let mut ws = raw(&url, "tern.v1.json").await;
        ws.send(WsMessage::text(auth_json(&token))).await.unwrap();
        let (f, c) = json_until_close(&mut ws).await;
        assert_eq!(ending(&f, c), (code.into(), Some(4003)), "token case {code}");
    }

    // An oversized frame.
    let mut ws = authed_json().await;
    let huge = json!({"id": "big", "ping": {}, "pad": "x".repeat(70 * 1024)}).to_string();
    ws.send(WsMessage::text(huge)).await.unwrap();
    let (f, c) = json_until_close(&mut ws).await;
    assert_eq!(ending(&f, c), ("frame_too_large".into(), Some(1009)));

    // Through all of that, Alice's session kept working.
    still_serves(&alice, "alice", &mut alice_ev).await;
    server.stop().await;
}

#[tokio::test]
async fn kick_and_revoke_close_sessions_with_a_reason() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    let server = env.start(None).await;
    let (_alice, mut alice_ev) = connect(&server.url, &app, "alice", "a").await;
    let (bob, mut bob_ev) = connect(&server.url, &app, "bob", "b").await;

    server
        .pipeline
        .kick(
            &app.app,
            &UserId::parse("alice").unwrap(),
            "kicked",
            "kicked by the app",
        )
        .await;
    kicked_and_closed(&mut alice_ev, "kicked").await;
    // A kicked user may log in again.
    let (_alice2, _) = connect(&server.url, &app, "alice", "a").await;

    // Revocation: the old token stops working and live sessions close.
    let old = app.token("bob");
    server
        .store
        .revoke_user_tokens(&app.app.id, &UserId::parse("bob").unwrap(), now_ms() + 1000)
        .await
        .unwrap();
    server
        .pipeline
        .kick(
            &app.app,
            &UserId::parse("bob").unwrap(),
            "token_revoked",
            "tokens revoked",
        )
        .await;
    assert_eq!(kicked(&mut bob_ev).await, "token_revoked");
    let err = tern_sdk::Client::connect_with(&server.url, &old, "b", Platform::Ios, fast_options())
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Some("token_revoked"));
    assert!(matches!(
        bob.read("d:alice:bob", 0).await,
        Err(ClientError::Closed | ClientError::NotConnected)
    ));
    server.stop().await;
}

#[tokio::test]
async fn past_the_device_limit_the_oldest_session_is_replaced() {
    let env = Env::new().await;
    let app = env.app(|s| s.max_sessions_mobile = 2).await;
    app.users(&env, &["bob"]).await;
    let server = env.start(None).await;
    let (_p1, mut ev1) = connect(&server.url, &app, "alice", "phone-1").await;
    let (_p2, mut ev2) = connect(&server.url, &app, "alice", "phone-2").await;
    // A web session counts against another limit and replaces nobody.
    let (_w, _) =
        tern_sdk::Client::connect_with(&server.url, &app.token("alice"), "web", Platform::Web, fast_options())
            .await
            .unwrap();
    let (_p3, _ev3) = connect(&server.url, &app, "alice", "phone-3").await;
    kicked_and_closed(&mut ev1, "session_replaced").await;
    server.send_direct(&app, "bob", "alice", "to the survivors").await;
    assert_eq!(texts(&mut ev2, 1).await[0].2, "to the survivors");
    server.stop().await;
}

#[tokio::test]
async fn silent_and_slow_connections_are_closed() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    let server = env.start(None).await;

    // Silent: authenticated, then nothing for twice the heartbeat interval.
    let mut ws = raw(&server.url, "tern.v1.json").await;
    ws.send(WsMessage::text(auth_json(&app.token("quiet")))).await.unwrap();
    let (f, c) = json_until_close(&mut ws).await;
    assert!(f[0].get("auth_ok").is_some());
    assert_eq!(ending(&f, c), ("heartbeat_timeout".into(), Some(4004)));

    // Slow: a client that does not read while far more is pushed than its queue holds.
    let mut ws = raw(&server.url, "tern.v1.json").await;
    ws.send(WsMessage::text(auth_json(&app.token("slow")))).await.unwrap();
    assert!(next_json(&mut ws).await.get("auth_ok").is_some());
    let big = json!({"blob": "y".repeat(8 * 1024)});
    const PUSHED: usize = 2000;
    for i in 0..PUSHED {
        server
            .pipeline
            .publish_to_users(
                &app.app,
                &[UserId::parse("slow").unwrap()],
                Push::Notification {
                    id: format!("n{i}"),
                    content: big.clone(),
                    created_at: now_ms(),
                },
            )
            .await;
    }
    let (f, c) = json_until_close(&mut ws).await;
    assert_eq!(ending(&f, c), ("slow_consumer".into(), Some(4005)));
    assert!(f.len() < PUSHED, "the overflow was dropped, not buffered");
    server.stop().await;
}

/// A client under a steady stream of pushes is still heard: its pings are answered and the
/// heartbeat sweep (2 s interval here, so 4 s of silence) never closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooded_with_pushes_is_still_heard() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    let server = env.start(None).await;
    let mut ws = raw(&server.url, "tern.v1.json").await;
    ws.send(WsMessage::text(auth_json(&app.token("busy")))).await.unwrap();
    assert!(next_json(&mut ws).await.get("auth_ok").is_some());

    // The pusher keeps up to 64 notifications unread, so the session's queue (256) is
    // never empty and never overflows, however fast this client reads.
    let stop = Arc::new(AtomicBool::new(false));
    let read = Arc::new(AtomicU64::new(0));
    let pusher = {
        let (pipeline, app) = (server.pipeline.clone(), app.app.clone());
        let (stop, read) = (stop.clone(), read.clone());
        tokio::spawn(async move {
            let busy = [UserId::parse("busy").unwrap()];
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                while n < read.load(Ordering::Relaxed) + 64 {
                    let push = Push::Notification {
                        id: format!("n{n}"),
                        content: json!({"n": n}),
                        created_at: now_ms(),
                    };
                    pipeline.publish_to_users(&app, &busy, push).await;
                    n += 1;
                }
                tokio::task::yield_now().await;
            }
            n
        })
    };

    // Three heartbeat timeouts' worth of time, a ping a second, every push read.
    let mut pongs = 0u32;
    let started = tokio::time::Instant::now();
    let mut next_ping = started;
    while started.elapsed() < Duration::from_secs(12) {
        if tokio::time::Instant::now() >= next_ping {
            let ping = json!({"id": format!("p{pongs}"), "ping": {"nonce": "7"}});
            ws.send(WsMessage::text(ping.to_string())).await.unwrap();
            next_ping += Duration::from_secs(1);
        }
        let f = next_json(&mut ws).await;
        if f.get("notification").is_some() {
            read.fetch_add(1, Ordering::Relaxed);
        } else if f.get("pong").is_some() {
            pongs += 1;
        } else {
            panic!("unexpected frame while flooded: {f}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let pushed = pusher.await.unwrap();
    let notifications = read.load(Ordering::Relaxed);
    assert!(pongs >= 10, "only {pongs} of 12 pings were answered");
    assert!(
        notifications > 1_000,
        "the flood was thin: {notifications} of {pushed} read"
    );
    // Still open: one more ping is answered after the flood.
    ws.send(WsMessage::text(json!({"id": "last", "ping": {}}).to_string()))
        .await
        .unwrap();
    loop {
        let f = next_json(&mut ws).await;
        if f["id"] == "last" {
            assert!(f.get("pong").is_some(), "{f}");
            break;
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn the_connection_cap_refuses_upgrades_beyond_it() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    let mut config = Env::config();
    config.max_connections = 1;
    let server = env.start_with(None, config).await;
    let (_a, _) = connect(&server.url, &app, "alice", "a").await;
    let err = tern_sdk::Client::connect_with(&server.url, &app.token("bob"), "b", Platform::Ios, fast_options())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, ClientError::Connect(ref m) if m.contains("503")),
        "{err:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn sends_over_the_user_rate_are_refused_without_closing() {
    let env = Env::new().await;
    let app = env.app(|s| s.user_send_rate_per_second = 2).await;
    app.users(&env, &["bob"]).await;
    let server = env.start(None).await;
    let mut ws = raw(&server.url, "tern.v1.json").await;
    ws.send(WsMessage::text(auth_json(&app.token("alice")))).await.unwrap();
    assert!(next_json(&mut ws).await.get("auth_ok").is_some());
    for i in 0..6 {
        let send = json!({"id": format!("s{i}"), "send": {"client_msg_id": format!("c{i}"), "user": "bob",
                          "type": "text", "content": {"text": "spam"}}});
        ws.send(WsMessage::text(send.to_string())).await.unwrap();
    }
    let mut answers = Vec::new();
    while answers.len() < 6 {
        let f = next_json(&mut ws).await;
        if f["id"].as_str().is_some_and(|id| id.starts_with('s')) {
            answers.push(f);
        }
    }
    let limited: Vec<&Value> = answers
        .iter()
        .filter(|f| f["error"]["code"] == "rate_limited")
        .collect();
    assert!(!limited.is_empty(), "six sends at once exceed two a second");
    assert!(limited.iter().all(|f| f["error"]["retry_after_ms"].as_str().is_some()));
    assert!(answers.iter().any(|f| f.get("send_ack").is_some()));
    // Still connected.
    ws.send(WsMessage::text(json!({"id": "p", "ping": {}}).to_string()))
        .await
        .unwrap();
    loop {
        let f = next_json(&mut ws).await;
        if f["id"] == "p" {
            assert!(f.get("pong").is_some());
            break;
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_tells_clients_to_reconnect() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    let server = env.start(None).await;
    let mut ws = raw(&server.url, "tern.v1.json").await;
    ws.send(WsMessage::text(auth_json(&app.token("alice")))).await.unwrap();
    assert!(next_json(&mut ws).await.get("auth_ok").is_some());
    server.shutdown.cancel();
    let (f, c) = json_until_close(&mut ws).await;
    assert_eq!(ending(&f, c), ("going_away".into(), Some(1012)));
    server.stop().await;
}

#[tokio::test]
async fn a_replaced_token_is_used_on_the_next_reconnect() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    let server = env.start(None).await;
    let (alice, mut ev) = connect(&server.url, &app, "alice", "a").await;
    // Every token issued so far stops working; a fresh one (issued after) is fine.
    server
        .store
        .revoke_user_tokens(&app.app.id, &UserId::parse("alice").unwrap(), now_ms() + 1000)
        .await
        .unwrap();
    alice.set_token(&app.token_with("alice", 2, 3600));
    alice.reconnect_now();
    disconnected(&mut ev).await;
    let state = next_matching(&mut ev, |e| match e {
        Event::Connection(s @ (ConnectionState::Connected | ConnectionState::Closed { .. })) => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(state, ConnectionState::Connected);
    alice
        .send(Target::User("alice".into()), "text", json!({"text": "note to self"}))
        .await
        .unwrap();
    assert_eq!(texts(&mut ev, 1).await[0].2, "note to self");
    server.stop().await;
}
