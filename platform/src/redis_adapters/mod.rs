//! The Redis adapters of the ports that must span nodes: the bus (`RedisBus`), presence and
//! routing (`RedisPresence`), the nonce record (`RedisNonces`) and rate limits
//! (`RedisRateLimits`), with the node lease that
//! tells every node which others are alive.
//!
//! PostgreSQL stays the truth: the bus carries only notifications of what is already
//! committed, and a node that misses one is healed by the client's sync. What lives here is
//! soft state that rebuilds itself: sessions and room members re-register when clients
//! reconnect, and a dead node's entries are removed by whichever live node notices first.
//!
//! Keys (every one under the configured prefix, `tern` by default; app-scoped keys carry the
//! app in a `{hash tag}` so that each app's keys share one Redis Cluster slot and its Lua
//! scripts stay within a slot):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{nodes}` | sorted set | node id → lease expiry (Unix ms), renewed every 3 s |
//! | `P:{nodes}:owner:<node>` | string | the random token of the process holding the node id, 10 s |
//! | `P:node:<node>:keys` | set | the app-scoped keys a node wrote into, for its reaper |
//! | `P:bus:<node>` | pub/sub channel | bus events for one node (JSON) |
//! | `P:inval` | pub/sub channel | cache invalidations, for every node (JSON) |
//! | `P:{<app>}:s:<user>` | hash | `<node>/<session>` → device id: the user's sessions |
//! | `P:{<app>}:seen:<user>` | string | when the user's last session closed (Unix ms), kept 90 days |
//! | `P:{<app>}:rs:<room>` | hash | `<node>/<session>` → user: sessions in a room |
//! | `P:{<app>}:ru:<room>` | hash | user → their sessions in the room |
//! | `P:{<app>}:rn:<room>` | hash | node → its sessions in the room |
//! | `P:{<app>}:rl:<name>` | string | a rate limit's next allowed time (µs, GCRA), expires when idle |
//! | `P:{<key>}:n:<nonce>` | string | a used nonce, until it may no longer be replayed |

mod bus;
mod lease;
mod nonce;
mod presence;
mod rate;
pub mod testing;

use std::sync::Arc;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, IntoConnectionInfo, ProtocolVersion};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use bus::RedisBus;
pub use lease::{LiveNodes, LEASE_MS};
pub use nonce::RedisNonces;
pub use presence::RedisPresence;
pub use rate::RedisRateLimits;

/// How to reach Redis and where Tern's keys live in it.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`; `rediss://` is refused in this build.
    pub url: String,
    /// Every key and channel starts with this and a colon. Several deployments (or test
    /// runs) can share one Redis by choosing different prefixes.
    pub prefix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("TERN_REDIS_URL is not a usable Redis address: {0}")]
    Url(String),
    #[error("cannot reach Redis: {0}")]
    Unreachable(String),
    #[error(
        "node id {0:?} is held by another running node (TERN_NODE_ID must differ per process; \
         if that node has just stopped, its lease runs out within 10 s)"
    )]
    NodeIdInUse(String),
    #[error("TERN_REDIS_PREFIX may hold letters, digits, '-', '_' and '.', 1 to 64 of them")]
    Prefix,
}

/// The three adapters of one node, sharing one multiplexed connection (plus one for the
/// bus subscription), and the lease that keeps the node visible to the others.
pub struct RedisAdapters {
    pub bus: Arc<RedisBus>,
    pub presence: Arc<RedisPresence>,
    pub nonces: Arc<RedisNonces>,
    pub rate_limits: Arc<RedisRateLimits>,
    pub live: Arc<LiveNodes>,
    /// Asks Redis whether it answers, for `/readyz`.
    pub health: RedisHealth,
}

/// A cheap handle that PINGs Redis over the adapters' connection.
#[derive(Clone)]
pub struct RedisHealth {
    conn: ConnectionManager,
}

impl RedisHealth {
    /// `Ok` if Redis answered a PING within the connection's reply timeout (2 s), else why not.
    pub async fn ping(&self) -> Result<(), String> {
        let mut c = self.conn.clone();
        ::redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl RedisAdapters {
    /// Connects, registers `node` as alive, and starts its lease renewal and the reaper of
    /// dead nodes on `tasks` until `stop` is cancelled (the lease is then given up).
    pub async fn connect(
        config: &RedisConfig,
        node: &str,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> Result<Self, RedisSetupError> {
        let keys = Keys::new(&config.prefix)?;
        let client = client(&config.url)?;
        let conn = ConnectionManager::new_with_config(client.clone(), manager_config())
            .await
            .map_err(|e| RedisSetupError::Unreachable(e.to_string()))?;
        let live = Arc::new(LiveNodes::new(conn.clone(), keys.clone()));
        let ours = live
            .renew(node)
            .await
            .map_err(|e| RedisSetupError::Unreachable(e.to_string()))?;
        if !ours {
            return Err(RedisSetupError::NodeIdInUse(node.to_owned()));
        }
        let presence = Arc::new(RedisPresence::new(conn.clone(), keys.clone(), live.clone()));
        tasks.spawn(lease::run(live.clone(), presence.clone(), node.to_owned(), stop));
        Ok(Self {
            bus: Arc::new(RedisBus::new(client, conn.clone(), keys.clone())),
            presence,
            nonces: Arc::new(RedisNonces::new(conn.clone(), keys.clone())),
            rate_limits: Arc::new(RedisRateLimits::new(conn.clone(), keys)),
            live,
            health: RedisHealth { conn },
        })
    }
}

/// The connection settings every adapter uses: RESP3 (the bus needs push messages),
/// reconnect with backoff up to 2 s between tries, and a reply within 2 s or an error, so
/// a call never waits on a Redis that went away.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_min_delay(std::time::Duration::from_millis(50))
        .set_max_delay(std::time::Duration::from_secs(2))
        .set_number_of_retries(6)
        .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
        .set_response_timeout(Some(std::time::Duration::from_secs(2)))
}

fn client(url: &str) -> Result<Client, RedisSetupError> {
    if !(url.starts_with("redis://") || url.starts_with("redis+unix://") || url.starts_with("unix://")) {
        return Err(RedisSetupError::Url(
            "it must start with redis:// (TLS is not in this build)".into(),
        ));
    }
    let info = url
        .into_connection_info()
        .map_err(|e| RedisSetupError::Url(e.to_string()))?;
    let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
    Client::open(info.set_redis_settings(settings)).map_err(|e| RedisSetupError::Url(e.to_string()))
}

/// Builds every key name, so the table above is the only place the layout is decided.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: Arc<str>,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Result<Self, RedisSetupError> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(RedisSetupError::Prefix);
        }
        Ok(Self { prefix: prefix.into() })
    }

    pub(crate) fn nodes(&self) -> String {
        format!("{}:{{nodes}}", self.prefix)
    }
    pub(crate) fn node_owner(&self, node: &str) -> String {
        format!("{}:{{nodes}}:owner:{node}", self.prefix)
    }
    pub(crate) fn node_keys(&self, node: &str) -> String {
        format!("{}:node:{node}:keys", self.prefix)
    }
    pub(crate) fn reaping(&self, node: &str) -> String {
        format!("{}:node:{node}:reaping", self.prefix)
    }
    pub(crate) fn channel(&self, node: &str) -> String {
        format!("{}:bus:{node}", self.prefix)
    }
    pub(crate) fn invalidations(&self) -> String {
        format!("{}:inval", self.prefix)
    }
    pub(crate) fn sessions(&self, app: &str, user: &str) -> String {
        format!("{}:{{{app}}}:s:{user}", self.prefix)
    }
    pub(crate) fn seen(&self, app: &str, user: &str) -> String {
        format!("{}:{{{app}}}:seen:{user}", self.prefix)
    }
    /// The three hashes of a room: sessions, users, nodes.
    pub(crate) fn room(&self, app: &str, room: &str) -> [String; 3] {
        [
            format!("{}:{{{app}}}:rs:{room}", self.prefix),
            format!("{}:{{{app}}}:ru:{room}", self.prefix),
            format!("{}:{{{app}}}:rn:{room}", self.prefix),
        ]
    }
    pub(crate) fn rate(&self, app: &str, name: &str) -> String {
        format!("{}:{{{app}}}:rl:{name}", self.prefix)
    }
    pub(crate) fn nonce(&self, app_key: &str, nonce: &str) -> String {
        format!("{}:{{{app_key}}}:n:{nonce}", self.prefix)
    }
}

/// The field naming one session: `<node>/<session>`. Session numbers are decimal, so the
/// node is everything before the last slash even if a node id holds one.
pub(crate) fn session_field(node: &str, session: u64) -> String {
    format!("{node}/{session}")
}

pub(crate) fn node_of_field(field: &str) -> &str {
    field.rsplit_once('/').map_or(field, |(node, _)| node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked_and_keys_carry_the_app_as_hash_tag() {
        assert!(Keys::new("").is_err());
        assert!(Keys::new("a b").is_err());
        assert!(Keys::new("a{b").is_err());
        let k = Keys::new("t-1").unwrap();
        assert_eq!(k.sessions("app1", "alice"), "t-1:{app1}:s:alice");
        assert_eq!(k.room("app1", "r")[2], "t-1:{app1}:rn:r");
        assert_eq!(node_of_field(&session_field("pod/7", 42)), "pod/7");
    }

    #[test]
    fn only_plain_redis_urls_are_taken() {
        assert!(client("redis://127.0.0.1:6379").is_ok());
        assert!(client("rediss://127.0.0.1:6379").is_err());
        assert!(client("http://127.0.0.1:6379").is_err());
        assert!(client("redis://[::1").is_err());
    }
}
