//! `Ctx`: what an operation of a feature (groups, rooms, friends, lifecycle, broadcasts)
//! needs besides its own rules — the ports (store, bus, presence, rate limits), the caches
//! every node shares between the send path and the features (group members, room gate),
//! and the ways to tell others: live devices (`publish_*`), other nodes (`announce`) and
//! the webhook worker (`outbox_written`, `emit`).
//!
//! It sits below the pipeline: `delivery::Pipeline` holds one and derefs to it, so a
//! feature takes `&Ctx` and is called with `&Pipeline` unchanged, yet cannot reach the send
//! path (writer, before-send hook, word filter, user cache). Only the operations that run a
//! send's checks again (editing a message, starting a broadcast) take the whole `Pipeline`.
//! Nothing here imports a feature, and `delivery` imports no feature either: the checks a
//! send asks of a feature's rules are in `rules`.

pub mod block_cache;
pub mod group_cache;
pub mod push_gate;
pub mod room_gate;

use std::collections::HashMap;
use std::sync::Arc;

use crate::bus::{Bus, BusEvent, Invalidation, Push, Target};
use crate::domain::*;
use crate::error::DeliveryError;
use crate::ids::*;
use crate::presence::Presence;
use crate::rate_limits::{LocalRateLimits, RateLimits};
use crate::store::Store;
use crate::webhook;

use block_cache::{BlockCache, Blocked};
use group_cache::{GroupSnapshot, MemberCache};
use push_gate::PushGate;
use room_gate::RoomGate;

/// App changes a slow listener may fall behind by before it hears `Lagged`.
const APP_CHANGES: usize = 256;

/// The ports and shared caches of the features. One per process, inside the `Pipeline`.
pub struct Ctx {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    presence: Arc<dyn Presence>,
    /// Every rate budget of the node (rooms here; the doors' through `rate_limits()`).
    rate_limits: Arc<dyn RateLimits>,
    /// Poked after a commit that wrote webhook events, so the worker sends them at once.
    outbox_wake: Option<Arc<tokio::sync::Notify>>,
    /// Poked after a commit that wrote to the push outbox, so the push worker looks at once.
    push_wake: Option<Arc<tokio::sync::Notify>>,
    /// Which apps have push credentials: only their messages go to the push outbox.
    push_gate: PushGate,
    /// Each group's members, for checks and fan-out without reading them per message.
    groups: MemberCache,
    /// Whom each user blocks, for the direct-message check without a read per message.
    blocks: BlockCache,
    /// Rooms: what a room send must pass (the room exists, the sender is not muted in it,
    /// the room's send rate).
    rooms: RoomGate,
    /// Apps whose settings or status changed (heard from the bus, this node's changes
    /// included), for the caches outside `platform` that hold apps: the gateway's.
    app_changes: tokio::sync::broadcast::Sender<crate::ids::AppKey>,
    /// This node's usage counters (messages, API calls, connections per app per hour).
    usage: Arc<crate::usage::UsageMeter>,
}

impl Ctx {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, presence: Arc<dyn Presence>) -> Self {
        Self {
            store,
            bus,
            presence,
            rate_limits: Arc::new(LocalRateLimits::new()),
            outbox_wake: None,
            push_wake: None,
            push_gate: PushGate::default(),
            groups: MemberCache::default(),
            blocks: BlockCache::default(),
            rooms: RoomGate::default(),
            app_changes: tokio::sync::broadcast::channel(APP_CHANGES).0,
            usage: Arc::default(),
        }
    }

    /// This node's usage counters, written to the store by the engine every few seconds.
    pub fn usage(&self) -> &Arc<crate::usage::UsageMeter> {
        &self.usage
    }

    /// Tells of every app whose settings or status changed from now on. A receiver that
    /// falls more than a few hundred changes behind hears `Lagged` and must treat every app
    /// as changed.
    pub fn app_changes(&self) -> tokio::sync::broadcast::Receiver<crate::ids::AppKey> {
        self.app_changes.subscribe()
    }

    pub(crate) fn set_outbox_wake(&mut self, wake: Arc<tokio::sync::Notify>) {
        self.outbox_wake = Some(wake);
    }

    pub(crate) fn set_push_wake(&mut self, wake: Arc<tokio::sync::Notify>) {
        self.push_wake = Some(wake);
    }

    pub(crate) fn set_rate_limits(&mut self, limits: Arc<dyn RateLimits>) {
        self.rate_limits = limits;
    }

    /// Drops this node's copy of a group or a room that `invalidation` names.
    pub(crate) fn drop_cached(&self, invalidation: &Invalidation) {
        match invalidation {
            Invalidation::Group { app_id, group } => self.groups.forget(app_id, group),
            Invalidation::Room { app_id, room } => self.rooms.forget(app_id, room),
            Invalidation::App { app_key } => {
                self.push_gate.forget(app_key);
                // Nobody listening (no gateway on this node) is not an error.
                let _ = self.app_changes.send(app_key.clone());
            }
            Invalidation::User { app_id, user } => self.blocks.forget(app_id, user),
            Invalidation::Words { .. } => {}
        }
    }

    /// Whether `user` blocks `other`: from the block cache when it knows, else the store.
    pub async fn blocks_user(&self, app: &AppId, user: &UserId, other: &UserId) -> Result<bool, DeliveryError> {
        let known = match self.blocks.get(app, user) {
            Some(known) => known,
            None => {
                let page = self.store.blocks(app, user, None, block_cache::FEW as u32 + 1).await?;
                let known = Blocked::from_page(page.into_iter().map(|b| b.blocked_id).collect());
                self.blocks.put(app, user, known.clone());
                known
            }
        };
        match known.blocks(other) {
            Some(answer) => Ok(answer),
            None => Ok(self.store.blocks_user(app, user, other).await?),
        }
    }

    /// Drops what this node and every other remember of whom `user` blocks, after a block
    /// or an unblock.
    pub fn forget_blocks(&self, app: &AppId, user: &UserId) {
        self.blocks.forget(app, user);
        self.announce(Invalidation::User {
            app_id: app.clone(),
            user: user.clone(),
        });
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

    /// Wakes the webhook worker after a change wrote events to the outbox (`any`), so they go
    /// out now rather than at the worker's next poll.
    pub fn outbox_written(&self, any: bool) {
        if let (true, Some(w)) = (any, &self.outbox_wake) {
            w.notify_one();
        }
    }

    /// Whether the app's messages go to the push outbox: only if it has credentials for some
    /// provider (the worker makes no job otherwise). Read from the store at most every few
    /// seconds per app; a store that cannot answer counts as yes, and the worker decides.
    pub async fn pushes_for(&self, app: &App) -> bool {
        if let Some(configured) = self.push_gate.get(&app.app_key) {
            return configured;
        }
        match self.store.push_credentials(&app.id).await {
            Ok(credentials) => {
                let configured = !credentials.is_empty();
                self.push_gate.put(&app.app_key, configured);
                configured
            }
            Err(e) => {
                tracing::warn!(app = %app.id, error = %e, "could not read the app's push credentials");
                true
            }
        }
    }

    /// Forgets here, and tells every node to forget, whether the app has push credentials
    /// (and its other cached state): they were just set or removed.
    pub fn push_credentials_changed(&self, app: &App) {
        self.push_gate.forget(&app.app_key);
        self.announce(Invalidation::App {
            app_key: app.app_key.clone(),
        });
    }

    /// Wakes the push worker after a commit wrote messages to the push outbox (`any`).
    pub fn push_written(&self, any: bool) {
        if let (true, Some(w)) = (any, &self.push_wake) {
            w.notify_one();
        }
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

    pub fn room_gate(&self) -> &RoomGate {
        &self.rooms
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
            ConversationId::Group(g) => self.publish_to_group(app, g, push).await,
            ConversationId::Room(r) => self.publish_to_room(app, r, push).await,
        }
    }

    /// Publishes `push` to a group's members as they are after the last commit (a member
    /// removed before it no longer receives).
    pub async fn publish_to_group(&self, app: &App, group: &GroupId, push: Push) {
        match self.group_snapshot(app, group).await {
            Ok(group) => self.publish_to_users(app, group.ids(), push).await,
            Err(e) => tracing::warn!(error = %e, "group members lookup failed; delivery left to sync"),
        }
    }

    /// Publishes `push` to a room's connections: one event per node holding any of them.
    pub async fn publish_to_room(&self, app: &App, room: &RoomId, push: Push) {
        match self.presence.room_nodes(&app.id, room).await {
            Ok(nodes) => {
                for node in nodes {
                    let ev = BusEvent {
                        app_id: app.id.clone(),
                        target: Target::Room { room: room.clone() },
                        push: push.clone(),
                    };
                    if let Err(e) = self.bus.publish(&node, ev).await {
                        tracing::warn!(error = %e, node, "bus publish failed for room");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "room lookup failed"),
        }
    }
}
