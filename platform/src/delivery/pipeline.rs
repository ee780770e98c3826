//! `Pipeline`: the ports and caches of the delivery path, and the reads, recalls and
//! notifications that share them. The send path's stages are in `send`.

use std::collections::HashMap;
use std::sync::Arc;

use super::hook::BeforeSendHook;
use super::moderation::WordFilter;
use super::user_cache::{UserCache, UserState};
use super::writer::Writer;
use super::DeliveryError;
use crate::bus::{Bus, BusEvent, Invalidation, Push, Target};
use crate::domain::*;
use crate::groups::cache::{GroupSnapshot, MemberCache};
use crate::ids::*;
use crate::presence::Presence;
use crate::rate_limits::{LocalRateLimits, RateLimits};
use crate::store::{SeqRange, Store};
use crate::webhook;

/// Largest page of history or conversations; a larger `limit` is clamped to it.
pub const MAX_PAGE: u32 = 100;
pub const DEFAULT_PAGE: u32 = 50;

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Writer tasks for group commit: 1 for SQLite, a few for PostgreSQL.
    pub writer_tasks: usize,
    /// Most messages in one commit.
    pub max_batch: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            writer_tasks: 1,
            max_batch: 256,
        }
    }
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    User(UserId),
    Group(GroupId),
    Room(RoomId),
}

/// Who performs an operation other than a send: the app's backend (may do anything in its
/// app) or one of its users (may act only on what is theirs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Server,
    User(UserId),
}

#[derive(Debug, Clone)]
pub struct SendRequest {
    pub sender: Sender,
    pub to: Recipient,
    /// `None` only for server-side sends that do not retry (a fresh key is made).
    pub client_msg_id: Option<ClientMsgId>,
    pub msg_type: MessageType,
    pub content: serde_json::Value,
    pub source: Source,
    /// What a message says about other messages and users besides its content.
    pub options: SendOptions,
}

/// The parts of a send beyond its content: whom it mentions and what it answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Group members the message @mentions; their conversation entry shows `mentioned`.
    pub mentions: Vec<UserId>,
    /// @all: every member of the group is mentioned.
    pub mention_all: bool,
    /// The message this one replies to (quotes), in the same conversation.
    pub reply_to: Option<MsgId>,
}

/// The pipeline and the ports it drives. One per process; cheap to share in an `Arc`.
pub struct Pipeline {
    pub(super) store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    presence: Arc<dyn Presence>,
    pub(super) writer: Writer,
    pub(super) hook: Option<Arc<dyn BeforeSendHook>>,
    /// Poked after a commit that wrote webhook events, so the worker sends them at once.
    outbox_wake: Option<Arc<tokio::sync::Notify>>,
    users: UserCache,
    /// The apps' sensitive-word lists, compiled and cached.
    pub(super) words: WordFilter,
    /// Rooms: what a room send must pass (the room exists, the sender is not muted in it,
    /// the room's send rate).
    pub(super) rooms: crate::rooms::RoomGate,
    /// Each group's members, for checks and fan-out without reading them per message.
    groups: MemberCache,
    /// Every rate budget of the node (rooms here; the doors' through `rate_limits()`).
    rate_limits: Arc<dyn RateLimits>,
}

impl Pipeline {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, presence: Arc<dyn Presence>, config: PipelineConfig) -> Self {
        let writer = Writer::start(store.clone(), config.writer_tasks, config.max_batch);
        Self {
            words: WordFilter::new(store.clone()),
            store,
            bus,
            presence,
            writer,
            hook: None,
            outbox_wake: None,
            users: UserCache::default(),
            rooms: crate::rooms::RoomGate::default(),
            groups: MemberCache::default(),
            rate_limits: Arc::new(LocalRateLimits::new()),
        }
    }

    /// Whether `user` exists, and their ban, from a cache of a few seconds (`None`: no such user).
    pub(super) async fn user_state(&self, app: &App, user: &UserId) -> Result<Option<UserState>, DeliveryError> {
        if let Some(s) = self.users.get(&app.id, user) {
            return Ok(Some(s));
        }
        let Some(u) = self.store.user(&app.id, user).await? else {
            return Ok(None);
        };
        let state = UserState {
            banned_until: u.banned_until,
            muted_until: u.muted_until,
        };
        self.users.put(&app.id, user, state);
        Ok(Some(state))
    }

    /// Writes an after-event that goes with no other change (a user came online, was
    /// kicked) to the outbox, if the app wants it, and wakes the webhook worker. A failure is
    /// logged, never returned: the event is a notification of what already happened.
    pub async fn emit(&self, app: &App, event_type: &str, data: serde_json::Value) {
        let Some(event) = webhook::after_event(app, event_type, data, now_ms()) else {
            return;
        };
        match self.store.enqueue_events(std::slice::from_ref(&event)).await {
            Ok(()) => self.outbox_written(true),
            Err(e) => tracing::warn!(error = %e, event_type, "could not write an after-event"),
        }
    }

    /// Drops what this node and every other remember of a user, after a change to them
    /// (ban, mute, delete).
    pub fn forget_user(&self, app: &App, user: &UserId) {
        self.users.forget(&app.id, user);
        self.announce(Invalidation::User {
            app_id: app.id.clone(),
            user: user.clone(),
        });
    }

    /// Drops what this node and every other remember of the app's word lists, after a
    /// change to them.
    pub fn forget_words(&self, app: &App) {
        self.words.forget(&app.id);
        self.announce(Invalidation::Words { app_id: app.id.clone() });
    }

    /// Tells the other nodes (through the bus) to drop a cache entry this node has just
    /// dropped. Not awaited: the change is committed, and a node that misses the word
    /// holds the entry until its cache's own expiry.
    pub fn announce(&self, invalidation: Invalidation) {
        let bus = self.bus.clone();
        tokio::spawn(async move {
            if let Err(e) = bus.invalidate(invalidation).await {
                tracing::warn!(error = %e, "could not tell the other nodes to drop a cache entry");
            }
        });
    }

    /// Drops this node's copy of what `invalidation` names (heard from the bus; the app's
    /// credentials are the engine's, see `Engine`).
    pub fn drop_cached(&self, invalidation: &Invalidation) {
        match invalidation {
            Invalidation::App { .. } => {}
            Invalidation::User { app_id, user } => self.users.forget(app_id, user),
            Invalidation::Group { app_id, group } => self.groups.forget(app_id, group),
            Invalidation::Room { app_id, room } => self.rooms.forget(app_id, room),
            Invalidation::Words { app_id } => self.words.forget(app_id),
        }
    }

    /// A group with its members as they are now (from this node's cache while the group's
    /// version is unchanged). `not_found` for no such group.
    pub async fn group_snapshot(&self, app: &App, group: &GroupId) -> Result<Arc<GroupSnapshot>, DeliveryError> {
        self.groups
            .snapshot(self.store.as_ref(), &app.id, group)
            .await?
            .ok_or(DeliveryError::NotFound("group"))
    }

    /// Drops what this node and every other remember of a group, after a change made here.
    pub fn forget_group(&self, app: &App, group: &GroupId) {
        self.groups.forget(&app.id, group);
        self.announce(Invalidation::Group {
            app_id: app.id.clone(),
            group: group.clone(),
        });
    }

    pub fn with_outbox_wake(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.outbox_wake = Some(wake);
        self
    }

    /// Wakes the webhook worker after a change wrote events to the outbox (`any`), so they go
    /// out now rather than at the worker's next poll.
    pub fn outbox_written(&self, any: bool) {
        if let (true, Some(w)) = (any, &self.outbox_wake) {
            w.notify_one();
        }
    }

    pub fn with_before_send(mut self, hook: Arc<dyn BeforeSendHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Replaces the in-process rate limits (with a node-spanning adapter).
    pub fn with_rate_limits(mut self, limits: Arc<dyn RateLimits>) -> Self {
        self.rate_limits = limits;
        self
    }

    pub fn rate_limits(&self) -> &Arc<dyn RateLimits> {
        &self.rate_limits
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    pub fn presence(&self) -> &Arc<dyn Presence> {
        &self.presence
    }

    pub fn word_filter(&self) -> &WordFilter {
        &self.words
    }

    pub fn room_gate(&self) -> &crate::rooms::RoomGate {
        &self.rooms
    }

    /// Recalls a message: by the server API at any time, by its sender within the app's
    /// recall window, by a group's owner and admins at any time (`lifecycle::recall`).
    pub async fn recall(&self, app: &App, actor: &Actor, msg_id: &MsgId) -> Result<Message, DeliveryError> {
        crate::lifecycle::recall(self, app, actor, msg_id).await
    }

    /// History of a conversation in seq order. Users see only conversations they are in,
    /// and in groups only what was sent after they joined.
    pub async fn history(
        &self,
        app: &App,
        actor: &Actor,
        conversation: &ConversationId,
        range: SeqRange,
        limit: u32,
    ) -> Result<Vec<Message>, DeliveryError> {
        let limit = clamp_limit(limit);
        let mut range = match range {
            SeqRange::After(n) if n < 0 => {
                return Err(DeliveryError::InvalidArgument("after_seq must be 0 or more".into()))
            }
            SeqRange::Before(n) if n < 1 => {
                return Err(DeliveryError::InvalidArgument("before_seq must be 1 or more".into()))
            }
            r => r,
        };
        if let Actor::User(u) = actor {
            match conversation {
                ConversationId::Group(g) => {
                    let m = self
                        .store
                        .group_member(&app.id, g, u)
                        .await?
                        .ok_or(DeliveryError::NotFound("conversation"))?;
                    if let SeqRange::After(n) = range {
                        range = SeqRange::After(n.max(m.joined_seq));
                    }
                    let mut msgs = self
                        .store
                        .visible_messages(&app.id, conversation, u, range, limit)
                        .await?;
                    msgs.retain(|msg| msg.seq > m.joined_seq);
                    crate::lifecycle::decorate(self, app, Some(u), &mut msgs).await?;
                    return Ok(msgs);
                }
                _ if !self.can_read(app, u, conversation).await? => {
                    return Err(DeliveryError::NotFound("conversation"))
                }
                _ => {
                    // Without what the user deleted for themselves. A conversation they
                    // can read exists, even if everything in it is deleted for them.
                    let mut msgs = self
                        .store
                        .visible_messages(&app.id, conversation, u, range, limit)
                        .await?;
                    if msgs.is_empty()
                        && self
                            .store
                            .messages(&app.id, conversation, SeqRange::After(0), 1)
                            .await?
                            .is_empty()
                    {
                        return Err(DeliveryError::NotFound("conversation"));
                    }
                    crate::lifecycle::decorate(self, app, Some(u), &mut msgs).await?;
                    return Ok(msgs);
                }
            }
        }
        let mut msgs = self.store.messages(&app.id, conversation, range, limit).await?;
        if msgs.is_empty()
            && self
                .store
                .messages(&app.id, conversation, SeqRange::After(0), 1)
                .await?
                .is_empty()
        {
            // A conversation without a single message does not exist (in this app).
            return Err(DeliveryError::NotFound("conversation"));
        }
        crate::lifecycle::decorate(self, app, None, &mut msgs).await?;
        Ok(msgs)
    }

    /// Marks `conversation` read by `user` up to `seq`, and tells the other side (direct
    /// chats) and the user's other devices.
    pub async fn mark_read(
        &self,
        app: &App,
        user: &UserId,
        conversation: &ConversationId,
        seq: i64,
    ) -> Result<ConversationEntry, DeliveryError> {
        if seq < 0 {
            return Err(DeliveryError::InvalidArgument("seq must be 0 or more".into()));
        }
        // In a group, the senders of what this read covers get a receipt (see below).
        let read_before = match conversation {
            ConversationId::Group(_) => self
                .store
                .conversation(&app.id, user, conversation)
                .await?
                .map(|e| e.read_seq),
            _ => None,
        };
        let entry = self
            .store
            .mark_read(&app.id, user, conversation, seq)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound(_) => DeliveryError::NotFound("conversation"),
                e => e.into(),
            })?;
        let mut users = vec![user.clone()];
        if let Some(peer) = conversation.peer_of(user) {
            if peer != user {
                users.push(peer.clone());
            }
        }
        let push = Push::Receipt {
            conversation_id: conversation.clone(),
            user_id: user.clone(),
            read_seq: entry.read_seq,
        };
        self.publish_to_users(app, &users, push).await;
        if let (ConversationId::Group(g), Some(before)) = (conversation, read_before) {
            if entry.read_seq > before {
                crate::groups::tell_senders(self, app, user, g, before, entry.read_seq).await;
            }
        }
        Ok(entry)
    }

    /// Typing indicators: ephemeral, never stored.
    pub async fn typing(&self, app: &App, user: &UserId, conversation: &ConversationId) -> Result<(), DeliveryError> {
        if !self.can_read(app, user, conversation).await? {
            return Err(DeliveryError::NotFound("conversation"));
        }
        let push = Push::Typing {
            conversation_id: conversation.clone(),
            user_id: user.clone(),
        };
        match conversation {
            ConversationId::Direct(..) => {
                if let Some(peer) = conversation.peer_of(user) {
                    self.publish_to_users(app, std::slice::from_ref(peer), push).await;
                }
            }
            ConversationId::Group(g) => {
                let group = self.group_snapshot(app, g).await?;
                let others: Vec<UserId> = group.ids().iter().filter(|m| *m != user).cloned().collect();
                self.publish_to_users(app, &others, push).await;
            }
            ConversationId::Room(_) | ConversationId::System(_) => {}
        }
        Ok(())
    }

    /// Closes every session of `user` with a `kicked` push carrying `code` and `reason`.
    pub async fn kick(&self, app: &App, user: &UserId, code: &str, reason: &str) {
        let push = Push::Kick {
            code: code.to_owned(),
            reason: reason.to_owned(),
        };
        self.publish_to_users(app, std::slice::from_ref(user), push).await;
    }

    /// Whether `user` takes part in `conversation`.
    pub async fn can_read(
        &self,
        app: &App,
        user: &UserId,
        conversation: &ConversationId,
    ) -> Result<bool, DeliveryError> {
        Ok(match conversation {
            ConversationId::Direct(a, b) => a == user || b == user,
            ConversationId::System(u) => u == user,
            ConversationId::Group(g) => self.store.group_member(&app.id, g, user).await?.is_some(),
            // Room membership is a live connection; the gateway checks it.
            ConversationId::Room(_) => true,
        })
    }

    /// Publishes `push` to every node holding a session of any of `users`, one event per node.
    pub async fn publish_to_users(&self, app: &App, users: &[UserId], push: Push) {
        let nodes: HashMap<String, Vec<UserId>> = match self.presence.nodes_of(&app.id, users).await {
            Ok(n) => n,
            Err(e) => {
                // The message is stored; clients will pull it on their next sync.
                tracing::warn!(error = %e, "presence lookup failed; delivery left to sync");
                return;
            }
        };
        for (node, users) in nodes {
            let ev = BusEvent {
                app_id: app.id.clone(),
                target: Target::Users { users },
                push: push.clone(),
            };
            if let Err(e) = self.bus.publish(&node, ev).await {
                tracing::warn!(error = %e, node, "bus publish failed; delivery left to sync");
            }
        }
    }

    pub(super) async fn fan_out(&self, app: &App, to: &Recipient, push: Push) {
        match to {
            Recipient::User(_) => {
                let users: Vec<UserId> = match &push {
                    Push::Message { message } | Push::KeptNotification { message } => participants_of(message),
                    _ => Vec::new(),
                };
                self.publish_to_users(app, &users, push).await;
            }
            // Read after the commit: a member removed before it no longer receives.
            Recipient::Group(g) => match self.group_snapshot(app, g).await {
                Ok(group) => self.publish_to_users(app, group.ids(), push).await,
                Err(e) => tracing::warn!(error = %e, "group members lookup failed; delivery left to sync"),
            },
            Recipient::Room(r) => match self.presence.room_nodes(&app.id, r).await {
                Ok(nodes) => {
                    for node in nodes {
                        let ev = BusEvent {
                            app_id: app.id.clone(),
                            target: Target::Room { room: r.clone() },
                            push: push.clone(),
                        };
                        if let Err(e) = self.bus.publish(&node, ev).await {
                            tracing::warn!(error = %e, node, "bus publish failed for room");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "room lookup failed"),
            },
        }
    }

    // ---- message lifecycle ----
    /// Publishes `push` to whoever holds `conversation`: both sides of a direct chat, the user
    /// of a system conversation, a group's members, a room's connections.
    pub async fn publish_to_conversation(&self, app: &App, conversation: &ConversationId, push: Push) {
        match conversation {
            ConversationId::Direct(a, b) => {
                let users = if a == b {
                    vec![a.clone()]
                } else {
                    vec![a.clone(), b.clone()]
                };
                self.publish_to_users(app, &users, push).await;
            }
            ConversationId::System(u) => self.publish_to_users(app, std::slice::from_ref(u), push).await,
            ConversationId::Group(g) => self.fan_out(app, &Recipient::Group(g.clone()), push).await,
            ConversationId::Room(r) => self.fan_out(app, &Recipient::Room(r.clone()), push).await,
        }
    }

    /// Refuses a user who may not speak now: unknown, banned or muted (what a send checks).
    pub async fn check_sender(&self, app: &App, user: &UserId, now: UnixMillis) -> Result<(), DeliveryError> {
        let state = self
            .user_state(app, user)
            .await?
            .ok_or(DeliveryError::NotFound("user"))?;
        if state.banned_until.is_some_and(|t| t > now) {
            return Err(DeliveryError::SenderBanned);
        }
        if state.is_muted_at(now) {
            return Err(DeliveryError::SenderMuted);
        }
        Ok(())
    }

    /// The before-send hook, if the app's settings select messages of this door and type.
    pub fn before_send_for(
        &self,
        app: &App,
        source: Source,
        msg_type: MessageType,
    ) -> Option<&Arc<dyn BeforeSendHook>> {
        self.hook.as_ref().filter(|_| {
            app.settings.webhook.url.is_some() && app.settings.webhook.before_send.selects(source, msg_type)
        })
    }
}

/// The users who see a direct or system message (both sides, including the sender's other devices).
fn participants_of(m: &Message) -> Vec<UserId> {
    match &m.conversation_id {
        ConversationId::Direct(a, b) if a == b => vec![a.clone()],
        ConversationId::Direct(a, b) => vec![a.clone(), b.clone()],
        ConversationId::System(u) => vec![u.clone()],
        _ => Vec::new(),
    }
}

pub fn clamp_limit(limit: u32) -> u32 {
    if limit == 0 {
        DEFAULT_PAGE
    } else {
        limit.min(MAX_PAGE)
    }
}
