//! Broadcasts: jobs that send one message to many users in steps, leased to one worker
//! at a time.

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::{NewOutboxEvent, StoreResult};

/// Broadcast jobs.
#[async_trait]
pub trait BroadcastStore: Send + Sync {
    /// Stores a new running broadcast, due now. If the app has one with the same
    /// `request_key`, nothing is stored and that one is returned. The flag says whether it
    /// was created.
    async fn create_broadcast(&self, app: &AppId, b: &NewBroadcast) -> StoreResult<(Broadcast, bool)>;
    async fn broadcast(&self, app: &AppId, id: &str) -> StoreResult<Option<Broadcast>>;
    /// The app's broadcasts, newest first, before the broadcast id `before`.
    async fn broadcasts(&self, app: &AppId, before: Option<&str>, limit: u32) -> StoreResult<Vec<Broadcast>>;
    /// Takes the running broadcast (of any app) that has waited longest and is due at `now`,
    /// and leases it to `owner` until `now + lease_ms`: no other caller gets it until the
    /// lease ends or the owner records a step. Returns it with its app.
    async fn claim_broadcast(
        &self,
        now: UnixMillis,
        lease_ms: i64,
        owner: &str,
    ) -> StoreResult<Option<(AppId, Broadcast)>>;
    /// Records one batch: moves the cursor, adds the counts, finishes the job when
    /// `step.done`, makes it due again at `step.next_run_at` (releasing the lease) and
    /// writes `events`, in one transaction. Only while `owner` holds the job and it is
    /// running: otherwise nothing changes and the answer is `false`.
    async fn advance_broadcast(
        &self,
        app: &AppId,
        id: &str,
        owner: &str,
        step: &BroadcastStep,
        events: &[NewOutboxEvent],
    ) -> StoreResult<bool>;
    /// Stops a running broadcast (`Cancelled`), or finishes it as `Failed` with `error`.
    /// A job already finished is returned unchanged. `NotFound` for no such broadcast.
    async fn stop_broadcast(
        &self,
        app: &AppId,
        id: &str,
        state: BroadcastState,
        error: Option<&str>,
        now: UnixMillis,
    ) -> StoreResult<Broadcast>;
}

/// `impl BroadcastStore` for a SQL adapter, with the readers and steps only this area uses.
/// Expanded by `shared_sql::sql_store!` into the adapter's module, beside the other areas.
macro_rules! broadcasts_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        const BROADCAST_COLUMNS: &str = "id, request_key, msg_type, content, recipients, state, after_user, \
             next_index, total, users_seen, sent, failed, error, created_at, updated_at, finished_at";

        fn broadcast_from_row(row: &DbRow) -> StoreResult<Broadcast> {
            let msg_type: String = col(row, "msg_type")?;
            let content: String = col(row, "content")?;
            let state: String = col(row, "state")?;
            let recipients: Option<String> = col(row, "recipients")?;
            let audience = match recipients {
                None => Audience::AllUsers,
                Some(list) => {
                    let ids: Vec<String> =
                        serde_json::from_str(&list).map_err(|_| corrupt("broadcast recipients", &list))?;
                    Audience::Users(
                        ids.iter()
                            .map(|u| UserId::parse(u).map_err(|_| corrupt("user id", u)))
                            .collect::<StoreResult<_>>()?,
                    )
                }
            };
            let after_user: String = col(row, "after_user")?;
            Ok(Broadcast {
                id: col(row, "id")?,
                request_key: col(row, "request_key")?,
                msg_type: parse_msg_type(&msg_type)?,
                content: parse_json("broadcast content", &content)?,
                audience,
                state: BroadcastState::parse(&state).ok_or_else(|| corrupt("broadcast state", &state))?,
                after_user: if after_user.is_empty() {
                    None
                } else {
                    Some(UserId::parse(&after_user).map_err(|_| corrupt("user id", &after_user))?)
                },
                next_index: col(row, "next_index")?,
                total: col(row, "total")?,
                users_seen: col(row, "users_seen")?,
                sent: col(row, "sent")?,
                failed: col(row, "failed")?,
                error: col(row, "error")?,
                created_at: col(row, "created_at")?,
                updated_at: col(row, "updated_at")?,
                finished_at: col(row, "finished_at")?,
            })
        }

        #[async_trait]
        impl $crate::store::BroadcastStore for $store {
            async fn create_broadcast(&self, app: &AppId, b: &NewBroadcast) -> StoreResult<(Broadcast, bool)> {
                let content = to_json(&b.content)?;
                let (recipients, total) = match &b.audience {
                    Audience::AllUsers => (None, None),
                    Audience::Users(users) => {
                        let ids: Vec<&str> = users.iter().map(UserId::as_str).collect();
                        let json = serde_json::to_string(&ids)
                            .map_err(|e| StoreError::Database(format!("JSON encoding failed: {e}")))?;
                        (Some(json), Some(users.len() as i64))
                    }
                };
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let r = sqlx::query::<$db>(
                    "INSERT INTO broadcasts (app_id, id, request_key, msg_type, content, recipients, state, \
                     after_user, next_index, total, users_seen, sent, failed, error, created_at, updated_at, \
                     finished_at, lease_owner, lease_until) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'running', '', 0, $7, 0, 0, 0, NULL, $8, $8, NULL, NULL, $8) \
                     ON CONFLICT (app_id, request_key) DO NOTHING",
                )
                .bind(app.as_str())
                .bind(&b.id)
                .bind(&b.request_key)
                .bind(b.msg_type.as_str())
                .bind(&content)
                .bind(recipients.as_deref())
                .bind(total)
                .bind(b.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_as(e, || format!("broadcast {} exists already", b.id)))?;
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE app_id = $1 AND request_key = $2"
                ))
                .bind(app.as_str())
                .bind(&b.request_key)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                let stored = broadcast_from_row(&row)?;
                tx.commit().await.map_err(map_err)?;
                Ok((stored, r.rows_affected() == 1))
            }

            async fn broadcast(&self, app: &AppId, id: &str) -> StoreResult<Option<Broadcast>> {
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE app_id = $1 AND id = $2"
                ))
                .bind(app.as_str())
                .bind(id)
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(broadcast_from_row).transpose()
            }

            async fn broadcasts(&self, app: &AppId, before: Option<&str>, limit: u32) -> StoreResult<Vec<Broadcast>> {
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {BROADCAST_COLUMNS} FROM broadcasts \
                     WHERE app_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
                ))
                .bind(app.as_str())
                .bind(before.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(broadcast_from_row).collect()
            }

            async fn claim_broadcast(
                &self,
                now: UnixMillis,
                lease_ms: i64,
                owner: &str,
            ) -> StoreResult<Option<(AppId, Broadcast)>> {
                // As `claim_due_events`: row locks make concurrent PostgreSQL claimers skip a
                // job another one is taking; SQLite's one writer makes the statement atomic.
                let lock = if $backend == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
                let row = sqlx::query::<$db>(&format!(
                    "WITH claimed AS MATERIALIZED ( \
                         SELECT app_id, id FROM broadcasts WHERE state = 'running' AND lease_until <= $1 \
                         ORDER BY lease_until, created_at LIMIT 1{lock}) \
                     UPDATE broadcasts SET lease_owner = $3, lease_until = $2 \
                     WHERE state = 'running' AND lease_until <= $1 \
                     AND (app_id, id) IN (SELECT app_id, id FROM claimed) \
                     RETURNING app_id, {BROADCAST_COLUMNS}"
                ))
                .bind(now)
                .bind(now.saturating_add(lease_ms.max(0)))
                .bind(owner)
                .fetch_optional(self.writer())
                .await
                .map_err(map_err)?;
                let Some(row) = row else { return Ok(None) };
                let app: String = col(&row, "app_id")?;
                let app = AppId::parse(&app).map_err(|_| corrupt("app id", &app))?;
                Ok(Some((app, broadcast_from_row(&row)?)))
            }

            async fn advance_broadcast(
                &self,
                app: &AppId,
                id: &str,
                owner: &str,
                step: &BroadcastStep,
                events: &[NewOutboxEvent],
            ) -> StoreResult<bool> {
                let (state, finished_at) = if step.done {
                    (BroadcastState::Done, Some(step.now))
                } else {
                    (BroadcastState::Running, None)
                };
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let r = sqlx::query::<$db>(
                    "UPDATE broadcasts SET after_user = $4, next_index = $5, users_seen = users_seen + $6, \
                     sent = sent + $7, failed = failed + $8, state = $9, finished_at = $10, updated_at = $11, \
                     lease_owner = NULL, lease_until = $12 \
                     WHERE app_id = $1 AND id = $2 AND lease_owner = $3 AND state = 'running'",
                )
                .bind(app.as_str())
                .bind(id)
                .bind(owner)
                .bind(step.after_user.as_ref().map(UserId::as_str).unwrap_or(""))
                .bind(step.next_index)
                .bind(step.seen)
                .bind(step.sent)
                .bind(step.failed)
                .bind(state.as_str())
                .bind(finished_at)
                .bind(step.now)
                .bind(step.next_run_at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                if r.rows_affected() == 0 {
                    return Ok(false);
                }
                insert_events(&mut tx, events).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(true)
            }

            async fn stop_broadcast(
                &self,
                app: &AppId,
                id: &str,
                state: BroadcastState,
                error: Option<&str>,
                now: UnixMillis,
            ) -> StoreResult<Broadcast> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                sqlx::query::<$db>(
                    "UPDATE broadcasts SET state = $3, error = $4, finished_at = $5, updated_at = $5, \
                     lease_owner = NULL WHERE app_id = $1 AND id = $2 AND state = 'running'",
                )
                .bind(app.as_str())
                .bind(id)
                .bind(state.as_str())
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {BROADCAST_COLUMNS} FROM broadcasts WHERE app_id = $1 AND id = $2"
                ))
                .bind(app.as_str())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                let Some(row) = row else {
                    return Err(StoreError::NotFound("broadcast"));
                };
                let stored = broadcast_from_row(&row)?;
                tx.commit().await.map_err(map_err)?;
                Ok(stored)
            }
        }
    };
}
pub(crate) use broadcasts_sql;
