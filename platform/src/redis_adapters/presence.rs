//! Presence and routing in Redis: which node holds each user's sessions and each room's
//! members, so any node can route a delivery to exactly the nodes that need it. Every
//! change that must be atomic is one Lua script over keys of one app (one Cluster slot).

use std::collections::HashMap;
use std::sync::Arc;

use ::redis::aio::ConnectionManager;
use ::redis::{RedisError, RedisResult, Script};
use async_trait::async_trait;

use super::lease::LiveNodes;
use super::{node_of_field, session_field, Keys};
use crate::bus::NodeId;
use crate::domain::{now_ms, UnixMillis};
use crate::ids::{AppId, RoomId, UserId};
use crate::presence::{Opened, Presence, PresenceError, SessionRef, UserPresence};

/// How long a user's last-seen time is kept after their last session closed.
const SEEN_FOR_SECS: u64 = 90 * 24 * 3600;

/// KEYS: sessions. ARGV: field, class, device. A session's value is
/// `class \t opened-at (Redis's clock, µs) \t device`; written again (`reannounce`) it keeps
/// its opening time. Returns the number of other sessions before, and the other sessions of
/// the same class, oldest first.
const OPEN: &str = r"
local old = redis.call('HGET', KEYS[1], ARGV[1])
local before = redis.call('HLEN', KEYS[1])
if old then before = before - 1 end
local stamp = old and string.match(old, '^[^\t]*\t([^\t]*)\t')
if not stamp then
  local t = redis.call('TIME')
  stamp = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\t' .. stamp .. '\t' .. ARGV[3])
local same = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= ARGV[1] then
    local class, at = string.match(all[i + 1], '^([^\t]*)\t([^\t]*)\t')
    if class == ARGV[2] then table.insert(same, {tonumber(at) or 0, all[i]}) end
  end
end
table.sort(same, function(a, b)
  if a[1] == b[1] then return a[2] < b[2] end
  return a[1] < b[1]
end)
local fields = {}
for i, s in ipairs(same) do fields[i] = s[2] end
return {before, fields}";

/// The device of a session's value (see `OPEN`).
fn device_of_value(value: &str) -> &str {
    value.splitn(3, '\t').nth(2).unwrap_or(value)
}

/// KEYS: the sessions of several users of one app. Returns, per key, the distinct nodes that
/// hold its sessions (a field is `<node>/<session>`): one command routes a delivery to all
/// its recipients, where one `HKEYS` each was one command per recipient.
const ROUTE: &str = r"
local out = {}
for k = 1, #KEYS do
  local nodes, seen = {}, {}
  for _, f in ipairs(redis.call('HKEYS', KEYS[k])) do
    local node = string.match(f, '^(.*)/[^/]*$') or f
    if not seen[node] then
      seen[node] = true
      table.insert(nodes, node)
    end
  end
  out[k] = nodes
end
return out";

/// Most users routed by one `ROUTE` call: a larger group is split into several calls
/// (pipelined), so no single script holds Redis for long.
const ROUTE_CHUNK: usize = 500;

/// KEYS: sessions, seen. ARGV: field, now, seen ttl. Returns 1 if it was the last session.
const CLOSE: &str = r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0";

/// KEYS: rs, ru, rn. ARGV: field, user, node.
const ROOM_JOIN: &str = r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
  redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
end
return 0";

/// KEYS: rs, ru, rn. ARGV: field, node. Returns 1 if the session was in the room.
const ROOM_LEAVE: &str = r"
local user = redis.call('HGET', KEYS[1], ARGV[1])
if not user then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HINCRBY', KEYS[2], user, -1) <= 0 then redis.call('HDEL', KEYS[2], user) end
if redis.call('HINCRBY', KEYS[3], ARGV[2], -1) <= 0 then redis.call('HDEL', KEYS[3], ARGV[2]) end
return 1";

/// KEYS: rs, ru, rn. Returns how many sessions were in the room.
const ROOM_CLOSE: &str = r"
local n = redis.call('HLEN', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return n";

/// KEYS: rs, ru, rn. ARGV: user. Returns how many of the user's sessions were removed.
const ROOM_REMOVE_USER: &str = r"
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
    local node = string.match(all[i], '^(.*)/%d+$') or all[i]
    if redis.call('HINCRBY', KEYS[3], node, -1) <= 0 then redis.call('HDEL', KEYS[3], node) end
    n = n + 1
  end
end
redis.call('HDEL', KEYS[2], ARGV[1])
return n";

/// KEYS: sessions, seen. ARGV: node, now, seen ttl. Removes the node's sessions of one user.
const REAP_USER: &str = r"
local fields = redis.call('HKEYS', KEYS[1])
local removed = 0
for _, f in ipairs(fields) do
  if (string.match(f, '^(.*)/%d+$') or f) == ARGV[1] then
    redis.call('HDEL', KEYS[1], f)
    removed = removed + 1
  end
end
if removed > 0 and redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
end
return removed";

/// KEYS: rs, ru, rn. ARGV: node. Removes the node's sessions from one room.
const REAP_ROOM: &str = r"
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if (string.match(all[i], '^(.*)/%d+$') or all[i]) == ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
    if redis.call('HINCRBY', KEYS[2], all[i + 1], -1) <= 0 then redis.call('HDEL', KEYS[2], all[i + 1]) end
  end
end
redis.call('HDEL', KEYS[3], ARGV[1])
return 0";

struct Scripts {
    open: Script,
    close: Script,
    route: Script,
    room_join: Script,
    room_leave: Script,
    room_close: Script,
    room_remove_user: Script,
    reap_user: Script,
    reap_room: Script,
}

/// Presence across nodes. Sessions of nodes whose lease ran out are ignored at once and
/// removed by the reaper within a few seconds.
pub struct RedisPresence {
    conn: ConnectionManager,
    keys: Keys,
    live: Arc<LiveNodes>,
    scripts: Scripts,
    /// Bumped by the lease runner when Redis comes back after an outage (`Presence::reannounce`).
    reannounce: tokio::sync::watch::Sender<u64>,
    /// A session or room entry could not be written (a blip shorter than a lease round):
    /// the lease runner's next good round asks for everything to be written again.
    unwritten: std::sync::atomic::AtomicBool,
}

impl RedisPresence {
    /// Asks the holder of this node's sessions to write them all again.
    pub(crate) fn ask_reannounce(&self) {
        self.unwritten.store(false, std::sync::atomic::Ordering::Relaxed);
        self.reannounce.send_modify(|n| *n += 1);
    }

    /// Whether an entry went unwritten since the last ask.
    pub(crate) fn has_unwritten(&self) -> bool {
        self.unwritten.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn missed(&self, e: RedisError) -> PresenceError {
        self.unwritten.store(true, std::sync::atomic::Ordering::Relaxed);
        unavailable(e)
    }
}

fn unavailable(e: RedisError) -> PresenceError {
    PresenceError::Unavailable(e.to_string())
}

/// What a node's index remembers of a key it wrote: `s` for a user's sessions, `r` for a
/// room, then the app and the user or room, tab-separated (ids hold no tabs).
fn index_entry(kind: char, app: &str, id: &str) -> String {
    format!("{kind}\t{app}\t{id}")
}

impl RedisPresence {
    pub(crate) fn new(conn: ConnectionManager, keys: Keys, live: Arc<LiveNodes>) -> Self {
        Self {
            reannounce: tokio::sync::watch::channel(0).0,
            unwritten: std::sync::atomic::AtomicBool::new(false),
            conn,
            keys,
            live,
            scripts: Scripts {
                open: Script::new(OPEN),
                close: Script::new(CLOSE),
                route: Script::new(ROUTE),
                room_join: Script::new(ROOM_JOIN),
                room_leave: Script::new(ROOM_LEAVE),
                room_close: Script::new(ROOM_CLOSE),
                room_remove_user: Script::new(ROOM_REMOVE_USER),
                reap_user: Script::new(REAP_USER),
                reap_room: Script::new(REAP_ROOM),
            },
        }
    }

    /// Removes every session and room member `node` left behind, once: the first live node
    /// to take the node's reaping lock does it, the others skip it.
    pub(crate) async fn reap(&self, node: &str) -> RedisResult<()> {
        let mut c = self.conn.clone();
        let locked: Option<String> = ::redis::cmd("SET")
            .arg(self.keys.reaping(node))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(30_000)
            .query_async(&mut c)
            .await?;
        if locked.is_none() {
            return Ok(());
        }
        let index = self.keys.node_keys(node);
        let entries: Vec<String> = ::redis::cmd("SMEMBERS").arg(&index).query_async(&mut c).await?;
        let now = now_ms();
        for entry in entries {
            let mut parts = entry.splitn(3, '\t');
            let (Some(kind), Some(app), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            match kind {
                "s" => {
                    self.scripts
                        .reap_user
                        .key(self.keys.sessions(app, id))
                        .key(self.keys.seen(app, id))
                        .arg(node)
                        .arg(now)
                        .arg(SEEN_FOR_SECS)
                        .invoke_async::<i64>(&mut c)
                        .await?;
                }
                "r" => {
                    let [rs, ru, rn] = self.keys.room(app, id);
                    self.scripts
                        .reap_room
                        .key(rs)
                        .key(ru)
                        .key(rn)
                        .arg(node)
                        .invoke_async::<i64>(&mut c)
                        .await?;
                }
                _ => {}
            }
        }
        ::redis::pipe()
            .cmd("DEL")
            .arg(&index)
            .ignore()
            .cmd("ZREM")
            .arg(self.keys.nodes())
            .arg(node)
            .ignore()
            .cmd("DEL")
            .arg(self.keys.reaping(node))
            .ignore()
            .query_async::<()>(&mut c)
            .await?;
        tracing::info!(node = %node, "removed a stopped node's sessions from presence");
        Ok(())
    }
}

#[async_trait]
impl Presence for RedisPresence {
    fn reannounce(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.reannounce.subscribe())
    }

    async fn session_opened(
        &self,
        app: &AppId,
        user: &UserId,
        node: &str,
        session: u64,
        device: &str,
        class: &str,
    ) -> Result<Opened, PresenceError> {
        let mut c = self.conn.clone();
        let (before, same): (i64, Vec<String>) = self
            .scripts
            .open
            .key(self.keys.sessions(app.as_str(), user.as_str()))
            .arg(session_field(node, session))
            .arg(class)
            .arg(device)
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.missed(e))?;
        ::redis::cmd("SADD")
            .arg(self.keys.node_keys(node))
            .arg(index_entry('s', app.as_str(), user.as_str()))
            .query_async::<()>(&mut c)
            .await
            .map_err(|e| self.missed(e))?;
        let live = self.live.get().await;
        let same_class = same
            .iter()
            .filter_map(|f| {
                let (node, session) = f.rsplit_once('/')?;
                Some(SessionRef {
                    node: node.to_owned(),
                    session: session.parse().ok()?,
                })
            })
            .filter(|r| live.contains(r.node.as_str()))
            .collect();
        Ok(Opened {
            came_online: before == 0,
            same_class,
        })
    }

    async fn session_closed(
        &self,
        app: &AppId,
        user: &UserId,
        node: &str,
        session: u64,
    ) -> Result<bool, PresenceError> {
        let mut c = self.conn.clone();
        let last: i64 = self
            .scripts
            .close
            .key(self.keys.sessions(app.as_str(), user.as_str()))
            .key(self.keys.seen(app.as_str(), user.as_str()))
            .arg(session_field(node, session))
            .arg(now_ms())
            .arg(SEEN_FOR_SECS)
            .invoke_async(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(last == 1)
    }

    async fn nodes_of(&self, app: &AppId, users: &[UserId]) -> Result<HashMap<NodeId, Vec<UserId>>, PresenceError> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let mut c = self.conn.clone();
        let mut nodes: Vec<Vec<String>> = Vec::with_capacity(users.len());
        if users.len() <= ROUTE_CHUNK {
            let mut call = self.scripts.route.prepare_invoke();
            for u in users {
                call.key(self.keys.sessions(app.as_str(), u.as_str()));
            }
            nodes = call.invoke_async(&mut c).await.map_err(unavailable)?;
        } else {
            // Scripts are loaded on first use; a pipeline of EVALSHA cannot load them.
            self.scripts.route.load_async(&mut c).await.map_err(unavailable)?;
            let mut pipe = ::redis::pipe();
            for chunk in users.chunks(ROUTE_CHUNK) {
                let cmd = pipe.cmd("EVALSHA").arg(self.scripts.route.get_hash()).arg(chunk.len());
                for u in chunk {
                    cmd.arg(self.keys.sessions(app.as_str(), u.as_str()));
                }
            }
            let parts: Vec<Vec<Vec<String>>> = pipe.query_async(&mut c).await.map_err(unavailable)?;
            nodes.extend(parts.into_iter().flatten());
        }
        let live = self.live.get().await;
        let mut out: HashMap<NodeId, Vec<UserId>> = HashMap::new();
        for (u, held) in users.iter().zip(nodes) {
            for node in held {
                if live.contains(&node) {
                    out.entry(node).or_default().push(u.clone());
                }
            }
        }
        Ok(out)
    }

    async fn presence(&self, app: &AppId, users: &[UserId]) -> Result<Vec<UserPresence>, PresenceError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for u in users {
            pipe.cmd("HGETALL").arg(self.keys.sessions(app.as_str(), u.as_str()));
            pipe.cmd("GET").arg(self.keys.seen(app.as_str(), u.as_str()));
        }
        let mut c = self.conn.clone();
        let replies: Vec<::redis::Value> = pipe.query_async(&mut c).await.map_err(unavailable)?;
        let live = self.live.get().await;
        let mut out = Vec::with_capacity(users.len());
        for (u, pair) in users.iter().zip(replies.chunks(2)) {
            let sessions: HashMap<String, String> =
                ::redis::from_redis_value(pair[0].clone()).map_err(|e| PresenceError::Unavailable(e.to_string()))?;
            let seen: Option<UnixMillis> =
                ::redis::from_redis_value(pair[1].clone()).map_err(|e| PresenceError::Unavailable(e.to_string()))?;
            let devices: Vec<String> = sessions
                .into_iter()
                .filter(|(f, _)| live.contains(node_of_field(f)))
                .map(|(_, d)| device_of_value(&d).to_owned())
                .collect();
            out.push(UserPresence {
                user_id: u.clone(),
                online: !devices.is_empty(),
                last_seen: if devices.is_empty() { seen } else { None },
                devices,
            });
        }
        Ok(out)
    }

    async fn room_joined(
        &self,
        app: &AppId,
        room: &RoomId,
        user: &UserId,
        node: &str,
        session: u64,
    ) -> Result<(), PresenceError> {
        let [rs, ru, rn] = self.keys.room(app.as_str(), room.as_str());
        let mut c = self.conn.clone();
        self.scripts
            .room_join
            .key(rs)
            .key(ru)
            .key(rn)
            .arg(session_field(node, session))
            .arg(user.as_str())
            .arg(node)
            .invoke_async::<i64>(&mut c)
            .await
            .map_err(|e| self.missed(e))?;
        ::redis::cmd("SADD")
            .arg(self.keys.node_keys(node))
            .arg(index_entry('r', app.as_str(), room.as_str()))
            .query_async::<()>(&mut c)
            .await
            .map_err(|e| self.missed(e))
    }

    async fn room_left(&self, app: &AppId, room: &RoomId, node: &str, session: u64) -> Result<(), PresenceError> {
        let [rs, ru, rn] = self.keys.room(app.as_str(), room.as_str());
        let mut c = self.conn.clone();
        self.scripts
            .room_leave
            .key(rs)
            .key(ru)
            .key(rn)
            .arg(session_field(node, session))
            .arg(node)
            .invoke_async::<i64>(&mut c)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn room_nodes(&self, app: &AppId, room: &RoomId) -> Result<Vec<NodeId>, PresenceError> {
        let [_, _, rn] = self.keys.room(app.as_str(), room.as_str());
        let mut c = self.conn.clone();
        let nodes: Vec<String> = ::redis::cmd("HKEYS")
            .arg(rn)
            .query_async(&mut c)
            .await
            .map_err(unavailable)?;
        let live = self.live.get().await;
        Ok(nodes.into_iter().filter(|n| live.contains(n)).collect())
    }

    async fn room_member_count(&self, app: &AppId, room: &RoomId) -> Result<u64, PresenceError> {
        let [_, ru, _] = self.keys.room(app.as_str(), room.as_str());
        let mut c = self.conn.clone();
        ::redis::cmd("HLEN")
            .arg(ru)
            .query_async(&mut c)
            .await
            .map_err(unavailable)
    }

    async fn room_closed(&self, app: &AppId, room: &RoomId) -> Result<u64, PresenceError> {
        let [rs, ru, rn] = self.keys.room(app.as_str(), room.as_str());
        let mut c = self.conn.clone();
        self.scripts
            .room_close
            .key(rs)
            .key(ru)
            .key(rn)
            .invoke_async(&mut c)
            .await
            .map_err(unavailable)
    }

    async fn room_user_removed(&self, app: &AppId, room: &RoomId, user: &UserId) -> Result<u64, PresenceError> {
        let [rs, ru, rn] = self.keys.room(app.as_str(), room.as_str());
        let mut c = self.conn.clone();
        self.scripts
            .room_remove_user
            .key(rs)
            .key(ru)
            .key(rn)
            .arg(user.as_str())
            .invoke_async(&mut c)
            .await
            .map_err(unavailable)
    }
}
