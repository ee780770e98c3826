//! The nonce record of signed requests (SIGNING.md §1): a nonce may be used once per app
//! within 600 s. In one process a map; across API nodes, Redis (`SET NX EX`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// How long a nonce is remembered.
pub const NONCE_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum NonceError {
    #[error("nonce record unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait NonceStore: Send + Sync + 'static {
    /// Records `nonce` for `app_key`. Returns false if it was already recorded within the TTL.
    async fn record(&self, app_key: &str, nonce: &str) -> Result<bool, NonceError>;
}

/// In-memory nonce record. Expired entries are swept on insert once the map has grown,
/// so memory stays proportional to the requests of the last 10 minutes.
pub struct MemoryNonceStore {
    seen: Mutex<HashMap<(String, String), Instant>>,
    ttl: Duration,
}

impl Default for MemoryNonceStore {
    fn default() -> Self {
        Self::with_ttl(NONCE_TTL)
    }
}

impl MemoryNonceStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            ttl,
        }
    }
}

#[async_trait]
impl NonceStore for MemoryNonceStore {
    async fn record(&self, app_key: &str, nonce: &str) -> Result<bool, NonceError> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= 4096 && seen.len().is_power_of_two() {
            let ttl = self.ttl;
            seen.retain(|_, at| now.duration_since(*at) < ttl);
        }
        let key = (app_key.to_owned(), nonce.to_owned());
        match seen.get(&key) {
            Some(at) if now.duration_since(*at) < self.ttl => Ok(false),
            _ => {
                seen.insert(key, now);
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_nonce_is_accepted_once_per_app() {
        let s = MemoryNonceStore::new();
        assert!(s.record("ak_a", "n1").await.unwrap());
        assert!(!s.record("ak_a", "n1").await.unwrap());
        assert!(s.record("ak_b", "n1").await.unwrap());
    }

    #[tokio::test]
    async fn a_nonce_is_forgotten_after_the_ttl() {
        let s = MemoryNonceStore::with_ttl(Duration::from_millis(20));
        assert!(s.record("ak_a", "n1").await.unwrap());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(s.record("ak_a", "n1").await.unwrap());
    }
}
