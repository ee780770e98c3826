//! Who can see a message, and what a reply may quote: asked by the pipeline before a reply
//! is stored and by the lifecycle operations. Reads the store, changes nothing.

use crate::domain::{App, Message, Sender};
use crate::error::DeliveryError;
use crate::ids::{ConversationId, MsgId, UserId};
use crate::store::Store;

/// Whether `user` can see `msg`: a participant of its conversation who has not deleted it
/// for themselves (and, in a group, joined before it was sent). Room membership is a live
/// connection, which the gateway checks before it asks.
pub async fn can_see(store: &dyn Store, app: &App, user: &UserId, msg: &Message) -> Result<bool, DeliveryError> {
    let member = match &msg.conversation_id {
        ConversationId::Direct(a, b) => a == user || b == user,
        ConversationId::System(u) => u == user,
        ConversationId::Group(g) => store
            .group_member(&app.id, g, user)
            .await?
            .is_some_and(|m| msg.seq > m.joined_seq),
        ConversationId::Room(_) => true,
    };
    if !member {
        return Ok(false);
    }
    let deleted = store
        .deleted_for_user(&app.id, user, std::slice::from_ref(&msg.msg_id))
        .await?;
    Ok(deleted.is_empty())
}

/// The message a send replies to: it must be in the same conversation, visible to the
/// sender and not recalled.
pub async fn reply_target(
    store: &dyn Store,
    app: &App,
    sender: &Sender,
    conversation: &ConversationId,
    reply_to: Option<&MsgId>,
) -> Result<Option<Message>, DeliveryError> {
    let Some(id) = reply_to else {
        return Ok(None);
    };
    let not_found = DeliveryError::NotFound("reply_to message");
    let Some(msg) = store.message(&app.id, id).await? else {
        return Err(not_found);
    };
    if &msg.conversation_id != conversation {
        return Err(not_found);
    }
    if let Sender::User(u) = sender {
        if !can_see(store, app, u, &msg).await? {
            return Err(not_found);
        }
    }
    if msg.recalled {
        return Err(DeliveryError::MessageRecalled);
    }
    Ok(Some(msg))
}
