//! Messages and conversations: the group commit that stores a batch of sends in one
//! transaction, history, and each user's conversation list with its read state and sync.

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::{NewOutboxEvent, StoreResult};

/// A message ready to be stored: validated, authorised, moderated and hooked.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub app_id: AppId,
    /// Pre-generated; kept only if the message is new (a duplicate returns the first one's).
    pub msg_id: MsgId,
    pub conversation_id: ConversationId,
    pub sender: Sender,
    pub client_msg_id: ClientMsgId,
    pub msg_type: MessageType,
    pub content: serde_json::Value,
    pub created_at: UnixMillis,
    /// Users whose conversation list must hold this conversation (both sides of a direct
    /// chat). Group members already have their entry; rooms keep none.
    pub participants: Vec<UserId>,
    /// After-events to write in the same transaction (the webhook outbox).
    pub events: Vec<NewOutboxEvent>,
    /// The message this one replies to, already checked to be of the same conversation.
    pub reply_to: Option<MsgId>,
    /// Group members mentioned by name: their entries are marked `mentioned` (the only
    /// member entries a group message writes).
    pub mentions: Vec<UserId>,
    /// Mentions everyone: marks the conversation, not each member's entry.
    pub mention_all: bool,
    /// Write the message to the push outbox, in the same transaction, for the push worker
    /// to notify the recipients who were offline (docs/push.md).
    pub push: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommitOutcome {
    Stored(Message),
    /// `(app, sender, client_msg_id)` was stored before: the first message, unchanged.
    Duplicate(Message),
}

impl CommitOutcome {
    pub fn message(&self) -> &Message {
        match self {
            Self::Stored(m) | Self::Duplicate(m) => m,
        }
    }
}

/// A seq window for history. Results are always in ascending seq order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqRange {
    /// Messages with seq > n, oldest first.
    After(i64),
    /// The `limit` messages just before seq n (exclusive), returned oldest first.
    Before(i64),
}

/// Sending, history, conversation lists, read state.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores a batch in ONE transaction (group commit). For each message, in order: if
    /// `(app, sender, client_msg_id)` was stored before (or earlier in this batch) the
    /// outcome is `Duplicate` with the first message and nothing is written; otherwise the
    /// conversation's seq is advanced by one (gapless), the message stored, entries of
    /// `participants` created if missing, the sender's read_seq moved to the new seq, the
    /// app's change version advanced, and `events` written to the outbox.
    async fn commit_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<CommitOutcome>>;
    async fn message(&self, app: &AppId, id: &MsgId) -> StoreResult<Option<Message>>;
    /// The message stored earlier under this idempotency key, if any. `sender_key` is
    /// `Sender::idempotency_key()`.
    async fn message_by_client_msg_id(
        &self,
        app: &AppId,
        sender_key: &str,
        client_msg_id: &ClientMsgId,
    ) -> StoreResult<Option<Message>>;
    async fn messages(
        &self,
        app: &AppId,
        conversation: &ConversationId,
        range: SeqRange,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// The user's conversations, most recently active first; `after` is the cursor
    /// `(updated_at, conversation id)` of the last entry of the previous page.
    async fn conversations(
        &self,
        app: &AppId,
        user: &UserId,
        after: Option<(UnixMillis, String)>,
        limit: u32,
    ) -> StoreResult<Vec<ConversationEntry>>;
    async fn conversation(
        &self,
        app: &AppId,
        user: &UserId,
        id: &ConversationId,
    ) -> StoreResult<Option<ConversationEntry>>;
    /// Entries whose version is above `version`, lowest version first (for sync).
    async fn conversations_changed_since(
        &self,
        app: &AppId,
        user: &UserId,
        version: i64,
        limit: u32,
    ) -> StoreResult<Vec<ConversationEntry>>;
    /// Moves read_seq up to `seq` (clamped to last_seq; never down). `NotFound` if the user
    /// has no entry for the conversation.
    async fn mark_read(
        &self,
        app: &AppId,
        user: &UserId,
        id: &ConversationId,
        seq: i64,
    ) -> StoreResult<ConversationEntry>;
}

/// `impl MessageStore` for a SQL adapter, with the readers and steps only this area uses.
/// Expanded by `shared_sql::sql_store!` into the adapter's module, beside the other areas.
macro_rules! messages_sql {
    ($store:ty, $db:ty, $backend:expr) => {
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
                    // One index lookup per key: the keys drive the loop (SQLite keeps the
                    // order of a CROSS JOIN) and each meets the (app, sender, client id)
                    // unique index. `AND (sender_key, client_msg_id) IN (VALUES …)` read
                    // instead every message of the app, a commit growing with the store.
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {} FROM (VALUES ",
                        prefixed_message_columns("m", "")
                    ));
                    for (n, m) in chunk.iter().enumerate() {
                        qb.push(if n == 0 { "(" } else { ", (" });
                        qb.push_bind(m.sender.idempotency_key().to_owned());
                        qb.push(", ");
                        qb.push_bind(m.client_msg_id.as_str().to_owned());
                        qb.push(")");
                    }
                    qb.push(") AS v CROSS JOIN messages m WHERE m.app_id = ");
                    qb.push_bind(app.as_str().to_owned());
                    qb.push(" AND m.sender_key = v.column1 AND m.client_msg_id = v.column2");
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
            // 6. The push outbox: the worker finds who was offline and makes the jobs.
            let pushed: Vec<(&NewMessage, &Message)> = fresh
                .iter()
                .zip(&stored)
                .filter(|(&i, _)| batch[i].push)
                .map(|(&i, s)| (&batch[i], s))
                .collect();
            for chunk in pushed.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO push_outbox (app_id, msg_id, created_at, next_attempt_at) ",
                );
                qb.push_values(chunk, |mut row, (m, s)| {
                    row.push_bind(m.app_id.as_str())
                        .push_bind(s.msg_id.as_str())
                        .push_bind(m.created_at)
                        .push_bind(m.created_at);
                });
                qb.build().execute(&mut **tx).await.map_err(map_err)?;
            }
            Ok(stored)
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

        #[async_trait]
        impl $crate::store::MessageStore for $store {
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
        }
    };
}
pub(crate) use messages_sql;
