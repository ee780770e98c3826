//! Messages through the server API: one sender to many users, a conversation's history by
//! seq range, and messages read by id for the doors that check something of a message
//! before an operation on it.

use sha2::{Digest, Sha256};

use crate::context::Ctx;
use crate::delivery::{clamp_limit, Actor, DeliveryError, Pipeline, Recipient, SendRequest};
use crate::domain::{App, Message, MessageType, SendReceipt, Sender, Source};
use crate::ids::{ClientMsgId, ConversationId, MsgId, UserId};
use crate::store::SeqRange;

/// The message as stored; `not_found` ("message not found") if the app has none by `id`.
pub async fn get(p: &Pipeline, app: &App, id: &MsgId) -> Result<Message, DeliveryError> {
    p.store()
        .message(&app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("message"))
}

/// Most users one batch send reaches.
pub const MAX_BATCH_RECIPIENTS: usize = 500;

/// A batch names 1 to `MAX_BATCH_RECIPIENTS` users (a door asks before it parses the ids,
/// so a list too long is refused whatever its ids).
pub fn check_batch(recipients: usize) -> Result<(), DeliveryError> {
    if !(1..=MAX_BATCH_RECIPIENTS).contains(&recipients) {
        return Err(DeliveryError::InvalidArgument(format!(
            "to must hold 1 to {MAX_BATCH_RECIPIENTS} users"
        )));
    }
    Ok(())
}

/// One sender to many users, each getting their own direct message.
#[derive(Debug, Clone)]
pub struct BatchSend {
    pub from: UserId,
    pub to: Vec<UserId>,
    /// Keys the whole batch: each recipient's message is keyed by it and the recipient.
    pub client_msg_id: Option<ClientMsgId>,
    pub msg_type: MessageType,
    pub content: serde_json::Value,
}

/// Key of one recipient's message within a keyed batch: stable, at most 64 characters.
fn batch_key(batch_key: &ClientMsgId, to: &UserId) -> Result<ClientMsgId, DeliveryError> {
    let digest = Sha256::digest(format!("{}\u{0}{}", batch_key.as_str(), to.as_str()).as_bytes());
    Ok(ClientMsgId::parse(&format!("batch-{}", &hex::encode(digest)[..40]))?)
}

/// Sends the batch through the pipeline, each recipient's message on its own: the answer
/// holds, in the order of `to`, each recipient with its receipt or why it failed.
pub async fn send_batch(
    p: &Pipeline,
    app: &App,
    batch: BatchSend,
) -> Result<Vec<(UserId, Result<SendReceipt, DeliveryError>)>, DeliveryError> {
    check_batch(batch.to.len())?;
    let BatchSend {
        from,
        to,
        client_msg_id,
        msg_type,
        content,
    } = batch;
    let sends = to.into_iter().map(|to| {
        let request = client_msg_id
            .as_ref()
            .map(|k| batch_key(k, &to))
            .transpose()
            .map(|client_msg_id| SendRequest {
                sender: Sender::User(from.clone()),
                to: Recipient::User(to.clone()),
                client_msg_id,
                msg_type,
                content: content.clone(),
                source: Source::ServerApi,
                options: Default::default(),
            });
        async move {
            let result = match request {
                Ok(r) => p.send(app, r).await,
                Err(e) => Err(e),
            };
            (to, result)
        }
    });
    // Concurrent, so the group-commit writer can batch them.
    Ok(futures::future::join_all(sends).await)
}

/// A conversation's messages by seq range, in seq order: after `after_seq` (default 0), or
/// the page just before `before_seq`; giving both is `invalid_argument`.
pub async fn history(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    conversation: &ConversationId,
    after_seq: Option<i64>,
    before_seq: Option<i64>,
    limit: u32,
) -> Result<Vec<Message>, DeliveryError> {
    let range = match (after_seq, before_seq) {
        (Some(_), Some(_)) => {
            return Err(DeliveryError::InvalidArgument(
                "give after_seq or before_seq, not both".into(),
            ))
        }
        (_, Some(b)) => SeqRange::Before(b),
        (a, None) => SeqRange::After(a.unwrap_or(0)),
    };
    history_range(p, app, actor, conversation, range, limit).await
}

/// History of a conversation in seq order. Users see only conversations they are in,
/// and in groups only what was sent after they joined.
pub async fn history_range(
    p: &Ctx,
    app: &App,
    actor: &Actor,
    conversation: &ConversationId,
    range: SeqRange,
    limit: u32,
) -> Result<Vec<Message>, DeliveryError> {
    let limit = clamp_limit(limit);
    let mut range = match range {
        SeqRange::After(n) if n < 0 => {
            return Err(DeliveryError::InvalidArgument("after_seq must be 0 or more".into()))
        }
        SeqRange::Before(n) if n < 1 => {
            return Err(DeliveryError::InvalidArgument("before_seq must be 1 or more".into()))
        }
        r => r,
    };
    if let Actor::User(u) = actor {
        match conversation {
            ConversationId::Group(g) => {
                let m = p
                    .store()
                    .group_member(&app.id, g, u)
                    .await?
                    .ok_or(DeliveryError::NotFound("conversation"))?;
                if let SeqRange::After(n) = range {
                    range = SeqRange::After(n.max(m.joined_seq));
                }
                let mut msgs = p
                    .store()
                    .visible_messages(&app.id, conversation, u, range, limit)
                    .await?;
                msgs.retain(|msg| msg.seq > m.joined_seq);
                crate::lifecycle::decorate(p, app, Some(u), &mut msgs).await?;
                return Ok(msgs);
            }
            _ if !p.can_read(app, u, conversation).await? => return Err(DeliveryError::NotFound("conversation")),
            _ => {
                // Without what the user deleted for themselves. A conversation they
                // can read exists, even if everything in it is deleted for them.
                let mut msgs = p
                    .store()
                    .visible_messages(&app.id, conversation, u, range, limit)
                    .await?;
                if msgs.is_empty()
                    && p.store()
                        .messages(&app.id, conversation, SeqRange::After(0), 1)
                        .await?
                        .is_empty()
                {
                    return Err(DeliveryError::NotFound("conversation"));
                }
                crate::lifecycle::decorate(p, app, Some(u), &mut msgs).await?;
                return Ok(msgs);
            }
        }
    }
    let mut msgs = p.store().messages(&app.id, conversation, range, limit).await?;
    if msgs.is_empty()
        && p.store()
            .messages(&app.id, conversation, SeqRange::After(0), 1)
            .await?
            .is_empty()
    {
        // A conversation without a single message does not exist (in this app).
        return Err(DeliveryError::NotFound("conversation"));
    }
    crate::lifecycle::decorate(p, app, None, &mut msgs).await?;
    Ok(msgs)
}

/// Recalls a message: by the server API at any time, by its sender within the app's recall
/// window, by a group's owner and admins at any time (`lifecycle::recall`).
pub async fn recall(p: &Ctx, app: &App, actor: &Actor, msg_id: &MsgId) -> Result<Message, DeliveryError> {
    crate::lifecycle::recall(p, app, actor, msg_id).await
}
