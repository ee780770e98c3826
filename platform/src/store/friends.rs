//! Friend requests, each user's side of a friendship, and blocklists.

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::{NewOutboxEvent, StoreResult};

/// Friends and blocks.
#[async_trait]
pub trait FriendStore: Send + Sync {
    /// Stores a pending request from `from` to `to`, replacing an answered one or the
    /// message of a pending one. `Conflict` if both already hold each other as friends.
    async fn create_friend_request(
        &self,
        app: &AppId,
        from: &UserId,
        to: &UserId,
        message: &str,
        now: UnixMillis,
    ) -> StoreResult<FriendRequest>;
    async fn friend_request(&self, app: &AppId, from: &UserId, to: &UserId) -> StoreResult<Option<FriendRequest>>;
    /// Pending requests to `user`, by sender id, after the sender `after`.
    async fn incoming_friend_requests(
        &self,
        app: &AppId,
        user: &UserId,
        after: Option<&UserId>,
        limit: u32,
    ) -> StoreResult<Vec<FriendRequest>>;
    /// Answers the pending request from `from` to `to`. Accepting adds both sides (a side
    /// that exists is kept as it is), also accepts a pending request the other way, and
    /// writes `events`, in one transaction. `NotFound` if no request is pending.
    async fn answer_friend_request(
        &self,
        app: &AppId,
        from: &UserId,
        to: &UserId,
        accept: bool,
        events: &[NewOutboxEvent],
        now: UnixMillis,
    ) -> StoreResult<FriendRequest>;
    /// `user`'s side of their friendships, by friend id, after the friend `after`.
    async fn friends(&self, app: &AppId, user: &UserId, after: Option<&UserId>, limit: u32)
        -> StoreResult<Vec<Friend>>;
    async fn friend(&self, app: &AppId, user: &UserId, friend: &UserId) -> StoreResult<Option<Friend>>;
    /// Sets the remark and tags `user` keeps on `friend`. `NotFound` if not on the list.
    async fn update_friend(
        &self,
        app: &AppId,
        user: &UserId,
        friend: &UserId,
        remark: Option<&str>,
        tags: &[String],
        now: UnixMillis,
    ) -> StoreResult<Friend>;
    /// Takes `friend` off `user`'s list and, with `both`, `user` off `friend`'s, and writes
    /// `events`, in one transaction. `NotFound` if `friend` is not on `user`'s list.
    async fn delete_friend(
        &self,
        app: &AppId,
        user: &UserId,
        friend: &UserId,
        both: bool,
        events: &[NewOutboxEvent],
    ) -> StoreResult<()>;
    /// `user` blocks `blocked`; blocking again keeps the first block.
    async fn block_user(&self, app: &AppId, user: &UserId, blocked: &UserId, now: UnixMillis) -> StoreResult<Block>;
    /// `NotFound` if `user` does not block `blocked`.
    async fn unblock_user(&self, app: &AppId, user: &UserId, blocked: &UserId) -> StoreResult<()>;
    /// Whom `user` blocks, by id, after `after`.
    async fn blocks(&self, app: &AppId, user: &UserId, after: Option<&UserId>, limit: u32) -> StoreResult<Vec<Block>>;
    /// Whether `user` blocks `other`.
    async fn blocks_user(&self, app: &AppId, user: &UserId, other: &UserId) -> StoreResult<bool>;
}

/// `impl FriendStore` for a SQL adapter, with the readers and steps only this area uses.
/// Expanded by `shared_sql::sql_store!` into the adapter's module, beside the other areas.
macro_rules! friends_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        const FRIEND_COLUMNS: &str = "user_id, friend_id, remark, tags, created_at, updated_at";
        const FRIEND_REQUEST_COLUMNS: &str = "from_user, to_user, message, state, created_at, updated_at";

        fn friend_from_row(row: &DbRow) -> StoreResult<Friend> {
            let tags: String = col(row, "tags")?;
            Ok(Friend {
                user_id: stored_user(row, "user_id")?,
                friend_id: stored_user(row, "friend_id")?,
                remark: col(row, "remark")?,
                tags: serde_json::from_str(&tags).map_err(|_| corrupt("friend tags", &tags))?,
                created_at: col(row, "created_at")?,
                updated_at: col(row, "updated_at")?,
            })
        }

        fn friend_request_from_row(row: &DbRow) -> StoreResult<FriendRequest> {
            let state: String = col(row, "state")?;
            Ok(FriendRequest {
                from: stored_user(row, "from_user")?,
                to: stored_user(row, "to_user")?,
                message: col(row, "message")?,
                state: FriendRequestState::parse(&state).ok_or_else(|| corrupt("friend request state", &state))?,
                created_at: col(row, "created_at")?,
                updated_at: col(row, "updated_at")?,
            })
        }

        fn block_from_row(row: &DbRow) -> StoreResult<Block> {
            Ok(Block {
                user_id: stored_user(row, "user_id")?,
                blocked_id: stored_user(row, "blocked_id")?,
                created_at: col(row, "created_at")?,
            })
        }

        #[async_trait]
        impl $crate::store::FriendStore for $store {
            async fn create_friend_request(
                &self,
                app: &AppId,
                from: &UserId,
                to: &UserId,
                message: &str,
                now: UnixMillis,
            ) -> StoreResult<FriendRequest> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let sides: i64 = sqlx::query_scalar::<$db, i64>(
                    "SELECT COUNT(*) FROM friends WHERE app_id = $1 AND \
                     ((user_id = $2 AND friend_id = $3) OR (user_id = $3 AND friend_id = $2))",
                )
                .bind(app.as_str())
                .bind(from.as_str())
                .bind(to.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                if sides == 2 {
                    return Err(StoreError::Conflict(format!("{from} and {to} are friends already")));
                }
                let row = sqlx::query::<$db>(&format!(
                    "INSERT INTO friend_requests (app_id, from_user, to_user, message, state, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 'pending', $5, $5) \
                     ON CONFLICT (app_id, from_user, to_user) DO UPDATE SET message = excluded.message, \
                     state = 'pending', created_at = excluded.created_at, updated_at = excluded.updated_at \
                     RETURNING {FRIEND_REQUEST_COLUMNS}"
                ))
                .bind(app.as_str())
                .bind(from.as_str())
                .bind(to.as_str())
                .bind(message)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                let request = friend_request_from_row(&row)?;
                tx.commit().await.map_err(map_err)?;
                Ok(request)
            }

            async fn friend_request(
                &self,
                app: &AppId,
                from: &UserId,
                to: &UserId,
            ) -> StoreResult<Option<FriendRequest>> {
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {FRIEND_REQUEST_COLUMNS} FROM friend_requests \
                     WHERE app_id = $1 AND from_user = $2 AND to_user = $3"
                ))
                .bind(app.as_str())
                .bind(from.as_str())
                .bind(to.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(friend_request_from_row).transpose()
            }

            async fn incoming_friend_requests(
                &self,
                app: &AppId,
                user: &UserId,
                after: Option<&UserId>,
                limit: u32,
            ) -> StoreResult<Vec<FriendRequest>> {
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {FRIEND_REQUEST_COLUMNS} FROM friend_requests \
                     WHERE app_id = $1 AND to_user = $2 AND state = 'pending' AND from_user > $3 \
                     ORDER BY from_user LIMIT $4"
                ))
                .bind(app.as_str())
                .bind(user.as_str())
                .bind(after.map(UserId::as_str).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(friend_request_from_row).collect()
            }

            async fn answer_friend_request(
                &self,
                app: &AppId,
                from: &UserId,
                to: &UserId,
                accept: bool,
                events: &[NewOutboxEvent],
                now: UnixMillis,
            ) -> StoreResult<FriendRequest> {
                let state = if accept { FriendRequestState::Accepted } else { FriendRequestState::Declined };
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                // Accepting also accepts the request the other way. Both request rows are
                // changed in sorted (from, to) order, then both friend rows in sorted order:
                // two users accepting each other at once queue instead of deadlocking.
                let accept_reverse = || {
                    sqlx::query::<$db>(
                        "UPDATE friend_requests SET state = 'accepted', updated_at = $4 \
                         WHERE app_id = $1 AND from_user = $2 AND to_user = $3 AND state = 'pending'",
                    )
                    .bind(app.as_str())
                    .bind(to.as_str())
                    .bind(from.as_str())
                    .bind(now)
                };
                if accept && to < from {
                    accept_reverse().execute(&mut *tx).await.map_err(map_err)?;
                }
                let row = sqlx::query::<$db>(&format!(
                    "UPDATE friend_requests SET state = $4, updated_at = $5 \
                     WHERE app_id = $1 AND from_user = $2 AND to_user = $3 AND state = 'pending' \
                     RETURNING {FRIEND_REQUEST_COLUMNS}"
                ))
                .bind(app.as_str())
                .bind(from.as_str())
                .bind(to.as_str())
                .bind(state.as_str())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
                .ok_or(StoreError::NotFound("friend request"))?;
                let request = friend_request_from_row(&row)?;
                if accept {
                    if from < to {
                        accept_reverse().execute(&mut *tx).await.map_err(map_err)?;
                    }
                    let mut sides = [(from, to), (to, from)];
                    sides.sort();
                    for (user, friend) in sides {
                        sqlx::query::<$db>(
                            "INSERT INTO friends (app_id, user_id, friend_id, remark, tags, created_at, updated_at) \
                             VALUES ($1, $2, $3, NULL, '[]', $4, $4) \
                             ON CONFLICT (app_id, user_id, friend_id) DO NOTHING",
                        )
                        .bind(app.as_str())
                        .bind(user.as_str())
                        .bind(friend.as_str())
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    }
                }
                insert_events(&mut tx, events).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(request)
            }

            async fn friends(
                &self,
                app: &AppId,
                user: &UserId,
                after: Option<&UserId>,
                limit: u32,
            ) -> StoreResult<Vec<Friend>> {
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {FRIEND_COLUMNS} FROM friends WHERE app_id = $1 AND user_id = $2 AND friend_id > $3 \
                     ORDER BY friend_id LIMIT $4"
                ))
                .bind(app.as_str())
                .bind(user.as_str())
                .bind(after.map(UserId::as_str).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(friend_from_row).collect()
            }

            async fn friend(&self, app: &AppId, user: &UserId, friend: &UserId) -> StoreResult<Option<Friend>> {
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {FRIEND_COLUMNS} FROM friends WHERE app_id = $1 AND user_id = $2 AND friend_id = $3"
                ))
                .bind(app.as_str())
                .bind(user.as_str())
                .bind(friend.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(friend_from_row).transpose()
            }

            async fn update_friend(
                &self,
                app: &AppId,
                user: &UserId,
                friend: &UserId,
                remark: Option<&str>,
                tags: &[String],
                now: UnixMillis,
            ) -> StoreResult<Friend> {
                let tags = serde_json::to_string(tags)
                    .map_err(|e| StoreError::Database(format!("JSON encoding failed: {e}")))?;
                let row = sqlx::query::<$db>(&format!(
                    "UPDATE friends SET remark = $4, tags = $5, updated_at = $6 \
                     WHERE app_id = $1 AND user_id = $2 AND friend_id = $3 RETURNING {FRIEND_COLUMNS}"
                ))
                .bind(app.as_str())
                .bind(user.as_str())
                .bind(friend.as_str())
                .bind(remark)
                .bind(tags)
                .bind(now)
                .fetch_optional(self.writer())
                .await
                .map_err(map_err)?
                .ok_or(StoreError::NotFound("friend"))?;
                friend_from_row(&row)
            }

            async fn delete_friend(
                &self,
                app: &AppId,
                user: &UserId,
                friend: &UserId,
                both: bool,
                events: &[NewOutboxEvent],
            ) -> StoreResult<()> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let r = sqlx::query::<$db>(
                    "DELETE FROM friends WHERE app_id = $1 AND user_id = $2 AND friend_id = $3",
                )
                .bind(app.as_str())
                .bind(user.as_str())
                .bind(friend.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "friend")?;
                if both {
                    sqlx::query::<$db>("DELETE FROM friends WHERE app_id = $1 AND user_id = $2 AND friend_id = $3")
                        .bind(app.as_str())
                        .bind(friend.as_str())
                        .bind(user.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                insert_events(&mut tx, events).await?;
                tx.commit().await.map_err(map_err)
            }

            async fn block_user(
                &self,
                app: &AppId,
                user: &UserId,
                blocked: &UserId,
                now: UnixMillis,
            ) -> StoreResult<Block> {
                sqlx::query::<$db>(
                    "INSERT INTO blocks (app_id, user_id, blocked_id, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (app_id, user_id, blocked_id) DO NOTHING",
                )
                .bind(app.as_str())
                .bind(user.as_str())
                .bind(blocked.as_str())
                .bind(now)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                let row = sqlx::query::<$db>(
                    "SELECT user_id, blocked_id, created_at FROM blocks \
                     WHERE app_id = $1 AND user_id = $2 AND blocked_id = $3",
                )
                .bind(app.as_str())
                .bind(user.as_str())
                .bind(blocked.as_str())
                .fetch_one(self.writer())
                .await
                .map_err(map_err)?;
                block_from_row(&row)
            }

            async fn unblock_user(&self, app: &AppId, user: &UserId, blocked: &UserId) -> StoreResult<()> {
                let r = sqlx::query::<$db>("DELETE FROM blocks WHERE app_id = $1 AND user_id = $2 AND blocked_id = $3")
                    .bind(app.as_str())
                    .bind(user.as_str())
                    .bind(blocked.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "block")
            }

            async fn blocks(
                &self,
                app: &AppId,
                user: &UserId,
                after: Option<&UserId>,
                limit: u32,
            ) -> StoreResult<Vec<Block>> {
                let rows = sqlx::query::<$db>(
                    "SELECT user_id, blocked_id, created_at FROM blocks \
                     WHERE app_id = $1 AND user_id = $2 AND blocked_id > $3 ORDER BY blocked_id LIMIT $4",
                )
                .bind(app.as_str())
                .bind(user.as_str())
                .bind(after.map(UserId::as_str).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(block_from_row).collect()
            }

            async fn blocks_user(&self, app: &AppId, user: &UserId, other: &UserId) -> StoreResult<bool> {
                let n: i64 = sqlx::query_scalar::<$db, i64>(
                    "SELECT COUNT(*) FROM blocks WHERE app_id = $1 AND user_id = $2 AND blocked_id = $3",
                )
                .bind(app.as_str())
                .bind(user.as_str())
                .bind(other.as_str())
                .fetch_one(self.reader())
                .await
                .map_err(map_err)?;
                Ok(n > 0)
            }
        }
    };
}
pub(crate) use friends_sql;
