//! The gRPC door of the client protocol (`tern.client.v1.Gateway/Connect`) beside the
//! WebSocket on one gateway: users on either door chat with each other, kicks and
//! revocations reach gRPC sessions, and the door refuses what the WebSocket refuses (no
//! auth in time, an oversized frame, malformed metadata) with the same stable codes, as
//! gRPC statuses. Thousands of streams opened and reset leave nothing behind.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::*;
use tern_platform::domain::now_ms;
use tern_platform::ids::UserId;
use tern_platform::proto::client_v1::gateway_client::GatewayClient;
use tern_platform::proto::v1 as pb;
use tern_sdk::{Client, ClientOptions, Event, Events, Platform, Target, Transport};
use tokio::sync::mpsc;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use pb::client_frame::Command;
use pb::server_frame::Body;

/// Serves the gateway's gRPC door of `server` on a fresh port; its `http://` URL.
async fn grpc_door(server: &TestServer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = tern_push_gateway::grpc_service(server.gateway.clone());
    let stop = server.shutdown.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), async move {
                stop.cancelled().await
            }),
    );
    format!("http://{addr}")
}

fn grpc_options() -> ClientOptions {
    ClientOptions {
        transport: Transport::Grpc,
        ..fast_options()
    }
}

async fn connect_grpc(url: &str, app: &TestApp, user: &str, device: &str) -> (Client, Events) {
    Client::connect_with(url, &app.token(user), device, Platform::Android, grpc_options())
        .await
        .unwrap()
}

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_owned()).unwrap().connect().await.unwrap()
}

/// A raw call: the sender of its frames and the stream of the server's.
struct Call {
    tx: mpsc::Sender<pb::ClientFrame>,
    rx: tonic::Streaming<pb::ServerFrame>,
}

async fn open(ch: &Channel, metadata: &[(&'static str, String)]) -> Result<Call, tonic::Status> {
    let (tx, rx) = mpsc::channel(8);
    let out = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let mut req = tonic::Request::new(out);
    for (k, v) in metadata {
        req.metadata_mut().insert(*k, v.parse().unwrap());
    }
    let rx = GatewayClient::new(ch.clone()).connect(req).await?.into_inner();
    Ok(Call { tx, rx })
}

fn auth(token: String, device: &str) -> pb::ClientFrame {
    pb::ClientFrame {
        id: "a1".into(),
        command: Some(Command::Auth(pb::Auth {
            token,
            device_id: device.into(),
            platform: pb::Platform::Desktop as i32,
            sync_version: None,
        })),
    }
}

/// Reads frames until the call ends: the frames and the final status.
async fn until_end(call: &mut Call) -> (Vec<pb::ServerFrame>, tonic::Status) {
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(PATIENCE, call.rx.message()).await.unwrap() {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return (frames, tonic::Status::ok("")),
            Err(s) => return (frames, s),
        }
    }
}

/// The stable code of a status (its ErrorInfo reason) and the close code beside it.
fn reason(s: &tonic::Status) -> (String, String) {
    let info = s
        .get_error_details()
        .error_info()
        .cloned()
        .expect("ErrorInfo in the details");
    (
        info.reason,
        info.metadata.get("close_code").cloned().unwrap_or_default(),
    )
}

/// The code of the last frame (`error` or `kicked`).
fn last_code(frames: &[pb::ServerFrame]) -> String {
    match frames.last().and_then(|f| f.body.clone()) {
        Some(Body::Error(e)) => e.code,
        Some(Body::Kicked(k)) => k.code,
        other => panic!("the last frame explains nothing: {other:?}"),
    }
}

/// Waits for the message with this text (a sender also sees its own messages).
async fn next_text(events: &mut Events, text: &str) -> String {
    next_matching(events, |e| match e {
        Event::Message(m) if m.content["text"] == text => Some(text.to_owned()),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_grpc_user_and_a_websocket_user_chat_both_ways() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "bob"]).await;
    let server = env.start(None).await;
    let grpc = grpc_door(&server).await;

    let (alice, mut alice_ev) = connect(&server.url, &app, "alice", "a-phone").await;
    let (bob, mut bob_ev) = connect_grpc(&grpc, &app, "bob", "b-tablet").await;
    assert_eq!(server.gateway.session_count(), 2);

    alice
        .send(
            Target::User("bob".into()),
            "text",
            serde_json::json!({"text": "hi from ws"}),
        )
        .await
        .unwrap();
    assert_eq!(next_text(&mut bob_ev, "hi from ws").await, "hi from ws");
    bob.send(
        Target::User("alice".into()),
        "text",
        serde_json::json!({"text": "hi from grpc"}),
    )
    .await
    .unwrap();
    assert_eq!(next_text(&mut alice_ev, "hi from grpc").await, "hi from grpc");

    // Commands answer on gRPC as on the WebSocket: both see the same history.
    let on_grpc = bob.history("d:alice:bob", 0, 10).await.unwrap();
    let on_ws = alice.history("d:alice:bob", 0, 10).await.unwrap();
    let texts = |h: &[tern_sdk::Message]| -> Vec<String> {
        h.iter()
            .map(|m| m.content["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(texts(&on_grpc), ["hi from ws", "hi from grpc"]);
    assert_eq!(texts(&on_grpc), texts(&on_ws));

    // Presence treats a gRPC session as a session: alice sees bob online, then offline.
    let now = alice.subscribe_presence(&["bob"]).await.unwrap();
    assert!(now[0].online, "{now:?}");
    bob.close();
    let offline = next_matching(&mut alice_ev, |e| match e {
        Event::Presence(p) if p.user_id == "bob" && !p.online => Some(p),
        _ => None,
    })
    .await;
    assert!(!offline.online);
    server.stop().await;
}

#[tokio::test]
async fn metadata_logs_in_without_an_auth_frame_and_bad_metadata_is_refused() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "carol"]).await;
    let server = env.start(None).await;
    let grpc = grpc_door(&server).await;
    let ch = channel(&grpc).await;

    // The whole login in metadata: auth_ok is the first frame, with the sync asked for.
    let bearer = format!("Bearer {}", app.token("carol"));
    let mut call = open(
        &ch,
        &[
            ("authorization", bearer.clone()),
            ("tern-device-id", "carol-desk".into()),
            ("tern-platform", "desktop".into()),
            ("tern-sync-version", "0".into()),
        ],
    )
    .await
    .unwrap();
    let first = call.rx.message().await.unwrap().unwrap();
    let Some(Body::AuthOk(ok)) = first.body else {
        panic!("{first:?}")
    };
    assert_eq!(ok.user_id, "carol");
    assert!(ok.sync.is_some());
    server
        .send_direct(&app, "alice", "carol", "pushed to metadata login")
        .await;
    let pushed = call.rx.message().await.unwrap().unwrap();
    assert!(matches!(pushed.body, Some(Body::Message(_))), "{pushed:?}");
    // An `auth` frame after that is answered like a second auth on a WebSocket.
    call.tx.send(auth(app.token("carol"), "x")).await.unwrap();
    let again = call.rx.message().await.unwrap().unwrap();
    assert!(
        matches!(&again.body, Some(Body::Error(e)) if e.code == "already_authenticated"),
        "{again:?}"
    );

    // Only the token in metadata: the first frame's auth carries an empty token.
    let mut call2 = open(&ch, &[("authorization", bearer)]).await.unwrap();
    call2.tx.send(auth(String::new(), "carol-laptop")).await.unwrap();
    let first = call2.rx.message().await.unwrap().unwrap();
    assert!(matches!(first.body, Some(Body::AuthOk(_))), "{first:?}");

    // Malformed metadata is refused at once, with the stable code.
    for md in [
        vec![("authorization", "Basic abc".to_owned())],
        vec![("tern-device-id", "d".to_owned())],
        vec![
            ("authorization", format!("Bearer {}", app.token("carol"))),
            ("tern-device-id", "d".into()),
            ("tern-platform", "toaster".into()),
        ],
    ] {
        let s = open(&ch, &md).await.err().expect("refused");
        assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
        assert_eq!(reason(&s).0, "invalid_argument");
    }

    // A bad token in metadata: the error frame, then Unauthenticated with the code.
    let mut bad = open(
        &ch,
        &[
            ("authorization", "Bearer nonsense".into()),
            ("tern-device-id", "d".into()),
        ],
    )
    .await
    .unwrap();
    let (frames, s) = until_end(&mut bad).await;
    assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s:?}");
    assert_eq!(reason(&s).0, last_code(&frames));
    assert_eq!(reason(&s).1, "4003");
    server.stop().await;
}

#[tokio::test]
async fn kicks_and_revocations_reach_grpc_sessions() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "bob"]).await;
    let server = env.start(None).await;
    let grpc = grpc_door(&server).await;

    // Through the SDK: a kick is an event and a final state, as on the WebSocket.
    let (_alice, mut alice_ev) = connect_grpc(&grpc, &app, "alice", "a").await;
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

    // Raw: revocation ends the call with `kicked` and an Aborted status naming the code.
    let ch = channel(&grpc).await;
    let mut call = open(&ch, &[]).await.unwrap();
    let old = app.token("bob");
    call.tx.send(auth(old.clone(), "b")).await.unwrap();
    assert!(matches!(
        call.rx.message().await.unwrap().unwrap().body,
        Some(Body::AuthOk(_))
    ));
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
    let (frames, s) = until_end(&mut call).await;
    assert_eq!(last_code(&frames), "token_revoked");
    assert_eq!(s.code(), tonic::Code::Aborted, "{s:?}");
    assert_eq!(reason(&s), ("token_revoked".to_owned(), "4001".to_owned()));
    // The revoked token no longer opens a session, on this door either.
    let err = Client::connect_with(&grpc, &old, "b", Platform::Ios, grpc_options())
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Some("token_revoked"));

    // The multi-device policy applies to gRPC sessions: past the limit the oldest goes.
    let mut first = open(&ch, &[]).await.unwrap();
    first.tx.send(auth(app.token("alice"), "desk-1")).await.unwrap();
    assert!(matches!(
        first.rx.message().await.unwrap().unwrap().body,
        Some(Body::AuthOk(_))
    ));
    let limit = app.app.settings.max_sessions_mobile as usize;
    let mut later = Vec::new();
    for i in 0..limit {
        let mut c = open(&ch, &[]).await.unwrap();
        c.tx.send(auth(app.token("alice"), &format!("desk-{}", i + 2)))
            .await
            .unwrap();
        assert!(matches!(
            c.rx.message().await.unwrap().unwrap().body,
            Some(Body::AuthOk(_))
        ));
        later.push(c);
    }
    let (frames, s) = until_end(&mut first).await;
    assert_eq!(last_code(&frames), "session_replaced");
    assert_eq!(reason(&s).0, "session_replaced");
    server.stop().await;
}

#[tokio::test]
async fn a_stream_that_never_authenticates_is_closed_after_the_websocket_timeout() {
    let env = Env::new().await;
    let server = env.start(None).await;
    let grpc = grpc_door(&server).await;
    let timeout = server.gateway.config().auth_timeout;
    let ch = channel(&grpc).await;

    let started = Instant::now();
    let mut call = open(&ch, &[]).await.unwrap();
    let (frames, s) = until_end(&mut call).await;
    let took = started.elapsed();
    assert_eq!(last_code(&frames), "auth_timeout");
    assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s:?}");
    assert_eq!(reason(&s), ("auth_timeout".to_owned(), "4002".to_owned()));
    assert!(took >= timeout && took < timeout + Duration::from_secs(2), "{took:?}");

    // The WebSocket closes a silent connection after the same time.
    let started = Instant::now();
    let (mut ws, _) = tokio_tungstenite::connect_async(&server.url).await.unwrap();
    use futures::StreamExt as _;
    while let Some(Ok(m)) = ws.next().await {
        if m.is_close() {
            break;
        }
    }
    let ws_took = started.elapsed();
    assert!(
        ws_took.abs_diff(took) < Duration::from_millis(700),
        "ws {ws_took:?}, grpc {took:?}"
    );

    // A first frame that is not auth is refused the same way.
    let mut call = open(&ch, &[]).await.unwrap();
    call.tx
        .send(pb::ClientFrame {
            id: "p".into(),
            command: Some(Command::Ping(pb::Ping { nonce: 1 })),
        })
        .await
        .unwrap();
    let (frames, s) = until_end(&mut call).await;
    assert_eq!(last_code(&frames), "not_authenticated");
    assert_eq!(s.code(), tonic::Code::Unauthenticated);
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_frame_is_frame_too_large() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    let server = env.start(None).await;
    let grpc = grpc_door(&server).await;
    let ch = channel(&grpc).await;

    // Before authentication and after it.
    let mut call = open(&ch, &[]).await.unwrap();
    call.tx.send(auth("x".repeat(70 * 1024), "d")).await.unwrap();
    let (frames, s) = until_end(&mut call).await;
    assert_eq!(last_code(&frames), "frame_too_large");
    assert_eq!(s.code(), tonic::Code::ResourceExhausted, "{s:?}");
    assert_eq!(reason(&s), ("frame_too_large".to_owned(), "1009".to_owned()));

    let mut call = open(&ch, &[]).await.unwrap();
    call.tx.send(auth(app.token("alice"), "d")).await.unwrap();
    assert!(matches!(
        call.rx.message().await.unwrap().unwrap().body,
        Some(Body::AuthOk(_))
    ));
    let big = pb::ClientFrame {
        id: "s".into(),
        command: Some(Command::SubscribePresence(pb::SubscribePresence {
            user_ids: vec!["u".repeat(1000); 80],
        })),
    };
    call.tx.send(big).await.unwrap();
    let (frames, s) = until_end(&mut call).await;
    assert_eq!(last_code(&frames), "frame_too_large");
    assert_eq!(reason(&s).0, "frame_too_large");
    eventually_idle(&server).await;
    server.stop().await;
}

/// Waits until the gateway holds no session and no connection.
async fn eventually_idle(server: &TestServer) {
    tokio::time::timeout(PATIENCE, async {
        while server.gateway.session_count() > 0 || server.gateway.connection_count() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "still {} sessions, {} connections",
            server.gateway.session_count(),
            server.gateway.connection_count()
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_streams_opened_and_reset_leak_nothing_and_the_cap_holds() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice"]).await;
    let config = tern_push_gateway::GatewayConfig {
        max_connections: 64,
        ..Env::config()
    };
    let server = env.start_with(None, config).await;
    let grpc = grpc_door(&server).await;
    let ch = channel(&grpc).await;

    // 2,000 calls, in waves of 50 at once: most reset before auth, a quarter after auth_ok.
    let token = app.token("alice");
    for wave in 0..40 {
        let mut calls = Vec::new();
        for i in 0..50 {
            let mut call = open(&ch, &[]).await.unwrap();
            if i % 4 == 0 {
                call.tx
                    .send(auth(token.clone(), &format!("d{wave}-{i}")))
                    .await
                    .unwrap();
                let f = call.rx.message().await.unwrap().unwrap();
                assert!(matches!(f.body, Some(Body::AuthOk(_))), "{f:?}");
            }
            calls.push(call);
        }
        // Dropping the call resets its stream.
        drop(calls);
    }
    eventually_idle(&server).await;

    // Past the cap a call is refused with the WebSocket's code; a place freed is reusable.
    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(open(&ch, &[]).await.unwrap());
    }
    let s = open(&ch, &[]).await.err().expect("over the cap");
    assert_eq!(s.code(), tonic::Code::Unavailable);
    assert_eq!(reason(&s).0, "too_many_connections");
    held.pop();
    tokio::time::timeout(PATIENCE, async {
        loop {
            if open(&ch, &[]).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    drop(held);
    eventually_idle(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn the_stream_speaks_zstd_and_gzip_when_asked() {
    use tonic::codec::CompressionEncoding;
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "bob"]).await;
    let server = env.start(None).await;
    let grpc = grpc_door(&server).await;
    let ch = channel(&grpc).await;

    for (encoding, name) in [(CompressionEncoding::Zstd, "zstd"), (CompressionEncoding::Gzip, "gzip")] {
        let (tx, rx) = mpsc::channel(8);
        let out = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
        let response = GatewayClient::new(ch.clone())
            .send_compressed(encoding)
            .accept_compressed(encoding)
            .connect(tonic::Request::new(out))
            .await
            .unwrap();
        assert_eq!(
            response.metadata().get("grpc-encoding").and_then(|v| v.to_str().ok()),
            Some(name),
            "the server answers in {name}"
        );
        let mut rx = response.into_inner();
        // A compressed auth frame is read; the compressed answers decode.
        tx.send(auth(app.token("bob"), &format!("bob-{name}"))).await.unwrap();
        assert!(matches!(
            rx.message().await.unwrap().unwrap().body,
            Some(Body::AuthOk(_))
        ));
        let text = format!("{name} {}", "compressible ".repeat(200));
        server.send_direct(&app, "alice", "bob", &text).await;
        let pushed = rx.message().await.unwrap().unwrap();
        let Some(Body::Message(m)) = pushed.body else {
            panic!("{pushed:?}")
        };
        assert_eq!(
            tern_platform::struct_json::pbjson::struct_to_json(m.content.as_ref().unwrap())["text"],
            text.as_str()
        );
    }

    // A compression bomb is bounded like a plain frame: frame_too_large.
    let (tx, rx) = mpsc::channel(8);
    let out = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let rx = GatewayClient::new(ch.clone())
        .send_compressed(CompressionEncoding::Zstd)
        .connect(tonic::Request::new(out))
        .await
        .unwrap()
        .into_inner();
    let mut call = Call { tx, rx };
    call.tx.send(auth("a".repeat(1024 * 1024), "d")).await.unwrap();
    let (frames, s) = until_end(&mut call).await;
    assert_eq!(last_code(&frames), "frame_too_large");
    assert_eq!(s.code(), tonic::Code::ResourceExhausted, "{s:?}");
    server.stop().await;
}
