//! Requests to join a group and an admin's answer to them.

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::{GroupChange, NewOutboxEvent, RecordFor, StoreResult};

/// An admin's answer to a join request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinAnswer {
    /// The user becomes a member if the group has fewer than `member_limit`.
    Accept {
        member_limit: usize,
    },
    Decline,
}

/// Join requests of groups.
#[async_trait]
pub trait JoinRequestStore: Send + Sync {
    /// Stores a pending request of `request.user_id` (replacing an answered one, or the
    /// message and inviter of a pending one) and writes `events`, in one transaction.
    /// `NotFound` for no group.
    async fn put_group_join_request(
        &self,
        app: &AppId,
        request: &GroupJoinRequest,
        events: &[NewOutboxEvent],
    ) -> StoreResult<GroupJoinRequest>;
    async fn group_join_request(
        &self,
        app: &AppId,
        id: &GroupId,
        user: &UserId,
    ) -> StoreResult<Option<GroupJoinRequest>>;
    /// Pending requests to a group, by user id, after the user `after`.
    async fn group_join_requests(
        &self,
        app: &AppId,
        id: &GroupId,
        after: Option<&UserId>,
        limit: u32,
    ) -> StoreResult<Vec<GroupJoinRequest>>;
    /// Answers the pending request of `user`. Accepting adds them (unless they are a
    /// member already) with `record_for([user])`; declining writes `record_for([])`; in
    /// one transaction. `NotFound` if none is pending; `Rejected` when the group is full.
    async fn answer_group_join_request(
        &self,
        app: &AppId,
        id: &GroupId,
        user: &UserId,
        answer: JoinAnswer,
        now: UnixMillis,
        record_for: RecordFor<'_>,
    ) -> StoreResult<GroupChange<GroupJoinRequest>>;
}

/// `impl JoinRequestStore` for a SQL adapter, with the readers and steps only this area uses.
/// Expanded by `shared_sql::sql_store!` into the adapter's module, beside the other areas.
macro_rules! join_requests_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        const JOIN_REQUEST_COLUMNS: &str = "group_id, user_id, message, inviter, state, created_at, updated_at";

        fn join_request_from_row(row: &DbRow) -> StoreResult<GroupJoinRequest> {
            let group: String = col(row, "group_id")?;
            let inviter: Option<String> = col(row, "inviter")?;
            let state: String = col(row, "state")?;
            Ok(GroupJoinRequest {
                group_id: GroupId::parse(&group).map_err(|_| corrupt("group id", &group))?,
                user_id: stored_user(row, "user_id")?,
                message: col(row, "message")?,
                inviter: inviter
                    .map(|u| UserId::parse(&u).map_err(|_| corrupt("user id", &u)))
                    .transpose()?,
                state: JoinRequestState::parse(&state).ok_or_else(|| corrupt("join request state", &state))?,
                created_at: col(row, "created_at")?,
                updated_at: col(row, "updated_at")?,
            })
        }

        #[async_trait]
        impl $crate::store::JoinRequestStore for $store {
            async fn put_group_join_request(
                &self,
                app: &AppId,
                request: &GroupJoinRequest,
                events: &[NewOutboxEvent],
            ) -> StoreResult<GroupJoinRequest> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                group_in(&mut tx, app, &request.group_id)
                    .await?
                    .ok_or(StoreError::NotFound("group"))?;
                let row = sqlx::query::<$db>(&format!(
                    "INSERT INTO group_join_requests \
                     (app_id, group_id, user_id, message, inviter, state, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) \
                     ON CONFLICT (app_id, group_id, user_id) DO UPDATE SET message = excluded.message, \
                     inviter = excluded.inviter, updated_at = excluded.updated_at, \
                     created_at = CASE WHEN group_join_requests.state = 'pending' \
                     THEN group_join_requests.created_at ELSE excluded.created_at END, state = 'pending' \
                     RETURNING {JOIN_REQUEST_COLUMNS}"
                ))
                .bind(app.as_str())
                .bind(request.group_id.as_str())
                .bind(request.user_id.as_str())
                .bind(&request.message)
                .bind(request.inviter.as_ref().map(UserId::as_str))
                .bind(request.updated_at)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                insert_events(&mut tx, events).await?;
                tx.commit().await.map_err(map_err)?;
                join_request_from_row(&row)
            }

            async fn group_join_request(
                &self,
                app: &AppId,
                id: &GroupId,
                user: &UserId,
            ) -> StoreResult<Option<GroupJoinRequest>> {
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {JOIN_REQUEST_COLUMNS} FROM group_join_requests \
                     WHERE app_id = $1 AND group_id = $2 AND user_id = $3"
                ))
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(user.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(join_request_from_row).transpose()
            }

            async fn group_join_requests(
                &self,
                app: &AppId,
                id: &GroupId,
                after: Option<&UserId>,
                limit: u32,
            ) -> StoreResult<Vec<GroupJoinRequest>> {
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {JOIN_REQUEST_COLUMNS} FROM group_join_requests \
                     WHERE app_id = $1 AND group_id = $2 AND state = 'pending' AND user_id > $3 \
                     ORDER BY user_id LIMIT $4"
                ))
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(after.map(UserId::as_str).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(join_request_from_row).collect()
            }

            async fn answer_group_join_request(
                &self,
                app: &AppId,
                id: &GroupId,
                user: &UserId,
                answer: JoinAnswer,
                now: UnixMillis,
                record_for: RecordFor<'_>,
            ) -> StoreResult<GroupChange<GroupJoinRequest>> {
                let (accept, member_limit) = match answer {
                    JoinAnswer::Accept { member_limit } => (true, member_limit),
                    JoinAnswer::Decline => (false, 0),
                };
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let version = next_version(&mut tx, app).await?;
                let group = group_in(&mut tx, app, id)
                    .await?
                    .ok_or(StoreError::NotFound("group"))?;
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {JOIN_REQUEST_COLUMNS} FROM group_join_requests \
                     WHERE app_id = $1 AND group_id = $2 AND user_id = $3 AND state = 'pending'"
                ))
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(user.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                let mut request = row
                    .as_ref()
                    .map(join_request_from_row)
                    .transpose()?
                    .ok_or(StoreError::NotFound("join request"))?;
                let joins = accept && member_in(&mut tx, app, id, user).await?.is_none();
                let (notice, personal) = if joins {
                    if group.member_count as usize + 1 > member_limit {
                        return Err(StoreError::Rejected(format!(
                            "a group may have at most {member_limit} members; it is full"
                        )));
                    }
                    let record = record_for(std::slice::from_ref(user));
                    let change = join_with_record(
                        &mut tx,
                        app,
                        id,
                        &[(user, GroupRole::Member)],
                        version,
                        now,
                        &record,
                    )
                    .await?;
                    sqlx::query::<$db>(
                        "UPDATE groups SET member_count = member_count + 1, updated_at = $3, version = $4 \
                         WHERE app_id = $1 AND id = $2",
                    )
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .bind(now)
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    change
                } else {
                    write_record(&mut tx, app, version, now, Some(id), &record_for(&[])).await?
                };
                request.state = if accept {
                    JoinRequestState::Accepted
                } else {
                    JoinRequestState::Declined
                };
                request.updated_at = now;
                sqlx::query::<$db>(
                    "UPDATE group_join_requests SET state = $4, updated_at = $5 \
                     WHERE app_id = $1 AND group_id = $2 AND user_id = $3",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(user.as_str())
                .bind(request.state.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(GroupChange {
                    value: request,
                    notice,
                    personal,
                })
            }
        }
    };
}
pub(crate) use join_requests_sql;
