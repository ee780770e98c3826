//! The real-time `Client`: one connection (a WebSocket speaking `tern.v1.proto`, binary
//! protobuf, or the gRPC stream `tern.client.v1.Gateway/Connect` of the same frames:
//! `ClientOptions::transport`) kept alive by a
//! background task (the driver) that reconnects with exponential backoff and jitter,
//! re-authenticates, re-joins rooms and presence subscriptions, syncs the conversation
//! list and pulls whatever it missed, and retries unacknowledged sends with the same
//! `client_msg_id` (the server answers a retry with the first answer, so nothing is sent
//! twice). The app reads one ordered stream of `Event`s.

mod driver;

use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, oneshot};

use crate::content::json_to_struct;
use crate::proto as pb;

// The app-facing types, also reachable as `tern_sdk::client::*`.
pub use crate::types::{
    ChangeKind, ClientError, ConnectionState, Conversation, Event, Message, MessageChange, Platform, PresenceInfo,
    SendAck, SendOptions, Target,
};

use pb::client_frame::Command;
use pb::server_frame::Body;

use driver::Driver;

/// The subprotocol this client speaks.
pub const SUBPROTOCOL: &str = "tern.v1.proto";

/// Which door the client connects through. Both carry the same frames to the same kind
/// of session; only the URL differs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// The WebSocket: `ws://host:8080/v1/connect` or `wss://…`.
    #[default]
    Ws,
    /// gRPC (HTTP/2): the node's gRPC port, `http://host:9090` or `https://…`.
    Grpc,
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The WebSocket (default) or gRPC; the URL given to `connect` must match.
    pub transport: Transport,
    /// First reconnect delay; doubles per failed attempt up to `max_backoff`, with jitter.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a command (and the connect and auth handshake) may take.
    pub request_timeout: Duration,
    /// gRPC only: compress frames with zstd both ways (the server accepts and offers gzip
    /// and zstd). Off by default: most chat frames are a few hundred bytes, where
    /// compression costs more time than it saves bytes.
    pub grpc_zstd: bool,
    /// For `wss://` and `https://` URLs: trust only the certificate authorities in this PEM (a private CA
    /// or a self-signed server certificate) instead of the public web roots.
    pub tls_ca_pem: Option<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            transport: Transport::Ws,
            grpc_zstd: false,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(15),
            tls_ca_pem: None,
        }
    }
}

/// A rustls client configuration trusting only the CA certificates in `pem`.
pub(crate) fn tls_config_for_ca(pem: &[u8]) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("the CA PEM cannot be read: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("the CA PEM holds an unusable certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the CA PEM holds no certificate".into());
    }
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
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
        let driver = Driver::new(url, token, device_id, platform, options, ev_tx, retry_tx);
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
