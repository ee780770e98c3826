//! Broadcasts: one notification to every user of an app, or to a list of users, as a job
//! that a worker runs in batches. The job is a row (state, progress, cursor), so it
//! survives restarts; each user's notification is keyed by the job, so a batch that runs
//! twice stores nothing twice.

use serde::{Deserialize, Serialize};

use super::{MessageType, UnixMillis};
use crate::ids::UserId;

/// Most users one broadcast may name (a larger audience is "every user").
pub const MAX_BROADCAST_RECIPIENTS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum BroadcastState {
    /// Queued or in progress: a worker takes it batch by batch.
    Running,
    /// Every user was reached (or counted as failed).
    Done,
    /// Stopped by the app; users reached before keep their notification.
    Cancelled,
    /// Stopped by Tern (its app is gone); `error` says why.
    Failed,
}

impl BroadcastState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// Whom a broadcast reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Every user of the app, by id, including users created while the job runs whose id
    /// sorts after the job's position.
    AllUsers,
    /// These users, in this order (distinct).
    Users(Vec<UserId>),
}

impl Audience {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AllUsers => "all",
            Self::Users(_) => "list",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewBroadcast {
    /// `bc_` + ULID.
    pub id: String,
    /// The caller's `client_msg_id`, or `id`: a second start with the same key is the same job.
    pub request_key: String,
    pub msg_type: MessageType,
    /// Validated and filtered once, at the start.
    pub content: serde_json::Value,
    pub audience: Audience,
    pub created_at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub id: String,
    pub request_key: String,
    pub msg_type: MessageType,
    pub content: serde_json::Value,
    pub audience: Audience,
    pub state: BroadcastState,
    /// Every user: the last user id done (`None` before the first batch).
    pub after_user: Option<UserId>,
    /// A list: the index of the next user to reach.
    pub next_index: i64,
    /// The list's length; `None` for every user (not known until the end).
    pub total: Option<i64>,
    /// Users handled so far: `sent + failed`.
    pub users_seen: i64,
    /// Users whose notification is stored.
    pub sent: i64,
    /// Users who could not be reached (not a user of the app).
    pub failed: i64,
    pub error: Option<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub finished_at: Option<UnixMillis>,
}

/// One batch's worth of progress, recorded with the cursor in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastStep {
    pub after_user: Option<UserId>,
    pub next_index: i64,
    pub seen: i64,
    pub sent: i64,
    pub failed: i64,
    /// The job is finished with this batch.
    pub done: bool,
    pub now: UnixMillis,
    /// When the job may be taken again: now, or later to keep the app's broadcast rate.
    pub next_run_at: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in [
            BroadcastState::Running,
            BroadcastState::Done,
            BroadcastState::Cancelled,
            BroadcastState::Failed,
        ] {
            assert_eq!(BroadcastState::parse(s.as_str()), Some(s));
        }
        assert_eq!(BroadcastState::parse("paused"), None);
    }
}
