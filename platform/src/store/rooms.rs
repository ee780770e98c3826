//! Rooms: the app's registry of open chat rooms (their history is conversation `r:<id>`)
//! and mutes per room.

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::{NewOutboxEvent, StoreResult};

/// Rooms and room mutes.
#[async_trait]
pub trait RoomStore: Send + Sync {
    /// Creates a room and writes `events`, in one transaction. `Conflict` if the id is taken.
    async fn create_room(
        &self,
        app: &AppId,
        room: &NewRoom,
        now: UnixMillis,
        events: &[NewOutboxEvent],
    ) -> StoreResult<Room>;
    /// The room, creating it (as `room`) if it does not exist; `events` are written only when
    /// it is created, in the same transaction. Returns it and whether it was created.
    /// Concurrent calls for one new room create it once.
    async fn room_or_create(
        &self,
        app: &AppId,
        room: &NewRoom,
        now: UnixMillis,
        events: &[NewOutboxEvent],
    ) -> StoreResult<(Room, bool)>;
    async fn room(&self, app: &AppId, id: &RoomId) -> StoreResult<Option<Room>>;
    /// The app's rooms by id, after the room `after`.
    async fn rooms(&self, app: &AppId, after: Option<&RoomId>, limit: u32) -> StoreResult<Vec<Room>>;
    /// Changes the name and/or metadata (`None` keeps them) and writes `events`, in one
    /// transaction. `NotFound` for no such room.
    async fn update_room(
        &self,
        app: &AppId,
        id: &RoomId,
        name: Option<&str>,
        metadata: Option<&serde_json::Value>,
        now: UnixMillis,
        events: &[NewOutboxEvent],
    ) -> StoreResult<Room>;
    /// Deletes the room with its history (messages and conversation `r:<id>`) and its
    /// mutes, and writes `events`, in one transaction. `NotFound` for no such room.
    async fn delete_room(&self, app: &AppId, id: &RoomId, events: &[NewOutboxEvent]) -> StoreResult<()>;
    /// Mutes `user` in the room until `until` (replacing an earlier mute). `NotFound` for no
    /// such room.
    async fn mute_in_room(
        &self,
        app: &AppId,
        room: &RoomId,
        user: &UserId,
        until: UnixMillis,
        now: UnixMillis,
    ) -> StoreResult<RoomMute>;
    /// Lifts the mute. `NotFound` if the user is not muted in the room.
    async fn unmute_in_room(&self, app: &AppId, room: &RoomId, user: &UserId) -> StoreResult<()>;
    /// Until when `user` is muted in the room, if they are (a past time is returned as is).
    async fn room_mute(&self, app: &AppId, room: &RoomId, user: &UserId) -> StoreResult<Option<UnixMillis>>;
    /// The room's mutes still in force at `now`, by user id, after `after`.
    async fn room_mutes(
        &self,
        app: &AppId,
        room: &RoomId,
        now: UnixMillis,
        after: Option<&UserId>,
        limit: u32,
    ) -> StoreResult<Vec<RoomMute>>;
}

/// `impl RoomStore` for a SQL adapter, with the readers and steps only this area uses.
/// Expanded by `shared_sql::sql_store!` into the adapter's module, beside the other areas.
macro_rules! rooms_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        /// A room with the seq of its newest message; callers add WHERE, ORDER BY, LIMIT.
        const ROOM_SELECT: &str = "SELECT r.id, r.name, r.metadata, r.created_by, r.created_at, r.updated_at, \
             COALESCE(c.last_seq, 0) AS last_seq FROM rooms r \
             LEFT JOIN conversations c ON c.app_id = r.app_id AND c.id = 'r:' || r.id";

        fn room_from_row(row: &DbRow) -> StoreResult<Room> {
            let id: String = col(row, "id")?;
            let metadata: String = col(row, "metadata")?;
            let created_by: String = col(row, "created_by")?;
            Ok(Room {
                id: RoomId::parse(&id).map_err(|_| corrupt("room id", &id))?,
                name: col(row, "name")?,
                metadata: parse_json("room metadata", &metadata)?,
                created_by: RoomOrigin::parse(&created_by).ok_or_else(|| corrupt("room origin", &created_by))?,
                created_at: col(row, "created_at")?,
                updated_at: col(row, "updated_at")?,
                last_seq: col(row, "last_seq")?,
            })
        }

        async fn room_in(tx: &mut Tx<'_>, app: &AppId, id: &RoomId) -> StoreResult<Option<Room>> {
            let row = sqlx::query::<$db>(&format!("{ROOM_SELECT} WHERE r.app_id = $1 AND r.id = $2"))
                .bind(app.as_str())
                .bind(id.as_str())
                .fetch_optional(&mut **tx)
                .await
                .map_err(map_err)?;
            row.as_ref().map(room_from_row).transpose()
        }

        /// Inserts the room; with `keep_existing`, an existing one is left alone. Returns
        /// whether a row was inserted.
        async fn insert_room(
            tx: &mut Tx<'_>,
            app: &AppId,
            room: &NewRoom,
            now: UnixMillis,
            keep_existing: bool,
        ) -> StoreResult<bool> {
            let on_conflict = if keep_existing { " ON CONFLICT (app_id, id) DO NOTHING" } else { "" };
            let r = sqlx::query::<$db>(&format!(
                "INSERT INTO rooms (app_id, id, name, metadata, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6){on_conflict}"
            ))
            .bind(app.as_str())
            .bind(room.id.as_str())
            .bind(&room.name)
            .bind(to_json(&room.metadata)?)
            .bind(room.created_by.as_str())
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
            Ok(r.rows_affected() == 1)
        }

        #[async_trait]
        impl $crate::store::RoomStore for $store {
            async fn create_room(
                &self,
                app: &AppId,
                room: &NewRoom,
                now: UnixMillis,
                events: &[NewOutboxEvent],
            ) -> StoreResult<Room> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                insert_room(&mut tx, app, room, now, false)
                    .await
                    .map_err(|e| match e {
                        StoreError::Conflict(_) => StoreError::Conflict(format!("room {} exists already", room.id)),
                        e => e,
                    })?;
                insert_events(&mut tx, events).await?;
                let stored = room_in(&mut tx, app, &room.id)
                    .await?
                    .ok_or_else(|| StoreError::Database("a room just created is missing".into()))?;
                tx.commit().await.map_err(map_err)?;
                Ok(stored)
            }

            async fn room_or_create(
                &self,
                app: &AppId,
                room: &NewRoom,
                now: UnixMillis,
                events: &[NewOutboxEvent],
            ) -> StoreResult<(Room, bool)> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let created = insert_room(&mut tx, app, room, now, true).await?;
                if created {
                    insert_events(&mut tx, events).await?;
                }
                let stored = room_in(&mut tx, app, &room.id)
                    .await?
                    .ok_or_else(|| StoreError::Database("a room just ensured is missing".into()))?;
                tx.commit().await.map_err(map_err)?;
                Ok((stored, created))
            }

            async fn room(&self, app: &AppId, id: &RoomId) -> StoreResult<Option<Room>> {
                let row = sqlx::query::<$db>(&format!("{ROOM_SELECT} WHERE r.app_id = $1 AND r.id = $2"))
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(room_from_row).transpose()
            }

            async fn rooms(&self, app: &AppId, after: Option<&RoomId>, limit: u32) -> StoreResult<Vec<Room>> {
                let rows = sqlx::query::<$db>(&format!(
                    "{ROOM_SELECT} WHERE r.app_id = $1 AND r.id > $2 ORDER BY r.id LIMIT $3"
                ))
                .bind(app.as_str())
                .bind(after.map(RoomId::as_str).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(room_from_row).collect()
            }

            async fn update_room(
                &self,
                app: &AppId,
                id: &RoomId,
                name: Option<&str>,
                metadata: Option<&serde_json::Value>,
                now: UnixMillis,
                events: &[NewOutboxEvent],
            ) -> StoreResult<Room> {
                let metadata = metadata.map(to_json).transpose()?;
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let r = sqlx::query::<$db>(
                    "UPDATE rooms SET name = COALESCE($3, name), metadata = COALESCE($4, metadata), \
                     updated_at = $5 WHERE app_id = $1 AND id = $2",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(name)
                .bind(metadata.as_deref())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "room")?;
                insert_events(&mut tx, events).await?;
                let stored = room_in(&mut tx, app, id)
                    .await?
                    .ok_or_else(|| StoreError::Database("a room just updated is missing".into()))?;
                tx.commit().await.map_err(map_err)?;
                Ok(stored)
            }

            async fn delete_room(&self, app: &AppId, id: &RoomId, events: &[NewOutboxEvent]) -> StoreResult<()> {
                let conversation = ConversationId::Room(id.clone()).to_string();
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                // The lock order of the module docs: the app's version row first, so a send
                // to this room in flight commits entirely before or after the deletion.
                next_version(&mut tx, app).await?;
                sqlx::query::<$db>("DELETE FROM room_mutes WHERE app_id = $1 AND room_id = $2")
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let r = sqlx::query::<$db>("DELETE FROM rooms WHERE app_id = $1 AND id = $2")
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "room")?;
                sqlx::query::<$db>("DELETE FROM conversations WHERE app_id = $1 AND id = $2")
                    .bind(app.as_str())
                    .bind(&conversation)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                delete_conversation_messages(&mut tx, app, &conversation).await?;
                insert_events(&mut tx, events).await?;
                tx.commit().await.map_err(map_err)
            }

            async fn mute_in_room(
                &self,
                app: &AppId,
                room: &RoomId,
                user: &UserId,
                until: UnixMillis,
                now: UnixMillis,
            ) -> StoreResult<RoomMute> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                if room_in(&mut tx, app, room).await?.is_none() {
                    return Err(StoreError::NotFound("room"));
                }
                sqlx::query::<$db>(
                    "INSERT INTO room_mutes (app_id, room_id, user_id, until, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (app_id, room_id, user_id) DO UPDATE SET until = excluded.until",
                )
                .bind(app.as_str())
                .bind(room.as_str())
                .bind(user.as_str())
                .bind(until)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(RoomMute {
                    user_id: user.clone(),
                    until,
                })
            }

            async fn unmute_in_room(&self, app: &AppId, room: &RoomId, user: &UserId) -> StoreResult<()> {
                let r = sqlx::query::<$db>(
                    "DELETE FROM room_mutes WHERE app_id = $1 AND room_id = $2 AND user_id = $3",
                )
                .bind(app.as_str())
                .bind(room.as_str())
                .bind(user.as_str())
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "room mute")
            }

            async fn room_mute(&self, app: &AppId, room: &RoomId, user: &UserId) -> StoreResult<Option<UnixMillis>> {
                sqlx::query_scalar::<$db, i64>(
                    "SELECT until FROM room_mutes WHERE app_id = $1 AND room_id = $2 AND user_id = $3",
                )
                .bind(app.as_str())
                .bind(room.as_str())
                .bind(user.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)
            }

            async fn room_mutes(
                &self,
                app: &AppId,
                room: &RoomId,
                now: UnixMillis,
                after: Option<&UserId>,
                limit: u32,
            ) -> StoreResult<Vec<RoomMute>> {
                let rows = sqlx::query::<$db>(
                    "SELECT user_id, until FROM room_mutes \
                     WHERE app_id = $1 AND room_id = $2 AND until > $3 AND user_id > $4 ORDER BY user_id LIMIT $5",
                )
                .bind(app.as_str())
                .bind(room.as_str())
                .bind(now)
                .bind(after.map(UserId::as_str).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter()
                    .map(|row| {
                        Ok(RoomMute {
                            user_id: stored_user(row, "user_id")?,
                            until: col(row, "until")?,
                        })
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use rooms_sql;
