//! Usage counters per app per hour: messages stored, server API calls (and those of them
//! that answered an error), and the most live SDK connections at once. Each node counts in memory (a lock and a map add, no I/O on the
//! hot path) and adds its counts to the store's `usage_hourly` every few seconds, so charts
//! and CSV exports come from the database, whichever node served the traffic.
//!
//! Messages and API calls from every node add up. Connections are a peak: each node adds
//! the most it held at once, and the store keeps the largest of those per hour.
//!
//! API calls and errors are also kept per minute (`usage_minutely`, two days), for alert
//! rules on an error rate over the last few minutes (`crate::alerts`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::{now_ms, UnixMillis};
use crate::ids::AppId;
use crate::store::Store;

/// An hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// A minute in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// How often a node writes its counts.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// The first millisecond of the hour `at` falls in.
pub fn hour_of(at: UnixMillis) -> UnixMillis {
    at - at.rem_euclid(HOUR_MS)
}

/// The first millisecond of the minute `at` falls in.
pub fn minute_of(at: UnixMillis) -> UnixMillis {
    at - at.rem_euclid(MINUTE_MS)
}

/// Counts of one app in one hour (what a node adds, or what the store holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageCounts {
    pub messages: i64,
    pub api_calls: i64,
    /// The most live connections at once.
    pub connections: i64,
    /// API calls that answered an error (4xx or 5xx); counted in `api_calls` too.
    pub errors: i64,
}

/// One app's API calls and errors in one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageMinute {
    pub app_id: AppId,
    /// The minute's first millisecond.
    pub minute: UnixMillis,
    pub api_calls: i64,
    pub errors: i64,
}

/// One app's hour, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageHour {
    pub app_id: AppId,
    /// The hour's first millisecond.
    pub hour: UnixMillis,
    pub counts: UsageCounts,
}

#[derive(Default)]
struct State {
    /// Counts not yet written, by app and hour.
    pending: HashMap<(AppId, UnixMillis), UsageCounts>,
    /// API calls and errors not yet written, by app and minute.
    minutes: HashMap<(AppId, UnixMillis), (i64, i64)>,
    /// Live connections of each app on this node now.
    live: HashMap<AppId, i64>,
}

/// This node's counters; one per engine, shared by every door.
#[derive(Default)]
pub struct UsageMeter {
    state: Mutex<State>,
}

impl UsageMeter {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    fn entry<'a>(state: &'a mut State, app: &AppId, at: UnixMillis) -> &'a mut UsageCounts {
        state.pending.entry((app.clone(), hour_of(at))).or_default()
    }

    /// A message was stored.
    pub fn message(&self, app: &AppId) {
        self.message_at(app, now_ms());
    }

    pub fn message_at(&self, app: &AppId, at: UnixMillis) {
        self.with(|s| Self::entry(s, app, at).messages += 1);
    }

    /// A server API request was authenticated.
    pub fn api_call(&self, app: &AppId) {
        let at = now_ms();
        self.with(|s| {
            Self::entry(s, app, at).api_calls += 1;
            s.minutes.entry((app.clone(), minute_of(at))).or_default().0 += 1;
        });
    }

    /// An authenticated server API request answered an error (4xx or 5xx). Called once per
    /// request, after `api_call`.
    pub fn api_error(&self, app: &AppId) {
        self.api_error_at(app, now_ms());
    }

    pub fn api_error_at(&self, app: &AppId, at: UnixMillis) {
        self.with(|s| {
            Self::entry(s, app, at).errors += 1;
            s.minutes.entry((app.clone(), minute_of(at))).or_default().1 += 1;
        });
    }

    /// An SDK connection of the app opened (`delta` 1) or closed (`delta` -1).
    pub fn connection(&self, app: &AppId, delta: i64) {
        self.connection_at(app, delta, now_ms());
    }

    pub fn connection_at(&self, app: &AppId, delta: i64, at: UnixMillis) {
        self.with(|s| {
            let live = s.live.entry(app.clone()).or_default();
            *live = (*live + delta).max(0);
            let now = *live;
            if now == 0 {
                s.live.remove(app);
            }
            let e = Self::entry(s, app, at);
            e.connections = e.connections.max(now);
        });
    }

    /// SDK connections open on this node now: one app's, or with `None` every app's.
    pub fn live(&self, app: Option<&AppId>) -> i64 {
        self.with(|s| match app {
            Some(a) => s.live.get(a).copied().unwrap_or(0),
            None => s.live.values().sum(),
        })
    }

    /// Takes the counts not yet written. Apps with live connections start the hour of `at`
    /// with their live count as its peak so far.
    pub fn take(&self, at: UnixMillis) -> Vec<UsageHour> {
        self.with(|s| {
            let hour = hour_of(at);
            let live: Vec<(AppId, i64)> = s.live.iter().map(|(a, n)| (a.clone(), *n)).collect();
            for (app, n) in live {
                let e = s.pending.entry((app, hour)).or_default();
                e.connections = e.connections.max(n);
            }
            s.pending
                .drain()
                .map(|((app_id, hour), counts)| UsageHour { app_id, hour, counts })
                .collect()
        })
    }

    /// Takes the per-minute calls and errors not yet written.
    pub fn take_minutes(&self) -> Vec<UsageMinute> {
        self.with(|s| {
            s.minutes
                .drain()
                .map(|((app_id, minute), (api_calls, errors))| UsageMinute {
                    app_id,
                    minute,
                    api_calls,
                    errors,
                })
                .collect()
        })
    }

    /// Writes what was counted since the last flush. On a store error the counts are put
    /// back, to be tried with the next flush.
    pub async fn flush(&self, store: &dyn Store) {
        let taken = self.take(now_ms());
        let minutes = self.take_minutes();
        if taken.is_empty() && minutes.is_empty() {
            return;
        }
        if let Err(e) = store.add_usage(&taken, &minutes).await {
            tracing::warn!(error = %e, "usage counters not written; kept for the next try");
            self.with(|s| {
                for h in taken {
                    let e = s.pending.entry((h.app_id, h.hour)).or_default();
                    e.messages += h.counts.messages;
                    e.api_calls += h.counts.api_calls;
                    e.errors += h.counts.errors;
                    e.connections = e.connections.max(h.counts.connections);
                }
                for m in minutes {
                    let e = s.minutes.entry((m.app_id, m.minute)).or_default();
                    e.0 += m.api_calls;
                    e.1 += m.errors;
                }
            });
        }
    }

    /// Flushes every `every` until `stop`, then once more.
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>, every: Duration, stop: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush(store.as_ref()).await,
                () = stop.cancelled() => break,
            }
        }
        self.flush(store.as_ref()).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_go_to_their_hour_and_connections_keep_their_peak() {
        let m = UsageMeter::default();
        let app = AppId::generate();
        let h = 10 * HOUR_MS;
        m.message_at(&app, h + 5);
        m.message_at(&app, h + 6);
        m.message_at(&app, h + HOUR_MS);
        m.connection_at(&app, 1, h + 1);
        m.connection_at(&app, 1, h + 2);
        m.connection_at(&app, -1, h + 3);
        let mut taken = m.take(h + 10);
        taken.sort_by_key(|u| u.hour);
        assert_eq!(taken.len(), 2);
        assert_eq!(
            taken[0].counts,
            UsageCounts {
                messages: 2,
                api_calls: 0,
                connections: 2,
                errors: 0,
            }
        );
        assert_eq!(taken[1].counts.messages, 1);
        // Still one live connection: the next hour starts with it.
        let next = m.take(h + HOUR_MS + 5);
        assert_eq!(next.len(), 1);
        assert_eq!((next[0].hour, next[0].counts.connections), (h + HOUR_MS, 1));
        m.connection_at(&app, -1, h + HOUR_MS + 6);
        m.connection_at(&app, -1, h + HOUR_MS + 7);
        let after = m.take(h + HOUR_MS + 8);
        assert_eq!(after[0].counts.connections, 0, "never below zero");
        assert!(m.take(h + HOUR_MS + 9).is_empty());
        assert_eq!(hour_of(h + 59), h);
    }

    #[test]
    fn errors_count_per_hour_and_per_minute() {
        let m = UsageMeter::default();
        let app = AppId::generate();
        m.api_call(&app);
        m.api_call(&app);
        m.api_error(&app);
        let hours = m.take(now_ms());
        assert_eq!((hours[0].counts.api_calls, hours[0].counts.errors), (2, 1));
        let minutes = m.take_minutes();
        assert_eq!(
            minutes.iter().fold((0, 0), |(c, e), m| (c + m.api_calls, e + m.errors)),
            (2, 1)
        );
        assert!(m.take_minutes().is_empty());
        assert_eq!(minute_of(MINUTE_MS * 3 + 7), MINUTE_MS * 3);
    }
}
