//! What users attach to a stored message: extension keys (versioned, set by compare and
//! swap) and reactions.

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::StoreResult;

#[derive(Debug, Clone, PartialEq)]
pub enum ExtensionsOutcome {
    Applied {
        message: Box<Message>,
        change: Box<MessageChange>,
        /// Every key set on the message now.
        extensions: Vec<Extension>,
    },
    Unchanged {
        extensions: Vec<Extension>,
    },
    /// `key`'s version is `version`, not the one expected: nothing was applied.
    Conflict {
        key: String,
        version: i64,
    },
    TooMany,
    Recalled,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReactionOutcome {
    Applied {
        message: Box<Message>,
        change: Box<MessageChange>,
        /// The reaction after the change, as the reacting user sees it.
        summary: ReactionSummary,
    },
    Unchanged {
        summary: ReactionSummary,
    },
    /// The message's or the user's reaction limit; the text says which.
    TooMany(String),
    Recalled,
}

/// Extensions and reactions on messages; each change is versioned and recorded like those
/// of `LifecycleStore`.
#[async_trait]
pub trait AnnotationStore: Send + Sync {
    /// Applies every update or none: a key whose version differs from its `expected_version`
    /// is a `Conflict`, more than `MAX_EXTENSIONS_PER_MESSAGE` keys `TooMany`. Deleting a key
    /// that is not set changes nothing; an update that changes nothing is `Unchanged`.
    async fn update_extensions(
        &self,
        app: &AppId,
        id: &MsgId,
        by: Option<&UserId>,
        updates: &[ExtensionUpdate],
        now: UnixMillis,
    ) -> StoreResult<ExtensionsOutcome>;
    /// The keys set on each of `ids` (deleted keys left out), by message then key.
    async fn message_extensions(&self, app: &AppId, ids: &[MsgId]) -> StoreResult<Vec<(MsgId, Extension)>>;
    /// Adds (`add`) or removes `user`'s `reaction` on a message; adding one held already or
    /// removing one not held is `Unchanged`. Past `MAX_REACTIONS_PER_MESSAGE` distinct
    /// reactions or `MAX_REACTIONS_PER_USER` of one user: `TooMany`.
    async fn set_reaction(
        &self,
        app: &AppId,
        id: &MsgId,
        user: &UserId,
        reaction: &str,
        add: bool,
        now: UnixMillis,
    ) -> StoreResult<ReactionOutcome>;
    /// Each reaction on each of `ids`, with its count, whether `reader` holds it, and its
    /// first `shown` users; by message, then by when the reaction was first used.
    async fn reaction_summaries(
        &self,
        app: &AppId,
        ids: &[MsgId],
        reader: Option<&UserId>,
        shown: u32,
    ) -> StoreResult<Vec<(MsgId, ReactionSummary)>>;
    /// Who reacted with `reaction`, earliest first, after the `(reacted_at, user)` cursor.
    async fn reaction_users(
        &self,
        app: &AppId,
        id: &MsgId,
        reaction: &str,
        after: Option<(UnixMillis, UserId)>,
        limit: u32,
    ) -> StoreResult<Vec<(UserId, UnixMillis)>>;
}

/// `impl AnnotationStore` for a SQL adapter, with the readers and steps only this area uses.
/// Expanded by `shared_sql::sql_store!` into the adapter's module, beside the other areas.
macro_rules! annotations_sql {
    ($store:ty, $db:ty, $backend:expr) => {
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

        #[async_trait]
        impl $crate::store::AnnotationStore for $store {
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
        }
    };
}
pub(crate) use annotations_sql;
