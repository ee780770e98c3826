//! Broadcasts and system notifications reaching users through the SDK, on every store:
//! online users get a `notification` push at once, offline users find it when they sync,
//! each exactly once however it arrives; and a broadcast whose worker dies mid-job is
//! finished by the next worker with nothing lost and nothing doubled.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::*;
use tern_platform::broadcasts::{self, StartBroadcast, WorkerConfig};
use tern_platform::delivery::{Pipeline, Recipient, SendRequest};
use tern_platform::domain::*;
use tern_platform::ids::*;
use tern_platform::store::{self, NewMessage, SeqRange};
use tern_sdk::{ConnectionState, Event, Events};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// (conversation, seq, text) of the next kept notification.
async fn next_notification(events: &mut Events) -> (String, i64, String) {
    next_matching(events, |e| match e {
        Event::Notification {
            conversation_id: Some(c),
            seq: Some(s),
            content,
            ..
        } => Some((c, s, content["text"].as_str().unwrap_or_default().to_owned())),
        _ => None,
    })
    .await
}

fn worker(
    p: &Arc<Pipeline>,
    config: WorkerConfig,
    wake: &Arc<Notify>,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    broadcasts::spawn(p.clone(), config, wake.clone(), stop.clone(), "test-node")
}

fn quick() -> WorkerConfig {
    WorkerConfig {
        lease: Duration::from_secs(1),
        idle_poll: Duration::from_millis(50),
        max_batch: 500,
    }
}

async fn wait_for_state(p: &Pipeline, app: &App, id: &str, done: impl Fn(&Broadcast) -> bool) -> Broadcast {
    tokio::time::timeout(PATIENCE * 3, async {
        loop {
            let b = broadcasts::get(p, app, id).await.unwrap();
            if done(&b) {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the broadcast never reached the state")
}

fn text_broadcast(text: &str, users: Option<&[&str]>) -> StartBroadcast {
    StartBroadcast {
        msg_type: MessageType::Text,
        content: json!({ "text": text }),
        client_msg_id: None,
        users: users.map(|u| u.iter().map(|u| UserId::parse(u).unwrap()).collect()),
    }
}

#[tokio::test]
async fn online_users_are_pushed_offline_ones_sync_and_nobody_sees_one_twice() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|_| {}).await;
        app.users(&env, &["alice", "bob", "carol"]).await;
        let server = env.start(None).await;
        let p = &server.pipeline;
        let (wake, stop) = (Arc::new(Notify::new()), CancellationToken::new());
        let _w = worker(p, quick(), &wake, &stop);

        let (alice, mut alice_ev) = connect(&server.url, &app, "alice", "a").await;
        let (job, created) = broadcasts::start(p, &app.app, text_broadcast("maintenance at noon", None))
            .await
            .unwrap();
        assert!(created);
        wake.notify_one();
        // Online: pushed at once, as a kept notification in alice's system conversation.
        assert_eq!(
            next_notification(&mut alice_ev).await,
            ("s:alice".into(), 1, "maintenance at noon".into())
        );
        let done = wait_for_state(p, &app.app, &job.id, |b| b.state == BroadcastState::Done).await;
        assert_eq!((done.users_seen, done.sent, done.failed), (3, 3, 0));

        // Offline: bob was not connected; he finds it when he connects (sync), once.
        let (_bob, mut bob_ev) = connect(&server.url, &app, "bob", "b").await;
        assert_eq!(
            next_notification(&mut bob_ev).await,
            ("s:bob".into(), 1, "maintenance at noon".into())
        );

        // A reconnect does not show it again: the next notification alice sees is the next one.
        alice.reconnect_now();
        next_matching(&mut alice_ev, |e| match e {
            Event::Connection(ConnectionState::Connected) => Some(()),
            _ => None,
        })
        .await;
        // A system notification to one user from the server API is kept the same way.
        let r = p
            .send(
                &app.app,
                SendRequest {
                    sender: Sender::System,
                    to: Recipient::User(UserId::parse("alice").unwrap()),
                    client_msg_id: None,
                    msg_type: MessageType::Text,
                    content: json!({"text": "your order shipped"}),
                    source: Source::ServerApi,
                    options: Default::default(),
                },
            )
            .await
            .unwrap();
        assert_eq!((r.conversation_id.to_string().as_str(), r.seq), ("s:alice", 2));
        assert_eq!(
            next_notification(&mut alice_ev).await,
            ("s:alice".into(), 2, "your order shipped".into())
        );

        // To a list: only those users; an id that is no user of the app counts as failed.
        let (job, _) = broadcasts::start(p, &app.app, text_broadcast("beta invite", Some(&["bob", "ghost"])))
            .await
            .unwrap();
        wake.notify_one();
        assert_eq!(
            next_notification(&mut bob_ev).await,
            ("s:bob".into(), 2, "beta invite".into())
        );
        let done = wait_for_state(p, &app.app, &job.id, |b| b.state == BroadcastState::Done).await;
        assert_eq!(
            (done.total, done.users_seen, done.sent, done.failed),
            (Some(2), 2, 1, 1)
        );
        let carol = server
            .store
            .messages(
                &app.app.id,
                &ConversationId::System(UserId::parse("carol").unwrap()),
                SeqRange::After(0),
                10,
            )
            .await
            .unwrap();
        assert_eq!(carol.len(), 1, "carol was not on the list: only the first broadcast");
        // Nothing further for alice beyond what she was told about.
        let extra = tokio::time::timeout(Duration::from_millis(300), next_notification(&mut alice_ev)).await;
        assert!(extra.is_err(), "unexpected notification: {extra:?}");
        stop.cancel();
        server.stop().await;
    }
}

#[tokio::test]
async fn a_worker_that_dies_mid_job_leaves_it_to_the_next_with_nothing_lost_or_doubled() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        // 600 users at 300 a second: a job of about two seconds, in batches of 50.
        let app = env.app(|s| s.broadcast_rate_per_second = 300).await;
        let ids: Vec<String> = (0..600).map(|i| format!("u{i:04}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        app.users(&env, &refs).await;
        let server = env.start(None).await;
        let p = &server.pipeline;
        let online = ["u0000", "u0299", "u0599"];
        let mut clients = Vec::new();
        for u in online {
            clients.push(connect(&server.url, &app, u, "d").await);
        }

        let config = WorkerConfig {
            max_batch: 50,
            ..quick()
        };
        let (wake, stop) = (Arc::new(Notify::new()), CancellationToken::new());
        let first = worker(p, config.clone(), &wake, &stop);
        let (job, _) = broadcasts::start(
            p,
            &app.app,
            StartBroadcast {
                client_msg_id: Some(ClientMsgId::parse("launch-2026").unwrap()),
                ..text_broadcast("we launched", None)
            },
        )
        .await
        .unwrap();
        wake.notify_one();
        wait_for_state(p, &app.app, &job.id, |b| b.users_seen >= 100).await;
        first.abort();
        let _ = first.await;
        let at_crash = broadcasts::get(p, &app.app, &job.id).await.unwrap();
        assert!(
            at_crash.state == BroadcastState::Running && at_crash.users_seen < 600,
            "the worker died mid-job: {at_crash:?}"
        );
        // What a worker that dies between storing a batch and recording it leaves behind:
        // the next batch's notifications stored, the cursor not moved. Make that state
        // whatever the abort hit, so the next worker has to run such a batch again.
        let next: Vec<UserId> = ids
            .iter()
            .filter(|u| at_crash.after_user.as_ref().is_none_or(|a| u.as_str() > a.as_str()))
            .take(50)
            .map(|u| UserId::parse(u).unwrap())
            .collect();
        let uncounted: Vec<NewMessage> = next
            .iter()
            .map(|u| NewMessage {
                app_id: app.app.id.clone(),
                msg_id: MsgId::generate(),
                conversation_id: ConversationId::System(u.clone()),
                sender: Sender::System,
                client_msg_id: broadcasts::notification_key(&at_crash.request_key, u),
                msg_type: MessageType::Text,
                content: json!({"text": "we launched"}),
                created_at: now_ms(),
                participants: vec![u.clone()],
                events: Vec::new(),
                reply_to: None,
                mentions: Vec::new(),
                mention_all: false,
                push: false,
            })
            .collect();
        server.store.commit_messages(&uncounted).await.unwrap();
        // Starting it again with the same key is the same job, not a second one.
        let (again, created) = broadcasts::start(
            p,
            &app.app,
            StartBroadcast {
                client_msg_id: Some(ClientMsgId::parse("launch-2026").unwrap()),
                ..text_broadcast("we launched", None)
            },
        )
        .await
        .unwrap();
        assert!(!created);
        assert_eq!(again.id, job.id);

        let _second = worker(p, config, &wake, &stop);
        let done = wait_for_state(p, &app.app, &job.id, |b| b.state == BroadcastState::Done).await;
        assert_eq!(
            (done.users_seen, done.sent, done.failed),
            (600, 600, 0),
            "counted once each"
        );
        for u in &ids {
            let inbox = server
                .store
                .messages(
                    &app.app.id,
                    &ConversationId::System(UserId::parse(u).unwrap()),
                    SeqRange::After(0),
                    10,
                )
                .await
                .unwrap();
            assert_eq!(inbox.len(), 1, "{u} has exactly one notification");
            assert_eq!(inbox[0].content["text"], "we launched");
        }
        for (_, events) in clients.iter_mut() {
            assert_eq!(next_notification(events).await.2, "we launched");
            let extra = tokio::time::timeout(Duration::from_millis(300), next_notification(events)).await;
            assert!(extra.is_err(), "shown twice: {extra:?}");
        }
        stop.cancel();
        server.stop().await;
    }
}

#[tokio::test]
async fn a_cancelled_broadcast_stops_and_keeps_what_it_delivered() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|s| s.broadcast_rate_per_second = 100).await;
        let ids: Vec<String> = (0..300).map(|i| format!("c{i:03}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        app.users(&env, &refs).await;
        let server = env.start(None).await;
        let p = &server.pipeline;
        let (wake, stop) = (Arc::new(Notify::new()), CancellationToken::new());
        let w = worker(
            p,
            WorkerConfig {
                max_batch: 20,
                ..quick()
            },
            &wake,
            &stop,
        );
        let (job, _) = broadcasts::start(p, &app.app, text_broadcast("flash sale", None))
            .await
            .unwrap();
        wake.notify_one();
        wait_for_state(p, &app.app, &job.id, |b| b.users_seen >= 20).await;
        let cancelled = broadcasts::cancel(p, &app.app, &job.id).await.unwrap();
        assert_eq!(cancelled.state, BroadcastState::Cancelled);
        // Stop the worker (it finishes the batch in flight, if any): nothing moves after.
        stop.cancel();
        w.await.unwrap();
        let settled = broadcasts::get(p, &app.app, &job.id).await.unwrap();
        let mut reached = 0;
        for u in &ids {
            let n = server
                .store
                .messages(
                    &app.app.id,
                    &ConversationId::System(UserId::parse(u).unwrap()),
                    SeqRange::After(0),
                    10,
                )
                .await
                .unwrap()
                .len();
            assert!(n <= 1);
            reached += n as i64;
        }
        assert!(
            (20..300).contains(&reached),
            "the cancel stopped it before the end ({reached})"
        );
        assert!(reached >= settled.sent, "everyone counted has their notification");
        assert!(
            reached <= settled.sent + 20,
            "at most the batch in flight went uncounted"
        );
        let other = store::connect(&env.db_url).await.unwrap();
        assert_eq!(
            other.broadcast(&app.app.id, &job.id).await.unwrap().unwrap().state,
            BroadcastState::Cancelled
        );
        server.stop().await;
    }
}
