//! Groups read a page at a time through the server API (members, join requests, a user's
//! groups, a message's readers): the cursors around the operations of `crate::groups`; and
//! the app's groups listed and searched for the console.

use crate::delivery::{clamp_limit, Actor, DeliveryError, Pipeline};
use crate::domain::{App, Group, GroupJoinRequest, GroupMember, UnixMillis, FOREVER};
use crate::groups;
use crate::ids::{GroupId, MsgId, UserId};

use super::paging::{after, Page};

/// The end of a member's mute in a group: `None` is until lifted (`FOREVER`).
pub fn mute_end(until: Option<UnixMillis>) -> UnixMillis {
    until.unwrap_or(FOREVER)
}

/// A page of the group's members by user id, after the member a `cursor` names.
pub async fn members_page(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<GroupMember>, DeliveryError> {
    let limit = clamp_limit(limit);
    let after = after(cursor, UserId::parse)?;
    let list = groups::members(p, app, actor, id, after.as_ref(), limit).await?;
    Ok(Page::of(list, limit, |m| m.user_id.as_str().to_owned()))
}

/// A page of the group's pending join requests by user id.
pub async fn join_requests_page(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<GroupJoinRequest>, DeliveryError> {
    let limit = clamp_limit(limit);
    let after = after(cursor, UserId::parse)?;
    let list = groups::join_requests(p, app, actor, id, after.as_ref(), limit).await?;
    Ok(Page::of(list, limit, |r| r.user_id.as_str().to_owned()))
}

/// A page of the groups `user` is in, by group id.
pub async fn user_groups_page(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<Group>, DeliveryError> {
    let limit = clamp_limit(limit);
    let after = after(cursor, GroupId::parse)?;
    let list = groups::user_groups(p, app, user, after.as_ref(), limit).await?;
    Ok(Page::of(list, limit, |g| g.id.as_str().to_owned()))
}

/// A page of who has read one message (or, with `unread`, who has not), by user id.
#[allow(clippy::too_many_arguments)]
pub async fn readers_page(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    msg: &MsgId,
    unread: bool,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<UserId>, DeliveryError> {
    let limit = clamp_limit(limit);
    let after = after(cursor, UserId::parse)?;
    let list = groups::readers(p, app, actor, id, msg, unread, after.as_ref(), limit).await?;
    Ok(Page::of(list, limit, |u| u.as_str().to_owned()))
}

/// Longest search of the app's groups, in characters.
pub const MAX_GROUP_QUERY_CHARS: usize = 128;

/// The app's groups by id after `after` whose id starts with `query` or whose name contains
/// it (ignoring case), at most `limit` (1 to 200); every group for an empty `query`. A query
/// over `MAX_GROUP_QUERY_CHARS` characters is `invalid_argument`.
pub async fn search(
    p: &Pipeline,
    app: &App,
    query: &str,
    after: Option<&GroupId>,
    limit: u32,
) -> Result<Vec<Group>, DeliveryError> {
    let query = query.trim();
    if query.chars().count() > MAX_GROUP_QUERY_CHARS {
        return Err(DeliveryError::InvalidArgument(format!(
            "q must be at most {MAX_GROUP_QUERY_CHARS} characters"
        )));
    }
    Ok(p.store()
        .search_groups(&app.id, query, after, limit.clamp(1, 200))
        .await?)
}
