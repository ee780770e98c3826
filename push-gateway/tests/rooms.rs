//! Rooms over real sockets with the SDK, on every store: the registry (created by the
//! server API or on join, as the app says), backlog and member counts, who may send and
//! read, leaving and disconnecting, the per-room send rate, dismissal, removal and mutes,
//! apps kept apart, and the fan-out shape (one bus publish per node holding members, per
//! message) over two gateway nodes in one process.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::*;
use tern_platform::auth::token::UserTokenVerifier;
use tern_platform::bus::memory::MemoryBus;
use tern_platform::bus::{Bus, BusError, BusEvent, Target as BusTarget};
use tern_platform::delivery::{Actor, DeliveryError, Pipeline, PipelineConfig, Recipient, SendRequest};
use tern_platform::domain::*;
use tern_platform::ids::*;
use tern_platform::presence::MemoryPresence;
use tern_platform::rooms;
use tern_platform::store::{self, SeqRange};
use tern_push_gateway::{Gateway, GatewayConfig};
use tern_sdk::{Client, Event, Events, Target};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

fn rid(s: &str) -> RoomId {
    RoomId::parse(s).unwrap()
}

fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

async fn create_room(p: &Pipeline, app: &TestApp, id: &str) {
    rooms::create(
        p,
        &app.app,
        rid(id),
        Some(format!("Room {id}")),
        Some(json!({"kind": "live"})),
    )
    .await
    .unwrap();
}

/// Sends a text to a room as `from`, through the pipeline as the server API does.
async fn send_to_room(
    p: &Pipeline,
    app: &TestApp,
    from: &str,
    room: &str,
    text: &str,
) -> Result<SendReceipt, DeliveryError> {
    p.send(
        &app.app,
        SendRequest {
            sender: Sender::User(uid(from)),
            to: Recipient::Room(rid(room)),
            client_msg_id: None,
            msg_type: MessageType::Text,
            content: json!({ "text": text }),
            source: Source::ServerApi,
            options: Default::default(),
        },
    )
    .await
}

async fn send_direct(p: &Pipeline, app: &TestApp, from: &str, to: &str, text: &str) {
    p.send(
        &app.app,
        SendRequest {
            sender: Sender::User(uid(from)),
            to: Recipient::User(uid(to)),
            client_msg_id: None,
            msg_type: MessageType::Text,
            content: json!({ "text": text }),
            source: Source::ServerApi,
            options: Default::default(),
        },
    )
    .await
    .unwrap();
}

/// The next message event's (conversation, text). Used as a fence: the pipeline publishes
/// a room message before it answers, and a node's events are handed out in order, so a
/// user who gets the direct message sent after a room message without that room message
/// first did not get the room message at all.
async fn next_text(events: &mut Events) -> (String, String) {
    let m = next_matching(events, |e| match e {
        Event::Message(m) => Some(m),
        _ => None,
    })
    .await;
    (
        m.conversation_id,
        m.content["text"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn room_left(events: &mut Events) -> (String, String) {
    next_matching(events, |e| match e {
        Event::RoomLeft { room_id, reason } => Some((room_id, reason)),
        _ => None,
    })
    .await
}

/// Waits until the room's member count (as the server API reads it) is `n`.
async fn members_become(p: &Pipeline, app: &TestApp, room: &str, n: u64) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if rooms::get(p, &app.app, &rid(room)).await.unwrap().member_count == n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the member count of {room} never became {n}"));
}

#[tokio::test]
async fn joining_gives_the_backlog_and_the_count_and_only_members_send_or_read() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|s| s.room_backlog = 5).await;
        app.users(&env, &["host", "viewer", "stranger"]).await;
        let server = env.start(None).await;
        let p = &server.pipeline;
        create_room(p, &app, "show").await;
        for i in 1..=8 {
            send_to_room(p, &app, "host", "show", &format!("m{i}")).await.unwrap();
        }

        // Not joined: neither send nor read, and the room's info is still readable.
        let (stranger, _stranger_ev) = connect(&server.url, &app, "stranger", "s").await;
        let e = stranger
            .send(Target::Room("show".into()), "text", json!({"text": "hi"}))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("not_in_room"));
        let e = stranger.history("r:show", 0, 10).await.unwrap_err();
        assert_eq!(e.code(), Some("not_in_room"));
        let info = stranger.room_info("show").await.unwrap();
        assert_eq!(
            (info.name.as_str(), &info.metadata, info.member_count),
            ("Room show", &json!({"kind": "live"}), 0)
        );
        let e = stranger.room_info("nowhere").await.unwrap_err();
        assert_eq!(e.code(), Some("not_found"));
        let e = stranger.join_room("not a room id!").await.unwrap_err();
        assert_eq!(e.code(), Some("invalid_argument"));

        // Joining after 8 messages gives the last room_backlog (5), in order, once.
        let (viewer, mut viewer_ev) = connect(&server.url, &app, "viewer", "v").await;
        assert_eq!(viewer.join_room("show").await.unwrap(), 1);
        let backlog = texts(&mut viewer_ev, 5).await;
        assert_eq!(
            backlog.iter().map(|(_, s, t)| (*s, t.as_str())).collect::<Vec<_>>(),
            vec![(4, "m4"), (5, "m5"), (6, "m6"), (7, "m7"), (8, "m8")]
        );
        // Joined: history reads, and sends go to every member (the sender's connection too).
        assert_eq!(viewer.history("r:show", 0, 100).await.unwrap().len(), 8);
        let ack = viewer
            .send(Target::Room("show".into()), "text", json!({"text": "hello"}))
            .await
            .unwrap();
        assert_eq!((ack.conversation_id.as_str(), ack.seq), ("r:show", 9));
        assert_eq!(texts(&mut viewer_ev, 1).await[0], ("r:show".into(), 9, "hello".into()));
        // A second device of the same user counts once.
        let (viewer2, _viewer2_ev) = connect(&server.url, &app, "viewer", "v2").await;
        assert_eq!(viewer2.join_room("show").await.unwrap(), 1);
        let (host, _host_ev) = connect(&server.url, &app, "host", "h").await;
        assert_eq!(host.join_room("show").await.unwrap(), 2);
        assert_eq!(viewer.room_info("show").await.unwrap().member_count, 2);
        assert_eq!(rooms::get(p, &app.app, &rid("show")).await.unwrap().member_count, 2);
        // The server API speaks as the system: members get it once, with no sender.
        let system = SendRequest {
            sender: Sender::System,
            to: Recipient::Room(rid("show")),
            client_msg_id: None,
            msg_type: MessageType::Text,
            content: json!({"text": "going live"}),
            source: Source::ServerApi,
            options: Default::default(),
        };
        assert_eq!(p.send(&app.app, system).await.unwrap().seq, 10);
        let m = next_matching(&mut viewer_ev, |e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .await;
        assert_eq!(
            (m.seq, m.sender.as_deref(), m.content["text"].as_str()),
            (10, None, Some("going live"))
        );
        no_more_messages(&mut viewer_ev).await;
        server.stop().await;
    }
}

#[tokio::test]
async fn rooms_are_created_on_join_only_if_the_app_says_so_and_apps_stay_apart() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let strict = env.app(|s| s.rooms_created_on_join = false).await;
        let open = env.app(|_| {}).await;
        strict.users(&env, &["alice"]).await;
        open.users(&env, &["bob"]).await;
        let server = env.start(None).await;
        let p = &server.pipeline;

        // Strict: an unknown room is not_found until the server API makes it.
        let (alice, mut alice_ev) = connect(&server.url, &strict, "alice", "a").await;
        let e = alice.join_room("stage").await.unwrap_err();
        assert_eq!(e.code(), Some("not_found"));
        create_room(p, &strict, "stage").await;
        assert_eq!(alice.join_room("stage").await.unwrap(), 1);
        let room = rooms::get(p, &strict.app, &rid("stage")).await.unwrap().room;
        assert_eq!(room.created_by, RoomOrigin::ServerApi);

        // Another app's user names the same id: it is their own app's room (created on
        // join there), and nothing crosses between the two.
        let (bob, mut bob_ev) = connect(&server.url, &open, "bob", "b").await;
        let e = bob.room_info("stage").await.unwrap_err();
        assert_eq!(e.code(), Some("not_found"), "another app's room is not found");
        assert_eq!(bob.join_room("stage").await.unwrap(), 1);
        let theirs = rooms::get(p, &open.app, &rid("stage")).await.unwrap();
        assert_eq!((theirs.room.created_by, theirs.member_count), (RoomOrigin::Join, 1));
        send_to_room(p, &strict, "alice", "stage", "for app one").await.unwrap();
        assert_eq!(next_text(&mut alice_ev).await.1, "for app one");
        send_direct(p, &open, "bob", "bob", "fence").await;
        assert_eq!(
            next_text(&mut bob_ev).await.1,
            "fence",
            "app one's room message did not reach app two"
        );
        assert_eq!(
            rooms::get(p, &strict.app, &rid("stage")).await.unwrap().member_count,
            1,
            "counts are per app"
        );

        // The server API cannot send to a room that does not exist.
        let e = send_to_room(p, &strict, "alice", "nowhere", "x").await.unwrap_err();
        assert_eq!(e.code(), "not_found");
        server.stop().await;
    }
}

#[tokio::test]
async fn leaving_and_disconnecting_stop_delivery_at_once() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|_| {}).await;
        app.users(&env, &["host", "leaver", "dropper"]).await;
        let server = env.start(None).await;
        let p = &server.pipeline;
        create_room(p, &app, "r").await;
        let (leaver, mut leaver_ev) = connect(&server.url, &app, "leaver", "l").await;
        let (dropper, _dropper_ev) = connect(&server.url, &app, "dropper", "d").await;
        leaver.join_room("r").await.unwrap();
        dropper.join_room("r").await.unwrap();
        members_become(p, &app, "r", 2).await;

        send_to_room(p, &app, "host", "r", "before").await.unwrap();
        assert_eq!(next_text(&mut leaver_ev).await, ("r:r".into(), "before".into()));
        leaver.leave_room("r").await.unwrap();
        // Leaving is harmless twice.
        leaver.leave_room("r").await.unwrap();
        send_to_room(p, &app, "host", "r", "after").await.unwrap();
        send_direct(p, &app, "host", "leaver", "fence").await;
        assert_eq!(
            next_text(&mut leaver_ev).await.1,
            "fence",
            "nothing from the room after leaving"
        );
        assert_eq!(rooms::get(p, &app.app, &rid("r")).await.unwrap().member_count, 1);

        // A dropped connection is out of the room as soon as the server sees it go.
        dropper.close();
        members_become(p, &app, "r", 0).await;
        assert!(server
            .pipeline
            .presence()
            .room_nodes(&app.app.id, &rid("r"))
            .await
            .unwrap()
            .is_empty());
        // History keeps everything with its seq, whoever was there.
        let h = tern_platform::service::messages::history_range(
            p,
            &app.app,
            &Actor::Server,
            &ConversationId::Room(rid("r")),
            SeqRange::After(0),
            10,
        )
        .await
        .unwrap();
        assert_eq!(
            h.iter()
                .map(|m| (m.seq, m.content["text"].as_str().unwrap()))
                .collect::<Vec<_>>(),
            vec![(1, "before"), (2, "after")]
        );
        server.stop().await;
    }
}

type Raw = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw_json(url: &str, token: &str) -> Raw {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("tern.v1.json"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let auth = json!({"id": "a", "auth": {"token": token, "device_id": "raw", "platform": "PLATFORM_WEB"}});
    ws.send(WsMessage::text(auth.to_string())).await.unwrap();
    assert!(answer(&mut ws, "a").await.get("auth_ok").is_some());
    ws
}

/// The answer to the command with this id (pushes in between are skipped).
async fn answer(ws: &mut Raw, id: &str) -> Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(Ok(WsMessage::Text(t))) = ws.next().await {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    return v;
                }
            }
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn past_the_room_rate_sends_get_rate_limited_with_a_hint_and_nothing_is_lost() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|s| s.room_send_rate_per_second = 1).await;
        app.users(&env, &["fan", "other"]).await;
        let server = env.start(None).await;
        create_room(&server.pipeline, &app, "hot").await;

        // Over the raw protocol: the refusal is visible, with its retry hint.
        let mut ws = raw_json(&server.url, &app.token("fan")).await;
        ws.send(WsMessage::text(
            json!({"id": "j", "join_room": {"room_id": "hot"}}).to_string(),
        ))
        .await
        .unwrap();
        assert!(answer(&mut ws, "j").await.get("room_joined").is_some());
        let mut limited = Vec::new();
        for i in 0..4 {
            let id = format!("s{i}");
            let send = json!({"id": id, "send": {"client_msg_id": format!("c{i}"), "room": "hot", "type": "text", "content": {"text": format!("{i}")}}});
            ws.send(WsMessage::text(send.to_string())).await.unwrap();
            let a = answer(&mut ws, &id).await;
            if let Some(e) = a.get("error") {
                assert_eq!(e["code"], "rate_limited");
                let hint: i64 = e["retry_after_ms"].as_str().unwrap().parse().unwrap();
                assert!(hint > 0 && hint <= 1000, "{hint}");
                limited.push(i);
            } else {
                assert!(a.get("send_ack").is_some(), "{a}");
            }
        }
        assert!(!limited.is_empty(), "four sends at once exceed one a second");
        // The server API is held to the same room budget.
        let e = send_to_room(&server.pipeline, &app, "other", "hot", "x")
            .await
            .unwrap_err();
        assert!(
            matches!(e, DeliveryError::RateLimited { retry_after_ms } if retry_after_ms > 0),
            "{e:?}"
        );

        // The SDK waits out the hint and resends with the same key: every send is stored
        // exactly once.
        let (fan, _fan_ev) = connect(&server.url, &app, "fan", "f").await;
        fan.join_room("hot").await.unwrap();
        let mut acks = Vec::new();
        for i in 0..3 {
            acks.push(
                fan.send(Target::Room("hot".into()), "text", json!({"text": format!("sdk{i}")}))
                    .await
                    .unwrap()
                    .seq,
            );
        }
        let h = tern_platform::service::messages::history_range(
            &server.pipeline,
            &app.app,
            &Actor::Server,
            &ConversationId::Room(rid("hot")),
            SeqRange::After(0),
            100,
        )
        .await
        .unwrap();
        let sdk: Vec<i64> = h
            .iter()
            .filter(|m| m.content["text"].as_str().unwrap().starts_with("sdk"))
            .map(|m| m.seq)
            .collect();
        assert_eq!(sdk, acks, "each SDK send stored once, in order");
        server.stop().await;
    }
}

#[tokio::test]
async fn dismissal_sends_everyone_away_and_the_sdk_does_not_rejoin() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|_| {}).await;
        app.users(&env, &["alice", "bob"]).await;
        let server = env.start(None).await;
        let p = &server.pipeline;
        create_room(p, &app, "party").await;
        let (alice, mut alice_ev) = connect(&server.url, &app, "alice", "phone").await;
        let (_alice_laptop, mut laptop_ev) = connect(&server.url, &app, "alice", "laptop").await;
        let (bob, mut bob_ev) = connect(&server.url, &app, "bob", "b").await;
        alice.join_room("party").await.unwrap();
        bob.join_room("party").await.unwrap();
        send_to_room(p, &app, "bob", "party", "last words").await.unwrap();
        assert_eq!(next_text(&mut alice_ev).await.1, "last words");

        let told = rooms::dismiss(p, &app.app, &rid("party")).await.unwrap();
        assert_eq!(told, 2, "both connections in the room");
        assert_eq!(room_left(&mut alice_ev).await, ("party".into(), "dismissed".into()));
        assert_eq!(room_left(&mut bob_ev).await, ("party".into(), "dismissed".into()));
        // The room and its history are gone; its members are out of it.
        let e = rooms::get(p, &app.app, &rid("party")).await.unwrap_err();
        assert_eq!(e.code(), "not_found");
        let e = tern_platform::service::messages::history_range(
            p,
            &app.app,
            &Actor::Server,
            &ConversationId::Room(rid("party")),
            SeqRange::After(0),
            10,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), "not_found");
        let e = bob
            .send(Target::Room("party".into()), "text", json!({"text": "anyone?"}))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("not_in_room"));
        let e = send_to_room(p, &app, "bob", "party", "x").await.unwrap_err();
        assert_eq!(e.code(), "not_found");
        // Alice's laptop was never in the room: it heard nothing of it.
        send_direct(p, &app, "bob", "alice", "fence").await;
        let first = next_matching(&mut laptop_ev, |e| match e {
            Event::Message(m) => Some(m.content["text"].as_str().unwrap_or_default().to_owned()),
            Event::RoomLeft { .. } => Some("room_left".into()),
            _ => None,
        })
        .await;
        assert_eq!(first, "fence");

        // After a reconnect the SDK does not join the dismissed room again (in this app a
        // join would create it anew).
        bob.reconnect_now();
        next_matching(&mut bob_ev, |e| match e {
            Event::Connection(tern_sdk::ConnectionState::Connected) => Some(()),
            _ => None,
        })
        .await;
        bob.room_info("nowhere").await.unwrap_err(); // a round trip after the reconnect
        let e = rooms::get(p, &app.app, &rid("party")).await.unwrap_err();
        assert_eq!(e.code(), "not_found", "nobody re-created it by joining");
        // A dismissed room is not_found for the server API's room operations too.
        assert_eq!(
            rooms::dismiss(p, &app.app, &rid("party")).await.unwrap_err().code(),
            "not_found"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn removal_takes_one_user_out_and_mutes_keep_them_quiet() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|_| {}).await;
        app.users(&env, &["host", "troll", "fan"]).await;
        let server = env.start(None).await;
        let p = &server.pipeline;
        create_room(p, &app, "stream").await;
        let (troll, mut troll_ev) = connect(&server.url, &app, "troll", "t1").await;
        let (troll2, mut troll2_ev) = connect(&server.url, &app, "troll", "t2").await;
        let (fan, mut fan_ev) = connect(&server.url, &app, "fan", "f").await;
        troll.join_room("stream").await.unwrap();
        troll2.join_room("stream").await.unwrap();
        fan.join_room("stream").await.unwrap();

        // Muted in the room: still in it and reading, but sends fail.
        rooms::mute(p, &app.app, &rid("stream"), &uid("troll"), now_ms() + 60_000)
            .await
            .unwrap();
        let e = troll
            .send(Target::Room("stream".into()), "text", json!({"text": "spam"}))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("user_muted"));
        let e = send_to_room(p, &app, "troll", "stream", "spam").await.unwrap_err();
        assert_eq!(e.code(), "user_muted", "every door");
        send_to_room(p, &app, "host", "stream", "still reading").await.unwrap();
        assert_eq!(next_text(&mut troll_ev).await.1, "still reading");
        let e = rooms::mute(p, &app.app, &rid("stream"), &uid("nobody"), now_ms() + 1000)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "not_found");
        rooms::unmute(p, &app.app, &rid("stream"), &uid("troll")).await.unwrap();
        troll
            .send(Target::Room("stream".into()), "text", json!({"text": "sorry"}))
            .await
            .unwrap();
        assert_eq!(next_text(&mut fan_ev).await.1, "still reading");
        assert_eq!(next_text(&mut fan_ev).await.1, "sorry");

        // Removed: both of the user's connections leave; the others stay.
        let removed = rooms::remove_user(p, &app.app, &rid("stream"), &uid("troll"))
            .await
            .unwrap();
        assert_eq!(removed, 2);
        assert_eq!(room_left(&mut troll_ev).await, ("stream".into(), "removed".into()));
        assert_eq!(room_left(&mut troll2_ev).await, ("stream".into(), "removed".into()));
        assert_eq!(rooms::get(p, &app.app, &rid("stream")).await.unwrap().member_count, 1);
        send_to_room(p, &app, "host", "stream", "without them").await.unwrap();
        assert_eq!(next_text(&mut fan_ev).await.1, "without them");
        send_direct(p, &app, "host", "troll", "fence").await;
        assert_eq!(
            next_text(&mut troll2_ev).await.1,
            "fence",
            "a removed session gets nothing more"
        );
        // They may come back.
        troll.join_room("stream").await.unwrap();
        assert_eq!(rooms::get(p, &app.app, &rid("stream")).await.unwrap().member_count, 2);
        server.stop().await;
    }
}

/// A bus that counts the room events published to each node.
struct CountingBus {
    inner: MemoryBus,
    room_publishes: Mutex<HashMap<String, usize>>,
}

#[async_trait]
impl Bus for CountingBus {
    async fn publish(&self, node: &str, event: BusEvent) -> Result<(), BusError> {
        if matches!(event.target, BusTarget::Room { .. }) {
            *self.room_publishes.lock().unwrap().entry(node.to_owned()).or_default() += 1;
        }
        self.inner.publish(node, event).await
    }

    async fn subscribe(&self, node: &str) -> Result<mpsc::Receiver<BusEvent>, BusError> {
        self.inner.subscribe(node).await
    }

    async fn invalidate(&self, invalidation: tern_platform::bus::Invalidation) -> Result<(), BusError> {
        self.inner.invalidate(invalidation).await
    }

    async fn invalidations(&self) -> Result<mpsc::Receiver<tern_platform::bus::Invalidation>, BusError> {
        self.inner.invalidations().await
    }
}

impl CountingBus {
    fn counts(&self) -> HashMap<String, usize> {
        self.room_publishes.lock().unwrap().clone()
    }
}

/// Serves a gateway node on a fresh port; its WebSocket URL.
async fn serve_node(gw: Arc<Gateway>, shutdown: CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tern_push_gateway::serve(listener, gw, shutdown));
    format!("ws://{addr}/v1/connect")
}

#[tokio::test]
async fn a_room_message_is_one_publish_per_node_holding_members() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|s| s.room_send_rate_per_second = 100_000).await;
        let store = store::connect(&env.db_url).await.unwrap();
        let bus = Arc::new(CountingBus {
            inner: MemoryBus::new(),
            room_publishes: Mutex::new(HashMap::new()),
        });
        let pipeline = Arc::new(Pipeline::new(
            store.clone(),
            bus.clone(),
            Arc::new(MemoryPresence::new()),
            PipelineConfig::default(),
        ));
        let verifier = Arc::new(UserTokenVerifier::new(store.clone(), env.secrets.clone()));
        let shutdown = CancellationToken::new();
        let mut urls = Vec::new();
        for node in ["node-a", "node-b"] {
            let config = GatewayConfig {
                node_id: node.into(),
                ..Env::config()
            };
            let gw = Gateway::start(config, pipeline.clone(), verifier.clone(), shutdown.clone())
                .await
                .unwrap();
            urls.push(serve_node(gw, shutdown.clone()).await);
        }
        let (a, b) = (&urls[0], &urls[1]);
        let members_a = ["m1", "m2", "m3"];
        let members_b = ["m4", "m5"];
        let mut all = members_a.to_vec();
        all.extend(members_b);
        all.extend(["watcher-a", "watcher-b"]);
        app.users(&env, &all).await;
        create_room(&pipeline, &app, "concert").await;

        // Three members on node A (m1 twice), two on B, and one outsider on each node.
        let mut members: Vec<(String, Client, Events)> = Vec::new();
        for (url, user, device) in [
            (a, "m1", "d1"),
            (a, "m1", "d2"),
            (a, "m2", "d"),
            (a, "m3", "d"),
            (b, "m4", "d"),
            (b, "m5", "d"),
        ] {
            let (c, ev) = connect(url, &app, user, device).await;
            c.join_room("concert").await.unwrap();
            members.push((user.to_owned(), c, ev));
        }
        let (_wa, mut watcher_a) = connect(a, &app, "watcher-a", "w").await;
        let (_wb, mut watcher_b) = connect(b, &app, "watcher-b", "w").await;
        assert_eq!(members[0].1.room_info("concert").await.unwrap().member_count, 5);
        let before = bus.counts();

        const N: i64 = 20;
        for i in 1..=N {
            let sender = &members[(i as usize) % members.len()].1;
            let ack = sender
                .send(Target::Room("concert".into()), "text", json!({"text": format!("n{i}")}))
                .await
                .unwrap();
            assert_eq!(ack.seq, i);
        }
        let after = bus.counts();
        let delta = |node: &str| after.get(node).copied().unwrap_or(0) - before.get(node).copied().unwrap_or(0);
        assert_eq!(
            (delta("node-a"), delta("node-b"), after.len()),
            (N as usize, N as usize, 2),
            "one publish per node per message, to the two nodes only"
        );

        // Every connected member got every message, in order, once.
        for (user, _, events) in members.iter_mut() {
            let got = texts(events, N as usize).await;
            assert_eq!(
                got.iter().map(|(_, s, _)| *s).collect::<Vec<_>>(),
                (1..=N).collect::<Vec<_>>(),
                "{user}"
            );
        }
        // Outsiders on both nodes got none of it.
        send_direct(&pipeline, &app, "m1", "watcher-a", "fence-a").await;
        send_direct(&pipeline, &app, "m1", "watcher-b", "fence-b").await;
        assert_eq!(next_text(&mut watcher_a).await.1, "fence-a");
        assert_eq!(next_text(&mut watcher_b).await.1, "fence-b");
        // History keeps every message with its seq.
        let h = tern_platform::service::messages::history_range(
            &pipeline,
            &app.app,
            &Actor::Server,
            &ConversationId::Room(rid("concert")),
            SeqRange::After(0),
            100,
        )
        .await
        .unwrap();
        assert_eq!(h.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=N).collect::<Vec<_>>());

        // Once node B holds no member, a room message costs node A's publish alone.
        for (user, c, _) in &members {
            if members_b.contains(&user.as_str()) {
                c.close();
            }
        }
        members_become(&pipeline, &app, "concert", 3).await;
        let before = bus.counts();
        send_to_room(&pipeline, &app, "m1", "concert", "only a").await.unwrap();
        let after = bus.counts();
        assert_eq!(after["node-a"] - before["node-a"], 1);
        assert_eq!(after["node-b"], before["node-b"], "nothing published to node B");
        shutdown.cancel();
    }
}
