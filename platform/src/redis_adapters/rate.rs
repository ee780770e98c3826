//! Rate limits that hold across nodes: GCRA (the generic cell rate algorithm) in one Lua
//! script per check, on Redis's own clock so the nodes' clocks need not agree. One key per
//! limited thing holds its "theoretical arrival time"; a check is one round trip.

use ::redis::aio::ConnectionManager;
use ::redis::{RedisResult, Script};
use std::time::Duration;

use super::Keys;

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
