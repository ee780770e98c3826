//! Whether a rule's condition holds now, from the store's figures: the per-minute API calls
//! and errors, the webhook delivery log, the dead outbox events, and the hourly peak
//! connections. Each answer says in words what was seen, for the alert and its mail.

use crate::domain::UnixMillis;
use crate::store::{Store, StoreResult};
use crate::usage::{hour_of, minute_of, HOUR_MS, MINUTE_MS};

use super::{AlertKind, AlertRule};

/// What one check of a rule found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub holds: bool,
    /// What was seen, in words.
    pub summary: String,
}

/// Whether `errors` of `calls` is above `percent` (in whole numbers, no rounding).
pub fn above_percent(part: i64, whole: i64, percent: i64) -> bool {
    whole > 0 && part.saturating_mul(100) > percent.saturating_mul(whole)
}

/// The error-rate verdict on counted figures (the window's calls and errors).
pub fn error_rate(rule: &AlertRule, calls: i64, errors: i64) -> Observation {
    let s = &rule.spec;
    let percent = if calls > 0 {
        100.0 * errors as f64 / calls as f64
    } else {
        0.0
    };
    Observation {
        holds: calls >= s.min_volume && above_percent(errors, calls, s.threshold),
        summary: format!(
            "{errors} of {calls} API calls answered an error ({percent:.1} %) in the last {} min; \
             the rule: above {} % with at least {} calls",
            s.window_minutes, s.threshold, s.min_volume
        ),
    }
}

/// The connection-drop verdict: `earlier` and `later` are two consecutive hours' peaks.
pub fn connection_drop(rule: &AlertRule, earlier: i64, later: i64) -> Observation {
    let s = &rule.spec;
    let dropped = (earlier - later).max(0);
    Observation {
        holds: earlier >= s.min_volume && above_percent(dropped, earlier, s.threshold),
        summary: format!(
            "peak connections went from {earlier} to {later} in the last complete hour; \
             the rule: a drop of more than {} % from at least {}",
            s.threshold, s.min_volume
        ),
    }
}

/// Checks one rule at `now`.
pub async fn observe(store: &dyn Store, rule: &AlertRule, now: UnixMillis) -> StoreResult<Observation> {
    let s = &rule.spec;
    let app = &rule.app_id;
    Ok(match s.kind {
        AlertKind::ErrorRate => {
            // The window's minutes end with the current one.
            let from = minute_of(now) - (s.window_minutes - 1).max(0) * MINUTE_MS;
            let (calls, errors) = store.minute_usage(app, from).await?;
            error_rate(rule, calls, errors)
        }
        AlertKind::WebhookFailures => {
            let failed = store
                .failed_webhook_attempts(app, now - s.window_minutes * MINUTE_MS)
                .await?;
            Observation {
                holds: failed > s.threshold,
                summary: format!(
                    "{failed} webhook attempts failed in the last {} min; the rule: more than {}",
                    s.window_minutes, s.threshold
                ),
            }
        }
        AlertKind::DeadEvents => {
            let dead = store.dead_event_count(app).await?;
            Observation {
                holds: dead > s.threshold,
                summary: format!(
                    "{dead} webhook events are dead (waiting for a redeliver); the rule: more than {}",
                    s.threshold
                ),
            }
        }
        AlertKind::ConnectionDrop => {
            // The last two complete hours: the current one has not reached its peak yet.
            let last = hour_of(now) - HOUR_MS;
            let hours = store.usage(app, last - HOUR_MS, last + HOUR_MS).await?;
            let peak = |h: UnixMillis| hours.iter().find(|u| u.hour == h).map_or(0, |u| u.counts.connections);
            connection_drop(rule, peak(last - HOUR_MS), peak(last))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::RuleSpec;
    use crate::ids::AppId;

    fn rule(kind: AlertKind, threshold: i64, min_volume: i64) -> AlertRule {
        AlertRule {
            id: "ar_1".into(),
            app_id: AppId::generate(),
            spec: RuleSpec {
                kind,
                threshold,
                window_minutes: 5,
                min_volume,
            },
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn the_error_rate_holds_above_its_threshold_with_enough_calls() {
        let r = rule(AlertKind::ErrorRate, 50, 4);
        assert!(error_rate(&r, 4, 4).holds);
        assert!(error_rate(&r, 10, 6).holds);
        assert!(!error_rate(&r, 10, 5).holds, "exactly the threshold is not above it");
        assert!(!error_rate(&r, 3, 3).holds, "too few calls to judge");
        assert!(!error_rate(&r, 0, 0).holds);
        assert!(error_rate(&r, 4, 4).summary.contains("4 of 4 API calls"));
    }

    #[test]
    fn a_connection_drop_holds_when_the_peak_falls_by_more_than_the_threshold() {
        let r = rule(AlertKind::ConnectionDrop, 50, 10);
        assert!(connection_drop(&r, 100, 40).holds);
        assert!(!connection_drop(&r, 100, 50).holds);
        assert!(!connection_drop(&r, 100, 200).holds);
        assert!(!connection_drop(&r, 9, 0).holds, "too few connections before");
    }
}
