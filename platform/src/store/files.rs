//! Files: the records of uploaded files (their bytes live in the file store, `crate::files`)
//! and the conversations each file was sent in.

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::StoreResult;

/// File records.
#[async_trait]
pub trait FileRecordStore: Send + Sync {
    /// Stores a new file in state `uploading` with nothing received.
    async fn create_file(&self, app: &AppId, f: &NewFile) -> StoreResult<FileRecord>;
    async fn file(&self, app: &AppId, id: &FileId) -> StoreResult<Option<FileRecord>>;
    /// A file by id whatever its app (upload URLs name only the file; their signature
    /// names the app, which the caller compares).
    async fn file_by_id(&self, id: &FileId) -> StoreResult<Option<FileRecord>>;
    /// Moves `received` from `from` to `to` while the file is uploading and `received` is
    /// still `from` (compare-and-set: two writers of one upload cannot both advance).
    /// `false` when nothing changed.
    async fn advance_upload(&self, app: &AppId, id: &FileId, from: u64, to: u64) -> StoreResult<bool>;
    /// Ends an upload: `Complete` (at `now`) or `Failed`. Only from `uploading`; `false`
    /// when the file was not uploading.
    async fn finish_upload(&self, app: &AppId, id: &FileId, state: FileState, now: UnixMillis) -> StoreResult<bool>;
    /// Removes the record and its conversation references; `false` if there was none.
    async fn delete_file(&self, app: &AppId, id: &FileId) -> StoreResult<bool>;
    /// Files of any app still uploading whose upload expired before `now`, or failed; at most
    /// `limit`, oldest first.
    async fn stale_uploads(&self, now: UnixMillis, limit: u32) -> StoreResult<Vec<FileRecord>>;
    /// Records that the file was sent in `conversation` (idempotent).
    async fn add_file_ref(&self, app: &AppId, id: &FileId, conversation: &ConversationId) -> StoreResult<()>;
    /// The conversations the file was sent in.
    async fn file_refs(&self, app: &AppId, id: &FileId) -> StoreResult<Vec<ConversationId>>;
    /// What the app keeps: complete files and uploads in progress.
    async fn storage_usage(&self, app: &AppId) -> StoreResult<StorageUsage>;
    /// Notes that a message naming the file went away (recalled, edited to another file) at
    /// `now`, unless it was noted before; the sweep decides after the grace period.
    async fn release_file(&self, app: &AppId, id: &FileId, now: UnixMillis) -> StoreResult<()>;
    /// Complete files of any app released at or before `before`; at most `limit`, oldest
    /// release first.
    async fn released_files(&self, before: UnixMillis, limit: u32) -> StoreResult<Vec<FileRecord>>;
    /// Whether a message that is not recalled, in a conversation the file was sent in, still
    /// names the file.
    async fn file_in_use(&self, app: &AppId, id: &FileId) -> StoreResult<bool>;
    /// Clears a release: the file is in use again.
    async fn keep_file(&self, app: &AppId, id: &FileId) -> StoreResult<()>;
    /// Takes (or, holding it, renews) the write lease of an upload until `until`: `true`
    /// when no other `token` holds an unexpired one at `now` and the file is not complete
    /// (a failed upload may still be terminated).
    async fn lease_upload(
        &self,
        app: &AppId,
        id: &FileId,
        token: &str,
        now: UnixMillis,
        until: UnixMillis,
    ) -> StoreResult<bool>;
    /// Gives the lease back, if `token` still holds it.
    async fn end_upload_lease(&self, app: &AppId, id: &FileId, token: &str) -> StoreResult<()>;
}

/// `impl FileRecordStore` for a SQL adapter. Expanded by `shared_sql::sql_store!`.
macro_rules! files_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        const FILE_COLUMNS: &str = "app_id, id, uploader, name, content_type, size, sha256, state, received, \
             created_at, upload_expires_at, completed_at";

        fn file_from_row(row: &DbRow) -> StoreResult<FileRecord> {
            let app_id: String = col(row, "app_id")?;
            let id: String = col(row, "id")?;
            let state: String = col(row, "state")?;
            let size: i64 = col(row, "size")?;
            let received: i64 = col(row, "received")?;
            Ok(FileRecord {
                app_id: AppId::parse(&app_id).map_err(|_| corrupt("app id", &app_id))?,
                id: FileId::parse(&id).map_err(|_| corrupt("file id", &id))?,
                uploader: stored_user(row, "uploader")?,
                name: col(row, "name")?,
                content_type: col(row, "content_type")?,
                size: u64::try_from(size).map_err(|_| corrupt("file size", &size.to_string()))?,
                sha256: col(row, "sha256")?,
                state: FileState::parse(&state).ok_or_else(|| corrupt("file state", &state))?,
                received: u64::try_from(received).map_err(|_| corrupt("received", &received.to_string()))?,
                created_at: col(row, "created_at")?,
                upload_expires_at: col(row, "upload_expires_at")?,
                completed_at: col(row, "completed_at")?,
            })
        }

        /// The files `filter_and_order` picks (its `$1` is `at`), at most `limit`: the sweeps' reads.
        async fn files_where(
            store: &$store,
            filter_and_order: &str,
            at: UnixMillis,
            limit: u32,
        ) -> StoreResult<Vec<FileRecord>> {
            let rows = sqlx::query::<$db>(&format!(
                "SELECT {FILE_COLUMNS} FROM files WHERE {filter_and_order} LIMIT $2"
            ))
            .bind(at)
            .bind(i64::from(limit))
            .fetch_all(store.reader())
            .await
            .map_err(map_err)?;
            rows.iter().map(file_from_row).collect()
        }

        fn file_size_param(n: u64) -> StoreResult<i64> {
            i64::try_from(n).map_err(|_| StoreError::Rejected(format!("file size {n} is out of range")))
        }

        #[async_trait]
        impl $crate::store::FileRecordStore for $store {
            async fn create_file(&self, app: &AppId, f: &NewFile) -> StoreResult<FileRecord> {
                let row = sqlx::query::<$db>(&format!(
                    "INSERT INTO files (app_id, id, uploader, name, content_type, size, sha256, state, received, \
                     created_at, upload_expires_at, completed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'uploading', 0, $8, $9, NULL) RETURNING {FILE_COLUMNS}"
                ))
                .bind(app.as_str())
                .bind(f.id.as_str())
                .bind(f.uploader.as_str())
                .bind(f.name.as_str())
                .bind(f.content_type.as_str())
                .bind(file_size_param(f.size)?)
                .bind(&f.sha256)
                .bind(f.created_at)
                .bind(f.upload_expires_at)
                .fetch_one(self.writer())
                .await
                .map_err(|e| conflict_as(e, || format!("file {} exists already", f.id)))?;
                file_from_row(&row)
            }

            async fn file(&self, app: &AppId, id: &FileId) -> StoreResult<Option<FileRecord>> {
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {FILE_COLUMNS} FROM files WHERE app_id = $1 AND id = $2"
                ))
                .bind(app.as_str())
                .bind(id.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(file_from_row).transpose()
            }

            async fn file_by_id(&self, id: &FileId) -> StoreResult<Option<FileRecord>> {
                let row = sqlx::query::<$db>(&format!("SELECT {FILE_COLUMNS} FROM files WHERE id = $1"))
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(file_from_row).transpose()
            }

            async fn advance_upload(&self, app: &AppId, id: &FileId, from: u64, to: u64) -> StoreResult<bool> {
                let r = sqlx::query::<$db>(
                    "UPDATE files SET received = $4 \
                     WHERE app_id = $1 AND id = $2 AND state = 'uploading' AND received = $3 AND $4 <= size",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(file_size_param(from)?)
                .bind(file_size_param(to)?)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() == 1)
            }

            async fn finish_upload(
                &self,
                app: &AppId,
                id: &FileId,
                state: FileState,
                now: UnixMillis,
            ) -> StoreResult<bool> {
                let completed_at = (state == FileState::Complete).then_some(now);
                let r = sqlx::query::<$db>(
                    "UPDATE files SET state = $3, completed_at = $4 \
                     WHERE app_id = $1 AND id = $2 AND state = 'uploading'",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(state.as_str())
                .bind(completed_at)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() == 1)
            }

            async fn delete_file(&self, app: &AppId, id: &FileId) -> StoreResult<bool> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                sqlx::query::<$db>("DELETE FROM file_refs WHERE app_id = $1 AND file_id = $2")
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let r = sqlx::query::<$db>("DELETE FROM files WHERE app_id = $1 AND id = $2")
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(r.rows_affected() == 1)
            }

            async fn stale_uploads(&self, now: UnixMillis, limit: u32) -> StoreResult<Vec<FileRecord>> {
                files_where(
                    self,
                    "(state = 'uploading' AND upload_expires_at < $1) OR state = 'failed' \
                     ORDER BY upload_expires_at, id",
                    now,
                    limit,
                )
                .await
            }

            async fn add_file_ref(&self, app: &AppId, id: &FileId, conversation: &ConversationId) -> StoreResult<()> {
                sqlx::query::<$db>(
                    "INSERT INTO file_refs (app_id, file_id, conversation_id) VALUES ($1, $2, $3) \
                     ON CONFLICT (app_id, file_id, conversation_id) DO NOTHING",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(conversation.to_string())
                .execute(self.writer())
                .await
                .map_err(|e| match map_err(e) {
                    StoreError::Database(m) if m.contains("FOREIGN KEY") || m.contains("foreign key") => {
                        StoreError::NotFound("file")
                    }
                    other => other,
                })?;
                Ok(())
            }

            async fn file_refs(&self, app: &AppId, id: &FileId) -> StoreResult<Vec<ConversationId>> {
                let ids: Vec<String> = sqlx::query_scalar::<$db, String>(
                    "SELECT conversation_id FROM file_refs WHERE app_id = $1 AND file_id = $2 \
                     ORDER BY conversation_id",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                ids.iter().map(|c| parse_conversation(c)).collect()
            }

            async fn storage_usage(&self, app: &AppId) -> StoreResult<StorageUsage> {
                let rows = sqlx::query::<$db>(
                    "SELECT state, COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes \
                     FROM files WHERE app_id = $1 AND state IN ('uploading', 'complete') GROUP BY state",
                )
                .bind(app.as_str())
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                let mut usage = StorageUsage::default();
                for row in &rows {
                    let state: String = col(row, "state")?;
                    let n: i64 = col(row, "n")?;
                    let bytes: i64 = col(row, "bytes")?;
                    let (n, bytes) = (n.max(0) as u64, bytes.max(0) as u64);
                    if state == "complete" {
                        usage.files = n;
                        usage.bytes = bytes;
                    } else {
                        usage.uploads_in_progress = n;
                        usage.bytes_reserved = bytes;
                    }
                }
                Ok(usage)
            }

            async fn release_file(&self, app: &AppId, id: &FileId, now: UnixMillis) -> StoreResult<()> {
                sqlx::query::<$db>(
                    "UPDATE files SET released_at = $3 WHERE app_id = $1 AND id = $2 AND released_at IS NULL",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(now)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn released_files(&self, before: UnixMillis, limit: u32) -> StoreResult<Vec<FileRecord>> {
                files_where(
                    self,
                    "released_at IS NOT NULL AND released_at <= $1 AND state = 'complete' \
                     ORDER BY released_at, id",
                    before,
                    limit,
                )
                .await
            }

            async fn file_in_use(&self, app: &AppId, id: &FileId) -> StoreResult<bool> {
                // File ids are ULID-based and never a part of another id, so a live message
                // whose content holds the id names this file.
                let found: Option<i32> = sqlx::query_scalar::<$db, i32>(
                    "SELECT 1 FROM messages m JOIN file_refs r \
                     ON m.app_id = r.app_id AND m.conversation_id = r.conversation_id \
                     WHERE r.app_id = $1 AND r.file_id = $2 AND m.recalled = FALSE AND m.content LIKE $3 \
                     LIMIT 1",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(format!("%\"{}\"%", id.as_str()))
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                Ok(found.is_some())
            }

            async fn lease_upload(
                &self,
                app: &AppId,
                id: &FileId,
                token: &str,
                now: UnixMillis,
                until: UnixMillis,
            ) -> StoreResult<bool> {
                let r = sqlx::query::<$db>(
                    "UPDATE files SET writer_token = $3, writer_until = $5 \
                     WHERE app_id = $1 AND id = $2 AND state <> 'complete' \
                     AND (writer_token IS NULL OR writer_token = $3 OR writer_until < $4)",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(token)
                .bind(now)
                .bind(until)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(r.rows_affected() == 1)
            }

            async fn end_upload_lease(&self, app: &AppId, id: &FileId, token: &str) -> StoreResult<()> {
                sqlx::query::<$db>(
                    "UPDATE files SET writer_token = NULL, writer_until = NULL \
                     WHERE app_id = $1 AND id = $2 AND writer_token = $3",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(token)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn keep_file(&self, app: &AppId, id: &FileId) -> StoreResult<()> {
                sqlx::query::<$db>("UPDATE files SET released_at = NULL WHERE app_id = $1 AND id = $2")
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                Ok(())
            }
        }
    };
}
pub(crate) use files_sql;
