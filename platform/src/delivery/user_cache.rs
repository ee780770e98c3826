//! What the pipeline needs to know about a user on every send (that they exist, and until
//! when they are banned), remembered for a moment so a busy conversation does not cost two
//! store reads per message. A change (ban, mute, delete) forgets the entry here and
//! announces `Invalidation::User`, which forgets it on every node; a node that misses the
//! word trusts its entry for at most `USER_CACHE_TTL`. That bound is why the TTL is 10 s
//! and not less: with 10,000 users chatting at 2,000 messages/s a user is looked up every
//! 2.5 s or so, and a 2 s TTL missed on more than half of the lookups
//! (docs/benchmarks.md, "the user cache's TTL").

use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

use crate::domain::UnixMillis;
use crate::ids::{AppId, UserId};

/// How long an entry is trusted.
pub const USER_CACHE_TTL: Duration = Duration::from_secs(10);
/// Most users remembered at once; past it the least used go first.
const CAPACITY: usize = 100_000;

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

/// Entries are trusted for `USER_CACHE_TTL` after they were written; an older one reads as
/// absent and is overwritten by the next `put`. The capacity bounds memory, so nothing
/// sweeps: the cache is read twice per message, and `quick_cache` does no bookkeeping
/// beyond a reference bit on a read (see `docs/benchmarks.md`, "caches").
pub(crate) struct UserCache {
    entries: Cache<(AppId, UserId), (UserState, Instant)>,
}

impl Default for UserCache {
    fn default() -> Self {
        Self {
            entries: Cache::new(CAPACITY),
        }
    }
}

impl UserCache {
    pub(crate) fn get(&self, app: &AppId, user: &UserId) -> Option<UserState> {
        let (state, at) = self.entries.get(&(app.clone(), user.clone()))?;
        (at.elapsed() < USER_CACHE_TTL).then_some(state)
    }

    pub(crate) fn put(&self, app: &AppId, user: &UserId, state: UserState) {
        self.entries
            .insert((app.clone(), user.clone()), (state, Instant::now()));
    }

    pub(crate) fn forget(&self, app: &AppId, user: &UserId) {
        self.entries.remove(&(app.clone(), user.clone()));
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
