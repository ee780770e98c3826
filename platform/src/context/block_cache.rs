//! Whom a user blocks, remembered for a moment, so that a direct message does not cost a
//! store read to learn that its recipient blocks nobody (the common case). A user who
//! blocks more than `FEW` others is remembered as `Many`, and their messages ask the store
//! per pair as before. Blocking or unblocking forgets the entry here and announces
//! `Invalidation::User`, which forgets it on every node; a node that misses the word trusts
//! its entry for at most `BLOCK_CACHE_TTL`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

use crate::ids::{AppId, UserId};

/// How long an entry is trusted.
pub const BLOCK_CACHE_TTL: Duration = Duration::from_secs(10);
/// Most users remembered at once; past it the least used go first.
const CAPACITY: usize = 100_000;
/// Most blocked users kept per entry; a longer list is not kept.
pub(crate) const FEW: usize = 32;

/// What is known of the users one user blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// Every user they block, sorted (usually none).
    Few(Arc<[UserId]>),
    /// More than `FEW`: ask the store.
    Many,
}

impl Blocked {
    /// Made from the first `FEW + 1` blocked ids (any order).
    pub(crate) fn from_page(mut ids: Vec<UserId>) -> Self {
        if ids.len() > FEW {
            return Blocked::Many;
        }
        ids.sort();
        Blocked::Few(ids.into())
    }

    /// `Some(answer)` when the entry knows it, `None` for `Many`.
    pub(crate) fn blocks(&self, other: &UserId) -> Option<bool> {
        match self {
            Blocked::Few(ids) => Some(ids.binary_search(other).is_ok()),
            Blocked::Many => None,
        }
    }
}

pub(crate) struct BlockCache {
    entries: Cache<(AppId, UserId), (Blocked, Instant)>,
}

impl Default for BlockCache {
    fn default() -> Self {
        Self {
            entries: Cache::new(CAPACITY),
        }
    }
}

impl BlockCache {
    pub(crate) fn get(&self, app: &AppId, user: &UserId) -> Option<Blocked> {
        let (blocked, at) = self.entries.get(&(app.clone(), user.clone()))?;
        (at.elapsed() < BLOCK_CACHE_TTL).then_some(blocked)
    }

    pub(crate) fn put(&self, app: &AppId, user: &UserId, blocked: Blocked) {
        self.entries
            .insert((app.clone(), user.clone()), (blocked, Instant::now()));
    }

    pub(crate) fn forget(&self, app: &AppId, user: &UserId) {
        self.entries.remove(&(app.clone(), user.clone()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn uid(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn a_short_list_answers_and_a_long_one_defers_to_the_store() {
        let few = Blocked::from_page(vec![uid("carol"), uid("alice")]);
        assert_eq!(few.blocks(&uid("alice")), Some(true));
        assert_eq!(few.blocks(&uid("bob")), Some(false));
        assert_eq!(Blocked::from_page(Vec::new()).blocks(&uid("bob")), Some(false));
        let many: Vec<UserId> = (0..=FEW).map(|i| uid(&format!("u{i}"))).collect();
        assert_eq!(Blocked::from_page(many).blocks(&uid("u0")), None);
    }

    #[test]
    fn remembers_until_forgotten() {
        let cache = BlockCache::default();
        let (app, bob) = (AppId::generate(), uid("bob"));
        assert_eq!(cache.get(&app, &bob), None);
        cache.put(&app, &bob, Blocked::from_page(Vec::new()));
        assert_eq!(cache.get(&app, &bob), Some(Blocked::Few(Vec::new().into())));
        cache.forget(&app, &bob);
        assert_eq!(cache.get(&app, &bob), None);
    }
}
