//! Client fleets for the WebSocket scenarios. One process may hold at most 20,000 open files,
//! so a scenario spreads its connections over several worker processes (this same binary,
//! `tern-bench worker ...`). Each worker prints one JSON line when it is connected and one
//! with its results; latency histograms travel serialised so the parent merges them exactly.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use base64::Engine;
use futures::StreamExt;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tern_sdk::client::{Client, Event, Platform, Target};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// What a worker is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerJob {
    pub ws_url: String,
    pub app_key: String,
    pub app_secret: String,
    /// Users this worker connects: `u{first}` .. `u{first + count}`.
    pub first: usize,
    pub count: usize,
    /// All users of the scenario (peers are chosen among them).
    pub total_users: usize,
    /// Messages per second this worker sends (0 for idle).
    pub rate: f64,
    pub seconds: u64,
    /// Set when the server is an XMPP peer (ejabberd): its domain; `ws_url` is then its
    /// RFC 7395 WebSocket and users log in as `u{i}@{domain}` with SASL PLAIN.
    #[serde(default)]
    pub xmpp_domain: Option<String>,
    /// Connect with `permessage-deflate` (idle only: `crate::deflate`).
    #[serde(default)]
    pub deflate: bool,
}

/// One connected user, as the pacing loop sees it.
#[derive(Clone)]
enum Sender {
    Tern(Client),
    Xmpp(crate::xmpp::Writer, std::sync::Arc<str>),
    /// An idle compressed connection; cancelling closes it.
    Compressed(tokio_util::sync::CancellationToken),
}

impl Sender {
    /// Sends one message to user `u{peer}` carrying the send time; whether it was taken.
    async fn send(&self, peer: usize, id: u64) -> bool {
        match self {
            Sender::Tern(c) => c
                .send(
                    Target::User(format!("u{peer}")),
                    "custom",
                    serde_json::json!({"data": 1, "t_us": now_us()}),
                )
                .await
                .is_ok(),
            Sender::Xmpp(w, domain) => {
                let m = crate::xmpp::chat_message(&format!("u{peer}@{domain}"), now_us(), id);
                crate::xmpp::send(w, m).await
            }
            Sender::Compressed(_) => false,
        }
    }

    fn close(&self) {
        match self {
            Sender::Tern(c) => c.close(),
            Sender::Compressed(stop) => stop.cancel(),
            Sender::Xmpp(..) => {}
        }
    }
}

/// How long a worker's clients must have heard nothing before it reports ready: their
/// login sync (the conversation list, then a history page for each unread conversation)
/// is over. Without the wait, on a grown store the sends of the first seconds queue
/// behind 2,000 logins' history reads and the run measures the login burst, not a send.
const SETTLED_AFTER: Duration = Duration::from_secs(1);
/// A worker that never settles reports ready anyway after this long.
const SETTLE_AT_MOST: Duration = Duration::from_secs(120);

#[derive(Debug, Serialize, Deserialize)]
pub struct WorkerReport {
    pub connected: usize,
    pub failed: usize,
    pub sent: u64,
    pub send_errors: u64,
    pub received: u64,
    /// V2-serialised, base64: end-to-end latency in microseconds.
    pub histogram: String,
    /// The same, one histogram per second of the run, by when the message was sent.
    #[serde(default)]
    pub per_second: Vec<String>,
}

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// One address of a comma-separated list, for worker process `p`: with several nodes, the
/// processes spread over them round-robin, so most conversations cross nodes.
pub fn pick_url(list: &str, p: usize) -> String {
    let urls: Vec<&str> = list.split(',').collect();
    urls[p % urls.len()].to_owned()
}

/// Runs inside a worker process: connect, report readiness, send at the rate, measure.
pub async fn worker(job: WorkerJob) -> Result<()> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    // (sent at, latency), both in microseconds.
    let (lat_tx, mut lat_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    // When any client last heard anything (µs), and the messages login sync brought in.
    let last_event = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(now_us()));
    let synced = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let connecting = Instant::now();
    let (clients, failed) = match &job.xmpp_domain {
        None => connect_tern(&job, lat_tx, last_event.clone(), synced.clone()).await?,
        Some(domain) => connect_xmpp(&job, domain, lat_tx).await?,
    };
    let connected_after = connecting.elapsed();
    while connecting.elapsed() < SETTLE_AT_MOST
        && now_us().saturating_sub(last_event.load(std::sync::atomic::Ordering::Relaxed))
            < SETTLED_AFTER.as_micros() as u64
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut out = tokio::io::stdout();
    let ready = serde_json::json!({
        "ready": clients.len(),
        "failed": failed,
        "connected_ms": connected_after.as_millis() as u64,
        // Less the quiet second that shows it is over.
        "settled_ms": connecting.elapsed().saturating_sub(SETTLED_AFTER).as_millis() as u64,
        "synced_messages": synced.load(std::sync::atomic::Ordering::Relaxed),
    });
    out.write_all(format!("{ready}\n").as_bytes()).await?;
    out.flush().await?;
    // Wait for the parent's go (a line on stdin), so every worker starts sending together.
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    stdin.read_line(&mut line).await?;
    // "go <start in µs>": every worker counts the run's seconds from the same instant.
    let start_us = line
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or_else(now_us);

    let (mut sent, mut send_errors) = (0u64, 0u64);
    let end = Instant::now() + Duration::from_secs(job.seconds);
    if job.rate > 0.0 && !clients.is_empty() {
        let interval = Duration::from_secs_f64(1.0 / job.rate);
        let mut next = Instant::now();
        let mut sends = tokio::task::JoinSet::new();
        let mut k = 0usize;
        while Instant::now() < end {
            tokio::time::sleep_until(next.into()).await;
            next += interval;
            let from = k % clients.len();
            // A peer anywhere in the scenario (often in another worker process).
            let peer = (job.first + from + 1 + (k * 7919) % (job.total_users - 1)) % job.total_users;
            let peer = if peer == job.first + from {
                (peer + 1) % job.total_users
            } else {
                peer
            };
            let c = clients[from].clone();
            let id = k as u64;
            sends.spawn(async move { c.send(peer, id).await });
            k += 1;
            while let Some(r) = sends.try_join_next() {
                if matches!(r, Ok(true)) {
                    sent += 1
                } else {
                    send_errors += 1
                }
            }
        }
        while let Some(r) = sends.join_next().await {
            if matches!(r, Ok(true)) {
                sent += 1
            } else {
                send_errors += 1
            }
        }
    } else {
        tokio::time::sleep_until(end.into()).await;
    }
    // Let deliveries in flight arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut received = 0;
    let mut seconds: Vec<Histogram<u64>> = Vec::new();
    while let Ok((sent_at, l)) = lat_rx.try_recv() {
        hist.record(l.max(1)).ok();
        let second = (sent_at.saturating_sub(start_us) / 1_000_000) as usize;
        while seconds.len() <= second.min(job.seconds as usize + 5) {
            seconds.push(Histogram::new_with_bounds(1, 120_000_000, 3)?);
        }
        if let Some(h) = seconds.get_mut(second) {
            h.record(l.max(1)).ok();
        }
        received += 1;
    }
    let per_second = seconds.iter().map(encode).collect::<Result<Vec<_>>>()?;
    let report = WorkerReport {
        connected: clients.len(),
        failed,
        sent,
        send_errors,
        received,
        histogram: encode(&hist)?,
        per_second,
    };
    out.write_all(format!("{}\n", serde_json::to_string(&report)?).as_bytes())
        .await?;
    out.flush().await?;
    // Sessions stay open until the parent has read what it measures at the end (Redis's
    // command counts), so closing them is not counted as the messages' work.
    line.clear();
    stdin.read_line(&mut line).await?;
    for c in &clients {
        c.close();
    }
    Ok(())
}

fn encode(h: &Histogram<u64>) -> Result<String> {
    let mut buf = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

fn decode(s: &str) -> Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s)?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// Connects the job's users to Tern, in waves; every message another user sends them
/// reports (sent at, latency) on `lat_tx`; every event stamps `last_event`, and messages
/// login sync brings in are counted in `synced`.
async fn connect_tern(
    job: &WorkerJob,
    lat_tx: tokio::sync::mpsc::UnboundedSender<(u64, u64)>,
    last_event: std::sync::Arc<std::sync::atomic::AtomicU64>,
    synced: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<(Vec<Sender>, usize)> {
    let now = (now_us() / 1_000_000) as i64;
    let mut clients = Vec::with_capacity(job.count);
    let mut failed = 0;
    // Connect in waves so the server's accept queue is not flooded.
    for chunk in (job.first..job.first + job.count).collect::<Vec<_>>().chunks(200) {
        let mut wave = Vec::new();
        let mut deflated = Vec::new();
        for &i in chunk {
            let user = format!("u{i}");
            let token =
                tern_sdk::signing::mint_user_token(&job.app_key, &job.app_secret, &user, now, now + 86_400, None);
            let url = job.ws_url.clone();
            if job.deflate {
                let last_event = last_event.clone();
                let compressed =
                    tokio::spawn(async move { crate::deflate::connect(&url, &token, &user, last_event).await });
                deflated.push(compressed);
                continue;
            }
            wave.push((
                i,
                tokio::spawn(
                    async move { Client::connect(&url, &token, &format!("bench-{user}"), Platform::Other).await },
                ),
            ));
        }
        for d in deflated {
            match d.await? {
                Ok(stop) => clients.push(Sender::Compressed(stop)),
                Err(e) => {
                    if failed < 3 {
                        eprintln!("worker: a compressed connection failed: {e:#}");
                    }
                    failed += 1;
                }
            }
        }
        for (i, w) in wave {
            match w.await? {
                Ok((client, mut events)) => {
                    let tx = lat_tx.clone();
                    let me = format!("u{i}");
                    let (last_event, synced) = (last_event.clone(), synced.clone());
                    tokio::spawn(async move {
                        while let Some(ev) = events.next().await {
                            last_event.store(now_us(), std::sync::atomic::Ordering::Relaxed);
                            // Count receipt by the other side, not the echo to the sender.
                            if let Event::Message(m) = ev {
                                if m.sender.as_deref() == Some(me.as_str()) {
                                    continue;
                                }
                                if let Some(t) = m.content.get("t_us").and_then(|v| v.as_u64()) {
                                    let _ = tx.send((t, now_us().saturating_sub(t)));
                                } else {
                                    synced.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                            }
                        }
                    });
                    clients.push(Sender::Tern(client));
                }
                Err(_) => failed += 1,
            }
        }
    }
    Ok((clients, failed))
}

/// Connects the job's users to an XMPP peer over its WebSocket, in waves; every 1:1
/// message they receive reports (sent at, latency) on `lat_tx`.
async fn connect_xmpp(
    job: &WorkerJob,
    domain: &str,
    lat_tx: tokio::sync::mpsc::UnboundedSender<(u64, u64)>,
) -> Result<(Vec<Sender>, usize)> {
    let domain: std::sync::Arc<str> = domain.into();
    let mut clients = Vec::with_capacity(job.count);
    let mut failed = 0;
    for chunk in (job.first..job.first + job.count).collect::<Vec<_>>().chunks(200) {
        let mut wave = tokio::task::JoinSet::new();
        for &i in chunk {
            let (url, domain) = (job.ws_url.clone(), domain.clone());
            wave.spawn(async move {
                let user = format!("u{i}");
                crate::xmpp::login(&crate::xmpp::Login {
                    url: &url,
                    domain: &domain,
                    user: &user,
                })
                .await
            });
        }
        while let Some(r) = wave.join_next().await {
            match r? {
                Ok(ws) => {
                    let (w, mut r) = crate::xmpp::split(ws);
                    let tx = lat_tx.clone();
                    tokio::spawn(async move {
                        while let Some(Ok(m)) = r.next().await {
                            let WsMessage::Text(t) = m else { continue };
                            let s = crate::xmpp::parse(t.as_str());
                            if s.name != "message" || s.kind.as_deref() != Some("chat") {
                                continue;
                            }
                            if let Some((t, _)) = s.body.as_deref().and_then(crate::xmpp::stamp) {
                                let _ = tx.send((t, now_us().saturating_sub(t)));
                            }
                        }
                    });
                    clients.push(Sender::Xmpp(w, domain.clone()));
                }
                Err(e) => {
                    if failed < 3 {
                        eprintln!("worker: an XMPP login failed: {e:#}");
                    }
                    failed += 1;
                }
            }
        }
    }
    Ok((clients, failed))
}

pub struct Fleet {
    children: Vec<(
        Child,
        tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
        tokio::process::ChildStdin,
    )>,
}

pub struct FleetResult {
    pub connected: usize,
    pub failed: usize,
    pub sent: u64,
    pub send_errors: u64,
    pub received: u64,
    pub latency_us: Histogram<u64>,
    /// Latency by the second of the run the message was sent in.
    pub per_second_us: Vec<Histogram<u64>>,
}

impl FleetResult {
    /// One line per second of the run: messages sent in it (and delivered), p50/p99/max of
    /// their latency. Shows when a run was slow, not only how slow its worst 1 % was.
    pub fn per_second_lines(&self, label: &str) -> Vec<String> {
        self.per_second_us
            .iter()
            .enumerate()
            .map(|(s, h)| {
                format!(
                    "{label} second={s} delivered={} p50={:.2}ms p99={:.2}ms max={:.2}ms",
                    h.len(),
                    h.value_at_quantile(0.5) as f64 / 1000.0,
                    h.value_at_quantile(0.99) as f64 / 1000.0,
                    h.max() as f64 / 1000.0
                )
            })
            .collect()
    }
}

/// The server a fleet connects to and how its users log in.
pub enum Server<'a> {
    /// Tern: `ws_url` is `/v1/connect`; users log in with tokens signed by the app.
    Tern {
        ws_url: &'a str,
        app_key: &'a str,
        app_secret: &'a str,
        /// Clients agree to `permessage-deflate` (idle only).
        deflate: bool,
    },
    /// An XMPP peer: `ws_url` is its RFC 7395 WebSocket; users log in to `domain`.
    Xmpp { ws_url: &'a str, domain: &'a str },
}

impl Fleet {
    /// Starts `processes` workers sharing `users` connections and `rate` sends/s; returns
    /// once every worker has connected.
    pub async fn start(
        server: Server<'_>,
        users: usize,
        processes: usize,
        rate: f64,
        seconds: u64,
    ) -> Result<(Self, usize, usize)> {
        let (ws_url, app_key, app_secret, xmpp_domain, deflate) = match server {
            Server::Tern {
                ws_url,
                app_key,
                app_secret,
                deflate,
            } => (ws_url, app_key, app_secret, None, deflate),
            Server::Xmpp { ws_url, domain } => (ws_url, "", "", Some(domain), false),
        };
        let exe = std::env::current_exe()?;
        let per = users.div_ceil(processes);
        let mut children = Vec::new();
        for p in 0..processes {
            let first = p * per;
            let count = per.min(users.saturating_sub(first));
            if count == 0 {
                break;
            }
            let job = WorkerJob {
                ws_url: pick_url(ws_url, p),
                app_key: app_key.to_owned(),
                app_secret: app_secret.to_owned(),
                first,
                count,
                total_users: users,
                rate: rate * count as f64 / users as f64,
                seconds,
                xmpp_domain: xmpp_domain.map(str::to_owned),
                deflate,
            };
            let mut child = Command::new(&exe)
                .args(["worker", &serde_json::to_string(&job)?])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()?;
            let stdout = child.stdout.take().context("worker stdout")?;
            let stdin = child.stdin.take().context("worker stdin")?;
            children.push((child, BufReader::new(stdout).lines(), stdin));
        }
        let (mut ready, mut failed) = (0, 0);
        let (mut connected_ms, mut settled_ms, mut synced) = (0, 0, 0);
        for (_, lines, _) in children.iter_mut() {
            let line = lines.next_line().await?.context("worker exited before connecting")?;
            let v: serde_json::Value = serde_json::from_str(&line)?;
            ready += v["ready"].as_u64().unwrap_or(0) as usize;
            failed += v["failed"].as_u64().unwrap_or(0) as usize;
            connected_ms = connected_ms.max(v["connected_ms"].as_u64().unwrap_or(0));
            settled_ms = settled_ms.max(v["settled_ms"].as_u64().unwrap_or(0));
            synced += v["synced_messages"].as_u64().unwrap_or(0);
        }
        // The login burst: how long until every session was connected, and until their
        // sync had stopped bringing messages in.
        println!("login users={ready} connected_in={connected_ms}ms synced_in={settled_ms}ms synced_messages={synced}");
        Ok((Self { children }, ready, failed))
    }

    /// Tells every worker to go, collects their results, calls `at_end` while every session
    /// is still open, then lets the workers close them.
    pub async fn run<T>(mut self, at_end: impl FnOnce() -> T) -> Result<(FleetResult, T)> {
        let go = format!("go {}\n", now_us());
        for (_, _, stdin) in self.children.iter_mut() {
            stdin.write_all(go.as_bytes()).await?;
            stdin.flush().await?;
        }
        let mut r = FleetResult {
            connected: 0,
            failed: 0,
            sent: 0,
            send_errors: 0,
            received: 0,
            latency_us: Histogram::new_with_bounds(1, 120_000_000, 3)?,
            per_second_us: Vec::new(),
        };
        for (_, lines, _) in self.children.iter_mut() {
            let line = lines.next_line().await?.context("worker exited without a report")?;
            let w: WorkerReport = serde_json::from_str(&line)?;
            let h = decode(&w.histogram)?;
            r.latency_us.add(&h).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            for (s, encoded) in w.per_second.iter().enumerate() {
                if r.per_second_us.len() <= s {
                    r.per_second_us.push(Histogram::new_with_bounds(1, 120_000_000, 3)?);
                }
                r.per_second_us[s]
                    .add(&decode(encoded)?)
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            }
            r.connected += w.connected;
            r.failed += w.failed;
            r.sent += w.sent;
            r.send_errors += w.send_errors;
            r.received += w.received;
        }
        let end = at_end();
        for (child, _, stdin) in self.children.iter_mut() {
            stdin.write_all(b"bye\n").await?;
            stdin.flush().await?;
            let status = child.wait().await?;
            if !status.success() {
                bail!("a worker failed: {status}");
            }
        }
        Ok((r, end))
    }
}

/// CPU time (user + system) of a process, in clock ticks, from /proc.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}
