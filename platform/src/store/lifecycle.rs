//! What happens to a stored message afterwards (docs/messages.md): recall, edit, delete for
//! one user, and the log of changes that devices which were away sync from.

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::{NewOutboxEvent, SeqRange, StoreResult};

#[derive(Debug, Clone, PartialEq)]
pub enum RecallOutcome {
    /// Recalled now; `version` is the recall's change version.
    Recalled(Message),
    AlreadyRecalled(Message),
}

#[derive(Debug, Clone, PartialEq)]
pub enum EditOutcome {
    Edited(Box<Message>),
    /// A recalled message cannot be edited.
    Recalled,
}

/// Recall, edit, delete for one user, and the change log. Every change takes the app's next
/// change version, stamps the message with it, bumps the conversation's version (only the
/// user's entry, for a delete for one user) and records the change, in one transaction, so
/// that devices that were away find it.
#[async_trait]
pub trait LifecycleStore: Send + Sync {
    /// Marks the message recalled and drops its content, extensions and reactions (and its
    /// earlier change records), takes a change version for it (recorded with `by` at `now`),
    /// bumps the conversation's version, and writes `events`, in one transaction. A message
    /// recalled before is answered as it is, unchanged. `NotFound` for no such message.
    async fn recall_message(
        &self,
        app: &AppId,
        id: &MsgId,
        by: Option<&UserId>,
        now: UnixMillis,
        events: &[NewOutboxEvent],
    ) -> StoreResult<RecallOutcome>;
    /// The messages of this app among `ids`, in no particular order.
    async fn messages_by_ids(&self, app: &AppId, ids: &[MsgId]) -> StoreResult<Vec<Message>>;
    /// `messages`, leaving out what `user` deleted for themselves.
    async fn visible_messages(
        &self,
        app: &AppId,
        conversation: &ConversationId,
        user: &UserId,
        range: SeqRange,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// Of `ids`, those `user` deleted for themselves.
    async fn deleted_for_user(&self, app: &AppId, user: &UserId, ids: &[MsgId]) -> StoreResult<Vec<MsgId>>;
    /// Replaces the content of a message that is not recalled and sets `edited_at`, with
    /// `events`. `NotFound` for no such message.
    async fn edit_message(
        &self,
        app: &AppId,
        id: &MsgId,
        edit: &MessageEdit,
        events: &[NewOutboxEvent],
    ) -> StoreResult<EditOutcome>;
    /// Hides `messages` (already checked to be visible to `user`) from `user`: each one not
    /// hidden before takes its own change version, and the user's entries of their
    /// conversations are bumped. Returns a `Deleted` change per message newly hidden.
    async fn delete_for_user(
        &self,
        app: &AppId,
        user: &UserId,
        messages: &[Message],
        now: UnixMillis,
    ) -> StoreResult<Vec<MessageChange>>;
    /// The changes of one conversation after `since`, as `user` sees them (their own
    /// deletions included, changes to messages they deleted left out), lowest version first.
    async fn message_changes(
        &self,
        app: &AppId,
        conversation: &ConversationId,
        user: &UserId,
        since: i64,
        limit: u32,
    ) -> StoreResult<Vec<MessageChange>>;
}

/// `impl LifecycleStore` for a SQL adapter, with the readers and steps only this area uses.
/// Expanded by `shared_sql::sql_store!` into the adapter's module, beside the other areas.
macro_rules! lifecycle_sql {
    ($store:ty, $db:ty, $backend:expr) => {
        /// Deletes a conversation's messages and what the lifecycle keeps of them (reactions,
        /// extensions, changes, deletions for users): a dismissed group or room leaves none.
        async fn delete_conversation_messages(tx: &mut Tx<'_>, app: &AppId, conversation: &str) -> StoreResult<()> {
            // The files sent here lose these messages: the files sweep deletes them after
            // the grace period unless another conversation still uses them.
            sqlx::query::<$db>(
                "UPDATE files SET released_at = $3 WHERE app_id = $1 AND released_at IS NULL AND id IN \
                 (SELECT file_id FROM file_refs WHERE app_id = $1 AND conversation_id = $2)",
            )
            .bind(app.as_str())
            .bind(conversation)
            .bind(now_ms())
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
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
                sqlx::query::<$db>(&format!(
                    "DELETE FROM {table} WHERE app_id = $1 AND conversation_id = $2"
                ))
                .bind(app.as_str())
                .bind(conversation)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
            }
            Ok(())
        }

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

        #[async_trait]
        impl $crate::store::LifecycleStore for $store {
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
                record_change(
                    &mut tx,
                    app,
                    &message,
                    version,
                    "recall",
                    by,
                    &serde_json::json!({}),
                    now,
                )
                .await?;
                touch_conversation(&mut tx, app, &message.conversation_id, version).await?;
                insert_events(&mut tx, events).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(RecallOutcome::Recalled(message))
            }

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
                let mut out = rows
                    .iter()
                    .map(required_message)
                    .collect::<StoreResult<Vec<_>>>()?;
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
                record_kind(
                    &mut tx,
                    app,
                    &message,
                    version,
                    &kind,
                    edit.by.as_ref(),
                    edit.edited_at,
                )
                .await?;
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
                let mut hidden: HashSet<MsgId> = deleted_among(&mut *tx, app, user, &ids)
                    .await?
                    .into_iter()
                    .collect();
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
        }
    };
}
pub(crate) use lifecycle_sql;
