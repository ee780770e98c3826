//! What the lifecycle methods of the `Store` answer when the data, not the database, decides:
//! a recalled message refuses changes, a stale version conflicts, a limit is reached, a
//! change that changes nothing is no change (no version, no push).

use crate::domain::{Extension, Message, MessageChange, ReactionSummary};

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
