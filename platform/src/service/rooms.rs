//! Rooms read a page at a time through the server API (the app's rooms, a room's mutes):
//! the cursors around the operations of `crate::rooms`.

use crate::delivery::{clamp_limit, DeliveryError, Pipeline};
use crate::domain::{App, RoomMute};
use crate::ids::{RoomId, UserId};
use crate::rooms::{self, RoomDetail};

use super::paging::{after, Page};

/// A page of the app's rooms by id, each with its online member count.
pub async fn list_page(
    p: &Pipeline,
    app: &App,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<RoomDetail>, DeliveryError> {
    let after = after(cursor, RoomId::parse)?;
    let limit = clamp_limit(limit);
    let list = rooms::list(p, app, after.as_ref(), limit).await?;
    Ok(Page::of(list, limit, |d| d.room.id.as_str().to_owned()))
}

/// A page of the mutes in force in a room, by user id.
pub async fn mutes_page(
    p: &Pipeline,
    app: &App,
    id: &RoomId,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<RoomMute>, DeliveryError> {
    let after = after(cursor, UserId::parse)?;
    let limit = clamp_limit(limit);
    let list = rooms::mutes(p, app, id, after.as_ref(), limit).await?;
    Ok(Page::of(list, limit, |m| m.user_id.as_str().to_owned()))
}
