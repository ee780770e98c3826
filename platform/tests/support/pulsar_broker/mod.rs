//! A **test double** of an Apache Pulsar broker, for the tests of the Pulsar bus only. No
//! Pulsar broker can be installed where Tern's tests run, so this speaks the broker's side
//! of Pulsar's real binary protocol (the `pulsar` crate's own protobuf definitions and frame
//! codec) over TCP on 127.0.0.1, enough for the bus adapter: CONNECT/CONNECTED, LOOKUP,
//! PARTITIONED_METADATA (every topic has 0 partitions), PRODUCER/PRODUCER_SUCCESS, SEND
//! (single messages and batches, stored as the entry they arrived in)/SEND_RECEIPT,
//! SUBSCRIBE, FLOW (permits), MESSAGE, ACK (whole entries and batch indexes),
//! REDELIVER_UNACKNOWLEDGED_MESSAGES, UNSUBSCRIBE, PING/PONG, CLOSE_PRODUCER and
//! CLOSE_CONSUMER. It is not a product and not Pulsar's speed: one process, memory only, no
//! ledgers, no authentication check, no schemas, no partitions, no retention beyond what a
//! subscription has not acked.
//!
//! Semantics kept from Pulsar because the adapter's behaviour depends on them:
//! - a message is kept per subscription until acked; a topic with no subscription drops
//!   what is sent to it (retention 0); a `non-persistent://` topic drops what no attached
//!   consumer can take;
//! - a consumer receives only as many messages as it granted permits (FLOW);
//! - an exclusive subscription refuses a second consumer (`ConsumerBusy`);
//! - when a connection closes, its consumers' unacked messages go back to be redelivered.
//!
//! Faults a test can inject: [`TestBroker::drop_connections`], [`TestBroker::set_delay`],
//! [`TestBroker::set_not_ready`] (requests refused with `ServiceNotReady`),
//! [`TestBroker::restart`] (connections dropped and refused for a while; durable
//! subscriptions and their backlog survive, as on a real broker with its bookies),
//! [`TestBroker::restart_empty`] (the same, with every topic and subscription forgotten) and
//! [`TestBroker::orphan_consumers`] (consumers silently stop receiving on a live connection,
//! the hang of pulsar-rs issue #189).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tern_platform::pulsar_bus::pulsar::message::{Codec, Message as Frame};
use tern_platform::pulsar_bus::pulsar::proto::{
    self, base_command::Type, command_lookup_topic_response::LookupType, BaseCommand, MessageIdData, ServerError,
};
use tern_platform::pulsar_bus::pulsar::Payload;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::Framed;

/// A broker on 127.0.0.1, stopped when dropped.
pub struct TestBroker {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.accept.abort();
        self.inner.generation.send_modify(|g| *g += 1);
    }
}

struct Inner {
    state: Mutex<State>,
    /// Bumped to close every open connection.
    generation: watch::Sender<u64>,
    delay: Mutex<Duration>,
    not_ready: Mutex<bool>,
    down_until: Mutex<Option<Instant>>,
    next_conn: AtomicU64,
    accepted: AtomicU64,
    /// Connections closed on arrival while the broker was down (a restart).
    refused: AtomicU64,
    /// SEND frames taken, and the messages in them.
    sends: AtomicU64,
    messages: AtomicU64,
    url: String,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Topic>,
    next_entry: u64,
    /// Connection → the frames it has to send.
    outs: HashMap<u64, mpsc::UnboundedSender<Frame>>,
    producers: HashMap<(u64, u64), String>,
    /// (connection, consumer id) → (topic, subscription).
    consumers: HashMap<(u64, u64), (String, String)>,
}

#[derive(Default)]
struct Topic {
    subs: HashMap<String, Sub>,
}

struct Sub {
    durable: bool,
    pending: VecDeque<Entry>,
    unacked: BTreeMap<u64, (Entry, HashSet<i32>)>,
    consumer: Option<Attached>,
}

struct Attached {
    conn: u64,
    id: u64,
    permits: u64,
}

#[derive(Clone)]
struct Entry {
    id: u64,
    metadata: proto::MessageMetadata,
    data: Vec<u8>,
    count: u64,
}

const LEDGER: u64 = 7;

impl TestBroker {
    /// Starts a broker on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts a broker on `addr` (a loopback address).
    pub async fn start_on(addr: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            generation: watch::channel(0).0,
            delay: Mutex::new(Duration::ZERO),
            not_ready: Mutex::new(false),
            down_until: Mutex::new(None),
            next_conn: AtomicU64::new(1),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            sends: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            url: format!("pulsar://{addr}"),
        });
        let accept = tokio::spawn(accept_loop(listener, inner.clone()));
        Ok(Self { addr, inner, accept })
    }

    /// `pulsar://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.inner.url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every open connection at once (clients see the TCP connection end).
    pub fn drop_connections(&self) {
        self.inner.generation.send_modify(|g| *g += 1);
        let mut st = self.inner.lock();
        let conns: Vec<u64> = st.outs.keys().copied().collect();
        for c in conns {
            st.detach_connection(c);
        }
    }

    /// Every reply waits this long first.
    pub fn set_delay(&self, delay: Duration) {
        *self.inner.delay.lock().unwrap_or_else(|p| p.into_inner()) = delay;
    }

    /// While set, LOOKUP, PRODUCER and SUBSCRIBE are refused with `ServiceNotReady`.
    pub fn set_not_ready(&self, not_ready: bool) {
        *self.inner.not_ready.lock().unwrap_or_else(|p| p.into_inner()) = not_ready;
    }

    /// A restart: every connection is dropped and new ones are closed on arrival for
    /// `down_for`; durable subscriptions keep their backlog, non-durable ones are gone.
    pub fn restart(&self, down_for: Duration) {
        *self.inner.down_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + down_for);
        self.drop_connections();
        let mut st = self.inner.lock();
        for t in st.topics.values_mut() {
            t.subs.retain(|_, s| s.durable);
        }
    }

    /// A restart that loses the broker's state too: every connection dropped, new ones
    /// closed on arrival for `down_for`, and every topic, subscription and backlog gone.
    pub fn restart_empty(&self, down_for: Duration) {
        *self.inner.down_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + down_for);
        self.drop_connections();
        self.inner.lock().topics.clear();
    }

    /// Forgets every consumer without telling it: the connection stays up, the consumer
    /// never receives again (as after pulsar-rs issue #189). Its subscription waits for a
    /// new consumer.
    pub fn orphan_consumers(&self) {
        let mut st = self.inner.lock();
        let all: Vec<(u64, u64)> = st.consumers.keys().copied().collect();
        for key in all {
            st.detach_consumer(key);
        }
    }

    /// SEND frames taken so far, and the messages in them (a batch is one frame).
    pub fn sends(&self) -> (u64, u64) {
        (
            self.inner.sends.load(Ordering::Relaxed),
            self.inner.messages.load(Ordering::Relaxed),
        )
    }

    /// Connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.inner.accepted.load(Ordering::Relaxed)
    }

    /// Connections closed on arrival while the broker was down.
    pub fn connections_refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// Messages (batch entries count their messages) waiting in `topic`'s subscriptions,
    /// sent or not, not yet acked.
    pub fn backlog(&self, topic: &str) -> u64 {
        let st = self.inner.lock();
        st.topics.get(topic).map_or(0, |t| {
            t.subs
                .values()
                .map(|s| {
                    s.pending.iter().map(|e| e.count).sum::<u64>()
                        + s.unacked.values().map(|(e, _)| e.count).sum::<u64>()
                })
                .sum()
        })
    }

    /// The topics that exist (were looked up, produced to or subscribed to).
    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.inner.lock().topics.keys().cloned().collect();
        t.sort();
        t
    }

    /// Whether `topic` has a consumer attached on `subscription`.
    pub fn has_consumer(&self, topic: &str, subscription: &str) -> bool {
        let st = self.inner.lock();
        st.topics
            .get(topic)
            .and_then(|t| t.subs.get(subscription))
            .is_some_and(|s| s.consumer.is_some())
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn delay(&self) -> Duration {
        *self.delay.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn not_ready(&self) -> bool {
        *self.not_ready.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// The `ServiceNotReady` answer to request `request_id`, while the broker is set to
    /// refuse new producers and subscriptions.
    fn refusal(&self, request_id: u64) -> Option<Frame> {
        self.not_ready().then(|| {
            error(
                request_id,
                ServerError::ServiceNotReady,
                "the test broker refuses: not ready",
            )
        })
    }
    fn is_down(&self) -> bool {
        let mut d = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        match *d {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *d = None;
                false
            }
            None => false,
        }
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        if inner.is_down() {
            inner.refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        }
        inner.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let id = inner.next_conn.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve_connection(stream, id, inner.clone()));
    }
}

fn command(t: Type) -> BaseCommand {
    BaseCommand {
        r#type: t as i32,
        ..BaseCommand::default()
    }
}

fn frame(command: BaseCommand) -> Frame {
    Frame { command, payload: None }
}

fn error(request_id: u64, error: ServerError, message: &str) -> Frame {
    let mut c = command(Type::Error);
    c.error = Some(proto::CommandError {
        request_id,
        error: error as i32,
        message: message.to_owned(),
    });
    frame(c)
}

fn success(request_id: u64) -> Frame {
    let mut c = command(Type::Success);
    c.success = Some(proto::CommandSuccess {
        request_id,
        schema: None,
    });
    frame(c)
}

async fn serve_connection(stream: TcpStream, conn: u64, inner: Arc<Inner>) {
    let (mut sink, mut source) = Framed::new(stream, Codec).split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Frame>();
    inner.lock().outs.insert(conn, out_tx.clone());
    let mut generation = inner.generation.subscribe();
    let delayed = inner.clone();
    let writer = tokio::spawn(async move {
        while let Some(f) = out_rx.recv().await {
            let d = delayed.delay();
            if !d.is_zero() {
                tokio::time::sleep(d).await;
            }
            if sink.send(f).await.is_err() {
                return;
            }
        }
    });
    loop {
        tokio::select! {
            _ = generation.changed() => break,
            got = source.next() => match got {
                Some(Ok(f)) => {
                    if !handle(&inner, conn, &out_tx, f) {
                        break;
                    }
                }
                _ => break,
            },
        }
    }
    writer.abort();
    inner.lock().detach_connection(conn);
}

/// Handles one frame from a client; `false` closes the connection.
fn handle(inner: &Arc<Inner>, conn: u64, out: &mpsc::UnboundedSender<Frame>, f: Frame) -> bool {
    let c = f.command;
    let send = |f: Frame| {
        let _ = out.send(f);
    };
    match Type::try_from(c.r#type) {
        Ok(Type::Connect) => {
            let client_version = c.connect.as_ref().and_then(|c| c.protocol_version).unwrap_or(6);
            let mut r = command(Type::Connected);
            r.connected = Some(proto::CommandConnected {
                server_version: "tern-test-broker".into(),
                protocol_version: Some(client_version.min(19)),
                max_message_size: Some(5 * 1024 * 1024),
            });
            send(frame(r));
        }
        Ok(Type::Ping) => {
            let mut r = command(Type::Pong);
            r.pong = Some(proto::CommandPong {});
            send(frame(r));
        }
        Ok(Type::Pong) => {}
        Ok(Type::Lookup) => {
            let Some(l) = c.lookup_topic else { return false };
            let mut r = command(Type::LookupResponse);
            r.lookup_topic_response = Some(if inner.not_ready() {
                proto::CommandLookupTopicResponse {
                    request_id: l.request_id,
                    response: Some(LookupType::Failed as i32),
                    error: Some(ServerError::ServiceNotReady as i32),
                    message: Some("the test broker refuses: not ready".into()),
                    ..Default::default()
                }
            } else {
                inner.lock().topics.entry(l.topic).or_default();
                proto::CommandLookupTopicResponse {
                    request_id: l.request_id,
                    broker_service_url: Some(inner.url.clone()),
                    response: Some(LookupType::Connect as i32),
                    authoritative: Some(true),
                    proxy_through_service_url: Some(false),
                    ..Default::default()
                }
            });
            send(frame(r));
        }
        Ok(Type::PartitionedMetadata) => {
            let Some(p) = c.partition_metadata else { return false };
            let mut r = command(Type::PartitionedMetadataResponse);
            r.partition_metadata_response = Some(proto::CommandPartitionedTopicMetadataResponse {
                partitions: Some(0),
                request_id: p.request_id,
                response: Some(proto::command_partitioned_topic_metadata_response::LookupType::Success as i32),
                ..Default::default()
            });
            send(frame(r));
        }
        Ok(Type::Producer) => {
            let Some(p) = c.producer else { return false };
            if let Some(refused) = inner.refusal(p.request_id) {
                send(refused);
                return true;
            }
            let mut st = inner.lock();
            st.topics.entry(p.topic.clone()).or_default();
            st.producers.insert((conn, p.producer_id), p.topic);
            drop(st);
            let mut r = command(Type::ProducerSuccess);
            r.producer_success = Some(proto::CommandProducerSuccess {
                request_id: p.request_id,
                producer_name: p
                    .producer_name
                    .unwrap_or_else(|| format!("test-{conn}-{}", p.producer_id)),
                last_sequence_id: Some(-1),
                schema_version: None,
                topic_epoch: None,
                producer_ready: Some(true),
            });
            send(frame(r));
        }
        Ok(Type::Send) => {
            let Some(s) = c.send else { return false };
            let Some(payload) = f.payload else { return false };
            let mut st = inner.lock();
            let Some(topic) = st.producers.get(&(conn, s.producer_id)).cloned() else {
                let mut r = command(Type::SendError);
                r.send_error = Some(proto::CommandSendError {
                    producer_id: s.producer_id,
                    sequence_id: s.sequence_id,
                    error: ServerError::TopicNotFound as i32,
                    message: "no such producer on this connection".into(),
                });
                send(frame(r));
                return true;
            };
            let id = st.next_entry;
            st.next_entry += 1;
            let count = s.num_messages.unwrap_or(1).max(1) as u64;
            inner.sends.fetch_add(1, Ordering::Relaxed);
            inner.messages.fetch_add(count, Ordering::Relaxed);
            st.publish(&topic, id, payload, count);
            drop(st);
            let mut r = command(Type::SendReceipt);
            r.send_receipt = Some(proto::CommandSendReceipt {
                producer_id: s.producer_id,
                sequence_id: s.sequence_id,
                message_id: Some(message_id(id)),
                highest_sequence_id: s.highest_sequence_id,
            });
            send(frame(r));
        }
        Ok(Type::Subscribe) => {
            let Some(s) = c.subscribe else { return false };
            if let Some(refused) = inner.refusal(s.request_id) {
                send(refused);
                return true;
            }
            let mut st = inner.lock();
            let reply = st.subscribe(conn, &s);
            drop(st);
            send(reply);
        }
        Ok(Type::Flow) => {
            let Some(fl) = c.flow else { return false };
            let mut st = inner.lock();
            if let Some((topic, sub)) = st.consumers.get(&(conn, fl.consumer_id)).cloned() {
                if let Some(a) = st.sub_mut(&topic, &sub).and_then(|s| s.consumer.as_mut()) {
                    a.permits += u64::from(fl.message_permits);
                }
                st.dispatch(&topic, &sub);
            }
        }
        Ok(Type::Ack) => {
            let Some(a) = c.ack else { return false };
            let mut st = inner.lock();
            if let Some((topic, sub)) = st.consumers.get(&(conn, a.consumer_id)).cloned() {
                let cumulative = a.ack_type == proto::command_ack::AckType::Cumulative as i32;
                if let Some(s) = st.sub_mut(&topic, &sub) {
                    for m in &a.message_id {
                        s.ack(m, cumulative);
                    }
                }
            }
            if let Some(request_id) = a.request_id {
                let mut r = command(Type::AckResponse);
                r.ack_response = Some(proto::CommandAckResponse {
                    consumer_id: a.consumer_id,
                    request_id: Some(request_id),
                    ..Default::default()
                });
                send(frame(r));
            }
        }
        Ok(Type::RedeliverUnacknowledgedMessages) => {
            let Some(r) = c.redeliver_unacknowledged_messages else {
                return false;
            };
            let mut st = inner.lock();
            if let Some((topic, sub)) = st.consumers.get(&(conn, r.consumer_id)).cloned() {
                if let Some(s) = st.sub_mut(&topic, &sub) {
                    s.requeue_unacked();
                }
                st.dispatch(&topic, &sub);
            }
        }
        Ok(Type::CloseProducer) => {
            let Some(p) = c.close_producer else { return false };
            inner.lock().producers.remove(&(conn, p.producer_id));
            send(success(p.request_id));
        }
        Ok(Type::CloseConsumer) => {
            let Some(p) = c.close_consumer else { return false };
            inner.lock().detach_consumer((conn, p.consumer_id));
            send(success(p.request_id));
        }
        Ok(Type::Unsubscribe) => {
            let Some(u) = c.unsubscribe else { return false };
            let mut st = inner.lock();
            if let Some((topic, sub)) = st.consumers.remove(&(conn, u.consumer_id)) {
                if let Some(t) = st.topics.get_mut(&topic) {
                    t.subs.remove(&sub);
                }
            }
            drop(st);
            send(success(u.request_id));
        }
        other => {
            eprintln!("test broker: command {other:?} is not supported; closing the connection");
            return false;
        }
    }
    true
}

fn message_id(entry: u64) -> MessageIdData {
    MessageIdData {
        ledger_id: LEDGER,
        entry_id: entry,
        partition: Some(-1),
        ..Default::default()
    }
}

impl State {
    fn sub_mut(&mut self, topic: &str, sub: &str) -> Option<&mut Sub> {
        self.topics.get_mut(topic).and_then(|t| t.subs.get_mut(sub))
    }

    fn publish(&mut self, topic: &str, id: u64, payload: Payload, count: u64) {
        let persistent = !topic.starts_with("non-persistent://");
        let entry = Entry {
            id,
            metadata: payload.metadata,
            data: payload.data,
            count,
        };
        let Some(t) = self.topics.get_mut(topic) else { return };
        let names: Vec<String> = t
            .subs
            .iter_mut()
            .filter(|(_, s)| persistent || s.consumer.as_ref().is_some_and(|a| a.permits > 0))
            .map(|(name, s)| {
                s.pending.push_back(entry.clone());
                name.clone()
            })
            .collect();
        for name in names {
            self.dispatch(topic, &name);
        }
    }

    fn subscribe(&mut self, conn: u64, s: &proto::CommandSubscribe) -> Frame {
        let t = self.topics.entry(s.topic.clone()).or_default();
        let sub = t.subs.entry(s.subscription.clone()).or_insert_with(|| Sub {
            durable: s.durable.unwrap_or(true),
            pending: VecDeque::new(),
            unacked: BTreeMap::new(),
            consumer: None,
        });
        let exclusive = s.sub_type == proto::command_subscribe::SubType::Exclusive as i32;
        if exclusive && sub.consumer.is_some() {
            return error(
                s.request_id,
                ServerError::ConsumerBusy,
                "Exclusive consumer is already connected",
            );
        }
        sub.consumer = Some(Attached {
            conn,
            id: s.consumer_id,
            permits: 0,
        });
        self.consumers
            .insert((conn, s.consumer_id), (s.topic.clone(), s.subscription.clone()));
        success(s.request_id)
    }

    /// Sends `sub`'s pending messages while its consumer has permits.
    fn dispatch(&mut self, topic: &str, sub: &str) {
        let Some(out) = self
            .sub_mut(topic, sub)
            .and_then(|s| s.consumer.as_ref())
            .map(|a| a.conn)
            .and_then(|c| self.outs.get(&c).cloned())
        else {
            return;
        };
        let Some(s) = self.sub_mut(topic, sub) else { return };
        loop {
            let Some(a) = s.consumer.as_mut() else { return };
            if a.permits == 0 {
                return;
            }
            let Some(e) = s.pending.pop_front() else { return };
            a.permits = a.permits.saturating_sub(e.count);
            let mut c = command(Type::Message);
            c.message = Some(proto::CommandMessage {
                consumer_id: a.id,
                message_id: message_id(e.id),
                redelivery_count: Some(0),
                ack_set: vec![],
                consumer_epoch: None,
            });
            let f = Frame {
                command: c,
                payload: Some(Payload {
                    metadata: e.metadata.clone(),
                    data: e.data.clone(),
                }),
            };
            s.unacked.insert(e.id, (e, HashSet::new()));
            if out.send(f).is_err() {
                return;
            }
        }
    }

    fn detach_consumer(&mut self, key: (u64, u64)) {
        let Some((topic, sub)) = self.consumers.remove(&key) else {
            return;
        };
        let Some(t) = self.topics.get_mut(&topic) else { return };
        let Some(s) = t.subs.get_mut(&sub) else { return };
        if s.consumer.as_ref().is_some_and(|a| (a.conn, a.id) == key) {
            s.consumer = None;
            s.requeue_unacked();
            if !s.durable {
                t.subs.remove(&sub);
            }
        }
    }

    fn detach_connection(&mut self, conn: u64) {
        self.outs.remove(&conn);
        self.producers.retain(|(c, _), _| *c != conn);
        let mine: Vec<(u64, u64)> = self.consumers.keys().filter(|(c, _)| *c == conn).copied().collect();
        for key in mine {
            self.detach_consumer(key);
        }
    }
}

impl Sub {
    /// Puts every sent-but-unacked message back in front of the pending ones, in order.
    fn requeue_unacked(&mut self) {
        let unacked = std::mem::take(&mut self.unacked);
        for (_, (e, _)) in unacked.into_iter().rev() {
            self.pending.push_front(e);
        }
    }

    fn ack(&mut self, m: &MessageIdData, cumulative: bool) {
        if cumulative {
            self.unacked.retain(|id, _| *id > m.entry_id);
            return;
        }
        let whole = match m.batch_index {
            Some(i) if i >= 0 => {
                let Some((e, acked)) = self.unacked.get_mut(&m.entry_id) else {
                    return;
                };
                acked.insert(i);
                acked.len() as u64 >= e.count
            }
            _ => true,
        };
        if whole {
            self.unacked.remove(&m.entry_id);
        }
    }
}
