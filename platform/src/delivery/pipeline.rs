//! `Pipeline`: the send path's own parts on top of the features' `Ctx`, and the types a
//! send is described with. The send path's stages are in `send`.

use std::sync::Arc;

use super::hook::BeforeSendHook;
use super::moderation::WordFilter;
use super::user_cache::{UserCache, UserState};
use super::writer::Writer;
use super::DeliveryError;
use crate::bus::{Bus, Invalidation, Push};
use crate::context::Ctx;
use crate::domain::*;
use crate::ids::*;
use crate::presence::Presence;
use crate::rate_limits::RateLimits;
use crate::store::Store;

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

/// The send path: the features' context (`Ctx`: ports, shared caches, publishing) plus what
/// only a send needs — the batching writer, the before-send hook, the word filter and the
/// user cache. One per process; cheap to share in an `Arc`. Derefs to its `Ctx`, so a
/// feature that takes `&Ctx` is called with `&Pipeline`.
pub struct Pipeline {
    cx: Ctx,
    pub(super) writer: Writer,
    pub(super) hook: Option<Arc<dyn BeforeSendHook>>,
    /// Whether senders and recipients exist and are banned or muted, for a few seconds.
    users: UserCache,
    /// The apps' sensitive-word lists, compiled and cached.
    pub(super) words: WordFilter,
}

impl std::ops::Deref for Pipeline {
    type Target = Ctx;

    fn deref(&self) -> &Ctx {
        &self.cx
    }
}

impl Pipeline {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, presence: Arc<dyn Presence>, config: PipelineConfig) -> Self {
        let writer = Writer::start(store.clone(), config.writer_tasks, config.max_batch);
        Self {
            words: WordFilter::new(store.clone()),
            cx: Ctx::new(store, bus, presence),
            writer,
            hook: None,
            users: UserCache::default(),
        }
    }

    /// The features' part of the pipeline.
    pub fn context(&self) -> &Ctx {
        &self.cx
    }

    /// Whether `user` exists, and their ban, from a cache of a few seconds (`None`: no such user).
    pub(super) async fn user_state(&self, app: &App, user: &UserId) -> Result<Option<UserState>, DeliveryError> {
        if let Some(s) = self.users.get(&app.id, user) {
            return Ok(Some(s));
        }
        let Some(u) = self.store().user(&app.id, user).await? else {
            return Ok(None);
        };
        let state = UserState {
            banned_until: u.banned_until,
            muted_until: u.muted_until,
        };
        self.users.put(&app.id, user, state);
        Ok(Some(state))
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

    /// Drops this node's copy of what `invalidation` names (heard from the bus; the app's
    /// credentials are the engine's, see `Engine`; an app change is passed on to
    /// `Ctx::app_changes`).
    pub fn drop_cached(&self, invalidation: &Invalidation) {
        match invalidation {
            Invalidation::App { .. } => self.cx.drop_cached(invalidation),
            Invalidation::User { app_id, user } => {
                self.users.forget(app_id, user);
                self.cx.drop_cached(invalidation);
            }
            Invalidation::Group { .. } | Invalidation::Room { .. } => self.cx.drop_cached(invalidation),
            Invalidation::Words { app_id } => self.words.forget(app_id),
        }
    }

    pub fn with_outbox_wake(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.cx.set_outbox_wake(wake);
        self
    }

    pub fn with_push_wake(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.cx.set_push_wake(wake);
        self
    }

    pub fn with_before_send(mut self, hook: Arc<dyn BeforeSendHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Replaces the in-process rate limits (with a node-spanning adapter).
    pub fn with_rate_limits(mut self, limits: Arc<dyn RateLimits>) -> Self {
        self.cx.set_rate_limits(limits);
        self
    }

    pub fn word_filter(&self) -> &WordFilter {
        &self.words
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
            Recipient::Group(g) => self.publish_to_group(app, g, push).await,
            Recipient::Room(r) => self.publish_to_room(app, r, push).await,
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
