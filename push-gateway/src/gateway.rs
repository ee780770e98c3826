//! One gateway node: the sessions it holds, and the routing of bus events to them.
//!
//! The pipeline publishes each delivery to the nodes that hold its recipients (via
//! `Presence`); this node receives them on its bus subscription and hands each to the local
//! sessions of the named users (room events go to `crate::rooms`). Hand-off is a
//! `try_send` into the session's bounded queue: a session that cannot keep up is closed as
//! a slow consumer rather than allowed to grow memory or hold up everyone else.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tern_platform::bus::{BusError, BusEvent, Push, Target};
use tern_platform::delivery::Pipeline;
use tern_platform::ids::{AppId, UserId};
use tern_platform::proto::v1 as pb;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::auth::SessionAuthenticator;
use crate::close::{codes, CloseSignal, Closing};
use crate::config::GatewayConfig;
use crate::convert;

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

pub(crate) struct SessionHandle {
    pub app: AppId,
    pub user: UserId,
    pub class: DeviceClass,
    pub tx: mpsc::Sender<Arc<pb::ServerFrame>>,
    pub close: Arc<CloseSignal>,
}

type UserKey = (AppId, UserId);

#[derive(Default)]
struct Registry {
    sessions: HashMap<u64, SessionHandle>,
    /// A user's sessions on this node, oldest first (the policy closes the oldest).
    users: HashMap<UserKey, Vec<u64>>,
    /// Watched user → the sessions subscribed to their presence.
    watchers: HashMap<UserKey, HashSet<u64>>,
    /// Per-user send rate, shared by all the user's sessions on this node.
    send_limits: HashMap<UserKey, Arc<DefaultDirectRateLimiter>>,
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
}

impl Gateway {
    /// Subscribes to the bus as `config.node_id` and starts routing. `shutdown` tells every
    /// session to reconnect elsewhere and stops routing.
    pub async fn start(
        config: GatewayConfig,
        pipeline: Arc<Pipeline>,
        auth: Arc<dyn SessionAuthenticator>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, GatewayError> {
        let mut rx = pipeline.bus().subscribe(&config.node_id).await?;
        let gw = Arc::new(Self {
            connections: Arc::new(Semaphore::new(config.max_connections)),
            config,
            pipeline,
            auth,
            registry: Mutex::new(Registry::default()),
            rooms: Default::default(),
            next_session: AtomicU64::new(1),
            shutdown,
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

    /// Registers a session, closing the user's oldest sessions of the same device class
    /// beyond `limit` (they get `kicked` with `session_replaced`).
    pub(crate) fn register(&self, id: u64, handle: SessionHandle, limit: usize, send_rate: u32) {
        let key = (handle.app.clone(), handle.user.clone());
        let class = handle.class;
        let mut reg = self.lock();
        let same_class: Vec<u64> = reg
            .users
            .get(&key)
            .map(|ids| {
                ids.iter()
                    .copied()
                    .filter(|s| reg.sessions.get(s).is_some_and(|h| h.class == class))
                    .collect()
            })
            .unwrap_or_default();
        let excess = (same_class.len() + 1).saturating_sub(limit.max(1));
        for old in same_class.iter().take(excess) {
            if let Some(h) = reg.sessions.get(old) {
                h.close.close(Closing::kicked(
                    codes::KICKED,
                    "session_replaced",
                    "a newer session of this user on the same kind of device logged in",
                ));
            }
        }
        reg.send_limits.entry(key.clone()).or_insert_with(|| {
            let rate = NonZeroU32::new(send_rate).unwrap_or(NonZeroU32::MIN);
            Arc::new(RateLimiter::direct(Quota::per_second(rate)))
        });
        reg.users.entry(key).or_default().push(id);
        reg.sessions.insert(id, handle);
        metrics::gauge!("tern_gateway_sessions").set(reg.sessions.len() as f64);
    }

    /// Removes a session and its presence subscriptions (its rooms: `LocalRooms::leave_all`).
    pub(crate) fn unregister(&self, id: u64, watching: &HashSet<UserId>) {
        let mut reg = self.lock();
        let Some(h) = reg.sessions.remove(&id) else {
            return;
        };
        let key = (h.app.clone(), h.user.clone());
        if let Some(ids) = reg.users.get_mut(&key) {
            ids.retain(|s| *s != id);
            if ids.is_empty() {
                reg.users.remove(&key);
                reg.send_limits.remove(&key);
            }
        }
        for u in watching {
            let wk = (h.app.clone(), u.clone());
            if let Some(set) = reg.watchers.get_mut(&wk) {
                set.remove(&id);
                if set.is_empty() {
                    reg.watchers.remove(&wk);
                }
            }
        }
        metrics::gauge!("tern_gateway_sessions").set(reg.sessions.len() as f64);
    }

    pub(crate) fn send_limiter(&self, app: &AppId, user: &UserId) -> Option<Arc<DefaultDirectRateLimiter>> {
        self.lock().send_limits.get(&(app.clone(), user.clone())).cloned()
    }

    /// Where a session's frames go and how to close it, for another part of the node (its
    /// rooms) to deliver to it; `None` once it is gone.
    pub(crate) fn session_outbox(&self, id: u64) -> Option<(mpsc::Sender<Arc<pb::ServerFrame>>, Arc<CloseSignal>)> {
        self.lock().sessions.get(&id).map(|h| (h.tx.clone(), h.close.clone()))
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
        let frame = Arc::new(pb::ServerFrame {
            id: String::new(),
            body: Some(pb::server_frame::Body::Presence(pb::PresenceUpdate {
                user_id: user.to_string(),
                online,
                last_seen,
            })),
        });
        let reg = self.lock();
        if let Some(ids) = reg.watchers.get(&(app.clone(), user.clone())) {
            for id in ids {
                deliver(&reg, *id, &frame);
            }
        }
    }

    /// Hands one bus event to the local sessions it targets.
    fn route(&self, ev: BusEvent) {
        let users = match &ev.target {
            Target::Users { users } => users,
            Target::Room { room } => return self.rooms.route(&ev.app_id, room, &ev.push),
        };
        let reg = self.lock();
        let targets: Vec<u64> = users
            .iter()
            .filter_map(|u| reg.users.get(&(ev.app_id.clone(), u.clone())))
            .flatten()
            .copied()
            .collect();
        if let Push::Kick { code, reason } = &ev.push {
            for id in targets {
                if let Some(h) = reg.sessions.get(&id) {
                    h.close.close(Closing::kicked(codes::KICKED, code, reason.clone()));
                }
            }
            return;
        }
        let Some(frame) = convert::push_frame(&ev.push) else {
            return;
        };
        let frame = Arc::new(frame);
        for id in targets {
            deliver(&reg, id, &frame);
        }
    }
}

/// Queues a frame for a session; a full queue closes it as a slow consumer.
fn deliver(reg: &Registry, id: u64, frame: &Arc<pb::ServerFrame>) {
    if let Some(h) = reg.sessions.get(&id) {
        offer(&h.tx, &h.close, frame);
    }
}

/// Queues a frame into a session's outbound queue; a full queue closes the session as a
/// slow consumer.
pub(crate) fn offer(tx: &mpsc::Sender<Arc<pb::ServerFrame>>, close: &CloseSignal, frame: &Arc<pb::ServerFrame>) {
    match tx.try_send(frame.clone()) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            metrics::counter!("tern_gateway_slow_consumers_total").increment(1);
            close.close(Closing::error(
                codes::SLOW_CONSUMER,
                "slow_consumer",
                "the connection did not read its frames fast enough; reconnect and sync",
            ));
        }
        // The session is closing; it will sync on its next connection.
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}
