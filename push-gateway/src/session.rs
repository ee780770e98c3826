//! One client connection, from its opening to its close, in one task: authentication, the
//! command loop and the writes of what other tasks queue for it (`Outbound`). The same
//! session runs behind every door; the door (`crate::transport::Transport`: the WebSocket,
//! or the gRPC stream of `crate::grpc`) only carries its frames.

use std::collections::HashSet;
use std::sync::Arc;

use tern_platform::delivery::{Actor, DeliveryError, Recipient, SendOptions, SendRequest};
use tern_platform::domain::{now_ms, App, MessageType, Sender, Source, User};
use tern_platform::ids::{ClientMsgId, ConversationId, GroupId, MsgId, RoomId, UserId};
use tern_platform::proto::v1 as pb;
use tern_platform::rate_limits::check_user_send_rate;
use tern_platform::store::SeqRange;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::close::{codes, Closing};
use crate::convert;
use crate::gateway::{DeviceClass, Gateway, SessionHandle};
use crate::outbound::{Next, Outbound};
use crate::transport::{Received, Transport};

use pb::client_frame::Command;
use pb::server_frame::Body;

/// Most queued frames written per flush.
const WRITE_BATCH: usize = 64;

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

impl From<tern_platform::files::FilesError> for CommandError {
    fn from(e: tern_platform::files::FilesError) -> Self {
        if let tern_platform::files::FilesError::Internal(cause) = &e {
            tracing::error!(cause, "internal error in a files command");
        }
        Self::new(e.code(), e.to_string())
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

fn going_away() -> Closing {
    Closing::kicked(
        codes::SERVICE_RESTART,
        "going_away",
        "the server is restarting; reconnect",
    )
}

/// What the door learnt before the first frame (gRPC metadata; nothing on a WebSocket).
#[derive(Default)]
pub(crate) struct Preset {
    /// A complete login: the session opens without waiting for an `auth` frame.
    pub auth: Option<pb::Auth>,
    /// The token an `auth` frame with an empty token stands for.
    pub token: Option<String>,
}

/// Runs one connection to its end. `permit` is this connection's place under the cap.
///
/// Every phase but the idle wait is boxed: an `async fn`'s future is as large as its
/// largest state, and this one lives as long as the connection, so logging in, opening,
/// a command with its whole send path, and closing take memory only while they run.
pub(crate) async fn run<T: Transport>(gw: Arc<Gateway>, mut conn: T, preset: Preset, permit: OwnedSemaphorePermit) {
    metrics::gauge!("tern_gateway_connections").increment(1.0);
    if let Some(login) = Box::pin(authenticate(&gw, &mut conn, preset)).await {
        if let Some(mut s) = Box::pin(Session::open(gw.clone(), login, &mut conn)).await {
            s.serve(&mut conn).await;
            Box::pin(s.close()).await;
        }
    }
    metrics::gauge!("tern_gateway_connections").decrement(1.0);
    // The session is gone; the connection's last moments do not count against the cap.
    drop(permit);
    Box::pin(conn.finish()).await;
}

/// A valid `auth` frame and what it logs in.
struct Login {
    app: App,
    user: User,
    auth: pb::Auth,
    frame_id: String,
}

/// Waits for the first frame, which must be a valid `auth` within the timeout (unless the
/// door was given the login already).
async fn authenticate<T: Transport>(gw: &Gateway, conn: &mut T, preset: Preset) -> Option<Login> {
    if let Some(auth) = preset.auth {
        return check_login(gw, conn, auth, String::new()).await;
    }
    let deadline = Instant::now() + gw.config.auth_timeout;
    loop {
        let next = tokio::select! {
            _ = gw.shutdown.cancelled() => {
                conn.close(&going_away()).await;
                return None;
            }
            r = tokio::time::timeout_at(deadline, conn.receive()) => r,
        };
        let f = match next {
            Err(_) => {
                conn.close(&Closing::error(
                    codes::NOT_AUTHENTICATED,
                    "auth_timeout",
                    "the first frame must be auth, within 10 seconds",
                ))
                .await;
                return None;
            }
            Ok(Received::Gone) => return None,
            Ok(Received::Alive) => continue,
            Ok(Received::Refuse(c)) => {
                conn.close(&c).await;
                return None;
            }
            Ok(Received::Frame(f)) => f,
        };
        let Some(Command::Auth(mut auth)) = f.command else {
            conn.close(&Closing::error(
                codes::NOT_AUTHENTICATED,
                "not_authenticated",
                "the first frame must be auth",
            ))
            .await;
            return None;
        };
        if auth.token.is_empty() {
            if let Some(t) = &preset.token {
                auth.token = t.clone();
            }
        }
        return check_login(gw, conn, auth, f.id).await;
    }
}

/// Checks an `auth` (its device id, then its token).
async fn check_login<T: Transport>(gw: &Gateway, conn: &mut T, auth: pb::Auth, frame_id: String) -> Option<Login> {
    if auth.device_id.is_empty() || auth.device_id.len() > 128 {
        conn.close(&Closing::error(
            codes::AUTH_FAILED,
            "invalid_argument",
            "device_id must be 1 to 128 characters",
        ))
        .await;
        return None;
    }
    match gw.auth.authenticate(&auth.token).await {
        Ok((app, user)) => Some(Login {
            app,
            user,
            auth,
            frame_id,
        }),
        Err(rej) => {
            conn.close(&Closing::error(codes::AUTH_FAILED, &rej.code, rej.message))
                .await;
            None
        }
    }
}

/// An authenticated session's state: what an idle connection keeps besides its socket.
struct Session {
    gw: Arc<Gateway>,
    id: u64,
    /// Shared with every session of the app on this node, refreshed before each command.
    app: Arc<App>,
    user: UserId,
    out: Arc<Outbound>,
    /// Users watched; most sessions watch nobody, so this costs nothing until the first
    /// `subscribe_presence`. (Rooms joined are the node's: `Gateway::rooms`.)
    extras: Option<Box<Extras>>,
    /// Typing indicators in the current second (`typing_second`, on the gateway clock).
    typing_second: u64,
    typing_count: u32,
}

#[derive(Default)]
struct Extras {
    watching: HashSet<UserId>,
}

impl Session {
    /// Registers the session, tells presence, and answers `auth` with `auth_ok` (after the
    /// sync it asked for). `None` when the connection is over already.
    async fn open<T: Transport>(gw: Arc<Gateway>, login: Login, conn: &mut T) -> Option<Self> {
        let Login {
            app,
            user,
            auth,
            frame_id,
        } = login;
        let app = gw.apps.adopt(app);
        let id = gw.new_session_id();
        let out = Arc::new(Outbound::new(gw.clock_ms()));
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
            &app.id,
            &user.id,
            SessionHandle {
                class,
                out: out.clone(),
                device: auth.device_id.as_str().into(),
            },
        );
        let presence = gw.pipeline.presence();
        match presence
            .session_opened(&app.id, &user.id, &gw.config.node_id, id, &auth.device_id, class.name())
            .await
        {
            Ok(opened) => {
                gw.replace_oldest(&app.id, &user.id, &opened.same_class, limit as usize)
                    .await;
                if opened.came_online {
                    gw.presence_changed(&app.id, &user.id, true, 0);
                    let data = serde_json::json!({"user_id": user.id, "device_id": auth.device_id, "platform": platform.as_str_name()});
                    gw.pipeline.emit(&app, "user.online", data).await;
                }
            }
            Err(e) => {
                gw.limit_here(id, &app.id, &user.id, limit as usize);
                tracing::warn!(error = %e, "presence unavailable; the session will miss pushes");
            }
        }
        let mut s = Self {
            gw,
            id,
            app,
            user: user.id,
            out,
            extras: None,
            typing_second: 0,
            typing_count: 0,
        };
        if s.greet(conn, auth.sync_version, frame_id).await {
            Some(s)
        } else {
            s.close().await;
            None
        }
    }

    /// Answers `auth`: the sync it asked for, then `auth_ok`. False if the connection is over.
    async fn greet<T: Transport>(&mut self, conn: &mut T, sync_version: Option<i64>, auth_id: String) -> bool {
        let sync = match sync_version {
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
                    return false;
                }
            },
            None => None,
        };
        let ok = frame(
            auth_id,
            Body::AuthOk(pb::AuthOk {
                user_id: self.user.to_string(),
                session_id: format!("{}/{}", self.gw.config.node_id, self.id),
                heartbeat_interval_ms: i64::try_from(self.gw.config.heartbeat_interval.as_millis()).unwrap_or(i64::MAX),
                server_time: now_ms(),
                sync,
            }),
        );
        conn.send(&ok).await
    }

    async fn close(self) {
        let extras = self.extras.unwrap_or_default();
        let rooms = self.gw.rooms.leave_all(self.id);
        self.gw.unregister(self.id, &self.app.id, &self.user, &extras.watching);
        let presence = self.gw.pipeline.presence();
        for room in &rooms {
            let _ = presence
                .room_left(&self.app.id, room, &self.gw.config.node_id, self.id)
                .await;
        }
        match presence
            .session_closed(&self.app.id, &self.user, &self.gw.config.node_id, self.id)
            .await
        {
            Ok(true) => {
                let last_seen = now_ms();
                self.gw.presence_changed(&self.app.id, &self.user, false, last_seen);
                let data = serde_json::json!({"user_id": self.user, "last_seen": last_seen});
                let app = self.gw.apps.current(&self.app).await;
                self.gw.pipeline.emit(&app, "user.offline", data).await;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "presence unavailable while closing a session"),
        }
    }

    /// The connection's life after `auth_ok`: writes what is queued for it and answers
    /// its commands until either side ends it. Silence is the gateway's heartbeat sweep's
    /// business: it closes this session through `out` like any other reason to close.
    async fn serve<T: Transport>(&mut self, conn: &mut T) {
        let out = self.out.clone();
        let gw = self.gw.clone();
        // Registered once with the node-wide token, not again at every wake-up (its waiter
        // list is one lock that every session would otherwise take twice per frame).
        let shutdown = gw.shutdown.cancelled();
        tokio::pin!(shutdown);
        loop {
            // Not biased: under a steady stream of pushes a session must still read its
            // client (commands, and the pings that keep the heartbeat sweep away).
            tokio::select! {
                _ = &mut shutdown => {
                    Box::pin(conn.close(&going_away())).await;
                    return;
                }
                _ = out.woken() => {
                    let mut batch = Vec::new();
                    match out.take(&mut batch, WRITE_BATCH) {
                        Next::Close(c) => {
                            Box::pin(conn.close(&c)).await;
                            return;
                        }
                        Next::Write if batch.is_empty() => {}
                        Next::Write => {
                            if !conn.write_batch(&batch).await {
                                return;
                            }
                        }
                    }
                }
                r = conn.receive() => {
                    out.heard(self.gw.clock_ms());
                    match r {
                        Received::Frame(f) => {
                            if !Box::pin(self.handle(conn, f)).await {
                                return;
                            }
                        }
                        Received::Alive => {}
                        Received::Gone => return,
                        Received::Refuse(c) => {
                            Box::pin(conn.close(&c)).await;
                            return;
                        }
                    }
                }
            }
        }
    }

    /// One frame from the client: run its command, answer. False when the connection is over.
    async fn handle<T: Transport>(&mut self, conn: &mut T, f: pb::ClientFrame) -> bool {
        let Some(cmd) = f.command else {
            conn.close(&Closing::error(
                codes::BAD_FRAME,
                "bad_frame",
                "unknown or missing command",
            ))
            .await;
            return false;
        };
        // Settings changed since the last command apply to this one.
        self.app = self.gw.apps.current(&self.app).await;
        let answer = match self.command(cmd).await {
            Ok(body) => frame(f.id, body),
            Err(e) => error_frame(f.id, e.code, &e.message, e.retry_after_ms),
        };
        conn.send(&answer).await
    }

    fn in_room(&self, room: &RoomId) -> bool {
        self.gw.rooms.contains(&self.app.id, room, self.id)
    }

    fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Default::default)
    }

    /// Whether a typing indicator may go out now (at most `typing_per_second` a second).
    fn typing_allowed(&mut self) -> bool {
        let second = self.gw.clock_ms() / 1000;
        if second != self.typing_second {
            self.typing_second = second;
            self.typing_count = 0;
        }
        if self.typing_count >= self.gw.config.typing_per_second.max(1) {
            return false;
        }
        self.typing_count += 1;
        true
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
                let entry = tern_platform::service::conversations::mark_read(
                    &self.gw.pipeline,
                    &self.app,
                    &self.user,
                    &conv,
                    r.seq,
                )
                .await?;
                Ok(Body::Conversation(convert::conversation(&entry)))
            }
            Command::Recall(r) => {
                let id = MsgId::parse(&r.msg_id)?;
                tern_platform::service::messages::recall(
                    &self.gw.pipeline,
                    &self.app,
                    &Actor::User(self.user.clone()),
                    &id,
                )
                .await?;
                Ok(Body::Ok(pb::Ok {}))
            }
            Command::Typing(t) => {
                let conv = ConversationId::parse(&t.conversation_id)?;
                // Extra indicators are dropped silently: they carry nothing new.
                if self.typing_allowed() {
                    self.gw.pipeline.typing(&self.app, &self.user, &conv).await?;
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
                self.extras().watching.extend(users.iter().cloned());
                let now = self.gw.pipeline.presence().presence(&self.app.id, &users).await?;
                Ok(Body::PresenceResult(pb::PresenceResult {
                    users: now.iter().map(convert::presence).collect(),
                }))
            }
            Command::UnsubscribePresence(p) => {
                let users = parse_users(&p.user_ids)?;
                self.gw.watch(&self.app.id, &users, self.id, false);
                if let Some(extras) = self.extras.as_deref_mut() {
                    for u in &users {
                        extras.watching.remove(u);
                    }
                }
                Ok(Body::Ok(pb::Ok {}))
            }
            Command::JoinRoom(j) => Ok(crate::rooms::join(&self.gw, &self.app, &self.user, self.id, j).await?),
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
                Ok(crate::friends::command(&self.gw.pipeline, &self.app, &self.user, c).await?)
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
                Ok(crate::lifecycle::command(&self.gw.pipeline, &self.app, &self.user, &in_room, c).await?)
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
                Ok(crate::groups::command(&self.gw.pipeline, &self.app, &self.user, c).await?)
            }
            // Files (120-129).
            Command::CreateUpload(c) => Ok(crate::files::create_upload(&self.gw, &self.app, &self.user, c).await?),
            Command::GetFileUrl(g) => Ok(crate::files::file_url(&self.gw, &self.app, &self.user, g).await?),
            // Offline push (130-139).
            Command::RegisterPushToken(r) => {
                Ok(crate::push::register(&self.gw.pipeline, &self.app, &self.user, r).await?)
            }
            Command::UpdatePushToken(u) => Ok(crate::push::update(&self.gw.pipeline, &self.app, &self.user, u).await?),
            Command::RemovePushToken(r) => Ok(crate::push::remove(&self.gw.pipeline, &self.app, &self.user, r).await?),
            Command::GetPushSettings(_) => {
                Ok(crate::push::get_settings(&self.gw.pipeline, &self.app, &self.user).await?)
            }
            Command::UpdatePushSettings(u) => {
                Ok(crate::push::update_settings(&self.gw.pipeline, &self.app, &self.user, u).await?)
            }
        }
    }

    async fn send(&mut self, s: pb::Send) -> Result<Body, CommandError> {
        check_user_send_rate(self.gw.pipeline.rate_limits().as_ref(), &self.app, &self.user)
            .await
            .map_err(DeliveryError::from)?;
        let client_msg_id = ClientMsgId::parse(&s.client_msg_id)?;
        let to = match s.to {
            Some(pb::send::To::User(u)) => Recipient::User(UserId::parse(&u)?),
            Some(pb::send::To::Group(g)) => Recipient::Group(GroupId::parse(&g)?),
            Some(pb::send::To::Room(r)) => {
                let room = RoomId::parse(&r)?;
                if !self.in_room(&room) {
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
                    sender: Sender::User(self.user.clone()),
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
        let entries = tern_platform::service::conversations::changed_since(
            &self.gw.pipeline,
            &self.app,
            &self.user,
            since,
            limit,
        )
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
            if !self.in_room(r) {
                return Err(CommandError::new("not_in_room", "join the room to read its history"));
            }
        }
        let range = if h.before_seq > 0 {
            SeqRange::Before(h.before_seq)
        } else {
            SeqRange::After(h.after_seq)
        };
        let msgs = tern_platform::service::messages::history_range(
            &self.gw.pipeline,
            &self.app,
            &Actor::User(self.user.clone()),
            &conv,
            range,
            h.limit,
        )
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
    tern_platform::groups::rules::check_mention_count(ids.len())?;
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
