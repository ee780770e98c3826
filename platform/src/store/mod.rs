//! The Store port: everything Tern keeps durably. Two adapters implement it, `sqlite`
//! (the embedded default) and `postgres` (at scale); `tests/store_conformance.rs` runs the
//! same suite against both.
//!
//! Every method that touches tenant data takes the `AppId` and scopes its query by it: one
//! app can never read or change another app's rows, whatever ids it passes.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::*;
use crate::ids::*;

mod lifecycle;
pub mod postgres;
mod shared_sql;
pub mod sqlite;
pub mod testing;

pub use lifecycle::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (duplicate app name in a tenant, group id taken, ...).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A row the operation needs does not exist in this app's scope.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The operation is not allowed by the state of the data (e.g. group full).
    #[error("{0}")]
    Rejected(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A new app with its first secret, both secrets already encrypted by the caller.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub id: AppId,
    pub tenant_id: TenantId,
    pub name: String,
    pub app_key: AppKey,
    pub settings: AppSettings,
    pub first_secret: AppSecretRecord,
    /// `SecretBox::seal` of the webhook secret, app id as associated data.
    pub webhook_secret_ciphertext: Vec<u8>,
}

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

/// An admin's answer to a join request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinAnswer {
    /// The user becomes a member if the group has fewer than `member_limit`.
    Accept {
        member_limit: usize,
    },
    Decline,
}

/// A change to one member's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// `Admin` or `Member`; the owner's role changes only by a transfer.
    Role(GroupRole),
    /// Muted until then; `None` lifts the mute.
    Mute(Option<UnixMillis>),
}

/// A webhook after-event to be delivered at least once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOutboxEvent {
    /// `wh_` + ULID; the `X-Tern-Webhook-Id` on every attempt.
    pub id: String,
    pub app_id: AppId,
    pub event_type: String,
    /// The full JSON body that is POSTed (SIGNING.md §3), fixed at creation.
    pub body: String,
    pub created_at: UnixMillis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    Pending,
    Delivered,
    Dead,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    pub id: String,
    pub app_id: AppId,
    pub event_type: String,
    pub body: String,
    pub created_at: UnixMillis,
    pub state: OutboxState,
    pub attempts: i32,
    pub next_attempt_at: UnixMillis,
    pub last_error: Option<String>,
}

#[derive(Clone, PartialEq)]
pub struct AdminRecord {
    pub id: i64,
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_at: UnixMillis,
}

impl std::fmt::Debug for AdminRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    // ---- lifecycle -------------------------------------------------------------------
    /// Applies pending migrations of this adapter.
    async fn migrate(&self) -> StoreResult<()>;
    /// The database answers and every migration this binary knows is applied.
    async fn ready(&self) -> StoreResult<bool>;
    /// Some stored ciphertext (an app secret), so startup can prove the master key opens it.
    async fn sample_ciphertext(&self) -> StoreResult<Option<(AppId, Vec<u8>)>>;

    // ---- tenants ---------------------------------------------------------------------
    /// `Conflict` if the name is taken.
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>>;
    async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>>;
    async fn set_tenant_status(&self, id: &TenantId, status: TenantStatus) -> StoreResult<()>;
    async fn list_tenants(&self, after: Option<&TenantId>, limit: u32) -> StoreResult<Vec<Tenant>>;

    // ---- apps and their secrets ------------------------------------------------------
    /// `Conflict` if the tenant already has an app of that name; `NotFound` for no tenant.
    async fn create_app(&self, app: &NewApp) -> StoreResult<App>;
    async fn app(&self, id: &AppId) -> StoreResult<Option<App>>;
    async fn app_by_key(&self, key: &AppKey) -> StoreResult<Option<App>>;
    async fn list_apps(&self, tenant: &TenantId) -> StoreResult<Vec<App>>;
    async fn update_app_settings(&self, id: &AppId, settings: &AppSettings) -> StoreResult<()>;
    async fn set_app_status(&self, id: &AppId, status: AppStatus) -> StoreResult<()>;
    /// Every secret of the app not yet expired at `now`, newest first.
    async fn active_app_secrets(&self, app: &AppId, now: UnixMillis) -> StoreResult<Vec<AppSecretRecord>>;
    /// Adds a secret; every other active one expires at `others_expire_at` (the grace
    /// period) unless it already expires sooner. Secrets that would leave more than two
    /// active are expired at once, oldest first.
    async fn add_app_secret(&self, secret: &AppSecretRecord, others_expire_at: UnixMillis) -> StoreResult<()>;
    /// Expires one secret now. `Rejected` if it is the app's last active secret.
    async fn revoke_app_secret(&self, app: &AppId, id: &SecretId, now: UnixMillis) -> StoreResult<()>;
    async fn webhook_secret_ciphertext(&self, app: &AppId) -> StoreResult<Option<Vec<u8>>>;
    /// The app's webhook secrets still valid at `now`, newest first: the current one, and the
    /// one it replaced until that one's grace period ends. Empty for no such app.
    async fn webhook_secret_ciphertexts(&self, app: &AppId, now: UnixMillis) -> StoreResult<Vec<Vec<u8>>>;
    /// Makes `ciphertext` the current webhook secret; the current one stays valid until
    /// `previous_expires_at` (a previous one still in its grace period is dropped).
    /// `NotFound` for no such app.
    async fn rotate_webhook_secret(
        &self,
        app: &AppId,
        ciphertext: &[u8],
        previous_expires_at: UnixMillis,
    ) -> StoreResult<()>;

    // ---- users -----------------------------------------------------------------------
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
    /// `NotFound` if the user does not exist.
    async fn delete_user(&self, app: &AppId, id: &UserId) -> StoreResult<()>;
    async fn set_user_ban(&self, app: &AppId, id: &UserId, until: Option<UnixMillis>) -> StoreResult<()>;
    async fn revoke_user_tokens(&self, app: &AppId, id: &UserId, before: UnixMillis) -> StoreResult<()>;

    // ---- messages and conversations --------------------------------------------------
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

    // ---- message lifecycle (docs/messages.md) ------------------------------------------
    // Every change takes the app's next change version, stamps the message with it, bumps
    // the conversation's version (only the user's entry, for a delete for one user) and
    // records the change, in one transaction, so that devices that were away find it.
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

    // ---- groups ----------------------------------------------------------------------
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

    // ---- webhook outbox --------------------------------------------------------------
    async fn enqueue_events(&self, events: &[NewOutboxEvent]) -> StoreResult<()>;
    /// Pending events due at `now`, oldest first.
    async fn due_events(&self, now: UnixMillis, limit: u32) -> StoreResult<Vec<OutboxEvent>>;
    async fn mark_event_delivered(&self, id: &str, attempts: i32) -> StoreResult<()>;
    async fn reschedule_event(
        &self,
        id: &str,
        attempts: i32,
        next_attempt_at: UnixMillis,
        error: &str,
    ) -> StoreResult<()>;
    async fn mark_event_dead(&self, id: &str, attempts: i32, error: &str) -> StoreResult<()>;
    async fn dead_events(&self, app: &AppId, after: Option<&str>, limit: u32) -> StoreResult<Vec<OutboxEvent>>;
    /// Puts a dead event of this app back to pending, due now. `NotFound` otherwise.
    async fn redeliver_event(&self, app: &AppId, id: &str, now: UnixMillis) -> StoreResult<()>;

    // ---- platform admins ------------------------------------------------------------
    async fn admin_count(&self) -> StoreResult<i64>;
    async fn create_admin(&self, email: &str, password_hash: &str, now: UnixMillis) -> StoreResult<AdminRecord>;
    async fn admin_by_email(&self, email: &str) -> StoreResult<Option<AdminRecord>>;

    // ---- moderation -----------------------------------------------------------------
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

    // ---- webhook claims (several workers on one database) ----------------------------
    /// Takes up to `limit` pending events due at `now`, oldest first, and leases them: each
    /// is moved to `next_attempt_at = now + lease_ms`, so no other worker takes it until the
    /// lease runs out (or the holder records an outcome). Concurrent callers never get the
    /// same event from one call each (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one
    /// `UPDATE ... RETURNING` under its single writer). A worker that dies holding a lease
    /// leaves the event to be claimed again when the lease ends: at least once, not at most.
    async fn claim_due_events(&self, now: UnixMillis, limit: u32, lease_ms: i64) -> StoreResult<Vec<OutboxEvent>>;
    /// Gives claimed, still pending events back, due at `at` (attempts and error kept), in
    /// one transaction. Returns how many were pending; ids that are not are skipped.
    async fn release_events(&self, ids: &[String], at: UnixMillis) -> StoreResult<u64>;
    // ---- friends and blocks ----------------------------------------------------------
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

    // ---- rooms and broadcasts --------------------------------------------------------
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

    /// Stores a new running broadcast, due now. If the app has one with the same
    /// `request_key`, nothing is stored and that one is returned. The flag says whether it
    /// was created.
    async fn create_broadcast(&self, app: &AppId, b: &NewBroadcast) -> StoreResult<(Broadcast, bool)>;
    async fn broadcast(&self, app: &AppId, id: &str) -> StoreResult<Option<Broadcast>>;
    /// The app's broadcasts, newest first, before the broadcast id `before`.
    async fn broadcasts(&self, app: &AppId, before: Option<&str>, limit: u32) -> StoreResult<Vec<Broadcast>>;
    /// Takes the running broadcast (of any app) that has waited longest and is due at `now`,
    /// and leases it to `owner` until `now + lease_ms`: no other caller gets it until the
    /// lease ends or the owner records a step. Returns it with its app.
    async fn claim_broadcast(
        &self,
        now: UnixMillis,
        lease_ms: i64,
        owner: &str,
    ) -> StoreResult<Option<(AppId, Broadcast)>>;
    /// Records one batch: moves the cursor, adds the counts, finishes the job when
    /// `step.done`, makes it due again at `step.next_run_at` (releasing the lease) and
    /// writes `events`, in one transaction. Only while `owner` holds the job and it is
    /// running: otherwise nothing changes and the answer is `false`.
    async fn advance_broadcast(
        &self,
        app: &AppId,
        id: &str,
        owner: &str,
        step: &BroadcastStep,
        events: &[NewOutboxEvent],
    ) -> StoreResult<bool>;
    /// Stops a running broadcast (`Cancelled`), or finishes it as `Failed` with `error`.
    /// A job already finished is returned unchanged. `NotFound` for no such broadcast.
    async fn stop_broadcast(
        &self,
        app: &AppId,
        id: &str,
        state: BroadcastState,
        error: Option<&str>,
        now: UnixMillis,
    ) -> StoreResult<Broadcast>;
}

/// Opens the store a URL names: `sqlite://path` (created if missing) or `postgres://...`.
/// Does not migrate.
pub async fn connect(url: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        sqlite::open(url).await
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        postgres::open(url).await
    } else {
        Err(StoreError::Rejected(format!(
            "unsupported database URL scheme in {:?}: use sqlite:// or postgres://",
            url.split(':').next().unwrap_or("")
        )))
    }
}
