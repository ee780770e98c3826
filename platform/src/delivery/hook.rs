//! The before-send hook as the pipeline sees it: the draft an app is shown and the verdict
//! it returns, behind a trait so delivery does not depend on the webhook client.

use async_trait::async_trait;

use crate::domain::{App, MessageType, Sender, Source};
use crate::ids::{ClientMsgId, ConversationId, MsgId};

/// What the before-send webhook is shown of a message that is about to be stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HookDraft {
    pub conversation_id: ConversationId,
    pub sender: Sender,
    pub client_msg_id: ClientMsgId,
    #[serde(rename = "type")]
    pub msg_type: MessageType,
    pub content: serde_json::Value,
    pub source: Source,
    /// Set when this is an edit: the message whose content would be replaced (the other
    /// fields are that message's, with the new content).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edit_of: Option<MsgId>,
}

/// The hook's verdict after the app's failure policy has been applied.
#[derive(Debug, Clone, PartialEq)]
pub enum HookDecision {
    Allow,
    Reject {
        reason: String,
    },
    Replace {
        content: serde_json::Value,
    },
    /// No usable answer and the policy is `fail_closed`.
    Unavailable,
}

/// The before-send webhook (SIGNING.md §3). Implemented in `crate::webhook`; the pipeline
/// calls it once per new message that the app's settings select.
#[async_trait]
pub trait BeforeSendHook: Send + Sync + 'static {
    async fn check(&self, app: &App, draft: &HookDraft) -> HookDecision;
}
