//! The console's overview: an app's (or, for operators, the whole platform's) messages, API
//! calls and errors, peak connections and webhook success over the last hour, day and 30 days, from the
//! usage counters in the store (`usage_hourly`) and the webhook delivery log; the last 24
//! hours hour by hour for a chart; and the connections open on this node now.

use crate::delivery::Pipeline;
use crate::domain::{App, UnixMillis};
use crate::store::StoreResult;
use crate::usage::{hour_of, UsageCounts, HOUR_MS};

/// The windows the overview shows, in hours, with their names.
pub const WINDOWS: [(i64, &str); 3] = [(1, "Last hour"), (24, "Last 24 hours"), (720, "Last 30 days")];

/// The delivery log keeps 7 days: a longer window's webhook figures cover only those.
pub const WEBHOOK_LOG_DAYS: i64 = 7;

/// One window's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub hours: i64,
    pub label: &'static str,
    pub messages: i64,
    pub api_calls: i64,
    /// Of `api_calls`, those that answered an error (4xx or 5xx).
    pub api_errors: i64,
    /// The most connections open at once in any hour of the window (for the platform: the
    /// apps' peaks added up).
    pub peak_connections: i64,
    /// After-event attempts delivered, and all attempts, in the window (at most the log's 7
    /// days).
    pub webhook_delivered: i64,
    pub webhook_attempts: i64,
}

impl Window {
    /// API calls that answered an error, in percent; `None` without calls.
    pub fn error_percent(&self) -> Option<f64> {
        (self.api_calls > 0).then(|| 100.0 * self.api_errors as f64 / self.api_calls as f64)
    }

    /// Webhook attempts that were delivered, in percent; `None` without attempts.
    pub fn webhook_success_percent(&self) -> Option<f64> {
        (self.webhook_attempts > 0).then(|| 100.0 * self.webhook_delivered as f64 / self.webhook_attempts as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub windows: Vec<Window>,
    /// The last 24 hours, oldest first, every hour (zeros where nothing was counted).
    pub hourly: Vec<(UnixMillis, UsageCounts)>,
    /// SDK connections open on this node now.
    pub live_connections_here: i64,
}

/// The overview of one app, or with `None` of every app (operators only: the caller checks).
/// Windows end with the current hour (`now`'s hour counts as the last one).
pub async fn overview(p: &Pipeline, app: Option<&App>, now: UnixMillis) -> StoreResult<Overview> {
    let to = hour_of(now) + HOUR_MS;
    let longest = WINDOWS.iter().map(|(h, _)| *h).max().unwrap_or(24);
    let from = to - longest * HOUR_MS;
    let stored: Vec<(UnixMillis, UsageCounts)> = match app {
        Some(a) => p
            .store()
            .usage(&a.id, from, to)
            .await?
            .into_iter()
            .map(|h| (h.hour, h.counts))
            .collect(),
        None => p.store().platform_usage(from, to).await?,
    };
    let mut windows = Vec::with_capacity(WINDOWS.len());
    for (hours, label) in WINDOWS {
        let start = to - hours * HOUR_MS;
        let inside = stored.iter().filter(|(h, _)| *h >= start).map(|(_, c)| c);
        let (messages, api_calls, api_errors, peak_connections) = inside.fold((0, 0, 0, 0), |(m, a, e, c), u| {
            (m + u.messages, a + u.api_calls, e + u.errors, c.max(u.connections))
        });
        let since = start.max(now - WEBHOOK_LOG_DAYS * 24 * HOUR_MS);
        let (webhook_delivered, webhook_attempts) = p.store().webhook_attempt_counts(app.map(|a| &a.id), since).await?;
        windows.push(Window {
            hours,
            label,
            messages,
            api_calls,
            api_errors,
            peak_connections,
            webhook_delivered,
            webhook_attempts,
        });
    }
    let day = to - 24 * HOUR_MS;
    let mut at = stored.iter().filter(|(h, _)| *h >= day).peekable();
    let mut hourly = Vec::with_capacity(24);
    let mut h = day;
    while h < to {
        let counts = match at.peek() {
            Some((hour, c)) if *hour == h => {
                let c = *c;
                at.next();
                c
            }
            _ => UsageCounts::default(),
        };
        hourly.push((h, counts));
        h += HOUR_MS;
    }
    Ok(Overview {
        windows,
        hourly,
        live_connections_here: p.usage().live(app.map(|a| &a.id)),
    })
}
