//! The SQL that the SQLite and PostgreSQL adapters have in common.
//!
//! Both schemas have the same tables and columns, and both drivers accept `$1`-style
//! parameters, `RETURNING` and `ON CONFLICT`, so every query of the `Store` port is written
//! once here, as a macro that each adapter expands with its own driver types. What differs
//! (pools, pragmas, migrations, error codes) stays in `sqlite.rs` and `postgres.rs`.
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

/// Defines, in the module that invokes it, the row readers and `impl Store for $store`.
/// `$store` must have `fn writer(&self) -> &sqlx::Pool<$db>` (the pool that writes) and
/// `fn reader(&self) -> &sqlx::Pool<$db>` (the pool reads may use), and a static
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

        fn tenant_from_row(row: &DbRow) -> StoreResult<Tenant> {
            let id: String = col(row, "id")?;
            let status: String = col(row, "status")?;
            Ok(Tenant {
                id: TenantId::parse(&id).map_err(|_| corrupt("tenant id", &id))?,
                name: col(row, "name")?,
                status: TenantStatus::parse(&status).ok_or_else(|| corrupt("tenant status", &status))?,
                created_at: col(row, "created_at")?,
            })
        }

        const APP_COLUMNS: &str = "id, tenant_id, name, app_key, status, settings, created_at";

        fn app_from_row(row: &DbRow) -> StoreResult<App> {
            let id: String = col(row, "id")?;
            let tenant_id: String = col(row, "tenant_id")?;
            let key: String = col(row, "app_key")?;
            let status: String = col(row, "status")?;
            let settings: String = col(row, "settings")?;
            Ok(App {
                id: AppId::parse(&id).map_err(|_| corrupt("app id", &id))?,
                tenant_id: TenantId::parse(&tenant_id).map_err(|_| corrupt("tenant id", &tenant_id))?,
                name: col(row, "name")?,
                app_key: AppKey::parse(&key).map_err(|_| corrupt("app key", &key))?,
                status: AppStatus::parse(&status).ok_or_else(|| corrupt("app status", &status))?,
                settings: serde_json::from_str(&settings).map_err(|_| corrupt("app settings", &settings))?,
                created_at: col(row, "created_at")?,
            })
        }

        fn secret_from_row(row: &DbRow) -> StoreResult<AppSecretRecord> {
            let id: String = col(row, "id")?;
            let app_id: String = col(row, "app_id")?;
            Ok(AppSecretRecord {
                id: SecretId::parse(&id).map_err(|_| corrupt("secret id", &id))?,
                app_id: AppId::parse(&app_id).map_err(|_| corrupt("app id", &app_id))?,
                ciphertext: col(row, "ciphertext")?,
                created_at: col(row, "created_at")?,
                expires_at: col(row, "expires_at")?,
            })
        }

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

        /// The SELECT list and joins that make a `ConversationEntry`; callers add WHERE,
        /// ORDER BY and LIMIT. `$1` is the app, `$2` the user.
        const ENTRY_SELECT: &str = "SELECT c.id AS conversation_id, uc.read_seq, uc.version AS entry_version, \
             c.last_seq, c.version AS conversation_version, c.updated_at, \
             m.msg_id AS m_msg_id, m.conversation_id AS m_conversation_id, m.seq AS m_seq, \
             m.sender_key AS m_sender_key, m.client_msg_id AS m_client_msg_id, m.msg_type AS m_msg_type, \
             m.content AS m_content, m.created_at AS m_created_at, m.recalled AS m_recalled, \
             m.edited_at AS m_edited_at, m.reply_to AS m_reply_to, m.version AS m_version, \
             m.mentions AS m_mentions, m.mention_all AS m_mention_all, \
             uc.mention_seq, c.mention_all_seq \
             FROM user_conversations uc \
             JOIN conversations c ON c.app_id = uc.app_id AND c.id = uc.conversation_id \
             LEFT JOIN messages m ON m.app_id = c.app_id AND m.msg_id = c.last_msg_id \
             WHERE uc.app_id = $1 AND uc.user_id = $2";

        fn entry_from_row(row: &DbRow) -> StoreResult<ConversationEntry> {
            let id: String = col(row, "conversation_id")?;
            let last_seq: i64 = col(row, "last_seq")?;
            let read_seq: i64 = col(row, "read_seq")?;
            let entry_version: i64 = col(row, "entry_version")?;
            let conversation_version: i64 = col(row, "conversation_version")?;
            let mention_seq: i64 = col(row, "mention_seq")?;
            let mention_all_seq: i64 = col(row, "mention_all_seq")?;
            Ok(ConversationEntry {
                conversation_id: parse_conversation(&id)?,
                last_seq,
                read_seq,
                unread: (last_seq - read_seq).max(0),
                version: entry_version.max(conversation_version),
                last_message: message_from_row(row, "m_")?,
                updated_at: col(row, "updated_at")?,
                mentioned: mention_seq.max(mention_all_seq) > read_seq,
            })
        }

        const GROUP_COLUMNS: &str = "id, name, owner, metadata, member_count, avatar_url, announcement, \
             join_policy, mute_all, version, created_at, updated_at";

        fn group_from_row(row: &DbRow) -> StoreResult<Group> {
            let id: String = col(row, "id")?;
            let owner: String = col(row, "owner")?;
            let metadata: String = col(row, "metadata")?;
            let policy: String = col(row, "join_policy")?;
            Ok(Group {
                id: GroupId::parse(&id).map_err(|_| corrupt("group id", &id))?,
                name: col(row, "name")?,
                owner: UserId::parse(&owner).map_err(|_| corrupt("user id", &owner))?,
                member_count: col(row, "member_count")?,
                metadata: parse_json("group metadata", &metadata)?,
                avatar_url: col(row, "avatar_url")?,
                announcement: col(row, "announcement")?,
                join_policy: JoinPolicy::parse(&policy).ok_or_else(|| corrupt("join policy", &policy))?,
                mute_all: col(row, "mute_all")?,
                version: col(row, "version")?,
                created_at: col(row, "created_at")?,
                updated_at: col(row, "updated_at")?,
            })
        }

        const MEMBER_COLUMNS: &str = "user_id, role, joined_at, joined_seq, muted_until";

        fn member_from_row(row: &DbRow) -> StoreResult<GroupMember> {
            let user_id: String = col(row, "user_id")?;
            let role: String = col(row, "role")?;
            Ok(GroupMember {
                user_id: UserId::parse(&user_id).map_err(|_| corrupt("user id", &user_id))?,
                role: GroupRole::parse(&role).ok_or_else(|| corrupt("group role", &role))?,
                joined_at: col(row, "joined_at")?,
                joined_seq: col(row, "joined_seq")?,
                muted_until: col(row, "muted_until")?,
            })
        }

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

        const EVENT_COLUMNS: &str =
            "id, app_id, event_type, body, created_at, state, attempts, next_attempt_at, last_error";

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

        fn admin_from_row(row: &DbRow) -> StoreResult<AdminRecord> {
            Ok(AdminRecord {
                id: col(row, "id")?,
                email: col(row, "email")?,
                password_hash: col(row, "password_hash")?,
                created_at: col(row, "created_at")?,
            })
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

        async fn message_by_key(
            exec: &mut <$db as sqlx::Database>::Connection,
            app: &str,
            sender_key: &str,
            client_msg_id: &str,
        ) -> StoreResult<Option<Message>> {
            let row = sqlx::query::<$db>(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages \
                 WHERE app_id = $1 AND sender_key = $2 AND client_msg_id = $3"
            ))
            .bind(app)
            .bind(sender_key)
            .bind(client_msg_id)
            .fetch_optional(exec)
            .await
            .map_err(map_err)?;
            row.as_ref().map(required_message).transpose()
        }

        /// Messages stored before under the idempotency keys of `batch` (whose keys are
        /// distinct), by `(app, sender_key, client_msg_id)`: one query per app and chunk.
        async fn stored_before(
            tx: &mut Tx<'_>,
            batch: &[&NewMessage],
        ) -> StoreResult<HashMap<(String, String, String), Message>> {
            let mut by_app: HashMap<&AppId, Vec<&NewMessage>> = HashMap::new();
            for m in batch {
                by_app.entry(&m.app_id).or_default().push(m);
            }
            let mut found = HashMap::new();
            for (app, messages) in by_app {
                for chunk in messages.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE app_id = "
                    ));
                    qb.push_bind(app.as_str().to_owned());
                    qb.push(" AND (sender_key, client_msg_id) IN (VALUES ");
                    for (n, m) in chunk.iter().enumerate() {
                        qb.push(if n == 0 { "(" } else { ", (" });
                        qb.push_bind(m.sender.idempotency_key().to_owned());
                        qb.push(", ");
                        qb.push_bind(m.client_msg_id.as_str().to_owned());
                        qb.push(")");
                    }
                    qb.push(")");
                    let rows = qb.build().fetch_all(&mut **tx).await.map_err(map_err)?;
                    for row in &rows {
                        let message = required_message(row)?;
                        let sender_key = message.sender.idempotency_key().to_owned();
                        found.insert(
                            (app.to_string(), sender_key, message.client_msg_id.to_string()),
                            message,
                        );
                    }
                }
            }
            Ok(found)
        }

        /// Rows per multi-row statement of a batch commit: at most 12 bind parameters a row
        /// keeps every statement far below SQLite's limit (32,766) and PostgreSQL's (65,535).
        const ROWS_PER_STATEMENT: usize = 1000;

        /// What a batch commit does to one conversation: `count` new messages, the last of
        /// them (in input order) `last_msg_id`, the latest `updated_at` among them.
        struct ConversationPlan<'a> {
            app: &'a str,
            id: &'a str,
            count: i64,
            last_msg_id: &'a str,
            updated_at: UnixMillis,
            version: i64,
        }

        /// Stores the messages `fresh` of `batch` (none of them a duplicate; sorted by app
        /// and conversation, input order within one) in a few multi-row statements, in the
        /// lock order of the module docs. Returns them with their seqs, in the order of
        /// `fresh`.
        async fn store_new(
            tx: &mut Tx<'_>,
            batch: &[NewMessage],
            conversation_ids: &[String],
            fresh: &[usize],
            versions: &HashMap<&AppId, i64>,
        ) -> StoreResult<Vec<Message>> {
            if fresh.is_empty() {
                return Ok(Vec::new());
            }
            let version_of = |m: &NewMessage| versions.get(&m.app_id).copied().unwrap_or_default();

            // Plan: one row per conversation, in sorted order (`fresh` is sorted).
            let mut plans: Vec<ConversationPlan<'_>> = Vec::new();
            for &i in fresh {
                let m = &batch[i];
                let (app, id) = (m.app_id.as_str(), conversation_ids[i].as_str());
                match plans.last_mut() {
                    Some(p) if p.app == app && p.id == id => {
                        p.count += 1;
                        p.last_msg_id = m.msg_id.as_str();
                        p.updated_at = p.updated_at.max(m.created_at);
                    }
                    _ => plans.push(ConversationPlan {
                        app,
                        id,
                        count: 1,
                        last_msg_id: m.msg_id.as_str(),
                        updated_at: m.created_at,
                        version: version_of(m),
                    }),
                }
            }

            // 1. Advance every conversation's last_seq by its count, locking them in order.
            let mut last_seqs: HashMap<(String, String), i64> = HashMap::with_capacity(plans.len());
            for chunk in plans.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO conversations (app_id, id, last_seq, last_msg_id, version, updated_at) ",
                );
                qb.push_values(chunk, |mut row, p| {
                    row.push_bind(p.app)
                        .push_bind(p.id)
                        .push_bind(p.count)
                        .push_bind(p.last_msg_id)
                        .push_bind(p.version)
                        .push_bind(p.updated_at);
                });
                qb.push(
                    " ON CONFLICT (app_id, id) DO UPDATE SET \
                     last_seq = conversations.last_seq + excluded.last_seq, \
                     last_msg_id = excluded.last_msg_id, version = excluded.version, \
                     updated_at = CASE WHEN excluded.updated_at > conversations.updated_at \
                     THEN excluded.updated_at ELSE conversations.updated_at END \
                     RETURNING app_id, id, last_seq",
                );
                for row in qb.build().fetch_all(&mut **tx).await.map_err(map_err)? {
                    last_seqs.insert((col(&row, "app_id")?, col(&row, "id")?), col(&row, "last_seq")?);
                }
            }

            // Seqs: a conversation's new messages take last_seq-count+1..=last_seq in order.
            let mut stored: Vec<Message> = Vec::with_capacity(fresh.len());
            let mut next_seq: HashMap<(&str, &str), i64> = HashMap::with_capacity(plans.len());
            for p in &plans {
                let last = last_seqs
                    .get(&(p.app.to_owned(), p.id.to_owned()))
                    .copied()
                    .ok_or_else(|| StoreError::Database(format!("conversation {} returned no seq", p.id)))?;
                next_seq.insert((p.app, p.id), last - p.count + 1);
            }
            for &i in fresh {
                let m = &batch[i];
                let next = next_seq
                    .get_mut(&(m.app_id.as_str(), conversation_ids[i].as_str()))
                    .ok_or_else(|| StoreError::Database("a message of the batch has no planned seq".into()))?;
                let seq = *next;
                *next += 1;
                stored.push(Message {
                    msg_id: m.msg_id.clone(),
                    conversation_id: m.conversation_id.clone(),
                    seq,
                    sender: m.sender.clone(),
                    client_msg_id: m.client_msg_id.clone(),
                    msg_type: m.msg_type,
                    content: m.content.clone(),
                    created_at: m.created_at,
                    recalled: false,
                    edited_at: None,
                    reply_to: m.reply_to.clone(),
                    version: 0,
                    quoted: None,
                    extensions: Vec::new(),
                    reactions: Vec::new(),
                    mentions: m.mentions.clone(),
                    mention_all: m.mention_all,
                });
            }

            // 2. The messages.
            type Row<'r> = (&'r NewMessage, &'r Message, String, &'r str, Option<String>);
            let rows: Vec<Row<'_>> = fresh
                .iter()
                .zip(&stored)
                .map(|(&i, s)| {
                    let m = &batch[i];
                    let mentions = if m.mentions.is_empty() {
                        None
                    } else {
                        Some(serde_json::to_string(&m.mentions).map_err(|e| StoreError::Database(e.to_string()))?)
                    };
                    Ok((m, s, to_json(&m.content)?, conversation_ids[i].as_str(), mentions))
                })
                .collect::<StoreResult<_>>()?;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO messages (app_id, msg_id, conversation_id, seq, sender_key, client_msg_id, \
                     msg_type, content, created_at, recalled, edited_at, reply_to, mentions, mention_all) ",
                );
                qb.push_values(chunk, |mut row, (m, s, content, conversation, mentions)| {
                    row.push_bind(m.app_id.as_str())
                        .push_bind(m.msg_id.as_str())
                        .push_bind(*conversation)
                        .push_bind(s.seq)
                        .push_bind(m.sender.idempotency_key())
                        .push_bind(m.client_msg_id.as_str())
                        .push_bind(m.msg_type.as_str())
                        .push_bind(content.as_str())
                        .push_bind(m.created_at)
                        .push("FALSE")
                        .push("NULL")
                        .push_bind(m.reply_to.as_ref().map(MsgId::as_str))
                        .push_bind(mentions.as_deref())
                        .push_bind(m.mention_all);
                });
                qb.build().execute(&mut **tx).await.map_err(|e| {
                    conflict_as(e, || {
                        "a message of the batch collides with a stored message (its id or idempotency key)".into()
                    })
                })?;
            }

            // 3. Conversation list entries, in (app, conversation, user) order. Participants'
            // entries are created if missing; a sender's read_seq moves to the highest seq
            // they sent (0 marks "not a sender here": an existing entry is left alone and
            // changes through the conversation's version). A group member sending is not a
            // participant: their entry exists already (or they have none, in a room), so it
            // is only moved, never created.
            let mut entries: BTreeMap<(&str, &str, &str), (i64, i64)> = BTreeMap::new();
            let mut moved_only: BTreeMap<(&str, &str, &str), (i64, i64)> = BTreeMap::new();
            for (&i, s) in fresh.iter().zip(&stored) {
                let m = &batch[i];
                let (app, conversation, version) = (m.app_id.as_str(), conversation_ids[i].as_str(), version_of(m));
                for p in &m.participants {
                    entries.entry((app, conversation, p.as_str())).or_insert((0, version));
                }
                if let Some(sender) = m.sender.user() {
                    let key = (app, conversation, sender.as_str());
                    let read = if m.participants.contains(sender) {
                        entries.entry(key).or_insert((0, version))
                    } else {
                        moved_only.entry(key).or_insert((0, version))
                    };
                    read.0 = read.0.max(s.seq);
                }
            }
            // Moving an entry that this batch also creates is moving it in the upsert.
            moved_only.retain(|key, (seq, _)| match entries.get_mut(key) {
                Some(entry) => {
                    entry.0 = entry.0.max(*seq);
                    false
                }
                None => true,
            });
            let entries: Vec<_> = entries.into_iter().collect();
            for chunk in entries.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO user_conversations \
                     (app_id, user_id, conversation_id, read_seq, joined_seq, version) ",
                );
                qb.push_values(chunk, |mut row, ((app, conversation, user), (read_seq, version))| {
                    row.push_bind(*app)
                        .push_bind(*user)
                        .push_bind(*conversation)
                        .push_bind(*read_seq)
                        .push("0")
                        .push_bind(*version);
                });
                qb.push(
                    " ON CONFLICT (app_id, user_id, conversation_id) DO UPDATE SET \
                     read_seq = CASE WHEN excluded.read_seq > user_conversations.read_seq \
                     THEN excluded.read_seq ELSE user_conversations.read_seq END, \
                     version = excluded.version \
                     WHERE excluded.read_seq > 0",
                );
                qb.build().execute(&mut **tx).await.map_err(map_err)?;
            }
            let moved_only: Vec<_> = moved_only.into_iter().collect();
            for chunk in moved_only.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE user_conversations SET version = v.column4, \
                     read_seq = CASE WHEN user_conversations.read_seq < v.column5 \
                     THEN v.column5 ELSE user_conversations.read_seq END FROM (",
                );
                qb.push_values(chunk, |mut row, ((app, conversation, user), (read_seq, version))| {
                    row.push_bind(*app)
                        .push_bind(*user)
                        .push_bind(*conversation)
                        .push_bind(*version)
                        .push_bind(*read_seq);
                });
                qb.push(
                    ") AS v WHERE user_conversations.app_id = v.column1 \
                     AND user_conversations.user_id = v.column2 \
                     AND user_conversations.conversation_id = v.column3",
                );
                qb.build().execute(&mut **tx).await.map_err(map_err)?;
            }

            // 4. @mentions: the entries of the users named (the only member entries a group
            // message writes), and the conversation for @all, each to the highest seq.
            let mut named: BTreeMap<(&str, &str, &str), i64> = BTreeMap::new();
            let mut everyone: BTreeMap<(&str, &str), i64> = BTreeMap::new();
            for (&i, s) in fresh.iter().zip(&stored) {
                let m = &batch[i];
                let (app, conversation) = (m.app_id.as_str(), conversation_ids[i].as_str());
                for u in &m.mentions {
                    let seq = named.entry((app, conversation, u.as_str())).or_insert(0);
                    *seq = (*seq).max(s.seq);
                }
                if m.mention_all {
                    let seq = everyone.entry((app, conversation)).or_insert(0);
                    *seq = (*seq).max(s.seq);
                }
            }
            let everyone: Vec<_> = everyone.into_iter().collect();
            for chunk in everyone.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE conversations SET mention_all_seq = v.column3 FROM (");
                qb.push_values(chunk, |mut row, ((app, conversation), seq)| {
                    row.push_bind(*app).push_bind(*conversation).push_bind(*seq);
                });
                qb.push(
                    ") AS v WHERE conversations.app_id = v.column1 AND conversations.id = v.column2 \
                     AND conversations.mention_all_seq < v.column3",
                );
                qb.build().execute(&mut **tx).await.map_err(map_err)?;
            }
            let named: Vec<_> = named.into_iter().collect();
            for chunk in named.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE user_conversations SET mention_seq = v.column4 FROM (");
                qb.push_values(chunk, |mut row, ((app, conversation, user), seq)| {
                    row.push_bind(*app).push_bind(*user).push_bind(*conversation).push_bind(*seq);
                });
                qb.push(
                    ") AS v WHERE user_conversations.app_id = v.column1 \
                     AND user_conversations.user_id = v.column2 \
                     AND user_conversations.conversation_id = v.column3 \
                     AND user_conversations.mention_seq < v.column4",
                );
                qb.build().execute(&mut **tx).await.map_err(map_err)?;
            }

            // 5. The outbox events.
            let events: Vec<&NewOutboxEvent> = fresh.iter().flat_map(|&i| &batch[i].events).collect();
            for chunk in events.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO outbox_events \
                     (id, app_id, event_type, body, created_at, state, attempts, next_attempt_at, last_error) ",
                );
                qb.push_values(chunk, |mut row, e| {
                    row.push_bind(e.id.as_str())
                        .push_bind(e.app_id.as_str())
                        .push_bind(e.event_type.as_str())
                        .push_bind(e.body.as_str())
                        .push_bind(e.created_at)
                        .push("'pending'")
                        .push("0")
                        .push_bind(e.created_at)
                        .push("NULL");
                });
                qb.build()
                    .execute(&mut **tx)
                    .await
                    .map_err(|err| conflict_as(err, || "an outbox event of the batch already exists".into()))?;
            }
            Ok(stored)
        }

        async fn group_in(tx: &mut Tx<'_>, app: &AppId, id: &GroupId) -> StoreResult<Option<Group>> {
            let row = sqlx::query::<$db>(&format!(
                "SELECT {GROUP_COLUMNS} FROM groups WHERE app_id = $1 AND id = $2"
            ))
            .bind(app.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(map_err)?;
            row.as_ref().map(group_from_row).transpose()
        }

        async fn member_in(tx: &mut Tx<'_>, app: &AppId, id: &GroupId, user: &UserId) -> StoreResult<Option<GroupMember>> {
            let row = sqlx::query::<$db>(&format!(
                "SELECT {MEMBER_COLUMNS} FROM group_members WHERE app_id = $1 AND group_id = $2 AND user_id = $3"
            ))
            .bind(app.as_str())
            .bind(id.as_str())
            .bind(user.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(map_err)?;
            row.as_ref().map(member_from_row).transpose()
        }

        /// Stamps the group with this change's version (what member caches compare).
        async fn touch_group(tx: &mut Tx<'_>, app: &AppId, id: &GroupId, version: i64, now: UnixMillis) -> StoreResult<()> {
            sqlx::query::<$db>("UPDATE groups SET version = $3, updated_at = $4 WHERE app_id = $1 AND id = $2")
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(version)
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
            Ok(())
        }

        /// The group timeline's last seq, creating its conversation row if it has none.
        async fn timeline_end(tx: &mut Tx<'_>, app: &AppId, group: &GroupId, version: i64, now: UnixMillis) -> StoreResult<i64> {
            sqlx::query_scalar::<$db, i64>(
                "INSERT INTO conversations (app_id, id, last_seq, last_msg_id, version, updated_at) \
                 VALUES ($1, $2, 0, NULL, $3, $4) \
                 ON CONFLICT (app_id, id) DO UPDATE SET version = excluded.version RETURNING last_seq",
            )
            .bind(app.as_str())
            .bind(ConversationId::Group(group.clone()).to_string())
            .bind(version)
            .bind(now)
            .fetch_one(&mut **tx)
            .await
            .map_err(map_err)
        }

        /// A `system` message from Tern itself, keyed so it never collides with a caller's.
        fn system_message(
            app: &AppId,
            conversation: ConversationId,
            content: &serde_json::Value,
            now: UnixMillis,
            participants: Vec<UserId>,
        ) -> StoreResult<NewMessage> {
            let key = format!("sys-{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
            Ok(NewMessage {
                app_id: app.clone(),
                msg_id: MsgId::generate(),
                conversation_id: conversation,
                sender: Sender::System,
                client_msg_id: ClientMsgId::parse(&key).map_err(|e| StoreError::Database(e.to_string()))?,
                msg_type: MessageType::System,
                content: content.clone(),
                created_at: now,
                participants,
                events: Vec::new(),
                reply_to: None,
                mentions: Vec::new(),
                mention_all: false,
            })
        }

        /// Writes what a group change records besides itself (see `GroupRecord`): the notice
        /// in `group`'s timeline (when given), the personal notices and the events. Returns
        /// the stored notice and personal messages.
        async fn write_record(
            tx: &mut Tx<'_>,
            app: &AppId,
            version: i64,
            now: UnixMillis,
            group: Option<&GroupId>,
            record: &GroupRecord,
        ) -> StoreResult<(Option<Message>, Vec<Message>)> {
            insert_events(tx, &record.events).await?;
            let mut batch = Vec::with_capacity(1 + record.personal.len());
            let has_notice = match (group, &record.notice) {
                (Some(g), Some(content)) => {
                    batch.push(system_message(app, ConversationId::Group(g.clone()), content, now, Vec::new())?);
                    true
                }
                _ => false,
            };
            for (user, content) in &record.personal {
                batch.push(system_message(
                    app,
                    ConversationId::System(user.clone()),
                    content,
                    now,
                    vec![user.clone()],
                )?);
            }
            if batch.is_empty() {
                return Ok((None, Vec::new()));
            }
            let conversation_ids: Vec<String> = batch.iter().map(|m| m.conversation_id.to_string()).collect();
            let mut fresh: Vec<usize> = (0..batch.len()).collect();
            fresh.sort_by(|&a, &b| conversation_ids[a].cmp(&conversation_ids[b]));
            let versions: HashMap<&AppId, i64> = HashMap::from([(app, version)]);
            let stored = store_new(tx, &batch, &conversation_ids, &fresh, &versions).await?;
            let mut by_input: Vec<Option<Message>> = vec![None; batch.len()];
            for (&i, m) in fresh.iter().zip(stored) {
                by_input[i] = Some(m);
            }
            let mut out = by_input.into_iter().flatten();
            let notice = if has_notice { out.next() } else { None };
            if let (Some(n), Some(actor)) = (&notice, &record.actor) {
                sqlx::query::<$db>(
                    "UPDATE user_conversations SET read_seq = $4, version = $5 \
                     WHERE app_id = $1 AND user_id = $2 AND conversation_id = $3 AND read_seq < $4",
                )
                .bind(app.as_str())
                .bind(actor.as_str())
                .bind(n.conversation_id.to_string())
                .bind(n.seq)
                .bind(version)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
            }
            Ok((notice, out.collect()))
        }

        /// Adds `users` (none of them members yet, sorted) to a group whose timeline ends at
        /// `end`: they see it from `end` on and have read up to `read_seq` (the notice that
        /// announces them, when there is one).
        async fn insert_members(
            tx: &mut Tx<'_>,
            app: &AppId,
            group: &GroupId,
            users: &[(&UserId, GroupRole)],
            version: i64,
            now: UnixMillis,
            (end, read_seq): (i64, i64),
        ) -> StoreResult<()> {
            let conversation = ConversationId::Group(group.clone()).to_string();
            for chunk in users.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO group_members (app_id, group_id, user_id, role, joined_at, joined_seq, muted_until) ",
                );
                qb.push_values(chunk, |mut row, (user, role)| {
                    row.push_bind(app.as_str())
                        .push_bind(group.as_str())
                        .push_bind(user.as_str())
                        .push_bind(role.as_str())
                        .push_bind(now)
                        .push_bind(end)
                        .push("NULL");
                });
                qb.build().execute(&mut **tx).await.map_err(map_err)?;
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO user_conversations \
                     (app_id, user_id, conversation_id, read_seq, joined_seq, version, mention_seq) ",
                );
                qb.push_values(chunk, |mut row, (user, _)| {
                    row.push_bind(app.as_str())
                        .push_bind(user.as_str())
                        .push_bind(conversation.as_str())
                        .push_bind(read_seq)
                        .push_bind(end)
                        .push_bind(version)
                        .push("0");
                });
                qb.push(
                    " ON CONFLICT (app_id, user_id, conversation_id) DO UPDATE SET \
                     read_seq = excluded.read_seq, joined_seq = excluded.joined_seq, version = excluded.version, \
                     mention_seq = 0",
                );
                qb.build().execute(&mut **tx).await.map_err(map_err)?;
            }
            Ok(())
        }

        /// Adds `users` (sorted, none a member yet) with `record` written before them, so
        /// the notice that announces them is the first thing they see. Returns the record's
        /// messages.
        async fn join_with_record(
            tx: &mut Tx<'_>,
            app: &AppId,
            group: &GroupId,
            users: &[(&UserId, GroupRole)],
            version: i64,
            now: UnixMillis,
            record: &GroupRecord,
        ) -> StoreResult<(Option<Message>, Vec<Message>)> {
            let end = timeline_end(tx, app, group, version, now).await?;
            let (notice, personal) = write_record(tx, app, version, now, Some(group), record).await?;
            let read_seq = notice.as_ref().map_or(end, |m| m.seq);
            insert_members(tx, app, group, users, version, now, (end, read_seq)).await?;
            Ok((notice, personal))
        }

        /// Of `users`, those that are members of the group.
        async fn members_among(tx: &mut Tx<'_>, app: &AppId, group: &GroupId, users: &[&UserId]) -> StoreResult<HashSet<String>> {
            let mut found = HashSet::new();
            for chunk in users.chunks(500) {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT user_id FROM group_members WHERE app_id = ");
                qb.push_bind(app.as_str().to_owned());
                qb.push(" AND group_id = ");
                qb.push_bind(group.as_str().to_owned());
                qb.push(" AND user_id IN (");
                let mut list = qb.separated(", ");
                for u in chunk {
                    list.push_bind(u.as_str().to_owned());
                }
                list.push_unseparated(")");
                let rows: Vec<String> = qb
                    .build_query_scalar::<String>()
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(map_err)?;
                found.extend(rows);
            }
            Ok(found)
        }

        fn not_found_unless_changed(rows: u64, what: &'static str) -> StoreResult<()> {
            if rows == 0 {
                Err(StoreError::NotFound(what))
            } else {
                Ok(())
            }
        }

        /// One attempt at `commit_messages` (see the trait).
        async fn commit_batch(store: &$store, batch: &[NewMessage]) -> StoreResult<Vec<CommitOutcome>> {
            if batch.is_empty() {
                return Ok(Vec::new());
            }
            // A message repeating an earlier one of the batch is answered with that one.
            let mut first_with_key: HashMap<(&str, &str, &str), usize> = HashMap::new();
            let mut repeat_of: Vec<Option<usize>> = vec![None; batch.len()];
            for (i, m) in batch.iter().enumerate() {
                let key = (m.app_id.as_str(), m.sender.idempotency_key(), m.client_msg_id.as_str());
                match first_with_key.get(&key) {
                    Some(&j) => repeat_of[i] = Some(j),
                    None => {
                        first_with_key.insert(key, i);
                    }
                }
            }
            // Lock order: conversations sorted; within one, the input order (stable sort).
            let conversation_ids: Vec<String> = batch.iter().map(|m| m.conversation_id.to_string()).collect();
            let mut order: Vec<usize> = (0..batch.len()).filter(|&i| repeat_of[i].is_none()).collect();
            order.sort_by(|&a, &b| {
                (batch[a].app_id.as_str(), conversation_ids[a].as_str())
                    .cmp(&(batch[b].app_id.as_str(), conversation_ids[b].as_str()))
            });
            let mut apps: Vec<&AppId> = batch.iter().map(|m| &m.app_id).collect();
            apps.sort();
            apps.dedup();

            let mut tx = store.writer().begin().await.map_err(map_err)?;
            let mut versions: HashMap<&AppId, i64> = HashMap::new();
            for app in apps {
                versions.insert(app, next_version(&mut tx, app).await?);
            }
            let firsts: Vec<&NewMessage> = order.iter().map(|&i| &batch[i]).collect();
            let mut earlier = stored_before(&mut tx, &firsts).await?;
            let mut outcomes: Vec<Option<CommitOutcome>> = vec![None; batch.len()];
            let mut fresh: Vec<usize> = Vec::with_capacity(order.len());
            for i in order {
                let m = &batch[i];
                let key = (
                    m.app_id.to_string(),
                    m.sender.idempotency_key().to_owned(),
                    m.client_msg_id.to_string(),
                );
                match earlier.remove(&key) {
                    Some(first) => outcomes[i] = Some(CommitOutcome::Duplicate(first)),
                    None => fresh.push(i),
                }
            }
            let stored = store_new(&mut tx, batch, &conversation_ids, &fresh, &versions).await?;
            tx.commit().await.map_err(map_err)?;
            for (i, message) in fresh.into_iter().zip(stored) {
                outcomes[i] = Some(CommitOutcome::Stored(message));
            }

            for (i, first) in repeat_of.iter().enumerate() {
                if let Some(j) = *first {
                    let first = outcomes[j].as_ref().map(|o| o.message().clone());
                    outcomes[i] = first.map(CommitOutcome::Duplicate);
                }
            }
            outcomes
                .into_iter()
                .map(|o| o.ok_or_else(|| StoreError::Database("a message of the batch got no outcome".into())))
                .collect()
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> Backend {
                $backend
            }

            async fn migrate(&self) -> StoreResult<()> {
                MIGRATOR
                    .run(self.writer())
                    .await
                    .map_err(|e| StoreError::Database(format!("migration failed: {e}")))
            }

            async fn ready(&self) -> StoreResult<bool> {
                let applied: Vec<i64> = match sqlx::query_scalar::<$db, i64>(
                    "SELECT version FROM _sqlx_migrations WHERE success",
                )
                .fetch_all(self.reader())
                .await
                {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::debug!(error = %e, "store not ready");
                        return Ok(false);
                    }
                };
                Ok(MIGRATOR
                    .iter()
                    .filter(|m| !m.migration_type.is_down_migration())
                    .all(|m| applied.contains(&m.version)))
            }

            async fn sample_ciphertext(&self) -> StoreResult<Option<(AppId, Vec<u8>)>> {
                let row = sqlx::query::<$db>(
                    "SELECT app_id, ciphertext FROM app_secrets ORDER BY created_at, id LIMIT 1",
                )
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                match row {
                    None => Ok(None),
                    Some(row) => {
                        let app: String = col(&row, "app_id")?;
                        let app = AppId::parse(&app).map_err(|_| corrupt("app id", &app))?;
                        Ok(Some((app, col(&row, "ciphertext")?)))
                    }
                }
            }

            // ---- tenants -----------------------------------------------------------------
            async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
                sqlx::query::<$db>("INSERT INTO tenants (id, name, status, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(tenant.id.as_str())
                    .bind(&tenant.name)
                    .bind(tenant.status.as_str())
                    .bind(tenant.created_at)
                    .execute(self.writer())
                    .await
                    .map_err(|e| conflict_as(e, || format!("a tenant named {:?} already exists", tenant.name)))?;
                Ok(())
            }

            async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
                let row = sqlx::query::<$db>("SELECT id, name, status, created_at FROM tenants WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(tenant_from_row).transpose()
            }

            async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>> {
                let row = sqlx::query::<$db>("SELECT id, name, status, created_at FROM tenants WHERE name = $1")
                    .bind(name)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(tenant_from_row).transpose()
            }

            async fn set_tenant_status(&self, id: &TenantId, status: TenantStatus) -> StoreResult<()> {
                let r = sqlx::query::<$db>("UPDATE tenants SET status = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(status.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "tenant")
            }

            async fn list_tenants(&self, after: Option<&TenantId>, limit: u32) -> StoreResult<Vec<Tenant>> {
                let rows = sqlx::query::<$db>(
                    "SELECT id, name, status, created_at FROM tenants WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after.map(TenantId::as_str).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(tenant_from_row).collect()
            }

            // ---- apps and their secrets --------------------------------------------------
            async fn create_app(&self, app: &NewApp) -> StoreResult<App> {
                let settings = serde_json::to_string(&app.settings)
                    .map_err(|e| StoreError::Database(format!("app settings do not encode: {e}")))?;
                let created_at = now_ms();
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let tenant: Option<String> = sqlx::query_scalar::<$db, String>("SELECT id FROM tenants WHERE id = $1")
                    .bind(app.tenant_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if tenant.is_none() {
                    return Err(StoreError::NotFound("tenant"));
                }
                sqlx::query::<$db>(
                    "INSERT INTO apps (id, tenant_id, name, app_key, status, settings, webhook_secret, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(app.id.as_str())
                .bind(app.tenant_id.as_str())
                .bind(&app.name)
                .bind(app.app_key.as_str())
                .bind(AppStatus::Active.as_str())
                .bind(&settings)
                .bind(&app.webhook_secret_ciphertext)
                .bind(created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    conflict_as(e, || {
                        format!(
                            "the tenant already has an app named {:?} (or the app id or key is taken)",
                            app.name
                        )
                    })
                })?;
                let s = &app.first_secret;
                sqlx::query::<$db>(
                    "INSERT INTO app_secrets (id, app_id, ciphertext, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(s.id.as_str())
                .bind(app.id.as_str())
                .bind(&s.ciphertext)
                .bind(s.created_at)
                .bind(s.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_as(e, || format!("secret id {} is taken", s.id)))?;
                sqlx::query::<$db>(
                    "INSERT INTO app_versions (app_id, version) VALUES ($1, 0) ON CONFLICT (app_id) DO NOTHING",
                )
                .bind(app.id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(App {
                    id: app.id.clone(),
                    tenant_id: app.tenant_id.clone(),
                    name: app.name.clone(),
                    app_key: app.app_key.clone(),
                    status: AppStatus::Active,
                    settings: app.settings.clone(),
                    created_at,
                })
            }

            async fn app(&self, id: &AppId) -> StoreResult<Option<App>> {
                let row = sqlx::query::<$db>(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1"))
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(app_from_row).transpose()
            }

            async fn app_by_key(&self, key: &AppKey) -> StoreResult<Option<App>> {
                let row = sqlx::query::<$db>(&format!("SELECT {APP_COLUMNS} FROM apps WHERE app_key = $1"))
                    .bind(key.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(app_from_row).transpose()
            }

            async fn list_apps(&self, tenant: &TenantId) -> StoreResult<Vec<App>> {
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {APP_COLUMNS} FROM apps WHERE tenant_id = $1 ORDER BY created_at, id"
                ))
                .bind(tenant.as_str())
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(app_from_row).collect()
            }

            async fn update_app_settings(&self, id: &AppId, settings: &AppSettings) -> StoreResult<()> {
                let settings = serde_json::to_string(settings)
                    .map_err(|e| StoreError::Database(format!("app settings do not encode: {e}")))?;
                let r = sqlx::query::<$db>("UPDATE apps SET settings = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(settings)
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "app")
            }

            async fn set_app_status(&self, id: &AppId, status: AppStatus) -> StoreResult<()> {
                let r = sqlx::query::<$db>("UPDATE apps SET status = $2 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(status.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "app")
            }

            async fn active_app_secrets(&self, app: &AppId, now: UnixMillis) -> StoreResult<Vec<AppSecretRecord>> {
                let rows = sqlx::query::<$db>(
                    "SELECT id, app_id, ciphertext, created_at, expires_at FROM app_secrets \
                     WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2) \
                     ORDER BY created_at DESC, id DESC",
                )
                .bind(app.as_str())
                .bind(now)
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(secret_from_row).collect()
            }

            async fn add_app_secret(&self, secret: &AppSecretRecord, others_expire_at: UnixMillis) -> StoreResult<()> {
                let app = secret.app_id.as_str();
                let now = secret.created_at;
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                sqlx::query::<$db>(
                    "INSERT INTO app_secrets (id, app_id, ciphertext, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(secret.id.as_str())
                .bind(app)
                .bind(&secret.ciphertext)
                .bind(secret.created_at)
                .bind(secret.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| match map_err(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("secret id {} is taken", secret.id)),
                    // The only foreign key: the app.
                    StoreError::Database(m) if m.contains("FOREIGN KEY") || m.contains("foreign key") => {
                        StoreError::NotFound("app")
                    }
                    other => other,
                })?;
                sqlx::query::<$db>(
                    "UPDATE app_secrets SET expires_at = $3 WHERE app_id = $1 AND id <> $2 \
                     AND (expires_at IS NULL OR expires_at > $3)",
                )
                .bind(app)
                .bind(secret.id.as_str())
                .bind(others_expire_at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                // At most two stay active: the new one and the newest other.
                let active: Vec<String> = sqlx::query_scalar::<$db, String>(
                    "SELECT id FROM app_secrets WHERE app_id = $1 AND id <> $2 \
                     AND (expires_at IS NULL OR expires_at > $3) ORDER BY created_at DESC, id DESC",
                )
                .bind(app)
                .bind(secret.id.as_str())
                .bind(now)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                for id in active.iter().skip(1) {
                    sqlx::query::<$db>("UPDATE app_secrets SET expires_at = $3 WHERE app_id = $1 AND id = $2")
                        .bind(app)
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            async fn revoke_app_secret(&self, app: &AppId, id: &SecretId, now: UnixMillis) -> StoreResult<()> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let active: Vec<String> = sqlx::query_scalar::<$db, String>(
                    "SELECT id FROM app_secrets WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
                )
                .bind(app.as_str())
                .bind(now)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                if !active.iter().any(|a| a == id.as_str()) {
                    let exists: Option<String> = sqlx::query_scalar::<$db, String>(
                        "SELECT id FROM app_secrets WHERE app_id = $1 AND id = $2",
                    )
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    // Revoking an expired secret changes nothing.
                    return match exists {
                        Some(_) => Ok(()),
                        None => Err(StoreError::NotFound("app secret")),
                    };
                }
                if active.len() <= 1 {
                    return Err(StoreError::Rejected(
                        "this is the app's last active secret: rotate before revoking it".into(),
                    ));
                }
                sqlx::query::<$db>("UPDATE app_secrets SET expires_at = $3 WHERE app_id = $1 AND id = $2")
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

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

            // ---- users -------------------------------------------------------------------
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
                let r = sqlx::query::<$db>(
                    "UPDATE users SET tokens_revoked_before = $3 WHERE app_id = $1 AND id = $2",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(before)
                .execute(self.writer())
                .await
                .map_err(map_err)?;
                not_found_unless_changed(r.rows_affected(), "user")
            }

            // ---- messages and conversations ----------------------------------------------
            async fn commit_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<CommitOutcome>> {
                // A concurrent batch (another node, on PostgreSQL) may commit the same
                // idempotency key between our lookup and our insert; the insert then fails
                // the transaction. Running the batch again finds that message and answers
                // with it, as a duplicate should be answered.
                let mut attempt = 1;
                loop {
                    match commit_batch(self, batch).await {
                        Err(StoreError::Conflict(e)) if attempt < 3 => {
                            tracing::debug!(error = %e, attempt, "commit conflicted; retrying the batch");
                            attempt += 1;
                        }
                        result => return result,
                    }
                }
            }

            async fn message(&self, app: &AppId, id: &MsgId) -> StoreResult<Option<Message>> {
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE app_id = $1 AND msg_id = $2"
                ))
                .bind(app.as_str())
                .bind(id.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(required_message).transpose()
            }

            async fn message_by_client_msg_id(
                &self,
                app: &AppId,
                sender_key: &str,
                client_msg_id: &ClientMsgId,
            ) -> StoreResult<Option<Message>> {
                let mut conn = self.reader().acquire().await.map_err(map_err)?;
                message_by_key(&mut *conn, app.as_str(), sender_key, client_msg_id.as_str()).await
            }

            async fn messages(
                &self,
                app: &AppId,
                conversation: &ConversationId,
                range: SeqRange,
                limit: u32,
            ) -> StoreResult<Vec<Message>> {
                let (sql, bound) = match range {
                    SeqRange::After(n) => (
                        format!(
                            "SELECT {MESSAGE_COLUMNS} FROM messages \
                             WHERE app_id = $1 AND conversation_id = $2 AND seq > $3 ORDER BY seq LIMIT $4"
                        ),
                        n,
                    ),
                    SeqRange::Before(n) => (
                        format!(
                            "SELECT {MESSAGE_COLUMNS} FROM messages \
                             WHERE app_id = $1 AND conversation_id = $2 AND seq < $3 ORDER BY seq DESC LIMIT $4"
                        ),
                        n,
                    ),
                };
                let rows = sqlx::query::<$db>(&sql)
                    .bind(app.as_str())
                    .bind(conversation.to_string())
                    .bind(bound)
                    .bind(i64::from(limit))
                    .fetch_all(self.reader())
                    .await
                    .map_err(map_err)?;
                let mut out = rows.iter().map(required_message).collect::<StoreResult<Vec<_>>>()?;
                if matches!(range, SeqRange::Before(_)) {
                    out.reverse();
                }
                Ok(out)
            }

            async fn recall_message(
                &self,
                app: &AppId,
                id: &MsgId,
                by: Option<&UserId>,
                now: UnixMillis,
                events: &[NewOutboxEvent],
            ) -> StoreResult<RecallOutcome> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let version = next_version(&mut tx, app).await?;
                let row = sqlx::query::<$db>(&format!(
                    "UPDATE messages SET recalled = TRUE, content = 'null', version = $3 \
                     WHERE app_id = $1 AND msg_id = $2 AND recalled = FALSE RETURNING {MESSAGE_COLUMNS}"
                ))
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                let Some(row) = row else {
                    // Recalled before (or not there): nothing changes, the version is not used.
                    return match message_in(&mut tx, app, id).await? {
                        Some(m) => Ok(RecallOutcome::AlreadyRecalled(m)),
                        None => Err(StoreError::NotFound("message")),
                    };
                };
                let message = required_message(&row)?;
                // What a recall takes away, and the changes that described it.
                for table in ["message_extensions", "message_reactions", "message_changes"] {
                    sqlx::query::<$db>(&format!("DELETE FROM {table} WHERE app_id = $1 AND msg_id = $2"))
                        .bind(app.as_str())
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                record_change(&mut tx, app, &message, version, "recall", by, &serde_json::json!({}), now).await?;
                touch_conversation(&mut tx, app, &message.conversation_id, version).await?;
                insert_events(&mut tx, events).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(RecallOutcome::Recalled(message))
            }

            async fn conversations(
                &self,
                app: &AppId,
                user: &UserId,
                after: Option<(UnixMillis, String)>,
                limit: u32,
            ) -> StoreResult<Vec<ConversationEntry>> {
                let rows = match after {
                    None => {
                        sqlx::query::<$db>(&format!(
                            "{ENTRY_SELECT} ORDER BY c.updated_at DESC, c.id DESC LIMIT $3"
                        ))
                        .bind(app.as_str())
                        .bind(user.as_str())
                        .bind(i64::from(limit))
                        .fetch_all(self.reader())
                        .await
                    }
                    Some((updated_at, id)) => {
                        sqlx::query::<$db>(&format!(
                            "{ENTRY_SELECT} AND (c.updated_at < $3 OR (c.updated_at = $3 AND c.id < $4)) \
                             ORDER BY c.updated_at DESC, c.id DESC LIMIT $5"
                        ))
                        .bind(app.as_str())
                        .bind(user.as_str())
                        .bind(updated_at)
                        .bind(id)
                        .bind(i64::from(limit))
                        .fetch_all(self.reader())
                        .await
                    }
                }
                .map_err(map_err)?;
                let entries = rows.iter().map(entry_from_row).collect::<StoreResult<Vec<_>>>()?;
                with_visible_last_messages(self, app, user, entries).await
            }

            async fn conversation(
                &self,
                app: &AppId,
                user: &UserId,
                id: &ConversationId,
            ) -> StoreResult<Option<ConversationEntry>> {
                let row = sqlx::query::<$db>(&format!("{ENTRY_SELECT} AND uc.conversation_id = $3"))
                    .bind(app.as_str())
                    .bind(user.as_str())
                    .bind(id.to_string())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                let entries = row.as_ref().map(entry_from_row).transpose()?.into_iter().collect();
                Ok(with_visible_last_messages(self, app, user, entries).await?.pop())
            }

            async fn conversations_changed_since(
                &self,
                app: &AppId,
                user: &UserId,
                version: i64,
                limit: u32,
            ) -> StoreResult<Vec<ConversationEntry>> {
                let rows = sqlx::query::<$db>(&format!(
                    "{ENTRY_SELECT} AND (uc.version > $3 OR c.version > $3) \
                     ORDER BY CASE WHEN uc.version > c.version THEN uc.version ELSE c.version END, c.id \
                     LIMIT $4"
                ))
                .bind(app.as_str())
                .bind(user.as_str())
                .bind(version)
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                let entries = rows.iter().map(entry_from_row).collect::<StoreResult<Vec<_>>>()?;
                with_visible_last_messages(self, app, user, entries).await
            }

            async fn mark_read(
                &self,
                app: &AppId,
                user: &UserId,
                id: &ConversationId,
                seq: i64,
            ) -> StoreResult<ConversationEntry> {
                let conversation = id.to_string();
                let current = self.conversation(app, user, id).await?.ok_or(StoreError::NotFound("conversation"))?;
                let target = seq.min(current.last_seq);
                if target > current.read_seq {
                    let mut tx = self.writer().begin().await.map_err(map_err)?;
                    let version = next_version(&mut tx, app).await?;
                    // Clamped to the conversation's end (which only grows), never lowered by a
                    // concurrent mark_read that went further.
                    sqlx::query::<$db>(
                        "UPDATE user_conversations SET version = $4, read_seq = $5 \
                         WHERE app_id = $1 AND user_id = $2 AND conversation_id = $3 AND read_seq < $5",
                    )
                    .bind(app.as_str())
                    .bind(user.as_str())
                    .bind(&conversation)
                    .bind(version)
                    .bind(target)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    tx.commit().await.map_err(map_err)?;
                }
                let row = sqlx::query::<$db>(&format!("{ENTRY_SELECT} AND uc.conversation_id = $3"))
                    .bind(app.as_str())
                    .bind(user.as_str())
                    .bind(&conversation)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(map_err)?;
                let entries = row.as_ref().map(entry_from_row).transpose()?.into_iter().collect();
                with_visible_last_messages(self, app, user, entries)
                    .await?
                    .pop()
                    .ok_or(StoreError::NotFound("conversation"))
            }

            // ---- message lifecycle -------------------------------------------------------
            async fn messages_by_ids(&self, app: &AppId, ids: &[MsgId]) -> StoreResult<Vec<Message>> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE app_id = "
                    ));
                    qb.push_bind(app.as_str().to_owned());
                    qb.push(" AND msg_id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_str().to_owned());
                    }
                    list.push_unseparated(")");
                    let rows = qb.build().fetch_all(self.reader()).await.map_err(map_err)?;
                    for row in &rows {
                        out.push(required_message(row)?);
                    }
                }
                Ok(out)
            }

            async fn visible_messages(
                &self,
                app: &AppId,
                conversation: &ConversationId,
                user: &UserId,
                range: SeqRange,
                limit: u32,
            ) -> StoreResult<Vec<Message>> {
                let (condition, order, bound) = match range {
                    SeqRange::After(n) => ("m.seq > $3", "m.seq", n),
                    SeqRange::Before(n) => ("m.seq < $3", "m.seq DESC", n),
                };
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m \
                     WHERE m.app_id = $1 AND m.conversation_id = $2 AND {condition} \
                     AND NOT EXISTS (SELECT 1 FROM message_deletions d \
                     WHERE d.app_id = m.app_id AND d.user_id = $5 AND d.msg_id = m.msg_id) \
                     ORDER BY {order} LIMIT $4"
                ))
                .bind(app.as_str())
                .bind(conversation.to_string())
                .bind(bound)
                .bind(i64::from(limit))
                .bind(user.as_str())
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                let mut out = rows.iter().map(required_message).collect::<StoreResult<Vec<_>>>()?;
                if matches!(range, SeqRange::Before(_)) {
                    out.reverse();
                }
                Ok(out)
            }

            async fn deleted_for_user(&self, app: &AppId, user: &UserId, ids: &[MsgId]) -> StoreResult<Vec<MsgId>> {
                let mut conn = self.reader().acquire().await.map_err(map_err)?;
                deleted_among(&mut *conn, app, user, ids).await
            }

            async fn edit_message(
                &self,
                app: &AppId,
                id: &MsgId,
                edit: &MessageEdit,
                events: &[NewOutboxEvent],
            ) -> StoreResult<EditOutcome> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let version = next_version(&mut tx, app).await?;
                let row = sqlx::query::<$db>(&format!(
                    "UPDATE messages SET content = $3, edited_at = $4, version = $5 \
                     WHERE app_id = $1 AND msg_id = $2 AND recalled = FALSE RETURNING {MESSAGE_COLUMNS}"
                ))
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(to_json(&edit.content)?)
                .bind(edit.edited_at)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                let Some(row) = row else {
                    return match message_in(&mut tx, app, id).await? {
                        Some(_) => Ok(EditOutcome::Recalled),
                        None => Err(StoreError::NotFound("message")),
                    };
                };
                let message = required_message(&row)?;
                let kind = ChangeKind::Edited {
                    content: edit.content.clone(),
                    edited_at: edit.edited_at,
                };
                record_kind(&mut tx, app, &message, version, &kind, edit.by.as_ref(), edit.edited_at).await?;
                touch_conversation(&mut tx, app, &message.conversation_id, version).await?;
                insert_events(&mut tx, events).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(EditOutcome::Edited(Box::new(message)))
            }

            async fn delete_for_user(
                &self,
                app: &AppId,
                user: &UserId,
                messages: &[Message],
                now: UnixMillis,
            ) -> StoreResult<Vec<MessageChange>> {
                if messages.is_empty() {
                    return Ok(Vec::new());
                }
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                // One version per message, taken first (the lock order); those of messages
                // hidden before go unused.
                let top = next_versions(&mut tx, app, messages.len() as i64).await?;
                let mut next = top - messages.len() as i64 + 1;
                let ids: Vec<MsgId> = messages.iter().map(|m| m.msg_id.clone()).collect();
                let mut hidden: HashSet<MsgId> = deleted_among(&mut *tx, app, user, &ids).await?.into_iter().collect();
                let mut changes = Vec::new();
                let mut entries: BTreeMap<String, i64> = BTreeMap::new();
                for m in messages {
                    if !hidden.insert(m.msg_id.clone()) {
                        continue;
                    }
                    let version = next;
                    next += 1;
                    let conversation = m.conversation_id.to_string();
                    sqlx::query::<$db>(
                        "INSERT INTO message_deletions \
                         (app_id, user_id, msg_id, conversation_id, seq, version, deleted_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(app.as_str())
                    .bind(user.as_str())
                    .bind(m.msg_id.as_str())
                    .bind(&conversation)
                    .bind(m.seq)
                    .bind(version)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    entries.insert(conversation, version);
                    changes.push(MessageChange {
                        conversation_id: m.conversation_id.clone(),
                        msg_id: m.msg_id.clone(),
                        seq: m.seq,
                        version,
                        by: Some(user.clone()),
                        changed_at: now,
                        kind: ChangeKind::Deleted,
                    });
                }
                // The user's entries, in conversation order: their other devices sync them.
                for (conversation, version) in &entries {
                    sqlx::query::<$db>(
                        "UPDATE user_conversations SET version = $4 \
                         WHERE app_id = $1 AND user_id = $2 AND conversation_id = $3 AND version < $4",
                    )
                    .bind(app.as_str())
                    .bind(user.as_str())
                    .bind(conversation)
                    .bind(*version)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)?;
                Ok(changes)
            }

            async fn update_extensions(
                &self,
                app: &AppId,
                id: &MsgId,
                by: Option<&UserId>,
                updates: &[ExtensionUpdate],
                now: UnixMillis,
            ) -> StoreResult<ExtensionsOutcome> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let version = next_version(&mut tx, app).await?;
                let message = message_in(&mut tx, app, id).await?.ok_or(StoreError::NotFound("message"))?;
                if message.recalled {
                    return Ok(ExtensionsOutcome::Recalled);
                }
                let current = extensions_of(&mut *tx, app, id).await?;
                let version_of = |key: &str| current.iter().find(|e| e.0 == key).map_or(0, |e| e.2);
                for u in updates {
                    let at = version_of(&u.key);
                    if u.expected_version.is_some_and(|v| v != at) {
                        return Ok(ExtensionsOutcome::Conflict {
                            key: u.key.clone(),
                            version: at,
                        });
                    }
                }
                let mut live: HashSet<&str> = current
                    .iter()
                    .filter(|e| e.1.is_some())
                    .map(|e| e.0.as_str())
                    .collect();
                let mut items = Vec::new();
                for u in updates {
                    let was_live = live.contains(u.key.as_str());
                    if u.value.is_none() && !was_live {
                        continue; // deleting what is not set changes nothing
                    }
                    let key_version = version_of(&u.key) + 1;
                    sqlx::query::<$db>(
                        "INSERT INTO message_extensions (app_id, msg_id, key, value, version, updated_by, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (app_id, msg_id, key) DO UPDATE SET value = excluded.value, \
                         version = excluded.version, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                    )
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .bind(&u.key)
                    .bind(u.value.as_deref())
                    .bind(key_version)
                    .bind(by.map(UserId::as_str))
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    match u.value {
                        Some(_) => live.insert(u.key.as_str()),
                        None => live.remove(u.key.as_str()),
                    };
                    items.push(ExtensionChange {
                        key: u.key.clone(),
                        value: u.value.clone(),
                        version: key_version,
                    });
                }
                if live.len() > MAX_EXTENSIONS_PER_MESSAGE {
                    return Ok(ExtensionsOutcome::TooMany);
                }
                if items.is_empty() {
                    let extensions = extensions_of(&mut *tx, app, id).await?;
                    return Ok(ExtensionsOutcome::Unchanged {
                        extensions: extensions.into_iter().filter_map(|e| e.3).collect(),
                    });
                }
                let message = stamp_message(&mut tx, app, id, version).await?;
                let kind = ChangeKind::Extensions { items };
                let change = record_kind(&mut tx, app, &message, version, &kind, by, now).await?;
                touch_conversation(&mut tx, app, &message.conversation_id, version).await?;
                let extensions = extensions_of(&mut *tx, app, id).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(ExtensionsOutcome::Applied {
                    message: Box::new(message),
                    change: Box::new(change),
                    extensions: extensions.into_iter().filter_map(|e| e.3).collect(),
                })
            }

            async fn message_extensions(&self, app: &AppId, ids: &[MsgId]) -> StoreResult<Vec<(MsgId, Extension)>> {
                let mut out = Vec::new();
                for chunk in ids.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT msg_id, key, value, version, updated_by, updated_at FROM message_extensions \
                         WHERE value IS NOT NULL AND app_id = ",
                    );
                    qb.push_bind(app.as_str().to_owned());
                    qb.push(" AND msg_id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_str().to_owned());
                    }
                    list.push_unseparated(") ORDER BY msg_id, key");
                    for row in qb.build().fetch_all(self.reader()).await.map_err(map_err)? {
                        let msg_id: String = col(&row, "msg_id")?;
                        let msg_id = MsgId::parse(&msg_id).map_err(|_| corrupt("message id", &msg_id))?;
                        if let Some(e) = extension_from_row(&row)? {
                            out.push((msg_id, e));
                        }
                    }
                }
                Ok(out)
            }

            async fn set_reaction(
                &self,
                app: &AppId,
                id: &MsgId,
                user: &UserId,
                reaction: &str,
                add: bool,
                now: UnixMillis,
            ) -> StoreResult<ReactionOutcome> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let version = next_version(&mut tx, app).await?;
                let message = message_in(&mut tx, app, id).await?.ok_or(StoreError::NotFound("message"))?;
                if message.recalled {
                    return Ok(ReactionOutcome::Recalled);
                }
                let count = |sql: &'static str| {
                    sqlx::query_scalar::<$db, i64>(sql)
                        .bind(app.as_str())
                        .bind(id.as_str())
                };
                let held: i64 = count(
                    "SELECT COUNT(*) FROM message_reactions \
                     WHERE app_id = $1 AND msg_id = $2 AND reaction = $3 AND user_id = $4",
                )
                .bind(reaction)
                .bind(user.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                if add == (held > 0) {
                    let summary = reaction_summary_in(&mut *tx, app, id, reaction, user).await?;
                    return Ok(ReactionOutcome::Unchanged { summary });
                }
                if add {
                    let mine: i64 = count("SELECT COUNT(*) FROM message_reactions WHERE app_id = $1 AND msg_id = $2 AND user_id = $3")
                        .bind(user.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    if mine >= MAX_REACTIONS_PER_USER as i64 {
                        return Ok(ReactionOutcome::TooMany(format!(
                            "a user may put at most {MAX_REACTIONS_PER_USER} reactions on one message"
                        )));
                    }
                    let used: i64 = count("SELECT COUNT(*) FROM message_reactions WHERE app_id = $1 AND msg_id = $2 AND reaction = $3")
                        .bind(reaction)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    if used == 0 {
                        let distinct: i64 = count(
                            "SELECT COUNT(DISTINCT reaction) FROM message_reactions WHERE app_id = $1 AND msg_id = $2",
                        )
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_err)?;
                        if distinct >= MAX_REACTIONS_PER_MESSAGE as i64 {
                            return Ok(ReactionOutcome::TooMany(format!(
                                "a message may carry at most {MAX_REACTIONS_PER_MESSAGE} different reactions"
                            )));
                        }
                    }
                    sqlx::query::<$db>(
                        "INSERT INTO message_reactions (app_id, msg_id, reaction, user_id, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .bind(reaction)
                    .bind(user.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                } else {
                    sqlx::query::<$db>(
                        "DELETE FROM message_reactions \
                         WHERE app_id = $1 AND msg_id = $2 AND reaction = $3 AND user_id = $4",
                    )
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .bind(reaction)
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                let summary = reaction_summary_in(&mut *tx, app, id, reaction, user).await?;
                let message = stamp_message(&mut tx, app, id, version).await?;
                let kind = ChangeKind::Reaction {
                    reaction: reaction.to_owned(),
                    user_id: user.clone(),
                    added: add,
                    count: summary.count,
                };
                let change = record_kind(&mut tx, app, &message, version, &kind, Some(user), now).await?;
                touch_conversation(&mut tx, app, &message.conversation_id, version).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(ReactionOutcome::Applied {
                    message: Box::new(message),
                    change: Box::new(change),
                    summary,
                })
            }

            async fn reaction_summaries(
                &self,
                app: &AppId,
                ids: &[MsgId],
                reader: Option<&UserId>,
                shown: u32,
            ) -> StoreResult<Vec<(MsgId, ReactionSummary)>> {
                // (msg, reaction) -> (first use, summary)
                let mut found: BTreeMap<(String, String), (i64, ReactionSummary)> = BTreeMap::new();
                let list = |qb: &mut sqlx::QueryBuilder<'_, $db>, chunk: &[MsgId]| {
                    qb.push(" AND msg_id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_str().to_owned());
                    }
                    list.push_unseparated(")");
                };
                for chunk in ids.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT msg_id, reaction, COUNT(*) AS n, MIN(created_at) AS first_at \
                         FROM message_reactions WHERE app_id = ",
                    );
                    qb.push_bind(app.as_str().to_owned());
                    list(&mut qb, chunk);
                    qb.push(" GROUP BY msg_id, reaction");
                    for row in qb.build().fetch_all(self.reader()).await.map_err(map_err)? {
                        let key = (col::<String>(&row, "msg_id")?, col::<String>(&row, "reaction")?);
                        let summary = ReactionSummary {
                            reaction: key.1.clone(),
                            count: col(&row, "n")?,
                            reacted: false,
                            users: Vec::new(),
                        };
                        found.insert(key, (col(&row, "first_at")?, summary));
                    }
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "SELECT msg_id, reaction, user_id FROM (SELECT msg_id, reaction, user_id, \
                         ROW_NUMBER() OVER (PARTITION BY msg_id, reaction ORDER BY created_at, user_id) AS rn \
                         FROM message_reactions WHERE app_id = ",
                    );
                    qb.push_bind(app.as_str().to_owned());
                    list(&mut qb, chunk);
                    qb.push(") r WHERE rn <= ");
                    qb.push_bind(i64::from(shown));
                    qb.push(" ORDER BY msg_id, reaction, rn");
                    for row in qb.build().fetch_all(self.reader()).await.map_err(map_err)? {
                        let key = (col::<String>(&row, "msg_id")?, col::<String>(&row, "reaction")?);
                        if let Some((_, s)) = found.get_mut(&key) {
                            s.users.push(stored_user(&row, "user_id")?);
                        }
                    }
                    if let Some(reader) = reader {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(
                            "SELECT msg_id, reaction FROM message_reactions WHERE app_id = ",
                        );
                        qb.push_bind(app.as_str().to_owned());
                        qb.push(" AND user_id = ");
                        qb.push_bind(reader.as_str().to_owned());
                        list(&mut qb, chunk);
                        for row in qb.build().fetch_all(self.reader()).await.map_err(map_err)? {
                            let key = (col::<String>(&row, "msg_id")?, col::<String>(&row, "reaction")?);
                            if let Some((_, s)) = found.get_mut(&key) {
                                s.reacted = true;
                            }
                        }
                    }
                }
                let mut out: Vec<(String, i64, ReactionSummary)> =
                    found.into_iter().map(|((msg, _), (first, s))| (msg, first, s)).collect();
                out.sort_by(|a, b| (&a.0, a.1, &a.2.reaction).cmp(&(&b.0, b.1, &b.2.reaction)));
                out.into_iter()
                    .map(|(msg, _, s)| {
                        let id = MsgId::parse(&msg).map_err(|_| corrupt("message id", &msg))?;
                        Ok((id, s))
                    })
                    .collect()
            }

            async fn reaction_users(
                &self,
                app: &AppId,
                id: &MsgId,
                reaction: &str,
                after: Option<(UnixMillis, UserId)>,
                limit: u32,
            ) -> StoreResult<Vec<(UserId, UnixMillis)>> {
                let (at, user) = after.map_or((i64::MIN, String::new()), |(t, u)| (t, u.into_string()));
                let rows = sqlx::query::<$db>(
                    "SELECT user_id, created_at FROM message_reactions \
                     WHERE app_id = $1 AND msg_id = $2 AND reaction = $3 \
                     AND (created_at > $4 OR (created_at = $4 AND user_id > $5)) \
                     ORDER BY created_at, user_id LIMIT $6",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(reaction)
                .bind(at)
                .bind(user)
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter()
                    .map(|row| Ok((stored_user(row, "user_id")?, col(row, "created_at")?)))
                    .collect()
            }

            async fn message_changes(
                &self,
                app: &AppId,
                conversation: &ConversationId,
                user: &UserId,
                since: i64,
                limit: u32,
            ) -> StoreResult<Vec<MessageChange>> {
                let conversation_id = conversation.to_string();
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT ch.version AS ch_version, ch.seq AS ch_seq, ch.msg_id AS ch_msg_id, ch.kind, \
                     ch.actor, ch.data, ch.created_at AS ch_created_at, {} \
                     FROM message_changes ch JOIN messages m ON m.app_id = ch.app_id AND m.msg_id = ch.msg_id \
                     WHERE ch.app_id = $1 AND ch.conversation_id = $2 AND ch.version > $3 \
                     AND NOT EXISTS (SELECT 1 FROM message_deletions d \
                     WHERE d.app_id = ch.app_id AND d.user_id = $4 AND d.msg_id = ch.msg_id) \
                     ORDER BY ch.version LIMIT $5",
                    prefixed_message_columns("m", "m_")
                ))
                .bind(app.as_str())
                .bind(&conversation_id)
                .bind(since)
                .bind(user.as_str())
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                let mut changes = rows
                    .iter()
                    .map(|row| change_from_row(row, conversation))
                    .collect::<StoreResult<Vec<_>>>()?;
                let rows = sqlx::query::<$db>(
                    "SELECT msg_id, seq, version, deleted_at FROM message_deletions \
                     WHERE app_id = $1 AND user_id = $2 AND conversation_id = $3 AND version > $4 \
                     ORDER BY version LIMIT $5",
                )
                .bind(app.as_str())
                .bind(user.as_str())
                .bind(&conversation_id)
                .bind(since)
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                for row in &rows {
                    let msg_id: String = col(row, "msg_id")?;
                    changes.push(MessageChange {
                        conversation_id: conversation.clone(),
                        msg_id: MsgId::parse(&msg_id).map_err(|_| corrupt("message id", &msg_id))?,
                        seq: col(row, "seq")?,
                        version: col(row, "version")?,
                        by: Some(user.clone()),
                        changed_at: col(row, "deleted_at")?,
                        kind: ChangeKind::Deleted,
                    });
                }
                changes.sort_by_key(|c| c.version);
                changes.truncate(limit as usize);
                Ok(changes)
            }

            // ---- groups ------------------------------------------------------------------
            async fn create_group(&self, app: &AppId, group: &NewGroup, now: UnixMillis) -> StoreResult<GroupChange<Group>> {
                let mut members: Vec<&UserId> = group.members.iter().filter(|u| **u != group.owner).collect();
                members.sort();
                members.dedup();
                let count = members.len() + 1;
                if count > group.member_limit {
                    return Err(StoreError::Rejected(format!(
                        "a group may have at most {} members; this one would have {count}",
                        group.member_limit
                    )));
                }
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let version = next_version(&mut tx, app).await?;
                sqlx::query::<$db>(
                    "INSERT INTO groups (app_id, id, name, owner, metadata, member_count, avatar_url, announcement, \
                     join_policy, mute_all, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, FALSE, $10, $11, $11)",
                )
                .bind(app.as_str())
                .bind(group.id.as_str())
                .bind(&group.name)
                .bind(group.owner.as_str())
                .bind(to_json(&group.metadata)?)
                .bind(count as i64)
                .bind(&group.avatar_url)
                .bind(&group.announcement)
                .bind(group.join_policy.as_str())
                .bind(version)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_as(e, || format!("group {} already exists", group.id)))?;
                let mut with_roles: Vec<(&UserId, GroupRole)> = vec![(&group.owner, GroupRole::Owner)];
                with_roles.extend(members.iter().map(|u| (*u, GroupRole::Member)));
                with_roles.sort_by(|a, b| a.0.cmp(b.0));
                let record = GroupRecord {
                    notice: group.notice.clone(),
                    actor: None,
                    personal: Vec::new(),
                    events: group.events.clone(),
                };
                let (notice, _) = join_with_record(&mut tx, app, &group.id, &with_roles, version, now, &record).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(GroupChange {
                    value: Group {
                        id: group.id.clone(),
                        name: group.name.clone(),
                        owner: group.owner.clone(),
                        member_count: count as i64,
                        metadata: group.metadata.clone(),
                        avatar_url: group.avatar_url.clone(),
                        announcement: group.announcement.clone(),
                        join_policy: group.join_policy,
                        mute_all: false,
                        version,
                        created_at: now,
                        updated_at: now,
                    },
                    notice,
                    personal: Vec::new(),
                })
            }

            async fn group(&self, app: &AppId, id: &GroupId) -> StoreResult<Option<Group>> {
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {GROUP_COLUMNS} FROM groups WHERE app_id = $1 AND id = $2"
                ))
                .bind(app.as_str())
                .bind(id.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(group_from_row).transpose()
            }

            async fn add_group_members(
                &self,
                app: &AppId,
                id: &GroupId,
                users: &[UserId],
                member_limit: usize,
                now: UnixMillis,
                record_for: RecordFor<'_>,
            ) -> StoreResult<GroupChange<Vec<UserId>>> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                // Taken first, so concurrent additions to one app's groups queue here and the
                // limit check below sees every committed member.
                let version = next_version(&mut tx, app).await?;
                let group = group_in(&mut tx, app, id).await?.ok_or(StoreError::NotFound("group"))?;
                let mut asked: Vec<&UserId> = users.iter().collect();
                asked.sort();
                asked.dedup();
                let existing = members_among(&mut tx, app, id, &asked).await?;
                let new: Vec<&UserId> = asked.into_iter().filter(|u| !existing.contains(u.as_str())).collect();
                if new.is_empty() {
                    return Ok(GroupChange {
                        value: Vec::new(),
                        notice: None,
                        personal: Vec::new(),
                    });
                }
                let total = group.member_count as usize + new.len();
                if total > member_limit {
                    return Err(StoreError::Rejected(format!(
                        "a group may have at most {member_limit} members; this one would have {total}"
                    )));
                }
                // Returned in the caller's order.
                let added: HashSet<&UserId> = new.iter().copied().collect();
                let mut out: Vec<UserId> = Vec::with_capacity(added.len());
                for u in users {
                    if added.contains(u) && !out.contains(u) {
                        out.push(u.clone());
                    }
                }
                let record = record_for(&out);
                let with_roles: Vec<(&UserId, GroupRole)> = new.iter().map(|u| (*u, GroupRole::Member)).collect();
                let (notice, personal) = join_with_record(&mut tx, app, id, &with_roles, version, now, &record).await?;
                sqlx::query::<$db>(
                    "UPDATE groups SET member_count = member_count + $3, updated_at = $4, version = $5 \
                     WHERE app_id = $1 AND id = $2",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(new.len() as i64)
                .bind(now)
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                for chunk in new.chunks(500) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE group_join_requests SET state = 'accepted', updated_at = ");
                    qb.push_bind(now);
                    qb.push(" WHERE app_id = ");
                    qb.push_bind(app.as_str().to_owned());
                    qb.push(" AND group_id = ");
                    qb.push_bind(id.as_str().to_owned());
                    qb.push(" AND state = 'pending' AND user_id IN (");
                    let mut list = qb.separated(", ");
                    for u in chunk {
                        list.push_bind(u.as_str().to_owned());
                    }
                    list.push_unseparated(")");
                    qb.build().execute(&mut *tx).await.map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)?;
                Ok(GroupChange {
                    value: out,
                    notice,
                    personal,
                })
            }

            async fn remove_group_member(
                &self,
                app: &AppId,
                id: &GroupId,
                user: &UserId,
                record: &GroupRecord,
                now: UnixMillis,
            ) -> StoreResult<GroupChange<()>> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let version = next_version(&mut tx, app).await?;
                let member = member_in(&mut tx, app, id, user)
                    .await?
                    .ok_or(StoreError::NotFound("group member"))?;
                if member.role == GroupRole::Owner {
                    return Err(StoreError::Rejected(
                        "the owner cannot leave or be removed; transfer the ownership first".into(),
                    ));
                }
                sqlx::query::<$db>("DELETE FROM group_members WHERE app_id = $1 AND group_id = $2 AND user_id = $3")
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                sqlx::query::<$db>(
                    "UPDATE groups SET member_count = member_count - 1, version = $3, updated_at = $4 \
                     WHERE app_id = $1 AND id = $2",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(version)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                sqlx::query::<$db>(
                    "DELETE FROM user_conversations WHERE app_id = $1 AND user_id = $2 AND conversation_id = $3",
                )
                .bind(app.as_str())
                .bind(user.as_str())
                .bind(ConversationId::Group(id.clone()).to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                let (notice, personal) = write_record(&mut tx, app, version, now, Some(id), record).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(GroupChange {
                    value: (),
                    notice,
                    personal,
                })
            }

            async fn group_member(
                &self,
                app: &AppId,
                id: &GroupId,
                user: &UserId,
            ) -> StoreResult<Option<GroupMember>> {
                let row = sqlx::query::<$db>(&format!(
                    "SELECT {MEMBER_COLUMNS} FROM group_members WHERE app_id = $1 AND group_id = $2 AND user_id = $3"
                ))
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(user.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(member_from_row).transpose()
            }

            async fn group_members(
                &self,
                app: &AppId,
                id: &GroupId,
                after: Option<&UserId>,
                limit: u32,
            ) -> StoreResult<Vec<GroupMember>> {
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {MEMBER_COLUMNS} FROM group_members \
                     WHERE app_id = $1 AND group_id = $2 AND user_id > $3 ORDER BY user_id LIMIT $4"
                ))
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(after.map(UserId::as_str).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(member_from_row).collect()
            }

            async fn group_member_ids(&self, app: &AppId, id: &GroupId) -> StoreResult<Vec<UserId>> {
                let ids: Vec<String> = sqlx::query_scalar::<$db, String>(
                    "SELECT user_id FROM group_members WHERE app_id = $1 AND group_id = $2 ORDER BY user_id",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                ids.iter()
                    .map(|s| UserId::parse(s).map_err(|_| corrupt("user id", s)))
                    .collect()
            }

            async fn update_group(
                &self,
                app: &AppId,
                id: &GroupId,
                patch: &GroupPatch,
                record: &GroupRecord,
                now: UnixMillis,
            ) -> StoreResult<GroupChange<Group>> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let version = next_version(&mut tx, app).await?;
                let group = group_in(&mut tx, app, id).await?.ok_or(StoreError::NotFound("group"))?;
                let mut next = patch.apply(&group);
                next.version = version;
                next.updated_at = now;
                sqlx::query::<$db>(
                    "UPDATE groups SET name = $3, metadata = $4, avatar_url = $5, announcement = $6, \
                     join_policy = $7, mute_all = $8, version = $9, updated_at = $10 WHERE app_id = $1 AND id = $2",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(&next.name)
                .bind(to_json(&next.metadata)?)
                .bind(&next.avatar_url)
                .bind(&next.announcement)
                .bind(next.join_policy.as_str())
                .bind(next.mute_all)
                .bind(version)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                let (notice, personal) = write_record(&mut tx, app, version, now, Some(id), record).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(GroupChange {
                    value: next,
                    notice,
                    personal,
                })
            }

            async fn change_group_member(
                &self,
                app: &AppId,
                id: &GroupId,
                user: &UserId,
                change: MemberChange,
                record: &GroupRecord,
                now: UnixMillis,
            ) -> StoreResult<GroupChange<GroupMember>> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let version = next_version(&mut tx, app).await?;
                let mut member = member_in(&mut tx, app, id, user)
                    .await?
                    .ok_or(StoreError::NotFound("group member"))?;
                if member.role == GroupRole::Owner {
                    return Err(StoreError::Rejected(
                        "the owner's role changes only by a transfer, and the owner cannot be muted".into(),
                    ));
                }
                match change {
                    MemberChange::Role(GroupRole::Owner) => {
                        return Err(StoreError::Rejected("ownership changes only by a transfer".into()))
                    }
                    MemberChange::Role(role) => member.role = role,
                    MemberChange::Mute(until) => member.muted_until = until,
                }
                sqlx::query::<$db>(
                    "UPDATE group_members SET role = $4, muted_until = $5 \
                     WHERE app_id = $1 AND group_id = $2 AND user_id = $3",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(user.as_str())
                .bind(member.role.as_str())
                .bind(member.muted_until)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                touch_group(&mut tx, app, id, version, now).await?;
                let (notice, personal) = write_record(&mut tx, app, version, now, Some(id), record).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(GroupChange {
                    value: member,
                    notice,
                    personal,
                })
            }

            async fn transfer_group_owner(
                &self,
                app: &AppId,
                id: &GroupId,
                from: &UserId,
                to: &UserId,
                record: &GroupRecord,
                now: UnixMillis,
            ) -> StoreResult<GroupChange<Group>> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let version = next_version(&mut tx, app).await?;
                let mut group = group_in(&mut tx, app, id).await?.ok_or(StoreError::NotFound("group"))?;
                if group.owner != *from {
                    return Err(StoreError::Rejected(format!("{from} is not the owner of the group")));
                }
                member_in(&mut tx, app, id, to)
                    .await?
                    .ok_or(StoreError::NotFound("group member"))?;
                for (user, role) in [(from, GroupRole::Member), (to, GroupRole::Owner)] {
                    // An owner is never muted.
                    sqlx::query::<$db>(
                        "UPDATE group_members SET role = $4, \
                         muted_until = CASE WHEN $4 = 'owner' THEN NULL ELSE muted_until END \
                         WHERE app_id = $1 AND group_id = $2 AND user_id = $3",
                    )
                    .bind(app.as_str())
                    .bind(id.as_str())
                    .bind(user.as_str())
                    .bind(role.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                sqlx::query::<$db>(
                    "UPDATE groups SET owner = $3, version = $4, updated_at = $5 WHERE app_id = $1 AND id = $2",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(to.as_str())
                .bind(version)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                let (notice, personal) = write_record(&mut tx, app, version, now, Some(id), record).await?;
                tx.commit().await.map_err(map_err)?;
                group.owner = to.clone();
                group.version = version;
                group.updated_at = now;
                Ok(GroupChange {
                    value: group,
                    notice,
                    personal,
                })
            }

            async fn dismiss_group(
                &self,
                app: &AppId,
                id: &GroupId,
                now: UnixMillis,
                record_for: RecordFor<'_>,
            ) -> StoreResult<GroupChange<Vec<UserId>>> {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                let version = next_version(&mut tx, app).await?;
                group_in(&mut tx, app, id).await?.ok_or(StoreError::NotFound("group"))?;
                let members: Vec<String> = sqlx::query_scalar::<$db, String>(
                    "SELECT user_id FROM group_members WHERE app_id = $1 AND group_id = $2 ORDER BY user_id",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                let members = members
                    .iter()
                    .map(|s| UserId::parse(s).map_err(|_| corrupt("user id", s)))
                    .collect::<StoreResult<Vec<_>>>()?;
                let conversation = ConversationId::Group(id.clone()).to_string();
                delete_conversation_messages(&mut tx, app, &conversation).await?;
                for sql in [
                    "DELETE FROM user_conversations WHERE app_id = $1 AND conversation_id = $2",
                    "DELETE FROM conversations WHERE app_id = $1 AND id = $2",
                ] {
                    sqlx::query::<$db>(sql)
                        .bind(app.as_str())
                        .bind(&conversation)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                for sql in [
                    "DELETE FROM group_join_requests WHERE app_id = $1 AND group_id = $2",
                    "DELETE FROM group_members WHERE app_id = $1 AND group_id = $2",
                    "DELETE FROM groups WHERE app_id = $1 AND id = $2",
                ] {
                    sqlx::query::<$db>(sql)
                        .bind(app.as_str())
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                let record = record_for(&members);
                // The timeline is gone: only the personal notices and the events remain.
                let (_, personal) = write_record(&mut tx, app, version, now, None, &record).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(GroupChange {
                    value: members,
                    notice: None,
                    personal,
                })
            }

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
                let group = group_in(&mut tx, app, id).await?.ok_or(StoreError::NotFound("group"))?;
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
                    let change = join_with_record(&mut tx, app, id, &[(user, GroupRole::Member)], version, now, &record).await?;
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

            async fn user_groups(
                &self,
                app: &AppId,
                user: &UserId,
                after: Option<&GroupId>,
                limit: u32,
            ) -> StoreResult<Vec<Group>> {
                let columns = GROUP_COLUMNS
                    .split(", ")
                    .map(|c| format!("g.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {columns} FROM group_members gm \
                     JOIN groups g ON g.app_id = gm.app_id AND g.id = gm.group_id \
                     WHERE gm.app_id = $1 AND gm.user_id = $2 AND gm.group_id > $3 ORDER BY gm.group_id LIMIT $4"
                ))
                .bind(app.as_str())
                .bind(user.as_str())
                .bind(after.map(GroupId::as_str).unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(group_from_row).collect()
            }

            async fn group_read_positions(&self, app: &AppId, id: &GroupId) -> StoreResult<Vec<ReadPosition>> {
                let rows = sqlx::query::<$db>(
                    "SELECT gm.user_id, uc.read_seq, uc.joined_seq FROM group_members gm \
                     JOIN user_conversations uc ON uc.app_id = gm.app_id AND uc.user_id = gm.user_id \
                     AND uc.conversation_id = $3 \
                     WHERE gm.app_id = $1 AND gm.group_id = $2 ORDER BY gm.user_id",
                )
                .bind(app.as_str())
                .bind(id.as_str())
                .bind(ConversationId::Group(id.clone()).to_string())
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter()
                    .map(|row| {
                        Ok(ReadPosition {
                            user_id: stored_user(row, "user_id")?,
                            read_seq: col(row, "read_seq")?,
                            joined_seq: col(row, "joined_seq")?,
                        })
                    })
                    .collect()
            }

            // ---- webhook outbox ----------------------------------------------------------
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
                let r = sqlx::query::<$db>(
                    "UPDATE outbox_events SET state = 'delivered', attempts = $2 WHERE id = $1",
                )
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

            // ---- platform admins ---------------------------------------------------------
            async fn admin_count(&self) -> StoreResult<i64> {
                sqlx::query_scalar::<$db, i64>("SELECT COUNT(*) FROM platform_admins")
                    .fetch_one(self.reader())
                    .await
                    .map_err(map_err)
            }

            async fn create_admin(&self, email: &str, password_hash: &str, now: UnixMillis) -> StoreResult<AdminRecord> {
                let row = sqlx::query::<$db>(
                    "INSERT INTO platform_admins (email, password_hash, created_at) VALUES ($1, $2, $3) \
                     RETURNING id, email, password_hash, created_at",
                )
                .bind(email)
                .bind(password_hash)
                .bind(now)
                .fetch_one(self.writer())
                .await
                .map_err(|e| conflict_as(e, || format!("an admin with email {email:?} already exists")))?;
                admin_from_row(&row)
            }

            async fn admin_by_email(&self, email: &str) -> StoreResult<Option<AdminRecord>> {
                let row = sqlx::query::<$db>(
                    "SELECT id, email, password_hash, created_at FROM platform_admins WHERE email = $1",
                )
                .bind(email)
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
                row.as_ref().map(admin_from_row).transpose()
            }

            // ---- moderation --------------------------------------------------------------
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
                let created_at = sqlx::query_scalar::<$db, i64>(
                    "SELECT created_at FROM word_lists WHERE app_id = $1 AND name = $2",
                )
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

            // ---- webhook claims ----------------------------------------------------------
            async fn claim_due_events(&self, now: UnixMillis, limit: u32, lease_ms: i64) -> StoreResult<Vec<OutboxEvent>> {
                // PostgreSQL runs claims concurrently: the row locks make a second claimer
                // skip what the first took. SQLite has one writer, so the statement is
                // atomic as it is (and has no FOR UPDATE). The CTE is materialized so the
                // LIMITed selection runs once (as an `IN (subquery)` PostgreSQL may rescan it
                // and take more than `limit`).
                let lock = if $backend == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
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

            // ---- friends and blocks ------------------------------------------------------
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

            // ---- rooms and broadcasts ----------------------------------------------------
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

        // ---- friends and blocks: row readers -----------------------------------------
        const FRIEND_COLUMNS: &str = "user_id, friend_id, remark, tags, created_at, updated_at";
        const FRIEND_REQUEST_COLUMNS: &str = "from_user, to_user, message, state, created_at, updated_at";

        fn stored_user(row: &DbRow, name: &str) -> StoreResult<UserId> {
            let id: String = col(row, name)?;
            UserId::parse(&id).map_err(|_| corrupt("user id", &id))
        }

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

        async fn bump_word_lists_version(tx: &mut Tx<'_>, app: &AppId) -> StoreResult<i64> {
            bump_counter(tx, "word_list_versions", app).await
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

        /// Deletes a conversation's messages and what the lifecycle keeps of them (reactions,
        /// extensions, changes, deletions for users): a dismissed group or room leaves none.
        async fn delete_conversation_messages(tx: &mut Tx<'_>, app: &AppId, conversation: &str) -> StoreResult<()> {
            for table in ["message_reactions", "message_extensions"] {
                sqlx::query::<$db>(&format!(
                    "DELETE FROM {table} WHERE app_id = $1 AND msg_id IN \
                     (SELECT msg_id FROM messages WHERE app_id = $1 AND conversation_id = $2)"
                ))
                .bind(app.as_str())
                .bind(conversation)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
            }
            for table in ["message_changes", "message_deletions", "messages"] {
                sqlx::query::<$db>(&format!("DELETE FROM {table} WHERE app_id = $1 AND conversation_id = $2"))
                    .bind(app.as_str())
                    .bind(conversation)
                    .execute(&mut **tx)
                    .await
                    .map_err(map_err)?;
            }
            Ok(())
        }

        // ---- message lifecycle: helpers ------------------------------------------------
        async fn message_in(tx: &mut Tx<'_>, app: &AppId, id: &MsgId) -> StoreResult<Option<Message>> {
            let row = sqlx::query::<$db>(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE app_id = $1 AND msg_id = $2"
            ))
            .bind(app.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(map_err)?;
            row.as_ref().map(required_message).transpose()
        }

        /// Stamps a message with the change version that changed it; returns it.
        async fn stamp_message(tx: &mut Tx<'_>, app: &AppId, id: &MsgId, version: i64) -> StoreResult<Message> {
            let row = sqlx::query::<$db>(&format!(
                "UPDATE messages SET version = $3 WHERE app_id = $1 AND msg_id = $2 RETURNING {MESSAGE_COLUMNS}"
            ))
            .bind(app.as_str())
            .bind(id.as_str())
            .bind(version)
            .fetch_one(&mut **tx)
            .await
            .map_err(map_err)?;
            required_message(&row)
        }

        /// Advances the app's change version by `n` at once; returns the last of the `n`.
        async fn next_versions(tx: &mut Tx<'_>, app: &AppId, n: i64) -> StoreResult<i64> {
            sqlx::query_scalar::<$db, i64>(
                "INSERT INTO app_versions (app_id, version) VALUES ($1, $2) \
                 ON CONFLICT (app_id) DO UPDATE SET version = app_versions.version + excluded.version \
                 RETURNING version",
            )
            .bind(app.as_str())
            .bind(n)
            .fetch_one(&mut **tx)
            .await
            .map_err(map_err)
        }

        /// Gives the conversation the change's version, so every member's entry shows up in sync.
        async fn touch_conversation(
            tx: &mut Tx<'_>,
            app: &AppId,
            conversation: &ConversationId,
            version: i64,
        ) -> StoreResult<()> {
            sqlx::query::<$db>("UPDATE conversations SET version = $3 WHERE app_id = $1 AND id = $2")
                .bind(app.as_str())
                .bind(conversation.to_string())
                .bind(version)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
            Ok(())
        }

        /// Writes one row of the change log.
        #[allow(clippy::too_many_arguments)]
        async fn record_change(
            tx: &mut Tx<'_>,
            app: &AppId,
            message: &Message,
            version: i64,
            kind: &str,
            by: Option<&UserId>,
            data: &serde_json::Value,
            now: UnixMillis,
        ) -> StoreResult<()> {
            sqlx::query::<$db>(
                "INSERT INTO message_changes \
                 (app_id, version, conversation_id, msg_id, seq, kind, actor, data, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(app.as_str())
            .bind(version)
            .bind(message.conversation_id.to_string())
            .bind(message.msg_id.as_str())
            .bind(message.seq)
            .bind(kind)
            .bind(by.map(UserId::as_str))
            .bind(to_json(data)?)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
            Ok(())
        }

        /// Records a change whose data is its kind (every kind but a recall); returns it.
        async fn record_kind(
            tx: &mut Tx<'_>,
            app: &AppId,
            message: &Message,
            version: i64,
            kind: &ChangeKind,
            by: Option<&UserId>,
            now: UnixMillis,
        ) -> StoreResult<MessageChange> {
            let data = serde_json::to_value(kind)
                .map_err(|e| StoreError::Database(format!("a change does not encode: {e}")))?;
            record_change(tx, app, message, version, kind.as_str(), by, &data, now).await?;
            Ok(MessageChange {
                conversation_id: message.conversation_id.clone(),
                msg_id: message.msg_id.clone(),
                seq: message.seq,
                version,
                by: by.cloned(),
                changed_at: now,
                kind: kind.clone(),
            })
        }

        /// A row of `message_changes` joined with its message (columns `m_*`).
        fn change_from_row(row: &DbRow, conversation: &ConversationId) -> StoreResult<MessageChange> {
            let msg_id: String = col(row, "ch_msg_id")?;
            let kind: String = col(row, "kind")?;
            let actor: Option<String> = col(row, "actor")?;
            let kind = if kind == "recall" {
                let message = message_from_row(row, "m_")?
                    .ok_or_else(|| StoreError::Database("a change without its message".into()))?;
                ChangeKind::Recalled {
                    message: Box::new(message),
                }
            } else {
                let data: String = col(row, "data")?;
                serde_json::from_str(&data).map_err(|_| corrupt("message change", &data))?
            };
            Ok(MessageChange {
                conversation_id: conversation.clone(),
                msg_id: MsgId::parse(&msg_id).map_err(|_| corrupt("message id", &msg_id))?,
                seq: col(row, "ch_seq")?,
                version: col(row, "ch_version")?,
                by: actor
                    .map(|a| UserId::parse(&a).map_err(|_| corrupt("user id", &a)))
                    .transpose()?,
                changed_at: col(row, "ch_created_at")?,
                kind,
            })
        }

        /// Of `ids`, those `user` deleted for themselves.
        async fn deleted_among(
            conn: &mut <$db as sqlx::Database>::Connection,
            app: &AppId,
            user: &UserId,
            ids: &[MsgId],
        ) -> StoreResult<Vec<MsgId>> {
            let mut out = Vec::new();
            for chunk in ids.chunks(500) {
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT msg_id FROM message_deletions WHERE app_id = ");
                qb.push_bind(app.as_str().to_owned());
                qb.push(" AND user_id = ");
                qb.push_bind(user.as_str().to_owned());
                qb.push(" AND msg_id IN (");
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str().to_owned());
                }
                list.push_unseparated(")");
                let found: Vec<String> = qb
                    .build_query_scalar::<String>()
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(map_err)?;
                for id in found {
                    out.push(MsgId::parse(&id).map_err(|_| corrupt("message id", &id))?);
                }
            }
            Ok(out)
        }

        /// An extension row; `None` for a deleted key.
        fn extension_from_row(row: &DbRow) -> StoreResult<Option<Extension>> {
            let Some(value) = col::<Option<String>>(row, "value")? else {
                return Ok(None);
            };
            let by: Option<String> = col(row, "updated_by")?;
            Ok(Some(Extension {
                key: col(row, "key")?,
                value,
                version: col(row, "version")?,
                updated_by: by
                    .map(|b| UserId::parse(&b).map_err(|_| corrupt("user id", &b)))
                    .transpose()?,
                updated_at: col(row, "updated_at")?,
            }))
        }

        /// Every key row of a message, deleted ones included: (key, value, version, extension).
        async fn extensions_of(
            conn: &mut <$db as sqlx::Database>::Connection,
            app: &AppId,
            id: &MsgId,
        ) -> StoreResult<Vec<(String, Option<String>, i64, Option<Extension>)>> {
            let rows = sqlx::query::<$db>(
                "SELECT key, value, version, updated_by, updated_at FROM message_extensions \
                 WHERE app_id = $1 AND msg_id = $2 ORDER BY key",
            )
            .bind(app.as_str())
            .bind(id.as_str())
            .fetch_all(&mut *conn)
            .await
            .map_err(map_err)?;
            rows.iter()
                .map(|row| Ok((col(row, "key")?, col(row, "value")?, col(row, "version")?, extension_from_row(row)?)))
                .collect()
        }

        /// One reaction of a message as `user` sees it.
        async fn reaction_summary_in(
            conn: &mut <$db as sqlx::Database>::Connection,
            app: &AppId,
            id: &MsgId,
            reaction: &str,
            user: &UserId,
        ) -> StoreResult<ReactionSummary> {
            let rows = sqlx::query::<$db>(
                "SELECT user_id FROM message_reactions WHERE app_id = $1 AND msg_id = $2 AND reaction = $3 \
                 ORDER BY created_at, user_id",
            )
            .bind(app.as_str())
            .bind(id.as_str())
            .bind(reaction)
            .fetch_all(&mut *conn)
            .await
            .map_err(map_err)?;
            let users = rows.iter().map(|r| stored_user(r, "user_id")).collect::<StoreResult<Vec<_>>>()?;
            Ok(ReactionSummary {
                reaction: reaction.to_owned(),
                count: users.len() as i64,
                reacted: users.contains(user),
                users: users.into_iter().take(REACTION_USERS_SHOWN as usize).collect(),
            })
        }

        /// Entries whose last message `user` deleted for themselves show the last one they
        /// did not delete (or none).
        async fn with_visible_last_messages(
            store: &$store,
            app: &AppId,
            user: &UserId,
            mut entries: Vec<ConversationEntry>,
        ) -> StoreResult<Vec<ConversationEntry>> {
            let last: Vec<MsgId> = entries
                .iter()
                .filter_map(|e| e.last_message.as_ref().map(|m| m.msg_id.clone()))
                .collect();
            if last.is_empty() {
                return Ok(entries);
            }
            let hidden: HashSet<MsgId> = store.deleted_for_user(app, user, &last).await?.into_iter().collect();
            if hidden.is_empty() {
                return Ok(entries);
            }
            for e in &mut entries {
                if !e.last_message.as_ref().is_some_and(|m| hidden.contains(&m.msg_id)) {
                    continue;
                }
                let page = store
                    .visible_messages(app, &e.conversation_id, user, SeqRange::Before(i64::MAX), 1)
                    .await?;
                e.last_message = page.into_iter().next();
            }
            Ok(entries)
        }
        // ---- rooms and broadcasts: row readers and helpers -----------------------------
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
    };
}

pub(crate) use sql_store;
