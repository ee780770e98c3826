//! Whether one user may message another directly: blocks, and friendship where the app asks
//! for it. Asked by the pipeline before a direct message is stored, and by the friends
//! operations; reads the store (blocks through `Ctx`'s block cache), changes nothing.

use crate::context::Ctx;
use crate::domain::App;
use crate::error::DeliveryError;
use crate::ids::UserId;
use crate::store::Store;

/// Refuses a direct message from `from` to `to` if `to` blocks `from`, or if the app wants
/// friendship for direct messages and the two are not friends on both sides.
pub async fn check_direct(cx: &Ctx, app: &App, from: &UserId, to: &UserId) -> Result<(), DeliveryError> {
    if from == to {
        return Ok(());
    }
    if cx.blocks_user(&app.id, to, from).await? {
        return Err(DeliveryError::Blocked);
    }
    if app.settings.friendship_required_for_direct && !are_friends(cx.store().as_ref(), app, from, to).await? {
        return Err(DeliveryError::NotFriends);
    }
    Ok(())
}

/// Both sides hold each other.
pub async fn are_friends(store: &dyn Store, app: &App, a: &UserId, b: &UserId) -> Result<bool, DeliveryError> {
    Ok(store.friend(&app.id, a, b).await?.is_some() && store.friend(&app.id, b, a).await?.is_some())
}
