//! `tern serve` as users meet it: a real process with every front door mounted. A message
//! sent through the REST server API reaches an SDK client over the WebSocket, and one sent
//! from the SDK is in the history the REST API returns: both doors share one pipeline.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use tern_sdk::server::ServerClient;
use tern_sdk::{Client, Event, Events, Message, Platform, Target};

/// The next message event, skipping connection-state and other events.
/// The first message `wanted` accepts, passing over the others (the sender's own copy, a
/// message the connect's sync brought).
async fn message_where(events: &mut Events, wanted: impl Fn(&Message) -> bool) -> Message {
    loop {
        let m = next_message(events).await;
        if wanted(&m) {
            return m;
        }
    }
}

async fn next_message(events: &mut Events) -> Message {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .unwrap()
            .unwrap();
        if let Event::Message(m) = ev {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_websocket_share_one_pipeline_in_tern_serve() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.wait_for_line("tern: ready");
    let (key, secret) = cli_app(dir.path());
    let rest = ServerClient::new(&server.base, &key, &secret);
    rest.create_user("alice", "Alice").await.unwrap();
    rest.create_user("bob", "Bob").await.unwrap();
    let token = rest.user_token("bob", Some(600)).await.unwrap().token;

    let ws = format!("{}/v1/connect", server.base.replace("http://", "ws://"));
    let (bob, mut events) = Client::connect(&ws, &token, "bob-phone", Platform::Ios).await.unwrap();

    let sent = rest
        .send_text("alice", "bob", "r-1", "hello from the backend")
        .await
        .unwrap();
    let m = next_message(&mut events).await;
    assert_eq!((m.msg_id.as_str(), m.seq), (sent.msg_id.as_str(), 1));
    assert_eq!(m.content["text"], "hello from the backend");

    let ack = bob
        .send(
            Target::User("alice".into()),
            "text",
            serde_json::json!({"text": "hi from the app"}),
        )
        .await
        .unwrap();
    assert_eq!(ack.seq, 2);
    let history = rest.history("d:alice:bob", 0, 10).await.unwrap();
    let texts: Vec<&str> = history.iter().map(|m| m.content["text"].as_str().unwrap()).collect();
    assert_eq!(texts, vec!["hello from the backend", "hi from the app"]);
    bob.close();
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_patch_reaches_sdk_sessions_already_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.wait_for_line("tern: ready");
    let (key, secret) = cli_app(dir.path());
    let rest = ServerClient::new(&server.base, &key, &secret);
    rest.create_user("alice", "Alice").await.unwrap();
    rest.create_user("bob", "Bob").await.unwrap();
    let token = rest.user_token("bob", Some(600)).await.unwrap().token;
    let ws = format!("{}/v1/connect", server.base.replace("http://", "ws://"));
    let (bob, _events) = Client::connect(&ws, &token, "bob-phone", Platform::Ios).await.unwrap();
    let hello = || bob.send(Target::User("alice".into()), "text", serde_json::json!({"text": "hi"}));
    hello().await.unwrap();

    // Bob and Alice are not friends: once direct messages need friendship, Bob's open
    // session is refused without reconnecting.
    rest.update_app_settings(&serde_json::json!({"friendship_required_for_direct": true}))
        .await
        .unwrap();
    eventually("the open session refuses a direct message to a non-friend", || async {
        match hello().await {
            Ok(_) => false,
            Err(e) => {
                assert_eq!(e.code(), Some("not_friends"), "{e}");
                true
            }
        }
    })
    .await;
    bob.close();
    assert!(server.terminate().success());
}

/// The gRPC port `tern serve` printed, as the SDK's `http://` URL of the gRPC door.
fn grpc_url(server: &mut Server) -> String {
    format!("http://{}", printed_grpc_addr(server))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_door_and_the_websocket_chat_and_kicks_reach_both_in_tern_serve() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.wait_for_line("tern: ready");
    let grpc = grpc_url(&mut server);
    let (key, secret) = cli_app(dir.path());
    let rest = ServerClient::new(&server.base, &key, &secret);
    rest.create_user("alice", "Alice").await.unwrap();
    rest.create_user("bob", "Bob").await.unwrap();
    let alice_token = rest.user_token("alice", Some(600)).await.unwrap().token;
    let bob_token = rest.user_token("bob", Some(600)).await.unwrap().token;

    // Alice on the WebSocket, Bob on gRPC (the server API's gRPC port, unsigned: the door
    // checks the user token itself).
    let ws = format!("{}/v1/connect", server.base.replace("http://", "ws://"));
    let (alice, mut alice_ev) = Client::connect(&ws, &alice_token, "alice-phone", Platform::Ios)
        .await
        .unwrap();
    let grpc_options = tern_sdk::ClientOptions {
        transport: tern_sdk::Transport::Grpc,
        ..Default::default()
    };
    let (bob, mut bob_ev) = Client::connect_with(&grpc, &bob_token, "bob-desk", Platform::Desktop, grpc_options)
        .await
        .unwrap();

    alice
        .send(
            Target::User("bob".into()),
            "text",
            serde_json::json!({"text": "from ws"}),
        )
        .await
        .unwrap();
    message_where(&mut bob_ev, |m| m.content["text"] == "from ws").await;
    bob.send(
        Target::User("alice".into()),
        "text",
        serde_json::json!({"text": "from grpc"}),
    )
    .await
    .unwrap();
    message_where(&mut alice_ev, |m| m.content["text"] == "from grpc").await;
    let sent = rest.send_text("alice", "bob", "r-1", "from the backend").await.unwrap();
    message_where(&mut bob_ev, |m| m.msg_id == sent.msg_id).await;

    // A kick through the server API reaches the gRPC session.
    rest.kick("bob").await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(Event::Kicked { code, .. }) = bob_ev.next().await {
                return code;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(code, "kicked");
    alice.close();
    assert!(server.terminate().success());
}
