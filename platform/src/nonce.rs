//! The nonce record of signed requests (SIGNING.md §1): a nonce may be used once per app
//! for as long as a replay of its request could still pass the timestamp window, and at
//! least 600 s. Each app's record is bounded: when it is full, new requests are refused
//! (`rate_limited`) rather than the record growing or forgetting nonces early.
//!
//! Times come from the caller (the verifier's clock), so the window is tested at its exact
//! edges without waiting.
//!
//! Kept home-made rather than on a `moka` cache, on purpose: each nonce has its own expiry
//! measured on the caller's clock (`keep_until` = the later of now + 600 s and its
//! timestamp + window + 1 s), and a full app must be refused exactly at 1,000,000 live
//! nonces. `moka` expires entries on its own clock and counts entries only eventually, so
//! a replay could pass a moment early or an app be refused (or not) off by a few; a nonce
//! record that forgets early is a replay hole.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::domain::UnixMillis;

/// The shortest time a nonce is remembered, milliseconds.
pub const NONCE_TTL_MS: i64 = 600_000;
/// Most nonces remembered for one app on one node by default. About 200 bytes each, so
/// about 200 MB for an app that fills it; at 1,000 signed requests per second an app holds
/// about 600,000.
pub const DEFAULT_MAX_NONCES_PER_APP: usize = 1_000_000;
/// Every this many records, every app's expired nonces are dropped (not only the caller's).
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum NonceError {
    #[error("nonce record unavailable: {0}")]
    Unavailable(String),
    /// The app holds as many live nonces as it may; the request is refused until some expire.
    #[error("the app's nonce record is full ({limit} live nonces)")]
    Full { limit: usize },
}

#[async_trait]
pub trait NonceStore: Send + Sync + 'static {
    /// Records `nonce` for `app_key` until `keep_until` (Unix ms), at `now`. Returns false if
    /// it is still recorded (a replay).
    async fn record(
        &self,
        app_key: &str,
        nonce: &str,
        now: UnixMillis,
        keep_until: UnixMillis,
    ) -> Result<bool, NonceError>;
}

/// One app's live nonces, and the same nonces ordered by expiry for cheap purging.
#[derive(Default)]
struct AppNonces {
    until: HashMap<Arc<str>, UnixMillis>,
    expiry: BinaryHeap<Reverse<(UnixMillis, Arc<str>)>>,
}

impl AppNonces {
    fn purge(&mut self, now: UnixMillis) {
        while let Some(Reverse((t, _))) = self.expiry.peek() {
            if *t > now {
                break;
            }
            if let Some(Reverse((t, nonce))) = self.expiry.pop() {
                // A nonce recorded again after expiring has a newer entry; keep that one.
                if self.until.get(&nonce) == Some(&t) {
                    self.until.remove(&nonce);
                }
            }
        }
    }
}

/// In-memory nonce record, for one process.
pub struct MemoryNonceStore {
    apps: Mutex<HashMap<String, AppNonces>>,
    max_per_app: usize,
    records: AtomicU64,
}

impl Default for MemoryNonceStore {
    fn default() -> Self {
        Self::with_limit(DEFAULT_MAX_NONCES_PER_APP)
    }
}

impl MemoryNonceStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A record that holds at most `max_per_app` live nonces per app.
    pub fn with_limit(max_per_app: usize) -> Self {
        Self {
            apps: Mutex::new(HashMap::new()),
            max_per_app: max_per_app.max(1),
            records: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl NonceStore for MemoryNonceStore {
    async fn record(
        &self,
        app_key: &str,
        nonce: &str,
        now: UnixMillis,
        keep_until: UnixMillis,
    ) -> Result<bool, NonceError> {
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        if self.records.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            apps.retain(|_, app| {
                app.purge(now);
                !app.until.is_empty()
            });
        }
        let app = apps.entry(app_key.to_owned()).or_default();
        app.purge(now);
        if app.until.get(nonce).is_some_and(|t| *t > now) {
            return Ok(false);
        }
        if app.until.len() >= self.max_per_app {
            return Err(NonceError::Full {
                limit: self.max_per_app,
            });
        }
        let nonce: Arc<str> = Arc::from(nonce);
        app.until.insert(nonce.clone(), keep_until);
        app.expiry.push(Reverse((keep_until, nonce)));
        Ok(true)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T: UnixMillis = 1_767_225_600_000;

    #[tokio::test]
    async fn a_nonce_is_accepted_once_per_app() {
        let s = MemoryNonceStore::new();
        assert!(s.record("ak_a", "n1", T, T + NONCE_TTL_MS).await.unwrap());
        assert!(!s.record("ak_a", "n1", T + 1, T + 1 + NONCE_TTL_MS).await.unwrap());
        assert!(s.record("ak_b", "n1", T, T + NONCE_TTL_MS).await.unwrap());
    }

    #[tokio::test]
    async fn a_nonce_is_kept_until_exactly_its_expiry() {
        let s = MemoryNonceStore::new();
        let until = T + 601_000;
        assert!(s.record("ak_a", "n1", T, until).await.unwrap());
        assert!(!s.record("ak_a", "n1", until - 1, until + 1000).await.unwrap());
        assert!(s.record("ak_a", "n1", until, until + 1000).await.unwrap());
        assert!(!s.record("ak_a", "n1", until + 999, until + 2000).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_app_is_refused_without_forgetting_and_others_are_not_affected() {
        let s = MemoryNonceStore::with_limit(3);
        for n in ["n1", "n2", "n3"] {
            assert!(s.record("ak_a", n, T, T + 1000).await.unwrap());
        }
        assert!(matches!(
            s.record("ak_a", "n4", T, T + 1000).await,
            Err(NonceError::Full { limit: 3 })
        ));
        // A replay is still recognised as one while the record is full.
        assert!(!s.record("ak_a", "n1", T, T + 1000).await.unwrap());
        assert!(s.record("ak_b", "n4", T, T + 1000).await.unwrap());
        // Once the old nonces expire there is room again.
        assert!(s.record("ak_a", "n4", T + 1000, T + 2000).await.unwrap());
    }

    #[tokio::test]
    async fn idle_apps_are_swept() {
        let s = MemoryNonceStore::new();
        assert!(s.record("ak_idle", "n1", T, T + 1000).await.unwrap());
        for i in 0..SWEEP_EVERY {
            let nonce = format!("n{i}");
            assert!(s.record("ak_busy", &nonce, T + 2000, T + 2001).await.unwrap());
        }
        let apps = s.apps.lock().unwrap();
        assert!(!apps.contains_key("ak_idle"));
    }
}
