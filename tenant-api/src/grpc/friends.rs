//! gRPC `Friends`: friends, friend requests and blocks acting for `user_id`, as the REST
//! handlers under `/v1/users/{user_id}/...` do: each method parses its request
//! (`crate::input`), calls `tern_platform::friends` (or its paged form in
//! `tern_platform::service::friends`) and converts the domain values back.

use tern_platform::friends;
use tern_platform::proto::server_v1 as pb;
use tern_platform::service::friends as pages;
use tonic::Request;

use super::convert;
use super::services::{app, ok, Answer, Server};
use crate::error::ApiError;
use crate::input;

#[tonic::async_trait]
impl pb::friends_server::Friends for Server {
    async fn send_friend_request(&self, req: Request<pb::SendFriendRequestRequest>) -> Answer<pb::FriendRequest> {
        let app = app(&req)?;
        let r = req.into_inner();
        let sent = async {
            let (from, to) = (input::user(&r.user_id)?, input::user(&r.to)?);
            Ok::<_, ApiError>(friends::request(&self.state.pipeline, &app, &from, &to, &r.message).await?)
        };
        ok(sent.await, convert::friend_request)
    }

    async fn list_friend_requests(&self, req: Request<pb::UserPageRequest>) -> Answer<pb::FriendRequestsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let page = async {
            let user = input::user(&r.user_id)?;
            let (cursor, limit) = convert::page(&r.cursor, r.limit);
            Ok::<_, ApiError>(pages::incoming_requests_page(&self.state.pipeline, &app, &user, cursor, limit).await?)
        };
        ok(page.await, |page| pb::FriendRequestsResponse {
            requests: page.items.into_iter().map(convert::friend_request).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }

    async fn accept_friend_request(&self, req: Request<pb::AnswerFriendRequestRequest>) -> Answer<pb::FriendRequest> {
        let app = app(&req)?;
        ok(self.answer(&app, req.into_inner(), true).await, convert::friend_request)
    }

    async fn decline_friend_request(&self, req: Request<pb::AnswerFriendRequestRequest>) -> Answer<pb::FriendRequest> {
        let app = app(&req)?;
        ok(
            self.answer(&app, req.into_inner(), false).await,
            convert::friend_request,
        )
    }

    async fn list_friends(&self, req: Request<pb::UserPageRequest>) -> Answer<pb::FriendsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let page = async {
            let user = input::user(&r.user_id)?;
            let (cursor, limit) = convert::page(&r.cursor, r.limit);
            Ok::<_, ApiError>(pages::friends_page(&self.state.pipeline, &app, &user, cursor, limit).await?)
        };
        ok(page.await, |page| pb::FriendsResponse {
            friends: page.items.into_iter().map(convert::friend).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }

    async fn get_friend(&self, req: Request<pb::FriendPairRequest>) -> Answer<pb::Friend> {
        let app = app(&req)?;
        let r = req.into_inner();
        let friend = async {
            let (user, friend) = (input::user(&r.user_id)?, input::user(&r.friend_id)?);
            Ok::<_, ApiError>(friends::get(&self.state.pipeline, &app, &user, &friend).await?)
        };
        ok(friend.await, convert::friend)
    }

    async fn update_friend(&self, req: Request<pb::UpdateFriendRequest>) -> Answer<pb::Friend> {
        let app = app(&req)?;
        let r = req.into_inner();
        let updated = async {
            let (user, friend) = (input::user(&r.user_id)?, input::user(&r.friend_id)?);
            let tags = r.set_tags.then_some(r.tags);
            Ok::<_, ApiError>(friends::patch(&self.state.pipeline, &app, &user, &friend, r.remark, tags).await?)
        };
        ok(updated.await, convert::friend)
    }

    async fn delete_friend(&self, req: Request<pb::DeleteFriendRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        let deleted = async {
            let (user, friend) = (input::user(&r.user_id)?, input::user(&r.friend_id)?);
            Ok::<_, ApiError>(friends::delete(&self.state.pipeline, &app, &user, &friend, r.both).await?)
        };
        ok(deleted.await, |()| pb::Empty {})
    }

    async fn list_blocks(&self, req: Request<pb::UserPageRequest>) -> Answer<pb::BlocksResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let page = async {
            let user = input::user(&r.user_id)?;
            let (cursor, limit) = convert::page(&r.cursor, r.limit);
            Ok::<_, ApiError>(pages::blocks_page(&self.state.pipeline, &app, &user, cursor, limit).await?)
        };
        ok(page.await, |page| pb::BlocksResponse {
            blocks: page.items.into_iter().map(convert::block).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }

    async fn block_user(&self, req: Request<pb::BlockRequest>) -> Answer<pb::BlockedUser> {
        let app = app(&req)?;
        let r = req.into_inner();
        let blocked = async {
            let (user, blocked) = (input::user(&r.user_id)?, input::user(&r.blocked_id)?);
            Ok::<_, ApiError>(friends::block(&self.state.pipeline, &app, &user, &blocked).await?)
        };
        ok(blocked.await, convert::block)
    }

    async fn unblock_user(&self, req: Request<pb::BlockRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        let unblocked = async {
            let (user, blocked) = (input::user(&r.user_id)?, input::user(&r.blocked_id)?);
            Ok::<_, ApiError>(friends::unblock(&self.state.pipeline, &app, &user, &blocked).await?)
        };
        ok(unblocked.await, |()| pb::Empty {})
    }
}

impl Server {
    /// `user_id` accepts (`accept`) or declines the pending request from `from`.
    async fn answer(
        &self,
        app: &tern_platform::domain::App,
        r: pb::AnswerFriendRequestRequest,
        accept: bool,
    ) -> Result<tern_platform::domain::FriendRequest, ApiError> {
        let (user, from) = (input::user(&r.user_id)?, input::user(&r.from)?);
        Ok(friends::answer(&self.state.pipeline, app, &user, &from, accept).await?)
    }
}
