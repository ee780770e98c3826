//! One gateway node: the sessions it holds, and the routing of bus events to them.
//!
//! The pipeline publishes each delivery to the nodes that hold its recipients (via
//! `Presence`); this node receives them on its bus subscription and hands each to the local
//! sessions of the named users (room events go to `crate::rooms`). Hand-off is a push into the
//! session's bounded queue: a session that cannot keep up is closed as a slow consumer
//! rather than allowed to grow memory or hold up everyone else. A pushed frame is built
//! once per event and encoded once per encoding, whatever the number of sessions.
//!
//! The node also keeps, for all its sessions at once, what each would otherwise need a
//! timer or a copy for: one heartbeat sweep closes silent connections, the app cache
//! shares one `App` among an app's sessions, and a user's send budget (in the engine's
//! `RateLimits`) is dropped when their last session here closes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tern_platform::bus::{BusError, BusEvent, Push, Target};
use tern_platform::delivery::Pipeline;
use tern_platform::ids::{AppId, UserId};
use tern_platform::presence::SessionRef;
use tern_platform::proto::v1 as pb;
use tern_platform::rate_limits::RateKey;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::apps::AppCache;
use crate::auth::SessionAuthenticator;
use crate::close::{codes, Closing};
use crate::codec::SharedFrame;
use crate::config::GatewayConfig;
use crate::convert;
use crate::outbound::{Outbound, Pushed};

pub type GatewayState = Arc<Gateway>;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("could not subscribe to the bus: {0}")]
    Bus(#[from] BusError),
}

/// Which device class a session counts against for the multi-device policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DeviceClass {
    /// Each of these is its own class, limited by `max_sessions_mobile`.
    Native(i32),
    /// Browsers, limited by `max_sessions_web`.
    Web,
}

impl DeviceClass {
    /// The class's name in shared presence, where nodes compare classes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DeviceClass::Web => "web",
            DeviceClass::Native(p) => match pb::Platform::try_from(p) {
                Ok(pb::Platform::Ios) => "ios",
                Ok(pb::Platform::Android) => "android",
                Ok(pb::Platform::Desktop) => "desktop",
                Ok(pb::Platform::Web) => "web",
                _ => "other",
            },
        }
    }
}

/// What routing needs of a session (its app and user are the keys that lead to it).
pub(crate) struct SessionHandle {
    pub class: DeviceClass,
    pub out: Arc<Outbound>,
    /// The device id it logged in with, to write its presence entry again
    /// (`Presence::reannounce`).
    pub device: Arc<str>,
}

type UserKey = (AppId, UserId);

/// A user's presence on this node.
struct UserSessions {
    /// Oldest first (the multi-device policy closes the oldest).
    ids: Vec<u64>,
}

#[derive(Default)]
struct Registry {
    sessions: HashMap<u64, SessionHandle>,
    /// By app, then user: routing looks users up by reference, without building keys.
    users: HashMap<AppId, HashMap<UserId, UserSessions>>,
    /// Watched user → the sessions subscribed to their presence.
    watchers: HashMap<UserKey, HashSet<u64>>,
}

pub struct Gateway {
    pub(crate) config: GatewayConfig,
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) auth: Arc<dyn SessionAuthenticator>,
    registry: Mutex<Registry>,
    /// This node's room members (`crate::rooms`).
    pub(crate) rooms: crate::rooms::LocalRooms,
    /// Caps connections; `drain` waits until every permit is back.
    pub(crate) connections: Arc<Semaphore>,
    next_session: AtomicU64,
    pub(crate) shutdown: CancellationToken,
    pub(crate) apps: AppCache,
    /// The origin of `clock_ms`.
    started: Instant,
    /// Uploads and downloads, once the node hands them over (`use_files`); without them the
    /// files commands answer `unavailable`.
    pub(crate) files: OnceLock<Arc<tern_platform::files::Files>>,
    /// The options of `permessage-deflate` connections (one deflate pool for the node);
    /// `None` when the node does not compress (`GatewayConfig::deflate`).
    pub(crate) deflate: Option<yawc::Options>,
}

impl Gateway {
    /// Lets sessions announce uploads and ask for download URLs (client.proto 120-129).
    /// The first call wins.
    pub fn use_files(&self, files: Arc<tern_platform::files::Files>) {
        let _ = self.files.set(files);
    }

    /// Subscribes to the bus as `config.node_id` and starts routing. `shutdown` tells every
    /// session to reconnect elsewhere and stops routing.
    pub async fn start(
        config: GatewayConfig,
        pipeline: Arc<Pipeline>,
        auth: Arc<dyn SessionAuthenticator>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, GatewayError> {
        let mut rx = pipeline.bus().subscribe(&config.node_id).await?;
        let deflate = config.deflate.then(|| crate::deflate::options(&config));
        let gw = Arc::new(Self {
            deflate,
            connections: Arc::new(Semaphore::new(config.max_connections)),
            apps: AppCache::new(pipeline.clone(), config.app_refresh),
            config,
            pipeline,
            auth,
            registry: Mutex::new(Registry::default()),
            rooms: Default::default(),
            next_session: AtomicU64::new(1),
            shutdown,
            started: Instant::now(),
            files: OnceLock::new(),
        });
        let listener = gw.clone();
        let mut changes = gw.pipeline.app_changes();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                tokio::select! {
                    _ = listener.shutdown.cancelled() => break,
                    change = changes.recv() => match change {
                        Ok(app_key) => listener.apps.changed(&app_key),
                        Err(RecvError::Lagged(_)) => listener.apps.all_changed(),
                        Err(RecvError::Closed) => break,
                    },
                }
            }
        });
        if let Some(mut asked) = gw.pipeline.presence().reannounce() {
            let writer = gw.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = writer.shutdown.cancelled() => break,
                        changed = asked.changed() => match changed {
                            Ok(()) => writer.reannounce().await,
                            Err(_) => break,
                        },
                    }
                }
            });
        }
        let sweeper = gw.clone();
        tokio::spawn(async move {
            let every = (sweeper.config.heartbeat_interval / 4).max(Duration::from_millis(10));
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = sweeper.shutdown.cancelled() => break,
                    _ = tick.tick() => sweeper.close_silent(),
                }
            }
        });
        let router = gw.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = router.shutdown.cancelled() => break,
                    ev = rx.recv() => match ev {
                        Some(ev) => router.route(ev),
                        None => break,
                    },
                }
            }
        });
        Ok(gw)
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Sessions open on this node now.
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Connections holding a place under the cap now (WebSockets and gRPC streams alike,
    /// authenticated or not).
    pub fn connection_count(&self) -> usize {
        self.config
            .max_connections
            .saturating_sub(self.connections.available_permits())
    }

    /// Waits until every connection has closed (after `shutdown` is cancelled, they all do).
    pub async fn drain(&self) {
        let all = u32::try_from(self.config.max_connections).unwrap_or(u32::MAX);
        // Acquiring every permit means no connection holds one; the permits are then
        // released again when this guard drops.
        let _all = self.connections.acquire_many(all).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // Every registry operation leaves the maps consistent, so a poisoned lock is usable.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn new_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Milliseconds since this gateway started: the clock of heartbeats and typing limits.
    pub(crate) fn clock_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Closes every session that has sent nothing for twice the heartbeat interval.
    fn close_silent(&self) {
        let limit = u64::try_from((self.config.heartbeat_interval * 2).as_millis()).unwrap_or(u64::MAX);
        let now = self.clock_ms();
        let reg = self.lock();
        for h in reg.sessions.values() {
            if now.saturating_sub(h.out.last_heard_ms()) > limit && !h.out.is_closing() {
                h.out.close(Closing::error(
                    codes::HEARTBEAT_TIMEOUT,
                    "heartbeat_timeout",
                    "nothing heard from the client for twice the heartbeat interval",
                ));
            }
        }
    }

    /// Writes every session and room membership of this node to presence again, after
    /// presence said they may be lost (Redis came back after an outage). Sessions that
    /// close meanwhile are written and then removed by their own close, as usual.
    async fn reannounce(&self) {
        let sessions: Vec<(AppId, UserId, u64, Arc<str>, DeviceClass)> = {
            let reg = self.lock();
            reg.users
                .iter()
                .flat_map(|(app, users)| {
                    users
                        .iter()
                        .flat_map(move |(user, s)| s.ids.iter().map(move |id| (app, user, *id)))
                })
                .filter_map(|(app, user, id)| {
                    reg.sessions
                        .get(&id)
                        .map(|h| (app.clone(), user.clone(), id, h.device.clone(), h.class))
                })
                .collect()
        };
        let rooms = self.rooms.memberships();
        let presence = self.pipeline.presence();
        let node = self.config.node_id.as_str();
        let mut failed = 0usize;
        for (app, user, id, device, class) in &sessions {
            if presence
                .session_opened(app, user, node, *id, device, class.name())
                .await
                .is_err()
            {
                failed += 1;
            }
        }
        for (app, room, user, id) in &rooms {
            if presence.room_joined(app, room, user, node, *id).await.is_err() {
                failed += 1;
            }
        }
        tracing::info!(
            sessions = sessions.len(),
            room_memberships = rooms.len(),
            failed,
            "this node's presence entries written again"
        );
    }

    /// Registers a session. The multi-device policy is applied once presence has answered
    /// (`replace_oldest`), or on this node alone when it could not (`limit_here`).
    pub(crate) fn register(&self, id: u64, app: &AppId, user: &UserId, handle: SessionHandle) {
        let mut reg = self.lock();
        reg.users
            .entry(app.clone())
            .or_default()
            .entry(user.clone())
            .or_insert_with(|| UserSessions { ids: Vec::new() })
            .ids
            .push(id);
        reg.sessions.insert(id, handle);
        metrics::gauge!("tern_gateway_sessions").set(reg.sessions.len() as f64);
        self.pipeline.usage().connection(app, 1);
    }

    /// The multi-device policy across nodes: `older` are the user's other sessions of the
    /// new session's class, oldest first, wherever they are (`Opened::same_class`); those
    /// beyond `limit` are closed with `session_replaced`, here directly, on other nodes
    /// through the bus.
    pub(crate) async fn replace_oldest(&self, app: &AppId, user: &UserId, older: &[SessionRef], limit: usize) {
        let excess = (older.len() + 1).saturating_sub(limit.max(1));
        if excess == 0 {
            return;
        }
        let mut remote: HashMap<&str, Vec<u64>> = HashMap::new();
        {
            let reg = self.lock();
            for r in &older[..excess] {
                if r.node == self.config.node_id {
                    if let Some(h) = reg.sessions.get(&r.session) {
                        h.out.close(replaced());
                    }
                } else {
                    remote.entry(r.node.as_str()).or_default().push(r.session);
                }
            }
        }
        for (node, sessions) in remote {
            let ev = BusEvent {
                app_id: app.clone(),
                target: Target::Users {
                    users: vec![user.clone()],
                },
                push: Push::Replaced { sessions },
            };
            if let Err(e) = self.pipeline.bus().publish(node, ev).await {
                tracing::warn!(error = %e, node, "could not ask a node to close a replaced session");
            }
        }
    }

    /// The multi-device policy on this node alone (shared presence did not answer): closes
    /// the user's oldest sessions here of `id`'s class beyond `limit`.
    pub(crate) fn limit_here(&self, id: u64, app: &AppId, user: &UserId, limit: usize) {
        let reg = self.lock();
        let Some(class) = reg.sessions.get(&id).map(|h| h.class) else {
            return;
        };
        let same_class: Vec<u64> = reg
            .users
            .get(app)
            .and_then(|users| users.get(user))
            .map(|u| {
                u.ids
                    .iter()
                    .copied()
                    .filter(|s| *s != id && reg.sessions.get(s).is_some_and(|h| h.class == class))
                    .collect()
            })
            .unwrap_or_default();
        let excess = (same_class.len() + 1).saturating_sub(limit.max(1));
        for old in same_class.iter().take(excess) {
            if let Some(h) = reg.sessions.get(old) {
                h.out.close(replaced());
            }
        }
    }

    /// Removes a session and its presence subscriptions (its rooms: `LocalRooms::leave_all`).
    pub(crate) fn unregister(&self, id: u64, app: &AppId, user: &UserId, watching: &HashSet<UserId>) {
        let mut reg = self.lock();
        if reg.sessions.remove(&id).is_none() {
            return;
        }
        self.pipeline.usage().connection(app, -1);
        if let Some(users) = reg.users.get_mut(app) {
            if let Some(u) = users.get_mut(user) {
                u.ids.retain(|s| *s != id);
                if u.ids.is_empty() {
                    users.remove(user);
                    // The user's send budget lives as long as their sessions here.
                    self.pipeline
                        .rate_limits()
                        .forget(&RateKey::UserSends(app.clone(), user.clone()));
                }
            }
            if users.is_empty() {
                reg.users.remove(app);
            }
        }
        for u in watching {
            let wk = (app.clone(), u.clone());
            if let Some(set) = reg.watchers.get_mut(&wk) {
                set.remove(&id);
                if set.is_empty() {
                    reg.watchers.remove(&wk);
                }
            }
        }
        metrics::gauge!("tern_gateway_sessions").set(reg.sessions.len() as f64);
    }

    /// A session's outbound queue, for another part of the node (its rooms) to deliver to
    /// it; `None` once it is gone.
    pub(crate) fn session_outbox(&self, id: u64) -> Option<Arc<Outbound>> {
        self.lock().sessions.get(&id).map(|h| h.out.clone())
    }

    pub(crate) fn watch(&self, app: &AppId, users: &[UserId], id: u64, on: bool) {
        let mut reg = self.lock();
        for u in users {
            let wk = (app.clone(), u.clone());
            if on {
                reg.watchers.entry(wk).or_default().insert(id);
            } else if let Some(set) = reg.watchers.get_mut(&wk) {
                set.remove(&id);
                if set.is_empty() {
                    reg.watchers.remove(&wk);
                }
            }
        }
    }

    /// Tells the local sessions watching `user` that they came online or went offline.
    pub(crate) fn presence_changed(&self, app: &AppId, user: &UserId, online: bool, last_seen: i64) {
        let frame = Arc::new(SharedFrame::new(pb::ServerFrame {
            id: String::new(),
            body: Some(pb::server_frame::Body::Presence(pb::PresenceUpdate {
                user_id: user.to_string(),
                online,
                last_seen,
            })),
        }));
        let reg = self.lock();
        if let Some(ids) = reg.watchers.get(&(app.clone(), user.clone())) {
            for id in ids {
                self.deliver(&reg, *id, &frame);
            }
        }
    }

    /// Hands one bus event to the local sessions it targets.
    fn route(&self, ev: BusEvent) {
        let users = match &ev.target {
            Target::Users { users } => users,
            Target::Room { room } => {
                return self.rooms.route(
                    &ev.app_id,
                    room,
                    &ev.push,
                    self.config.outbound_queue.max(1),
                    self.config.room_flush_interval,
                )
            }
        };
        let reg = self.lock();
        let targets: Vec<u64> = match reg.users.get(&ev.app_id) {
            Some(here) => users
                .iter()
                .filter_map(|u| here.get(u))
                .flat_map(|u| u.ids.iter().copied())
                .collect(),
            None => Vec::new(),
        };
        if let Push::Kick { code, reason } = &ev.push {
            for id in targets {
                if let Some(h) = reg.sessions.get(&id) {
                    h.out.close(Closing::kicked(codes::KICKED, code, reason.clone()));
                }
            }
            return;
        }
        if let Push::Replaced { sessions } = &ev.push {
            for id in targets.iter().filter(|id| sessions.contains(id)) {
                if let Some(h) = reg.sessions.get(id) {
                    h.out.close(replaced());
                }
            }
            return;
        }
        let Some(frame) = convert::push_frame(&ev.push) else {
            return;
        };
        let frame = Arc::new(SharedFrame::new(frame));
        for id in targets {
            self.deliver(&reg, id, &frame);
        }
    }

    /// Queues a frame for a session; a full queue closes it as a slow consumer (a closing
    /// session drops it: it syncs on its next connection).
    fn deliver(&self, reg: &Registry, id: u64, frame: &Arc<SharedFrame>) {
        if let Some(h) = reg.sessions.get(&id) {
            offer(&h.out, frame, self.config.outbound_queue.max(1));
        }
    }
}

/// How a session replaced by a newer one of the same device class is closed.
fn replaced() -> Closing {
    Closing::kicked(
        codes::KICKED,
        "session_replaced",
        "a newer session of this user on the same kind of device logged in",
    )
}

/// Queues a frame into a session's outbound queue; a full queue closes the session as a
/// slow consumer (a closing session drops it: it syncs on its next connection).
pub(crate) fn offer(out: &Outbound, frame: &Arc<SharedFrame>, limit: usize) {
    offer_all(out, std::slice::from_ref(frame), limit);
}

/// `offer` for several frames, queued together with one wake-up.
pub(crate) fn offer_all(out: &Outbound, frames: &[Arc<SharedFrame>], limit: usize) {
    if out.push_all(frames, limit) == Pushed::Overflowed {
        metrics::counter!("tern_gateway_slow_consumers_total").increment(1);
    }
}
