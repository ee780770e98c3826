//! The gRPC `Groups` service: each method builds the REST input, runs the same operation as
//! the REST handler in `rest::groups`, and converts the answer back.

use tern_platform::proto::server_v1 as pb;
use tonic::Request;

use super::convert::{self, struct_to_json};
use super::services::{app, ok, Answer, Server};
use super::status::to_status;
use crate::error::ApiError;
use crate::rest::groups::{self, JoinRequestView};
use crate::rest::users::Done;

fn join_request(r: JoinRequestView) -> pb::JoinRequest {
    pb::JoinRequest {
        group_id: r.group_id,
        user_id: r.user_id,
        message: r.message,
        inviter: r.inviter,
        state: r.state,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn empty(_: Done) -> pb::Empty {
    pb::Empty {}
}

#[tonic::async_trait]
impl pb::groups_server::Groups for Server {
    async fn create_group(&self, req: Request<pb::CreateGroupRequest>) -> Answer<pb::Group> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = groups::CreateGroup {
            id: (!r.id.is_empty()).then_some(r.id),
            name: r.name,
            owner: r.owner,
            members: r.members,
            metadata: r.metadata.map(struct_to_json),
            avatar_url: r.avatar_url,
            announcement: Some(r.announcement),
            join_policy: (!r.join_policy.is_empty()).then_some(r.join_policy),
        };
        ok(groups::create_group(&self.state, &app, body).await, convert::group)
    }

    async fn get_group(&self, req: Request<pb::GroupRequest>) -> Answer<pb::Group> {
        let app = app(&req)?;
        ok(
            groups::get_group(&self.state, &app, &req.into_inner().group_id).await,
            convert::group,
        )
    }

    async fn update_group(&self, req: Request<pb::UpdateGroupRequest>) -> Answer<pb::Group> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = groups::UpdateGroup {
            name: r.name,
            // "" clears the avatar, as null does over REST.
            avatar_url: r.avatar_url.map(|u| (!u.is_empty()).then_some(u)),
            announcement: r.announcement,
            metadata: r.metadata.map(struct_to_json),
            join_policy: r.join_policy,
            mute_all: r.mute_all,
        };
        ok(
            groups::update_group(&self.state, &app, &r.group_id, body).await,
            convert::group,
        )
    }

    async fn dismiss_group(&self, req: Request<pb::GroupRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        ok(
            groups::dismiss_group(&self.state, &app, &req.into_inner().group_id).await,
            empty,
        )
    }

    async fn add_members(&self, req: Request<pb::AddMembersRequest>) -> Answer<pb::AddMembersResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            groups::add_group_members(
                &self.state,
                &app,
                &r.group_id,
                groups::AddMembers { members: r.members },
            )
            .await,
            |a| pb::AddMembersResponse { added: a.added },
        )
    }

    async fn remove_member(&self, req: Request<pb::RemoveMemberRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            groups::remove_group_member(&self.state, &app, &r.group_id, &r.user_id).await,
            empty,
        )
    }

    async fn list_members(&self, req: Request<pb::ListMembersRequest>) -> Answer<pb::MembersResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            groups::list_members(&self.state, &app, &r.group_id, convert::page(r.cursor, r.limit)).await,
            |a| pb::MembersResponse {
                members: a.members.into_iter().map(convert::member).collect(),
                next_cursor: a.next_cursor.unwrap_or_default(),
            },
        )
    }

    async fn get_member(&self, req: Request<pb::MemberRequest>) -> Answer<pb::Member> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            groups::get_member(&self.state, &app, &r.group_id, &r.user_id).await,
            convert::member,
        )
    }

    async fn set_role(&self, req: Request<pb::SetRoleRequest>) -> Answer<pb::Member> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            groups::set_member_role(
                &self.state,
                &app,
                &r.group_id,
                &r.user_id,
                groups::SetRole { role: r.role },
            )
            .await,
            convert::member,
        )
    }

    async fn mute_member(&self, req: Request<pb::MuteMemberRequest>) -> Answer<pb::Member> {
        let app = app(&req)?;
        let r = req.into_inner();
        let until = groups::mute_end(r.until);
        ok(
            groups::mute_member(&self.state, &app, &r.group_id, &r.user_id, Some(until)).await,
            convert::member,
        )
    }

    async fn unmute_member(&self, req: Request<pb::MemberRequest>) -> Answer<pb::Member> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            groups::mute_member(&self.state, &app, &r.group_id, &r.user_id, None).await,
            convert::member,
        )
    }

    async fn transfer_owner(&self, req: Request<pb::TransferOwnerRequest>) -> Answer<pb::Group> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = groups::TransferOwner { user_id: r.user_id };
        ok(
            groups::transfer_owner(&self.state, &app, &r.group_id, body).await,
            convert::group,
        )
    }

    async fn leave(&self, req: Request<pb::MemberRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            groups::leave_group(&self.state, &app, &r.group_id, &r.user_id).await,
            empty,
        )
    }

    async fn join(&self, req: Request<pb::JoinGroupRequest>) -> Answer<pb::JoinGroupResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = groups::JoinGroup {
            user_id: r.user_id,
            message: r.message,
        };
        ok(groups::join_group(&self.state, &app, &r.group_id, body).await, |a| {
            pb::JoinGroupResponse {
                joined: a.joined,
                member: a.member.map(convert::member),
                request: a.request.map(join_request),
            }
        })
    }

    async fn list_join_requests(&self, req: Request<pb::ListJoinRequestsRequest>) -> Answer<pb::JoinRequestsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            groups::list_join_requests(&self.state, &app, &r.group_id, convert::page(r.cursor, r.limit)).await,
            |a| pb::JoinRequestsResponse {
                requests: a.requests.into_iter().map(join_request).collect(),
                next_cursor: a.next_cursor.unwrap_or_default(),
            },
        )
    }

    async fn answer_join_request(&self, req: Request<pb::AnswerJoinRequestRequest>) -> Answer<pb::JoinRequest> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            groups::answer_join_request(&self.state, &app, &r.group_id, &r.user_id, r.accept).await,
            join_request,
        )
    }

    async fn list_user_groups(&self, req: Request<pb::ListUserGroupsRequest>) -> Answer<pb::GroupsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            groups::list_user_groups(&self.state, &app, &r.user_id, convert::page(r.cursor, r.limit)).await,
            |a| pb::GroupsResponse {
                groups: a.groups.into_iter().map(convert::group).collect(),
                next_cursor: a.next_cursor.unwrap_or_default(),
            },
        )
    }

    async fn read_counts(&self, req: Request<pb::ReadCountsRequest>) -> Answer<pb::ReadCountsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = groups::ReadCountsQuery { msg_ids: r.msg_ids };
        ok(
            groups::group_read_counts(&self.state, &app, &r.group_id, body).await,
            |a| pb::ReadCountsResponse {
                counts: a
                    .counts
                    .into_iter()
                    .map(|c| pb::ReadCount {
                        msg_id: c.msg_id,
                        seq: c.seq,
                        read: c.read,
                        unread: c.unread,
                    })
                    .collect(),
            },
        )
    }

    async fn readers(&self, req: Request<pb::ReadersRequest>) -> Answer<pb::ReadersResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let q = groups::ReadersQuery {
            unread: Some(r.unread),
            cursor: (!r.cursor.is_empty()).then_some(r.cursor),
            limit: (r.limit > 0).then_some(r.limit),
        };
        if r.msg_id.is_empty() {
            return Err(to_status(ApiError::invalid("msg_id is required")));
        }
        ok(
            groups::message_readers(&self.state, &app, &r.group_id, &r.msg_id, q).await,
            |a| pb::ReadersResponse {
                user_ids: a.user_ids,
                next_cursor: a.next_cursor.unwrap_or_default(),
            },
        )
    }
}
