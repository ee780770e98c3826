//! Rate limits that hold across nodes: GCRA (the generic cell rate algorithm) in one Lua
//! script per check, on Redis's own clock so the nodes' clocks need not agree. One key per
//! limited thing holds its "theoretical arrival time"; a check is one round trip.
//!
//! Behind the `RateLimits` port, a check Redis cannot answer (down, or slower than the
//! connection's 2 s reply timeout) lets the request through: a rate limit protects the
//! service, and refusing every request while Redis is away would be the outage it guards
//! against. Each such pass is counted in `tern_rate_limit_unchecked_total` and logged.

use ::redis::aio::ConnectionManager;
use ::redis::{RedisResult, Script};
use async_trait::async_trait;
use std::time::Duration;

use super::Keys;
use crate::rate_limits::{RateKey, RateLimited, RateLimits};

/// KEYS: the limit's key. ARGV: interval µs (1 s / rate), tolerance µs (interval × (burst − 1)).
/// Returns -1 when allowed, else how many µs until the next request would be.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - tolerance > now then return tat - tolerance - now end
local next_tat = tat + interval
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil((next_tat - now) / 1000) + 1000)
return -1";

/// The cross-node limiter. The in-process limiter may sit in front of it as an optimisation;
/// this is the one whose answer counts.
pub struct RedisRateLimits {
    conn: ConnectionManager,
    keys: Keys,
    gcra: Script,
}

impl RedisRateLimits {
    pub(crate) fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self {
            conn,
            keys,
            gcra: Script::new(GCRA),
        }
    }

    /// One request against `app`'s limit `name` (for example `api` or `send:<user>`), which
    /// allows `per_second` on average and `burst` at once. `Ok(None)` lets it through;
    /// `Ok(Some(wait))` refuses it and says when to retry.
    pub async fn check(&self, app: &str, name: &str, per_second: u32, burst: u32) -> RedisResult<Option<Duration>> {
        let interval = 1_000_000 / u64::from(per_second.max(1));
        let tolerance = interval * u64::from(burst.max(1) - 1);
        let mut c = self.conn.clone();
        let wait: i64 = self
            .gcra
            .key(self.keys.rate(app, name))
            .arg(interval)
            .arg(tolerance)
            .invoke_async(&mut c)
            .await?;
        Ok((wait >= 0).then(|| Duration::from_micros(wait.unsigned_abs())))
    }
}

/// The key of a budget: its app (the hash tag) and a name inside it.
fn key_parts(key: &RateKey) -> (&str, String) {
    match key {
        RateKey::AppWrites(app) => (app.as_str(), "api:w".to_owned()),
        RateKey::AppReads(app) => (app.as_str(), "api:r".to_owned()),
        RateKey::UserSends(app, user) => (app.as_str(), format!("send:u:{}", user.as_str())),
        RateKey::RoomSends(app, room) => (app.as_str(), format!("send:r:{}", room.as_str())),
    }
}

#[async_trait]
impl RateLimits for RedisRateLimits {
    async fn check(&self, key: RateKey, per_second: u32) -> Result<(), RateLimited> {
        let (app, name) = key_parts(&key);
        // The burst is one second's worth, as in the in-process adapter.
        match RedisRateLimits::check(self, app, &name, per_second, per_second).await {
            Ok(None) => Ok(()),
            Ok(Some(retry_after)) => Err(RateLimited { retry_after }),
            Err(e) => {
                metrics::counter!("tern_rate_limit_unchecked_total").increment(1);
                tracing::warn!(error = %e, "rate limit not checked: Redis did not answer; letting the request through");
                Ok(())
            }
        }
    }

    /// Budgets in Redis span nodes and expire when idle; one node's last session closing
    /// says nothing about the others, so nothing is dropped.
    fn forget(&self, _key: &RateKey) {}
}
