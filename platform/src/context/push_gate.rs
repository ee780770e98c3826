//! Whether an app has push credentials for any provider, remembered for a moment. A message
//! of an app with none is not written to the push outbox: the worker would make no job of
//! it (docs/push.md), and skipping it spares the store a write in the message's transaction
//! and the worker's reads and writes per message. Setting or removing credentials forgets
//! the entry here and announces `Invalidation::App`, which forgets it on every node; a node
//! that misses the word trusts its entry for at most `PUSH_GATE_TTL`.

use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

use crate::ids::AppKey;

/// How long an entry is trusted.
pub const PUSH_GATE_TTL: Duration = Duration::from_secs(5);
/// Most apps remembered at once; past it the least used go first.
const CAPACITY: usize = 10_000;

pub(crate) struct PushGate {
    entries: Cache<AppKey, (bool, Instant)>,
}

impl Default for PushGate {
    fn default() -> Self {
        Self {
            entries: Cache::new(CAPACITY),
        }
    }
}

impl PushGate {
    /// `Some(true)` if the app had credentials when last read, `None` if not known now.
    pub(crate) fn get(&self, app: &AppKey) -> Option<bool> {
        let (configured, at) = self.entries.get(app)?;
        (at.elapsed() < PUSH_GATE_TTL).then_some(configured)
    }

    pub(crate) fn put(&self, app: &AppKey, configured: bool) {
        self.entries.insert(app.clone(), (configured, Instant::now()));
    }

    pub(crate) fn forget(&self, app: &AppKey) {
        self.entries.remove(app);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_forgotten() {
        let gate = PushGate::default();
        let key = AppKey::generate();
        assert_eq!(gate.get(&key), None);
        gate.put(&key, false);
        assert_eq!(gate.get(&key), Some(false));
        gate.forget(&key);
        assert_eq!(gate.get(&key), None);
    }
}
