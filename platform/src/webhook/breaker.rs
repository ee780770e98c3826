//! The before-send circuit breaker (SIGNING.md §3). A tenant's endpoint that is down would
//! otherwise cost every message the full hook timeout; after `FAILURE_THRESHOLD` failures in
//! a row the hook is paused and the app's policy applies without calling. Each pause is
//! twice the previous one (60 s up to 15 min); one good answer closes the breaker and
//! resets the cool-down. The state is per app and per process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::clock::Clock;
use crate::domain::UnixMillis;
use crate::ids::AppId;

pub const FAILURE_THRESHOLD: u32 = 10;
pub const FIRST_COOLDOWN_MS: u64 = 60_000;
pub const MAX_COOLDOWN_MS: u64 = 15 * 60_000;

/// What the API and console show of an app's breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerState {
    /// While set (and in the future), the hook is not called and the policy applies.
    pub paused_until: Option<UnixMillis>,
    pub consecutive_failures: u32,
    /// The length of the current pause, or of the next one if not paused.
    pub cooldown_ms: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    consecutive_failures: u32,
    paused_until: Option<UnixMillis>,
    current_cooldown_ms: u64,
    next_cooldown_ms: u64,
}

impl Default for Entry {
    fn default() -> Self {
        Self {
            consecutive_failures: 0,
            paused_until: None,
            current_cooldown_ms: FIRST_COOLDOWN_MS,
            next_cooldown_ms: FIRST_COOLDOWN_MS,
        }
    }
}

pub struct Breaker {
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<AppId, Entry>>,
}

impl Breaker {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<AppId, Entry>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the hook may be called now. A pause that has run out ends here, and the
    /// next call is the trial: its failure pauses again, for twice as long.
    pub fn allows(&self, app: &AppId) -> bool {
        let now = self.clock.now_ms();
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(app) else {
            return true;
        };
        match entry.paused_until {
            Some(until) if now < until => false,
            Some(_) => {
                entry.paused_until = None;
                set_gauge(app, false);
                true
            }
            None => true,
        }
    }

    pub fn record_success(&self, app: &AppId) {
        if self.entries().remove(app).is_some_and(|e| e.paused_until.is_some()) {
            set_gauge(app, false);
        }
    }

    pub fn record_failure(&self, app: &AppId) {
        let now = self.clock.now_ms();
        let mut entries = self.entries();
        let entry = entries.entry(app.clone()).or_default();
        entry.consecutive_failures = entry.consecutive_failures.saturating_add(1);
        // Calls already in flight when the breaker opened do not stretch the pause.
        let paused = entry.paused_until.is_some_and(|until| now < until);
        if entry.consecutive_failures >= FAILURE_THRESHOLD && !paused {
            let cooldown = entry.next_cooldown_ms;
            entry.paused_until = Some(now.saturating_add(i64::try_from(cooldown).unwrap_or(i64::MAX)));
            entry.current_cooldown_ms = cooldown;
            entry.next_cooldown_ms = (cooldown * 2).min(MAX_COOLDOWN_MS);
            set_gauge(app, true);
            tracing::warn!(app = %app, cooldown_ms = cooldown, "before-send hook paused after repeated failures");
        }
    }

    pub fn state(&self, app: &AppId) -> BreakerState {
        let now = self.clock.now_ms();
        let entries = self.entries();
        let entry = entries.get(app).cloned().unwrap_or_default();
        match entry.paused_until {
            Some(until) if now < until => BreakerState {
                paused_until: Some(until),
                consecutive_failures: entry.consecutive_failures,
                cooldown_ms: entry.current_cooldown_ms,
            },
            _ => BreakerState {
                paused_until: None,
                consecutive_failures: entry.consecutive_failures,
                cooldown_ms: entry.next_cooldown_ms,
            },
        }
    }
}

fn set_gauge(app: &AppId, open: bool) {
    metrics::gauge!("tern_webhook_breaker_open", "app" => app.to_string()).set(if open { 1.0 } else { 0.0 });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn opens_after_ten_failures_and_doubles_up_to_fifteen_minutes() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let b = Breaker::new(clock.clone());
        let app = AppId::generate();
        for _ in 0..9 {
            assert!(b.allows(&app));
            b.record_failure(&app);
        }
        assert!(b.allows(&app), "nine failures do not open it");
        b.record_failure(&app);
        assert!(!b.allows(&app));
        assert_eq!(
            b.state(&app),
            BreakerState {
                paused_until: Some(1_060_000),
                consecutive_failures: 10,
                cooldown_ms: 60_000
            }
        );
        let mut expected = [120_000u64, 240_000, 480_000, 900_000, 900_000].into_iter();
        for _ in 0..5 {
            let until = b.state(&app).paused_until.unwrap();
            clock.set(until - 1);
            assert!(!b.allows(&app));
            clock.set(until);
            assert!(b.allows(&app), "the trial call goes through when the pause ends");
            b.record_failure(&app);
            assert!(!b.allows(&app), "a failed trial pauses again");
            assert_eq!(b.state(&app).cooldown_ms, expected.next().unwrap());
        }
        clock.advance_ms(900_000);
        assert!(b.allows(&app));
        b.record_success(&app);
        assert_eq!(
            b.state(&app),
            BreakerState {
                paused_until: None,
                consecutive_failures: 0,
                cooldown_ms: 60_000
            }
        );
        let other = AppId::generate();
        assert!(b.allows(&other), "apps have separate breakers");
    }
}
