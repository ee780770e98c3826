//! Presence of many users at once, as the server API asks it.

use crate::delivery::{DeliveryError, Pipeline};
use crate::domain::App;
use crate::ids::UserId;
use crate::presence::UserPresence;

/// Most users one presence query names.
pub const MAX_PRESENCE_QUERY: usize = 500;

/// A query names 1 to `MAX_PRESENCE_QUERY` users (a door asks before it parses the ids).
pub fn check_query(users: usize) -> Result<(), DeliveryError> {
    if !(1..=MAX_PRESENCE_QUERY).contains(&users) {
        return Err(DeliveryError::InvalidArgument(format!(
            "users must hold 1 to {MAX_PRESENCE_QUERY} user ids"
        )));
    }
    Ok(())
}

/// Whether each user is online, on which devices, and when last seen, in the order asked;
/// `unavailable` when the presence port cannot answer.
pub async fn query(p: &Pipeline, app: &App, users: &[UserId]) -> Result<Vec<UserPresence>, DeliveryError> {
    check_query(users.len())?;
    p.presence()
        .presence(&app.id, users)
        .await
        .map_err(|e| DeliveryError::Unavailable(e.to_string()))
}
