//! gRPC `Friends`: the REST friends and blocks operations under `/v1/users/{user_id}/...`,
//! each method acting for `user_id` through the same function as the REST handler.

use tern_platform::proto::server_v1 as pb;
use tonic::Request;

use super::convert::page;
use super::services::{app, ok, Answer, Server};
use crate::rest::friends;

fn request(r: friends::FriendRequestView) -> pb::FriendRequest {
    pb::FriendRequest {
        from: r.from,
        to: r.to,
        message: r.message,
        state: r.state,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn friend(f: friends::FriendView) -> pb::Friend {
    pb::Friend {
        user_id: f.user_id,
        friend_id: f.friend_id,
        remark: f.remark,
        tags: f.tags,
        created_at: f.created_at,
        updated_at: f.updated_at,
    }
}

fn block(b: friends::BlockView) -> pb::BlockedUser {
    pb::BlockedUser {
        user_id: b.user_id,
        blocked_id: b.blocked_id,
        created_at: b.created_at,
    }
}

#[tonic::async_trait]
impl pb::friends_server::Friends for Server {
    async fn send_friend_request(&self, req: Request<pb::SendFriendRequestRequest>) -> Answer<pb::FriendRequest> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = friends::SendFriendRequest {
            to: r.to,
            message: r.message,
        };
        ok(
            friends::send_friend_request(&self.state, &app, &r.user_id, body).await,
            request,
        )
    }

    async fn list_friend_requests(&self, req: Request<pb::UserPageRequest>) -> Answer<pb::FriendRequestsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            friends::incoming_friend_requests(&self.state, &app, &r.user_id, page(r.cursor, r.limit)).await,
            |a| pb::FriendRequestsResponse {
                requests: a.requests.into_iter().map(request).collect(),
                next_cursor: a.next_cursor.unwrap_or_default(),
            },
        )
    }

    async fn accept_friend_request(&self, req: Request<pb::AnswerFriendRequestRequest>) -> Answer<pb::FriendRequest> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            friends::answer_friend_request(&self.state, &app, &r.user_id, &r.from, true).await,
            request,
        )
    }

    async fn decline_friend_request(&self, req: Request<pb::AnswerFriendRequestRequest>) -> Answer<pb::FriendRequest> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            friends::answer_friend_request(&self.state, &app, &r.user_id, &r.from, false).await,
            request,
        )
    }

    async fn list_friends(&self, req: Request<pb::UserPageRequest>) -> Answer<pb::FriendsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            friends::list_friends(&self.state, &app, &r.user_id, page(r.cursor, r.limit)).await,
            |a| pb::FriendsResponse {
                friends: a.friends.into_iter().map(friend).collect(),
                next_cursor: a.next_cursor.unwrap_or_default(),
            },
        )
    }

    async fn get_friend(&self, req: Request<pb::FriendPairRequest>) -> Answer<pb::Friend> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            friends::get_friend(&self.state, &app, &r.user_id, &r.friend_id).await,
            friend,
        )
    }

    async fn update_friend(&self, req: Request<pb::UpdateFriendRequest>) -> Answer<pb::Friend> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = friends::UpdateFriend {
            remark: r.remark,
            tags: r.set_tags.then_some(r.tags),
        };
        ok(
            friends::update_friend(&self.state, &app, &r.user_id, &r.friend_id, body).await,
            friend,
        )
    }

    async fn delete_friend(&self, req: Request<pb::DeleteFriendRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        let q = friends::DeleteFriendQuery { both: Some(r.both) };
        ok(
            friends::delete_friend(&self.state, &app, &r.user_id, &r.friend_id, q).await,
            |_| pb::Empty {},
        )
    }

    async fn list_blocks(&self, req: Request<pb::UserPageRequest>) -> Answer<pb::BlocksResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            friends::list_blocks(&self.state, &app, &r.user_id, page(r.cursor, r.limit)).await,
            |a| pb::BlocksResponse {
                blocks: a.blocks.into_iter().map(block).collect(),
                next_cursor: a.next_cursor.unwrap_or_default(),
            },
        )
    }

    async fn block_user(&self, req: Request<pb::BlockRequest>) -> Answer<pb::BlockedUser> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            friends::block_user(&self.state, &app, &r.user_id, &r.blocked_id).await,
            block,
        )
    }

    async fn unblock_user(&self, req: Request<pb::BlockRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            friends::unblock_user(&self.state, &app, &r.user_id, &r.blocked_id).await,
            |_| pb::Empty {},
        )
    }
}
