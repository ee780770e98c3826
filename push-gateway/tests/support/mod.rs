//! Starts the real gateway in-process on 127.0.0.1 over a SQLite file that outlives any one
//! server (so a test can restart it), with apps created directly in the store and user
//! tokens minted with the app's secret; and a TCP proxy that can cut live connections.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tern_platform::auth::token::{mint_user_token, UserTokenVerifier};
use tern_platform::bus::memory::MemoryBus;
use tern_platform::delivery::{Pipeline, PipelineConfig, Recipient, SendRequest};
use tern_platform::domain::*;
use tern_platform::ids::*;
use tern_platform::presence::MemoryPresence;
use tern_platform::secret_box::SecretBox;
use tern_platform::store::{self, NewApp, Store};
use tern_push_gateway::{Gateway, GatewayConfig};
use tern_sdk::{Client, ClientOptions, Event, Events, Platform};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a test waits for something that should happen; a hang fails instead.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The database and secrets, which outlive server restarts.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub db_url: String,
    pub secrets: SecretBox,
    pub tenant: TenantId,
}

pub struct TestApp {
    pub app: App,
    pub secret: String,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    pub store: Arc<dyn Store>,
    pub pipeline: Arc<Pipeline>,
    pub gateway: Arc<Gateway>,
    pub shutdown: CancellationToken,
    task: JoinHandle<()>,
}

/// An environment per configured store: SQLite always, PostgreSQL when
/// `TERN_TEST_DATABASE_URL` is set (see `tern_platform::store::testing`).
pub async fn envs() -> Vec<(&'static str, Env)> {
    let mut out = vec![("sqlite", Env::new().await)];
    if let Some(url) = store::testing::postgres_fresh_url().await {
        out.push(("postgres", Env::on(url).await));
    }
    out
}

impl Env {
    /// On a SQLite file in a temporary directory.
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_url = format!("sqlite://{}", dir.path().join("tern.db").display());
        Self::with(dir, db_url).await
    }

    /// One environment per store to test on (the same as [`envs`]).
    pub async fn all() -> Vec<(&'static str, Env)> {
        envs().await
    }

    /// On a database that exists and is migrated (PostgreSQL).
    pub async fn on(db_url: String) -> Self {
        Self::with(tempfile::tempdir().unwrap(), db_url).await
    }

    async fn with(dir: tempfile::TempDir, db_url: String) -> Self {
        let store = store::connect(&db_url).await.unwrap();
        store.migrate().await.unwrap();
        let tenant = Tenant {
            id: TenantId::generate(),
            name: format!("tenant-{}", AppKey::generate()),
            status: TenantStatus::Active,
            created_at: now_ms(),
        };
        store.create_tenant(&tenant).await.unwrap();
        Self {
            dir,
            db_url,
            secrets: SecretBox::from_key([7; 32]),
            tenant: tenant.id,
        }
    }

    /// A new app; `tune` adjusts its settings (tests raise the send rate).
    pub async fn app(&self, tune: impl FnOnce(&mut AppSettings)) -> TestApp {
        let store = store::connect(&self.db_url).await.unwrap();
        let id = AppId::generate();
        let secret = format!("sk_{}", AppKey::generate().as_str());
        let mut settings = AppSettings {
            user_send_rate_per_second: 100_000,
            ..AppSettings::default()
        };
        tune(&mut settings);
        let new = NewApp {
            id: id.clone(),
            tenant_id: self.tenant.clone(),
            name: format!("app-{}", AppKey::generate()),
            app_key: AppKey::generate(),
            settings,
            first_secret: AppSecretRecord {
                id: SecretId::generate(),
                app_id: id.clone(),
                ciphertext: self.secrets.seal(id.as_str(), secret.as_bytes()),
                created_at: now_ms(),
                expires_at: None,
            },
            webhook_secret_ciphertext: self.secrets.seal(id.as_str(), b"whsec_test"),
        };
        let app = store.create_app(&new).await.unwrap();
        TestApp { app, secret }
    }

    pub fn config() -> GatewayConfig {
        GatewayConfig {
            node_id: format!("node-{}", AppKey::generate()),
            heartbeat_interval: Duration::from_secs(2),
            auth_timeout: Duration::from_secs(1),
            ..GatewayConfig::default()
        }
    }

    /// Starts a server on `addr` (a fresh port when `None`).
    pub async fn start(&self, addr: Option<SocketAddr>) -> TestServer {
        self.start_with(addr, Self::config()).await
    }

    pub async fn start_with(&self, addr: Option<SocketAddr>, config: GatewayConfig) -> TestServer {
        let store = store::connect(&self.db_url).await.unwrap();
        let pipeline = Arc::new(Pipeline::new(
            store.clone(),
            Arc::new(MemoryBus::new()),
            Arc::new(MemoryPresence::new()),
            PipelineConfig::default(),
        ));
        let verifier = Arc::new(UserTokenVerifier::new(store.clone(), self.secrets.clone()));
        let shutdown = CancellationToken::new();
        let gateway = Gateway::start(config, pipeline.clone(), verifier, shutdown.clone())
            .await
            .unwrap();
        let listener = bind(addr).await;
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(tern_push_gateway::serve(listener, gateway.clone(), shutdown.clone()).map_unit());
        TestServer {
            addr,
            url: format!("ws://{addr}/v1/connect"),
            store,
            pipeline,
            gateway,
            shutdown,
            task,
        }
    }
}

/// Binds, retrying briefly: a port just released by a stopped server may linger.
async fn bind(addr: Option<SocketAddr>) -> TcpListener {
    let want = addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap());
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(want).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot bind {want}");
}

trait MapUnit {
    fn map_unit(self) -> impl std::future::Future<Output = ()> + Send;
}

impl<F: std::future::Future<Output = std::io::Result<()>> + Send> MapUnit for F {
    async fn map_unit(self) {
        self.await.unwrap();
    }
}

impl TestServer {
    /// Tells clients to reconnect, waits for every connection to drain and the server to stop.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.task).await.unwrap().unwrap();
    }

    /// Sends as `from` through the pipeline, as the REST API would.
    pub async fn send_direct(&self, app: &TestApp, from: &str, to: &str, text: &str) -> SendReceipt {
        self.pipeline
            .send(
                &app.app,
                SendRequest {
                    sender: Sender::User(UserId::parse(from).unwrap()),
                    to: Recipient::User(UserId::parse(to).unwrap()),
                    client_msg_id: None,
                    msg_type: MessageType::Text,
                    content: serde_json::json!({ "text": text }),
                    source: Source::ServerApi,
                    options: Default::default(),
                },
            )
            .await
            .unwrap()
    }
}

impl TestApp {
    pub fn token(&self, user: &str) -> String {
        self.token_with(user, 0, 3600)
    }

    /// A token issued `iat_offset` seconds from now, valid for `ttl` seconds after that.
    pub fn token_with(&self, user: &str, iat_offset: i64, ttl: i64) -> String {
        let iat = now_ms() / 1000 + iat_offset;
        mint_user_token(
            &self.app.app_key,
            &self.secret,
            &UserId::parse(user).unwrap(),
            iat,
            iat + ttl,
            None,
        )
    }

    /// Makes sure users exist (tokens would create them on login; senders need them first).
    pub async fn users(&self, env: &Env, ids: &[&str]) {
        let store = store::connect(&env.db_url).await.unwrap();
        let users: Vec<(UserId, UserProfile)> = ids
            .iter()
            .map(|u| (UserId::parse(u).unwrap(), UserProfile::default()))
            .collect();
        store.upsert_users(&self.app.id, &users, now_ms()).await.unwrap();
    }
}

pub fn fast_options() -> ClientOptions {
    ClientOptions {
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        request_timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

pub async fn connect(url: &str, app: &TestApp, user: &str, device: &str) -> (Client, Events) {
    Client::connect_with(url, &app.token(user), device, Platform::Ios, fast_options())
        .await
        .unwrap()
}

/// Waits for the next event that `pick` selects, skipping others.
pub async fn next_matching<T>(events: &mut Events, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let ev = events.next().await.expect("the event stream ended");
            if let Some(t) = pick(ev) {
                return t;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

/// Waits until the client says its connection is lost (skipping other events).
pub async fn disconnected(events: &mut Events) {
    next_matching(events, |e| {
        matches!(e, Event::Connection(tern_sdk::ConnectionState::Disconnected { .. })).then_some(())
    })
    .await
}

/// The code of the next `kicked` event.
pub async fn kicked(events: &mut Events) -> String {
    next_matching(events, |e| match e {
        Event::Kicked { code, .. } => Some(code),
        _ => None,
    })
    .await
}

/// The next `kicked` event carries `code`, and the connection then ends closed with it.
pub async fn kicked_and_closed(events: &mut Events, code: &str) {
    assert_eq!(kicked(events).await, code);
    let state = next_matching(events, |e| match e {
        Event::Connection(s @ tern_sdk::ConnectionState::Closed { .. }) => Some(s),
        _ => None,
    })
    .await;
    assert!(matches!(state, tern_sdk::ConnectionState::Closed { code: c, .. } if c == code));
}

/// The node still serves this session after what happened to others: a note to self
/// comes back.
pub async fn still_serves(client: &Client, user: &str, events: &mut Events) {
    client
        .send(
            tern_sdk::Target::User(user.to_owned()),
            "text",
            serde_json::json!({"text": "still here"}),
        )
        .await
        .unwrap();
    assert_eq!(texts(events, 1).await[0].2, "still here");
}

/// Collects the texts of the next `n` messages (skipping other events).
pub async fn texts(events: &mut Events, n: usize) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = next_matching(events, |e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .await;
        let text = m.content["text"].as_str().unwrap_or_default().to_owned();
        out.push((m.conversation_id, m.seq, text));
    }
    out
}

/// No further message arrives within a short settle time (used after everything expected
/// has arrived, to catch duplicates; it never decides a pass on its own timing).
pub async fn no_more_messages(events: &mut Events) {
    let extra = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            match events.next().await {
                Some(Event::Message(m)) => return Some(m),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await;
    if let Ok(Some(m)) = extra {
        panic!("unexpected extra message: {m:?}");
    }
}

/// A TCP proxy in front of a server whose live connections can be cut at once, as a
/// network failure would (no WebSocket close on either side).
pub struct Proxy {
    pub url: String,
    cut: broadcast::Sender<()>,
    /// While set, new connections are dropped at once (the network is down).
    down: Arc<AtomicBool>,
    /// The next connection is cut right after the server's first WebSocket frame.
    after_first_frame: Arc<AtomicBool>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = broadcast::channel::<()>(4);
        let cut_tx = cut.clone();
        let is_down = Arc::new(AtomicBool::new(false));
        let down_flag = is_down.clone();
        let after_first_frame = Arc::new(AtomicBool::new(false));
        let first_frame_flag = after_first_frame.clone();
        tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if down_flag.load(Ordering::SeqCst) {
                    continue;
                }
                let mut cut_rx = cut_tx.subscribe();
                let first_frame_only = first_frame_flag.swap(false, Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    if first_frame_only {
                        tokio::select! {
                            _ = relay_until_first_frame(down, up) => {}
                            _ = cut_rx.recv() => {}
                        }
                        return;
                    }
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                        _ = cut_rx.recv() => {}
                    }
                });
            }
        });
        Self {
            url: format!("ws://{addr}/v1/connect"),
            cut,
            down: is_down,
            after_first_frame,
        }
    }

    /// Takes the network down (cutting what is live) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            self.cut();
        }
    }

    /// Drops every connection through the proxy.
    pub fn cut(&self) {
        let _ = self.cut.send(());
    }

    /// The next connection through the proxy is cut once the server's first WebSocket
    /// frame (for a client that authenticates at once, `auth_ok` and its sync) has gone
    /// through whole: the client reads that answer, and nothing it sends afterwards is
    /// answered.
    pub fn cut_next_after_first_frame(&self) {
        self.after_first_frame.store(true, Ordering::SeqCst);
    }
}

/// Relays a connection until the server's HTTP upgrade answer and first WebSocket frame
/// have reached the client, then drops both sides.
async fn relay_until_first_frame(down: TcpStream, up: TcpStream) {
    let (mut down_read, mut down_write) = down.into_split();
    let (mut up_read, mut up_write) = up.into_split();
    let to_server = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut down_read, &mut up_write).await;
    });
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match up_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let start = seen.len();
        seen.extend_from_slice(&buf[..n]);
        if let Some(end) = first_frame_end(&seen) {
            let _ = down_write.write_all(&seen[start..end]).await;
            break;
        }
        if down_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    to_server.abort();
}

/// Where the first WebSocket frame ends in what a server sent (its HTTP upgrade answer,
/// then frames), once all of it is there.
fn first_frame_end(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let f = buf.get(head..)?;
    let len_byte = *f.get(1)?;
    let (len, at) = match len_byte & 0x7f {
        126 => (usize::from(u16::from_be_bytes([*f.get(2)?, *f.get(3)?])), 4),
        127 => (
            usize::try_from(u64::from_be_bytes(f.get(2..10)?.try_into().ok()?)).ok()?,
            10,
        ),
        n => (usize::from(n), 2),
    };
    let mask = if len_byte & 0x80 != 0 { 4 } else { 0 };
    let end = head + at + mask + len;
    (buf.len() >= end).then_some(end)
}
