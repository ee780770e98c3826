//! Groups through the server API: the app's backend acts as `Actor::Server` (it may do
//! anything in its app), and for a user where the operation is theirs by nature (join,
//! leave). The operations are `tern_platform::groups`, shared with gRPC and the WebSocket
//! gateway; docs/groups.md is the guide.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::delivery::Actor;
use tern_platform::domain::{App, GroupJoinRequest, GroupPatch, UnixMillis};
use tern_platform::groups::{self, Joined};
use tern_platform::ids::UserId;
use tern_platform::service::groups as pages;
use utoipa::ToSchema;

use super::dto::*;
use super::users::{parse_user, Done};
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::input::{self, distinct_users as parse_users, group as parse_group, msg_id as parse_msg, GroupInput};
use crate::state::ApiState;

// ---- bodies and answers ------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// 1–64 characters of `[A-Za-z0-9_.@-]`, unique in the app; absent: Tern makes one.
    pub id: Option<String>,
    /// 1–100 characters.
    pub name: String,
    pub owner: String,
    /// Members besides the owner.
    #[serde(default)]
    pub members: Vec<String>,
    /// A JSON object, at most 4 KiB serialised.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// An http(s) URL.
    pub avatar_url: Option<String>,
    /// Up to 2,000 characters.
    pub announcement: Option<String>,
    /// `free`, `approval` (the default) or `invite_only`.
    pub join_policy: Option<String>,
}

/// Absent fields are kept.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    pub name: Option<String>,
    /// `null` clears it.
    #[serde(default, with = "crate::input::double_option")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
    pub announcement: Option<String>,
    /// Replaces the metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// `free`, `approval` or `invite_only`.
    pub join_policy: Option<String>,
    /// Only the owner and admins may send while it is on.
    pub mute_all: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMembers {
    /// 1 to 500 users.
    pub members: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddedAnswer {
    /// Those who were not members before.
    pub added: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// `admin` or `member`.
    pub role: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteMember {
    /// Unix ms when the mute ends; `null` or absent: until lifted (stored as 253402300799999).
    pub until: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOwner {
    /// The new owner, a member; the old owner becomes a member.
    pub user_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinGroup {
    /// The user who asks to join.
    pub user_id: String,
    /// Up to 500 characters, shown to the admins.
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JoinRequestView {
    pub group_id: String,
    pub user_id: String,
    pub message: String,
    /// The member whose invitation this is; `null` when the user asked.
    pub inviter: Option<String>,
    /// `pending`, `accepted` or `declined`.
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<GroupJoinRequest> for JoinRequestView {
    fn from(r: GroupJoinRequest) -> Self {
        Self {
            group_id: r.group_id.into_string(),
            user_id: r.user_id.into_string(),
            message: r.message,
            inviter: r.inviter.map(UserId::into_string),
            state: r.state.as_str().to_owned(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JoinAnswer {
    /// In at once (a `free` group, or a member already).
    pub joined: bool,
    /// When joined.
    pub member: Option<MemberView>,
    /// When a request waits for an admin (an `approval` group).
    pub request: Option<JoinRequestView>,
}

impl From<Joined> for JoinAnswer {
    fn from(j: Joined) -> Self {
        match j {
            Joined::Member(m) => Self {
                joined: true,
                member: Some(m.into()),
                request: None,
            },
            Joined::Requested(r) => Self {
                joined: false,
                member: None,
                request: Some(r.into()),
            },
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JoinRequestsAnswer {
    pub requests: Vec<JoinRequestView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupsAnswer {
    pub groups: Vec<GroupView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadCountsQuery {
    /// 1 to 100 of the group's messages.
    pub msg_ids: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadCountView {
    pub msg_id: String,
    pub seq: i64,
    /// Members other than the sender, there when it was sent, who have read it.
    pub read: i64,
    /// Those of them who have not.
    pub unread: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadCountsAnswer {
    /// In the order asked.
    pub counts: Vec<ReadCountView>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReadersQuery {
    /// `true`: the members who have not read it. Default false.
    pub unread: Option<bool>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 100 (larger values are clamped); default 50.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadersAnswer {
    pub user_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

// ---- create, read, update, dismiss -------------------------------------------------

/// Creates a group with its owner and first members.
#[utoipa::path(post, path = "/v1/groups", operation_id = "create_group", tag = "groups", request_body = CreateGroup,
    responses((status = 200, body = GroupView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn create(State(st): State<ApiState>, req: Signed<CreateGroup>) -> Result<Json<GroupView>, ApiError> {
    create_group(&st, &req.app, req.body).await.map(Json)
}

pub async fn create_group(st: &ApiState, app: &App, b: CreateGroup) -> Result<GroupView, ApiError> {
    let spec = input::group_spec(GroupInput {
        id: b.id.as_deref(),
        name: b.name,
        owner: &b.owner,
        members: &b.members,
        metadata: b.metadata,
        avatar_url: b.avatar_url,
        announcement: b.announcement,
        join_policy: b.join_policy.as_deref(),
    })?;
    Ok(groups::create(&st.pipeline, app, &Actor::Server, spec).await?.into())
}

#[utoipa::path(get, path = "/v1/groups/{group_id}", operation_id = "get_group", tag = "groups", params(("group_id" = String, Path)),
    responses((status = 200, body = GroupView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<GroupView>, ApiError> {
    get_group(&st, &req.app, &id).await.map(Json)
}

pub async fn get_group(st: &ApiState, app: &App, id: &str) -> Result<GroupView, ApiError> {
    Ok(groups::get(&st.pipeline, app, &parse_group(id)?).await?.into())
}

/// Changes the profile; members see a `group_updated` notice in the timeline.
#[utoipa::path(patch, path = "/v1/groups/{group_id}", operation_id = "update_group", tag = "groups", params(("group_id" = String, Path)),
    request_body = UpdateGroup,
    responses((status = 200, body = GroupView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn update(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<UpdateGroup>,
) -> Result<Json<GroupView>, ApiError> {
    update_group(&st, &req.app, &id, req.body).await.map(Json)
}

pub async fn update_group(st: &ApiState, app: &App, id: &str, b: UpdateGroup) -> Result<GroupView, ApiError> {
    let id = parse_group(id)?;
    let patch = GroupPatch {
        name: b.name,
        avatar_url: b.avatar_url,
        announcement: b.announcement,
        metadata: b.metadata,
        join_policy: b.join_policy.as_deref().map(input::join_policy).transpose()?,
        mute_all: b.mute_all,
    };
    Ok(groups::update(&st.pipeline, app, &Actor::Server, &id, patch)
        .await?
        .into())
}

/// Dismisses the group: it, its timeline and its members' entries go; each member gets a
/// `group_dismissed` notice; `group.dismissed` is sent.
#[utoipa::path(delete, path = "/v1/groups/{group_id}", operation_id = "dismiss_group", tag = "groups", params(("group_id" = String, Path)),
    responses((status = 200, body = Done), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn dismiss(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<Done>, ApiError> {
    dismiss_group(&st, &req.app, &id).await.map(Json)
}

pub async fn dismiss_group(st: &ApiState, app: &App, id: &str) -> Result<Done, ApiError> {
    groups::dismiss(&st.pipeline, app, &Actor::Server, &parse_group(id)?).await?;
    Ok(Done { ok: true })
}

// ---- members -----------------------------------------------------------------------

/// Adds members whatever the join policy; existing members are left as they are.
#[utoipa::path(post, path = "/v1/groups/{group_id}/members", operation_id = "add_members", tag = "groups", params(("group_id" = String, Path)), request_body = AddMembers,
    responses((status = 200, body = AddedAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn add_members(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<AddMembers>,
) -> Result<Json<AddedAnswer>, ApiError> {
    add_group_members(&st, &req.app, &id, req.body).await.map(Json)
}

pub async fn add_group_members(st: &ApiState, app: &App, id: &str, body: AddMembers) -> Result<AddedAnswer, ApiError> {
    let id = parse_group(id)?;
    let users = parse_users(&body.members)?;
    let invited = groups::add_members(&st.pipeline, app, &Actor::Server, &id, &users).await?;
    Ok(AddedAnswer {
        added: invited.added.into_iter().map(UserId::into_string).collect(),
    })
}

/// Removes a member (not the owner); they stop receiving the group's messages at once and
/// get a `removed_from_group` notice.
#[utoipa::path(delete, path = "/v1/groups/{group_id}/members/{user_id}", operation_id = "remove_member", tag = "groups",
    params(("group_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = Done), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn remove_member(
    State(st): State<ApiState>,
    ApiPath((id, user)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<Done>, ApiError> {
    remove_group_member(&st, &req.app, &id, &user).await.map(Json)
}

pub async fn remove_group_member(st: &ApiState, app: &App, id: &str, user: &str) -> Result<Done, ApiError> {
    let (id, user) = (parse_group(id)?, parse_user(user)?);
    groups::remove_member(&st.pipeline, app, &Actor::Server, &id, &user).await?;
    Ok(Done { ok: true })
}

/// Members by user id, paged, with role, joined_at and muted_until.
#[utoipa::path(get, path = "/v1/groups/{group_id}/members", operation_id = "list_members", tag = "groups", params(("group_id" = String, Path), PageQuery),
    responses((status = 200, body = MembersAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn members(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<MembersAnswer>, ApiError> {
    list_members(&st, &req.app, &id, req.query()?).await.map(Json)
}

pub async fn list_members(st: &ApiState, app: &App, id: &str, q: PageQuery) -> Result<MembersAnswer, ApiError> {
    let id = parse_group(id)?;
    let page = pages::members_page(
        &st.pipeline,
        app,
        &Actor::Server,
        &id,
        q.cursor.as_deref(),
        q.limit.unwrap_or(0),
    )
    .await?;
    Ok(MembersAnswer {
        members: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    })
}

#[utoipa::path(get, path = "/v1/groups/{group_id}/members/{user_id}", operation_id = "get_member", tag = "groups",
    params(("group_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = MemberView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn member(
    State(st): State<ApiState>,
    ApiPath((id, user)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<MemberView>, ApiError> {
    get_member(&st, &req.app, &id, &user).await.map(Json)
}

pub async fn get_member(st: &ApiState, app: &App, id: &str, user: &str) -> Result<MemberView, ApiError> {
    let (id, user) = (parse_group(id)?, parse_user(user)?);
    Ok(groups::member(&st.pipeline, app, &Actor::Server, &id, &user)
        .await?
        .into())
}

/// Makes a member an admin (`admin`) or an admin a member (`member`).
#[utoipa::path(post, path = "/v1/groups/{group_id}/members/{user_id}/role", operation_id = "set_role", tag = "groups",
    params(("group_id" = String, Path), ("user_id" = String, Path)), request_body = SetRole,
    responses((status = 200, body = MemberView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn set_role(
    State(st): State<ApiState>,
    ApiPath((id, user)): ApiPath<(String, String)>,
    req: Signed<SetRole>,
) -> Result<Json<MemberView>, ApiError> {
    set_member_role(&st, &req.app, &id, &user, req.body).await.map(Json)
}

pub async fn set_member_role(
    st: &ApiState,
    app: &App,
    id: &str,
    user: &str,
    b: SetRole,
) -> Result<MemberView, ApiError> {
    let (id, user, role) = (parse_group(id)?, parse_user(user)?, input::member_role(&b.role)?);
    Ok(groups::set_role(&st.pipeline, app, &Actor::Server, &id, &user, role)
        .await?
        .into())
}

/// Mutes a member in this group until a time: their sends fail with `member_muted`.
#[utoipa::path(post, path = "/v1/groups/{group_id}/members/{user_id}/mute", operation_id = "mute_member", tag = "groups",
    params(("group_id" = String, Path), ("user_id" = String, Path)), request_body = MuteMember,
    responses((status = 200, body = MemberView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn mute(
    State(st): State<ApiState>,
    ApiPath((id, user)): ApiPath<(String, String)>,
    req: Signed<Option<MuteMember>>,
) -> Result<Json<MemberView>, ApiError> {
    let until = req.body.unwrap_or_default().until;
    mute_member(&st, &req.app, &id, &user, Some(pages::mute_end(until)))
        .await
        .map(Json)
}

/// Lifts a member's mute in this group.
#[utoipa::path(delete, path = "/v1/groups/{group_id}/members/{user_id}/mute", operation_id = "unmute_member", tag = "groups",
    params(("group_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = MemberView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn unmute(
    State(st): State<ApiState>,
    ApiPath((id, user)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<MemberView>, ApiError> {
    mute_member(&st, &req.app, &id, &user, None).await.map(Json)
}

/// `until`: `Some` mutes, `None` lifts the mute.
pub async fn mute_member(
    st: &ApiState,
    app: &App,
    id: &str,
    user: &str,
    until: Option<UnixMillis>,
) -> Result<MemberView, ApiError> {
    let (id, user) = (parse_group(id)?, parse_user(user)?);
    Ok(
        groups::mute_member(&st.pipeline, app, &Actor::Server, &id, &user, until)
            .await?
            .into(),
    )
}

/// The user leaves the group (as if from the SDK); the owner must transfer first.
#[utoipa::path(post, path = "/v1/groups/{group_id}/members/{user_id}/leave", operation_id = "leave_group", tag = "groups",
    params(("group_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = Done), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn leave(
    State(st): State<ApiState>,
    ApiPath((id, user)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<Done>, ApiError> {
    leave_group(&st, &req.app, &id, &user).await.map(Json)
}

pub async fn leave_group(st: &ApiState, app: &App, id: &str, user: &str) -> Result<Done, ApiError> {
    let (id, user) = (parse_group(id)?, parse_user(user)?);
    groups::leave(&st.pipeline, app, &user, &id).await?;
    Ok(Done { ok: true })
}

/// Hands the group to another member; the old owner becomes a member.
#[utoipa::path(post, path = "/v1/groups/{group_id}/owner", operation_id = "transfer_owner", tag = "groups", params(("group_id" = String, Path)),
    request_body = TransferOwner,
    responses((status = 200, body = GroupView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn transfer(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<TransferOwner>,
) -> Result<Json<GroupView>, ApiError> {
    transfer_owner(&st, &req.app, &id, req.body).await.map(Json)
}

pub async fn transfer_owner(st: &ApiState, app: &App, id: &str, b: TransferOwner) -> Result<GroupView, ApiError> {
    let (id, to) = (parse_group(id)?, parse_user(&b.user_id)?);
    Ok(groups::transfer(&st.pipeline, app, &Actor::Server, &id, &to)
        .await?
        .into())
}

// ---- joining -----------------------------------------------------------------------

/// The user asks to join, as from the SDK: a `free` group takes them at once, an
/// `approval` group keeps a request for the admins, an `invite_only` group refuses.
#[utoipa::path(post, path = "/v1/groups/{group_id}/join", operation_id = "join_group", tag = "groups", params(("group_id" = String, Path)),
    request_body = JoinGroup,
    responses((status = 200, body = JoinAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn join(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<JoinGroup>,
) -> Result<Json<JoinAnswer>, ApiError> {
    join_group(&st, &req.app, &id, req.body).await.map(Json)
}

pub async fn join_group(st: &ApiState, app: &App, id: &str, b: JoinGroup) -> Result<JoinAnswer, ApiError> {
    let (id, user) = (parse_group(id)?, parse_user(&b.user_id)?);
    Ok(groups::join(&st.pipeline, app, &user, &id, &b.message).await?.into())
}

/// Pending join requests, by user id, paged.
#[utoipa::path(get, path = "/v1/groups/{group_id}/join-requests", operation_id = "list_join_requests", tag = "groups",
    params(("group_id" = String, Path), PageQuery),
    responses((status = 200, body = JoinRequestsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn join_requests(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<JoinRequestsAnswer>, ApiError> {
    list_join_requests(&st, &req.app, &id, req.query()?).await.map(Json)
}

pub async fn list_join_requests(
    st: &ApiState,
    app: &App,
    id: &str,
    q: PageQuery,
) -> Result<JoinRequestsAnswer, ApiError> {
    let id = parse_group(id)?;
    let page = pages::join_requests_page(
        &st.pipeline,
        app,
        &Actor::Server,
        &id,
        q.cursor.as_deref(),
        q.limit.unwrap_or(0),
    )
    .await?;
    Ok(JoinRequestsAnswer {
        requests: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    })
}

/// Accepts a pending request: the user becomes a member.
#[utoipa::path(post, path = "/v1/groups/{group_id}/join-requests/{user_id}/accept", operation_id = "accept_join_request", tag = "groups",
    params(("group_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = JoinRequestView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn accept(
    State(st): State<ApiState>,
    ApiPath((id, user)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<JoinRequestView>, ApiError> {
    answer_join_request(&st, &req.app, &id, &user, true).await.map(Json)
}

/// Declines a pending request.
#[utoipa::path(post, path = "/v1/groups/{group_id}/join-requests/{user_id}/decline", operation_id = "decline_join_request", tag = "groups",
    params(("group_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = JoinRequestView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn decline(
    State(st): State<ApiState>,
    ApiPath((id, user)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<JoinRequestView>, ApiError> {
    answer_join_request(&st, &req.app, &id, &user, false).await.map(Json)
}

pub async fn answer_join_request(
    st: &ApiState,
    app: &App,
    id: &str,
    user: &str,
    accept: bool,
) -> Result<JoinRequestView, ApiError> {
    let (id, user) = (parse_group(id)?, parse_user(user)?);
    Ok(
        groups::answer_join_request(&st.pipeline, app, &Actor::Server, &id, &user, accept)
            .await?
            .into(),
    )
}

// ---- a user's groups -----------------------------------------------------------------

/// The groups a user is in, by group id, paged.
#[utoipa::path(get, path = "/v1/users/{user_id}/groups", operation_id = "list_user_groups", tag = "groups", params(("user_id" = String, Path), PageQuery),
    responses((status = 200, body = GroupsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn user_groups(
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<GroupsAnswer>, ApiError> {
    list_user_groups(&st, &req.app, &user, req.query()?).await.map(Json)
}

pub async fn list_user_groups(st: &ApiState, app: &App, user: &str, q: PageQuery) -> Result<GroupsAnswer, ApiError> {
    let user = parse_user(user)?;
    let page = pages::user_groups_page(&st.pipeline, app, &user, q.cursor.as_deref(), q.limit.unwrap_or(0)).await?;
    Ok(GroupsAnswer {
        groups: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    })
}

// ---- read receipts -------------------------------------------------------------------

/// How many members have read each of up to 100 of the group's messages (groups up to the
/// app's `group_read_receipt_limit` members).
#[utoipa::path(post, path = "/v1/groups/{group_id}/read-counts", operation_id = "get_read_counts", tag = "groups", params(("group_id" = String, Path)),
    request_body = ReadCountsQuery,
    responses((status = 200, body = ReadCountsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn read_counts(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<ReadCountsQuery>,
) -> Result<Json<ReadCountsAnswer>, ApiError> {
    group_read_counts(&st, &req.app, &id, req.body).await.map(Json)
}

pub async fn group_read_counts(
    st: &ApiState,
    app: &App,
    id: &str,
    b: ReadCountsQuery,
) -> Result<ReadCountsAnswer, ApiError> {
    let id = parse_group(id)?;
    groups::check_read_count_batch(b.msg_ids.len())?;
    let ids = b.msg_ids.iter().map(|m| parse_msg(m)).collect::<Result<Vec<_>, _>>()?;
    let counts = groups::read_counts(&st.pipeline, app, &Actor::Server, &id, &ids).await?;
    Ok(ReadCountsAnswer {
        counts: counts
            .into_iter()
            .map(|c| ReadCountView {
                msg_id: c.msg_id.into_string(),
                seq: c.seq,
                read: c.read,
                unread: c.unread,
            })
            .collect(),
    })
}

/// Who has read one message (or, with `unread=true`, who has not), by user id, paged.
#[utoipa::path(get, path = "/v1/groups/{group_id}/messages/{msg_id}/readers", operation_id = "list_readers", tag = "groups",
    params(("group_id" = String, Path), ("msg_id" = String, Path), ReadersQuery),
    responses((status = 200, body = ReadersAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn readers(
    State(st): State<ApiState>,
    ApiPath((id, msg)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<ReadersAnswer>, ApiError> {
    message_readers(&st, &req.app, &id, &msg, req.query()?).await.map(Json)
}

pub async fn message_readers(
    st: &ApiState,
    app: &App,
    id: &str,
    msg: &str,
    q: ReadersQuery,
) -> Result<ReadersAnswer, ApiError> {
    let (id, msg) = (parse_group(id)?, parse_msg(msg)?);
    let page = pages::readers_page(
        &st.pipeline,
        app,
        &Actor::Server,
        &id,
        &msg,
        q.unread.unwrap_or(false),
        q.cursor.as_deref(),
        q.limit.unwrap_or(0),
    )
    .await?;
    Ok(ReadersAnswer {
        user_ids: page.items.into_iter().map(UserId::into_string).collect(),
        next_cursor: page.next_cursor,
    })
}
