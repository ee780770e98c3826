//! The group commands of a session (client.proto numbers 50-69): the caller acts as
//! themselves (`Actor::User`) through `tern_platform::groups`, the same operations the
//! server API runs, so both doors give the same answers and codes.

use tern_platform::delivery::{clamp_limit, Actor, DeliveryError, Pipeline};
use tern_platform::domain::{App, Group, GroupJoinRequest, GroupMember, GroupPatch, GroupRole, JoinPolicy, FOREVER};
use tern_platform::groups::{self, GroupSpec, Joined};
use tern_platform::ids::{GroupId, MsgId, UserId};
use tern_platform::proto::v1 as pb;

use crate::convert::{json_to_struct, struct_to_json};

use pb::client_frame::Command;
use pb::server_frame::Body;

pub(crate) fn group_info(g: Group) -> pb::GroupInfo {
    pb::GroupInfo {
        group_id: g.id.into_string(),
        name: g.name,
        owner: g.owner.into_string(),
        member_count: g.member_count,
        metadata: json_to_struct(&g.metadata),
        avatar_url: g.avatar_url.unwrap_or_default(),
        announcement: g.announcement,
        join_policy: g.join_policy.as_str().to_owned(),
        mute_all: g.mute_all,
        created_at: g.created_at,
        updated_at: g.updated_at,
    }
}

fn member_info(m: GroupMember) -> pb::GroupMemberInfo {
    pb::GroupMemberInfo {
        user_id: m.user_id.into_string(),
        role: m.role.as_str().to_owned(),
        joined_at: m.joined_at,
        muted_until: m.muted_until.unwrap_or(0),
    }
}

fn request_info(r: GroupJoinRequest) -> pb::JoinRequestInfo {
    pb::JoinRequestInfo {
        group_id: r.group_id.into_string(),
        user_id: r.user_id.into_string(),
        message: r.message,
        inviter: r.inviter.map(UserId::into_string).unwrap_or_default(),
        state: r.state.as_str().to_owned(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn users(ids: &[String]) -> Result<Vec<UserId>, DeliveryError> {
    ids.iter().map(|u| Ok(UserId::parse(u)?)).collect()
}

/// An empty `after` is the first page.
fn after_user(s: &str) -> Result<Option<UserId>, DeliveryError> {
    if s.is_empty() {
        Ok(None)
    } else {
        Ok(Some(UserId::parse(s)?))
    }
}

fn policy(p: &str) -> Result<JoinPolicy, DeliveryError> {
    JoinPolicy::parse(p)
        .ok_or_else(|| DeliveryError::InvalidArgument("join_policy must be free, approval or invite_only".into()))
}

/// A message id that cannot exist is simply not there.
fn msg(id: &str) -> Result<MsgId, DeliveryError> {
    MsgId::parse(id).map_err(|_| DeliveryError::NotFound("message"))
}

/// Runs one group command for `me`; session.rs sends only those here. Each command is
/// parsed, run and rendered by a function of its own below.
pub(crate) async fn command(p: &Pipeline, app: &App, me: &UserId, cmd: Command) -> Result<Body, DeliveryError> {
    let actor = Actor::User(me.clone());
    match cmd {
        Command::CreateGroup(c) => create_group(p, app, me, c).await,
        Command::GetGroup(c) => Ok(Body::Group(group_info(
            groups::get(p, app, &GroupId::parse(&c.group_id)?).await?,
        ))),
        Command::UpdateGroup(c) => update_group(p, app, &actor, c).await,
        Command::DismissGroup(c) => {
            groups::dismiss(p, app, &actor, &GroupId::parse(&c.group_id)?).await?;
            Ok(Body::Ok(pb::Ok {}))
        }
        Command::InviteMembers(c) => invite_members(p, app, &actor, c).await,
        Command::RemoveMember(c) => {
            let (g, u) = (GroupId::parse(&c.group_id)?, UserId::parse(&c.user_id)?);
            groups::remove_member(p, app, &actor, &g, &u).await?;
            Ok(Body::Ok(pb::Ok {}))
        }
        Command::LeaveGroup(c) => {
            groups::leave(p, app, me, &GroupId::parse(&c.group_id)?).await?;
            Ok(Body::Ok(pb::Ok {}))
        }
        Command::JoinGroup(c) => join_group(p, app, me, c).await,
        Command::ListJoinRequests(c) => {
            let g = GroupId::parse(&c.group_id)?;
            let list =
                groups::join_requests(p, app, &actor, &g, after_user(&c.after)?.as_ref(), clamp_limit(c.limit)).await?;
            Ok(Body::JoinRequestList(pb::JoinRequestList {
                requests: list.into_iter().map(request_info).collect(),
            }))
        }
        Command::AnswerJoinRequest(c) => {
            let (g, u) = (GroupId::parse(&c.group_id)?, UserId::parse(&c.user_id)?);
            let r = groups::answer_join_request(p, app, &actor, &g, &u, c.accept).await?;
            Ok(Body::JoinRequest(request_info(r)))
        }
        Command::ListMembers(c) => {
            let g = GroupId::parse(&c.group_id)?;
            let list =
                groups::members(p, app, &actor, &g, after_user(&c.after)?.as_ref(), clamp_limit(c.limit)).await?;
            Ok(Body::MemberList(pb::GroupMemberList {
                members: list.into_iter().map(member_info).collect(),
            }))
        }
        Command::GetMember(c) => {
            let (g, u) = (GroupId::parse(&c.group_id)?, UserId::parse(&c.user_id)?);
            Ok(Body::Member(member_info(groups::member(p, app, &actor, &g, &u).await?)))
        }
        Command::SetMemberRole(c) => set_member_role(p, app, &actor, c).await,
        Command::TransferOwner(c) => {
            let (g, u) = (GroupId::parse(&c.group_id)?, UserId::parse(&c.user_id)?);
            Ok(Body::Group(group_info(groups::transfer(p, app, &actor, &g, &u).await?)))
        }
        Command::MuteMember(c) => {
            let (g, u) = (GroupId::parse(&c.group_id)?, UserId::parse(&c.user_id)?);
            let until = (!c.lift).then(|| c.until.unwrap_or(FOREVER));
            Ok(Body::Member(member_info(
                groups::mute_member(p, app, &actor, &g, &u, until).await?,
            )))
        }
        Command::ListMyGroups(c) => list_my_groups(p, app, me, c).await,
        Command::GetReadCounts(c) => read_counts(p, app, &actor, c).await,
        Command::ListReaders(c) => readers(p, app, &actor, c).await,
        _ => Err(DeliveryError::InvalidArgument("not a group command".into())),
    }
}

async fn create_group(p: &Pipeline, app: &App, me: &UserId, c: pb::CreateGroup) -> Result<Body, DeliveryError> {
    if c.members.len() > tern_platform::domain::MAX_MEMBERS_PER_CALL {
        return Err(DeliveryError::InvalidArgument(format!(
            "members must hold at most {} users",
            tern_platform::domain::MAX_MEMBERS_PER_CALL
        )));
    }
    let spec = GroupSpec {
        id: (!c.group_id.is_empty())
            .then(|| GroupId::parse(&c.group_id))
            .transpose()?,
        name: c.name,
        owner: me.clone(),
        members: users(&c.members)?,
        metadata: c
            .metadata
            .as_ref()
            .map_or_else(|| serde_json::json!({}), struct_to_json),
        avatar_url: (!c.avatar_url.is_empty()).then_some(c.avatar_url),
        announcement: c.announcement,
        join_policy: if c.join_policy.is_empty() {
            JoinPolicy::Approval
        } else {
            policy(&c.join_policy)?
        },
    };
    let actor = Actor::User(me.clone());
    Ok(Body::Group(group_info(groups::create(p, app, &actor, spec).await?)))
}

async fn update_group(p: &Pipeline, app: &App, actor: &Actor, c: pb::UpdateGroup) -> Result<Body, DeliveryError> {
    let patch = GroupPatch {
        name: c.name,
        avatar_url: c.avatar_url.map(|u| (!u.is_empty()).then_some(u)),
        announcement: c.announcement,
        metadata: c.metadata.as_ref().map(struct_to_json),
        join_policy: c.join_policy.as_deref().map(policy).transpose()?,
        mute_all: c.mute_all,
    };
    let g = groups::update(p, app, actor, &GroupId::parse(&c.group_id)?, patch).await?;
    Ok(Body::Group(group_info(g)))
}

async fn invite_members(p: &Pipeline, app: &App, actor: &Actor, c: pb::InviteMembers) -> Result<Body, DeliveryError> {
    if c.user_ids.len() > tern_platform::domain::MAX_MEMBERS_PER_CALL {
        return Err(DeliveryError::InvalidArgument(format!(
            "user_ids must hold 1 to {} users",
            tern_platform::domain::MAX_MEMBERS_PER_CALL
        )));
    }
    let invited = groups::add_members(p, app, actor, &GroupId::parse(&c.group_id)?, &users(&c.user_ids)?).await?;
    Ok(Body::InviteResult(pb::InviteResult {
        added: invited.added.into_iter().map(UserId::into_string).collect(),
        requested: invited.requested.into_iter().map(UserId::into_string).collect(),
    }))
}

async fn join_group(p: &Pipeline, app: &App, me: &UserId, c: pb::JoinGroup) -> Result<Body, DeliveryError> {
    let joined = groups::join(p, app, me, &GroupId::parse(&c.group_id)?, &c.message).await?;
    Ok(Body::JoinResult(match joined {
        Joined::Member(m) => pb::JoinResult {
            joined: true,
            member: Some(member_info(m)),
            request: None,
        },
        Joined::Requested(r) => pb::JoinResult {
            joined: false,
            member: None,
            request: Some(request_info(r)),
        },
    }))
}

async fn set_member_role(p: &Pipeline, app: &App, actor: &Actor, c: pb::SetMemberRole) -> Result<Body, DeliveryError> {
    let (g, u) = (GroupId::parse(&c.group_id)?, UserId::parse(&c.user_id)?);
    let role = match GroupRole::parse(&c.role) {
        Some(r @ (GroupRole::Admin | GroupRole::Member)) => r,
        _ => return Err(DeliveryError::InvalidArgument("role must be admin or member".into())),
    };
    Ok(Body::Member(member_info(
        groups::set_role(p, app, actor, &g, &u, role).await?,
    )))
}

async fn list_my_groups(p: &Pipeline, app: &App, me: &UserId, c: pb::ListMyGroups) -> Result<Body, DeliveryError> {
    let after = if c.after.is_empty() {
        None
    } else {
        Some(GroupId::parse(&c.after)?)
    };
    let list = groups::user_groups(p, app, me, after.as_ref(), clamp_limit(c.limit)).await?;
    Ok(Body::GroupList(pb::GroupList {
        groups: list.into_iter().map(group_info).collect(),
    }))
}

async fn read_counts(p: &Pipeline, app: &App, actor: &Actor, c: pb::GetReadCounts) -> Result<Body, DeliveryError> {
    if c.msg_ids.len() > groups::MAX_READ_COUNT_MESSAGES {
        return Err(DeliveryError::InvalidArgument(format!(
            "msg_ids must hold 1 to {} messages",
            groups::MAX_READ_COUNT_MESSAGES
        )));
    }
    let ids = c.msg_ids.iter().map(|m| msg(m)).collect::<Result<Vec<_>, _>>()?;
    let counts = groups::read_counts(p, app, actor, &GroupId::parse(&c.group_id)?, &ids).await?;
    Ok(Body::ReadCounts(pb::ReadCountList {
        counts: counts
            .into_iter()
            .map(|c| pb::ReadCount {
                msg_id: c.msg_id.into_string(),
                seq: c.seq,
                read: c.read,
                unread: c.unread,
            })
            .collect(),
    }))
}

async fn readers(p: &Pipeline, app: &App, actor: &Actor, c: pb::ListReaders) -> Result<Body, DeliveryError> {
    let (g, m) = (GroupId::parse(&c.group_id)?, msg(&c.msg_id)?);
    let after = after_user(&c.after)?;
    let list = groups::readers(p, app, actor, &g, &m, c.unread, after.as_ref(), clamp_limit(c.limit)).await?;
    Ok(Body::Readers(pb::UserIdList {
        user_ids: list.into_iter().map(UserId::into_string).collect(),
    }))
}
