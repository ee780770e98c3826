//! Messages read by id, for the doors that check something of a message before an
//! operation on it.

use crate::delivery::{DeliveryError, Pipeline};
use crate::domain::{App, Message};
use crate::ids::MsgId;

/// The message as stored; `not_found` ("message not found") if the app has none by `id`.
pub async fn get(p: &Pipeline, app: &App, id: &MsgId) -> Result<Message, DeliveryError> {
    p.store()
        .message(&app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("message"))
}
