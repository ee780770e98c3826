//! Measures the Pulsar bus adapter's own cost per message: heap allocations (and bytes
//! asked for) and batches (SEND frames) per bus event, for one node publishing to another
//! through `PulsarBus`, beside the in-process bus and (with `--redis-url`) the Redis bus
//! doing the same in the same process. Allocations are counted by `stats_alloc` around the
//! measured publishing and receiving; batches by the adapter's own counter
//! `tern_bus_pulsar_batches_total`. The broker runs as a process of its own, so none of its
//! work is counted: the figures are the adapter's and the `pulsar` crate's (with the
//! event's JSON encoding and decoding).
//!
//! ```sh
//! cargo build --release -p tern-platform --features pulsar --example pulsar_test_broker --example pulsar_overhead
//! target/release/examples/pulsar_overhead --messages 100000 [--redis-url redis://127.0.0.1:6379]
//! ```
//!
//! Without `--pulsar-url` it starts `pulsar_test_broker` from its own directory: the test
//! broker (`platform/tests/support/pulsar_broker`, a double speaking Pulsar's binary
//! protocol; not Pulsar, not its speed). The client-side counts do not depend on the broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tern_platform::bus::{Bus, BusEvent, Push, Target};
use tern_platform::ids::{AppId, UserId};
use tern_platform::pulsar_bus::{PulsarBus, PulsarConfig, Tuning};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Keeps the adapter's batch counter (every other metric is dropped).
struct Batches(Arc<AtomicU64>);

impl metrics::Recorder for Batches {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        if key.name() == "tern_bus_pulsar_batches_total" {
            metrics::Counter::from_arc(self.0.clone())
        } else {
            metrics::Counter::noop()
        }
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args().skip_while(|a| a != name);
    args.next()?;
    args.next()
}

/// A bus event the size of a short chat message (a notification with ~100 bytes of text).
fn event(n: u64) -> BusEvent {
    BusEvent {
        app_id: AppId::generate(),
        target: Target::Users {
            users: vec![UserId::parse("alice").unwrap()],
        },
        push: Push::Notification {
            id: format!("n{n}"),
            content: serde_json::json!({"text": "The quick brown fox jumps over the lazy dog, twice: the quick brown fox jumps over the lazy dog."}),
            created_at: 1_765_000_000_000,
        },
    }
}

struct Figures {
    allocations: usize,
    bytes: usize,
    seconds: f64,
}

/// Publishes `messages` events from `a` to node `b` (read from `rx`), at most 4,000 in
/// flight, after a warm-up; what the process allocated meanwhile.
async fn run(a: Arc<dyn Bus>, mut rx: mpsc::Receiver<BusEvent>, messages: u64) -> Figures {
    // Warm-up: until b receives, then 2,000 more (producers, consumers, buffers grown).
    loop {
        a.publish("b", event(0)).await.unwrap();
        if tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_ok()
        {
            break;
        }
    }
    for n in 0..2_000 {
        a.publish("b", event(n)).await.unwrap();
    }
    let mut warm = 0;
    while warm < 2_000 {
        if tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.is_err() {
            break;
        }
        warm += 1;
    }
    while rx.try_recv().is_ok() {}

    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let region = Region::new(GLOBAL);
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        while counter.load(Ordering::Relaxed) < messages {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some(ev)) => {
                    drop(ev);
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                _ => break,
            }
        }
    });
    const WINDOW: u64 = 4_000;
    for n in 0..messages {
        while n.saturating_sub(received.load(Ordering::Relaxed)) > WINDOW {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        a.publish("b", event(n)).await.unwrap();
    }
    reader.await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let change = region.change();
    assert_eq!(received.load(Ordering::Relaxed), messages, "every event arrives");
    // The events themselves are made by this loop on every bus alike: counted, and the
    // same on every line.
    Figures {
        allocations: change.allocations + change.reallocations,
        bytes: change.bytes_allocated + change.bytes_reallocated.max(0) as usize,
        seconds,
    }
}

fn print(bus: &str, messages: u64, f: &Figures, extra: &str) {
    println!(
        "bus={bus} messages={messages} allocations/message={:.1} bytes_allocated/message={:.0} messages/s={:.0}{extra}",
        f.allocations as f64 / messages as f64,
        f.bytes as f64 / messages as f64,
        messages as f64 / f.seconds
    );
}

/// The test broker as a child process (`pulsar_test_broker` beside this binary), and its URL.
fn start_broker() -> (std::process::Child, String) {
    let exe = std::env::current_exe().unwrap();
    let broker = exe.with_file_name("pulsar_test_broker");
    let mut child = std::process::Command::new(&broker)
        .arg("127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {} (build that example too): {e}", broker.display()));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first.rsplit(' ').next().unwrap().to_owned();
    // Its periodic count lines are read and dropped, so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let batches = Arc::new(AtomicU64::new(0));
    if metrics::set_global_recorder(Batches(batches.clone())).is_err() {
        panic!("a metrics recorder was already set");
    }
    let messages: u64 = arg("--messages").map_or(100_000, |m| m.parse().expect("--messages N"));
    let event_bytes = serde_json::to_vec(&event(12_345)).unwrap().len();
    println!("event JSON: {event_bytes} bytes");

    let memory = Arc::new(tern_platform::bus::memory::MemoryBus::new());
    let rx = memory.subscribe("b").await.unwrap();
    print("memory", messages, &run(memory.clone(), rx, messages).await, "");

    if let Some(url) = arg("--redis-url") {
        let tasks = tokio_util::task::TaskTracker::new();
        let stop = CancellationToken::new();
        let config = tern_platform::redis_adapters::RedisConfig {
            url,
            prefix: format!("overhead{}", std::process::id()),
        };
        let connect = |id: &'static str| {
            let (config, tasks, stop) = (config.clone(), tasks.clone(), stop.clone());
            async move {
                tern_platform::redis_adapters::RedisAdapters::connect(&config, id, &tasks, stop)
                    .await
                    .unwrap()
                    .bus
            }
        };
        let (a, b) = (connect("a").await, connect("b").await);
        let rx = b.subscribe("b").await.unwrap();
        print("redis", messages, &run(a, rx, messages).await, "");
        stop.cancel();
    }

    let (mut child, url): (Option<std::process::Child>, String) = match arg("--pulsar-url") {
        Some(url) => (None, url),
        None => {
            let (child, url) = start_broker();
            (Some(child), url)
        }
    };
    let stop = CancellationToken::new();
    let config = PulsarConfig {
        url,
        topic_prefix: format!("persistent://public/default/overhead{}", std::process::id()),
        token: None,
        tuning: Tuning::default(),
    };
    let a = PulsarBus::connect(config.clone(), "a", stop.clone()).await.unwrap();
    let b = PulsarBus::connect(config, "b", stop.clone()).await.unwrap();
    let rx = b.subscribe("b").await.unwrap();
    let a: Arc<dyn Bus> = Arc::new(a);
    let b0 = batches.load(Ordering::Relaxed);
    let f = run(a, rx, messages).await;
    // Counted from the warm-up on, and the watchdog's probes (one per consumer every 5 s)
    // are batches too: a little more than the measured messages alone would make.
    let sent = batches.load(Ordering::Relaxed) - b0;
    let extra = format!(
        " batches={sent} (warm-up of 2,000 and probes included) batches/message={:.4}",
        sent as f64 / (messages + 2_000) as f64
    );
    print("pulsar", messages, &f, &extra);
    stop.cancel();
    if let Some(c) = child.as_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
}
