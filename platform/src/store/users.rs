//! An app's users (profiles, bans, app-wide mutes, token revocation) and the
//! sensitive-word lists that moderation checks messages against.

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::StoreResult;

/// Users, their moderation, and the app's word lists.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates or updates each user (fields `None` in the profile keep their stored value).
    /// Returns them in input order.
    async fn upsert_users(
        &self,
        app: &AppId,
        users: &[(UserId, UserProfile)],
        now: UnixMillis,
    ) -> StoreResult<Vec<User>>;
    async fn user(&self, app: &AppId, id: &UserId) -> StoreResult<Option<User>>;
    /// Of `ids`, those that exist in the app.
    async fn existing_users(&self, app: &AppId, ids: &[UserId]) -> StoreResult<Vec<UserId>>;
    async fn list_users(&self, app: &AppId, after: Option<&UserId>, limit: u32) -> StoreResult<Vec<User>>;
    /// The app's users whose id starts with `query` or whose name contains it (ignoring
    /// ASCII case), by id after `after`: the console's users explorer.
    async fn search_users(
        &self,
        app: &AppId,
        query: &str,
        after: Option<&UserId>,
        limit: u32,
    ) -> StoreResult<Vec<User>>;
    /// `NotFound` if the user does not exist.
    async fn delete_user(&self, app: &AppId, id: &UserId) -> StoreResult<()>;
    async fn set_user_ban(&self, app: &AppId, id: &UserId, until: Option<UnixMillis>) -> StoreResult<()>;
    async fn revoke_user_tokens(&self, app: &AppId, id: &UserId, before: UnixMillis) -> StoreResult<()>;
    /// Sets (or with `None` lifts) the user's app-wide mute. `NotFound` if no such user.
    async fn set_user_mute(&self, app: &AppId, id: &UserId, until: Option<UnixMillis>) -> StoreResult<()>;
    /// The app's sensitive-word lists, by name.
    async fn word_lists(&self, app: &AppId) -> StoreResult<Vec<WordList>>;
    async fn word_list(&self, app: &AppId, name: &str) -> StoreResult<Option<WordList>>;
    /// Creates or replaces the list `list.name` (keeping its `created_at` when it exists)
    /// and advances the app's word-list version, in one transaction. `Rejected` when it
    /// would be the app's list number `max_lists + 1`. Returns the stored list.
    async fn put_word_list(&self, app: &AppId, list: &WordList, max_lists: usize) -> StoreResult<WordList>;
    /// Deletes the list and advances the version. `NotFound` if the app has no such list.
    async fn delete_word_list(&self, app: &AppId, name: &str) -> StoreResult<()>;
    /// Changes whenever the app's lists change (0 before the first list).
    async fn word_lists_version(&self, app: &AppId) -> StoreResult<i64>;
}

/// `impl UserStore` for a SQL adapter, with the readers and steps only this area uses.
/// Expanded by `shared_sql::sql_store!` into the adapter's module, beside the other areas.
macro_rules! users_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        fn user_from_row(row: &DbRow) -> StoreResult<User> {
            let id: String = col(row, "id")?;
            let metadata: String = col(row, "metadata")?;
            Ok(User {
                id: UserId::parse(&id).map_err(|_| corrupt("user id", &id))?,
                name: col(row, "name")?,
                avatar_url: col(row, "avatar_url")?,
                metadata: parse_json("user metadata", &metadata)?,
                banned_until: col(row, "banned_until")?,
                muted_until: col(row, "muted_until")?,
                tokens_revoked_before: col(row, "tokens_revoked_before")?,
                created_at: col(row, "created_at")?,
                updated_at: col(row, "updated_at")?,
            })
        }

        fn word_list_from_row(row: &DbRow) -> StoreResult<WordList> {
            let policy: String = col(row, "policy")?;
            let words: String = col(row, "words")?;
            Ok(WordList {
                name: col(row, "name")?,
                policy: WordPolicy::parse(&policy).ok_or_else(|| corrupt("word list policy", &policy))?,
                words: serde_json::from_str(&words).map_err(|_| corrupt("word list words", &words))?,
                created_at: col(row, "created_at")?,
                updated_at: col(row, "updated_at")?,
            })
        }

        async fn bump_word_lists_version(tx: &mut Tx<'_>, app: &AppId) -> StoreResult<i64> {
            bump_counter(tx, "word_list_versions", app).await
        }

        #[async_trait]
        impl $crate::store::UserStore for $store {
            async fn upsert_users(
                &self,
                app: &AppId,
                users: &[(UserId, UserProfile)],
                now: UnixMillis,
            ) -> StoreResult<Vec<User>> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let mut out = Vec::with_capacity(users.len());
                for (id, profile) in users {
                    let row = sqlx::query::<$db>(
                        "SELECT id, name, avatar_url, metadata, banned_until, muted_until, tokens_revoked_before, \
                         created_at, updated_at FROM users WHERE app_id = $1 AND id = $2",
                    )
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    let mut user = match row.as_ref().map(user_from_row).transpose()? {
                        Some(u) => u,
                        None => User {
                            id: id.clone(),
                            name: String::new(),
                            avatar_url: None,
                            metadata: serde_json::json!({}),
                            banned_until: None,
                            muted_until: None,
                            tokens_revoked_before: None,
                            created_at: now,
                            updated_at: now,
                        },
                    };
                    if let Some(name) = &profile.name {
                        user.name = name.clone();
                    }
                    if let Some(avatar) = &profile.avatar_url {
                        user.avatar_url = avatar.clone();
                    }
                    if let Some(meta) = &profile.metadata {
                        user.metadata = meta.clone();
                    }
                    user.updated_at = now;
                    sqlx::query::<$db>(
                        "INSERT INTO users (app_id, id, name, avatar_url, metadata, banned_until, \
                         tokens_revoked_before, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, $6) \
                         ON CONFLICT (app_id, id) DO UPDATE SET name = excluded.name, \
                         avatar_url = excluded.avatar_url, metadata = excluded.metadata, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .bind(&user.name)
                    .bind(&user.avatar_url)
                    .bind(to_json(&user.metadata)?)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    out.push(user);
                }
                tx.commit().await.map_err(map_err)?;
                Ok(out)
            }

            async fn user(&self, app: &AppId, id: &UserId) -> StoreResult<Option<User>> {
                let row = sqlx::query::<$db>(
                    "SELECT id, name, avatar_url, metadata, banned_until, muted_until, tokens_revoked_before, \
                     created_at, updated_at FROM users WHERE app_id = $1 AND id = $2",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn existing_users(&self, app: &AppId, ids: &[UserId]) -> StoreResult<Vec<UserId>> {
                let mut found = Vec::new();
                for chunk in ids.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT id FROM users WHERE app_id = ");
                    qb.push_bind(app.as_str().to_owned());
                    qb.push(" AND id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_str().to_owned());
                    }
                    list.push_unseparated(")");
                    let rows: Vec<String> = qb
                        .build_query_scalar::<String>()
                        .fetch_all(self.reader())
                        .await
                        .map_err(map_err)?;
                    let rows: HashSet<String> = rows.into_iter().collect();
                    found.extend(chunk.iter().filter(|id| rows.contains(id.as_str())).cloned());
                }
                Ok(found)
            }

            async fn list_users(&self, app: &AppId, after: Option<&UserId>, limit: u32) -> StoreResult<Vec<User>> {
                let rows = sqlx::query::<$db>(
                    "SELECT id, name, avatar_url, metadata, banned_until, muted_until, tokens_revoked_before, \
                     created_at, updated_at FROM users WHERE app_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(app.as_str())
                .bind(after.map(UserId::as_str).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(user_from_row).collect()
            }

            async fn search_users(
                &self,
                app: &AppId,
                query: &str,
                after: Option<&UserId>,
                limit: u32,
            ) -> StoreResult<Vec<User>> {
                // LIKE's wildcards in the query match themselves.
                let escaped = query.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                let rows = sqlx::query::<$db>(
                    "SELECT id, name, avatar_url, metadata, banned_until, muted_until, tokens_revoked_before, \
                     created_at, updated_at FROM users WHERE app_id = $1 AND id > $2 \
                     AND (id LIKE $3 ESCAPE '\\' OR LOWER(name) LIKE LOWER($4) ESCAPE '\\') ORDER BY id LIMIT $5",
                )
                .bind(app.as_str())
                .bind(after.map(UserId::as_str).unwrap_or(""))
                .bind(format!("{escaped}%"))
                .bind(format!("%{escaped}%"))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(user_from_row).collect()
            }

            async fn delete_user(&self, app: &AppId, id: &UserId) -> StoreResult<()> {
                let r = sqlx::query::<$db>("DELETE FROM users WHERE app_id = $1 AND id = $2")
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "user")
            }

            async fn set_user_ban(&self, app: &AppId, id: &UserId, until: Option<UnixMillis>) -> StoreResult<()> {
                let r = sqlx::query::<$db>("UPDATE users SET banned_until = $3 WHERE app_id = $1 AND id = $2")
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .bind(until)
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "user")
            }

            async fn revoke_user_tokens(&self, app: &AppId, id: &UserId, before: UnixMillis) -> StoreResult<()> {
                let r = sqlx::query::<$db>("UPDATE users SET tokens_revoked_before = $3 WHERE app_id = $1 AND id = $2")
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .bind(before)
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "user")
            }

            async fn set_user_mute(&self, app: &AppId, id: &UserId, until: Option<UnixMillis>) -> StoreResult<()> {
                let r = sqlx::query::<$db>("UPDATE users SET muted_until = $3 WHERE app_id = $1 AND id = $2")
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .bind(until)
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "user")
            }

            async fn word_lists(&self, app: &AppId) -> StoreResult<Vec<WordList>> {
                let rows = sqlx::query::<$db>(
                    "SELECT name, policy, words, created_at, updated_at FROM word_lists \
                     WHERE app_id = $1 ORDER BY name",
                )
                .bind(app.as_str())
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(word_list_from_row).collect()
            }

            async fn word_list(&self, app: &AppId, name: &str) -> StoreResult<Option<WordList>> {
                let row = sqlx::query::<$db>(
                    "SELECT name, policy, words, created_at, updated_at FROM word_lists \
                     WHERE app_id = $1 AND name = $2",
                )
                .bind(app.as_str())
                .bind(name)
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(word_list_from_row).transpose()
            }

            async fn put_word_list(&self, app: &AppId, list: &WordList, max_lists: usize) -> StoreResult<WordList> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                // The version row first: it serialises the app's list changes (and the count below).
                bump_word_lists_version(&mut tx, app).await?;
                let created_at =
                    sqlx::query_scalar::<$db, i64>("SELECT created_at FROM word_lists WHERE app_id = $1 AND name = $2")
                        .bind(app.as_str())
                        .bind(&list.name)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(map_err)?;
                if created_at.is_none() {
                    let n = sqlx::query_scalar::<$db, i64>("SELECT COUNT(*) FROM word_lists WHERE app_id = $1")
                        .bind(app.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    if n as usize >= max_lists {
                        return Err(StoreError::Rejected(format!(
                            "an app may keep at most {max_lists} word lists"
                        )));
                    }
                }
                let words = serde_json::to_string(&list.words)
                    .map_err(|e| StoreError::Database(format!("JSON encoding failed: {e}")))?;
                let row = sqlx::query::<$db>(
                    "INSERT INTO word_lists (app_id, name, policy, words, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (app_id, name) DO UPDATE SET policy = excluded.policy, \
                     words = excluded.words, updated_at = excluded.updated_at \
                     RETURNING name, policy, words, created_at, updated_at",
                )
                .bind(app.as_str())
                .bind(&list.name)
                .bind(list.policy.as_str())
                .bind(words)
                .bind(created_at.unwrap_or(list.created_at))
                .bind(list.updated_at)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                let stored = word_list_from_row(&row)?;
                tx.commit().await.map_err(map_err)?;
                Ok(stored)
            }

            async fn delete_word_list(&self, app: &AppId, name: &str) -> StoreResult<()> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                bump_word_lists_version(&mut tx, app).await?;
                let r = sqlx::query::<$db>("DELETE FROM word_lists WHERE app_id = $1 AND name = $2")
                    .bind(app.as_str())
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                // Nothing deleted: the transaction (and its version bump) is rolled back on drop.
                not_found_unless_changed(r.rows_affected(), "word list")?;
                tx.commit().await.map_err(map_err)
            }

            async fn word_lists_version(&self, app: &AppId) -> StoreResult<i64> {
                let v = sqlx::query_scalar::<$db, i64>("SELECT version FROM word_list_versions WHERE app_id = $1")
                    .bind(app.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                Ok(v.unwrap_or(0))
            }
        }
    };
}
pub(crate) use users_sql;
