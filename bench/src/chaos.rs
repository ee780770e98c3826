//! The chaos workload and its checker, shared by the `tern-bench chaos` scenario and the
//! shorter `tests/chaos.rs`: users with two devices each send direct, group and room
//! messages and read receipts while the caller breaks things (kills a server, restarts
//! PostgreSQL or Redis, cuts a connection mid-frame). At the end every device reconnects
//! (which syncs it) and the checker compares what every sender was told was accepted with
//! what every device shows:
//!
//! - **lost**: an acknowledged direct or group message that a device of a member never
//!   showed, or an acknowledged room message missing from the room's stored history (a
//!   room delivers only to connected members and gives a backlog on re-join, so a device
//!   that was away is not expected to show every room message: docs/rooms.md);
//! - **duplicates**: a message a device showed twice (`Event::Message` with the same id);
//! - **out of order**: a device showing a conversation's message after one with a higher seq.
//!
//! The faults themselves are the caller's (a bench scenario starts its own servers and
//! services; a test uses the test helpers), except the mid-frame cut, which needs a proxy
//! between one device and its server: `CutProxy`.
//!
//! Written for Tern: what is checked is Tern's own promise (docs/reliability.md), in Tern's
//! own SDK terms, so no general-purpose checker fits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;
use tern_sdk::client::{Client, ClientOptions, Event, Platform, Target};
use tern_sdk::server::ServerClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the workload is made of.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server API (any node).
    pub http: String,
    /// WebSocket addresses (`ws://…/v1/connect`); devices spread over them round-robin.
    pub ws_urls: Vec<String>,
    pub app_key: String,
    pub app_secret: String,
    /// Users; each has two devices, and one of them sends.
    pub users: usize,
    /// Pause between two sends of one sender.
    pub send_every: Duration,
    /// Names users, group and room apart from another run on the same app.
    pub run_id: String,
    /// One device of the first user connects through a `CutProxy` to the first address.
    pub cut_proxy: bool,
}

/// One accepted send, as its sender was told.
#[derive(Debug, Clone)]
struct Acked {
    msg_id: String,
    conversation_id: String,
    seq: i64,
    kind: Kind,
    /// The users whose devices must show it (direct and group).
    audience: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Direct,
    Group,
    Room,
}

#[derive(Default)]
struct DeviceLog {
    /// (conversation, seq, msg id) in the order shown.
    shown: Vec<(String, i64, String)>,
    receipts: u64,
    reconnects: u64,
}

struct Device {
    user: usize,
    client: Client,
    log: Arc<Mutex<DeviceLog>>,
    reader: JoinHandle<()>,
}

/// The figures of one run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub devices: usize,
    pub acked_direct: u64,
    pub acked_group: u64,
    pub acked_room: u64,
    /// Sends that ended in an error or no answer (the sender was not told they were accepted).
    pub unacknowledged: u64,
    /// Message events shown, all devices together.
    pub shown: u64,
    pub receipts_seen: u64,
    /// Connection losses the devices went through (`Disconnected` events).
    pub reconnects: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// The first few problems, for a human.
    pub examples: Vec<String>,
}

impl Report {
    pub fn acked(&self) -> u64 {
        self.acked_direct + self.acked_group + self.acked_room
    }

    pub fn clean(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.out_of_order == 0
    }

    pub fn line(&self) -> String {
        format!(
            "acked={} (direct={} group={} room={}) unacknowledged={} devices={} shown={} receipts={} reconnects={} lost={} duplicates={} out_of_order={}",
            self.acked(),
            self.acked_direct,
            self.acked_group,
            self.acked_room,
            self.unacknowledged,
            self.devices,
            self.shown,
            self.receipts_seen,
            self.reconnects,
            self.lost,
            self.duplicates,
            self.out_of_order
        )
    }
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The running workload.
pub struct Load {
    config: LoadConfig,
    devices: Vec<Device>,
    acked: Arc<Mutex<Vec<Acked>>>,
    unacknowledged: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    senders: Vec<JoinHandle<()>>,
    proxy: Option<CutProxy>,
    group: String,
    room_conversation: String,
}

fn user_name(run: &str, i: usize) -> String {
    format!("{run}-u{i}")
}

/// Client options for a chaos device: reconnect quickly (a restarted node is back in a
/// second or two) and wait long enough for a command across a database restart.
fn options() -> ClientOptions {
    ClientOptions {
        min_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        request_timeout: Duration::from_secs(30),
        tls_ca_pem: None,
        ..Default::default()
    }
}

async fn connect_retrying(url: &str, token: &str, device: &str) -> Result<(Client, tern_sdk::client::Events)> {
    let mut last = None;
    for _ in 0..60 {
        match Client::connect_with(url, token, device, Platform::Other, options()).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(anyhow::anyhow!("device {device} could not connect: {last:?}"))
}

impl Load {
    /// Makes the users, the group and the room, connects every device and starts sending.
    pub async fn start(config: LoadConfig) -> Result<Load> {
        anyhow::ensure!(config.users >= 2, "the chaos load needs at least 2 users");
        let api = ServerClient::new(&config.http, &config.app_key, &config.app_secret);
        let run = config.run_id.clone();
        let users: Vec<serde_json::Value> = (0..config.users)
            .map(|i| json!({"id": user_name(&run, i), "name": format!("chaos user {i}")}))
            .collect();
        api.upsert_users(&users).await.context("creating the users")?;
        let group = format!("{run}-g");
        let names: Vec<String> = (0..config.users).map(|i| user_name(&run, i)).collect();
        let members: Vec<&str> = names.iter().skip(1).map(String::as_str).collect();
        api.create_group(&group, "chaos", &names[0], &members)
            .await
            .context("creating the group")?;
        let room = format!("{run}-r");
        api.create_room(&room, None, None).await.context("creating the room")?;

        let proxy = if config.cut_proxy {
            let upstream: SocketAddr = config.ws_urls[0]
                .trim_start_matches("ws://")
                .split('/')
                .next()
                .unwrap_or_default()
                .parse()
                .context("the first WebSocket address")?;
            Some(CutProxy::start(upstream).await?)
        } else {
            None
        };

        let mut devices = Vec::new();
        for user in 0..config.users {
            for d in 0..2 {
                let n = devices.len();
                let url = match (&proxy, n) {
                    (Some(p), 1) => format!("ws://{}/v1/connect", p.addr),
                    _ => config.ws_urls[n % config.ws_urls.len()].clone(),
                };
                let name = user_name(&run, user);
                let token = tern_sdk::signing::mint_user_token(
                    &config.app_key,
                    &config.app_secret,
                    &name,
                    now_s() - 60,
                    now_s() + 86_400,
                    None,
                );
                let (client, mut events) = connect_retrying(&url, &token, &format!("{name}-d{d}")).await?;
                client.join_room(&room).await.context("joining the room")?;
                let log = Arc::new(Mutex::new(DeviceLog::default()));
                let l = log.clone();
                let reader = tokio::spawn(async move {
                    while let Some(ev) = events.next().await {
                        let mut log = l.lock().unwrap_or_else(|p| p.into_inner());
                        match ev {
                            Event::Message(m) => log.shown.push((m.conversation_id, m.seq, m.msg_id)),
                            Event::Receipt { .. } => log.receipts += 1,
                            Event::Connection(tern_sdk::client::ConnectionState::Disconnected { .. }) => {
                                log.reconnects += 1
                            }
                            _ => {}
                        }
                    }
                });
                devices.push(Device {
                    user,
                    client,
                    log,
                    reader,
                });
            }
        }

        let mut load = Load {
            room_conversation: format!("r:{room}"),
            config,
            devices,
            acked: Arc::new(Mutex::new(Vec::new())),
            unacknowledged: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            senders: Vec::new(),
            proxy,
            group,
        };
        load.start_senders(&room);
        Ok(load)
    }

    fn start_senders(&mut self, room: &str) {
        let users = self.config.users;
        for user in 0..users {
            // The first device of each user sends; both show.
            let client = self.devices[user * 2].client.clone();
            let acked = self.acked.clone();
            let unacked = self.unacknowledged.clone();
            let stop = self.stop.clone();
            let run = self.config.run_id.clone();
            let group = self.group.clone();
            let room = room.to_owned();
            let every = self.config.send_every;
            self.senders.push(tokio::spawn(async move {
                let mut k = 0usize;
                let mut last_conversation: Option<(String, i64)> = None;
                while !stop.load(Ordering::Relaxed) {
                    k += 1;
                    let (target, kind, audience) = match k % 5 {
                        0 | 1 => {
                            let peer = (user + 1 + (k * 31) % (users - 1)) % users;
                            (Target::User(user_name(&run, peer)), Kind::Direct, vec![user, peer])
                        }
                        2 | 3 => (Target::Group(group.clone()), Kind::Group, (0..users).collect()),
                        _ => (Target::Room(room.clone()), Kind::Room, Vec::new()),
                    };
                    let send = client.send(target, "custom", json!({"data": {"n": k, "from": user}}));
                    match tokio::time::timeout(Duration::from_secs(90), send).await {
                        Ok(Ok(ack)) => {
                            if kind != Kind::Room {
                                last_conversation = Some((ack.conversation_id.clone(), ack.seq));
                            }
                            acked.lock().unwrap_or_else(|p| p.into_inner()).push(Acked {
                                msg_id: ack.msg_id,
                                conversation_id: ack.conversation_id,
                                seq: ack.seq,
                                kind,
                                audience,
                            });
                        }
                        other => {
                            if unacked.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("chaos: first unacknowledged send ({kind:?}): {other:?}");
                            }
                        }
                    }
                    // A read receipt now and then (the other side gets a `Receipt`).
                    if k.is_multiple_of(7) {
                        if let Some((c, seq)) = &last_conversation {
                            let _ = tokio::time::timeout(Duration::from_secs(30), client.read(c, *seq)).await;
                        }
                    }
                    tokio::time::sleep(every).await;
                }
            }));
        }
    }

    /// Acknowledged sends so far.
    pub fn acked_so_far(&self) -> usize {
        self.acked.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Makes device `n` (modulo the number of devices) drop its connection and reconnect.
    pub fn reconnect_device(&self, n: usize) {
        self.devices[n % self.devices.len()].client.reconnect_now();
    }

    /// Cuts the proxied device's connection in the middle of the next frame the server
    /// sends it (false without a proxy).
    pub fn cut_mid_frame(&self) -> bool {
        match &self.proxy {
            Some(p) => {
                p.cut();
                true
            }
            None => false,
        }
    }

    /// How many cuts landed in the middle of a frame so far.
    pub fn cuts_done(&self) -> u64 {
        self.proxy.as_ref().map_or(0, |p| p.cuts.load(Ordering::Relaxed))
    }

    /// Stops sending, waits for the answers in flight, makes every device reconnect (and so
    /// sync), waits up to `settle` for the devices to show what they should, and checks.
    pub async fn finish(mut self, settle: Duration) -> Result<Report> {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.senders.drain(..) {
            s.await.ok();
        }
        for d in &self.devices {
            d.client.reconnect_now();
        }
        let acked = self.acked.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let deadline = tokio::time::Instant::now() + settle;
        loop {
            let missing = self.missing(&acked);
            if missing == 0 || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // A moment more for duplicates that would follow the last expected message.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let api = ServerClient::new(&self.config.http, &self.config.app_key, &self.config.app_secret);
        let mut room_history = Vec::new();
        let mut after = 0;
        loop {
            // No room message stored at all: the room's conversation does not exist.
            let page = match retry(|| api.history(&self.room_conversation, after, 100)).await {
                Ok(p) => p,
                Err(e) if e.to_string().contains("not_found") => Vec::new(),
                Err(e) => return Err(e),
            };
            let Some(last) = page.last() else { break };
            after = last.seq;
            room_history.extend(page.into_iter().map(|m| m.msg_id));
        }
        let report = self.check(&acked, &room_history);
        for d in &self.devices {
            d.client.close();
        }
        Ok(report)
    }

    fn missing(&self, acked: &[Acked]) -> usize {
        let mut missing = 0;
        for d in &self.devices {
            let log = d.log.lock().unwrap_or_else(|p| p.into_inner());
            let shown: HashSet<&str> = log.shown.iter().map(|(_, _, id)| id.as_str()).collect();
            missing += acked
                .iter()
                .filter(|a| a.audience.contains(&d.user) && !shown.contains(a.msg_id.as_str()))
                .count();
        }
        missing
    }

    fn check(&self, acked: &[Acked], room_history: &[String]) -> Report {
        let mut r = Report {
            devices: self.devices.len(),
            unacknowledged: self.unacknowledged.load(Ordering::Relaxed),
            ..Report::default()
        };
        for a in acked {
            match a.kind {
                Kind::Direct => r.acked_direct += 1,
                Kind::Group => r.acked_group += 1,
                Kind::Room => r.acked_room += 1,
            }
        }
        let example = |r: &mut Report, s: String| {
            if r.examples.len() < 10 {
                r.examples.push(s)
            }
        };
        for (n, d) in self.devices.iter().enumerate() {
            let log = d.log.lock().unwrap_or_else(|p| p.into_inner());
            r.shown += log.shown.len() as u64;
            r.receipts_seen += log.receipts;
            r.reconnects += log.reconnects;
            let mut seen: HashMap<&str, usize> = HashMap::new();
            let mut last_seq: BTreeMap<&str, i64> = BTreeMap::new();
            for (conversation, seq, id) in &log.shown {
                let count = seen.entry(id.as_str()).or_default();
                *count += 1;
                if *count == 2 {
                    r.duplicates += 1;
                    example(&mut r, format!("device {n} showed {id} ({conversation} #{seq}) twice"));
                }
                let last = last_seq.entry(conversation.as_str()).or_insert(0);
                if *seq <= *last && *count == 1 {
                    r.out_of_order += 1;
                    example(&mut r, format!("device {n} showed {conversation} #{seq} after #{last}"));
                }
                *last = (*last).max(*seq);
            }
            for a in acked.iter().filter(|a| a.audience.contains(&d.user)) {
                if !seen.contains_key(a.msg_id.as_str()) {
                    r.lost += 1;
                    example(
                        &mut r,
                        format!(
                            "device {n} never showed {} ({:?} {} #{})",
                            a.msg_id, a.kind, a.conversation_id, a.seq
                        ),
                    );
                }
            }
        }
        let stored: HashMap<&str, usize> = room_history.iter().fold(HashMap::new(), |mut m, id| {
            *m.entry(id.as_str()).or_default() += 1;
            m
        });
        for a in acked.iter().filter(|a| a.kind == Kind::Room) {
            match stored.get(a.msg_id.as_str()) {
                None => {
                    r.lost += 1;
                    example(
                        &mut r,
                        format!("room message {} #{} is not in the room's history", a.msg_id, a.seq),
                    );
                }
                Some(n) if *n > 1 => {
                    r.duplicates += 1;
                    example(&mut r, format!("room message {} is stored {n} times", a.msg_id));
                }
                Some(_) => {}
            }
        }
        r
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for d in &self.devices {
            d.reader.abort();
        }
    }
}

/// Retries a server API call for up to a minute (the server may be restarting).
async fn retry<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tern_sdk::server::ServerError>>,
{
    let mut last = None;
    for _ in 0..120 {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.to_string().contains("not_found") => return Err(anyhow::anyhow!("not_found: {e}")),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(anyhow::anyhow!("the server API kept failing: {last:?}"))
}

/// A TCP proxy between one device and its server that can cut the connection in the
/// middle of a frame: after `cut`, it forwards only the first half of the next chunk the
/// server sends and then closes both sides, so the client reads a truncated WebSocket frame
/// (a frame's header says how long it is; the rest never comes).
pub struct CutProxy {
    pub addr: SocketAddr,
    armed: Arc<AtomicBool>,
    cuts: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl CutProxy {
    pub async fn start(upstream: SocketAddr) -> Result<CutProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let armed = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (a, c) = (armed.clone(), cuts.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (a, c) = (a.clone(), c.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        pipe(client, server, a, c).await;
                    }
                });
            }
        });
        Ok(CutProxy {
            addr,
            armed,
            cuts,
            task,
        })
    }

    pub fn cut(&self) {
        self.armed.store(true, Ordering::Relaxed);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(client: TcpStream, server: TcpStream, armed: Arc<AtomicBool>, cuts: Arc<AtomicU64>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match sr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if armed.swap(false, Ordering::Relaxed) && n >= 2 {
            let _ = cw.write_all(&buf[..n / 2]).await;
            let _ = cw.flush().await;
            cuts.fetch_add(1, Ordering::Relaxed);
            break;
        }
        if cw.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    up.abort();
    // Dropping both halves closes the client's socket with half a frame delivered.
}

/// A TCP forwarder to a service (PostgreSQL, Redis) that can be cut, as when the service
/// goes away or the network path to it does: while cut, its live connections are closed at
/// once and new ones are closed on arrival. The servers under test reach the service only
/// through it, so cutting it looks to them like the service restarting; the service itself,
/// shared with other work on the machine, is never touched.
pub struct LinkProxy {
    pub addr: SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
    cuts: AtomicU64,
    task: JoinHandle<()>,
}

impl LinkProxy {
    /// Forwards to `target` (`host:port`).
    pub async fn start(target: &str) -> Result<LinkProxy> {
        let target = target.to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, cut_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if *cut_rx.borrow() {
                    continue; // closed on arrival
                }
                let target = target.clone();
                let mut cut_rx = cut_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_rx.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Ok(LinkProxy {
            addr,
            cut,
            cuts: AtomicU64::new(0),
            task,
        })
    }

    /// `url` (`scheme://[user@]host:port[/rest]`) with its host and port replaced by the
    /// proxy's, and the `host:port` it named.
    pub fn rewrite(url: &str) -> Result<(String, String)> {
        let (scheme, rest) = url.split_once("://").context("a URL with a scheme")?;
        let (auth, hostpath) = match rest.rsplit_once('@') {
            Some((a, h)) => (format!("{a}@"), h),
            None => (String::new(), rest),
        };
        let (host, path) = match hostpath.find(['/', '?']) {
            Some(i) => hostpath.split_at(i),
            None => (hostpath, ""),
        };
        anyhow::ensure!(host.contains(':'), "the URL names no port: {url}");
        Ok((format!("{scheme}://{auth}{{proxy}}{path}"), host.to_owned()))
    }

    /// Starts a proxy to the service at `url`; the proxy and `url` pointed at it.
    pub async fn for_url(url: &str) -> Result<(LinkProxy, String)> {
        let (template, target) = Self::rewrite(url)?;
        let proxy = LinkProxy::start(&target).await?;
        let proxied = template.replace("{proxy}", &proxy.addr.to_string());
        Ok((proxy, proxied))
    }

    /// Cuts (`true`) or restores (`false`) the path to the service.
    pub fn set_cut(&self, cut: bool) {
        if cut {
            self.cuts.fetch_add(1, Ordering::Relaxed);
        }
        self.cut.send_replace(cut);
    }

    /// How many times the path was cut.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
