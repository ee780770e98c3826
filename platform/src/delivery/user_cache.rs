//! What the pipeline needs to know about a user on every send (that they exist, and until
//! when they are banned), remembered for a moment so a busy conversation does not cost two
//! store reads per message. Changes made through this node (ban, delete) call `forget`; on
//! other nodes they take effect within the TTL.

use std::time::Duration;

use moka::sync::Cache;

use crate::domain::UnixMillis;
use crate::ids::{AppId, UserId};

/// How long an entry is trusted.
pub const USER_CACHE_TTL: Duration = Duration::from_secs(2);
/// Most users remembered at once; the TTL keeps far fewer in practice.
const CAPACITY: u64 = 100_000;

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

/// Entries expire `USER_CACHE_TTL` after they were written and are swept by the cache.
pub(crate) struct UserCache {
    entries: Cache<(AppId, UserId), UserState>,
}

impl Default for UserCache {
    fn default() -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(USER_CACHE_TTL)
                .build(),
        }
    }
}

impl UserCache {
    pub(crate) fn get(&self, app: &AppId, user: &UserId) -> Option<UserState> {
        self.entries.get(&(app.clone(), user.clone()))
    }

    pub(crate) fn put(&self, app: &AppId, user: &UserId, state: UserState) {
        self.entries.insert((app.clone(), user.clone()), state);
    }

    pub(crate) fn forget(&self, app: &AppId, user: &UserId) {
        self.entries.invalidate(&(app.clone(), user.clone()));
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
