//! Offline push: devices and their tokens, each app's provider credentials (sealed), the
//! push outbox written with each message, the per-device jobs the worker leases, and the
//! delivery log.

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::StoreResult;

/// Devices, credentials, the push queue and its log.
#[async_trait]
pub trait PushStore: Send + Sync {
    /// Registers a device for `device.user_id`. A token the app knows already (for any user)
    /// keeps its device id and moves to this user with the new details. A user with more
    /// than `MAX_DEVICES_PER_USER` devices loses the least recently updated.
    async fn register_device(&self, app: &AppId, device: &NewPushDevice, now: UnixMillis) -> StoreResult<PushDevice>;
    /// Changes a device of `user`. `NotFound` if the user has no such device; `Conflict` if
    /// the new token is another device's.
    async fn update_device(
        &self,
        app: &AppId,
        user: &UserId,
        id: &DeviceId,
        patch: &PushDevicePatch,
        now: UnixMillis,
    ) -> StoreResult<PushDevice>;
    async fn device(&self, app: &AppId, id: &DeviceId) -> StoreResult<Option<PushDevice>>;
    /// The devices of these users, oldest registration first.
    async fn devices_of(&self, app: &AppId, users: &[UserId]) -> StoreResult<Vec<PushDevice>>;
    /// Removes a device; `false` if the app had none with this id.
    async fn remove_device(&self, app: &AppId, id: &DeviceId) -> StoreResult<bool>;

    /// Sets the app's credentials for `record.provider`, replacing any.
    async fn put_push_credential(&self, app: &AppId, record: &PushCredentialRecord) -> StoreResult<()>;
    /// The app's credentials, by provider.
    async fn push_credentials(&self, app: &AppId) -> StoreResult<Vec<PushCredentialRecord>>;
    /// `false` if the app had none for this provider.
    async fn delete_push_credential(&self, app: &AppId, provider: PushProvider) -> StoreResult<bool>;

    /// Takes up to `limit` messages of the push outbox due at `now` (any app), oldest first,
    /// and leases them until `now + lease_ms`.
    async fn claim_push_outbox(&self, now: UnixMillis, limit: u32, lease_ms: i64) -> StoreResult<Vec<(AppId, MsgId)>>;
    /// Turns one message of the outbox into its jobs, in one transaction: each job is
    /// written unless the message already has one for that device, and the outbox row is
    /// deleted. Returns how many jobs were new.
    async fn expand_push(&self, app: &AppId, msg: &MsgId, jobs: &[PushJob], now: UnixMillis) -> StoreResult<u64>;
    /// Takes up to `limit` pending jobs due at `now` (any app), oldest first, and leases
    /// them until `now + lease_ms`: a worker that dies holding one leaves it to the next.
    async fn claim_push_jobs(&self, now: UnixMillis, limit: u32, lease_ms: i64) -> StoreResult<Vec<PushJob>>;
    /// Records an attempt at a job, in one transaction: the log line (none when the device
    /// was removed before it could be tried), the job done (sent or failed) or due again,
    /// and the device removed when the provider said its token is dead. Only while the job is pending: a job already finished is left alone and the
    /// answer is `false`.
    async fn finish_push_job(
        &self,
        job: &PushJob,
        attempt: i32,
        next: JobNext,
        log: Option<&PushLogEntry>,
        remove_device: bool,
    ) -> StoreResult<bool>;
    /// Writes one log line outside a job (a test push), removing the device when its
    /// token is dead.
    async fn append_push_log(&self, app: &AppId, log: &PushLogEntry, remove_device: bool) -> StoreResult<()>;
    /// Log lines matching `filter`, newest first.
    async fn push_log(&self, app: &AppId, filter: &PushLogFilter, limit: u32) -> StoreResult<Vec<PushLogEntry>>;

    /// A user's do-not-disturb hours and muted conversations (none set: the default).
    async fn push_settings(&self, app: &AppId, user: &UserId) -> StoreResult<UserPushSettings>;
    /// Applies a change of a user's push settings in one transaction (unmuting after
    /// muting the same conversation leaves it unmuted) and answers the result. `Rejected`
    /// if the user would have more than `MAX_MUTES_PER_USER` muted conversations.
    async fn update_push_settings(
        &self,
        app: &AppId,
        user: &UserId,
        patch: &UserPushSettingsPatch,
        now: UnixMillis,
    ) -> StoreResult<UserPushSettings>;
    /// For each of `users`: whether they muted `conversation`, their do-not-disturb hours,
    /// and their total unread count; in the order of `users`.
    async fn push_audience(
        &self,
        app: &AppId,
        conversation: &ConversationId,
        users: &[UserId],
    ) -> StoreResult<Vec<PushAudience>>;
}

/// `impl PushStore` for a SQL adapter. Expanded by `shared_sql::sql_store!` into the
/// adapter's module, beside the other areas.
macro_rules! push_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        const DEVICE_COLUMNS: &str =
            "id, user_id, provider, token, topic, environment, locale, created_at, updated_at";
        const LOG_COLUMNS: &str = "id, at, user_id, device_id, msg_id, provider, outcome, http_status, reason, \
             provider_id, latency_ms, attempt";

        fn device_from_row(row: &DbRow) -> StoreResult<PushDevice> {
            let id: String = col(row, "id")?;
            let provider: String = col(row, "provider")?;
            let environment: String = col(row, "environment")?;
            Ok(PushDevice {
                id: DeviceId::parse(&id).map_err(|_| corrupt("device id", &id))?,
                user_id: stored_user(row, "user_id")?,
                provider: PushProvider::parse(&provider).map_err(|_| corrupt("push provider", &provider))?,
                token: PushToken::from_stored(col(row, "token")?),
                topic: col(row, "topic")?,
                environment: PushEnvironment::parse(&environment)
                    .map_err(|_| corrupt("push environment", &environment))?,
                locale: col(row, "locale")?,
                created_at: col(row, "created_at")?,
                updated_at: col(row, "updated_at")?,
            })
        }

        fn log_from_row(row: &DbRow) -> StoreResult<PushLogEntry> {
            let device: String = col(row, "device_id")?;
            let msg: String = col(row, "msg_id")?;
            let provider: String = col(row, "provider")?;
            let outcome: String = col(row, "outcome")?;
            let http_status: i32 = col(row, "http_status")?;
            Ok(PushLogEntry {
                id: col(row, "id")?,
                at: col(row, "at")?,
                user_id: stored_user(row, "user_id")?,
                device_id: DeviceId::parse(&device).map_err(|_| corrupt("device id", &device))?,
                msg_id: if msg.is_empty() {
                    None
                } else {
                    Some(MsgId::parse(&msg).map_err(|_| corrupt("message id", &msg))?)
                },
                provider: PushProvider::parse(&provider).map_err(|_| corrupt("push provider", &provider))?,
                outcome: PushOutcome::parse(&outcome).ok_or_else(|| corrupt("push outcome", &outcome))?,
                http_status: u16::try_from(http_status).unwrap_or(0),
                reason: col(row, "reason")?,
                provider_id: col(row, "provider_id")?,
                latency_ms: col(row, "latency_ms")?,
                attempt: col(row, "attempt")?,
            })
        }

        fn job_from_row(row: &DbRow) -> StoreResult<PushJob> {
            let app: String = col(row, "app_id")?;
            let msg: String = col(row, "msg_id")?;
            let device: String = col(row, "device_id")?;
            let payload: String = col(row, "payload")?;
            Ok(PushJob {
                app_id: AppId::parse(&app).map_err(|_| corrupt("app id", &app))?,
                msg_id: MsgId::parse(&msg).map_err(|_| corrupt("message id", &msg))?,
                device_id: DeviceId::parse(&device).map_err(|_| corrupt("device id", &device))?,
                user_id: stored_user(row, "user_id")?,
                notification: serde_json::from_str(&payload).map_err(|_| corrupt("push payload", &payload))?,
                attempts: col(row, "attempts")?,
                created_at: col(row, "created_at")?,
            })
        }

        async fn insert_log(tx: &mut Tx<'_>, app: &AppId, log: &PushLogEntry) -> StoreResult<()> {
            sqlx::query::<$db>(&format!(
                "INSERT INTO push_log (app_id, {LOG_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ))
            .bind(app.as_str())
            .bind(&log.id)
            .bind(log.at)
            .bind(log.user_id.as_str())
            .bind(log.device_id.as_str())
            .bind(log.msg_id.as_ref().map(MsgId::as_str).unwrap_or(""))
            .bind(log.provider.as_str())
            .bind(log.outcome.as_str())
            .bind(i32::from(log.http_status))
            .bind(log.reason.as_deref())
            .bind(log.provider_id.as_deref())
            .bind(log.latency_ms)
            .bind(log.attempt)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
            Ok(())
        }

        async fn delete_device(tx: &mut Tx<'_>, app: &AppId, id: &DeviceId) -> StoreResult<bool> {
            let r = sqlx::query::<$db>("DELETE FROM push_devices WHERE app_id = $1 AND id = $2")
                .bind(app.as_str())
                .bind(id.as_str())
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
            Ok(r.rows_affected() > 0)
        }

        fn dnd_from_row(row: &DbRow) -> StoreResult<DoNotDisturb> {
            let minute = |name: &str| -> StoreResult<u16> {
                let v: i32 = col(row, name)?;
                u16::try_from(v).map_err(|_| corrupt("do-not-disturb minute", &v.to_string()))
            };
            let offset: i32 = col(row, "utc_offset_minutes")?;
            Ok(DoNotDisturb {
                start_minute: minute("start_minute")?,
                end_minute: minute("end_minute")?,
                utc_offset_minutes: i16::try_from(offset)
                    .map_err(|_| corrupt("do-not-disturb offset", &offset.to_string()))?,
            })
        }

        async fn read_push_settings(
            conn: &mut <$db as sqlx::Database>::Connection,
            app: &AppId,
            user: &UserId,
        ) -> StoreResult<UserPushSettings> {
            let row = sqlx::query::<$db>(
                "SELECT start_minute, end_minute, utc_offset_minutes FROM push_dnd WHERE app_id = $1 AND user_id = $2",
            )
            .bind(app.as_str())
            .bind(user.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_err)?;
            let dnd = row.as_ref().map(dnd_from_row).transpose()?;
            let ids: Vec<String> = sqlx::query_scalar::<$db, String>(
                "SELECT conversation_id FROM push_mutes WHERE app_id = $1 AND user_id = $2 ORDER BY conversation_id",
            )
            .bind(app.as_str())
            .bind(user.as_str())
            .fetch_all(&mut *conn)
            .await
            .map_err(map_err)?;
            let muted = ids.iter().map(|c| parse_conversation(c)).collect::<StoreResult<Vec<_>>>()?;
            Ok(UserPushSettings { dnd, muted })
        }

        #[async_trait]
        impl $crate::store::PushStore for $store {
            async fn register_device(
                &self,
                app: &AppId,
                d: &NewPushDevice,
                now: UnixMillis,
            ) -> StoreResult<PushDevice> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let row = sqlx::query::<$db>(&format!(
                    "INSERT INTO push_devices (app_id, {DEVICE_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                     ON CONFLICT (app_id, provider, token) DO UPDATE SET user_id = excluded.user_id, \
                     topic = excluded.topic, environment = excluded.environment, locale = excluded.locale, \
                     updated_at = excluded.updated_at \
                     RETURNING {DEVICE_COLUMNS}"
                ))
                .bind(app.as_str())
                .bind(DeviceId::generate().as_str())
                .bind(d.user_id.as_str())
                .bind(d.provider.as_str())
                .bind(d.token.as_str())
                .bind(&d.topic)
                .bind(d.environment.as_str())
                .bind(d.locale.as_deref())
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                let device = device_from_row(&row)?;
                // Beyond the limit, the devices least recently updated go.
                let ids: Vec<String> = sqlx::query_scalar::<$db, String>(
                    "SELECT id FROM push_devices WHERE app_id = $1 AND user_id = $2 ORDER BY updated_at DESC, id DESC",
                )
                .bind(app.as_str())
                .bind(d.user_id.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                let stale = ids.into_iter().skip(MAX_DEVICES_PER_USER).filter(|id| id != device.id.as_str());
                for id in stale {
                    sqlx::query::<$db>("DELETE FROM push_devices WHERE app_id = $1 AND id = $2")
                        .bind(app.as_str())
                        .bind(&id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)?;
                Ok(device)
            }

            async fn update_device(
                &self,
                app: &AppId,
                user: &UserId,
                id: &DeviceId,
                patch: &PushDevicePatch,
                now: UnixMillis,
            ) -> StoreResult<PushDevice> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {DEVICE_COLUMNS} FROM push_devices WHERE app_id = $1 AND id = $2 AND user_id = $3"
                ))
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(user.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
                .ok_or(StoreError::NotFound("device"))?;
                let current = device_from_row(&row)?;
                let token = patch.token.as_ref().unwrap_or(&current.token);
                let environment = patch.environment.unwrap_or(current.environment);
                let locale = match &patch.locale {
                    Some(l) => l.clone(),
                    None => current.locale.clone(),
                };
                let row = sqlx::query::<$db>(&format!(
                    "UPDATE push_devices SET token = $3, environment = $4, locale = $5, updated_at = $6 \
                     WHERE app_id = $1 AND id = $2 RETURNING {DEVICE_COLUMNS}"
                ))
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(token.as_str())
                .bind(environment.as_str())
                .bind(locale.as_deref())
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| conflict_as(e, || "another device has this token".into()))?;
                let device = device_from_row(&row)?;
                tx.commit().await.map_err(map_err)?;
                Ok(device)
            }

            async fn device(&self, app: &AppId, id: &DeviceId) -> StoreResult<Option<PushDevice>> {
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {DEVICE_COLUMNS} FROM push_devices WHERE app_id = $1 AND id = $2"
                ))
                .bind(app.as_str())
                .bind(id.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(device_from_row).transpose()
            }

            async fn devices_of(&self, app: &AppId, users: &[UserId]) -> StoreResult<Vec<PushDevice>> {
                let mut out = Vec::new();
                for chunk in users.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {DEVICE_COLUMNS} FROM push_devices WHERE app_id = "
                    ));
                    qb.push_bind(app.as_str()).push(" AND user_id IN (");
                    let mut list = qb.separated(", ");
                    for u in chunk {
                        list.push_bind(u.as_str());
                    }
                    qb.push(") ORDER BY created_at, id");
                    let rows = qb.build().fetch_all(self.reader()).await.map_err(map_err)?;
                    for row in &rows {
                        out.push(device_from_row(row)?);
                    }
                }
                Ok(out)
            }

            async fn remove_device(&self, app: &AppId, id: &DeviceId) -> StoreResult<bool> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let removed = delete_device(&mut tx, app, id).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(removed)
            }

            async fn put_push_credential(&self, app: &AppId, r: &PushCredentialRecord) -> StoreResult<()> {
                let summary = to_json(&r.summary)?;
                sqlx::query::<$db>(
                    "INSERT INTO push_credentials (app_id, provider, ciphertext, summary, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id, provider) DO UPDATE SET \
                     ciphertext = excluded.ciphertext, summary = excluded.summary, updated_at = excluded.updated_at",
                )
                .bind(app.as_str())
                .bind(r.provider.as_str())
                .bind(&r.ciphertext)
                .bind(&summary)
                .bind(r.updated_at)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn push_credentials(&self, app: &AppId) -> StoreResult<Vec<PushCredentialRecord>> {
                let rows = sqlx::query::<$db>(
                    "SELECT provider, ciphertext, summary, updated_at FROM push_credentials \
                     WHERE app_id = $1 ORDER BY provider",
                )
                .bind(app.as_str())
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter()
                    .map(|row| {
                        let provider: String = col(row, "provider")?;
                        let summary: String = col(row, "summary")?;
                        Ok(PushCredentialRecord {
                            provider: PushProvider::parse(&provider)
                                .map_err(|_| corrupt("push provider", &provider))?,
                            ciphertext: col(row, "ciphertext")?,
                            summary: parse_json("push credential summary", &summary)?,
                            updated_at: col(row, "updated_at")?,
                        })
                    })
                    .collect()
            }

            async fn delete_push_credential(&self, app: &AppId, provider: PushProvider) -> StoreResult<bool> {
                let r = sqlx::query::<$db>("DELETE FROM push_credentials WHERE app_id = $1 AND provider = $2")
                    .bind(app.as_str())
                    .bind(provider.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn claim_push_outbox(
                &self,
                now: UnixMillis,
                limit: u32,
                lease_ms: i64,
            ) -> StoreResult<Vec<(AppId, MsgId)>> {
                let lock = if $backend == Backend::Postgres {
                    " FOR UPDATE SKIP LOCKED"
                } else {
                    ""
                };
                let rows = sqlx::query::<$db>(&format!(
                    "WITH claimed AS MATERIALIZED ( \
                         SELECT app_id, msg_id FROM push_outbox WHERE next_attempt_at <= $1 \
                         ORDER BY created_at, msg_id LIMIT $3{lock}) \
                     UPDATE push_outbox SET next_attempt_at = $2 \
                     WHERE next_attempt_at <= $1 AND (app_id, msg_id) IN (SELECT app_id, msg_id FROM claimed) \
                     RETURNING app_id, msg_id, created_at"
                ))
                .bind(now)
                .bind(now.saturating_add(lease_ms.max(0)))
                .bind(i64::from(limit))
                .fetch_all(self.writer())
                .await
                .map_err(map_err)?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let app: String = col(row, "app_id")?;
                    let msg: String = col(row, "msg_id")?;
                    let created_at: i64 = col(row, "created_at")?;
                    out.push((
                        created_at,
                        AppId::parse(&app).map_err(|_| corrupt("app id", &app))?,
                        MsgId::parse(&msg).map_err(|_| corrupt("message id", &msg))?,
                    ));
                }
                out.sort();
                Ok(out.into_iter().map(|(_, a, m)| (a, m)).collect())
            }

            async fn expand_push(
                &self,
                app: &AppId,
                msg: &MsgId,
                jobs: &[PushJob],
                now: UnixMillis,
            ) -> StoreResult<u64> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let mut written = 0;
                for chunk in jobs.chunks(ROWS_PER_STATEMENT) {
                    let payloads = chunk
                        .iter()
                        .map(|j| {
                            serde_json::to_string(&j.notification)
                                .map_err(|e| StoreError::Database(format!("JSON encoding failed: {e}")))
                        })
                        .collect::<StoreResult<Vec<_>>>()?;
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO push_jobs (app_id, msg_id, device_id, user_id, payload, state, attempts, \
                         next_attempt_at, created_at) ",
                    );
                    qb.push_values(chunk.iter().zip(&payloads), |mut row, (j, payload)| {
                        row.push_bind(app.as_str())
                            .push_bind(msg.as_str())
                            .push_bind(j.device_id.as_str())
                            .push_bind(j.user_id.as_str())
                            .push_bind(payload.as_str())
                            .push("'pending'")
                            .push("0")
                            .push_bind(now)
                            .push_bind(now);
                    });
                    qb.push(" ON CONFLICT (app_id, msg_id, device_id) DO NOTHING");
                    written += qb.build().execute(&mut *tx).await.map_err(map_err)?.rows_affected();
                }
                sqlx::query::<$db>("DELETE FROM push_outbox WHERE app_id = $1 AND msg_id = $2")
                    .bind(app.as_str())
                    .bind(msg.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(written)
            }

            async fn claim_push_jobs(&self, now: UnixMillis, limit: u32, lease_ms: i64) -> StoreResult<Vec<PushJob>> {
                let lock = if $backend == Backend::Postgres {
                    " FOR UPDATE SKIP LOCKED"
                } else {
                    ""
                };
                let rows = sqlx::query::<$db>(&format!(
                    "WITH claimed AS MATERIALIZED ( \
                         SELECT app_id, msg_id, device_id FROM push_jobs \
                         WHERE state = 'pending' AND next_attempt_at <= $1 \
                         ORDER BY created_at, msg_id, device_id LIMIT $3{lock}) \
                     UPDATE push_jobs SET next_attempt_at = $2 \
                     WHERE state = 'pending' AND next_attempt_at <= $1 \
                     AND (app_id, msg_id, device_id) IN (SELECT app_id, msg_id, device_id FROM claimed) \
                     RETURNING app_id, msg_id, device_id, user_id, payload, attempts, created_at"
                ))
                .bind(now)
                .bind(now.saturating_add(lease_ms.max(0)))
                .bind(i64::from(limit))
                .fetch_all(self.writer())
                .await
                .map_err(map_err)?;
                let mut jobs = rows.iter().map(job_from_row).collect::<StoreResult<Vec<_>>>()?;
                jobs.sort_by(|a, b| (a.created_at, &a.msg_id, &a.device_id).cmp(&(b.created_at, &b.msg_id, &b.device_id)));
                Ok(jobs)
            }

            async fn finish_push_job(
                &self,
                job: &PushJob,
                attempt: i32,
                next: JobNext,
                log: Option<&PushLogEntry>,
                remove_device: bool,
            ) -> StoreResult<bool> {
                let sent = log.is_some_and(|l| l.outcome == PushOutcome::Sent);
                let (state, at) = match next {
                    JobNext::Done if sent => ("sent", job.created_at),
                    JobNext::Done => ("failed", job.created_at),
                    JobNext::RetryAt(at) => ("pending", at),
                };
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let r = sqlx::query::<$db>(
                    "UPDATE push_jobs SET state = $4, attempts = $5, next_attempt_at = $6 \
                     WHERE app_id = $1 AND msg_id = $2 AND device_id = $3 AND state = 'pending'",
                )
                .bind(job.app_id.as_str())
                .bind(job.msg_id.as_str())
                .bind(job.device_id.as_str())
                .bind(state)
                .bind(attempt)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                if r.rows_affected() == 0 {
                    return Ok(false);
                }
                if let Some(log) = log {
                    insert_log(&mut tx, &job.app_id, log).await?;
                }
                if remove_device {
                    delete_device(&mut tx, &job.app_id, &job.device_id).await?;
                }
                tx.commit().await.map_err(map_err)?;
                Ok(true)
            }

            async fn append_push_log(&self, app: &AppId, log: &PushLogEntry, remove_device: bool) -> StoreResult<()> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                insert_log(&mut tx, app, log).await?;
                if remove_device {
                    delete_device(&mut tx, app, &log.device_id).await?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn push_log(&self, app: &AppId, f: &PushLogFilter, limit: u32) -> StoreResult<Vec<PushLogEntry>> {
                let mut qb =
                    sqlx::QueryBuilder::<$db>::new(format!("SELECT {LOG_COLUMNS} FROM push_log WHERE app_id = "));
                qb.push_bind(app.as_str());
                if let Some(u) = &f.user_id {
                    qb.push(" AND user_id = ").push_bind(u.as_str());
                }
                if let Some(d) = &f.device_id {
                    qb.push(" AND device_id = ").push_bind(d.as_str());
                }
                if let Some(m) = &f.msg_id {
                    qb.push(" AND msg_id = ").push_bind(m.as_str());
                }
                if let Some(b) = &f.before {
                    qb.push(" AND id < ").push_bind(b.as_str());
                }
                qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit));
                let rows = qb.build().fetch_all(self.reader()).await.map_err(map_err)?;
                rows.iter().map(log_from_row).collect()
            }

            async fn push_settings(&self, app: &AppId, user: &UserId) -> StoreResult<UserPushSettings> {
                let mut conn = self.reader().acquire().await.map_err(map_err)?;
                read_push_settings(&mut *conn, app, user).await
            }

            async fn update_push_settings(
                &self,
                app: &AppId,
                user: &UserId,
                patch: &UserPushSettingsPatch,
                now: UnixMillis,
            ) -> StoreResult<UserPushSettings> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                match &patch.dnd {
                    None => {}
                    Some(None) => {
                        sqlx::query::<$db>("DELETE FROM push_dnd WHERE app_id = $1 AND user_id = $2")
                            .bind(app.as_str())
                            .bind(user.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(map_err)?;
                    }
                    Some(Some(d)) => {
                        sqlx::query::<$db>(
                            "INSERT INTO push_dnd (app_id, user_id, start_minute, end_minute, utc_offset_minutes, \
                             updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (app_id, user_id) DO UPDATE SET \
                             start_minute = excluded.start_minute, end_minute = excluded.end_minute, \
                             utc_offset_minutes = excluded.utc_offset_minutes, updated_at = excluded.updated_at",
                        )
                        .bind(app.as_str())
                        .bind(user.as_str())
                        .bind(i32::from(d.start_minute))
                        .bind(i32::from(d.end_minute))
                        .bind(i32::from(d.utc_offset_minutes))
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    }
                }
                for c in &patch.mute {
                    sqlx::query::<$db>(
                        "INSERT INTO push_mutes (app_id, user_id, conversation_id, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (app_id, user_id, conversation_id) DO NOTHING",
                    )
                    .bind(app.as_str())
                    .bind(user.as_str())
                    .bind(c.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                for c in &patch.unmute {
                    sqlx::query::<$db>(
                        "DELETE FROM push_mutes WHERE app_id = $1 AND user_id = $2 AND conversation_id = $3",
                    )
                    .bind(app.as_str())
                    .bind(user.as_str())
                    .bind(c.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                let settings = read_push_settings(&mut *tx, app, user).await?;
                if settings.muted.len() > MAX_MUTES_PER_USER {
                    // Dropping the transaction rolls the whole change back.
                    return Err(StoreError::Rejected(format!(
                        "a user may mute at most {MAX_MUTES_PER_USER} conversations"
                    )));
                }
                tx.commit().await.map_err(map_err)?;
                Ok(settings)
            }

            async fn push_audience(
                &self,
                app: &AppId,
                conversation: &ConversationId,
                users: &[UserId],
            ) -> StoreResult<Vec<PushAudience>> {
                use std::collections::{HashMap, HashSet};
                let conversation = conversation.to_string();
                let mut muted: HashSet<String> = HashSet::new();
                let mut dnd: HashMap<String, DoNotDisturb> = HashMap::new();
                let mut unread: HashMap<String, i64> = HashMap::new();
                for chunk in users.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT user_id FROM push_mutes WHERE app_id = ",
                    );
                    qb.push_bind(app.as_str())
                        .push(" AND conversation_id = ")
                        .push_bind(&conversation)
                        .push(" AND user_id IN (");
                    let mut list = qb.separated(", ");
                    for u in chunk {
                        list.push_bind(u.as_str());
                    }
                    qb.push(")");
                    for row in qb.build().fetch_all(self.reader()).await.map_err(map_err)? {
                        muted.insert(col(&row, "user_id")?);
                    }

                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT user_id, start_minute, end_minute, utc_offset_minutes FROM push_dnd WHERE app_id = ",
                    );
                    qb.push_bind(app.as_str()).push(" AND user_id IN (");
                    let mut list = qb.separated(", ");
                    for u in chunk {
                        list.push_bind(u.as_str());
                    }
                    qb.push(")");
                    for row in qb.build().fetch_all(self.reader()).await.map_err(map_err)? {
                        dnd.insert(col(&row, "user_id")?, dnd_from_row(&row)?);
                    }

                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT uc.user_id, CAST(SUM(c.last_seq - uc.read_seq) AS BIGINT) AS unread \
                         FROM user_conversations uc JOIN conversations c \
                         ON c.app_id = uc.app_id AND c.id = uc.conversation_id WHERE uc.app_id = ",
                    );
                    qb.push_bind(app.as_str()).push(" AND c.last_seq > uc.read_seq AND uc.user_id IN (");
                    let mut list = qb.separated(", ");
                    for u in chunk {
                        list.push_bind(u.as_str());
                    }
                    qb.push(") GROUP BY uc.user_id");
                    for row in qb.build().fetch_all(self.reader()).await.map_err(map_err)? {
                        unread.insert(col(&row, "user_id")?, col(&row, "unread")?);
                    }
                }
                Ok(users
                    .iter()
                    .map(|u| PushAudience {
                        user_id: u.clone(),
                        muted: muted.contains(u.as_str()),
                        dnd: dnd.get(u.as_str()).copied(),
                        unread: unread.get(u.as_str()).copied().unwrap_or(0),
                    })
                    .collect())
            }
        }
    };
}
pub(crate) use push_sql;
