//! Lean WebSocket clients for the fan-out scenarios (`group-fanout`, `room-broadcast`),
//! where tens of thousands of receivers share the two cores with the server.
//!
//! A lean client is a raw WebSocket on `tern.v1.proto` and nothing else: it logs in with
//! an `auth` frame, optionally joins a room, sends a WebSocket ping every 20 s as its
//! heartbeat, and for every frame it receives reads only the few protobuf fields it
//! counts (is it a `message` push, and its `seq`) with a two-field prost struct; all
//! other fields are skipped unparsed. No SDK state, no reconnects, no JSON.
//!
//! As in `fleet`, one process holds at most 20,000 open files, so a scenario spreads its
//! clients over worker processes (this binary, `tern-bench lean-worker JOB`). A worker
//! prints one JSON line when its clients are connected, waits for a line on stdin, and
//! then prints its counts.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use serde::{Deserialize, Serialize};
use tern_sdk::proto as pb;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// What a lean worker is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeanJob {
    pub ws_url: String,
    pub app_key: String,
    pub app_secret: String,
    /// Users this worker connects: `{prefix}{first}` .. `{prefix}{first + count}`.
    pub prefix: String,
    pub first: usize,
    pub count: usize,
    /// Join this room after logging in.
    pub room: Option<String>,
    /// Keep, per `seq`, how many copies arrived and when the last one did (group-fanout).
    pub per_seq: bool,
    /// Set when the server is an XMPP peer: the clients log in over RFC 7395 and join this
    /// MUC room instead (`per_seq` then keys on the `k` in each groupchat body).
    #[serde(default)]
    pub xmpp: Option<XmppRoom>,
}

/// An XMPP peer's domain and the MUC room (bare JID) lean clients join.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct XmppRoom {
    pub domain: String,
    pub room: String,
}

/// One seq's arrivals in a worker.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Arrivals {
    pub count: u64,
    /// Unix microseconds of the first and the last copy.
    pub first_us: u64,
    pub last_us: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LeanReport {
    pub connected: usize,
    pub failed: usize,
    /// `message` pushes received by all clients.
    pub received: u64,
    /// Unix microseconds of the first and last `message` push received (0 if none).
    pub first_us: u64,
    pub last_us: u64,
    /// Connections the server closed during the run (a slow consumer, say).
    pub closed: u64,
    pub per_seq: HashMap<i64, Arrivals>,
    /// Deliveries by milliseconds from the message's `created_at` (the server's commit
    /// time) to its receipt, as `(ms, count)`; the last bucket holds everything later.
    #[serde(default)]
    pub latency_ms: Vec<(u64, u64)>,
}

/// Latency buckets kept per worker: one per millisecond up to this, then one for the rest.
pub const LATENCY_BUCKETS: usize = 10_000;

impl LeanReport {
    /// The latency (ms, from the server's commit to receipt) at or below which `q` of the
    /// deliveries arrived.
    pub fn latency_quantile(&self, q: f64) -> Option<u64> {
        let total: u64 = self.latency_ms.iter().map(|(_, n)| n).sum();
        if total == 0 {
            return None;
        }
        let mut sorted = self.latency_ms.clone();
        sorted.sort_unstable();
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (ms, n) in sorted {
            seen += n;
            if seen >= want {
                return Some(ms);
            }
        }
        None
    }
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The only parts of a `ServerFrame` a lean client reads (client.proto field numbers).
#[derive(Clone, PartialEq, prost::Message)]
struct LeanFrame {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(message, optional, tag = "20")]
    message: Option<LeanMessage>,
    #[prost(message, optional, tag = "30")]
    error: Option<LeanError>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LeanMessage {
    #[prost(int64, tag = "3")]
    seq: i64,
    #[prost(int64, tag = "8")]
    created_at: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LeanError {
    #[prost(string, tag = "1")]
    code: String,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    first_us: AtomicU64,
    last_us: AtomicU64,
    closed: AtomicU64,
    per_seq: Option<Mutex<HashMap<i64, Arrivals>>>,
    /// `LATENCY_BUCKETS + 1` counts (see `LeanReport::latency_ms`).
    latency: Vec<AtomicU64>,
}

impl Counters {
    fn new(per_seq: bool) -> Self {
        Self {
            per_seq: per_seq.then(|| Mutex::new(HashMap::new())),
            latency: (0..=LATENCY_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            ..Self::default()
        }
    }

    fn record_latency(&self, created_at_ms: i64, at_us: u64) {
        let ms = (at_us / 1000).saturating_sub(u64::try_from(created_at_ms).unwrap_or(0));
        let bucket = (ms as usize).min(LATENCY_BUCKETS);
        if let Some(b) = self.latency.get(bucket) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn latency_report(&self) -> Vec<(u64, u64)> {
        self.latency
            .iter()
            .enumerate()
            .filter_map(|(ms, n)| {
                let n = n.load(Ordering::Relaxed);
                (n > 0).then_some((ms as u64, n))
            })
            .collect()
    }

    fn record(&self, seq: i64, at: u64) {
        self.received.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .first_us
            .compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed);
        self.first_us.fetch_min(at, Ordering::Relaxed);
        self.last_us.fetch_max(at, Ordering::Relaxed);
        if let Some(m) = &self.per_seq {
            let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
            let a = m.entry(seq).or_default();
            a.count += 1;
            a.first_us = if a.first_us == 0 { at } else { a.first_us.min(at) };
            a.last_us = a.last_us.max(at);
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn binary(frame: &pb::ClientFrame) -> WsMessage {
    WsMessage::Binary(frame.encode_to_vec().into())
}

/// Waits for the answer to frame `id`; an `error` answer fails with its code.
async fn answer(ws: &mut Ws, id: &str) -> Result<()> {
    while let Some(m) = ws.next().await {
        if let WsMessage::Binary(b) = m? {
            let f = LeanFrame::decode(b.as_ref())?;
            if f.id == id {
                return match f.error {
                    Some(e) => bail!("{id}: {}", e.code),
                    None => Ok(()),
                };
            }
        }
    }
    bail!("closed before answering {id}")
}

/// Connects, logs in and joins the room: a client ready to count.
async fn open(job: &LeanJob, user: &str, now: i64) -> Result<Ws> {
    let token = tern_sdk::signing::mint_user_token(&job.app_key, &job.app_secret, user, now, now + 86_400, None);
    let mut req = job.ws_url.as_str().into_client_request()?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", tern_sdk::SUBPROTOCOL.parse()?);
    // Small buffers: 20,000 clients with tungstenite's 128 KiB default would take GiBs.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), false).await?;
    let auth = pb::ClientFrame {
        id: "a".into(),
        command: Some(pb::client_frame::Command::Auth(pb::Auth {
            token,
            device_id: format!("lean-{user}"),
            platform: pb::Platform::Other as i32,
            sync_version: None,
        })),
    };
    ws.send(binary(&auth)).await?;
    answer(&mut ws, "a").await?;
    if let Some(room) = &job.room {
        let join = pb::ClientFrame {
            id: "j".into(),
            command: Some(pb::client_frame::Command::JoinRoom(pb::JoinRoom {
                room_id: room.clone(),
            })),
        };
        ws.send(binary(&join)).await?;
        answer(&mut ws, "j").await?;
    }
    Ok(ws)
}

/// Reads pushes until the connection ends or `stop` fires, pinging every 20 s.
async fn count(mut ws: Ws, counters: Arc<Counters>, stop: tokio_util::sync::CancellationToken, jitter: u64) {
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_millis(20_000 + jitter % 5_000),
        Duration::from_secs(20),
    );
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ping.tick() => {
                if ws.send(WsMessage::Ping(Default::default())).await.is_err() {
                    counters.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            m = ws.next() => match m {
                Some(Ok(WsMessage::Binary(b))) => {
                    let at = now_us();
                    if let Ok(LeanFrame { message: Some(m), .. }) = LeanFrame::decode(b.as_ref()) {
                        counters.record(m.seq, at);
                        counters.record_latency(m.created_at, at);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    counters.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
        }
    }
    let _ = ws.close(None).await;
}

/// A lean client ready to count, on either protocol.
enum Opened {
    Tern(Ws),
    Xmpp(crate::xmpp::Ws),
}

/// Logs in to the XMPP peer as `user` and joins the room with `user` as the nick.
async fn open_xmpp(url: &str, x: &XmppRoom, user: &str) -> Result<crate::xmpp::Ws> {
    let mut ws = crate::xmpp::login(&crate::xmpp::Login {
        url,
        domain: &x.domain,
        user,
    })
    .await?;
    crate::xmpp::join_room(&mut ws, &x.room, user).await?;
    Ok(ws)
}

/// Reads groupchat messages until the connection ends or `stop` fires. The peer pings
/// (WebSocket pings every 60 s, answered by the reader), so no heartbeat is sent.
async fn count_xmpp(mut ws: crate::xmpp::Ws, counters: Arc<Counters>, stop: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            m = ws.next() => match m {
                Some(Ok(WsMessage::Text(t))) => {
                    let at = now_us();
                    let s = crate::xmpp::parse(t.as_str());
                    if s.name != "message" || s.kind.as_deref() != Some("groupchat") {
                        continue;
                    }
                    if let Some((sent_us, k)) = s.body.as_deref().and_then(crate::xmpp::stamp) {
                        counters.record(k, at);
                        counters.record_latency(i64::try_from(sent_us / 1000).unwrap_or(0), at);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    counters.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
        }
    }
    let _ = ws.close(None).await;
}

/// Runs inside a worker process.
pub async fn worker(job: LeanJob) -> Result<()> {
    let now = (now_us() / 1_000_000) as i64;
    let counters = Arc::new(Counters::new(job.per_seq));
    let stop = tokio_util::sync::CancellationToken::new();
    let (mut connected, mut failed) = (0usize, 0usize);
    let mut readers = tokio::task::JoinSet::new();
    // Connect in waves so the server's accept queue is not flooded.
    let ids: Vec<usize> = (job.first..job.first + job.count).collect();
    for wave in ids.chunks(250) {
        let mut opening = tokio::task::JoinSet::new();
        for &i in wave {
            let job = job.clone();
            opening.spawn(async move {
                let user = format!("{}{i}", job.prefix);
                let ws = match &job.xmpp {
                    None => open(&job, &user, now).await.map(Opened::Tern),
                    Some(x) => open_xmpp(&job.ws_url, x, &user).await.map(Opened::Xmpp),
                };
                (i, ws)
            });
        }
        while let Some(r) = opening.join_next().await {
            match r? {
                (i, Ok(Opened::Tern(ws))) => {
                    connected += 1;
                    readers.spawn(count(ws, counters.clone(), stop.clone(), (i as u64).wrapping_mul(7919)));
                }
                (_, Ok(Opened::Xmpp(ws))) => {
                    connected += 1;
                    readers.spawn(count_xmpp(ws, counters.clone(), stop.clone()));
                }
                (i, Err(e)) => {
                    if failed < 3 {
                        eprintln!("lean-worker: {}{i} did not connect: {e:#}", job.prefix);
                    }
                    failed += 1;
                }
            }
        }
    }
    let mut out = tokio::io::stdout();
    out.write_all(format!("{}\n", serde_json::json!({"ready": connected, "failed": failed})).as_bytes())
        .await?;
    out.flush().await?;
    // Count until the parent asks for the report.
    let mut line = String::new();
    BufReader::new(tokio::io::stdin()).read_line(&mut line).await?;
    let report = LeanReport {
        connected,
        failed,
        received: counters.received.load(Ordering::Relaxed),
        first_us: counters.first_us.load(Ordering::Relaxed),
        last_us: counters.last_us.load(Ordering::Relaxed),
        closed: counters.closed.load(Ordering::Relaxed),
        per_seq: counters
            .per_seq
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default(),
        latency_ms: counters.latency_report(),
    };
    out.write_all(format!("{}\n", serde_json::to_string(&report)?).as_bytes())
        .await?;
    out.flush().await?;
    stop.cancel();
    while readers.join_next().await.is_some() {}
    Ok(())
}

/// Worker processes holding a scenario's lean clients.
pub struct LeanFleet {
    children: Vec<(
        Child,
        tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
        tokio::process::ChildStdin,
    )>,
    pub connected: usize,
    pub failed: usize,
}

impl LeanFleet {
    /// Starts `processes` workers sharing users `{prefix}0..{prefix}{users}`; returns once
    /// every worker has connected its share.
    pub async fn start(template: &LeanJob, users: usize, processes: usize) -> Result<Self> {
        let exe = std::env::current_exe()?;
        let per = users.div_ceil(processes.max(1));
        let mut children = Vec::new();
        for p in 0..processes.max(1) {
            let first = p * per;
            let count = per.min(users.saturating_sub(first));
            if count == 0 {
                break;
            }
            let job = LeanJob {
                first,
                count,
                ws_url: crate::fleet::pick_url(&template.ws_url, p),
                ..template.clone()
            };
            let mut child = Command::new(&exe)
                .args(["lean-worker", &serde_json::to_string(&job)?])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()?;
            let stdout = child.stdout.take().context("worker stdout")?;
            let stdin = child.stdin.take().context("worker stdin")?;
            children.push((child, BufReader::new(stdout).lines(), stdin));
        }
        let (mut connected, mut failed) = (0, 0);
        for (_, lines, _) in children.iter_mut() {
            let line = lines.next_line().await?.context("worker exited before connecting")?;
            let v: serde_json::Value = serde_json::from_str(&line)?;
            connected += v["ready"].as_u64().unwrap_or(0) as usize;
            failed += v["failed"].as_u64().unwrap_or(0) as usize;
        }
        Ok(Self {
            children,
            connected,
            failed,
        })
    }

    /// Collects every worker's counts (they stop counting when asked), merged.
    pub async fn report(mut self) -> Result<LeanReport> {
        for (_, _, stdin) in self.children.iter_mut() {
            stdin.write_all(b"report\n").await?;
            stdin.flush().await?;
        }
        let mut total = LeanReport::default();
        for (child, lines, _) in self.children.iter_mut() {
            let line = lines.next_line().await?.context("worker exited without a report")?;
            let r: LeanReport = serde_json::from_str(&line)?;
            total.connected += r.connected;
            total.failed += r.failed;
            total.received += r.received;
            total.closed += r.closed;
            if r.first_us > 0 {
                total.first_us = if total.first_us == 0 {
                    r.first_us
                } else {
                    total.first_us.min(r.first_us)
                };
            }
            total.last_us = total.last_us.max(r.last_us);
            total.latency_ms.extend(r.latency_ms);
            for (seq, a) in r.per_seq {
                let t = total.per_seq.entry(seq).or_default();
                t.count += a.count;
                t.first_us = if t.first_us == 0 {
                    a.first_us
                } else {
                    t.first_us.min(a.first_us)
                };
                t.last_us = t.last_us.max(a.last_us);
            }
            let status = child.wait().await?;
            if !status.success() {
                bail!("a worker failed: {status}");
            }
        }
        Ok(total)
    }
}
