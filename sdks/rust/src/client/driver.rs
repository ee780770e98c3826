//! The driver: the background task that owns the connection (`link`: WebSocket or gRPC). It opens and authenticates the
//! connection, reconnects with backoff, restores rooms and presence subscriptions, and keeps
//! unacknowledged sends to retry them; what it does with each frame is in `inbound`.

mod inbound;
mod link;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::proto as pb;
use crate::timeline::Timeline;
use crate::types::{ClientError, ConnectionState, Event, Platform, SendAck};
use pb::client_frame::Command;
use pb::server_frame::Body;

use super::{ClientOptions, Cmd, Remember};
use link::{Link, LinkError, Read};

/// Page size of the history pulls that fill gaps.
const FILL_PAGE: u32 = 100;

/// A send waiting for its acknowledgement.
struct Outgoing {
    send: pb::Send,
    reply: Option<oneshot::Sender<Result<SendAck, ClientError>>>,
}

/// What an answer with a given request id is for.
enum Pending {
    User(oneshot::Sender<Result<Body, ClientError>>),
    Send(u64),
    Sync,
    /// A gap fill of a conversation, asked for after this seq.
    Fill(String, i64),
    /// A pull of a conversation's changes after the previous sync.
    Changes(String),
    Join,
    Presence,
    /// Keepalive; the `pong` needs no handling.
    Ping,
}

/// How a connected period ended.
enum End {
    Retry(String),
    Stop { code: String, reason: String },
}

enum OpenError {
    Refused { code: String, message: String },
    Network(String),
}

pub(super) struct Driver {
    url: String,
    token: String,
    device_id: String,
    platform: Platform,
    options: ClientOptions,
    events: mpsc::UnboundedSender<Event>,
    timelines: HashMap<String, Timeline>,
    /// Highest conversation-list version seen; the next sync starts after it.
    version: i64,
    /// The version the sync pass in progress started from: conversations it returns pull
    /// their message changes after it.
    sync_since: i64,
    /// The first sync has been read to its last page: every conversation the user had then
    /// has a timeline, so one first seen after is new and all of it is news.
    listed_all: bool,
    /// Unacknowledged sends, in the order the app made them.
    outbox: BTreeMap<u64, Outgoing>,
    next_outbox: u64,
    rooms: BTreeSet<String>,
    watching: BTreeSet<String>,
    next_id: u64,
    pending: HashMap<String, Pending>,
    /// Sends and history pulls refused for now come back here when their wait is over.
    retry_tx: mpsc::UnboundedSender<Retry>,
}

/// Something refused for now, to do again once its wait is over.
pub(super) enum Retry {
    /// The unacknowledged send with this outbox key.
    Send(u64),
    /// The history pull that fills this conversation's gap.
    Fill(String),
}

impl Driver {
    pub(super) fn new(
        url: &str,
        token: &str,
        device_id: &str,
        platform: Platform,
        options: ClientOptions,
        events: mpsc::UnboundedSender<Event>,
        retry_tx: mpsc::UnboundedSender<Retry>,
    ) -> Self {
        Self {
            url: url.to_owned(),
            token: token.to_owned(),
            device_id: device_id.to_owned(),
            platform,
            options,
            events,
            timelines: HashMap::new(),
            version: 0,
            sync_since: 0,
            listed_all: false,
            outbox: BTreeMap::new(),
            next_outbox: 0,
            rooms: BTreeSet::new(),
            watching: BTreeSet::new(),
            next_id: 0,
            pending: HashMap::new(),
            retry_tx,
        }
    }
    fn emit(&self, ev: Event) {
        let _ = self.events.send(ev);
    }

    fn next_id(&mut self) -> String {
        self.next_id += 1;
        format!("r{}", self.next_id)
    }

    pub(super) async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<Cmd>,
        mut retries: mpsc::UnboundedReceiver<Retry>,
        first: oneshot::Sender<Result<(), ClientError>>,
    ) {
        let mut first = Some(first);
        let mut attempt: u32 = 0;
        loop {
            self.emit(Event::Connection(ConnectionState::Connecting));
            match self.open().await {
                Ok((ws, ok)) => {
                    attempt = 0;
                    if let Some(f) = first.take() {
                        let _ = f.send(Ok(()));
                    }
                    self.emit(Event::Connection(ConnectionState::Connected));
                    let end = self.connected(ws, ok, &mut cmds, &mut retries).await;
                    self.disconnected();
                    match end {
                        End::Retry(reason) => {
                            self.emit(Event::Connection(ConnectionState::Disconnected { reason }));
                        }
                        End::Stop { code, reason } => {
                            self.emit(Event::Connection(ConnectionState::Closed { code, reason }));
                            break;
                        }
                    }
                }
                Err(OpenError::Refused { code, message }) => {
                    match first.take() {
                        Some(f) => {
                            let _ = f.send(Err(ClientError::Server { code, message }));
                        }
                        None => self.emit(Event::Connection(ConnectionState::Closed { code, reason: message })),
                    }
                    break;
                }
                Err(OpenError::Network(e)) => {
                    if let Some(f) = first.take() {
                        let _ = f.send(Err(ClientError::Connect(e)));
                        return;
                    }
                    self.emit(Event::Connection(ConnectionState::Disconnected { reason: e }));
                }
            }
            attempt = attempt.saturating_add(1);
            let sleep = tokio::time::sleep(self.backoff(attempt));
            tokio::pin!(sleep);
            let stop = loop {
                tokio::select! {
                    _ = &mut sleep => break false,
                    c = cmds.recv() => match c {
                        None | Some(Cmd::Close) => break true,
                        Some(Cmd::Reconnect) => break false,
                        Some(c) => self.offline(c),
                    },
                }
            };
            if stop {
                self.emit(Event::Connection(ConnectionState::Closed {
                    code: "closed".into(),
                    reason: "closed by the app".into(),
                }));
                break;
            }
        }
        for (_, o) in std::mem::take(&mut self.outbox) {
            if let Some(r) = o.reply {
                let _ = r.send(Err(ClientError::Closed));
            }
        }
    }

    /// Exponential backoff with jitter: a random delay in [d/2, d], d doubling per attempt.
    fn backoff(&self, attempt: u32) -> Duration {
        let min = self.options.min_backoff.as_millis() as u64;
        let max = self.options.max_backoff.as_millis().max(1) as u64;
        let d = min
            .saturating_mul(1u64 << attempt.min(20).saturating_sub(1))
            .clamp(1, max);
        Duration::from_millis(rand::thread_rng().gen_range(d / 2..=d))
    }

    /// A command while there is no connection: sends wait in the outbox, the rest fail.
    fn offline(&mut self, c: Cmd) {
        match c {
            Cmd::Send { send, reply } => {
                self.next_outbox += 1;
                self.outbox.insert(
                    self.next_outbox,
                    Outgoing {
                        send,
                        reply: Some(reply),
                    },
                );
            }
            Cmd::Request { reply, .. } => {
                let _ = reply.send(Err(ClientError::NotConnected));
            }
            Cmd::Remember(r) => self.remember(r),
            Cmd::SetToken(t) => self.token = t,
            Cmd::Reconnect | Cmd::Close => {}
        }
    }

    fn remember(&mut self, r: Remember) {
        match r {
            Remember::Room(room, true) => {
                self.rooms.insert(room);
            }
            Remember::Room(room, false) => {
                self.rooms.remove(&room);
            }
            Remember::Watch(users, on) => {
                for u in users {
                    if on {
                        self.watching.insert(u);
                    } else {
                        self.watching.remove(&u);
                    }
                }
            }
        }
    }

    /// Forgets everything in flight on the connection that just ended.
    fn disconnected(&mut self) {
        for (_, p) in self.pending.drain() {
            match p {
                Pending::User(reply) => {
                    let _ = reply.send(Err(ClientError::NotConnected));
                }
                Pending::Fill(conv, _) => {
                    if let Some(t) = self.timelines.get_mut(&conv) {
                        t.filling = false;
                    }
                }
                Pending::Send(_)
                | Pending::Sync
                | Pending::Changes(_)
                | Pending::Join
                | Pending::Presence
                | Pending::Ping => {}
            }
        }
    }

    async fn open(&mut self) -> Result<(Link, pb::AuthOk), OpenError> {
        let net = |e: String| OpenError::Network(e);
        let timeout = self.options.request_timeout;
        let mut ws = Link::open(&self.url, &self.options).await.map_err(|e| match e {
            LinkError::Refused { code, message } => OpenError::Refused { code, message },
            LinkError::Network(e) => OpenError::Network(e),
        })?;
        let id = self.next_id();
        self.sync_since = self.version;
        let auth = pb::ClientFrame {
            id: id.clone(),
            command: Some(Command::Auth(pb::Auth {
                token: self.token.clone(),
                device_id: self.device_id.clone(),
                platform: self.platform.to_proto() as i32,
                sync_version: Some(self.version),
            })),
        };
        if !ws.send(&auth).await {
            return Err(net("closed during auth".into()));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let m = tokio::time::timeout_at(deadline, ws.next())
                .await
                .map_err(|_| net("no answer to auth".into()))?;
            let f = match m {
                Read::Frame(f) => f,
                Read::Skip => continue,
                Read::Lost(e) => return Err(net(format!("closed during auth: {e}"))),
            };
            match f.body {
                Some(Body::AuthOk(ok)) => return Ok((ws, ok)),
                Some(Body::Error(e)) if e.code == "unavailable" => return Err(net(e.message)),
                Some(Body::Error(e)) => {
                    return Err(OpenError::Refused {
                        code: e.code,
                        message: e.message,
                    })
                }
                Some(Body::Kicked(k)) if k.code == "going_away" => return Err(net(k.reason)),
                Some(Body::Kicked(k)) => {
                    return Err(OpenError::Refused {
                        code: k.code,
                        message: k.reason,
                    })
                }
                _ => continue,
            }
        }
    }

    async fn write(&mut self, ws: &mut Link, command: Command, pending: Pending) -> bool {
        let id = self.next_id();
        let f = pb::ClientFrame {
            id: id.clone(),
            command: Some(command),
        };
        self.pending.insert(id, pending);
        ws.send(&f).await
    }

    async fn connected(
        &mut self,
        mut ws: Link,
        ok: pb::AuthOk,
        cmds: &mut mpsc::UnboundedReceiver<Cmd>,
        retries: &mut mpsc::UnboundedReceiver<Retry>,
    ) -> End {
        let lost = |what: &str| End::Retry(format!("connection lost: {what}"));
        // Restore what the app set up, then catch up, then resend what is unacknowledged.
        for room in self.rooms.clone() {
            if !self
                .write(
                    &mut ws,
                    Command::JoinRoom(pb::JoinRoom { room_id: room }),
                    Pending::Join,
                )
                .await
            {
                return lost("write failed");
            }
        }
        if !self.watching.is_empty() {
            let user_ids = self.watching.iter().cloned().collect();
            if !self
                .write(
                    &mut ws,
                    Command::SubscribePresence(pb::SubscribePresence { user_ids }),
                    Pending::Presence,
                )
                .await
            {
                return lost("write failed");
            }
        }
        if let Some(sync) = ok.sync {
            if !self.on_sync(&mut ws, sync).await {
                return lost("write failed");
            }
        }
        if !self.resume_pulls(&mut ws).await {
            return lost("write failed");
        }
        let keys: Vec<u64> = self.outbox.keys().copied().collect();
        for k in keys {
            if !self.write_send(&mut ws, k).await {
                return lost("write failed");
            }
        }

        let hb = Duration::from_millis(u64::try_from(ok.heartbeat_interval_ms).unwrap_or(30_000).max(100));
        let mut ping = tokio::time::interval_at(Instant::now() + hb, hb);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                m = ws.next() => {
                    last_heard = Instant::now();
                    let f = match m {
                        Read::Frame(f) => f,
                        Read::Skip => continue,
                        Read::Lost(e) => return lost(&e),
                    };
                    if let Some(end) = self.on_frame(&mut ws, f).await {
                        return end;
                    }
                }
                c = cmds.recv() => match c {
                    None | Some(Cmd::Close) => {
                        ws.close().await;
                        return End::Stop { code: "closed".into(), reason: "closed by the app".into() };
                    }
                    Some(Cmd::Reconnect) => {
                        ws.close().await;
                        return End::Retry("reconnect requested".into());
                    }
                    Some(Cmd::Remember(r)) => self.remember(r),
                    Some(Cmd::SetToken(t)) => self.token = t,
                    Some(Cmd::Send { send, reply }) => {
                        self.next_outbox += 1;
                        let k = self.next_outbox;
                        self.outbox.insert(k, Outgoing { send, reply: Some(reply) });
                        if !self.write_send(&mut ws, k).await {
                            return lost("write failed");
                        }
                    }
                    Some(Cmd::Request { command, reply }) => {
                        if !self.write(&mut ws, command, Pending::User(reply)).await {
                            return lost("write failed");
                        }
                    }
                },
                Some(r) = retries.recv() => match r {
                    Retry::Send(k) => {
                        if self.outbox.contains_key(&k) && !self.write_send(&mut ws, k).await {
                            return lost("write failed");
                        }
                    }
                    Retry::Fill(conv) => {
                        if let Some(t) = self.timelines.get_mut(&conv) {
                            t.filling = false;
                        }
                        if !self.fill(&mut ws, &conv).await {
                            return lost("write failed");
                        }
                    }
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() > hb * 3 {
                        return lost("no heartbeat from the server");
                    }
                    if !self.write(&mut ws, Command::Ping(pb::Ping { nonce: 0 }), Pending::Ping).await {
                        return lost("write failed");
                    }
                }
            }
        }
    }

    async fn write_send(&mut self, ws: &mut Link, key: u64) -> bool {
        let Some(o) = self.outbox.get(&key) else {
            return true;
        };
        let send = o.send.clone();
        self.write(ws, Command::Send(send), Pending::Send(key)).await
    }
}
