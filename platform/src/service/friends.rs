//! A user's friends, incoming friend requests and blocks read a page at a time through the
//! server API: the cursors around the operations of `crate::friends`.

use crate::delivery::{clamp_limit, DeliveryError, Pipeline};
use crate::domain::{App, Block, Friend, FriendRequest};
use crate::friends;
use crate::ids::UserId;

use super::paging::{after, Page};

/// The user a page starts after, and the page's size.
fn page_start(cursor: Option<&str>, limit: u32) -> Result<(Option<UserId>, u32), DeliveryError> {
    Ok((after(cursor, UserId::parse)?, clamp_limit(limit)))
}

/// A page of `user`'s friends, by friend id.
pub async fn friends_page(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<Friend>, DeliveryError> {
    let (after, limit) = page_start(cursor, limit)?;
    let list = friends::friends(p, app, user, after.as_ref(), limit).await?;
    Ok(Page::of(list, limit, |f| f.friend_id.as_str().to_owned()))
}

/// A page of the pending requests to `user`, by sender.
pub async fn incoming_requests_page(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<FriendRequest>, DeliveryError> {
    let (after, limit) = page_start(cursor, limit)?;
    let list = friends::incoming_requests(p, app, user, after.as_ref(), limit).await?;
    Ok(Page::of(list, limit, |r| r.from.as_str().to_owned()))
}

/// A page of whom `user` blocks, by id.
pub async fn blocks_page(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<Block>, DeliveryError> {
    let (after, limit) = page_start(cursor, limit)?;
    let list = friends::blocks(p, app, user, after.as_ref(), limit).await?;
    Ok(Page::of(list, limit, |b| b.blocked_id.as_str().to_owned()))
}
