//! One conformance suite for every Bus adapter: what a user notices of the bus (their
//! message reaches the node holding their session, once, in order) must hold whichever
//! adapter carries it. Each case is a function over a `Harness`, run against:
//! - the in-process bus (always);
//! - the Redis bus (`TERN_TEST_REDIS_URL`; skipped without it unless
//!   `TERN_TEST_REQUIRE_SERVICES=1`), faults injected through a cuttable TCP proxy;
//! - the Pulsar bus on the test broker (`--features pulsar`; always with the feature): a
//!   double that speaks Pulsar's binary protocol, see `support/pulsar_broker`;
//! - the Pulsar bus on a real broker when `TERN_TEST_PULSAR_URL` is set (feature `pulsar`).
//!
//! Cases: per-node delivery, fan-out to several nodes (and invalidations to all), order per
//! conversation, delivery again after the connection to the service drops, a node that
//! restarts under the same id, and backpressure that keeps memory bounded.
#![allow(clippy::unwrap_used)]

#[cfg(feature = "pulsar")]
#[path = "support/pulsar_broker/mod.rs"]
mod pulsar_broker;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tern_platform::bus::{Bus, BusEvent, Invalidation, Push, Target};
use tern_platform::ids::{AppId, ConversationId, UserId};
use tokio::sync::mpsc;

/// A running node's bus, and how to stop it (as its process would).
struct NodeBus {
    bus: Arc<dyn Bus>,
    stop: Box<dyn FnOnce() + Send>,
}

#[async_trait]
trait Harness: Send + Sync {
    /// The bus of a node process with id `id`.
    async fn node(&self, id: &str) -> NodeBus;
    /// Events a node's receiver may hold at most while its gateway does not read.
    fn bound(&self) -> usize;
    /// Cuts every connection to the service; `false` where there is none.
    async fn drop_connections(&self) -> bool;
}

fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

/// An event whose `read_seq` numbers it within conversation `conv`.
fn event(conv: &str, n: i64) -> BusEvent {
    BusEvent {
        app_id: AppId::generate(),
        target: Target::Users {
            users: vec![user("alice")],
        },
        push: Push::Receipt {
            conversation_id: ConversationId::direct(&user("alice"), &user(conv)),
            user_id: user(conv),
            read_seq: n,
        },
    }
}

fn numbered(ev: &BusEvent) -> (String, i64) {
    match &ev.push {
        Push::Receipt { user_id, read_seq, .. } => (user_id.as_str().to_owned(), *read_seq),
        other => panic!("unexpected {other:?}"),
    }
}

async fn recv(rx: &mut mpsc::Receiver<BusEvent>, secs: u64) -> Option<BusEvent> {
    tokio::time::timeout(Duration::from_secs(secs), rx.recv())
        .await
        .ok()
        .flatten()
}

/// Subscribes and waits until the subscription is live: an adapter may take a moment to
/// attach (Redis SUBSCRIBE, Pulsar SUBSCRIBE and FLOW), and the bus promises nothing to a
/// node before it listens. A probe event is published until one arrives.
async fn listening(sender: &dyn Bus, node: &NodeBus, id: &str) -> mpsc::Receiver<BusEvent> {
    let mut rx = node.bus.subscribe(id).await.unwrap();
    for _ in 0..60 {
        sender.publish(id, event("probe", -1)).await.unwrap();
        if let Some(ev) = recv(&mut rx, 1).await {
            assert_eq!(numbered(&ev).0, "probe");
            // Late probes still on the way are skipped by callers through `skip_probes`.
            return rx;
        }
    }
    panic!("node {id} never started receiving");
}

/// The next event that is not a probe.
async fn next_real(rx: &mut mpsc::Receiver<BusEvent>, secs: u64) -> Option<BusEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ev = tokio::time::timeout(left, rx.recv()).await.ok().flatten()?;
        if numbered(&ev).0 != "probe" {
            return Some(ev);
        }
    }
}

async fn per_node_delivery(h: &dyn Harness) {
    let a = h.node("a").await;
    let b = h.node("b").await;
    let mut on_a = listening(b.bus.as_ref(), &a, "a").await;
    let mut on_b = listening(a.bus.as_ref(), &b, "b").await;
    a.bus.publish("b", event("bob", 1)).await.unwrap();
    b.bus.publish("a", event("carol", 2)).await.unwrap();
    assert_eq!(numbered(&next_real(&mut on_b, 10).await.unwrap()), ("bob".into(), 1));
    assert_eq!(numbered(&next_real(&mut on_a, 10).await.unwrap()), ("carol".into(), 2));
    // Nothing else arrives: each event went to its node only, once.
    assert!(
        next_real(&mut on_a, 1).await.is_none(),
        "a received an event meant for b"
    );
    assert!(
        next_real(&mut on_b, 1).await.is_none(),
        "b received a duplicate or a's event"
    );
    // A node nobody listens for is not an error.
    a.bus.publish("nobody", event("dan", 3)).await.unwrap();
    (a.stop)();
    (b.stop)();
}

async fn fan_out_to_several_nodes(h: &dyn Harness) {
    let sender = h.node("sender").await;
    let mut nodes = Vec::new();
    for id in ["n1", "n2", "n3"] {
        let n = h.node(id).await;
        let rx = listening(sender.bus.as_ref(), &n, id).await;
        let inval = n.bus.invalidations().await.unwrap();
        nodes.push((id, n, rx, inval));
    }
    for (i, (id, ..)) in nodes.iter().enumerate() {
        sender.bus.publish(id, event("erin", i as i64)).await.unwrap();
    }
    for (i, (id, _, rx, _)) in nodes.iter_mut().enumerate() {
        let got = next_real(rx, 10).await.unwrap_or_else(|| panic!("{id} got nothing"));
        assert_eq!(numbered(&got), ("erin".into(), i as i64), "{id}");
    }
    // An invalidation reaches every node, the sender's own included.
    let inval = Invalidation::Words {
        app_id: AppId::generate(),
    };
    let mut own = sender.bus.invalidations().await.unwrap();
    let mut all_heard = false;
    for _ in 0..30 {
        sender.bus.invalidate(inval.clone()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut heard = 0;
        for (_, _, _, rx) in nodes.iter_mut() {
            if let Ok(got) = rx.try_recv() {
                assert_eq!(got, inval);
                heard += 1;
            }
        }
        // Listeners attach in their own time: repeat until one round reaches them all.
        if own.try_recv().is_ok() && heard == nodes.len() {
            all_heard = true;
            break;
        }
    }
    assert!(all_heard, "every node, the sender too, hears an invalidation");
    for (_, n, _, _) in nodes {
        (n.stop)();
    }
    (sender.stop)();
}

async fn order_per_conversation(h: &dyn Harness) {
    let a = h.node("a").await;
    let b = h.node("b").await;
    let mut on_b = listening(a.bus.as_ref(), &b, "b").await;
    const N: i64 = 300;
    for n in 0..N {
        a.bus.publish("b", event("frank", n)).await.unwrap();
        a.bus.publish("b", event("grace", n)).await.unwrap();
    }
    let mut next = std::collections::HashMap::from([("frank".to_owned(), 0i64), ("grace".to_owned(), 0i64)]);
    for _ in 0..2 * N {
        let (conv, n) = numbered(&next_real(&mut on_b, 20).await.expect("every event arrives"));
        let want = next.get_mut(&conv).unwrap();
        assert_eq!(n, *want, "conversation {conv} out of order");
        *want += 1;
    }
    assert!(next_real(&mut on_b, 1).await.is_none(), "no duplicates");
    (a.stop)();
    (b.stop)();
}

async fn delivers_again_after_the_connection_drops(h: &dyn Harness) {
    let a = h.node("a").await;
    let b = h.node("b").await;
    let mut on_b = listening(a.bus.as_ref(), &b, "b").await;
    a.bus.publish("b", event("heidi", 0)).await.unwrap();
    assert_eq!(numbered(&next_real(&mut on_b, 10).await.unwrap()).1, 0);
    if !h.drop_connections().await {
        (a.stop)();
        (b.stop)();
        return;
    }
    // Publishes may fail while the adapter reconnects; one sent after it did arrives, with
    // no restart of either node.
    let mut arrived = false;
    for n in 1..=60 {
        let _ = a.bus.publish("b", event("heidi", n)).await;
        // A persistent bus may deliver again the event that was in flight, unacked, when
        // the connection dropped (at least once; clients show a message once per seq).
        if let Some(ev) = next_real(&mut on_b, 1).await {
            if numbered(&ev).1 >= 1 {
                arrived = true;
                break;
            }
        }
    }
    assert!(arrived, "b receives bus events again after the connection came back");
    (a.stop)();
    (b.stop)();
}

async fn a_node_that_restarts_receives_again(h: &dyn Harness) {
    let a = h.node("a").await;
    let b = h.node("b").await;
    let mut on_b = listening(a.bus.as_ref(), &b, "b").await;
    a.bus.publish("b", event("ivan", 1)).await.unwrap();
    assert_eq!(numbered(&next_real(&mut on_b, 10).await.unwrap()).1, 1);
    (b.stop)();
    drop(on_b);
    // Events sent while b is down are for sessions that died with it.
    let _ = a.bus.publish("b", event("ivan", 2)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = h.node("b").await;
    let mut on_b = listening(a.bus.as_ref(), &b, "b").await;
    a.bus.publish("b", event("ivan", 3)).await.unwrap();
    assert_eq!(
        numbered(&next_real(&mut on_b, 10).await.unwrap()),
        ("ivan".into(), 3),
        "the restarted node receives what is sent after it listens, and not the old run's event"
    );
    (a.stop)();
    (b.stop)();
}

async fn backpressure_keeps_memory_bounded(h: &dyn Harness) {
    let a = h.node("a").await;
    let b = h.node("b").await;
    let mut on_b = listening(a.bus.as_ref(), &b, "b").await;
    let bound = h.bound();
    let total = bound + 2_000;
    // The gateway reads nothing: publishing either goes on (the service holds or drops the
    // surplus) or pushes back (a publish that waits is stopped here): never a receiver that
    // grows past its bound.
    let mut published = 0;
    for n in 0..total {
        match tokio::time::timeout(Duration::from_secs(3), a.bus.publish("b", event("judy", n as i64))).await {
            Ok(Ok(())) => published += 1,
            Ok(Err(_)) | Err(_) => break,
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(on_b.len() <= bound, "the receiver holds {} > {bound}", on_b.len());
    assert!(
        published >= bound.min(total),
        "publishing pushed back before the bound: {published}"
    );
    // Once the gateway reads again, events flow: drain, then a new one arrives.
    while on_b.try_recv().is_ok() {}
    let mut flowing = false;
    for _ in 0..200 {
        while on_b.try_recv().is_ok() {}
        let _ = tokio::time::timeout(Duration::from_secs(1), a.bus.publish("b", event("karl", 1))).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut seen = false;
        while let Ok(ev) = on_b.try_recv() {
            seen |= numbered(&ev).0 == "karl";
        }
        if seen {
            flowing = true;
            break;
        }
    }
    assert!(flowing, "events flow again once the gateway reads");
    (a.stop)();
    (b.stop)();
}

// ---- the harnesses ----

struct Memory {
    bus: Arc<tern_platform::bus::memory::MemoryBus>,
}

#[async_trait]
impl Harness for Memory {
    async fn node(&self, _: &str) -> NodeBus {
        NodeBus {
            bus: self.bus.clone(),
            stop: Box::new(|| {}),
        }
    }
    fn bound(&self) -> usize {
        65_536
    }
    async fn drop_connections(&self) -> bool {
        false
    }
}

fn memory() -> Memory {
    Memory {
        bus: Arc::new(tern_platform::bus::memory::MemoryBus::new()),
    }
}

struct Redis {
    config: tern_platform::redis_adapters::RedisConfig,
    proxy: tern_platform::redis_adapters::testing::CuttableProxy,
}

#[async_trait]
impl Harness for Redis {
    async fn node(&self, id: &str) -> NodeBus {
        let tasks = tokio_util::task::TaskTracker::new();
        let stop = tokio_util::sync::CancellationToken::new();
        let mut config = self.config.clone();
        config.url = self.proxy.url();
        let mut adapters = None;
        for _ in 0..100 {
            match tern_platform::redis_adapters::RedisAdapters::connect(&config, id, &tasks, stop.clone()).await {
                Ok(a) => {
                    adapters = Some(a);
                    break;
                }
                // A node that has just stopped may still hold its lease for a moment.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let adapters = adapters.expect("redis node starts");
        NodeBus {
            bus: adapters.bus,
            stop: Box::new(move || stop.cancel()),
        }
    }
    fn bound(&self) -> usize {
        65_536
    }
    async fn drop_connections(&self) -> bool {
        self.proxy.set_cut(true);
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.proxy.set_cut(false);
        true
    }
}

async fn redis() -> Option<Redis> {
    let url = match std::env::var("TERN_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let message = "redis bus conformance skipped: TERN_TEST_REDIS_URL is not set";
            if std::env::var("TERN_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{message} (and TERN_TEST_REQUIRE_SERVICES=1)");
            }
            println!("{message}");
            return None;
        }
    };
    let proxy = tern_platform::redis_adapters::testing::CuttableProxy::start(&url)
        .await
        .unwrap();
    Some(Redis {
        config: tern_platform::redis_adapters::RedisConfig {
            url,
            prefix: format!("bus-{}", ulid::Ulid::new().to_string().to_lowercase()),
        },
        proxy,
    })
}

#[cfg(feature = "pulsar")]
mod on_pulsar {
    use super::*;
    use tern_platform::pulsar_bus::{PulsarBus, PulsarConfig, Tuning};

    /// Small queues and a quick watchdog, so the bounds and the recovery show in seconds.
    pub fn tuning() -> Tuning {
        Tuning {
            inbox_queue: 256,
            outbox_queue: 1_024,
            batch_max: 64,
            publish_wait: Duration::from_millis(500),
            retry_for: Duration::from_secs(10),
            probe_every: Duration::from_millis(500),
            silent_after: Duration::from_secs(2),
            receiver_queue: 100,
        }
    }

    pub struct Pulsar {
        pub broker: Option<super::pulsar_broker::TestBroker>,
        pub url: String,
        pub prefix: String,
    }

    impl Pulsar {
        pub async fn connect(&self, id: &str) -> (PulsarBus, tokio_util::sync::CancellationToken) {
            let stop = tokio_util::sync::CancellationToken::new();
            let config = PulsarConfig {
                url: self.url.clone(),
                topic_prefix: self.prefix.clone(),
                token: std::env::var("TERN_TEST_PULSAR_TOKEN").ok(),
                tuning: tuning(),
            };
            let bus = PulsarBus::connect(config, id, stop.clone()).await.unwrap();
            (bus, stop)
        }
    }

    #[async_trait]
    impl Harness for Pulsar {
        async fn node(&self, id: &str) -> NodeBus {
            let (bus, stop) = self.connect(id).await;
            NodeBus {
                bus: Arc::new(bus),
                stop: Box::new(move || stop.cancel()),
            }
        }
        fn bound(&self) -> usize {
            tuning().inbox_queue
        }
        async fn drop_connections(&self) -> bool {
            match &self.broker {
                Some(b) => {
                    b.drop_connections();
                    true
                }
                None => false,
            }
        }
    }

    pub fn prefix() -> String {
        format!(
            "persistent://public/default/t{}",
            ulid::Ulid::new().to_string().to_lowercase()
        )
    }

    pub async fn test_broker() -> Pulsar {
        let broker = super::pulsar_broker::TestBroker::start().await.unwrap();
        Pulsar {
            url: broker.url(),
            broker: Some(broker),
            prefix: prefix(),
        }
    }

    pub fn real() -> Option<Pulsar> {
        match std::env::var("TERN_TEST_PULSAR_URL") {
            Ok(url) if !url.is_empty() => Some(Pulsar {
                broker: None,
                url,
                prefix: prefix(),
            }),
            _ => {
                println!("real Pulsar conformance skipped: TERN_TEST_PULSAR_URL is not set");
                None
            }
        }
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod in_process {
            $(#[tokio::test] async fn $case() { super::$case(&super::memory()).await })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() {
                if let Some(h) = super::redis().await { super::$case(&h).await }
            })*
        }
        #[cfg(feature = "pulsar")]
        mod pulsar_test_broker {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() {
                super::$case(&super::on_pulsar::test_broker().await).await
            })*
        }
        #[cfg(feature = "pulsar")]
        mod pulsar_real_broker {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() {
                if let Some(h) = super::on_pulsar::real() { super::$case(&h).await }
            })*
        }
    };
}

conformance!(
    per_node_delivery,
    fan_out_to_several_nodes,
    order_per_conversation,
    delivers_again_after_the_connection_drops,
    a_node_that_restarts_receives_again,
    backpressure_keeps_memory_bounded,
);
