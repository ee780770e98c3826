//! The gRPC `Groups` service: each method parses its request (`crate::input`), runs the
//! operation of `tern_platform::groups` (or its paged form in `tern_platform::service`)
//! as the REST handler in `rest::groups` does, and converts the domain values back.

use tern_platform::delivery::Actor;
use tern_platform::domain::GroupPatch;
use tern_platform::groups;
use tern_platform::proto::server_v1 as pb;
use tern_platform::service::groups as pages;
use tonic::Request;

use super::convert::{self, struct_to_json};
use super::services::{app, ok, Answer, Server};
use super::status::to_status;
use crate::error::ApiError;
use crate::input::{self, GroupInput};

const SERVER: &Actor = &Actor::Server;

#[tonic::async_trait]
impl pb::groups_server::Groups for Server {
    async fn create_group(&self, req: Request<pb::CreateGroupRequest>) -> Answer<pb::Group> {
        let app = app(&req)?;
        let r = req.into_inner();
        let created = async {
            let spec = input::group_spec(GroupInput {
                id: (!r.id.is_empty()).then_some(r.id.as_str()),
                name: r.name,
                owner: &r.owner,
                members: &r.members,
                metadata: r.metadata.map(struct_to_json),
                avatar_url: r.avatar_url,
                announcement: Some(r.announcement),
                join_policy: (!r.join_policy.is_empty()).then_some(r.join_policy.as_str()),
            })?;
            Ok::<_, ApiError>(groups::create(&self.state.pipeline, &app, SERVER, spec).await?)
        };
        ok(created.await, convert::group)
    }

    async fn get_group(&self, req: Request<pb::GroupRequest>) -> Answer<pb::Group> {
        let app = app(&req)?;
        let group = async {
            let id = input::group(&req.into_inner().group_id)?;
            Ok::<_, ApiError>(groups::get(&self.state.pipeline, &app, &id).await?)
        };
        ok(group.await, convert::group)
    }

    async fn update_group(&self, req: Request<pb::UpdateGroupRequest>) -> Answer<pb::Group> {
        let app = app(&req)?;
        let r = req.into_inner();
        let updated = async {
            let id = input::group(&r.group_id)?;
            let patch = GroupPatch {
                name: r.name,
                // "" clears the avatar, as null does over REST.
                avatar_url: r.avatar_url.map(|u| (!u.is_empty()).then_some(u)),
                announcement: r.announcement,
                metadata: r.metadata.map(struct_to_json),
                join_policy: r.join_policy.as_deref().map(input::join_policy).transpose()?,
                mute_all: r.mute_all,
            };
            Ok::<_, ApiError>(groups::update(&self.state.pipeline, &app, SERVER, &id, patch).await?)
        };
        ok(updated.await, convert::group)
    }

    async fn dismiss_group(&self, req: Request<pb::GroupRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let dismissed = async {
            let id = input::group(&req.into_inner().group_id)?;
            Ok::<_, ApiError>(groups::dismiss(&self.state.pipeline, &app, SERVER, &id).await?)
        };
        ok(dismissed.await, |()| pb::Empty {})
    }

    async fn add_members(&self, req: Request<pb::AddMembersRequest>) -> Answer<pb::AddMembersResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let invited = async {
            let id = input::group(&r.group_id)?;
            let users = input::distinct_users(&r.members)?;
            Ok::<_, ApiError>(groups::add_members(&self.state.pipeline, &app, SERVER, &id, &users).await?)
        };
        ok(invited.await, |invited| pb::AddMembersResponse {
            added: invited.added.into_iter().map(|u| u.into_string()).collect(),
        })
    }

    async fn remove_member(&self, req: Request<pb::RemoveMemberRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        let removed = async {
            let (id, user) = (input::group(&r.group_id)?, input::user(&r.user_id)?);
            Ok::<_, ApiError>(groups::remove_member(&self.state.pipeline, &app, SERVER, &id, &user).await?)
        };
        ok(removed.await, |_| pb::Empty {})
    }

    async fn list_members(&self, req: Request<pb::ListMembersRequest>) -> Answer<pb::MembersResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let page = async {
            let id = input::group(&r.group_id)?;
            let (cursor, limit) = convert::page(&r.cursor, r.limit);
            Ok::<_, ApiError>(pages::members_page(&self.state.pipeline, &app, SERVER, &id, cursor, limit).await?)
        };
        ok(page.await, |page| pb::MembersResponse {
            members: page.items.into_iter().map(convert::member).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }

    async fn get_member(&self, req: Request<pb::MemberRequest>) -> Answer<pb::Member> {
        let app = app(&req)?;
        let r = req.into_inner();
        let member = async {
            let (id, user) = (input::group(&r.group_id)?, input::user(&r.user_id)?);
            Ok::<_, ApiError>(groups::member(&self.state.pipeline, &app, SERVER, &id, &user).await?)
        };
        ok(member.await, convert::member)
    }

    async fn set_role(&self, req: Request<pb::SetRoleRequest>) -> Answer<pb::Member> {
        let app = app(&req)?;
        let r = req.into_inner();
        let member = async {
            let (id, user, role) = (
                input::group(&r.group_id)?,
                input::user(&r.user_id)?,
                input::member_role(&r.role)?,
            );
            Ok::<_, ApiError>(groups::set_role(&self.state.pipeline, &app, SERVER, &id, &user, role).await?)
        };
        ok(member.await, convert::member)
    }

    async fn mute_member(&self, req: Request<pb::MuteMemberRequest>) -> Answer<pb::Member> {
        let app = app(&req)?;
        let r = req.into_inner();
        let until = pages::mute_end(r.until);
        ok(
            self.mute_member(&app, &r.group_id, &r.user_id, Some(until)).await,
            convert::member,
        )
    }

    async fn unmute_member(&self, req: Request<pb::MemberRequest>) -> Answer<pb::Member> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            self.mute_member(&app, &r.group_id, &r.user_id, None).await,
            convert::member,
        )
    }

    async fn transfer_owner(&self, req: Request<pb::TransferOwnerRequest>) -> Answer<pb::Group> {
        let app = app(&req)?;
        let r = req.into_inner();
        let group = async {
            let (id, to) = (input::group(&r.group_id)?, input::user(&r.user_id)?);
            Ok::<_, ApiError>(groups::transfer(&self.state.pipeline, &app, SERVER, &id, &to).await?)
        };
        ok(group.await, convert::group)
    }

    async fn leave(&self, req: Request<pb::MemberRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        let left = async {
            let (id, user) = (input::group(&r.group_id)?, input::user(&r.user_id)?);
            Ok::<_, ApiError>(groups::leave(&self.state.pipeline, &app, &user, &id).await?)
        };
        ok(left.await, |()| pb::Empty {})
    }

    async fn join(&self, req: Request<pb::JoinGroupRequest>) -> Answer<pb::JoinGroupResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let joined = async {
            let (id, user) = (input::group(&r.group_id)?, input::user(&r.user_id)?);
            Ok::<_, ApiError>(groups::join(&self.state.pipeline, &app, &user, &id, &r.message).await?)
        };
        ok(joined.await, convert::joined)
    }

    async fn list_join_requests(&self, req: Request<pb::ListJoinRequestsRequest>) -> Answer<pb::JoinRequestsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let page = async {
            let id = input::group(&r.group_id)?;
            let (cursor, limit) = convert::page(&r.cursor, r.limit);
            let p = &self.state.pipeline;
            Ok::<_, ApiError>(pages::join_requests_page(p, &app, SERVER, &id, cursor, limit).await?)
        };
        ok(page.await, |page| pb::JoinRequestsResponse {
            requests: page.items.into_iter().map(convert::join_request).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }

    async fn answer_join_request(&self, req: Request<pb::AnswerJoinRequestRequest>) -> Answer<pb::JoinRequest> {
        let app = app(&req)?;
        let r = req.into_inner();
        let answered = async {
            let (id, user) = (input::group(&r.group_id)?, input::user(&r.user_id)?);
            let p = &self.state.pipeline;
            Ok::<_, ApiError>(groups::answer_join_request(p, &app, SERVER, &id, &user, r.accept).await?)
        };
        ok(answered.await, convert::join_request)
    }

    async fn list_user_groups(&self, req: Request<pb::ListUserGroupsRequest>) -> Answer<pb::GroupsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let page = async {
            let user = input::user(&r.user_id)?;
            let (cursor, limit) = convert::page(&r.cursor, r.limit);
            Ok::<_, ApiError>(pages::user_groups_page(&self.state.pipeline, &app, &user, cursor, limit).await?)
        };
        ok(page.await, |page| pb::GroupsResponse {
            groups: page.items.into_iter().map(convert::group).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }

    async fn read_counts(&self, req: Request<pb::ReadCountsRequest>) -> Answer<pb::ReadCountsResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let counts = async {
            let id = input::group(&r.group_id)?;
            groups::check_read_count_batch(r.msg_ids.len())?;
            let ids = r
                .msg_ids
                .iter()
                .map(|m| input::msg_id(m))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, ApiError>(groups::read_counts(&self.state.pipeline, &app, SERVER, &id, &ids).await?)
        };
        ok(counts.await, |counts| pb::ReadCountsResponse {
            counts: counts.into_iter().map(convert::read_count).collect(),
        })
    }

    async fn readers(&self, req: Request<pb::ReadersRequest>) -> Answer<pb::ReadersResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        if r.msg_id.is_empty() {
            return Err(to_status(ApiError::invalid("msg_id is required")));
        }
        let page = async {
            let (id, msg) = (input::group(&r.group_id)?, input::msg_id(&r.msg_id)?);
            let (cursor, limit) = convert::page(&r.cursor, r.limit);
            let p = &self.state.pipeline;
            Ok::<_, ApiError>(pages::readers_page(p, &app, SERVER, &id, &msg, r.unread, cursor, limit).await?)
        };
        ok(page.await, |page| pb::ReadersResponse {
            user_ids: page.items.into_iter().map(|u| u.into_string()).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        })
    }
}

impl Server {
    /// Mutes a member in a group until `until`, or (`None`) lifts their mute.
    async fn mute_member(
        &self,
        app: &tern_platform::domain::App,
        group_id: &str,
        user_id: &str,
        until: Option<tern_platform::domain::UnixMillis>,
    ) -> Result<tern_platform::domain::GroupMember, ApiError> {
        let (id, user) = (input::group(group_id)?, input::user(user_id)?);
        Ok(groups::mute_member(&self.state.pipeline, app, SERVER, &id, &user, until).await?)
    }
}
