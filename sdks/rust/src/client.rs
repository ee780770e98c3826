//! The real-time `Client`: one WebSocket (`tern.v1.proto`, binary protobuf) kept alive by a
//! background task (the driver) that reconnects with exponential backoff and jitter,
//! re-authenticates, re-joins rooms and presence subscriptions, syncs the conversation
//! list and pulls whatever it missed, and retries unacknowledged sends with the same
//! `client_msg_id` (the server answers a retry with the first answer, so nothing is sent
//! twice). The app reads one ordered stream of `Event`s.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use prost::Message as _;
use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::content::json_to_struct;
use crate::proto as pb;
use crate::timeline::Timeline;

// The app-facing types, also reachable as `tern_sdk::client::*`.
pub use crate::types::{
    ChangeKind, ClientError, ConnectionState, Conversation, Event, Message, MessageChange, Platform, PresenceInfo,
    SendAck, SendOptions, Target,
};

use pb::client_frame::Command;
use pb::server_frame::Body;

/// The subprotocol this client speaks.
pub const SUBPROTOCOL: &str = "tern.v1.proto";

/// Page size of the history pulls that fill gaps.
const FILL_PAGE: u32 = 100;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// First reconnect delay; doubles per failed attempt up to `max_backoff`, with jitter.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a command (and the connect and auth handshake) may take.
    pub request_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(15),
        }
    }
}

enum Cmd {
    Send {
        send: pb::Send,
        reply: oneshot::Sender<Result<SendAck, ClientError>>,
    },
    Request {
        command: Command,
        reply: oneshot::Sender<Result<Body, ClientError>>,
    },
    Remember(Remember),
    SetToken(String),
    Reconnect,
    Close,
}

/// State the driver restores after every reconnect.
enum Remember {
    Room(String, bool),
    Watch(Vec<String>, bool),
}

/// A handle to the connection; cheap to clone. Dropping every handle closes the connection.
#[derive(Clone)]
pub struct Client {
    cmd: mpsc::UnboundedSender<Cmd>,
    request_timeout: Duration,
}

/// The one stream of everything that happens.
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    /// The next event; `None` once the client is closed and every event has been read.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl Client {
    /// Connects and authenticates. Fails if the first attempt does; after that the client
    /// keeps itself connected until `close`, a kick or a refused token.
    pub async fn connect(
        url: &str,
        token: &str,
        device_id: &str,
        platform: Platform,
    ) -> Result<(Client, Events), ClientError> {
        Self::connect_with(url, token, device_id, platform, ClientOptions::default()).await
    }

    pub async fn connect_with(
        url: &str,
        token: &str,
        device_id: &str,
        platform: Platform,
        options: ClientOptions,
    ) -> Result<(Client, Events), ClientError> {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (first_tx, first_rx) = oneshot::channel();
        let (retry_tx, retry_rx) = mpsc::unbounded_channel();
        let request_timeout = options.request_timeout;
        let driver = Driver {
            url: url.to_owned(),
            token: token.to_owned(),
            device_id: device_id.to_owned(),
            platform,
            options,
            events: ev_tx,
            timelines: HashMap::new(),
            version: 0,
            sync_since: 0,
            outbox: BTreeMap::new(),
            next_outbox: 0,
            rooms: BTreeSet::new(),
            watching: BTreeSet::new(),
            next_id: 0,
            pending: HashMap::new(),
            retry_tx,
        };
        tokio::spawn(driver.run(cmd_rx, retry_rx, first_tx));
        first_rx.await.map_err(|_| ClientError::Closed)??;
        Ok((
            Client {
                cmd: cmd_tx,
                request_timeout,
            },
            Events { rx: ev_rx },
        ))
    }

    /// Sends a message and waits until the server has stored it. Survives reconnects: the
    /// send is retried with the same `client_msg_id` until it is acknowledged or refused.
    pub async fn send(&self, to: Target, msg_type: &str, content: serde_json::Value) -> Result<SendAck, ClientError> {
        let client_msg_id = new_client_msg_id();
        self.send_with_id(to, msg_type, content, &client_msg_id).await
    }

    /// `send` with the app's own idempotency key (for an app that persists its outbox).
    pub async fn send_with_id(
        &self,
        to: Target,
        msg_type: &str,
        content: serde_json::Value,
        client_msg_id: &str,
    ) -> Result<SendAck, ClientError> {
        self.send_with_options(to, msg_type, content, client_msg_id, &SendOptions::default())
            .await
    }

    /// `send_with_id` with mentions (group messages).
    pub async fn send_with_options(
        &self,
        to: Target,
        msg_type: &str,
        content: serde_json::Value,
        client_msg_id: &str,
        options: &SendOptions,
    ) -> Result<SendAck, ClientError> {
        let mut send = Self::send_frame(to, msg_type, content, client_msg_id)?;
        send.mentions = options.mentions.clone();
        send.mention_all = options.mention_all;
        self.send_prepared(send).await
    }

    /// The `send` frame of a message, before anything else (mentions, a reply, ...) is added.
    pub(crate) fn send_frame(
        to: Target,
        msg_type: &str,
        content: serde_json::Value,
        client_msg_id: &str,
    ) -> Result<pb::Send, ClientError> {
        let content = json_to_struct(&content)
            .ok_or_else(|| ClientError::InvalidArgument("content must be a JSON object".into()))?;
        let to = match to {
            Target::User(u) => pb::send::To::User(u),
            Target::Group(g) => pb::send::To::Group(g),
            Target::Room(r) => pb::send::To::Room(r),
        };
        Ok(pb::Send {
            client_msg_id: client_msg_id.to_owned(),
            to: Some(to),
            r#type: msg_type.to_owned(),
            content: Some(content),
            ..Default::default()
        })
    }

    /// Queues a send in the outbox (retried until acknowledged or refused) and waits.
    pub(crate) async fn send_prepared(&self, send: pb::Send) -> Result<SendAck, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Send { send, reply })
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// A page of history, oldest first: messages after `after_seq`.
    pub async fn history(
        &self,
        conversation_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Message>, ClientError> {
        self.history_page(conversation_id, after_seq, 0, limit).await
    }

    /// The `limit` messages just before `before_seq`, oldest first.
    pub async fn history_before(
        &self,
        conversation_id: &str,
        before_seq: i64,
        limit: u32,
    ) -> Result<Vec<Message>, ClientError> {
        self.history_page(conversation_id, 0, before_seq.max(1), limit).await
    }

    async fn history_page(
        &self,
        conversation_id: &str,
        after_seq: i64,
        before_seq: i64,
        limit: u32,
    ) -> Result<Vec<Message>, ClientError> {
        let body = self
            .request(Command::History(pb::History {
                conversation_id: conversation_id.to_owned(),
                after_seq,
                before_seq,
                limit,
            }))
            .await?;
        match body {
            Body::HistoryResult(h) => Ok(h.messages.iter().map(Message::from).collect()),
            _ => Err(unexpected()),
        }
    }

    /// Marks a conversation read up to `seq`; the other side gets a receipt.
    pub async fn read(&self, conversation_id: &str, seq: i64) -> Result<Conversation, ClientError> {
        match self
            .request(Command::Read(pb::Read {
                conversation_id: conversation_id.to_owned(),
                seq,
            }))
            .await?
        {
            Body::Conversation(c) => Ok(Conversation::from(&c)),
            _ => Err(unexpected()),
        }
    }

    pub async fn recall(&self, msg_id: &str) -> Result<(), ClientError> {
        self.request(Command::Recall(pb::Recall {
            msg_id: msg_id.to_owned(),
        }))
        .await
        .map(|_| ())
    }

    pub async fn typing(&self, conversation_id: &str) -> Result<(), ClientError> {
        self.request(Command::Typing(pb::Typing {
            conversation_id: conversation_id.to_owned(),
        }))
        .await
        .map(|_| ())
    }

    /// Watches these users' presence (kept across reconnects); returns their state now.
    pub async fn subscribe_presence(&self, user_ids: &[&str]) -> Result<Vec<PresenceInfo>, ClientError> {
        let ids: Vec<String> = user_ids.iter().map(|s| (*s).to_owned()).collect();
        let body = self
            .request(Command::SubscribePresence(pb::SubscribePresence {
                user_ids: ids.clone(),
            }))
            .await?;
        let _ = self.cmd.send(Cmd::Remember(Remember::Watch(ids, true)));
        match body {
            Body::PresenceResult(p) => Ok(p.users.iter().map(PresenceInfo::from).collect()),
            _ => Err(unexpected()),
        }
    }

    pub async fn unsubscribe_presence(&self, user_ids: &[&str]) -> Result<(), ClientError> {
        let ids: Vec<String> = user_ids.iter().map(|s| (*s).to_owned()).collect();
        let _ = self.cmd.send(Cmd::Remember(Remember::Watch(ids.clone(), false)));
        self.request(Command::UnsubscribePresence(pb::UnsubscribePresence { user_ids: ids }))
            .await
            .map(|_| ())
    }

    /// Joins a room (re-joined after every reconnect). Its recent messages and everything
    /// after arrive as `Event::Message`. Returns how many are in the room.
    pub async fn join_room(&self, room_id: &str) -> Result<i64, ClientError> {
        let body = self
            .request(Command::JoinRoom(pb::JoinRoom {
                room_id: room_id.to_owned(),
            }))
            .await?;
        let _ = self.cmd.send(Cmd::Remember(Remember::Room(room_id.to_owned(), true)));
        match body {
            Body::RoomJoined(r) => Ok(r.member_count),
            _ => Err(unexpected()),
        }
    }

    pub async fn leave_room(&self, room_id: &str) -> Result<(), ClientError> {
        let _ = self.cmd.send(Cmd::Remember(Remember::Room(room_id.to_owned(), false)));
        self.request(Command::LeaveRoom(pb::LeaveRoom {
            room_id: room_id.to_owned(),
        }))
        .await
        .map(|_| ())
    }

    /// Replaces the token used on the next (re)connect: call it before the current one
    /// expires, or a reconnect after expiry ends with `Closed { code: "token_expired" }`.
    pub fn set_token(&self, token: &str) {
        let _ = self.cmd.send(Cmd::SetToken(token.to_owned()));
    }

    /// Drops the current connection and reconnects at once (say, on a network change).
    pub fn reconnect_now(&self) {
        let _ = self.cmd.send(Cmd::Reconnect);
    }

    /// Closes the connection for good; unacknowledged sends fail with `Closed`.
    pub fn close(&self) {
        let _ = self.cmd.send(Cmd::Close);
    }

    pub(crate) async fn request(&self, command: Command) -> Result<Body, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Request { command, reply })
            .map_err(|_| ClientError::Closed)?;
        match tokio::time::timeout(self.request_timeout, rx).await {
            Err(_) => Err(ClientError::Timeout),
            Ok(Err(_)) => Err(ClientError::Closed),
            Ok(Ok(r)) => r,
        }
    }
}

pub(crate) fn unexpected() -> ClientError {
    ClientError::Server {
        code: "unexpected_answer".into(),
        message: "the server answered with an unexpected frame".into(),
    }
}

pub(crate) fn new_client_msg_id() -> String {
    let mut rng = rand::thread_rng();
    format!("c-{:016x}{:016x}", rng.gen::<u64>(), rng.gen::<u64>())
}

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

struct Driver {
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
    /// Unacknowledged sends, in the order the app made them.
    outbox: BTreeMap<u64, Outgoing>,
    next_outbox: u64,
    rooms: BTreeSet<String>,
    watching: BTreeSet<String>,
    next_id: u64,
    pending: HashMap<String, Pending>,
    /// Sends refused with `rate_limited` come back here when their wait is over.
    retry_tx: mpsc::UnboundedSender<u64>,
}

impl Driver {
    fn emit(&self, ev: Event) {
        let _ = self.events.send(ev);
    }

    fn next_id(&mut self) -> String {
        self.next_id += 1;
        format!("r{}", self.next_id)
    }

    async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<Cmd>,
        mut retries: mpsc::UnboundedReceiver<u64>,
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

    async fn open(&mut self) -> Result<(Ws, pb::AuthOk), OpenError> {
        let net = |e: String| OpenError::Network(e);
        let mut req = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| OpenError::Refused {
                code: "invalid_url".into(),
                message: e.to_string(),
            })?;
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
        let timeout = self.options.request_timeout;
        let (mut ws, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(req))
            .await
            .map_err(|_| net("connect timed out".into()))?
            .map_err(|e| net(e.to_string()))?;
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
        ws.send(WsMessage::binary(auth.encode_to_vec()))
            .await
            .map_err(|e| net(e.to_string()))?;
        let deadline = Instant::now() + timeout;
        loop {
            let m = tokio::time::timeout_at(deadline, ws.next())
                .await
                .map_err(|_| net("no answer to auth".into()))?;
            let data = match m {
                None => return Err(net("closed during auth".into())),
                Some(Err(e)) => return Err(net(e.to_string())),
                Some(Ok(WsMessage::Binary(b))) => b,
                Some(Ok(WsMessage::Close(_))) => return Err(net("closed during auth".into())),
                Some(Ok(_)) => continue,
            };
            let f = pb::ServerFrame::decode(data.as_ref()).map_err(|e| net(e.to_string()))?;
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

    async fn write(&mut self, ws: &mut Ws, command: Command, pending: Pending) -> bool {
        let id = self.next_id();
        let f = pb::ClientFrame {
            id: id.clone(),
            command: Some(command),
        };
        self.pending.insert(id, pending);
        ws.send(WsMessage::binary(f.encode_to_vec())).await.is_ok()
    }

    async fn connected(
        &mut self,
        mut ws: Ws,
        ok: pb::AuthOk,
        cmds: &mut mpsc::UnboundedReceiver<Cmd>,
        retries: &mut mpsc::UnboundedReceiver<u64>,
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
                    let data = match m {
                        None => return lost("closed"),
                        Some(Err(e)) => return lost(&e.to_string()),
                        Some(Ok(WsMessage::Binary(b))) => b,
                        Some(Ok(WsMessage::Close(c))) => {
                            return lost(&c.map_or_else(|| "closed".to_owned(), |c| c.reason.to_string()))
                        }
                        Some(Ok(_)) => continue,
                    };
                    let Ok(f) = pb::ServerFrame::decode(data.as_ref()) else {
                        return lost("undecodable frame");
                    };
                    if let Some(end) = self.on_frame(&mut ws, f).await {
                        return end;
                    }
                }
                c = cmds.recv() => match c {
                    None | Some(Cmd::Close) => {
                        let _ = ws.close(None).await;
                        return End::Stop { code: "closed".into(), reason: "closed by the app".into() };
                    }
                    Some(Cmd::Reconnect) => {
                        let _ = ws.close(None).await;
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
                Some(k) = retries.recv() => {
                    if self.outbox.contains_key(&k) && !self.write_send(&mut ws, k).await {
                        return lost("write failed");
                    }
                }
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

    async fn write_send(&mut self, ws: &mut Ws, key: u64) -> bool {
        let Some(o) = self.outbox.get(&key) else {
            return true;
        };
        let send = o.send.clone();
        self.write(ws, Command::Send(send), Pending::Send(key)).await
    }

    /// Handles one frame; `Some` ends the connection.
    async fn on_frame(&mut self, ws: &mut Ws, f: pb::ServerFrame) -> Option<End> {
        let body = f.body?;
        if !f.id.is_empty() {
            let pending = self.pending.remove(&f.id)?;
            return self.on_answer(ws, pending, body).await;
        }
        match body {
            Body::Message(m) => {
                let m = Message::from(&m);
                let conv = m.conversation_id.clone();
                let out = self.timelines.entry(conv.clone()).or_default().offer(m);
                self.deliver(out);
                if !self.fill(ws, &conv).await {
                    return Some(End::Retry("write failed".into()));
                }
            }
            Body::Recall(r) => self.on_change(MessageChange::from(&r)),
            Body::Change(c) => self.on_change(MessageChange::from(&c)),
            Body::Receipt(r) => self.emit(Event::Receipt {
                conversation_id: r.conversation_id,
                user_id: r.user_id,
                read_seq: r.read_seq,
            }),
            Body::Typing(t) => self.emit(Event::Typing {
                conversation_id: t.conversation_id,
                user_id: t.user_id,
            }),
            Body::Presence(p) => self.emit(Event::Presence(PresenceInfo::from(&p))),
            Body::Notification(n) if !n.conversation_id.is_empty() && n.seq > 0 => {
                // A kept notification: through its conversation's timeline, like a message,
                // so a pull of the same conversation does not show it again.
                let m = Message {
                    msg_id: n.notification_id,
                    conversation_id: n.conversation_id,
                    seq: n.seq,
                    sender: None,
                    client_msg_id: String::new(),
                    msg_type: n.r#type,
                    content: n
                        .content
                        .as_ref()
                        .map_or(serde_json::Value::Null, crate::content::struct_to_json),
                    created_at: n.created_at,
                    recalled: false,
                    edited_at: None,
                    reply_to: None,
                    quoted: None,
                    version: 0,
                    extensions: Vec::new(),
                    reactions: Vec::new(),
                    mentions: Vec::new(),
                    mention_all: false,
                };
                let conv = m.conversation_id.clone();
                let out = self.timelines.entry(conv.clone()).or_default().offer(m);
                self.deliver(out);
                if !self.fill(ws, &conv).await {
                    return Some(End::Retry("write failed".into()));
                }
            }
            Body::Notification(n) => self.emit(Event::Notification {
                id: n.notification_id,
                content: n
                    .content
                    .as_ref()
                    .map_or(serde_json::Value::Null, crate::content::struct_to_json),
                created_at: n.created_at,
                conversation_id: None,
                seq: None,
                msg_type: None,
            }),
            Body::RoomLeft(r) => {
                self.rooms.remove(&r.room_id);
                if r.reason == "dismissed" {
                    // A room made again under this id starts its seqs over.
                    self.timelines.remove(&format!("r:{}", r.room_id));
                }
                self.emit(Event::RoomLeft {
                    room_id: r.room_id,
                    reason: r.reason,
                });
            }
            Body::Kicked(k) => {
                self.emit(Event::Kicked {
                    code: k.code.clone(),
                    reason: k.reason.clone(),
                });
                return Some(if k.code == "going_away" {
                    End::Retry(k.reason)
                } else {
                    End::Stop {
                        code: k.code,
                        reason: k.reason,
                    }
                });
            }
            // An error push precedes a close (slow consumer, heartbeat, ...): reconnect.
            Body::Error(e) => return Some(End::Retry(format!("{}: {}", e.code, e.message))),
            _ => {}
        }
        None
    }

    async fn on_answer(&mut self, ws: &mut Ws, pending: Pending, body: Body) -> Option<End> {
        match pending {
            Pending::User(reply) => {
                if let Body::RoomJoined(r) = &body {
                    if !self.on_room_joined(ws, r).await {
                        return Some(End::Retry("write failed".into()));
                    }
                }
                let r = match body {
                    Body::Error(e) => Err(ClientError::Server {
                        code: e.code,
                        message: e.message,
                    }),
                    b => Ok(b),
                };
                let _ = reply.send(r);
            }
            Pending::Send(key) => match body {
                Body::SendAck(a) => {
                    if let Some(o) = self.outbox.remove(&key) {
                        if let Some(r) = o.reply {
                            let _ = r.send(Ok(SendAck {
                                msg_id: a.msg_id,
                                conversation_id: a.conversation_id,
                                seq: a.seq,
                                created_at: a.created_at,
                                client_msg_id: a.client_msg_id,
                            }));
                        }
                    }
                }
                Body::Error(e) if e.code == "rate_limited" || e.code == "unavailable" => {
                    let wait = Duration::from_millis(u64::try_from(e.retry_after_ms).unwrap_or(0).max(50));
                    let tx = self.retry_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        let _ = tx.send(key);
                    });
                }
                Body::Error(e) => {
                    if let Some(o) = self.outbox.remove(&key) {
                        if let Some(r) = o.reply {
                            let _ = r.send(Err(ClientError::Server {
                                code: e.code,
                                message: e.message,
                            }));
                        }
                    }
                }
                _ => {}
            },
            Pending::Sync => {
                if let Body::SyncResult(s) = body {
                    if !self.on_sync(ws, s).await {
                        return Some(End::Retry("write failed".into()));
                    }
                }
            }
            Pending::Fill(conv, after) => {
                let out = match (body, self.timelines.get_mut(&conv)) {
                    (Body::HistoryResult(h), Some(t)) => {
                        t.filling = false;
                        t.offer_page(after, h.messages.iter().map(Message::from).collect())
                    }
                    (_, Some(t)) => {
                        t.filling = false;
                        Vec::new()
                    }
                    _ => Vec::new(),
                };
                self.deliver(out);
                if !self.fill(ws, &conv).await {
                    return Some(End::Retry("write failed".into()));
                }
            }
            Pending::Join => {
                if let Body::RoomJoined(r) = &body {
                    if !self.on_room_joined(ws, r).await {
                        return Some(End::Retry("write failed".into()));
                    }
                }
            }
            Pending::Changes(conv) => {
                // A refused pull is retried from the same version on the next reconnect.
                if let Body::ChangesResult(r) = body {
                    let t = self.timelines.entry(conv.clone()).or_default();
                    let mut out = Vec::new();
                    for c in &r.changes {
                        out.extend(t.change(MessageChange::from(c)));
                    }
                    t.pulled_through(r.version);
                    self.deliver(out);
                    if r.has_more && !self.pull_changes(ws, &conv, r.version).await {
                        return Some(End::Retry("write failed".into()));
                    }
                }
            }
            Pending::Ping => {}
            Pending::Presence => {
                if let Body::PresenceResult(p) = body {
                    for u in &p.users {
                        self.emit(Event::Presence(PresenceInfo::from(u)));
                    }
                }
            }
        }
        None
    }

    /// A room's recent messages go through the room's timeline like any others. A room
    /// shows what was said while this client was in it, and the backlog of a join: on a
    /// re-join (after a reconnect) messages between what was shown and the backlog are
    /// skipped, not pulled, and seqs that restarted (the room was made again) start over.
    async fn on_room_joined(&mut self, ws: &mut Ws, r: &pb::RoomJoined) -> bool {
        let conv = r.conversation_id.clone();
        let start = r.recent.first().map_or(r.last_seq, |m| m.seq - 1);
        let t = self.timelines.entry(conv.clone()).or_default();
        t.joined_at(start, r.last_seq);
        let mut out = Vec::new();
        for m in &r.recent {
            out.extend(t.offer(Message::from(m)));
        }
        self.deliver(out);
        self.fill(ws, &conv).await
    }

    /// Takes in a page of the conversation list: notes how far each conversation reaches,
    /// pulls what is missing, and asks for the next page if there is one.
    async fn on_sync(&mut self, ws: &mut Ws, s: pb::SyncResult) -> bool {
        let mut convs = Vec::new();
        let mut changed = Vec::new();
        for c in &s.conversations {
            let t = self.timelines.entry(c.conversation_id.clone()).or_default();
            // A conversation this client has followed before may have changed messages: pull
            // its changes since the last sync (before filling, so they apply to what the
            // app has, and the fill brings newer messages as they are now). Whatever this
            // client follows was in its last sync or came after it, so nothing before
            // `sync_since` concerns it.
            if t.started() {
                changed.push((c.conversation_id.clone(), self.sync_since.max(t.watermark)));
            }
            // A conversation this client has never seen starts after what the user read.
            t.baseline(c.read_seq);
            t.known_up_to(c.last_seq);
            convs.push(c.conversation_id.clone());
        }
        self.version = self.version.max(s.version);
        for (conv, since) in changed {
            if !self.pull_changes(ws, &conv, since).await {
                return false;
            }
        }
        for conv in convs {
            if !self.fill(ws, &conv).await {
                return false;
            }
        }
        if s.has_more {
            let since = self.version;
            return self
                .write(
                    ws,
                    Command::Sync(pb::Sync {
                        since_version: since,
                        limit: 0,
                    }),
                    Pending::Sync,
                )
                .await;
        }
        true
    }

    /// Starts a history pull for `conv` if it has a gap and none is in flight.
    async fn fill(&mut self, ws: &mut Ws, conv: &str) -> bool {
        let Some(t) = self.timelines.get_mut(conv) else {
            return true;
        };
        let Some(after) = t.gap_after() else {
            return true;
        };
        t.filling = true;
        let cmd = Command::History(pb::History {
            conversation_id: conv.to_owned(),
            after_seq: after,
            before_seq: 0,
            limit: FILL_PAGE,
        });
        self.write(ws, cmd, Pending::Fill(conv.to_owned(), after)).await
    }

    /// Asks for a conversation's message changes after `since`.
    async fn pull_changes(&mut self, ws: &mut Ws, conv: &str, since: i64) -> bool {
        let cmd = Command::GetChanges(pb::GetChanges {
            conversation_id: conv.to_owned(),
            since_version: since,
            limit: 100,
        });
        self.write(ws, cmd, Pending::Changes(conv.to_owned())).await
    }

    /// A change pushed live goes through its conversation's timeline.
    fn on_change(&mut self, c: MessageChange) {
        let out = self.timelines.entry(c.conversation_id.clone()).or_default().change(c);
        self.deliver(out);
    }

    /// Hands events to the app; messages of the user's system conversation (`s:<user>`) are
    /// their notifications.
    fn deliver(&self, events: Vec<Event>) {
        for e in events {
            match e {
                Event::Message(m) if m.conversation_id.starts_with("s:") => self.emit(Event::Notification {
                    id: m.msg_id,
                    content: m.content,
                    created_at: m.created_at,
                    conversation_id: Some(m.conversation_id),
                    seq: Some(m.seq),
                    msg_type: Some(m.msg_type),
                }),
                e => self.emit(e),
            }
        }
    }
}
