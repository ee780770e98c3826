//! What the SQL of every store area shares, and `sql_store!`, which puts the areas together
//! for one adapter.
//!
//! Both schemas have the same tables and columns, and both drivers accept `$1`-style
//! parameters, `RETURNING` and `ON CONFLICT`, so every query of the `Store` port is written
//! once, in its area's module (`users.rs`, `groups.rs`, ...), as a macro that each adapter
//! expands with its own driver types. What differs (pools, pragmas, migrations, error codes)
//! stays in `sqlite.rs` and `postgres.rs`; the one query that differs (`FOR UPDATE SKIP
//! LOCKED` in the claims, PostgreSQL only) asks `$backend`.
//!
//! Lock order (matters on PostgreSQL, where batches run concurrently): a transaction that
//! changes conversation state first advances the app's change version (one row per app,
//! apps in sorted order), then touches conversations in sorted order, then entries of each
//! conversation's users in sorted order. Every such transaction of an app therefore queues
//! on the app's version row first, and no two can wait on each other in a cycle.

use super::StoreError;
use crate::domain::{MessageType, Sender};
use crate::ids::{ConversationId, UserId};

/// Columns of `messages` that make up a [`crate::domain::Message`] (row readers go by name).
pub(crate) const MESSAGE_COLUMNS: &str = "msg_id, conversation_id, seq, sender_key, client_msg_id, msg_type, content, \
     created_at, recalled, edited_at, reply_to, version, mentions, mention_all";

/// `MESSAGE_COLUMNS` of the table aliased `alias`, each renamed with `prefix` (for joins
/// read by `message_from_row(row, prefix)`).
pub(crate) fn prefixed_message_columns(alias: &str, prefix: &str) -> String {
    MESSAGE_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c} AS {prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Maps a driver error to the port's error: uniqueness to `Conflict`, lost connections and
/// lock timeouts to `Unavailable`, everything else to `Database`.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(d.message().to_owned()),
        sqlx::Error::Database(d) => match d.code().as_deref() {
            // SQLite busy/locked, PostgreSQL deadlock and serialization failures: retryable.
            Some("5" | "6" | "517" | "40P01" | "40001") => StoreError::Unavailable(d.message().to_owned()),
            _ => StoreError::Database(e.to_string()),
        },
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Database(e.to_string()),
    }
}

/// Like [`map_err`], with a message of the caller's for a uniqueness conflict.
pub(crate) fn conflict_as(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match map_err(e) {
        StoreError::Conflict(_) => StoreError::Conflict(what()),
        other => other,
    }
}

/// A stored value that does not parse back: the database was written by something else.
pub(crate) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Database(format!("stored {what} {value:?} is invalid"))
}

pub(crate) fn parse_conversation(s: &str) -> Result<ConversationId, StoreError> {
    ConversationId::parse(s).map_err(|_| corrupt("conversation id", s))
}

pub(crate) fn parse_sender(key: &str) -> Result<Sender, StoreError> {
    if key.is_empty() {
        Ok(Sender::System)
    } else {
        UserId::parse(key).map(Sender::User).map_err(|_| corrupt("sender", key))
    }
}

pub(crate) fn parse_msg_type(s: &str) -> Result<MessageType, StoreError> {
    MessageType::parse_stored(s).ok_or_else(|| corrupt("message type", s))
}

pub(crate) fn parse_json(what: &str, s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|_| corrupt(what, s))
}

pub(crate) fn to_json(v: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Database(format!("JSON encoding failed: {e}")))
}

/// Defines, in the module that invokes it, every area's `impl` for `$store` and what the
/// areas share: the imports, row readers and steps used by more than one area. Each area's
/// own part is its module's `<area>_sql!`, expanded here, so all of them share one
/// namespace. `$store` must have `fn writer(&self) -> &sqlx::Pool<$db>` (the pool that
/// writes) and `fn reader(&self) -> &sqlx::Pool<$db>` (the pool reads may use), and a static
/// `MIGRATOR: sqlx::migrate::Migrator` in scope.
macro_rules! sql_store {
    ($store:ty, $db:ty, $backend:expr) => {
        use std::collections::{BTreeMap, HashMap, HashSet};

        use async_trait::async_trait;
        use sqlx::Row as _;

        use $crate::domain::*;
        use $crate::ids::*;
        use $crate::store::shared_sql::{
            conflict_as, corrupt, map_err, parse_conversation, parse_json, parse_msg_type, parse_sender,
            prefixed_message_columns, to_json, MESSAGE_COLUMNS,
        };
        use $crate::store::*;

        type DbRow = <$db as sqlx::Database>::Row;
        type Tx<'a> = sqlx::Transaction<'a, $db>;

        fn col<'r, T>(row: &'r DbRow, name: &str) -> StoreResult<T>
        where
            T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
        {
            row.try_get(name).map_err(map_err)
        }

        /// Reads a message whose columns carry `prefix` (for joins); `None` when a LEFT JOIN
        /// found no message.
        fn message_from_row(row: &DbRow, prefix: &str) -> StoreResult<Option<Message>> {
            let c = |name: &str| format!("{prefix}{name}");
            let Some(msg_id) = col::<Option<String>>(row, &c("msg_id"))? else {
                return Ok(None);
            };
            let conversation_id: String = col(row, &c("conversation_id"))?;
            let sender_key: String = col(row, &c("sender_key"))?;
            let client_msg_id: String = col(row, &c("client_msg_id"))?;
            let msg_type: String = col(row, &c("msg_type"))?;
            let content: String = col(row, &c("content"))?;
            let reply_to: Option<String> = col(row, &c("reply_to"))?;
            let mentions: Option<String> = col(row, &c("mentions"))?;
            let mentions = match mentions {
                None => Vec::new(),
                Some(m) => serde_json::from_str::<Vec<UserId>>(&m).map_err(|_| corrupt("mentions", &m))?,
            };
            Ok(Some(Message {
                msg_id: MsgId::parse(&msg_id).map_err(|_| corrupt("message id", &msg_id))?,
                conversation_id: parse_conversation(&conversation_id)?,
                seq: col(row, &c("seq"))?,
                sender: parse_sender(&sender_key)?,
                client_msg_id: ClientMsgId::parse(&client_msg_id)
                    .map_err(|_| corrupt("client_msg_id", &client_msg_id))?,
                msg_type: parse_msg_type(&msg_type)?,
                content: parse_json("message content", &content)?,
                created_at: col(row, &c("created_at"))?,
                recalled: col(row, &c("recalled"))?,
                edited_at: col(row, &c("edited_at"))?,
                reply_to: reply_to
                    .map(|id| MsgId::parse(&id).map_err(|_| corrupt("reply_to", &id)))
                    .transpose()?,
                version: col(row, &c("version"))?,
                quoted: None,
                extensions: Vec::new(),
                reactions: Vec::new(),
                mentions,
                mention_all: col(row, &c("mention_all"))?,
            }))
        }

        fn required_message(row: &DbRow) -> StoreResult<Message> {
            message_from_row(row, "")?.ok_or_else(|| StoreError::Database("message row without an id".into()))
        }

        /// Advances the app's change version and returns the new value; row-locks it on
        /// PostgreSQL until the transaction ends (the first lock of every versioned write).
        async fn next_version(tx: &mut Tx<'_>, app: &AppId) -> StoreResult<i64> {
            bump_counter(tx, "app_versions", app).await
        }

        /// Advances the per-app counter kept in `table` (`app_versions`, `word_list_versions`).
        async fn bump_counter(tx: &mut Tx<'_>, table: &'static str, app: &AppId) -> StoreResult<i64> {
            sqlx::query_scalar::<$db, i64>(&format!(
                "INSERT INTO {table} (app_id, version) VALUES ($1, 1) \
                 ON CONFLICT (app_id) DO UPDATE SET version = {table}.version + 1 RETURNING version"
            ))
            .bind(app.as_str())
            .fetch_one(&mut **tx)
            .await
            .map_err(map_err)
        }

        async fn insert_events(tx: &mut Tx<'_>, events: &[NewOutboxEvent]) -> StoreResult<()> {
            for e in events {
                sqlx::query::<$db>(
                    "INSERT INTO outbox_events \
                     (id, app_id, event_type, body, created_at, state, attempts, next_attempt_at, last_error) \
                     VALUES ($1, $2, $3, $4, $5, 'pending', 0, $5, NULL)",
                )
                .bind(&e.id)
                .bind(e.app_id.as_str())
                .bind(&e.event_type)
                .bind(&e.body)
                .bind(e.created_at)
                .execute(&mut **tx)
                .await
                .map_err(|err| conflict_as(err, || format!("outbox event {} already exists", e.id)))?;
            }
            Ok(())
        }

        /// Rows per multi-row statement of a batch commit: at most 12 bind parameters a row
        /// keeps every statement far below SQLite's limit (32,766) and PostgreSQL's (65,535).
        const ROWS_PER_STATEMENT: usize = 1000;

        fn not_found_unless_changed(rows: u64, what: &'static str) -> StoreResult<()> {
            if rows == 0 {
                Err(StoreError::NotFound(what))
            } else {
                Ok(())
            }
        }

        fn stored_user(row: &DbRow, name: &str) -> StoreResult<UserId> {
            let id: String = col(row, name)?;
            UserId::parse(&id).map_err(|_| corrupt("user id", &id))
        }

        $crate::store::maintenance::maintenance_sql!($store, $db, $backend);
        $crate::store::tenancy::tenancy_sql!($store, $db, $backend);
        $crate::store::users::users_sql!($store, $db, $backend);
        $crate::store::webhooks::webhooks_sql!($store, $db, $backend);
        $crate::store::messages::messages_sql!($store, $db, $backend);
        $crate::store::lifecycle::lifecycle_sql!($store, $db, $backend);
        $crate::store::annotations::annotations_sql!($store, $db, $backend);
        $crate::store::groups::groups_sql!($store, $db, $backend);
        $crate::store::join_requests::join_requests_sql!($store, $db, $backend);
        $crate::store::friends::friends_sql!($store, $db, $backend);
        $crate::store::rooms::rooms_sql!($store, $db, $backend);
        $crate::store::broadcasts::broadcasts_sql!($store, $db, $backend);
        $crate::store::console::console_sql!($store, $db, $backend);
        $crate::store::operator_api::operator_api_sql!($store, $db, $backend);
        $crate::store::push::push_sql!($store, $db, $backend);
        $crate::store::files::files_sql!($store, $db, $backend);
        $crate::store::alerts::alerts_sql!($store, $db, $backend);
    };
}
pub(crate) use sql_store;
