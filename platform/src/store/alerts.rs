//! Alert rules, raised alerts, the figures the rules read that no other area answers (calls
//! and errors per minute, failed webhook attempts, dead events), and the lease that lets one
//! node at a time check the rules.

use async_trait::async_trait;

use crate::alerts::{Alert, AlertRule};
use crate::domain::UnixMillis;
use crate::ids::AppId;

use super::StoreResult;

#[async_trait]
pub trait AlertStore: Send + Sync {
    async fn create_alert_rule(&self, rule: &AlertRule) -> StoreResult<()>;
    /// Changes the rule's settings (`updated_at` too); `false` when the app has no such rule.
    async fn update_alert_rule(&self, rule: &AlertRule) -> StoreResult<bool>;
    /// Deletes the app's rule and resolves its open alert at `now`; `false` when there is none.
    async fn delete_alert_rule(&self, app: &AppId, id: &str, now: UnixMillis) -> StoreResult<bool>;
    async fn alert_rule(&self, app: &AppId, id: &str) -> StoreResult<Option<AlertRule>>;
    /// The app's rules oldest first, or with `None` every app's (for the evaluator).
    async fn alert_rules(&self, app: Option<&AppId>) -> StoreResult<Vec<AlertRule>>;
    /// Keeps a new open alert; `false` (nothing written) when its rule has an open one already.
    async fn raise_alert(&self, alert: &Alert) -> StoreResult<bool>;
    /// Resolves the app's open alert at `now`; `false` when it was not open.
    async fn resolve_alert(&self, app: &AppId, id: &str, now: UnixMillis) -> StoreResult<bool>;
    /// The app's alerts, open and resolved, newest first, before id `before`.
    async fn alerts(&self, app: &AppId, before: Option<&str>, limit: u32) -> StoreResult<Vec<Alert>>;
    /// Open alerts, newest first: the app's, or with `None` every app's.
    async fn open_alerts(&self, app: Option<&AppId>) -> StoreResult<Vec<Alert>>;
    /// The app's API calls and errors in the minutes from `from` on.
    async fn minute_usage(&self, app: &AppId, from: UnixMillis) -> StoreResult<(i64, i64)>;
    /// Deletes every app's per-minute counts from before `before`; returns how many.
    async fn prune_minute_usage(&self, before: UnixMillis) -> StoreResult<u64>;
    /// The app's webhook attempts since `since` that were not delivered (test events too).
    async fn failed_webhook_attempts(&self, app: &AppId, since: UnixMillis) -> StoreResult<i64>;
    /// How many of the app's webhook events are dead now.
    async fn dead_event_count(&self, app: &AppId) -> StoreResult<i64>;
    /// Takes or renews the lease `name` for `owner` until `until`: `true` when `owner` holds
    /// it now (it was free, had lapsed by `now`, or was `owner`'s already).
    async fn take_worker_lease(&self, name: &str, owner: &str, now: UnixMillis, until: UnixMillis)
        -> StoreResult<bool>;
}

/// `impl AlertStore` for a SQL adapter. Expanded by `shared_sql::sql_store!`.
macro_rules! alerts_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        const RULE_COLUMNS: &str = "id, app_id, kind, threshold, window_minutes, min_volume, created_at, updated_at";
        const ALERT_COLUMNS: &str = "id, app_id, rule_id, kind, threshold, summary, raised_at, resolved_at";

        fn stored_kind(row: &DbRow) -> StoreResult<$crate::alerts::AlertKind> {
            let kind: String = col(row, "kind")?;
            $crate::alerts::AlertKind::parse(&kind).ok_or_else(|| corrupt("alert kind", &kind))
        }

        fn stored_app(row: &DbRow) -> StoreResult<AppId> {
            let app: String = col(row, "app_id")?;
            AppId::parse(&app).map_err(|_| corrupt("app id", &app))
        }

        fn rule_from_row(row: &DbRow) -> StoreResult<$crate::alerts::AlertRule> {
            Ok($crate::alerts::AlertRule {
                id: col(row, "id")?,
                app_id: stored_app(row)?,
                spec: $crate::alerts::RuleSpec {
                    kind: stored_kind(row)?,
                    threshold: col(row, "threshold")?,
                    window_minutes: col(row, "window_minutes")?,
                    min_volume: col(row, "min_volume")?,
                },
                created_at: col(row, "created_at")?,
                updated_at: col(row, "updated_at")?,
            })
        }

        fn alert_from_row(row: &DbRow) -> StoreResult<$crate::alerts::Alert> {
            Ok($crate::alerts::Alert {
                id: col(row, "id")?,
                app_id: stored_app(row)?,
                rule_id: col(row, "rule_id")?,
                kind: stored_kind(row)?,
                threshold: col(row, "threshold")?,
                summary: col(row, "summary")?,
                raised_at: col(row, "raised_at")?,
                resolved_at: col(row, "resolved_at")?,
            })
        }

        #[async_trait]
        impl $crate::store::AlertStore for $store {
            async fn create_alert_rule(&self, r: &$crate::alerts::AlertRule) -> StoreResult<()> {
                sqlx::query::<$db>(&format!(
                    "INSERT INTO alert_rules ({RULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(&r.id)
                .bind(r.app_id.as_str())
                .bind(r.spec.kind.as_str())
                .bind(r.spec.threshold)
                .bind(r.spec.window_minutes)
                .bind(r.spec.min_volume)
                .bind(r.created_at)
                .bind(r.updated_at)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn update_alert_rule(&self, r: &$crate::alerts::AlertRule) -> StoreResult<bool> {
                let done = sqlx::query::<$db>(
                    "UPDATE alert_rules SET kind = $1, threshold = $2, window_minutes = $3, min_volume = $4, \
                     updated_at = $5 WHERE app_id = $6 AND id = $7",
                )
                .bind(r.spec.kind.as_str())
                .bind(r.spec.threshold)
                .bind(r.spec.window_minutes)
                .bind(r.spec.min_volume)
                .bind(r.updated_at)
                .bind(r.app_id.as_str())
                .bind(&r.id)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_alert_rule(&self, app: &AppId, id: &str, now: UnixMillis) -> StoreResult<bool> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let gone = sqlx::query::<$db>("DELETE FROM alert_rules WHERE app_id = $1 AND id = $2")
                    .bind(app.as_str())
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if gone.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query::<$db>(
                    "UPDATE alerts SET resolved_at = $1 WHERE app_id = $2 AND rule_id = $3 AND resolved_at IS NULL",
                )
                .bind(now)
                .bind(app.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(true)
            }

            async fn alert_rule(&self, app: &AppId, id: &str) -> StoreResult<Option<$crate::alerts::AlertRule>> {
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {RULE_COLUMNS} FROM alert_rules WHERE app_id = $1 AND id = $2"
                ))
                .bind(app.as_str())
                .bind(id)
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(rule_from_row).transpose()
            }

            async fn alert_rules(&self, app: Option<&AppId>) -> StoreResult<Vec<$crate::alerts::AlertRule>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!("SELECT {RULE_COLUMNS} FROM alert_rules"));
                if let Some(a) = app {
                    qb.push(" WHERE app_id = ").push_bind(a.as_str());
                }
                qb.push(" ORDER BY app_id, id");
                let rows = qb.build().fetch_all(self.reader()).await.map_err(map_err)?;
                rows.iter().map(rule_from_row).collect()
            }

            async fn raise_alert(&self, a: &$crate::alerts::Alert) -> StoreResult<bool> {
                // The unique index on open alerts per rule makes a second raise a no-op.
                let done = sqlx::query::<$db>(&format!(
                    "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT DO NOTHING"
                ))
                .bind(&a.id)
                .bind(a.app_id.as_str())
                .bind(&a.rule_id)
                .bind(a.kind.as_str())
                .bind(a.threshold)
                .bind(&a.summary)
                .bind(a.raised_at)
                .bind(a.resolved_at)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn resolve_alert(&self, app: &AppId, id: &str, now: UnixMillis) -> StoreResult<bool> {
                let done = sqlx::query::<$db>(
                    "UPDATE alerts SET resolved_at = $1 WHERE app_id = $2 AND id = $3 AND resolved_at IS NULL",
                )
                .bind(now)
                .bind(app.as_str())
                .bind(id)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn alerts(
                &self,
                app: &AppId,
                before: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<$crate::alerts::Alert>> {
                let mut qb =
                    sqlx::QueryBuilder::<$db>::new(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE app_id = "));
                qb.push_bind(app.as_str());
                if let Some(b) = before {
                    qb.push(" AND id < ").push_bind(b.to_owned());
                }
                qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit));
                let rows = qb.build().fetch_all(self.reader()).await.map_err(map_err)?;
                rows.iter().map(alert_from_row).collect()
            }

            async fn open_alerts(&self, app: Option<&AppId>) -> StoreResult<Vec<$crate::alerts::Alert>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE resolved_at IS NULL"
                ));
                if let Some(a) = app {
                    qb.push(" AND app_id = ").push_bind(a.as_str());
                }
                qb.push(" ORDER BY id DESC LIMIT 500");
                let rows = qb.build().fetch_all(self.reader()).await.map_err(map_err)?;
                rows.iter().map(alert_from_row).collect()
            }

            async fn minute_usage(&self, app: &AppId, from: UnixMillis) -> StoreResult<(i64, i64)> {
                let row = sqlx::query::<$db>(
                    "SELECT CAST(COALESCE(SUM(api_calls), 0) AS BIGINT) AS calls, \
                     CAST(COALESCE(SUM(errors), 0) AS BIGINT) AS errors \
                     FROM usage_minutely WHERE app_id = $1 AND minute >= $2",
                )
                .bind(app.as_str())
                .bind(from)
                .fetch_one(self.reader())
                .await
                .map_err(map_err)?;
                Ok((col(&row, "calls")?, col(&row, "errors")?))
            }

            async fn prune_minute_usage(&self, before: UnixMillis) -> StoreResult<u64> {
                let r = sqlx::query::<$db>("DELETE FROM usage_minutely WHERE minute < $1")
                    .bind(before)
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected())
            }

            async fn failed_webhook_attempts(&self, app: &AppId, since: UnixMillis) -> StoreResult<i64> {
                sqlx::query_scalar::<$db, i64>(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM webhook_attempts \
                     WHERE app_id = $1 AND at >= $2 AND outcome <> 'delivered'",
                )
                .bind(app.as_str())
                .bind(since)
                .fetch_one(self.reader())
                .await
                .map_err(map_err)
            }

            async fn dead_event_count(&self, app: &AppId) -> StoreResult<i64> {
                sqlx::query_scalar::<$db, i64>(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM outbox_events WHERE app_id = $1 AND state = 'dead'",
                )
                .bind(app.as_str())
                .fetch_one(self.reader())
                .await
                .map_err(map_err)
            }

            async fn take_worker_lease(
                &self,
                name: &str,
                owner: &str,
                now: UnixMillis,
                until: UnixMillis,
            ) -> StoreResult<bool> {
                let done = sqlx::query::<$db>(
                    "INSERT INTO worker_leases (name, owner, until_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms \
                     WHERE worker_leases.owner = excluded.owner OR worker_leases.until_ms <= $4",
                )
                .bind(name)
                .bind(owner)
                .bind(until)
                .bind(now)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(crate) use alerts_sql;
