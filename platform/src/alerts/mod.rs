//! Alerts: rules an app's team sets on its traffic (API error rate, webhook failures, dead
//! webhook events, a drop in connections), and the alerts raised when a rule's condition
//! holds. A rule holds or not at each check (`conditions`); while it holds it has one open
//! alert (raised once per episode, mailed to the tenant's owners and admins), resolved when
//! it stops holding. The checks run on one node at a time (`evaluator`, under a database
//! lease); the console and the operator API manage rules through `service::alerts`.

pub mod conditions;
pub mod evaluator;

use crate::domain::UnixMillis;
use crate::ids::AppId;

/// Most rules one app may have.
pub const MAX_RULES_PER_APP: usize = 50;
/// The longest look-back of a windowed rule: a day (the per-minute counters keep two).
pub const MAX_WINDOW_MINUTES: i64 = 1440;
/// The largest count threshold or minimum volume.
pub const MAX_COUNT: i64 = 10_000_000;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// Server API calls that answered an error, in percent of all calls, over the window.
    ErrorRate,
    /// Webhook attempts that failed (retrying, dead, or a failed test event) over the window.
    WebhookFailures,
    /// Webhook events that are dead now (every retry failed; waiting for a redeliver).
    DeadEvents,
    /// The app's peak connections in the last complete hour, fallen by more than the
    /// threshold in percent from the hour before.
    ConnectionDrop,
}

impl AlertKind {
    pub const ALL: [AlertKind; 4] = [
        AlertKind::ErrorRate,
        AlertKind::WebhookFailures,
        AlertKind::DeadEvents,
        AlertKind::ConnectionDrop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ErrorRate => "error_rate",
            Self::WebhookFailures => "webhook_failures",
            Self::DeadEvents => "dead_events",
            Self::ConnectionDrop => "connection_drop",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// In words, for pages and mails.
    pub fn label(self) -> &'static str {
        match self {
            Self::ErrorRate => "API error rate",
            Self::WebhookFailures => "Webhook failures",
            Self::DeadEvents => "Dead webhook events",
            Self::ConnectionDrop => "Connection drop",
        }
    }

    /// The threshold is a percentage (else a count).
    pub fn in_percent(self) -> bool {
        matches!(self, Self::ErrorRate | Self::ConnectionDrop)
    }

    /// The rule looks back `window_minutes`.
    pub fn windowed(self) -> bool {
        matches!(self, Self::ErrorRate | Self::WebhookFailures)
    }

    /// The rule judges only with at least `min_volume` (calls, or the earlier hour's peak).
    pub fn has_min_volume(self) -> bool {
        matches!(self, Self::ErrorRate | Self::ConnectionDrop)
    }
}

/// A rule's settings, as a caller gives them; [`RuleSpec::validate`] checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSpec {
    pub kind: AlertKind,
    /// Percent (error rate, connection drop; 1 to 100) or a count (0 to 10,000,000): the
    /// rule holds when the figure is **above** it.
    pub threshold: i64,
    /// Error rate and webhook failures: how many minutes back (1 to 1440). 0 for the others.
    pub window_minutes: i64,
    /// Error rate: the fewest calls in the window to judge; connection drop: the fewest
    /// connections in the earlier hour (1 to 10,000,000). 0 for the others.
    pub min_volume: i64,
}

impl RuleSpec {
    /// The spec with what its kind does not use set to 0, or what is wrong, in words.
    pub fn validate(self) -> Result<RuleSpec, String> {
        let k = self.kind;
        if k.in_percent() {
            if !(1..=100).contains(&self.threshold) {
                return Err(format!(
                    "the threshold of a {} rule is a percentage from 1 to 100, not {}",
                    k.as_str(),
                    self.threshold
                ));
            }
        } else if !(0..=MAX_COUNT).contains(&self.threshold) {
            return Err(format!(
                "the threshold of a {} rule is a count from 0 to {MAX_COUNT}, not {}",
                k.as_str(),
                self.threshold
            ));
        }
        if k.windowed() && !(1..=MAX_WINDOW_MINUTES).contains(&self.window_minutes) {
            return Err(format!(
                "window_minutes must be from 1 to {MAX_WINDOW_MINUTES}, not {}",
                self.window_minutes
            ));
        }
        if k.has_min_volume() && !(1..=MAX_COUNT).contains(&self.min_volume) {
            return Err(format!(
                "min_volume must be from 1 to {MAX_COUNT}, not {}",
                self.min_volume
            ));
        }
        Ok(RuleSpec {
            kind: k,
            threshold: self.threshold,
            window_minutes: if k.windowed() { self.window_minutes } else { 0 },
            min_volume: if k.has_min_volume() { self.min_volume } else { 0 },
        })
    }

    /// The condition in words: "more than 50 % of at least 3 API calls answer an error over 5 minutes".
    pub fn describe(&self) -> String {
        match self.kind {
            AlertKind::ErrorRate => format!(
                "more than {} % of API calls answer an error over {} min (with at least {} calls)",
                self.threshold, self.window_minutes, self.min_volume
            ),
            AlertKind::WebhookFailures => format!(
                "more than {} failed webhook attempts over {} min",
                self.threshold, self.window_minutes
            ),
            AlertKind::DeadEvents => format!("more than {} dead webhook events", self.threshold),
            AlertKind::ConnectionDrop => format!(
                "peak connections fall by more than {} % from one hour to the next (from at least {})",
                self.threshold, self.min_volume
            ),
        }
    }
}

/// One rule of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRule {
    /// `ar_` and a ULID.
    pub id: String,
    pub app_id: AppId,
    pub spec: RuleSpec,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl AlertRule {
    pub fn new_id() -> String {
        format!("ar_{}", ulid::Ulid::new())
    }
}

/// One episode of a rule's condition holding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// `al_` and a ULID: newest first by id.
    pub id: String,
    pub app_id: AppId,
    pub rule_id: String,
    pub kind: AlertKind,
    pub threshold: i64,
    /// What was seen when it was raised.
    pub summary: String,
    pub raised_at: UnixMillis,
    /// `None` while it is open.
    pub resolved_at: Option<UnixMillis>,
}

impl Alert {
    pub fn new_id() -> String {
        format!("al_{}", ulid::Ulid::new())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(kind: AlertKind, threshold: i64, window_minutes: i64, min_volume: i64) -> RuleSpec {
        RuleSpec {
            kind,
            threshold,
            window_minutes,
            min_volume,
        }
    }

    #[test]
    fn thresholds_are_checked_per_kind_and_unused_fields_cleared() {
        assert!(spec(AlertKind::ErrorRate, 50, 5, 3).validate().is_ok());
        assert!(spec(AlertKind::ErrorRate, 0, 5, 3).validate().is_err());
        assert!(spec(AlertKind::ErrorRate, 101, 5, 3).validate().is_err());
        assert!(spec(AlertKind::ErrorRate, 50, 0, 3).validate().is_err());
        assert!(spec(AlertKind::ErrorRate, 50, 1441, 3).validate().is_err());
        assert!(spec(AlertKind::ErrorRate, 50, 5, 0).validate().is_err());
        assert!(spec(AlertKind::WebhookFailures, -1, 5, 0).validate().is_err());
        assert!(spec(AlertKind::ConnectionDrop, 50, 0, 0).validate().is_err());
        let dead = spec(AlertKind::DeadEvents, 0, 99, 7).validate().unwrap();
        assert_eq!((dead.window_minutes, dead.min_volume), (0, 0));
        assert_eq!(AlertKind::parse("dead_events"), Some(AlertKind::DeadEvents));
        assert_eq!(AlertKind::parse("nope"), None);
    }
}
