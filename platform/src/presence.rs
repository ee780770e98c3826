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

#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error("presence unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// A session opened. Returns true if the user was offline before (they came online).
    async fn session_opened(
        &self,
        app: &AppId,
        user: &UserId,
        node: &str,
        session: u64,
        device: &str,
    ) -> Result<bool, PresenceError>;
    /// A session closed. Returns true if it was the user's last (they went offline).
    async fn session_closed(&self, app: &AppId, user: &UserId, node: &str, session: u64)
        -> Result<bool, PresenceError>;
    /// Groups `users` by the nodes holding their sessions; offline users are left out.
    async fn nodes_of(&self, app: &AppId, users: &[UserId]) -> Result<HashMap<NodeId, Vec<UserId>>, PresenceError>;
    async fn presence(&self, app: &AppId, users: &[UserId]) -> Result<Vec<UserPresence>, PresenceError>;
    /// Room membership lives only here, for as long as the session is connected.
    async fn room_joined(&self, app: &AppId, room: &RoomId, node: &str, session: u64) -> Result<(), PresenceError>;
    async fn room_left(&self, app: &AppId, room: &RoomId, node: &str, session: u64) -> Result<(), PresenceError>;
    async fn room_nodes(&self, app: &AppId, room: &RoomId) -> Result<Vec<NodeId>, PresenceError>;
    async fn room_member_count(&self, app: &AppId, room: &RoomId) -> Result<u64, PresenceError>;
}

type UserKey = (AppId, UserId);
type RoomKey = (AppId, RoomId);

#[derive(Default)]
struct State {
    /// user → (node, session) → device
    sessions: HashMap<UserKey, HashMap<(String, u64), String>>,
    last_seen: HashMap<UserKey, UnixMillis>,
    rooms: HashMap<RoomKey, HashSet<(String, u64)>>,
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
    ) -> Result<bool, PresenceError> {
        let mut s = self.lock();
        let entry = s.sessions.entry((app.clone(), user.clone())).or_default();
        let was_offline = entry.is_empty();
        entry.insert((node.to_owned(), session), device.to_owned());
        Ok(was_offline)
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
                    .map(|m| m.values().cloned().collect())
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

    async fn room_joined(&self, app: &AppId, room: &RoomId, node: &str, session: u64) -> Result<(), PresenceError> {
        self.lock()
            .rooms
            .entry((app.clone(), room.clone()))
            .or_default()
            .insert((node.to_owned(), session));
        Ok(())
    }

    async fn room_left(&self, app: &AppId, room: &RoomId, node: &str, session: u64) -> Result<(), PresenceError> {
        let mut s = self.lock();
        let key = (app.clone(), room.clone());
        if let Some(m) = s.rooms.get_mut(&key) {
            m.remove(&(node.to_owned(), session));
            if m.is_empty() {
                s.rooms.remove(&key);
            }
        }
        Ok(())
    }

    async fn room_nodes(&self, app: &AppId, room: &RoomId) -> Result<Vec<NodeId>, PresenceError> {
        let s = self.lock();
        let nodes: HashSet<String> = s
            .rooms
            .get(&(app.clone(), room.clone()))
            .map(|m| m.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default();
        Ok(nodes.into_iter().collect())
    }

    async fn room_member_count(&self, app: &AppId, room: &RoomId) -> Result<u64, PresenceError> {
        Ok(self
            .lock()
            .rooms
            .get(&(app.clone(), room.clone()))
            .map_or(0, |m| m.len() as u64))
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
        assert!(p.session_opened(&app, &u, "n1", 1, "phone").await.unwrap());
        assert!(!p.session_opened(&app, &u, "n1", 2, "laptop").await.unwrap());
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
    async fn presence_is_scoped_by_app() {
        let p = MemoryPresence::new();
        let (a, b) = (AppId::generate(), AppId::generate());
        let u = UserId::parse("alice").unwrap();
        p.session_opened(&a, &u, "n1", 1, "d").await.unwrap();
        assert!(p.nodes_of(&b, std::slice::from_ref(&u)).await.unwrap().is_empty());
        assert_eq!(p.nodes_of(&a, std::slice::from_ref(&u)).await.unwrap().len(), 1);
    }
}
