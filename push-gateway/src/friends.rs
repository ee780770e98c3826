//! The friends and blocks commands of a session (client.proto numbers 40-49): the
//! caller acts for themselves through `tern_platform::friends`, the same operations the
//! server API uses, so both doors give the same answers and codes.

use tern_platform::delivery::{clamp_limit, DeliveryError, Pipeline};
use tern_platform::domain::{App, Friend, FriendRequest};
use tern_platform::friends;
use tern_platform::ids::UserId;
use tern_platform::proto::v1 as pb;

use pb::client_frame::Command;
use pb::server_frame::Body;

fn request_info(r: FriendRequest) -> pb::FriendRequestInfo {
    pb::FriendRequestInfo {
        from: r.from.into_string(),
        to: r.to.into_string(),
        message: r.message,
        state: r.state.as_str().to_owned(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn friend_info(f: Friend) -> pb::FriendInfo {
    pb::FriendInfo {
        friend_id: f.friend_id.into_string(),
        remark: f.remark,
        tags: f.tags,
        created_at: f.created_at,
        updated_at: f.updated_at,
    }
}

/// An empty `after` is the first page.
fn after(s: &str) -> Result<Option<UserId>, DeliveryError> {
    if s.is_empty() {
        Ok(None)
    } else {
        Ok(Some(UserId::parse(s)?))
    }
}

/// Runs one friends command for `me`; session.rs sends only those here.
pub(crate) async fn command(p: &Pipeline, app: &App, me: &UserId, cmd: Command) -> Result<Body, DeliveryError> {
    match cmd {
        Command::SendFriendRequest(c) => {
            let to = UserId::parse(&c.to)?;
            let r = friends::request(p, app, me, &to, &c.message).await?;
            Ok(Body::FriendRequest(request_info(r)))
        }
        Command::AnswerFriendRequest(c) => {
            let from = UserId::parse(&c.from)?;
            let r = friends::answer(p, app, me, &from, c.accept).await?;
            Ok(Body::FriendRequest(request_info(r)))
        }
        Command::ListFriendRequests(c) => {
            let list = friends::incoming_requests(p, app, me, after(&c.after)?.as_ref(), clamp_limit(c.limit)).await?;
            Ok(Body::FriendRequestList(pb::FriendRequestList {
                requests: list.into_iter().map(request_info).collect(),
            }))
        }
        Command::ListFriends(c) => {
            let list = friends::friends(p, app, me, after(&c.after)?.as_ref(), clamp_limit(c.limit)).await?;
            Ok(Body::FriendList(pb::FriendList {
                friends: list.into_iter().map(friend_info).collect(),
            }))
        }
        Command::UpdateFriend(c) => {
            let friend = UserId::parse(&c.friend_id)?;
            let current = friends::get(p, app, me, &friend).await?;
            let remark = match c.remark {
                None => current.remark,
                Some(r) if r.is_empty() => None,
                Some(r) => Some(r),
            };
            let tags = if c.set_tags { c.tags } else { current.tags };
            let f = friends::update(p, app, me, &friend, remark.as_deref(), &tags).await?;
            Ok(Body::Friend(friend_info(f)))
        }
        Command::DeleteFriend(c) => {
            let friend = UserId::parse(&c.friend_id)?;
            friends::delete(p, app, me, &friend, c.both).await?;
            Ok(Body::Ok(pb::Ok {}))
        }
        Command::BlockUser(c) => {
            let other = UserId::parse(&c.user_id)?;
            friends::block(p, app, me, &other).await?;
            Ok(Body::Ok(pb::Ok {}))
        }
        Command::UnblockUser(c) => {
            let other = UserId::parse(&c.user_id)?;
            friends::unblock(p, app, me, &other).await?;
            Ok(Body::Ok(pb::Ok {}))
        }
        Command::ListBlocks(c) => {
            let list = friends::blocks(p, app, me, after(&c.after)?.as_ref(), clamp_limit(c.limit)).await?;
            Ok(Body::BlockList(pb::BlockList {
                user_ids: list.into_iter().map(|b| b.blocked_id.into_string()).collect(),
            }))
        }
        _ => Err(DeliveryError::InvalidArgument("not a friends command".into())),
    }
}
