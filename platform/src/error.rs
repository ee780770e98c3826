//! `DeliveryError`: what a send, recall, read or history query can fail with, each with the
//! stable code the doors answer.

use crate::domain::ContentError;
use crate::ids::IdError;
use crate::store::StoreError;

/// What can go wrong with a send, recall, read or history query, in the pipeline's terms.
/// `code()` is the stable snake_case code callers see (listed in docs/errors.md).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    ContentTooLarge(String),
    /// Something the caller named does not exist in its app (or is not theirs to see:
    /// the two are indistinguishable on purpose).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("the sender is banned")]
    SenderBanned,
    #[error("the sender is muted")]
    SenderMuted,
    #[error("the recipient has blocked the sender")]
    Blocked,
    /// The app requires friendship for direct messages and the two are not friends.
    #[error("the sender and the recipient are not friends")]
    NotFriends,
    /// The change exists already (a friend request between friends).
    #[error("{0}")]
    Conflict(String),
    #[error("the recall window of this message has passed")]
    RecallWindowPassed,
    /// A word of one of the app's `reject` word lists occurs in the content.
    #[error("the message contains a word the app does not allow")]
    ContentRejected,
    #[error("rejected by the app's before-send webhook: {0}")]
    MessageRejected(String),
    #[error("the app's before-send webhook is unavailable and its policy is fail_closed")]
    WebhookUnavailable,
    #[error("too many messages; retry later")]
    RateLimited { retry_after_ms: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
    // ---- message lifecycle ----
    #[error("the edit window of this message has passed")]
    EditWindowPassed,
    /// A recalled message takes no edits, extensions, reactions or replies.
    #[error("the message is recalled")]
    MessageRecalled,
    /// A compare-and-set found another version than the one expected.
    #[error("{0}")]
    VersionConflict(String),
    /// A per-message limit (extension keys, reactions) would be passed.
    #[error("{0}")]
    LimitExceeded(String),
    // ---- groups ----
    /// Users named in a group operation that do not exist in the app.
    #[error("users not found: {}", .0.join(", "))]
    UsersNotFound(Vec<String>),
    /// The group has as many members as the app allows.
    #[error("{0}")]
    GroupFull(String),
    /// The sender is muted in this group until `until`.
    #[error("the sender is muted in this group until {until}")]
    MemberMuted { until: i64 },
    /// The group is muted: only its owner and admins may send.
    #[error("the group is muted: only its owner and admins may send")]
    GroupMuted,
    /// Read counts are kept only for groups up to the app's `group_read_receipt_limit`.
    #[error("{0}")]
    ReceiptsUnavailable(String),
    // ---- offline push ----
    /// Provider credentials that do not parse, or whose key does not load and sign.
    #[error("{0}")]
    InvalidPushCredentials(String),
    /// A push needs credentials the app has not set for the device's provider.
    #[error("{0}")]
    PushNotConfigured(String),
}

impl DeliveryError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "invalid_argument",
            Self::ContentTooLarge(_) => "content_too_large",
            Self::NotFound(_) => "not_found",
            Self::Forbidden(_) => "forbidden",
            Self::SenderBanned => "user_banned",
            Self::SenderMuted => "user_muted",
            Self::Blocked => "blocked",
            Self::NotFriends => "not_friends",
            Self::Conflict(_) => "conflict",
            Self::RecallWindowPassed => "recall_window_passed",
            Self::ContentRejected => "content_rejected",
            Self::MessageRejected(_) => "message_rejected",
            Self::WebhookUnavailable => "webhook_unavailable",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
            // ---- message lifecycle ----
            Self::EditWindowPassed => "edit_window_passed",
            Self::MessageRecalled => "message_recalled",
            Self::VersionConflict(_) => "version_conflict",
            Self::LimitExceeded(_) => "limit_exceeded",
            Self::UsersNotFound(_) => "not_found",
            Self::GroupFull(_) => "group_full",
            Self::MemberMuted { .. } => "member_muted",
            Self::GroupMuted => "group_muted",
            Self::ReceiptsUnavailable(_) => "receipts_unavailable",
            Self::InvalidPushCredentials(_) => "invalid_push_credentials",
            Self::PushNotConfigured(_) => "push_not_configured",
        }
    }
}

impl From<StoreError> for DeliveryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(m) => Self::InvalidArgument(m),
            StoreError::Rejected(m) => Self::Forbidden(m),
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Database(m) => Self::Internal(m),
        }
    }
}

impl From<IdError> for DeliveryError {
    fn from(e: IdError) -> Self {
        Self::InvalidArgument(e.to_string())
    }
}

impl From<ContentError> for DeliveryError {
    fn from(e: ContentError) -> Self {
        match e {
            ContentError::Invalid(m) => Self::InvalidArgument(m),
            ContentError::TooLarge(_) => Self::ContentTooLarge(e.to_string()),
        }
    }
}
