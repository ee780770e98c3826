//! The Redis adapters against the real Redis named by `TERN_TEST_REDIS_URL`: two nodes in
//! one process, each with its own connections and lease, behave as one — a replayed nonce is
//! refused on the other node, each sees the other's users and rooms, a bus event reaches
//! only the node it is published to, and a node that dies is forgotten. Each test uses its
//! own key prefix. Without the variable the tests are skipped with a printed line, unless
//! `TERN_TEST_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tern_platform::bus::{Bus, BusEvent, Push, Target};
use tern_platform::domain::now_ms;
use tern_platform::ids::{AppId, RoomId, UserId};
use tern_platform::nonce::NonceStore;
use tern_platform::presence::{Presence, SessionRef};
use tern_platform::redis_adapters::{RedisAdapters, RedisConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn config() -> Option<RedisConfig> {
    match std::env::var("TERN_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(RedisConfig {
            url,
            prefix: format!("test-{}", ulid::Ulid::new().to_string().to_lowercase()),
        }),
        _ => {
            let message = "redis adapter tests skipped: TERN_TEST_REDIS_URL is not set";
            if std::env::var("TERN_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{message} (and TERN_TEST_REQUIRE_SERVICES=1)");
            }
            println!("{message}");
            None
        }
    }
}

struct Node {
    ports: RedisAdapters,
    tasks: TaskTracker,
    stop: CancellationToken,
}

async fn node(config: &RedisConfig, id: &str) -> Node {
    let tasks = TaskTracker::new();
    let stop = CancellationToken::new();
    let ports = RedisAdapters::connect(config, id, &tasks, stop.clone()).await.unwrap();
    Node { ports, tasks, stop }
}

impl Node {
    async fn stop(self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

/// Asks until `check` holds, for up to `secs` seconds.
async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < until {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_nonce_used_on_one_node_is_refused_on_the_other_until_it_expires() {
    let Some(cfg) = config() else { return };
    let (a, b) = (node(&cfg, "a").await, node(&cfg, "b").await);
    let now = now_ms();
    assert!(a.ports.nonces.record("key1", "n1", now, now + 600_000).await.unwrap());
    assert!(!b.ports.nonces.record("key1", "n1", now, now + 600_000).await.unwrap());
    assert!(
        b.ports.nonces.record("key2", "n1", now, now + 600_000).await.unwrap(),
        "another app's nonce"
    );
    assert!(a.ports.nonces.record("key1", "short", now, now + 150).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        b.ports
            .nonces
            .record("key1", "short", now_ms(), now_ms() + 600_000)
            .await
            .unwrap(),
        "an expired nonce may be used again"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_new_session_learns_the_older_sessions_of_its_class_on_every_live_node_oldest_first() {
    let Some(cfg) = config() else { return };
    let (a, b, c) = (node(&cfg, "a").await, node(&cfg, "b").await, node(&cfg, "c").await);
    let app = AppId::generate();
    let alice = user("alice");
    let at = |node: &str, session| SessionRef {
        node: node.into(),
        session,
    };
    a.ports
        .presence
        .session_opened(&app, &alice, "a", 1, "phone-1", "ios")
        .await
        .unwrap();
    b.ports
        .presence
        .session_opened(&app, &alice, "b", 1, "laptop", "web")
        .await
        .unwrap();
    b.ports
        .presence
        .session_opened(&app, &alice, "b", 2, "phone-2", "ios")
        .await
        .unwrap();
    let opened = c
        .ports
        .presence
        .session_opened(&app, &alice, "c", 1, "phone-3", "ios")
        .await
        .unwrap();
    assert!(!opened.came_online);
    assert_eq!(opened.same_class, vec![at("a", 1), at("b", 2)]);
    // Written again (after an outage) a session keeps its opening time: still the oldest.
    a.ports
        .presence
        .session_opened(&app, &alice, "a", 1, "phone-1", "ios")
        .await
        .unwrap();
    let opened = c
        .ports
        .presence
        .session_opened(&app, &alice, "c", 2, "phone-4", "ios")
        .await
        .unwrap();
    assert_eq!(opened.same_class, vec![at("a", 1), at("b", 2), at("c", 1)]);
    // Devices are still what presence shows.
    let now = a
        .ports
        .presence
        .presence(&app, std::slice::from_ref(&alice))
        .await
        .unwrap();
    let mut devices = now[0].devices.clone();
    devices.sort();
    assert_eq!(devices, ["laptop", "phone-1", "phone-2", "phone-3", "phone-4"]);
    // A dead node's sessions do not count.
    b.stop().await;
    assert!(
        eventually(15, || {
            let (p, app, alice) = (&c.ports.presence, &app, &alice);
            async move {
                let opened = p.session_opened(app, alice, "c", 3, "phone-5", "ios").await.unwrap();
                opened.same_class.iter().all(|r| r.node != "b")
            }
        })
        .await,
        "b's sessions stop counting once its lease is gone"
    );
    a.stop().await;
    c.stop().await;
}

/// A large group's delivery is routed in several script calls; every member is found.
#[tokio::test]
async fn a_delivery_to_twelve_hundred_members_is_routed_to_exactly_their_nodes() {
    let Some(cfg) = config() else { return };
    let (a, b) = (node(&cfg, "a").await, node(&cfg, "b").await);
    let app = AppId::generate();
    let members: Vec<UserId> = (0..1_203).map(|i| user(&format!("m{i}"))).collect();
    // Members 0..1200 online: every third on b, the rest on a; the last three offline.
    for (i, m) in members.iter().take(1_200).enumerate() {
        let (n, name) = if i % 3 == 0 { (&b, "b") } else { (&a, "a") };
        n.ports
            .presence
            .session_opened(&app, m, name, i as u64, "phone", "ios")
            .await
            .unwrap();
    }
    let routes = a.ports.presence.nodes_of(&app, &members).await.unwrap();
    assert_eq!(routes.len(), 2, "only a and b hold members");
    let expect = |on_b: bool| -> Vec<UserId> {
        members
            .iter()
            .take(1_200)
            .enumerate()
            .filter(|(i, _)| (i % 3 == 0) == on_b)
            .map(|(_, m)| m.clone())
            .collect()
    };
    assert_eq!(routes["b"], expect(true));
    assert_eq!(routes["a"], expect(false));
}

#[tokio::test]
async fn each_node_sees_the_others_sessions_and_routes_only_to_the_nodes_that_hold_them() {
    let Some(cfg) = config() else { return };
    let (a, b) = (node(&cfg, "a").await, node(&cfg, "b").await);
    let app = AppId::generate();
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));

    assert!(
        a.ports
            .presence
            .session_opened(&app, &alice, "a", 1, "phone", "ios")
            .await
            .unwrap()
            .came_online
    );
    assert!(
        !a.ports
            .presence
            .session_opened(&app, &alice, "a", 2, "web", "web")
            .await
            .unwrap()
            .came_online,
        "second device"
    );
    assert!(
        b.ports
            .presence
            .session_opened(&app, &bob, "b", 1, "phone", "ios")
            .await
            .unwrap()
            .came_online
    );
    assert!(
        !b.ports
            .presence
            .session_opened(&app, &alice, "b", 3, "tablet", "ios")
            .await
            .unwrap()
            .came_online
    );

    let routes = b
        .ports
        .presence
        .nodes_of(&app, &[alice.clone(), bob.clone(), carol.clone()])
        .await
        .unwrap();
    let mut on_a = routes.get("a").cloned().unwrap_or_default();
    on_a.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(on_a, vec![alice.clone()]);
    let mut on_b = routes.get("b").cloned().unwrap_or_default();
    on_b.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(on_b, vec![alice.clone(), bob.clone()]);
    assert_eq!(routes.len(), 2, "carol is offline and routed nowhere");

    let other_app = AppId::generate();
    assert!(
        a.ports
            .presence
            .nodes_of(&other_app, std::slice::from_ref(&alice))
            .await
            .unwrap()
            .is_empty(),
        "apps are apart"
    );

    // Closing sessions: the user goes offline with the last one, with a last-seen time.
    assert!(!a.ports.presence.session_closed(&app, &alice, "a", 1).await.unwrap());
    assert!(!a.ports.presence.session_closed(&app, &alice, "a", 2).await.unwrap());
    assert!(
        !a.ports.presence.session_closed(&app, &alice, "a", 2).await.unwrap(),
        "closing twice is harmless"
    );
    let before = now_ms();
    assert!(b.ports.presence.session_closed(&app, &alice, "b", 3).await.unwrap());
    let p = a
        .ports
        .presence
        .presence(&app, &[alice.clone(), bob.clone()])
        .await
        .unwrap();
    assert!(!p[0].online && p[0].devices.is_empty());
    assert!(p[0].last_seen.unwrap() >= before - 1000);
    assert!(p[1].online && p[1].last_seen.is_none());
    assert_eq!(p[1].devices, vec!["phone".to_string()]);

    // The bus: an event published to b reaches b's subscriber, not a's.
    let mut on_a = a.ports.bus.subscribe("a").await.unwrap();
    let mut on_b = b.ports.bus.subscribe("b").await.unwrap();
    let event = BusEvent {
        app_id: app.clone(),
        target: Target::Users {
            users: vec![bob.clone()],
        },
        push: Push::Typing {
            conversation_id: tern_platform::ids::ConversationId::parse("d:alice:bob").unwrap(),
            user_id: alice.clone(),
        },
    };
    a.ports.bus.publish("b", event.clone()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), on_b.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, event);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), on_a.recv())
            .await
            .is_err(),
        "a got nothing"
    );

    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn rooms_count_users_once_across_nodes() {
    let Some(cfg) = config() else { return };
    let (a, b) = (node(&cfg, "a").await, node(&cfg, "b").await);
    let app = AppId::generate();
    let room = RoomId::parse("lobby").unwrap();
    let p = &a.ports.presence;
    p.room_joined(&app, &room, &user("alice"), "a", 1).await.unwrap();
    p.room_joined(&app, &room, &user("alice"), "a", 1).await.unwrap(); // joined twice: once
    b.ports
        .presence
        .room_joined(&app, &room, &user("alice"), "b", 7)
        .await
        .unwrap();
    b.ports
        .presence
        .room_joined(&app, &room, &user("bob"), "b", 8)
        .await
        .unwrap();
    assert_eq!(p.room_member_count(&app, &room).await.unwrap(), 2);
    let mut nodes = p.room_nodes(&app, &room).await.unwrap();
    nodes.sort();
    assert_eq!(nodes, vec!["a", "b"]);

    b.ports.presence.room_left(&app, &room, "b", 8).await.unwrap();
    assert_eq!(p.room_member_count(&app, &room).await.unwrap(), 1);
    assert_eq!(p.room_user_removed(&app, &room, &user("alice")).await.unwrap(), 2);
    assert_eq!(p.room_member_count(&app, &room).await.unwrap(), 0);
    assert!(p.room_nodes(&app, &room).await.unwrap().is_empty());

    p.room_joined(&app, &room, &user("carol"), "a", 2).await.unwrap();
    assert_eq!(b.ports.presence.room_closed(&app, &room).await.unwrap(), 1);
    assert_eq!(p.room_member_count(&app, &room).await.unwrap(), 0);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_dead_nodes_users_go_offline_and_are_no_longer_routed_to_it() {
    let Some(cfg) = config() else { return };
    let a = node(&cfg, "a").await;
    let app = AppId::generate();
    let room = RoomId::parse("hall").unwrap();
    let dave = user("dave");

    // Node "ghost" holds a lease, dave and a room member; then it dies without a word: its
    // lease runs out and nothing of it cleans up.
    let client = redis::Client::open(cfg.url.as_str()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let lease = |until: i64| {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(format!("{}:{{nodes}}", cfg.prefix)).arg(until).arg("ghost");
        cmd
    };
    lease(now_ms() + 10_000).query_async::<()>(&mut raw).await.unwrap();
    a.ports
        .presence
        .session_opened(&app, &dave, "ghost", 1, "phone", "ios")
        .await
        .unwrap();
    a.ports
        .presence
        .room_joined(&app, &room, &dave, "ghost", 1)
        .await
        .unwrap();
    assert!(
        eventually(3, || async {
            a.ports
                .presence
                .nodes_of(&app, std::slice::from_ref(&dave))
                .await
                .unwrap()
                .contains_key("ghost")
        })
        .await
    );
    lease(now_ms() - 1).query_async::<()>(&mut raw).await.unwrap();

    assert!(
        eventually(3, || async {
            a.ports
                .presence
                .nodes_of(&app, std::slice::from_ref(&dave))
                .await
                .unwrap()
                .is_empty()
        })
        .await,
        "a node whose lease ran out is not routed to"
    );
    assert!(
        eventually(10, || async {
            let p = a
                .ports
                .presence
                .presence(&app, std::slice::from_ref(&dave))
                .await
                .unwrap();
            !p[0].online && p[0].last_seen.is_some()
        })
        .await,
        "the reaper removed dave's session and recorded when he was last seen"
    );
    assert_eq!(a.ports.presence.room_member_count(&app, &room).await.unwrap(), 0);
    a.stop().await;
}

#[tokio::test]
async fn a_clean_stop_gives_up_the_lease_and_the_sessions_at_once() {
    let Some(cfg) = config() else { return };
    let a = node(&cfg, "a").await;
    let b = node(&cfg, "b").await;
    let app = AppId::generate();
    b.ports
        .presence
        .session_opened(&app, &user("erin"), "b", 1, "web", "web")
        .await
        .unwrap();
    b.stop().await;
    let p = a.ports.presence.presence(&app, &[user("erin")]).await.unwrap();
    assert!(!p[0].online);
    a.stop().await;
}

#[tokio::test]
async fn a_second_process_with_the_same_node_id_is_refused_naming_the_id() {
    let Some(cfg) = config() else { return };
    let a = node(&cfg, "pod-1").await;
    let err = RedisAdapters::connect(&cfg, "pod-1", &TaskTracker::new(), CancellationToken::new())
        .await
        .err()
        .expect("the second pod-1 must not start");
    assert!(err.to_string().contains("\"pod-1\""), "{err}");
    assert!(err.to_string().contains("TERN_NODE_ID"), "{err}");
    // Once the first stops cleanly, the id is free at once.
    a.stop().await;
    node(&cfg, "pod-1").await.stop().await;
}

#[tokio::test]
async fn an_apps_rate_limit_holds_across_two_nodes() {
    let Some(cfg) = config() else { return };
    let (a, b) = (node(&cfg, "a").await, node(&cfg, "b").await);
    // 20 per second, 10 at once: 30 requests at once, alternating nodes, let 10 through.
    let mut allowed = 0;
    let mut waits = Vec::new();
    for i in 0..30 {
        let n = if i % 2 == 0 { &a } else { &b };
        match n.ports.rate_limits.check("app1", "api", 20, 10).await.unwrap() {
            None => allowed += 1,
            Some(wait) => waits.push(wait),
        }
    }
    assert!((10..=11).contains(&allowed), "allowed {allowed} of a burst of 10");
    assert!(waits.iter().all(|w| *w <= Duration::from_millis(60)), "{waits:?}");
    // Another app, or another limit of the same app, is counted apart.
    assert_eq!(a.ports.rate_limits.check("app2", "api", 20, 10).await.unwrap(), None);
    assert_eq!(
        b.ports.rate_limits.check("app1", "send:alice", 20, 10).await.unwrap(),
        None
    );
    // After the wait, the next request passes.
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(b.ports.rate_limits.check("app1", "api", 20, 10).await.unwrap(), None);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn unusable_addresses_and_prefixes_are_refused_with_a_clear_error() {
    let tasks = TaskTracker::new();
    let stop = CancellationToken::new();
    let bad = |url: &str, prefix: &str| RedisConfig {
        url: url.into(),
        prefix: prefix.into(),
    };
    let err = RedisAdapters::connect(&bad("http://x", "tern"), "a", &tasks, stop.clone())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("TERN_REDIS_URL"), "{err}");
    let err = RedisAdapters::connect(&bad("redis://127.0.0.1:6379", "no spaces"), "a", &tasks, stop.clone())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("TERN_REDIS_PREFIX"), "{err}");
    // Nothing listens on port 1.
    let err = RedisAdapters::connect(&bad("redis://127.0.0.1:1", "tern"), "a", &tasks, stop)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("cannot reach Redis"), "{err}");
}

#[tokio::test]
async fn after_redis_comes_back_the_bus_delivers_again_without_a_restart() {
    let Some(cfg) = config() else { return };
    let proxy = tern_platform::redis_adapters::testing::CuttableProxy::start(&cfg.url)
        .await
        .expect("a proxy to Redis");
    let cut_cfg = RedisConfig {
        url: proxy.url(),
        prefix: cfg.prefix.clone(),
    };
    let a = node(&cfg, "a").await;
    let b = node(&cut_cfg, "b").await;
    let mut on_b = b.ports.bus.subscribe("b").await.unwrap();
    let app = AppId::generate();
    let event = |n: &str| BusEvent {
        app_id: app.clone(),
        target: Target::Users {
            users: vec![user("bob")],
        },
        push: Push::Notification {
            id: n.to_owned(),
            content: serde_json::json!({}),
            created_at: 0,
        },
    };
    a.ports.bus.publish("b", event("before")).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), on_b.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, event("before"));

    proxy.set_cut(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // While cut, b's calls fail with an error rather than hang or panic.
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        b.ports
            .presence
            .session_opened(&app, &user("bob"), "b", 1, "phone", "ios"),
    )
    .await
    .expect("a call during the outage answers within its timeout");
    assert!(err.is_err());

    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.set_cut(false);

    // Live delivery resumes by itself within seconds.
    let mut got_after = false;
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while !got_after && tokio::time::Instant::now() < until {
        a.ports.bus.publish("b", event("after")).await.unwrap();
        if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(500), on_b.recv()).await {
            got_after = e == event("after");
        }
    }
    assert!(got_after, "b receives bus events again after Redis came back");
    assert!(b
        .ports
        .presence
        .session_opened(&app, &user("bob"), "b", 2, "phone", "ios")
        .await
        .is_ok());
    a.stop().await;
    b.stop().await;
}
