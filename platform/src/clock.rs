//! The one clock the engine reads: the request verifier's timestamp window, the webhook
//! breaker's cool-downs and the outbox worker's retry schedule. It is a port like the others
//! (`ports::Ports::clock`): `SystemClock` in a running node, a `ManualClock` in tests that
//! need minutes or hours to pass without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::domain::{now_ms, UnixMillis};

pub trait Clock: Send + Sync + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> UnixMillis;

    /// Now, as a `SystemTime` (the same instant as `now_ms`).
    fn now(&self) -> SystemTime {
        let ms = self.now_ms();
        match u64::try_from(ms) {
            Ok(after) => UNIX_EPOCH + Duration::from_millis(after),
            Err(_) => UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs()),
        }
    }
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> UnixMillis {
        now_ms()
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: UnixMillis) -> Self {
        Self(AtomicI64::new(start))
    }
    pub fn set(&self, t: UnixMillis) {
        self.0.store(t, Ordering::SeqCst);
    }
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> UnixMillis {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_time_and_millis_agree() {
        let clock = ManualClock::new(1_700_000_000_123);
        assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        clock.advance_ms(1_000);
        assert_eq!(clock.now_ms(), 1_700_000_001_123);
    }
}
