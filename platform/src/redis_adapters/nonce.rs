//! The nonce record in Redis: `SET key 1 NX PX ttl`, one command per signed request, so a
//! request replayed to any API node is refused. Redis expires each nonce by itself; there
//! is no per-app count to cap, because expiry bounds what an app can hold to its request
//! rate times the window, and that rate is limited before the nonce is recorded.

use ::redis::aio::ConnectionManager;
use async_trait::async_trait;

use super::Keys;
use crate::domain::UnixMillis;
use crate::nonce::{NonceError, NonceStore};

pub struct RedisNonces {
    conn: ConnectionManager,
    keys: Keys,
}

impl RedisNonces {
    pub(crate) fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self { conn, keys }
    }
}

#[async_trait]
impl NonceStore for RedisNonces {
    async fn record(
        &self,
        app_key: &str,
        nonce: &str,
        now: UnixMillis,
        keep_until: UnixMillis,
    ) -> Result<bool, NonceError> {
        let ttl = (keep_until - now).max(1);
        let mut c = self.conn.clone();
        let set: Option<String> = ::redis::cmd("SET")
            .arg(self.keys.nonce(app_key, nonce))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl)
            .query_async(&mut c)
            .await
            .map_err(|e| NonceError::Unavailable(e.to_string()))?;
        Ok(set.is_some())
    }
}
