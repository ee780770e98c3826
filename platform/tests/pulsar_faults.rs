//! The Pulsar bus's failure paths, through the real adapter (`PulsarBus`) against the test
//! broker (`support/pulsar_broker`, a double speaking Pulsar's binary protocol; not Pulsar):
//! - the broker refuses with `ServiceNotReady` for a while, then recovers: what was
//!   published during the refusal and after it arrives, in order, and `/readyz`'s check
//!   names Pulsar while it refuses;
//! - the broker restarts and loses its state (every connection, topic and subscription):
//!   producers and consumers are built again, with backoff (a handful of connection
//!   attempts while it is down, not a loop), and deliveries resume within a bound;
//! - a consumer stops receiving on a live connection (pulsar-rs issue #189): the watchdog
//!   rebuilds it, without a reconnect, and what waited in the broker arrives.
//!
//! `/readyz` as a process answers it: `tests/pulsar_readyz.rs` at the repository root.
#![cfg(feature = "pulsar")]
#![allow(clippy::unwrap_used)]

#[path = "support/pulsar_broker/mod.rs"]
mod pulsar_broker;

use std::time::Duration;

use pulsar_broker::TestBroker;
use tern_platform::bus::{Bus, BusEvent, Push, Target};
use tern_platform::ids::{AppId, ConversationId, UserId};
use tern_platform::pulsar_bus::{PulsarBus, PulsarConfig, Tuning};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Small queues and a quick watchdog (probe every 500 ms, rebuilt after 2 s of silence).
fn tuning() -> Tuning {
    Tuning {
        inbox_queue: 256,
        outbox_queue: 1_024,
        batch_max: 64,
        publish_wait: Duration::from_millis(500),
        // Long enough that the events held during a 5 s refusal are still retried after it.
        retry_for: Duration::from_secs(30),
        probe_every: Duration::from_millis(500),
        silent_after: Duration::from_secs(2),
        receiver_queue: 100,
    }
}

/// The adapter's longest wait between two attempts (`BACKOFF_MAX` in `pulsar_bus`).
const BACKOFF_MAX: Duration = Duration::from_secs(5);

struct Setup {
    broker: TestBroker,
    prefix: String,
    stops: Vec<CancellationToken>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        for s in &self.stops {
            s.cancel();
        }
    }
}

impl Setup {
    async fn new() -> Setup {
        Setup {
            broker: TestBroker::start().await.unwrap(),
            prefix: format!(
                "persistent://public/default/f{}",
                ulid::Ulid::new().to_string().to_lowercase()
            ),
            stops: Vec::new(),
        }
    }

    async fn node(&mut self, id: &str) -> PulsarBus {
        let stop = CancellationToken::new();
        self.stops.push(stop.clone());
        let config = PulsarConfig {
            url: self.broker.url(),
            topic_prefix: self.prefix.clone(),
            token: None,
            tuning: tuning(),
        };
        PulsarBus::connect(config, id, stop).await.unwrap()
    }
}

/// Event number `n` of one conversation (`-1`: a probe of the test itself).
fn event(n: i64) -> BusEvent {
    let (alice, bob) = (UserId::parse("alice").unwrap(), UserId::parse("bob").unwrap());
    BusEvent {
        app_id: AppId::generate(),
        target: Target::Users {
            users: vec![alice.clone()],
        },
        push: Push::Receipt {
            conversation_id: ConversationId::direct(&alice, &bob),
            user_id: bob,
            read_seq: n,
        },
    }
}

fn number(ev: &BusEvent) -> i64 {
    match &ev.push {
        Push::Receipt { read_seq, .. } => *read_seq,
        other => panic!("unexpected {other:?}"),
    }
}

/// `b`'s inbox once `a`'s events reach it.
async fn listening(a: &PulsarBus, b: &PulsarBus) -> mpsc::Receiver<BusEvent> {
    let mut rx = b.subscribe("b").await.unwrap();
    for _ in 0..60 {
        a.publish("b", event(-1)).await.unwrap();
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            return rx;
        }
    }
    panic!("b never started receiving");
}

/// The numbered events (probes skipped) that arrive until `want` has arrived or `within`
/// has passed.
async fn collect_until(rx: &mut mpsc::Receiver<BusEvent>, want: i64, within: Duration) -> Vec<i64> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while !got.contains(&want) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) if number(&ev) >= 0 => got.push(number(&ev)),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    got
}

/// Waits until `check` holds, for at most `within`.
async fn until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every number in `sent` arrived, in the order sent (a repeat of an event in flight when a
/// connection dropped is allowed: at least once).
fn assert_all_in_order(got: &[i64], sent: &[i64]) {
    let mut seen = got.to_vec();
    seen.dedup();
    let mut ordered = seen.clone();
    ordered.sort_unstable();
    assert_eq!(seen, ordered, "out of order: {got:?}");
    for n in sent {
        assert!(seen.contains(n), "event {n} was lost; arrived: {got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_not_ready_then_recovery_loses_nothing_published() {
    let mut s = Setup::new().await;
    let a = s.node("a").await;
    let b = s.node("b").await;
    let mut on_b = listening(&a, &b).await;
    assert_eq!(b.health().check(), Ok(()));

    // The broker refuses every lookup, producer and subscription, and the connections
    // drop, so both nodes must ask again.
    s.broker.set_not_ready(true);
    s.broker.drop_connections();
    until("readyz's check names pulsar", Duration::from_secs(5), || {
        b.health().check().is_err_and(|e| e.contains("pulsar"))
    })
    .await;
    // 5 s of refusals: longer than the `pulsar` crate's own retries of a lookup, so the
    // adapter's retry of the held batch is what carries these events.
    let mut sent = Vec::new();
    for n in 0..25 {
        if a.publish("b", event(n)).await.is_ok() {
            sent.push(n);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(sent.len(), 25, "a publish returns at once while the queue has room");
    assert!(b.health().check().is_err(), "still refused after 5 s: not ready");
    let during: Vec<i64> = std::iter::from_fn(|| on_b.try_recv().ok())
        .map(|ev| number(&ev))
        .filter(|n| *n >= 0)
        .collect();
    assert!(during.is_empty(), "nothing can pass a broker that refuses: {during:?}");

    s.broker.set_not_ready(false);
    for n in 25..35 {
        a.publish("b", event(n)).await.unwrap();
        sent.push(n);
    }
    let got = collect_until(&mut on_b, 34, Duration::from_secs(30)).await;
    assert_all_in_order(&got, &sent);
    until("readyz's check is ready again", Duration::from_secs(5), || {
        b.health().check().is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_that_loses_its_state_is_survived_within_a_bound() {
    let mut s = Setup::new().await;
    let a = s.node("a").await;
    let b = s.node("b").await;
    let mut on_b = listening(&a, &b).await;
    let accepted_before = s.broker.connections_accepted();

    const DOWN: Duration = Duration::from_secs(3);
    s.broker.restart_empty(DOWN);
    let back_at = Instant::now() + DOWN;
    until("readyz's check names pulsar", DOWN, || {
        b.health().check().is_err_and(|e| e.contains("pulsar"))
    })
    .await;

    // One event every 100 ms from the start of the outage; those sent before b's
    // subscription exists again are gone with the broker's state (the clients' sync heals
    // them); from the first that arrives on, every one arrives.
    let mut n = 0;
    let first = loop {
        let _ = a.publish("b", event(n)).await;
        n += 1;
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(100), on_b.recv()).await {
            if number(&ev) >= 0 {
                break number(&ev);
            }
        }
        assert!(
            Instant::now() < back_at + 2 * BACKOFF_MAX,
            "no delivery within {:?} of the broker's return",
            2 * BACKOFF_MAX
        );
    };
    let resumed_after = Instant::now().saturating_duration_since(back_at);
    println!("deliveries resumed {resumed_after:?} after the broker came back");

    // Built again with backoff: tens of attempts while it was down (14 to 60 seen, from
    // the several producers' and consumers' tasks), not a loop (over 1,000 without the
    // consumers' backoff).
    let refused = s.broker.connections_refused();
    println!("connection attempts refused while the broker was down: {refused}");
    assert!(
        (1..=200).contains(&refused),
        "connection attempts while down for {DOWN:?}: {refused}"
    );
    assert!(s.broker.connections_accepted() > accepted_before, "new connections");
    let b_topic = b.node_topic("b");
    assert!(
        s.broker.has_consumer(&b_topic, "tern-node"),
        "b's consumer exists again"
    );

    let last = n + 20;
    for m in n..last {
        a.publish("b", event(m)).await.unwrap();
    }
    let got = collect_until(&mut on_b, last - 1, Duration::from_secs(10)).await;
    let later: Vec<i64> = (first + 1..last).collect();
    assert_all_in_order(&got, &later);
    until("readyz's check is ready again", Duration::from_secs(5), || {
        b.health().check().is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_receiving_is_rebuilt_by_the_watchdog() {
    let mut s = Setup::new().await;
    let a = s.node("a").await;
    let b = s.node("b").await;
    let mut on_b = listening(&a, &b).await;
    let accepted_before = s.broker.connections_accepted();

    // The broker forgets b's consumer on a connection that stays up: no error, no end of
    // stream, only silence. Events wait in the durable subscription.
    s.broker.orphan_consumers();
    let orphaned_at = Instant::now();
    let mut sent = Vec::new();
    let mut got = Vec::new();
    for n in 0..200 {
        a.publish("b", event(n)).await.unwrap();
        sent.push(n);
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(50), on_b.recv()).await {
            if number(&ev) >= 0 {
                got.push(number(&ev));
                break;
            }
        }
    }
    let silent_for = orphaned_at.elapsed();
    println!("the orphaned consumer received again after {silent_for:?}");
    assert!(
        !got.is_empty(),
        "b never received again after its consumer was orphaned"
    );
    // The watchdog counts from the last message heard (a probe, at most `probe_every`
    // before the orphaning) and rebuilds within one more round trip.
    let (silent_after, probe_every) = (tuning().silent_after, tuning().probe_every);
    assert!(
        silent_for + probe_every >= silent_after && silent_for < silent_after + Duration::from_secs(4),
        "rebuilt after {silent_for:?} (the watchdog's limit: {silent_after:?})"
    );
    assert_eq!(
        s.broker.connections_accepted(),
        accepted_before,
        "recovered without a reconnect: the watchdog, not a connection error"
    );
    let last = *sent.last().unwrap();
    got.extend(collect_until(&mut on_b, last, Duration::from_secs(10)).await);
    assert_all_in_order(&got, &sent);
    assert!(s.broker.has_consumer(&b.node_topic("b"), "tern-node"));
}
