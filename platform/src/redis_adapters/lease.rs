//! Node liveness: each node renews a lease in `P:nodes` every 3 s; a node whose lease is
//! 10 s old is dead to the others, which stop routing to it and remove its sessions and
//! room members (one of them does, under a short lock).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::redis::aio::ConnectionManager;
use ::redis::RedisResult;
use tokio_util::sync::CancellationToken;

use super::presence::RedisPresence;
use super::Keys;
use crate::domain::now_ms;

/// How long a lease lasts without renewal, ms.
pub const LEASE_MS: i64 = 10_000;
/// How often a node renews its lease and looks for dead nodes.
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// How long the set of live nodes is reused before it is read again.
const LIVE_FOR: Duration = Duration::from_secs(1);

/// The nodes whose lease has not run out, read from Redis at most once a second. While
/// Redis cannot be read, the last set read is kept: a blip does not make every node dead.
pub struct LiveNodes {
    conn: ConnectionManager,
    keys: Keys,
    cached: Mutex<Option<(Instant, Arc<HashSet<String>>)>>,
}

impl LiveNodes {
    pub(crate) fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self {
            conn,
            keys,
            cached: Mutex::new(None),
        }
    }

    /// Extends `node`'s lease by `LEASE_MS` from now.
    pub async fn renew(&self, node: &str) -> RedisResult<()> {
        let mut c = self.conn.clone();
        ::redis::cmd("ZADD")
            .arg(self.keys.nodes())
            .arg(now_ms() + LEASE_MS)
            .arg(node)
            .query_async::<()>(&mut c)
            .await
    }

    /// The live nodes now (cached for a second).
    pub async fn get(&self) -> Arc<HashSet<String>> {
        let stale = {
            let cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
            match &*cached {
                Some((at, set)) if at.elapsed() < LIVE_FOR => return set.clone(),
                other => other.as_ref().map(|(_, s)| s.clone()),
            }
        };
        let mut c = self.conn.clone();
        let read: RedisResult<Vec<String>> = ::redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.nodes())
            .arg(now_ms())
            .arg("+inf")
            .query_async(&mut c)
            .await;
        match read {
            Ok(nodes) => {
                let set = Arc::new(nodes.into_iter().collect::<HashSet<_>>());
                *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), set.clone()));
                set
            }
            Err(_) => stale.unwrap_or_default(),
        }
    }

    /// Nodes whose lease ran out and that nobody has removed yet.
    async fn dead(&self) -> RedisResult<Vec<String>> {
        let mut c = self.conn.clone();
        ::redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.nodes())
            .arg("-inf")
            .arg(format!("({}", now_ms()))
            .query_async(&mut c)
            .await
    }

    /// Gives up `node`'s lease at once (a clean stop), so others need not wait 10 s.
    async fn release(&self, node: &str) -> RedisResult<()> {
        let mut c = self.conn.clone();
        ::redis::cmd("ZREM")
            .arg(self.keys.nodes())
            .arg(node)
            .query_async::<()>(&mut c)
            .await
    }

    pub(crate) fn forget_cached(&self) {
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Renews the lease and reaps dead nodes until `stop`; then removes this node's entries and
/// gives up its lease. A Redis outage is logged once when it starts and once when it ends.
pub(crate) async fn run(live: Arc<LiveNodes>, presence: Arc<RedisPresence>, node: String, stop: CancellationToken) {
    let mut down = false;
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let round = async {
            live.renew(&node).await?;
            for dead in live.dead().await? {
                if dead != node {
                    presence.reap(&dead).await?;
                }
            }
            RedisResult::Ok(())
        };
        match round.await {
            Ok(()) if down => {
                down = false;
                tracing::info!(node = %node, "Redis is reachable again; node lease renewed");
            }
            Ok(()) => {}
            Err(e) if !down => {
                down = true;
                tracing::warn!(node = %node, error = %e, "Redis unreachable: cannot renew this node's lease");
            }
            Err(_) => {}
        }
    }
    if let Err(e) = presence.reap(&node).await {
        tracing::warn!(node = %node, error = %e, "could not remove this node's sessions from Redis at stop");
    }
    let _ = live.release(&node).await;
    live.forget_cached();
}
