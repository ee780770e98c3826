//! The Presence port: which node holds which user's sessions, who is online, and who is in
//! which room. In one process it is a map (`MemoryPresence`); across nodes, Redis.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::bus::NodeId;
use crate::domain::{now_ms, UnixMillis};
use crate::ids::{AppId, RoomId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPresence {
    pub user_id: UserId,
    pub online: bool,
    /// When the user's last session closed; `None` if never seen or online now.
    pub last_seen: Option<UnixMillis>,
    /// Device ids of the sessions open now.
    pub devices: Vec<String>,
}

/// What `Presence::session_opened` found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Opened {
    /// The user was offline before this session (they came online).
    pub came_online: bool,
    /// The user's other sessions of the same device class on live nodes, this node's
    /// included, oldest first: the gateway closes the oldest beyond the app's device limit,
    /// wherever they are.
    pub same_class: Vec<SessionRef>,
}

/// One session, named by the node that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionRef {
    pub node: NodeId,
    pub session: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error("presence unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// A session opened on `device`, of device `class` (the multi-device policy counts
    /// sessions per class: `web`, `ios`, `android`, ...). Says whether the user came online
    /// and which of their sessions of the same class are open elsewhere.
    async fn session_opened(
        &self,
        app: &AppId,
        user: &UserId,
        node: &str,
        session: u64,
        device: &str,
        class: &str,
    ) -> Result<Opened, PresenceError>;
    /// A session closed. Returns true if it was the user's last (they went offline).
    async fn session_closed(&self, app: &AppId, user: &UserId, node: &str, session: u64)
        -> Result<bool, PresenceError>;
    /// Groups `users` by the nodes holding their sessions; offline users are left out.
    async fn nodes_of(&self, app: &AppId, users: &[UserId]) -> Result<HashMap<NodeId, Vec<UserId>>, PresenceError>;
    async fn presence(&self, app: &AppId, users: &[UserId]) -> Result<Vec<UserPresence>, PresenceError>;
    /// Room membership lives only here, for as long as the session is connected: `user`'s
    /// session `session` on `node` is in the room.
    async fn room_joined(
        &self,
        app: &AppId,
        room: &RoomId,
        user: &UserId,
        node: &str,
        session: u64,
    ) -> Result<(), PresenceError>;
    async fn room_left(&self, app: &AppId, room: &RoomId, node: &str, session: u64) -> Result<(), PresenceError>;
    /// The nodes holding at least one session in the room: where a room message is published.
    async fn room_nodes(&self, app: &AppId, room: &RoomId) -> Result<Vec<NodeId>, PresenceError>;
    /// Users in the room, each counted once whatever their number of sessions.
    async fn room_member_count(&self, app: &AppId, room: &RoomId) -> Result<u64, PresenceError>;
    /// Forgets everyone in the room (it was dismissed); returns how many sessions were in it.
    async fn room_closed(&self, app: &AppId, room: &RoomId) -> Result<u64, PresenceError>;
    /// Forgets `user`'s sessions in the room (they were removed); returns how many there were.
    async fn room_user_removed(&self, app: &AppId, room: &RoomId, user: &UserId) -> Result<u64, PresenceError>;
    /// Changes each time this node's entries may have been lost (shared presence came back
    /// after an outage: sessions opened meanwhile were never written, and other nodes may
    /// have taken this node for dead and removed its entries). The holder of the sessions
    /// then writes them all again (`session_opened`, `room_joined`). `None`: entries are
    /// never lost (in-process presence).
    fn reannounce(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

type UserKey = (AppId, UserId);
type RoomKey = (AppId, RoomId);

/// Who is in one room, kept three ways so that each question is answered without walking
/// every member: a room of 10,000 is asked for its nodes on every message.
#[derive(Default)]
struct RoomMembers {
    /// (node, session) → user
    sessions: HashMap<(String, u64), UserId>,
    /// user → their sessions in the room
    users: HashMap<UserId, u32>,
    /// node → its sessions in the room
    nodes: HashMap<String, u32>,
}

impl RoomMembers {
    fn insert(&mut self, node: &str, session: u64, user: &UserId) {
        if self.sessions.insert((node.to_owned(), session), user.clone()).is_none() {
            *self.users.entry(user.clone()).or_default() += 1;
            *self.nodes.entry(node.to_owned()).or_default() += 1;
        }
    }

    fn remove(&mut self, node: &str, session: u64) -> bool {
        let Some(user) = self.sessions.remove(&(node.to_owned(), session)) else {
            return false;
        };
        decrement(&mut self.users, user);
        decrement(&mut self.nodes, node.to_owned());
        true
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

/// One open session as in-process presence keeps it.
struct Entry {
    device: String,
    class: String,
    /// Opening order across the process (the oldest goes first under the device limit).
    order: u64,
}

#[derive(Default)]
struct State {
    /// user → (node, session) → its entry
    sessions: HashMap<UserKey, HashMap<(String, u64), Entry>>,
    opened: u64,
    last_seen: HashMap<UserKey, UnixMillis>,
    rooms: HashMap<RoomKey, RoomMembers>,
}

/// Presence for one process. A std mutex: every operation is a few map lookups, never awaits.
#[derive(Default)]
pub struct MemoryPresence {
    state: Mutex<State>,
}

impl MemoryPresence {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent (each op is atomic), so
        // a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Presence for MemoryPresence {
    async fn session_opened(
        &self,
        app: &AppId,
        user: &UserId,
        node: &str,
        session: u64,
        device: &str,
        class: &str,
    ) -> Result<Opened, PresenceError> {
        let mut s = self.lock();
        s.opened += 1;
        let order = s.opened;
        let entry = s.sessions.entry((app.clone(), user.clone())).or_default();
        let came_online = entry.is_empty();
        let mut same: Vec<(u64, SessionRef)> = entry
            .iter()
            .filter(|(key, e)| e.class == class && **key != (node.to_owned(), session))
            .map(|((n, id), e)| {
                (
                    e.order,
                    SessionRef {
                        node: n.clone(),
                        session: *id,
                    },
                )
            })
            .collect();
        same.sort_by_key(|(order, _)| *order);
        let old = entry.insert(
            (node.to_owned(), session),
            Entry {
                device: device.to_owned(),
                class: class.to_owned(),
                order,
            },
        );
        if let Some(old) = old {
            // Written again (`reannounce`): it keeps its place in the opening order.
            if let Some(e) = entry.get_mut(&(node.to_owned(), session)) {
                e.order = old.order;
            }
        }
        Ok(Opened {
            came_online,
            same_class: same.into_iter().map(|(_, r)| r).collect(),
        })
    }

    async fn session_closed(
        &self,
        app: &AppId,
        user: &UserId,
        node: &str,
        session: u64,
    ) -> Result<bool, PresenceError> {
        let mut s = self.lock();
        let key = (app.clone(), user.clone());
        let Some(entry) = s.sessions.get_mut(&key) else {
            return Ok(false);
        };
        if entry.remove(&(node.to_owned(), session)).is_none() {
            return Ok(false);
        }
        if entry.is_empty() {
            s.sessions.remove(&key);
            s.last_seen.insert(key, now_ms());
            return Ok(true);
        }
        Ok(false)
    }

    async fn nodes_of(&self, app: &AppId, users: &[UserId]) -> Result<HashMap<NodeId, Vec<UserId>>, PresenceError> {
        let s = self.lock();
        let mut out: HashMap<NodeId, Vec<UserId>> = HashMap::new();
        for u in users {
            if let Some(sessions) = s.sessions.get(&(app.clone(), u.clone())) {
                let nodes: HashSet<&String> = sessions.keys().map(|(n, _)| n).collect();
                for n in nodes {
                    out.entry(n.clone()).or_default().push(u.clone());
                }
            }
        }
        Ok(out)
    }

    async fn presence(&self, app: &AppId, users: &[UserId]) -> Result<Vec<UserPresence>, PresenceError> {
        let s = self.lock();
        Ok(users
            .iter()
            .map(|u| {
                let key = (app.clone(), u.clone());
                let devices: Vec<String> = s
                    .sessions
                    .get(&key)
                    .map(|m| m.values().map(|e| e.device.clone()).collect())
                    .unwrap_or_default();
                UserPresence {
                    user_id: u.clone(),
                    online: !devices.is_empty(),
                    last_seen: if devices.is_empty() {
                        s.last_seen.get(&key).copied()
                    } else {
                        None
                    },
                    devices,
                }
            })
            .collect())
    }

    async fn room_joined(
        &self,
        app: &AppId,
        room: &RoomId,
        user: &UserId,
        node: &str,
        session: u64,
    ) -> Result<(), PresenceError> {
        self.lock()
            .rooms
            .entry((app.clone(), room.clone()))
            .or_default()
            .insert(node, session, user);
        Ok(())
    }

    async fn room_left(&self, app: &AppId, room: &RoomId, node: &str, session: u64) -> Result<(), PresenceError> {
        let mut s = self.lock();
        let key = (app.clone(), room.clone());
        if let Some(m) = s.rooms.get_mut(&key) {
            m.remove(node, session);
            if m.sessions.is_empty() {
                s.rooms.remove(&key);
            }
        }
        Ok(())
    }

    async fn room_nodes(&self, app: &AppId, room: &RoomId) -> Result<Vec<NodeId>, PresenceError> {
        Ok(self
            .lock()
            .rooms
            .get(&(app.clone(), room.clone()))
            .map(|m| m.nodes.keys().cloned().collect())
            .unwrap_or_default())
    }

    async fn room_member_count(&self, app: &AppId, room: &RoomId) -> Result<u64, PresenceError> {
        Ok(self
            .lock()
            .rooms
            .get(&(app.clone(), room.clone()))
            .map_or(0, |m| m.users.len() as u64))
    }

    async fn room_closed(&self, app: &AppId, room: &RoomId) -> Result<u64, PresenceError> {
        Ok(self
            .lock()
            .rooms
            .remove(&(app.clone(), room.clone()))
            .map_or(0, |m| m.sessions.len() as u64))
    }

    async fn room_user_removed(&self, app: &AppId, room: &RoomId, user: &UserId) -> Result<u64, PresenceError> {
        let mut s = self.lock();
        let key = (app.clone(), room.clone());
        let Some(m) = s.rooms.get_mut(&key) else {
            return Ok(0);
        };
        let theirs: Vec<(String, u64)> = m
            .sessions
            .iter()
            .filter(|(_, u)| *u == user)
            .map(|(k, _)| k.clone())
            .collect();
        for (node, session) in &theirs {
            m.remove(node, *session);
        }
        if m.sessions.is_empty() {
            s.rooms.remove(&key);
        }
        Ok(theirs.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_user_is_online_while_any_device_is() {
        let p = MemoryPresence::new();
        let app = AppId::generate();
        let u = UserId::parse("alice").unwrap();
        assert!(
            p.session_opened(&app, &u, "n1", 1, "phone", "ios")
                .await
                .unwrap()
                .came_online
        );
        assert!(
            !p.session_opened(&app, &u, "n1", 2, "laptop", "web")
                .await
                .unwrap()
                .came_online
        );
        assert!(!p.session_closed(&app, &u, "n1", 1).await.unwrap());
        let now = p.presence(&app, std::slice::from_ref(&u)).await.unwrap();
        assert!(now[0].online);
        assert_eq!(now[0].devices, vec!["laptop".to_string()]);
        assert!(p.session_closed(&app, &u, "n1", 2).await.unwrap());
        let now = p.presence(&app, std::slice::from_ref(&u)).await.unwrap();
        assert!(!now[0].online);
        assert!(now[0].last_seen.is_some());
    }

    #[tokio::test]
    async fn a_new_session_learns_the_older_ones_of_its_class_oldest_first() {
        let p = MemoryPresence::new();
        let app = AppId::generate();
        let u = UserId::parse("alice").unwrap();
        p.session_opened(&app, &u, "n2", 7, "phone-1", "ios").await.unwrap();
        p.session_opened(&app, &u, "n1", 3, "laptop", "web").await.unwrap();
        p.session_opened(&app, &u, "n1", 4, "phone-2", "ios").await.unwrap();
        let opened = p.session_opened(&app, &u, "n3", 1, "phone-3", "ios").await.unwrap();
        let at = |node: &str, session| SessionRef {
            node: node.into(),
            session,
        };
        assert_eq!(opened.same_class, vec![at("n2", 7), at("n1", 4)]);
        // Written again after an outage, a session keeps its place: still the oldest.
        p.session_opened(&app, &u, "n2", 7, "phone-1", "ios").await.unwrap();
        let opened = p.session_opened(&app, &u, "n1", 5, "phone-4", "ios").await.unwrap();
        assert_eq!(opened.same_class, vec![at("n2", 7), at("n1", 4), at("n3", 1)]);
    }

    #[tokio::test]
    async fn presence_is_scoped_by_app() {
        let p = MemoryPresence::new();
        let (a, b) = (AppId::generate(), AppId::generate());
        let u = UserId::parse("alice").unwrap();
        p.session_opened(&a, &u, "n1", 1, "d", "ios").await.unwrap();
        assert!(p.nodes_of(&b, std::slice::from_ref(&u)).await.unwrap().is_empty());
        assert_eq!(p.nodes_of(&a, std::slice::from_ref(&u)).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn rooms_count_users_once_and_know_their_nodes() {
        let p = MemoryPresence::new();
        let (a, b) = (AppId::generate(), AppId::generate());
        let r = RoomId::parse("live").unwrap();
        let (alice, bob) = (UserId::parse("alice").unwrap(), UserId::parse("bob").unwrap());
        p.room_joined(&a, &r, &alice, "n1", 1).await.unwrap();
        p.room_joined(&a, &r, &alice, "n2", 2).await.unwrap();
        p.room_joined(&a, &r, &bob, "n1", 3).await.unwrap();
        // Joining twice on one session changes nothing.
        p.room_joined(&a, &r, &bob, "n1", 3).await.unwrap();
        assert_eq!(p.room_member_count(&a, &r).await.unwrap(), 2);
        let mut nodes = p.room_nodes(&a, &r).await.unwrap();
        nodes.sort();
        assert_eq!(nodes, vec!["n1".to_string(), "n2".to_string()]);
        assert_eq!(p.room_member_count(&b, &r).await.unwrap(), 0, "scoped by app");

        p.room_left(&a, &r, "n2", 2).await.unwrap();
        assert_eq!(p.room_nodes(&a, &r).await.unwrap(), vec!["n1".to_string()]);
        assert_eq!(p.room_member_count(&a, &r).await.unwrap(), 2, "alice is still in on n1");
        assert_eq!(p.room_user_removed(&a, &r, &alice).await.unwrap(), 1);
        assert_eq!(p.room_member_count(&a, &r).await.unwrap(), 1);
        assert_eq!(p.room_closed(&a, &r).await.unwrap(), 1);
        assert_eq!(p.room_member_count(&a, &r).await.unwrap(), 0);
        assert!(p.room_nodes(&a, &r).await.unwrap().is_empty());
    }
}
