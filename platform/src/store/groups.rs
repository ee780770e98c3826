//! Groups: one timeline shared by members with roles and mutes. Every change writes its
//! notices and after-events in the same transaction (`GroupRecord`).

use async_trait::async_trait;

use crate::domain::*;
use crate::ids::*;

use super::{NewOutboxEvent, StoreResult};

#[derive(Debug, Clone)]
pub struct NewGroup {
    pub id: GroupId,
    pub name: String,
    pub owner: UserId,
    /// Besides the owner; duplicates and the owner are ignored.
    pub members: Vec<UserId>,
    pub metadata: serde_json::Value,
    pub avatar_url: Option<String>,
    pub announcement: String,
    pub join_policy: JoinPolicy,
    pub member_limit: usize,
    /// Content of the system message that opens the group's timeline, if any.
    pub notice: Option<serde_json::Value>,
    /// After-events (`group.created`) written in the same transaction.
    pub events: Vec<NewOutboxEvent>,
}

/// What a group change writes besides the change itself, in the same transaction: a system
/// message in the group's timeline, system messages to single users (`s:<user>`), and
/// webhook after-events.
#[derive(Debug, Clone, Default)]
pub struct GroupRecord {
    /// Content of a `system` message appended to the group's timeline.
    pub notice: Option<serde_json::Value>,
    /// The member who made the change: the notice counts as read for them, as a sender's
    /// own message does.
    pub actor: Option<UserId>,
    /// `(user, content)`: a `system` message to that user's own `s:<user>` conversation,
    /// kept for them like any message (they are no longer in the group to read it there).
    pub personal: Vec<(UserId, serde_json::Value)>,
    pub events: Vec<NewOutboxEvent>,
}

/// Builds the record of a membership change from the users it actually changed, which only
/// the store knows inside its transaction.
pub type RecordFor<'a> = &'a (dyn Fn(&[UserId]) -> GroupRecord + Send + Sync);

/// A group change and the system messages it stored (to be pushed once it is committed).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupChange<T> {
    pub value: T,
    /// The message appended to the group's timeline.
    pub notice: Option<Message>,
    /// Messages to single users' `s:<user>` conversations.
    pub personal: Vec<Message>,
}

/// A change to one member's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// `Admin` or `Member`; the owner's role changes only by a transfer.
    Role(GroupRole),
    /// Muted until then; `None` lifts the mute.
    Mute(Option<UnixMillis>),
}

/// Groups, their members and profiles.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Creates the group with its owner and members (each member's entry starts after the
    /// group's opening notice, which they see). `Conflict` if the id is taken in the app;
    /// `Rejected` over the member limit.
    async fn create_group(&self, app: &AppId, group: &NewGroup, now: UnixMillis) -> StoreResult<GroupChange<Group>>;
    async fn group(&self, app: &AppId, id: &GroupId) -> StoreResult<Option<Group>>;
    /// Adds members (existing ones are skipped; a pending join request of an added user is
    /// marked accepted) and writes `record_for(added)`, in one transaction. Each added
    /// member sees the group's timeline from the record's notice on. Returns those actually
    /// added, in the caller's order. `NotFound` for no group; `Rejected` over the limit.
    async fn add_group_members(
        &self,
        app: &AppId,
        id: &GroupId,
        users: &[UserId],
        member_limit: usize,
        now: UnixMillis,
        record_for: RecordFor<'_>,
    ) -> StoreResult<GroupChange<Vec<UserId>>>;
    /// Removes a member (their conversation entry goes) and writes `record`, in one
    /// transaction. `NotFound` if the user is not a member; `Rejected` for the owner.
    async fn remove_group_member(
        &self,
        app: &AppId,
        id: &GroupId,
        user: &UserId,
        record: &GroupRecord,
        now: UnixMillis,
    ) -> StoreResult<GroupChange<()>>;
    async fn group_member(&self, app: &AppId, id: &GroupId, user: &UserId) -> StoreResult<Option<GroupMember>>;
    async fn group_members(
        &self,
        app: &AppId,
        id: &GroupId,
        after: Option<&UserId>,
        limit: u32,
    ) -> StoreResult<Vec<GroupMember>>;
    /// Every member's id, for fan-out.
    async fn group_member_ids(&self, app: &AppId, id: &GroupId) -> StoreResult<Vec<UserId>>;
    /// Changes the profile (the fields `patch` sets) and writes `record`, in one
    /// transaction. `NotFound` for no group.
    async fn update_group(
        &self,
        app: &AppId,
        id: &GroupId,
        patch: &GroupPatch,
        record: &GroupRecord,
        now: UnixMillis,
    ) -> StoreResult<GroupChange<Group>>;
    /// Changes a member's role or mute and writes `record`, in one transaction. `NotFound`
    /// if not a member; `Rejected` for the owner.
    async fn change_group_member(
        &self,
        app: &AppId,
        id: &GroupId,
        user: &UserId,
        change: MemberChange,
        record: &GroupRecord,
        now: UnixMillis,
    ) -> StoreResult<GroupChange<GroupMember>>;
    /// Makes member `to` the owner and `from` (the owner now) a member, and writes
    /// `record`, in one transaction. `NotFound` if `to` is not a member; `Rejected` if
    /// `from` is not the owner.
    async fn transfer_group_owner(
        &self,
        app: &AppId,
        id: &GroupId,
        from: &UserId,
        to: &UserId,
        record: &GroupRecord,
        now: UnixMillis,
    ) -> StoreResult<GroupChange<Group>>;
    /// Deletes the group, its members, their entries, its timeline and its join requests,
    /// and writes `record_for(members)` (a personal notice to each member), in one
    /// transaction. Returns the members it had. `NotFound` for no group.
    async fn dismiss_group(
        &self,
        app: &AppId,
        id: &GroupId,
        now: UnixMillis,
        record_for: RecordFor<'_>,
    ) -> StoreResult<GroupChange<Vec<UserId>>>;
    /// The groups `user` is a member of, by group id, after the group `after`.
    async fn user_groups(
        &self,
        app: &AppId,
        user: &UserId,
        after: Option<&GroupId>,
        limit: u32,
    ) -> StoreResult<Vec<Group>>;
    /// Every member's read position in the group's timeline (for read receipts).
    async fn group_read_positions(&self, app: &AppId, id: &GroupId) -> StoreResult<Vec<ReadPosition>>;
    /// The app's groups by id after `after` whose id starts with `query` or whose name
    /// contains it (both ignoring case, on every backend); every group for an empty `query`.
    async fn search_groups(
        &self,
        app: &AppId,
        query: &str,
        after: Option<&GroupId>,
        limit: u32,
    ) -> StoreResult<Vec<Group>>;
}

/// `impl GroupStore` for a SQL adapter, with the readers and steps only this area uses.
/// Expanded by `shared_sql::sql_store!` into the adapter's module, beside the other areas.
macro_rules! groups_sql {
    ($store:ty, $db:ty, $backend:expr) => {
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
                push: false,
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

        #[async_trait]
        impl $crate::store::GroupStore for $store {
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

            async fn search_groups(
                &self,
                app: &AppId,
                query: &str,
                after: Option<&GroupId>,
                limit: u32,
            ) -> StoreResult<Vec<Group>> {
                // LIKE's wildcards in the query match themselves.
                let escaped = query.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                let rows = sqlx::query::<$db>(&format!(
                    "SELECT {GROUP_COLUMNS} FROM groups WHERE app_id = $1 AND id > $2 \
                     AND (LOWER(id) LIKE LOWER($3) ESCAPE '\\' OR LOWER(name) LIKE LOWER($4) ESCAPE '\\') ORDER BY id LIMIT $5"
                ))
                .bind(app.as_str())
                .bind(after.map(GroupId::as_str).unwrap_or(""))
                .bind(format!("{escaped}%"))
                .bind(format!("%{escaped}%"))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(map_err)?;
                rows.iter().map(group_from_row).collect()
            }
        }
    };
}
pub(crate) use groups_sql;
