//! Node liveness: each node renews a lease in `P:{nodes}` every 3 s; a node whose lease is
//! 10 s old is dead to the others, which stop routing to it and remove its sessions and
//! room members (one of them does, under a short lock).
//!
//! A node id belongs to one process at a time: the lease is taken with a random owner
//! token, and a second process started with the same id is refused while the first one's
//! lease runs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::redis::aio::ConnectionManager;
use ::redis::{RedisResult, Script};
use tokio_util::sync::CancellationToken;

use super::presence::RedisPresence;
use super::Keys;
use crate::domain::now_ms;

/// How long a lease lasts without renewal, ms.
pub const LEASE_MS: i64 = 10_000;
/// How often a node renews its lease and looks for dead nodes.
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// KEYS: owner, nodes. ARGV: token, lease ms, lease expiry, node. 1 if the lease is ours.
const CLAIM: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1";

/// KEYS: owner, nodes. ARGV: token, node. Gives the lease up if it is still ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1";

/// How long the set of live nodes is reused before it is read again.
const LIVE_FOR: Duration = Duration::from_secs(1);

/// The nodes whose lease has not run out, read from Redis at most once a second. While
/// Redis cannot be read, the last set read is kept: a blip does not make every node dead.
pub struct LiveNodes {
    conn: ConnectionManager,
    keys: Keys,
    /// This process's claim on its node id.
    owner: String,
    claim: Script,
    cached: Mutex<Option<(Instant, Arc<HashSet<String>>)>>,
}

impl LiveNodes {
    pub(crate) fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self {
            conn,
            keys,
            owner: ulid::Ulid::new().to_string(),
            claim: Script::new(CLAIM),
            cached: Mutex::new(None),
        }
    }

    /// Takes or extends `node`'s lease by `LEASE_MS` from now. Returns false, and changes
    /// nothing, if another process holds the id.
    pub async fn renew(&self, node: &str) -> RedisResult<bool> {
        let mut c = self.conn.clone();
        let taken: i64 = self
            .claim
            .key(self.keys.node_owner(node))
            .key(self.keys.nodes())
            .arg(&self.owner)
            .arg(LEASE_MS)
            .arg(now_ms() + LEASE_MS)
            .arg(node)
            .invoke_async(&mut c)
            .await?;
        Ok(taken == 1)
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
        Script::new(RELEASE)
            .key(self.keys.node_owner(node))
            .key(self.keys.nodes())
            .arg(&self.owner)
            .arg(node)
            .invoke_async::<i64>(&mut c)
            .await
            .map(|_| ())
    }

    pub(crate) fn forget_cached(&self) {
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Renews the lease and reaps dead nodes until `stop`; then removes this node's entries and
/// gives up its lease. A Redis outage is logged once when it starts and once when it ends.
pub(crate) async fn run(live: Arc<LiveNodes>, presence: Arc<RedisPresence>, node: String, stop: CancellationToken) {
    let mut down = false;
    // After an outage the node's entries are written again twice: at once, and one round
    // later, in case another node's reaper was still removing them when the first was made.
    let mut again = false;
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let round = async {
            if !live.renew(&node).await? {
                tracing::error!(node = %node, "another process holds this node id: this node no longer renews it");
            }
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
                again = true;
                tracing::info!(node = %node, "Redis is reachable again; node lease renewed; writing this node's sessions again");
                presence.ask_reannounce();
            }
            Ok(()) if again || presence.has_unwritten() => {
                again = false;
                presence.ask_reannounce();
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
