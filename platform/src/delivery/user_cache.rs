//! What the pipeline needs to know about a user on every send (that they exist, and until
//! when they are banned), remembered for a moment so a busy conversation does not cost two
//! store reads per message. Changes made through this node (ban, delete) call `forget`; on
//! other nodes they take effect within the TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::UnixMillis;
use crate::ids::{AppId, UserId};

/// How long an entry is trusted.
pub const USER_CACHE_TTL: Duration = Duration::from_secs(2);
/// Entries kept before the map is swept of expired ones.
const SWEEP_AT: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserState {
    pub banned_until: Option<UnixMillis>,
    pub muted_until: Option<UnixMillis>,
}

impl UserState {
    pub(crate) fn is_muted_at(&self, now: UnixMillis) -> bool {
        self.muted_until.is_some_and(|t| t > now)
    }
}

#[derive(Default)]
pub(crate) struct UserCache {
    map: Mutex<HashMap<(AppId, UserId), (UserState, Instant)>>,
}

impl UserCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(AppId, UserId), (UserState, Instant)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, app: &AppId, user: &UserId) -> Option<UserState> {
        let map = self.lock();
        let (state, at) = map.get(&(app.clone(), user.clone()))?;
        (at.elapsed() < USER_CACHE_TTL).then_some(*state)
    }

    pub(crate) fn put(&self, app: &AppId, user: &UserId, state: UserState) {
        let mut map = self.lock();
        if map.len() >= SWEEP_AT {
            map.retain(|_, (_, at)| at.elapsed() < USER_CACHE_TTL);
        }
        map.insert((app.clone(), user.clone()), (state, Instant::now()));
    }

    pub(crate) fn forget(&self, app: &AppId, user: &UserId) {
        self.lock().remove(&(app.clone(), user.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_forgotten() {
        let c = UserCache::default();
        let (a, u) = (AppId::generate(), UserId::parse("alice").unwrap());
        assert_eq!(c.get(&a, &u), None);
        c.put(
            &a,
            &u,
            UserState {
                banned_until: Some(5),
                muted_until: None,
            },
        );
        assert_eq!(
            c.get(&a, &u),
            Some(UserState {
                banned_until: Some(5),
                muted_until: None
            })
        );
        assert_eq!(c.get(&AppId::generate(), &u), None, "scoped by app");
        c.forget(&a, &u);
        assert_eq!(c.get(&a, &u), None);
    }
}
