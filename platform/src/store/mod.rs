//! The Store port: everything Tern keeps durably, one narrow trait per area (tenancy, users,
//! messages, lifecycle, annotations, groups, join requests, friends, rooms, broadcasts,
//! webhooks, console, the operator API's tokens, push, files, alerts), gathered by `Store`. Each area's module holds its trait, its types and its SQL;
//! the SQL is written once for both adapters, `sqlite` (the embedded default) and `postgres`
//! (at scale), and `tests/store_conformance` runs the same suite against both.
//!
//! Every method that touches tenant data takes the `AppId` and scopes its query by it: one
//! app can never read or change another app's rows, whatever ids it passes.

mod alerts;
mod annotations;
mod broadcasts;
mod console;
mod files;
mod friends;
mod groups;
mod join_requests;
mod lifecycle;
mod maintenance;
mod messages;
mod operator_api;
pub mod postgres;
mod push;
mod rooms;
mod shared_sql;
pub mod sqlite;
mod tenancy;
pub mod testing;
mod users;
mod webhooks;

pub use alerts::AlertStore;
pub use annotations::{AnnotationStore, ExtensionsOutcome, ReactionOutcome};
pub use broadcasts::BroadcastStore;
pub use console::ConsoleStore;
pub use files::FileRecordStore;
pub use friends::FriendStore;
pub use groups::{GroupChange, GroupRecord, GroupStore, MemberChange, NewGroup, RecordFor};
pub use join_requests::{JoinAnswer, JoinRequestStore};
pub use lifecycle::{EditOutcome, LifecycleStore, RecallOutcome};
pub use maintenance::MaintenanceStore;
pub use messages::{CommitOutcome, MessageStore, NewMessage, SeqRange};
pub use operator_api::OperatorApiStore;
pub use push::PushStore;
pub use rooms::RoomStore;
pub use tenancy::{AdminRecord, NewApp, TenancyStore};
pub use users::UserStore;
pub use webhooks::{
    AttemptFilter, AttemptOutcome, NewOutboxEvent, OutboxEvent, OutboxState, WebhookAttempt, WebhookStore,
};

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

/// Everything Tern keeps durably: every area of the port. Any type that implements all the
/// areas is a `Store`; callers hold an `Arc<dyn Store>` and call any area's methods on it.
pub trait Store:
    MaintenanceStore
    + TenancyStore
    + UserStore
    + MessageStore
    + LifecycleStore
    + AnnotationStore
    + GroupStore
    + JoinRequestStore
    + FriendStore
    + RoomStore
    + BroadcastStore
    + WebhookStore
    + ConsoleStore
    + OperatorApiStore
    + PushStore
    + FileRecordStore
    + AlertStore
    + 'static
{
}

impl<T> Store for T where
    T: MaintenanceStore
        + TenancyStore
        + UserStore
        + MessageStore
        + LifecycleStore
        + AnnotationStore
        + GroupStore
        + JoinRequestStore
        + FriendStore
        + RoomStore
        + BroadcastStore
        + WebhookStore
        + ConsoleStore
        + OperatorApiStore
        + PushStore
        + FileRecordStore
        + AlertStore
        + ?Sized
        + 'static
{
}

/// The area traits, for code that calls store methods on a concrete adapter or a generic
/// `S: Store` (on `dyn Store` they resolve without it).
pub mod prelude {
    pub use super::{
        AlertStore, AnnotationStore, BroadcastStore, ConsoleStore, FileRecordStore, FriendStore, GroupStore,
        JoinRequestStore, LifecycleStore, MaintenanceStore, MessageStore, OperatorApiStore, PushStore, RoomStore,
        Store, TenancyStore, UserStore, WebhookStore,
    };
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
