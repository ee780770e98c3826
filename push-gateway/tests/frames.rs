//! The WebSocket protocol's frames as snapshots: a scripted session on the JSON subprotocol
//! (auth, ping, send, sync, history, read, errors and closes), a receiver on the binary
//! subprotocol, the offline-push commands, and the protobuf encoding of client frames. A
//! change to a frame's shape shows up as a snapshot diff to review (`cargo insta review`).
#![allow(clippy::unwrap_used)]

mod support;

use futures::{SinkExt, StreamExt};
use prost::Message as _;
use serde_json::{json, Value};
use support::*;
use tern_platform::proto::v1 as pb;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Raw = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw(url: &str, subprotocol: &str) -> Raw {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(subprotocol).unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// The next frame, as JSON (binary frames decoded and shown in the proto3 JSON mapping),
/// or the close code as `{"close": code}`.
async fn next_frame(ws: &mut Raw) -> Value {
    loop {
        let m = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("no frame in time")
            .expect("the stream ended")
            .unwrap();
        match m {
            WsMessage::Text(t) => return serde_json::from_str(&t).unwrap(),
            WsMessage::Binary(b) => return serde_json::to_value(pb::ServerFrame::decode(b.as_ref()).unwrap()).unwrap(),
            WsMessage::Close(c) => return json!({"close": c.map(|c| u16::from(c.code))}),
            _ => {}
        }
    }
}

/// A session's frames in order, each marked with who sent it.
#[derive(Default)]
struct Transcript(Vec<Value>);

impl Transcript {
    /// Sends a JSON frame and records it with the `answers` frames that follow. Frames
    /// answering the command (same `id`) come first: pushes may overtake the answer.
    async fn json(&mut self, ws: &mut Raw, frame: Value, answers: usize) {
        ws.send(WsMessage::text(frame.to_string())).await.unwrap();
        self.0.push(json!({"client": frame}));
        let mut got = Vec::new();
        for _ in 0..answers {
            got.push(next_frame(ws).await);
        }
        got.sort_by_key(|f| f["id"] != frame["id"]);
        self.0.extend(got.into_iter().map(|f| json!({"server": f})));
    }

    async fn expect(&mut self, ws: &mut Raw) {
        let f = next_frame(ws).await;
        self.0.push(json!({"server": f}));
    }
}

/// Values that differ from run to run: ids, clocks, versions and tokens.
macro_rules! assert_frames_snapshot {
    ($name:expr, $value:expr) => {
        insta::assert_json_snapshot!($name, $value, {
            ".**.token" => "[token]",
            ".**.session_id" => "[session_id]",
            ".**.server_time" => "[time]",
            ".**.created_at" => "[time]",
            ".**.updated_at" => "[time]",
            ".**.msg_id" => "[msg_id]",
            ".**.version" => "[version]",
        })
    };
}

#[tokio::test]
async fn a_json_session_and_a_binary_receiver() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "bob"]).await;
    let server = env.start(None).await;

    // Bob listens on the binary subprotocol.
    let mut bob = raw(&server.url, "tern.v1.proto").await;
    let auth = pb::ClientFrame {
        id: "b1".into(),
        command: Some(pb::client_frame::Command::Auth(pb::Auth {
            token: app.token("bob"),
            device_id: "bob-phone".into(),
            platform: pb::Platform::Android as i32,
            sync_version: None,
        })),
    };
    bob.send(WsMessage::binary(auth.encode_to_vec())).await.unwrap();
    let mut bobs = Transcript::default();
    bobs.0.push(json!({"client": serde_json::to_value(&auth).unwrap()}));
    bobs.expect(&mut bob).await;

    let mut alice = raw(&server.url, "tern.v1.json").await;
    let mut t = Transcript::default();
    t.json(
        &mut alice,
        json!({"id": "a1", "auth": {"token": app.token("alice"), "device_id": "alice-web", "platform": "PLATFORM_WEB"}}),
        1,
    )
    .await;
    t.json(&mut alice, json!({"id": "p1", "ping": {"nonce": "7"}}), 1).await;
    t.json(
        &mut alice,
        json!({"id": "s1", "send": {"client_msg_id": "c1", "user": "bob", "type": "text", "content": {"text": "hi", "n": 3}}}),
        2,
    )
    .await;
    bobs.expect(&mut bob).await;
    t.json(&mut alice, json!({"id": "y1", "sync": {"since_version": "0"}}), 1)
        .await;
    t.json(
        &mut alice,
        json!({"id": "h1", "history": {"conversation_id": "d:alice:bob"}}),
        1,
    )
    .await;
    t.json(
        &mut alice,
        json!({"id": "r1", "read": {"conversation_id": "d:alice:bob", "seq": "1"}}),
        2,
    )
    .await;
    // The read receipt reaches both sides: Alice's own session (above) and Bob's.
    bobs.expect(&mut bob).await;
    t.json(
        &mut alice,
        json!({"id": "h2", "history": {"conversation_id": "nonsense"}}),
        1,
    )
    .await;
    t.json(
        &mut alice,
        json!({"id": "s2", "send": {"client_msg_id": "c2", "group": "nowhere", "type": "text", "content": {"text": "hi"}}}),
        1,
    )
    .await;
    assert_frames_snapshot!("json_session", t.0);
    assert_frames_snapshot!("binary_receiver", bobs.0);

    // Refusals end with an error frame and a close code.
    let mut refusals = Transcript::default();
    let mut early = raw(&server.url, "tern.v1.json").await;
    refusals.json(&mut early, json!({"id": "p", "ping": {}}), 2).await;
    let mut bad_token = raw(&server.url, "tern.v1.json").await;
    refusals
        .json(
            &mut bad_token,
            json!({"id": "a", "auth": {"token": "not-a-jwt", "device_id": "d", "platform": "PLATFORM_WEB"}}),
            2,
        )
        .await;
    let mut garbage = raw(&server.url, "tern.v1.json").await;
    garbage.send(WsMessage::text("{\"id\": ")).await.unwrap();
    refusals.0.push(json!({"client": "{\"id\": "}));
    refusals.expect(&mut garbage).await;
    refusals.expect(&mut garbage).await;
    assert_frames_snapshot!("refusals", refusals.0);
    server.stop().await;
}

/// The offline-push commands (client.proto 130-134) on the JSON subprotocol: a phone
/// registers, rotates and removes its token, the user sets do-not-disturb hours and mutes a
/// conversation; refusals carry their codes.
#[tokio::test]
async fn push_commands_as_json_frames() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "bob"]).await;
    let server = env.start(None).await;
    let mut alice = raw(&server.url, "tern.v1.json").await;
    let mut t = Transcript::default();
    t.json(
        &mut alice,
        json!({"id": "a1", "auth": {"token": app.token("alice"), "device_id": "alice-phone", "platform": "PLATFORM_IOS"}}),
        1,
    )
    .await;
    let token = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    t.json(
        &mut alice,
        json!({"id": "d1", "register_push_token": {"provider": "apns", "token": token, "environment": "sandbox", "locale": "en-GB"}}),
        1,
    )
    .await;
    let device = t.0.last().unwrap()["server"]["push_device"]["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.json(
        &mut alice,
        json!({"id": "d2", "update_push_token": {"device_id": device, "token": "00000000000000000000000000000000000000000000000000000000000000ff", "locale": ""}}),
        1,
    )
    .await;
    t.json(
        &mut alice,
        json!({"id": "d3", "register_push_token": {"provider": "apns", "token": "not-hex"}}),
        1,
    )
    .await;
    t.json(&mut alice, json!({"id": "g1", "get_push_settings": {}}), 1)
        .await;
    t.json(
        &mut alice,
        json!({"id": "u1", "update_push_settings": {"dnd": {"start": "22:00", "end": "07:00", "utc_offset_minutes": 60}, "mute": ["d:alice:bob"]}}),
        1,
    )
    .await;
    t.json(
        &mut alice,
        json!({"id": "u2", "update_push_settings": {"mute": ["r:lobby"]}}),
        1,
    )
    .await;
    t.json(
        &mut alice,
        json!({"id": "u3", "update_push_settings": {"clear_dnd": true, "unmute": ["d:alice:bob"]}}),
        1,
    )
    .await;
    t.json(
        &mut alice,
        json!({"id": "r1", "remove_push_token": {"device_id": device}}),
        1,
    )
    .await;
    t.json(
        &mut alice,
        json!({"id": "r2", "remove_push_token": {"device_id": device}}),
        1,
    )
    .await;
    insta::assert_json_snapshot!("push_commands", t.0, {
        ".**.token" => "[token]",
        ".**.session_id" => "[session_id]",
        ".**.server_time" => "[time]",
        ".**.created_at" => "[time]",
        ".**.updated_at" => "[time]",
        ".**.version" => "[version]",
        ".**.remove_push_token.device_id" => "[device_id]",
        ".**.update_push_token.device_id" => "[device_id]",
        ".**.push_device.device_id" => "[device_id]",
    });
    server.stop().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn protobuf_client_frames() {
    use pb::client_frame::Command;
    let content = |text: &str| {
        let mut fields = std::collections::HashMap::new();
        fields.insert(
            "text".to_owned(),
            pbjson_types::Value {
                kind: Some(pbjson_types::value::Kind::StringValue(text.into())),
            },
        );
        Some(pbjson_types::Struct { fields })
    };
    let frames = [
        (
            "auth",
            Command::Auth(pb::Auth {
                token: "eyJ.token.sig".into(),
                device_id: "phone-1".into(),
                platform: pb::Platform::Ios as i32,
                sync_version: Some(42),
            }),
        ),
        (
            "send",
            Command::Send(pb::Send {
                client_msg_id: "c1".into(),
                to: Some(pb::send::To::User("bob".into())),
                r#type: "text".into(),
                content: content("hi"),
                ..Default::default()
            }),
        ),
        (
            "send_to_group",
            Command::Send(pb::Send {
                client_msg_id: "c2".into(),
                to: Some(pb::send::To::Group("team".into())),
                r#type: "text".into(),
                content: content("hello all"),
                ..Default::default()
            }),
        ),
        (
            "sync",
            Command::Sync(pb::Sync {
                since_version: 7,
                limit: 20,
            }),
        ),
        (
            "history",
            Command::History(pb::History {
                conversation_id: "d:alice:bob".into(),
                after_seq: 0,
                before_seq: 10,
                limit: 5,
            }),
        ),
        (
            "read",
            Command::Read(pb::Read {
                conversation_id: "d:alice:bob".into(),
                seq: 3,
            }),
        ),
        (
            "recall",
            Command::Recall(pb::Recall {
                msg_id: "01JD0000000000000000000000".into(),
            }),
        ),
        (
            "typing",
            Command::Typing(pb::Typing {
                conversation_id: "g:team".into(),
            }),
        ),
        ("ping", Command::Ping(pb::Ping { nonce: 7 })),
    ];
    let pinned: Vec<Value> = frames
        .into_iter()
        .map(|(name, command)| {
            let frame = pb::ClientFrame {
                id: name.into(),
                command: Some(command),
            };
            let bytes = frame.encode_to_vec();
            assert_eq!(pb::ClientFrame::decode(bytes.as_slice()).unwrap(), frame);
            json!({"frame": name, "protobuf_hex": hex(&bytes), "json": serde_json::to_value(&frame).unwrap()})
        })
        .collect();
    insta::assert_json_snapshot!("protobuf_client_frames", pinned);
}
