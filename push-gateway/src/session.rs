//! One WebSocket connection, from upgrade to close, in one task: authentication, the
//! command loop, the outbound queue and the heartbeat.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tern_platform::delivery::{Actor, DeliveryError, Recipient, SendOptions, SendRequest};
use tern_platform::domain::{now_ms, App, MessageType, Sender, Source, User, MAX_MENTIONS};
use tern_platform::ids::{ClientMsgId, ConversationId, GroupId, MsgId, RoomId, UserId};
use tern_platform::proto::v1 as pb;
use tern_platform::store::SeqRange;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::close::{codes, CloseSignal, Closing};
use crate::codec::{self, Encoding, Incoming, Outgoing};
use crate::convert;
use crate::gateway::{DeviceClass, Gateway, SessionHandle};

use pb::client_frame::Command;
use pb::server_frame::Body;

/// How long a closing connection waits for the client's close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Most users one `subscribe_presence` may name.
const MAX_PRESENCE_USERS: usize = 100;

/// What a failed command answers: a stable code and a message for the developer.
struct CommandError {
    code: &'static str,
    message: String,
    retry_after_ms: i64,
}

impl CommandError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: 0,
        }
    }
}

impl From<DeliveryError> for CommandError {
    fn from(e: DeliveryError) -> Self {
        let retry_after_ms = match &e {
            DeliveryError::RateLimited { retry_after_ms } => i64::try_from(*retry_after_ms).unwrap_or(i64::MAX),
            _ => 0,
        };
        if let DeliveryError::Internal(cause) = &e {
            tracing::error!(cause, "internal error in a gateway command");
        }
        Self {
            code: e.code(),
            message: e.to_string(),
            retry_after_ms,
        }
    }
}

impl From<tern_platform::ids::IdError> for CommandError {
    fn from(e: tern_platform::ids::IdError) -> Self {
        Self::new("invalid_argument", e.to_string())
    }
}

impl From<tern_platform::presence::PresenceError> for CommandError {
    fn from(e: tern_platform::presence::PresenceError) -> Self {
        Self::new("unavailable", e.to_string())
    }
}

fn frame(id: String, body: Body) -> pb::ServerFrame {
    pb::ServerFrame { id, body: Some(body) }
}

fn error_frame(id: String, code: &str, message: &str, retry_after_ms: i64) -> pb::ServerFrame {
    frame(
        id,
        Body::Error(pb::Error {
            code: code.to_owned(),
            message: message.to_owned(),
            retry_after_ms,
        }),
    )
}

/// The socket and its encoding, with the writes every phase needs.
struct Conn {
    socket: WebSocket,
    enc: Encoding,
    /// A write that takes longer than this means the peer stopped reading: give up.
    write_timeout: Duration,
    /// Our close frame was sent; `linger` waits for the client's.
    closed: bool,
}

impl Conn {
    async fn send(&mut self, f: &pb::ServerFrame) -> bool {
        let msg = match codec::encode(self.enc, f) {
            Outgoing::Text(t) => WsMessage::Text(t.into()),
            Outgoing::Binary(b) => WsMessage::Binary(b.into()),
        };
        metrics::counter!("tern_gateway_frames_out_total").increment(1);
        matches!(
            tokio::time::timeout(self.write_timeout, self.socket.send(msg)).await,
            Ok(Ok(()))
        )
    }

    /// Sends the frame that explains the close, then the close itself.
    async fn close(&mut self, c: &Closing) {
        let last = if c.kicked {
            frame(
                String::new(),
                Body::Kicked(pb::Kicked {
                    code: c.code.clone(),
                    reason: c.reason.clone(),
                }),
            )
        } else {
            error_frame(String::new(), &c.code, &c.reason, 0)
        };
        if self.send(&last).await {
            let close = WsMessage::Close(Some(CloseFrame {
                code: c.close_code,
                // The close reason is limited to 123 bytes; the code always fits.
                reason: c.code.clone().into(),
            }));
            let _ = tokio::time::timeout(self.write_timeout, self.socket.send(close)).await;
            self.closed = true;
        }
    }

    /// After our close, waits briefly for the client's (the closing handshake), reading
    /// and dropping whatever it still sends: closing a socket with unread input resets the
    /// connection, which can destroy our last frames before the client has read them.
    async fn linger(mut self) {
        if !self.closed {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            loop {
                match self.socket.recv().await {
                    Some(Ok(WsMessage::Close(_))) => break,
                    Some(Ok(_)) => {}
                    // The stream ended on an error (say, the rest of an oversized frame
                    // is still unread): wait out the linger so the client can read our
                    // close before the socket goes.
                    None | Some(Err(_)) => std::future::pending::<()>().await,
                }
            }
        })
        .await;
    }
}

/// Why reading a frame ended the connection.
fn read_error_closing(e: axum::Error) -> Option<Closing> {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => Some(Closing::error(
            codes::TOO_BIG,
            "frame_too_large",
            "frames and messages are limited to 64 KiB",
        )),
        Some(tungstenite::Error::Protocol(p)) => Some(Closing::error(
            codes::BAD_FRAME,
            "bad_frame",
            format!("WebSocket protocol error: {p}"),
        )),
        // The peer went away: nobody to tell.
        _ => None,
    }
}

/// Runs one connection to its end. `permit` is this connection's place under the cap.
pub(crate) async fn run(gw: Arc<Gateway>, socket: WebSocket, enc: Encoding, permit: OwnedSemaphorePermit) {
    metrics::gauge!("tern_gateway_connections").increment(1.0);
    let mut conn = Conn {
        socket,
        enc,
        write_timeout: gw.config.heartbeat_interval.max(Duration::from_secs(10)),
        closed: false,
    };
    if let Some((app, user, auth, first_id)) = authenticate(&gw, &mut conn).await {
        let mut s = Session::open(gw.clone(), app, user, &auth).await;
        s.run(&mut conn, auth, first_id).await;
        s.close().await;
    }
    metrics::gauge!("tern_gateway_connections").decrement(1.0);
    // The session is gone; the socket's last moments do not count against the cap.
    drop(permit);
    conn.linger().await;
}

/// Waits for the first frame, which must be a valid `auth` within the timeout.
async fn authenticate(gw: &Gateway, conn: &mut Conn) -> Option<(App, User, pb::Auth, String)> {
    let deadline = Instant::now() + gw.config.auth_timeout;
    loop {
        let next = tokio::select! {
            _ = gw.shutdown.cancelled() => {
                conn.close(&Closing::kicked(codes::SERVICE_RESTART, "going_away", "the server is restarting; reconnect")).await;
                return None;
            }
            r = tokio::time::timeout_at(deadline, conn.socket.recv()) => r,
        };
        let msg = match next {
            Err(_) => {
                conn.close(&Closing::error(
                    codes::NOT_AUTHENTICATED,
                    "auth_timeout",
                    "the first frame must be auth, within 10 seconds",
                ))
                .await;
                return None;
            }
            Ok(None) => return None,
            Ok(Some(Err(e))) => {
                if let Some(c) = read_error_closing(e) {
                    conn.close(&c).await;
                }
                return None;
            }
            Ok(Some(Ok(m))) => m,
        };
        let data = match &msg {
            WsMessage::Text(t) => Incoming::Text(t.as_str()),
            WsMessage::Binary(b) => Incoming::Binary(b),
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            WsMessage::Close(_) => return None,
        };
        metrics::counter!("tern_gateway_frames_in_total").increment(1);
        let f = match codec::decode(conn.enc, data) {
            Ok(f) => f,
            Err(e) => {
                conn.close(&Closing::error(codes::BAD_FRAME, "bad_frame", e.to_string()))
                    .await;
                return None;
            }
        };
        let Some(Command::Auth(auth)) = f.command else {
            conn.close(&Closing::error(
                codes::NOT_AUTHENTICATED,
                "not_authenticated",
                "the first frame must be auth",
            ))
            .await;
            return None;
        };
        if auth.device_id.is_empty() || auth.device_id.len() > 128 {
            conn.close(&Closing::error(
                codes::AUTH_FAILED,
                "invalid_argument",
                "device_id must be 1 to 128 characters",
            ))
            .await;
            return None;
        }
        return match gw.auth.authenticate(&auth.token).await {
            Ok((app, user)) => Some((app, user, auth, f.id)),
            Err(rej) => {
                conn.close(&Closing::error(codes::AUTH_FAILED, &rej.code, rej.message))
                    .await;
                None
            }
        };
    }
}

/// An authenticated session's state.
struct Session {
    gw: Arc<Gateway>,
    id: u64,
    app: App,
    user: User,
    close: Arc<CloseSignal>,
    rx: mpsc::Receiver<Arc<pb::ServerFrame>>,
    watching: HashSet<UserId>,
    typing: DefaultDirectRateLimiter,
}

impl Session {
    async fn open(gw: Arc<Gateway>, app: App, user: User, auth: &pb::Auth) -> Self {
        let id = gw.new_session_id();
        let (tx, rx) = mpsc::channel(gw.config.outbound_queue.max(1));
        let close = Arc::new(CloseSignal::default());
        let platform = pb::Platform::try_from(auth.platform).unwrap_or(pb::Platform::Other);
        let (class, limit) = match platform {
            pb::Platform::Web => (DeviceClass::Web, app.settings.max_sessions_web),
            pb::Platform::Unspecified => (
                DeviceClass::Native(pb::Platform::Other as i32),
                app.settings.max_sessions_mobile,
            ),
            p => (DeviceClass::Native(p as i32), app.settings.max_sessions_mobile),
        };
        gw.register(
            id,
            SessionHandle {
                app: app.id.clone(),
                user: user.id.clone(),
                class,
                tx,
                close: close.clone(),
            },
            limit as usize,
            app.settings.user_send_rate_per_second,
        );
        let presence = gw.pipeline.presence();
        match presence
            .session_opened(&app.id, &user.id, &gw.config.node_id, id, &auth.device_id)
            .await
        {
            Ok(true) => {
                gw.presence_changed(&app.id, &user.id, true, 0);
                let data = serde_json::json!({"user_id": user.id, "device_id": auth.device_id, "platform": platform.as_str_name()});
                gw.pipeline.emit(&app, "user.online", data).await;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "presence unavailable; the session will miss pushes"),
        }
        let typing_rate = NonZeroU32::new(gw.config.typing_per_second).unwrap_or(NonZeroU32::MIN);
        Self {
            gw,
            id,
            app,
            user,
            close,
            rx,
            watching: HashSet::new(),
            typing: RateLimiter::direct(Quota::per_second(typing_rate)),
        }
    }

    async fn close(self) {
        let rooms = self.gw.rooms.leave_all(self.id);
        self.gw.unregister(self.id, &self.watching);
        let presence = self.gw.pipeline.presence();
        for room in &rooms {
            let _ = presence
                .room_left(&self.app.id, room, &self.gw.config.node_id, self.id)
                .await;
        }
        match presence
            .session_closed(&self.app.id, &self.user.id, &self.gw.config.node_id, self.id)
            .await
        {
            Ok(true) => {
                let last_seen = now_ms();
                self.gw.presence_changed(&self.app.id, &self.user.id, false, last_seen);
                let data = serde_json::json!({"user_id": self.user.id, "last_seen": last_seen});
                self.gw.pipeline.emit(&self.app, "user.offline", data).await;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "presence unavailable while closing a session"),
        }
    }

    async fn run(&mut self, conn: &mut Conn, auth: pb::Auth, auth_id: String) {
        let sync = match auth.sync_version {
            Some(v) => match self.sync(v, 0).await {
                Ok(s) => Some(s),
                Err(e) => {
                    let f = error_frame(auth_id, e.code, &e.message, e.retry_after_ms);
                    conn.send(&f).await;
                    conn.close(&Closing::error(
                        codes::SERVICE_RESTART,
                        "unavailable",
                        "sync failed; reconnect",
                    ))
                    .await;
                    return;
                }
            },
            None => None,
        };
        let ok = frame(
            auth_id,
            Body::AuthOk(pb::AuthOk {
                user_id: self.user.id.to_string(),
                session_id: format!("{}/{}", self.gw.config.node_id, self.id),
                heartbeat_interval_ms: i64::try_from(self.gw.config.heartbeat_interval.as_millis()).unwrap_or(i64::MAX),
                server_time: now_ms(),
                sync,
            }),
        );
        if !conn.send(&ok).await {
            return;
        }

        let silence_limit = self.gw.config.heartbeat_interval * 2;
        let mut last_heard = Instant::now();
        let mut tick = tokio::time::interval((self.gw.config.heartbeat_interval / 4).max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let close = self.close.clone();
        let shutdown = self.gw.shutdown.clone();
        loop {
            tokio::select! {
                biased;
                _ = close.closed() => {
                    if let Some(c) = close.reason() {
                        conn.close(&c).await;
                    }
                    return;
                }
                _ = shutdown.cancelled() => {
                    conn.close(&Closing::kicked(codes::SERVICE_RESTART, "going_away", "the server is restarting; reconnect")).await;
                    return;
                }
                Some(f) = self.rx.recv() => {
                    if !conn.send(&f).await {
                        return;
                    }
                }
                _ = tick.tick() => {
                    if last_heard.elapsed() > silence_limit {
                        conn.close(&Closing::error(
                            codes::HEARTBEAT_TIMEOUT,
                            "heartbeat_timeout",
                            "nothing heard from the client for twice the heartbeat interval",
                        )).await;
                        return;
                    }
                }
                m = conn.socket.recv() => {
                    last_heard = Instant::now();
                    let msg = match m {
                        None => return,
                        Some(Err(e)) => {
                            if let Some(c) = read_error_closing(e) {
                                conn.close(&c).await;
                            }
                            return;
                        }
                        Some(Ok(m)) => m,
                    };
                    let data = match &msg {
                        WsMessage::Text(t) => Incoming::Text(t.as_str()),
                        WsMessage::Binary(b) => Incoming::Binary(b),
                        // tungstenite answers pings itself; both count as signs of life.
                        WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
                        WsMessage::Close(_) => return,
                    };
                    metrics::counter!("tern_gateway_frames_in_total").increment(1);
                    let f = match codec::decode(conn.enc, data) {
                        Ok(f) => f,
                        Err(e) => {
                            conn.close(&Closing::error(codes::BAD_FRAME, "bad_frame", e.to_string())).await;
                            return;
                        }
                    };
                    let Some(cmd) = f.command else {
                        conn.close(&Closing::error(codes::BAD_FRAME, "bad_frame", "unknown or missing command")).await;
                        return;
                    };
                    let answer = match self.command(cmd).await {
                        Ok(body) => frame(f.id, body),
                        Err(e) => error_frame(f.id, e.code, &e.message, e.retry_after_ms),
                    };
                    if !conn.send(&answer).await {
                        return;
                    }
                }
            }
        }
    }

    async fn command(&mut self, cmd: Command) -> Result<Body, CommandError> {
        match cmd {
            Command::Auth(_) => Err(CommandError::new(
                "already_authenticated",
                "this connection is already authenticated",
            )),
            Command::Send(s) => self.send(s).await,
            Command::Sync(s) => Ok(Body::SyncResult(self.sync(s.since_version, s.limit).await?)),
            Command::History(h) => self.history(h).await,
            Command::Read(r) => {
                let conv = ConversationId::parse(&r.conversation_id)?;
                let entry = self
                    .gw
                    .pipeline
                    .mark_read(&self.app, &self.user.id, &conv, r.seq)
                    .await?;
                Ok(Body::Conversation(convert::conversation(&entry)))
            }
            Command::Recall(r) => {
                let id = MsgId::parse(&r.msg_id)?;
                self.gw
                    .pipeline
                    .recall(&self.app, &Actor::User(self.user.id.clone()), &id)
                    .await?;
                Ok(Body::Ok(pb::Ok {}))
            }
            Command::Typing(t) => {
                let conv = ConversationId::parse(&t.conversation_id)?;
                // Extra indicators are dropped silently: they carry nothing new.
                if self.typing.check().is_ok() {
                    self.gw.pipeline.typing(&self.app, &self.user.id, &conv).await?;
                }
                Ok(Body::Ok(pb::Ok {}))
            }
            Command::Ping(p) => Ok(Body::Pong(pb::Pong {
                nonce: p.nonce,
                server_time: now_ms(),
            })),
            Command::SubscribePresence(p) => {
                let users = parse_users(&p.user_ids)?;
                self.gw.watch(&self.app.id, &users, self.id, true);
                self.watching.extend(users.iter().cloned());
                let now = self.gw.pipeline.presence().presence(&self.app.id, &users).await?;
                Ok(Body::PresenceResult(pb::PresenceResult {
                    users: now.iter().map(convert::presence).collect(),
                }))
            }
            Command::UnsubscribePresence(p) => {
                let users = parse_users(&p.user_ids)?;
                self.gw.watch(&self.app.id, &users, self.id, false);
                for u in &users {
                    self.watching.remove(u);
                }
                Ok(Body::Ok(pb::Ok {}))
            }
            Command::JoinRoom(j) => Ok(crate::rooms::join(&self.gw, &self.app, &self.user.id, self.id, j).await?),
            Command::LeaveRoom(l) => Ok(crate::rooms::leave(&self.gw, &self.app, self.id, l).await?),
            Command::GetRoom(g) => Ok(crate::rooms::get(&self.gw, &self.app, g).await?),
            c @ (Command::SendFriendRequest(_)
            | Command::AnswerFriendRequest(_)
            | Command::ListFriendRequests(_)
            | Command::ListFriends(_)
            | Command::UpdateFriend(_)
            | Command::DeleteFriend(_)
            | Command::BlockUser(_)
            | Command::UnblockUser(_)
            | Command::ListBlocks(_)) => {
                Ok(crate::friends::command(&self.gw.pipeline, &self.app, &self.user.id, c).await?)
            }
            c @ (Command::EditMessage(_)
            | Command::DeleteMessages(_)
            | Command::UpdateExtensions(_)
            | Command::AddReaction(_)
            | Command::RemoveReaction(_)
            | Command::ListReactionUsers(_)
            | Command::GetChanges(_)) => {
                let (gw, app, me) = (&self.gw, &self.app, self.id);
                let in_room = |r: &RoomId| gw.rooms.contains(&app.id, r, me);
                Ok(crate::lifecycle::command(&self.gw.pipeline, &self.app, &self.user.id, &in_room, c).await?)
            }
            // Groups (50-69).
            c @ (Command::CreateGroup(_)
            | Command::GetGroup(_)
            | Command::UpdateGroup(_)
            | Command::DismissGroup(_)
            | Command::InviteMembers(_)
            | Command::RemoveMember(_)
            | Command::LeaveGroup(_)
            | Command::JoinGroup(_)
            | Command::ListJoinRequests(_)
            | Command::AnswerJoinRequest(_)
            | Command::ListMembers(_)
            | Command::GetMember(_)
            | Command::SetMemberRole(_)
            | Command::TransferOwner(_)
            | Command::MuteMember(_)
            | Command::ListMyGroups(_)
            | Command::GetReadCounts(_)
            | Command::ListReaders(_)) => {
                Ok(crate::groups::command(&self.gw.pipeline, &self.app, &self.user.id, c).await?)
            }
        }
    }

    async fn send(&mut self, s: pb::Send) -> Result<Body, CommandError> {
        if let Some(limiter) = self.gw.send_limiter(&self.app.id, &self.user.id) {
            if let Err(not_until) = limiter.check() {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err(DeliveryError::RateLimited {
                    retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1),
                }
                .into());
            }
        }
        let client_msg_id = ClientMsgId::parse(&s.client_msg_id)?;
        let to = match s.to {
            Some(pb::send::To::User(u)) => Recipient::User(UserId::parse(&u)?),
            Some(pb::send::To::Group(g)) => Recipient::Group(GroupId::parse(&g)?),
            Some(pb::send::To::Room(r)) => {
                let room = RoomId::parse(&r)?;
                if !self.gw.rooms.contains(&self.app.id, &room, self.id) {
                    return Err(CommandError::new("not_in_room", "join the room before sending to it"));
                }
                Recipient::Room(room)
            }
            None => {
                return Err(CommandError::new(
                    "invalid_argument",
                    "to is required (user, group or room)",
                ))
            }
        };
        let msg_type = MessageType::parse_sendable(&s.r#type).ok_or_else(|| {
            CommandError::new(
                "invalid_argument",
                "type must be text, image, file, audio, video, location or custom",
            )
        })?;
        let content = s
            .content
            .as_ref()
            .map_or(serde_json::Value::Object(Default::default()), convert::struct_to_json);
        let receipt = self
            .gw
            .pipeline
            .send(
                &self.app,
                SendRequest {
                    sender: Sender::User(self.user.id.clone()),
                    to,
                    client_msg_id: Some(client_msg_id.clone()),
                    msg_type,
                    content,
                    source: Source::Sdk,
                    options: SendOptions {
                        mentions: mentions(&s.mentions)?,
                        mention_all: s.mention_all,
                        reply_to: crate::lifecycle::reply_to(&s.reply_to)?,
                    },
                },
            )
            .await?;
        Ok(Body::SendAck(pb::SendAck {
            msg_id: receipt.msg_id.to_string(),
            conversation_id: receipt.conversation_id.to_string(),
            seq: receipt.seq,
            created_at: receipt.created_at,
            client_msg_id: client_msg_id.to_string(),
        }))
    }

    async fn sync(&self, since: i64, limit: u32) -> Result<pb::SyncResult, CommandError> {
        let limit = if limit == 0 { 50 } else { limit.min(100) };
        let entries = self
            .gw
            .pipeline
            .store()
            .conversations_changed_since(&self.app.id, &self.user.id, since, limit)
            .await
            .map_err(DeliveryError::from)?;
        let version = entries.iter().map(|e| e.version).max().unwrap_or(since).max(since);
        Ok(pb::SyncResult {
            has_more: entries.len() >= limit as usize,
            conversations: entries.iter().map(convert::conversation).collect(),
            version,
        })
    }

    async fn history(&self, h: pb::History) -> Result<Body, CommandError> {
        let conv = ConversationId::parse(&h.conversation_id)?;
        if let ConversationId::Room(r) = &conv {
            if !self.gw.rooms.contains(&self.app.id, r, self.id) {
                return Err(CommandError::new("not_in_room", "join the room to read its history"));
            }
        }
        let range = if h.before_seq > 0 {
            SeqRange::Before(h.before_seq)
        } else {
            SeqRange::After(h.after_seq)
        };
        let msgs = self
            .gw
            .pipeline
            .history(&self.app, &Actor::User(self.user.id.clone()), &conv, range, h.limit)
            .await;
        let msgs = room_may_be_empty(&conv, msgs)?;
        Ok(Body::HistoryResult(pb::HistoryResult {
            conversation_id: conv.to_string(),
            messages: msgs.iter().map(convert::message).collect(),
        }))
    }
}

/// A room nobody has written in yet has no history: for a member that is an empty page,
/// not "not found" (which is what the pipeline says of conversations without messages).
fn room_may_be_empty(
    conv: &ConversationId,
    r: Result<Vec<tern_platform::domain::Message>, DeliveryError>,
) -> Result<Vec<tern_platform::domain::Message>, DeliveryError> {
    match (conv, r) {
        (ConversationId::Room(_), Err(DeliveryError::NotFound(_))) => Ok(Vec::new()),
        (_, r) => r,
    }
}

/// The users a `send` mentions (a group's members, checked by the pipeline).
fn mentions(ids: &[String]) -> Result<Vec<UserId>, CommandError> {
    if ids.len() > MAX_MENTIONS {
        return Err(CommandError::new(
            "invalid_argument",
            format!("a message may mention at most {MAX_MENTIONS} users"),
        ));
    }
    ids.iter().map(|u| Ok(UserId::parse(u)?)).collect()
}

fn parse_users(ids: &[String]) -> Result<Vec<UserId>, CommandError> {
    if ids.len() > MAX_PRESENCE_USERS {
        return Err(CommandError::new(
            "invalid_argument",
            format!("at most {MAX_PRESENCE_USERS} users at a time"),
        ));
    }
    ids.iter().map(|u| Ok(UserId::parse(u)?)).collect()
}
