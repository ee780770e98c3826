//! Webhooks: each app's webhook signing secrets; the outbox of after-events, which
//! workers lease, deliver at least once, and retry until delivered or dead; and the
//! delivery log, one row per attempt (and per test event), kept 7 days.

use async_trait::async_trait;

use serde::{Deserialize, Serialize};

use crate::domain::*;
use crate::ids::*;

use super::StoreResult;

/// A webhook after-event to be delivered at least once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOutboxEvent {
    /// `wh_` + ULID; the `X-Tern-Webhook-Id` on every attempt.
    pub id: String,
    pub app_id: AppId,
    pub event_type: String,
    /// The full JSON body that is POSTed (SIGNING.md §3), fixed at creation.
    pub body: String,
    pub created_at: UnixMillis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    Pending,
    Delivered,
    Dead,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    pub id: String,
    pub app_id: AppId,
    pub event_type: String,
    pub body: String,
    pub created_at: UnixMillis,
    pub state: OutboxState,
    pub attempts: i32,
    pub next_attempt_at: UnixMillis,
    pub last_error: Option<String>,
}

/// What one attempt to POST a webhook came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// It failed and the event is tried again later.
    Retrying,
    /// It failed and the event was given up (24 h of failures, or no URL any more).
    Dead,
    /// A test event that failed (test events are not retried).
    Failed,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Dead => "dead",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "delivered" => Self::Delivered,
            "retrying" => Self::Retrying,
            "dead" => Self::Dead,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// One line of the delivery log: an attempt to POST an event to the app's endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAttempt {
    /// `wa_` + ULID: the log pages by it, newest first.
    pub id: String,
    pub app_id: AppId,
    pub at: UnixMillis,
    /// The event's `wh_` id (`X-Tern-Webhook-Id`).
    pub event_id: String,
    pub event_type: String,
    /// `X-Tern-Attempt`, from 1.
    pub attempt: i32,
    pub outcome: AttemptOutcome,
    /// The endpoint's HTTP status; 0 when it was not reached.
    pub http_status: u16,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    pub latency_ms: i64,
    /// The start of the endpoint's answer, as text (at most `EXCERPT_CHARS` characters).
    pub response_excerpt: String,
}

impl WebhookAttempt {
    /// Characters of the endpoint's answer kept in the log.
    pub const EXCERPT_CHARS: usize = 300;

    pub fn new_id() -> String {
        format!("wa_{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
    }

    /// The start of an answer's bytes as text: invalid UTF-8 replaced, control characters
    /// (but tabs and newlines) dropped, at most `EXCERPT_CHARS` characters.
    pub fn excerpt(body: &[u8]) -> String {
        String::from_utf8_lossy(&body[..body.len().min(4 * Self::EXCERPT_CHARS)])
            .chars()
            .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
            .take(Self::EXCERPT_CHARS)
            .collect()
    }
}

/// Which lines of the delivery log to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptFilter {
    /// Only this event's attempts.
    pub event_id: Option<String>,
    /// Only lines older than this log id (the last one of the previous page).
    pub before: Option<String>,
}

/// Webhook secrets, the outbox of after-events and the delivery log.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn webhook_secret_ciphertext(&self, app: &AppId) -> StoreResult<Option<Vec<u8>>>;
    /// The app's webhook secrets still valid at `now`, newest first: the current one, and the
    /// one it replaced until that one's grace period ends. Empty for no such app.
    async fn webhook_secret_ciphertexts(&self, app: &AppId, now: UnixMillis) -> StoreResult<Vec<Vec<u8>>>;
    /// Makes `ciphertext` the current webhook secret; the current one stays valid until
    /// `previous_expires_at` (a previous one still in its grace period is dropped).
    /// `NotFound` for no such app.
    async fn rotate_webhook_secret(
        &self,
        app: &AppId,
        ciphertext: &[u8],
        previous_expires_at: UnixMillis,
    ) -> StoreResult<()>;
    async fn enqueue_events(&self, events: &[NewOutboxEvent]) -> StoreResult<()>;
    /// Pending events due at `now`, oldest first.
    async fn due_events(&self, now: UnixMillis, limit: u32) -> StoreResult<Vec<OutboxEvent>>;
    async fn mark_event_delivered(&self, id: &str, attempts: i32) -> StoreResult<()>;
    async fn reschedule_event(
        &self,
        id: &str,
        attempts: i32,
        next_attempt_at: UnixMillis,
        error: &str,
    ) -> StoreResult<()>;
    async fn mark_event_dead(&self, id: &str, attempts: i32, error: &str) -> StoreResult<()>;
    async fn dead_events(&self, app: &AppId, after: Option<&str>, limit: u32) -> StoreResult<Vec<OutboxEvent>>;
    /// Puts a dead event of this app back to pending, due now. `NotFound` otherwise.
    async fn redeliver_event(&self, app: &AppId, id: &str, now: UnixMillis) -> StoreResult<()>;
    /// Takes up to `limit` pending events due at `now`, oldest first, and leases them: each
    /// is moved to `next_attempt_at = now + lease_ms`, so no other worker takes it until the
    /// lease runs out (or the holder records an outcome). Concurrent callers never get the
    /// same event from one call each (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one
    /// `UPDATE ... RETURNING` under its single writer). A worker that dies holding a lease
    /// leaves the event to be claimed again when the lease ends: at least once, not at most.
    async fn claim_due_events(&self, now: UnixMillis, limit: u32, lease_ms: i64) -> StoreResult<Vec<OutboxEvent>>;
    /// Gives claimed, still pending events back, due at `at` (attempts and error kept), in
    /// one transaction. Returns how many were pending; ids that are not are skipped.
    async fn release_events(&self, ids: &[String], at: UnixMillis) -> StoreResult<u64>;
    /// Appends a line to the delivery log.
    async fn record_webhook_attempt(&self, attempt: &WebhookAttempt) -> StoreResult<()>;
    /// The app's delivery log, newest first, at most `limit` lines.
    async fn webhook_attempts(
        &self,
        app: &AppId,
        filter: &AttemptFilter,
        limit: u32,
    ) -> StoreResult<Vec<WebhookAttempt>>;
    /// Attempts to deliver after-events since `since` (test events left out): how many were
    /// delivered, and how many there were. One app's, or with `None` every app's.
    async fn webhook_attempt_counts(&self, app: Option<&AppId>, since: UnixMillis) -> StoreResult<(i64, i64)>;
    /// Deletes every app's log lines from before `before`; returns how many.
    async fn prune_webhook_attempts(&self, before: UnixMillis) -> StoreResult<u64>;
}

/// `impl WebhookStore` for a SQL adapter, with the readers and steps only this area uses.
/// Expanded by `shared_sql::sql_store!` into the adapter's module, beside the other areas.
macro_rules! webhooks_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        const EVENT_COLUMNS: &str =
            "id, app_id, event_type, body, created_at, state, attempts, next_attempt_at, last_error";

        const ATTEMPT_COLUMNS: &str = "app_id, id, at, event_id, event_type, attempt, outcome, http_status, \
             error, latency_ms, response_excerpt";

        fn attempt_from_row(row: &DbRow) -> StoreResult<WebhookAttempt> {
            let app_id: String = col(row, "app_id")?;
            let outcome: String = col(row, "outcome")?;
            let status: i32 = col(row, "http_status")?;
            Ok(WebhookAttempt {
                id: col(row, "id")?,
                app_id: AppId::parse(&app_id).map_err(|_| corrupt("app id", &app_id))?,
                at: col(row, "at")?,
                event_id: col(row, "event_id")?,
                event_type: col(row, "event_type")?,
                attempt: col(row, "attempt")?,
                outcome: AttemptOutcome::parse(&outcome).ok_or_else(|| corrupt("attempt outcome", &outcome))?,
                http_status: u16::try_from(status).map_err(|_| corrupt("http status", &status.to_string()))?,
                error: col(row, "error")?,
                latency_ms: col(row, "latency_ms")?,
                response_excerpt: col(row, "response_excerpt")?,
            })
        }

        fn event_from_row(row: &DbRow) -> StoreResult<OutboxEvent> {
            let app_id: String = col(row, "app_id")?;
            let state: String = col(row, "state")?;
            Ok(OutboxEvent {
                id: col(row, "id")?,
                app_id: AppId::parse(&app_id).map_err(|_| corrupt("app id", &app_id))?,
                event_type: col(row, "event_type")?,
                body: col(row, "body")?,
                created_at: col(row, "created_at")?,
                state: match state.as_str() {
                    "pending" => OutboxState::Pending,
                    "delivered" => OutboxState::Delivered,
                    "dead" => OutboxState::Dead,
                    _ => return Err(corrupt("outbox state", &state)),
                },
                attempts: col(row, "attempts")?,
                next_attempt_at: col(row, "next_attempt_at")?,
                last_error: col(row, "last_error")?,
            })
        }

        #[async_trait]
        impl $crate::store::WebhookStore for $store {
            async fn webhook_secret_ciphertext(&self, app: &AppId) -> StoreResult<Option<Vec<u8>>> {
                sqlx::query_scalar::<$db, Vec<u8>>("SELECT webhook_secret FROM apps WHERE id = $1")
                    .bind(app.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)
            }

            async fn webhook_secret_ciphertexts(&self, app: &AppId, now: UnixMillis) -> StoreResult<Vec<Vec<u8>>> {
                let row = sqlx::query::<$db>(
                    "SELECT webhook_secret, previous_webhook_secret, previous_webhook_secret_expires_at \
                     FROM apps WHERE id = $1",
                )
                .bind(app.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                let Some(row) = row else { return Ok(Vec::new()) };
                let mut out = vec![col::<Vec<u8>>(&row, "webhook_secret")?];
                let previous: Option<Vec<u8>> = col(&row, "previous_webhook_secret")?;
                let until: Option<i64> = col(&row, "previous_webhook_secret_expires_at")?;
                if let (Some(p), Some(t)) = (previous, until) {
                    if t > now {
                        out.push(p);
                    }
                }
                Ok(out)
            }

            async fn rotate_webhook_secret(
                &self,
                app: &AppId,
                ciphertext: &[u8],
                previous_expires_at: UnixMillis,
            ) -> StoreResult<()> {
                let r = sqlx::query::<$db>(
                    "UPDATE apps SET previous_webhook_secret = webhook_secret, \
                     previous_webhook_secret_expires_at = $3, webhook_secret = $2 WHERE id = $1",
                )
                .bind(app.as_str())
                .bind(ciphertext)
                .bind(previous_expires_at)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "app")
            }

            async fn enqueue_events(&self, events: &[NewOutboxEvent]) -> StoreResult<()> {
                if events.is_empty() {
                    return Ok(());
                }
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                insert_events(&mut tx, events).await?;
                tx.commit().await.map_err(map_err)
            }

            async fn due_events(&self, now: UnixMillis, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {EVENT_COLUMNS} FROM outbox_events \
                     WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY created_at, id LIMIT $2"
                ))
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(event_from_row).collect()
            }

            async fn mark_event_delivered(&self, id: &str, attempts: i32) -> StoreResult<()> {
                let r = sqlx::query::<$db>("UPDATE outbox_events SET state = 'delivered', attempts = $2 WHERE id = $1")
                    .bind(id)
                    .bind(attempts)
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "event")
            }

            async fn reschedule_event(
                &self,
                id: &str,
                attempts: i32,
                next_attempt_at: UnixMillis,
                error: &str,
            ) -> StoreResult<()> {
                let r = sqlx::query::<$db>(
                    "UPDATE outbox_events SET attempts = $2, next_attempt_at = $3, last_error = $4 \
                     WHERE id = $1 AND state = 'pending'",
                )
                .bind(id)
                .bind(attempts)
                .bind(next_attempt_at)
                .bind(error)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "event")
            }

            async fn mark_event_dead(&self, id: &str, attempts: i32, error: &str) -> StoreResult<()> {
                let r = sqlx::query::<$db>(
                    "UPDATE outbox_events SET state = 'dead', attempts = $2, last_error = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(attempts)
                .bind(error)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "event")
            }

            async fn dead_events(&self, app: &AppId, after: Option<&str>, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {EVENT_COLUMNS} FROM outbox_events \
                     WHERE app_id = $1 AND state = 'dead' AND id > $2 ORDER BY id LIMIT $3"
                ))
                .bind(app.as_str())
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(event_from_row).collect()
            }

            async fn redeliver_event(&self, app: &AppId, id: &str, now: UnixMillis) -> StoreResult<()> {
                // A fresh retry budget: the worker counts attempts from zero again.
                let r = sqlx::query::<$db>(
                    "UPDATE outbox_events SET state = 'pending', attempts = 0, next_attempt_at = $3 \
                     WHERE app_id = $1 AND id = $2 AND state = 'dead'",
                )
                .bind(app.as_str())
                .bind(id)
                .bind(now)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "event")
            }

            async fn claim_due_events(
                &self,
                now: UnixMillis,
                limit: u32,
                lease_ms: i64,
            ) -> StoreResult<Vec<OutboxEvent>> {
                // PostgreSQL runs claims concurrently: the row locks make a second claimer
                // skip what the first took. SQLite has one writer, so the statement is
                // atomic as it is (and has no FOR UPDATE). The CTE is materialized so the
                // LIMITed selection runs once (as an `IN (subquery)` PostgreSQL may rescan it
                // and take more than `limit`).
                let lock = if $backend == Backend::Postgres {
                    " FOR UPDATE SKIP LOCKED"
                } else {
                    ""
                };
                let rows = sqlx::query::<$db>(&format!(
                    "WITH claimed AS MATERIALIZED ( \
                         SELECT id FROM outbox_events WHERE state = 'pending' AND next_attempt_at <= $1 \
                         ORDER BY created_at, id LIMIT $3{lock}) \
                     UPDATE outbox_events SET next_attempt_at = $2 \
                     WHERE state = 'pending' AND next_attempt_at <= $1 AND id IN (SELECT id FROM claimed) \
                     RETURNING {EVENT_COLUMNS}"
                ))
                .bind(now)
                .bind(now.saturating_add(lease_ms.max(0)))
                .bind(i64::from(limit))
                .fetch_all(self.writer())
                .await
                .map_err(map_err)?;
                let mut events = rows.iter().map(event_from_row).collect::<StoreResult<Vec<_>>>()?;
                events.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                Ok(events)
            }

            async fn release_events(&self, ids: &[String], at: UnixMillis) -> StoreResult<u64> {
                if ids.is_empty() {
                    return Ok(0);
                }
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let mut released = 0;
                for id in ids {
                    let r = sqlx::query::<$db>(
                        "UPDATE outbox_events SET next_attempt_at = $2 WHERE id = $1 AND state = 'pending'",
                    )
                    .bind(id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    released += r.rows_affected();
                }
                tx.commit().await.map_err(map_err)?;
                Ok(released)
            }

            async fn record_webhook_attempt(&self, a: &WebhookAttempt) -> StoreResult<()> {
                sqlx::query::<$db>(&format!(
                    "INSERT INTO webhook_attempts ({ATTEMPT_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ))
                .bind(a.app_id.as_str())
                .bind(&a.id)
                .bind(a.at)
                .bind(&a.event_id)
                .bind(&a.event_type)
                .bind(a.attempt)
                .bind(a.outcome.as_str())
                .bind(i32::from(a.http_status))
                .bind(a.error.as_deref())
                .bind(a.latency_ms)
                .bind(&a.response_excerpt)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn webhook_attempts(
                &self,
                app: &AppId,
                f: &AttemptFilter,
                limit: u32,
            ) -> StoreResult<Vec<WebhookAttempt>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts WHERE app_id = "
                ));
                qb.push_bind(app.as_str());
                if let Some(e) = &f.event_id {
                    qb.push(" AND event_id = ").push_bind(e.as_str());
                }
                if let Some(b) = &f.before {
                    qb.push(" AND id < ").push_bind(b.as_str());
                }
                qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit));
                let rows = qb.build().fetch_all(self.reader()).await.map_err(map_err)?;
                rows.iter().map(attempt_from_row).collect()
            }

            async fn webhook_attempt_counts(&self, app: Option<&AppId>, since: UnixMillis) -> StoreResult<(i64, i64)> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT CAST(COALESCE(SUM(CASE WHEN outcome = 'delivered' THEN 1 ELSE 0 END), 0) AS BIGINT) \
                     AS delivered, CAST(COUNT(*) AS BIGINT) AS total FROM webhook_attempts \
                     WHERE event_type <> 'webhook.test' AND at >= ",
                );
                qb.push_bind(since);
                if let Some(a) = app {
                    qb.push(" AND app_id = ").push_bind(a.as_str());
                }
                let row = qb.build().fetch_one(self.reader()).await.map_err(map_err)?;
                Ok((col(&row, "delivered")?, col(&row, "total")?))
            }

            async fn prune_webhook_attempts(&self, before: UnixMillis) -> StoreResult<u64> {
                let r = sqlx::query::<$db>("DELETE FROM webhook_attempts WHERE at < $1")
                    .bind(before)
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected())
            }
        }
    };
}
pub(crate) use webhooks_sql;
