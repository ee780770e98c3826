//! The bus on Apache Pulsar (cargo feature `pulsar`), for deployments with many nodes: bus
//! events for a node go to that node's own topic, invalidations to one topic every node
//! reads. Redis keeps presence and routing (which node holds whom); only the deliveries
//! between nodes move here. Events are the same JSON as on Redis.
//!
//! Topics, under `TERN_PULSAR_TOPIC_PREFIX` (default `persistent://public/default/tern`):
//!
//! | topic | written by | read by |
//! |---|---|---|
//! | `<prefix>-node-<node>` | every node that delivers to `<node>` | `<node>`, one exclusive durable subscription `tern-node` |
//! | `<prefix>-inval` | every node | every node, a subscription `tern-inval-<node>` each |
//!
//! A node id is put into a topic name with every byte other than a letter, digit, `-`, `_`
//! or `.` written as `=XX` (hex), so any id gives a valid and distinct name.
//!
//! How it fails, and why it stays bounded:
//! - `publish` puts the event on the topic's outgoing queue (bounded: `outbox_queue`) and
//!   returns; it waits at most `publish_wait` for room and then fails with
//!   `BusError::Unavailable` (the pipeline logs it; the client's sync heals the delivery, as
//!   everything on the bus is already committed). One task per topic drains the queue into
//!   one cached producer, a batch at a time (the crate's batching, flushed when the queue is
//!   empty), so order per topic is kept. A failed batch is retried on a new producer with
//!   backoff (100 ms doubling to 5 s); an event older than `retry_for` is dropped and counted.
//! - One consumer per subscription, in a task that re-creates it (and the producer) with the
//!   same backoff when the stream errs or ends. The gateway's queue is bounded
//!   (`inbox_queue`); when it is full the task waits, stops acking and so stops granting
//!   Pulsar permits: the backlog waits in the broker, never in this process.
//! - A watchdog for the crate's known hang (a consumer that silently stops receiving after
//!   a broker restart, pulsar-rs issue #189): each consumer's task sends an empty probe
//!   message to its own topic every `probe_every`; a consumer that has heard nothing, not
//!   even its probe, for `silent_after` is dropped and built again.
//! - A node's subscription outlives the process, so a restarted node would first receive
//!   the backlog its previous run left: events published before this process subscribed are
//!   acked and skipped (their recipients' sessions are gone; sync heals them). Events sent
//!   while this process was reconnecting are delivered.
//! - `PulsarHealth` answers `/readyz`: Pulsar is down while a consumer is being re-created
//!   or has been silent too long, with the reason.
//!
//! Written here rather than using the crate's `MultiTopicProducer`: that one has no bounded
//! queue in front, no retry of a failed batch and no way to drop an idle topic's producer
//! on failure, and each of those decides whether memory stays bounded when a broker is away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use pulsar::consumer::InitialPosition;
use pulsar::{
    Authentication, ConnectionRetryOptions, ConsumerOptions, OperationRetryOptions, Producer, ProducerOptions, Pulsar,
    SubType, TokioExecutor,
};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusError, BusEvent, Invalidation};

/// The crate itself, for the test broker (its protobuf definitions and frame codec).
pub use pulsar;

/// How to reach Pulsar and how much this node may hold in memory.
#[derive(Debug, Clone)]
pub struct PulsarConfig {
    /// `pulsar://host:6650` or `pulsar+ssl://host:6651`.
    pub url: String,
    /// `persistent://<tenant>/<namespace>/<name>` (or `non-persistent://…`): the topics are
    /// this followed by `-node-<node>` and `-inval`.
    pub topic_prefix: String,
    /// A JWT for token authentication (`TERN_PULSAR_TOKEN`), if the broker asks for one.
    pub token: Option<String>,
    pub tuning: Tuning,
}

pub use crate::bus::DEFAULT_PULSAR_TOPIC_PREFIX as DEFAULT_TOPIC_PREFIX;

/// Bounds and timings. The defaults suit production; tests shorten them.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Events buffered for this node's gateway (as the other buses: 65,536).
    pub inbox_queue: usize,
    /// Events waiting to be sent, per destination topic.
    pub outbox_queue: usize,
    /// At most this many events in one batch.
    pub batch_max: usize,
    /// How long `publish` waits for room in a full outgoing queue before failing.
    pub publish_wait: Duration,
    /// How long a failed batch is retried before its events are dropped.
    pub retry_for: Duration,
    /// Each consumer's probe interval.
    pub probe_every: Duration,
    /// A consumer silent this long is re-created.
    pub silent_after: Duration,
    /// Messages the broker may push to a consumer before it acks (Pulsar permits).
    pub receiver_queue: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            inbox_queue: 65_536,
            outbox_queue: 16_384,
            batch_max: 512,
            publish_wait: Duration::from_secs(2),
            retry_for: Duration::from_secs(10),
            probe_every: Duration::from_secs(5),
            silent_after: Duration::from_secs(15),
            receiver_queue: 1_000,
        }
    }
}

const INVALIDATION_QUEUE: usize = 4_096;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum PulsarSetupError {
    #[error("TERN_PULSAR_TOPIC_PREFIX must look like persistent://tenant/namespace/name (or non-persistent://…): {0}")]
    Prefix(String),
    #[error("cannot reach Pulsar: {0}")]
    Unreachable(String),
}

/// Puts `node` into a topic name: letters, digits, `-`, `_`, `.` as they are, every other
/// byte as `=XX`.
pub fn topic_part(node: &str) -> String {
    let mut out = String::with_capacity(node.len());
    for b in node.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

fn check_prefix(prefix: &str) -> Result<(), PulsarSetupError> {
    let Some((scheme, rest)) = prefix.split_once("://") else {
        return Err(PulsarSetupError::Prefix(prefix.to_owned()));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let ok = matches!(scheme, "persistent" | "non-persistent")
        && parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
        });
    if ok {
        Ok(())
    } else {
        Err(PulsarSetupError::Prefix(prefix.to_owned()))
    }
}

/// Whether Pulsar works as this node sees it, for `/readyz`.
#[derive(Clone, Default)]
pub struct PulsarHealth {
    /// Subscription name → why it is not receiving (absent: receiving).
    down: Arc<Mutex<HashMap<String, String>>>,
}

impl PulsarHealth {
    /// `Ok` while every consumer of this node receives, else the first reason it does not.
    pub fn check(&self) -> Result<(), String> {
        let down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        match down.iter().next() {
            None => Ok(()),
            Some((sub, why)) => Err(format!("pulsar subscription {sub}: {why}")),
        }
    }
    fn set_down(&self, sub: &str, why: String) {
        self.down
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sub.to_owned(), why);
    }
    fn set_up(&self, sub: &str) {
        self.down.lock().unwrap_or_else(|p| p.into_inner()).remove(sub);
    }
}

type Client = Pulsar<TokioExecutor>;

struct Shared {
    client: Client,
    config: PulsarConfig,
    /// Destination topic → its outgoing queue (the producer lives in the queue's task).
    outboxes: Mutex<HashMap<String, mpsc::Sender<Outgoing>>>,
    health: PulsarHealth,
    stop: CancellationToken,
}

struct Outgoing {
    payload: Vec<u8>,
    at: Instant,
}

pub struct PulsarBus {
    shared: Arc<Shared>,
    /// The node this process serves (names its invalidation subscription).
    node: String,
    /// The task of each subscription this process holds; a second `subscribe` replaces it.
    inboxes: Mutex<HashMap<String, CancellationToken>>,
}

impl PulsarBus {
    /// Connects to Pulsar for node `node`. Tasks end when `stop` is cancelled.
    pub async fn connect(config: PulsarConfig, node: &str, stop: CancellationToken) -> Result<Self, PulsarSetupError> {
        check_prefix(&config.topic_prefix)?;
        let mut builder = Pulsar::builder(config.url.clone(), TokioExecutor)
            .with_connection_retry_options(ConnectionRetryOptions {
                min_backoff: BACKOFF_FIRST,
                max_backoff: BACKOFF_MAX,
                max_retries: 3,
                connection_timeout: Duration::from_secs(3),
                keep_alive: Duration::from_secs(10),
                ..ConnectionRetryOptions::default()
            })
            .with_operation_retry_options(OperationRetryOptions {
                operation_timeout: Duration::from_secs(5),
                retry_delay: Duration::from_millis(200),
                max_retries: Some(5),
            });
        if let Some(token) = &config.token {
            builder = builder.with_auth(Authentication {
                name: "token".into(),
                data: token.clone().into_bytes(),
            });
        }
        let client = builder
            .build()
            .await
            .map_err(|e| PulsarSetupError::Unreachable(e.to_string()))?;
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                config,
                outboxes: Mutex::new(HashMap::new()),
                health: PulsarHealth::default(),
                stop,
            }),
            node: node.to_owned(),
            inboxes: Mutex::new(HashMap::new()),
        })
    }

    pub fn health(&self) -> PulsarHealth {
        self.shared.health.clone()
    }

    /// The topic of `node`'s inbox.
    pub fn node_topic(&self, node: &str) -> String {
        format!("{}-node-{}", self.shared.config.topic_prefix, topic_part(node))
    }

    /// The topic every node reads invalidations from.
    pub fn invalidation_topic(&self) -> String {
        format!("{}-inval", self.shared.config.topic_prefix)
    }

    fn start_inbox<T: DeserializeOwned + Send + 'static>(
        &self,
        topic: String,
        subscription: String,
        queue: usize,
    ) -> mpsc::Receiver<T> {
        let (tx, rx) = mpsc::channel(queue);
        let stop = self.shared.stop.child_token();
        let previous = self
            .inboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(subscription.clone(), stop.clone());
        if let Some(previous) = previous {
            previous.cancel();
        }
        tokio::spawn(run_inbox(self.shared.clone(), topic, subscription, tx, stop));
        rx
    }
}

impl Shared {
    /// The outgoing queue of `topic`, started on first use.
    fn outbox(self: &Arc<Self>, topic: &str) -> mpsc::Sender<Outgoing> {
        let mut outboxes = self.outboxes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = outboxes.get(topic) {
            if !tx.is_closed() {
                return tx.clone();
            }
        }
        let (tx, rx) = mpsc::channel(self.config.tuning.outbox_queue);
        outboxes.insert(topic.to_owned(), tx.clone());
        tokio::spawn(run_outbox(self.clone(), topic.to_owned(), rx));
        tx
    }

    async fn enqueue(self: &Arc<Self>, topic: &str, payload: Vec<u8>) -> Result<(), BusError> {
        let tx = self.outbox(topic);
        let item = Outgoing {
            payload,
            at: Instant::now(),
        };
        match tx.send_timeout(item, self.config.tuning.publish_wait).await {
            Ok(()) => Ok(()),
            Err(_) => {
                metrics::counter!("tern_bus_dropped_total").increment(1);
                Err(BusError::Unavailable(format!(
                    "pulsar: the queue to {topic} stayed full for {} ms",
                    self.config.tuning.publish_wait.as_millis()
                )))
            }
        }
    }

    async fn producer(&self, topic: &str) -> Result<Producer<TokioExecutor>, pulsar::Error> {
        self.client
            .producer()
            .with_topic(topic)
            .with_options(ProducerOptions {
                batch_size: Some(self.config.tuning.batch_max.max(2) as u32),
                ..ProducerOptions::default()
            })
            .build()
            .await
    }
}

/// Sends `topic`'s queue, a batch at a time, on one producer re-created after a failure.
async fn run_outbox(shared: Arc<Shared>, topic: String, mut rx: mpsc::Receiver<Outgoing>) {
    let tuning = shared.config.tuning.clone();
    let mut producer: Option<Producer<TokioExecutor>> = None;
    let mut pending: Vec<Outgoing> = Vec::with_capacity(tuning.batch_max);
    let mut backoff = BACKOFF_FIRST;
    loop {
        if pending.is_empty() {
            tokio::select! {
                got = rx.recv() => match got {
                    Some(m) => pending.push(m),
                    None => return,
                },
                () = shared.stop.cancelled() => return,
            }
        }
        while pending.len() < tuning.batch_max {
            match rx.try_recv() {
                Ok(m) => pending.push(m),
                Err(_) => break,
            }
        }
        let failed = match producer.as_mut() {
            Some(p) => send_batch(p, &pending).await.err(),
            None => match shared.producer(&topic).await {
                Ok(mut p) => {
                    let sent = send_batch(&mut p, &pending).await.err();
                    producer = Some(p);
                    sent
                }
                Err(e) => Some(e),
            },
        };
        match failed {
            None => {
                metrics::counter!("tern_bus_pulsar_batches_total").increment(1);
                pending.clear();
                backoff = BACKOFF_FIRST;
            }
            Some(e) => {
                tracing::warn!(%topic, error = %e, retry_in_ms = backoff.as_millis() as u64, "pulsar send failed; re-creating the producer");
                if let Some(mut p) = producer.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), p.close()).await;
                }
                let before = pending.len();
                pending.retain(|m| m.at.elapsed() < tuning.retry_for);
                let dropped = before - pending.len();
                if dropped > 0 {
                    metrics::counter!("tern_bus_dropped_total").increment(dropped as u64);
                    tracing::warn!(%topic, dropped, "pulsar events dropped after retrying too long (sync heals them)");
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shared.stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Puts `batch` into the producer's batch, flushes it and waits for every receipt.
async fn send_batch(p: &mut Producer<TokioExecutor>, batch: &[Outgoing]) -> Result<(), pulsar::Error> {
    let mut receipts = Vec::with_capacity(batch.len());
    for m in batch {
        receipts.push(p.send_non_blocking(m.payload.clone()).await?);
    }
    p.send_batch().await?;
    for r in receipts {
        r.await?;
    }
    Ok(())
}

/// Receives one subscription into `tx` until `stop` or until nobody listens, re-creating
/// the consumer on error, end of stream or silence (the watchdog).
async fn run_inbox<T: DeserializeOwned + Send + 'static>(
    shared: Arc<Shared>,
    topic: String,
    subscription: String,
    tx: mpsc::Sender<T>,
    stop: CancellationToken,
) {
    let tuning = shared.config.tuning.clone();
    let since_ms = crate::domain::now_ms().max(0) as u64;
    let mut backoff = BACKOFF_FIRST;
    let health = shared.health.clone();
    health.set_down(&subscription, "connecting".into());
    loop {
        if stop.is_cancelled() || tx.is_closed() {
            health.set_up(&subscription);
            return;
        }
        let built = shared
            .client
            .consumer()
            .with_topic(&topic)
            .with_subscription(&subscription)
            .with_subscription_type(SubType::Exclusive)
            .with_options(ConsumerOptions {
                durable: Some(true),
                initial_position: InitialPosition::Latest,
                receiver_queue_size: Some(tuning.receiver_queue),
                ..ConsumerOptions::default()
            })
            .with_batch_size(tuning.receiver_queue)
            .build::<Vec<u8>>()
            .await;
        let mut consumer = match built {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%topic, error = %e, retry_in_ms = backoff.as_millis() as u64, "pulsar consumer not created");
                health.set_down(&subscription, e.to_string());
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => {}
                    () = tx.closed() => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_FIRST;
        health.set_up(&subscription);
        let probes = shared.outbox(&topic);
        let _ = probes.try_send(Outgoing {
            payload: Vec::new(),
            at: Instant::now(),
        });
        let mut probe = tokio::time::interval(tuning.probe_every);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heard = tokio::time::Instant::now();
        let why = loop {
            tokio::select! {
                () = stop.cancelled() => break None,
                () = tx.closed() => break None,
                _ = probe.tick() => {
                    let _ = probes.try_send(Outgoing { payload: Vec::new(), at: Instant::now() });
                }
                () = tokio::time::sleep_until(heard + tuning.silent_after) => {
                    metrics::counter!("tern_bus_pulsar_consumer_recreated_total").increment(1);
                    break Some(format!("no message, not even its probe, for {} ms", tuning.silent_after.as_millis()));
                }
                next = consumer.next() => {
                    let msg = match next {
                        Some(Ok(m)) => m,
                        Some(Err(e)) => break Some(e.to_string()),
                        None => break Some("the consumer's stream ended".into()),
                    };
                    let data = &msg.payload.data;
                    let fresh = msg.payload.metadata.publish_time >= since_ms;
                    if !data.is_empty() && fresh {
                        match serde_json::from_slice::<T>(data) {
                            // Waits while the gateway's queue is full: no ack, no new
                            // permits, the backlog stays in the broker.
                            Ok(ev) => {
                                if tx.send(ev).await.is_err() {
                                    break None;
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "dropped a pulsar bus event that is not valid JSON"),
                        }
                    }
                    heard = tokio::time::Instant::now();
                    if let Err(e) = consumer.ack(&msg).await {
                        break Some(format!("ack failed: {e}"));
                    }
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), consumer.close()).await;
        match why {
            None => {
                health.set_up(&subscription);
                return;
            }
            Some(why) => {
                tracing::warn!(%topic, %subscription, reason = %why, "pulsar consumer lost; re-creating it");
                health.set_down(&subscription, why);
            }
        }
    }
}

#[async_trait]
impl Bus for PulsarBus {
    async fn publish(&self, node: &str, event: BusEvent) -> Result<(), BusError> {
        let payload = serde_json::to_vec(&event).map_err(|e| BusError::Unavailable(e.to_string()))?;
        self.shared.enqueue(&self.node_topic(node), payload).await
    }

    async fn subscribe(&self, node: &str) -> Result<mpsc::Receiver<BusEvent>, BusError> {
        let queue = self.shared.config.tuning.inbox_queue;
        Ok(self.start_inbox(self.node_topic(node), "tern-node".into(), queue))
    }

    async fn invalidate(&self, invalidation: Invalidation) -> Result<(), BusError> {
        let payload = serde_json::to_vec(&invalidation).map_err(|e| BusError::Unavailable(e.to_string()))?;
        self.shared.enqueue(&self.invalidation_topic(), payload).await
    }

    async fn invalidations(&self) -> Result<mpsc::Receiver<Invalidation>, BusError> {
        let sub = format!("tern-inval-{}", topic_part(&self.node));
        Ok(self.start_inbox(self.invalidation_topic(), sub, INVALIDATION_QUEUE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_become_valid_distinct_topic_names() {
        assert_eq!(topic_part("node-1.a_b"), "node-1.a_b");
        assert_eq!(topic_part("pod/7"), "pod=2F7");
        assert_ne!(topic_part("a/b"), topic_part("a=2Fb"));
    }

    #[test]
    fn prefixes_must_name_a_tenant_namespace_and_topic() {
        assert!(check_prefix(DEFAULT_TOPIC_PREFIX).is_ok());
        assert!(check_prefix("non-persistent://t/ns/x").is_ok());
        assert!(check_prefix("persistent://t/ns").is_err());
        assert!(check_prefix("kafka://t/ns/x").is_err());
        assert!(check_prefix("persistent://t/ns/a b").is_err());
    }
}
