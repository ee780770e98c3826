//! The message lifecycle from the `Client`: replies, edits, deletes for this user,
//! extensions and reactions (docs/messages.md). What others change arrives as
//! `Event::Changed`, live and, after a reconnect, for what changed meanwhile.

use crate::client::{unexpected, Client};
use crate::content::json_to_struct;
use crate::proto as pb;
use crate::types::{ClientError, Extension, Message, ReactionSummary, SendAck, Target};

use pb::client_frame::Command;
use pb::server_frame::Body;

/// One key of an extension update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionUpdate {
    pub key: String,
    /// `None` deletes the key.
    pub value: Option<String>,
    /// Apply only if the key is at this version now (0: never set).
    pub expected_version: Option<i64>,
}

impl ExtensionUpdate {
    pub fn set(key: &str, value: &str) -> Self {
        Self {
            key: key.to_owned(),
            value: Some(value.to_owned()),
            expected_version: None,
        }
    }

    pub fn delete(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            value: None,
            expected_version: None,
        }
    }

    /// Only if nobody changed the key since it was at `version` (`version_conflict` else).
    pub fn if_version(mut self, version: i64) -> Self {
        self.expected_version = Some(version);
        self
    }
}

/// A page of who reacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionUsers {
    /// `(user_id, reacted_at)`, earliest first.
    pub users: Vec<(String, i64)>,
    /// Pass back for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

impl Client {
    /// Sends a message that replies to (quotes) `reply_to`, a message of the same
    /// conversation. Retried across reconnects like `send`.
    pub async fn reply(
        &self,
        to: Target,
        reply_to: &str,
        msg_type: &str,
        content: serde_json::Value,
    ) -> Result<SendAck, ClientError> {
        let mut send = Self::send_frame(to, msg_type, content, &crate::client::new_client_msg_id())?;
        send.reply_to = reply_to.to_owned();
        self.send_prepared(send).await
    }

    /// Replaces the content of one of this user's messages (within the app's edit window);
    /// returns it as stored. Everyone in the conversation gets `Event::Changed`.
    pub async fn edit(&self, msg_id: &str, content: serde_json::Value) -> Result<Message, ClientError> {
        let content = json_to_struct(&content)
            .ok_or_else(|| ClientError::InvalidArgument("content must be a JSON object".into()))?;
        let cmd = Command::EditMessage(pb::EditMessage {
            msg_id: msg_id.to_owned(),
            content: Some(content),
        });
        match self.request(cmd).await? {
            Body::EditResult(m) => Ok(Message::from(&m)),
            _ => Err(unexpected()),
        }
    }

    /// Deletes 1 to 100 messages for this user only, on all their devices.
    pub async fn delete_for_me(&self, msg_ids: &[&str]) -> Result<(), ClientError> {
        let cmd = Command::DeleteMessages(pb::DeleteMessages {
            msg_ids: msg_ids.iter().map(|s| (*s).to_owned()).collect(),
        });
        self.request(cmd).await.map(|_| ())
    }

    /// Sets and deletes extension keys of a message, all or none. Returns every key set
    /// on it now.
    pub async fn update_extensions(
        &self,
        msg_id: &str,
        updates: &[ExtensionUpdate],
    ) -> Result<Vec<Extension>, ClientError> {
        let cmd = Command::UpdateExtensions(pb::UpdateExtensions {
            msg_id: msg_id.to_owned(),
            updates: updates
                .iter()
                .map(|u| pb::ExtensionUpdate {
                    key: u.key.clone(),
                    value: u.value.clone(),
                    expected_version: u.expected_version,
                })
                .collect(),
        });
        match self.request(cmd).await? {
            Body::ExtensionsResult(r) => Ok(r.extensions.iter().map(Extension::from).collect()),
            _ => Err(unexpected()),
        }
    }

    /// Adds this user's reaction (an emoji or a short string); returns it as it is now.
    pub async fn add_reaction(&self, msg_id: &str, reaction: &str) -> Result<ReactionSummary, ClientError> {
        let cmd = Command::AddReaction(pb::AddReaction {
            msg_id: msg_id.to_owned(),
            reaction: reaction.to_owned(),
        });
        match self.request(cmd).await? {
            Body::ReactionResult(r) => Ok(ReactionSummary::from(&r)),
            _ => Err(unexpected()),
        }
    }

    pub async fn remove_reaction(&self, msg_id: &str, reaction: &str) -> Result<ReactionSummary, ClientError> {
        let cmd = Command::RemoveReaction(pb::RemoveReaction {
            msg_id: msg_id.to_owned(),
            reaction: reaction.to_owned(),
        });
        match self.request(cmd).await? {
            Body::ReactionResult(r) => Ok(ReactionSummary::from(&r)),
            _ => Err(unexpected()),
        }
    }

    /// Who reacted with `reaction`, earliest first, a page at a time.
    pub async fn reaction_users(
        &self,
        msg_id: &str,
        reaction: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ReactionUsers, ClientError> {
        let cmd = Command::ListReactionUsers(pb::ListReactionUsers {
            msg_id: msg_id.to_owned(),
            reaction: reaction.to_owned(),
            cursor: cursor.unwrap_or("").to_owned(),
            limit,
        });
        match self.request(cmd).await? {
            Body::ReactionUsers(r) => Ok(ReactionUsers {
                users: r.users.into_iter().map(|u| (u.user_id, u.reacted_at)).collect(),
                next_cursor: (!r.next_cursor.is_empty()).then_some(r.next_cursor),
            }),
            _ => Err(unexpected()),
        }
    }
}
