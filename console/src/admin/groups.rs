//! `/admin/v1/tenants/{tenant}/apps/{app}/groups…` and `…/rooms`: the groups and rooms
//! page as JSON. The app's groups by id (searched by id prefix or part of the name); a group
//! by id with its settings, its members and roles (paged by user id);
//! the app's rooms with how many users are in each now (the live count the gateway keeps),
//! paged by room id. Read-only, as the page is: groups and rooms change through the server
//! API. The platform answers (`tern_platform::{groups, rooms}`).

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::delivery::Actor;
use tern_platform::domain::{now_ms, Group, GroupMember};
use tern_platform::ids::{GroupId, RoomId, UserId};
use tern_platform::rooms::RoomDetail;
use tern_platform::{groups, rooms, service};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::AdminError;
use super::views::ErrorEnvelope;
use crate::auth::app_scope;
use crate::state::ConsoleState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminGroup {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub member_count: i64,
    /// `free`, `approval` or `invite_only`.
    pub join_policy: String,
    /// Only the owner and admins may send.
    pub mute_all: bool,
    pub announcement: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Group> for AdminGroup {
    fn from(g: Group) -> Self {
        Self {
            id: g.id.to_string(),
            name: g.name,
            owner: g.owner.to_string(),
            member_count: g.member_count,
            join_policy: g.join_policy.as_str().to_owned(),
            mute_all: g.mute_all,
            announcement: g.announcement,
            avatar_url: g.avatar_url,
            metadata: g.metadata,
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminGroupMember {
    pub user_id: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    pub joined_at: i64,
    /// Until when they may not send here; absent unless muted now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<i64>,
}

impl AdminGroupMember {
    fn at(m: GroupMember, now: i64) -> Self {
        Self {
            muted_until: m.is_muted_at(now).then_some(m.muted_until).flatten(),
            user_id: m.user_id.to_string(),
            role: m.role.as_str().to_owned(),
            joined_at: m.joined_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminGroupMembers {
    /// By user id.
    pub members: Vec<AdminGroupMember>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminGroups {
    /// By id.
    pub groups: Vec<AdminGroup>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupSearchQuery {
    /// Groups whose id starts with this or whose name contains it (ignoring case); at most
    /// 128 characters. Absent or empty: every group.
    q: Option<String>,
    /// The last group id of the previous page.
    after: Option<String>,
    /// 1 to 200 (default 50).
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminRoom {
    pub id: String,
    pub name: String,
    /// Users in it now, on every node (the gateway's live count).
    pub online: u64,
    /// Seq of its newest message (0: none yet).
    pub last_seq: i64,
    /// How it was created: `server_api`, or `join` (a user's first join).
    pub created_by: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: i64,
}

impl From<RoomDetail> for AdminRoom {
    fn from(d: RoomDetail) -> Self {
        Self {
            id: d.room.id.to_string(),
            name: d.room.name,
            online: d.member_count,
            last_seq: d.room.last_seq,
            created_by: d.room.created_by.as_str().to_owned(),
            metadata: d.room.metadata,
            created_at: d.room.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminRooms {
    /// By id.
    pub rooms: Vec<AdminRoom>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AfterQuery {
    /// The last id of the previous page.
    after: Option<String>,
    /// 1 to 200 (default 50).
    limit: Option<u32>,
}

fn after_of<T>(raw: Option<&str>, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, AdminError> {
    match raw.map(str::trim).filter(|a| !a.is_empty()) {
        None => Ok(None),
        Some(a) => parse(a)
            .map(Some)
            .ok_or_else(|| AdminError::invalid_field("after", format!("“{a}” is not an id of this list"))),
    }
}

/// The app's groups by id, searched by id prefix or part of the name.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/groups", operation_id = "admin_list_groups", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"), GroupSearchQuery),
    responses((status = 200, body = AdminGroups), (status = "4XX", body = ErrorEnvelope)))]
pub async fn list_groups(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<GroupSearchQuery>,
) -> Result<Json<AdminGroups>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let after = after_of(q.after.as_deref(), |a| GroupId::parse(a).ok())?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let query = q.q.as_deref().unwrap_or_default();
    let found = service::groups::search(&st.pipeline, &app, query, after.as_ref(), limit)
        .await
        .map_err(|e| match e {
            tern_platform::error::DeliveryError::InvalidArgument(m) => AdminError::invalid_field("q", m),
            e => e.into(),
        })?;
    let next_after = (found.len() as u32 == limit)
        .then(|| found.last().map(|g| g.id.to_string()))
        .flatten();
    Ok(Json(AdminGroups {
        groups: found.into_iter().map(AdminGroup::from).collect(),
        next_after,
    }))
}

/// One group of the app by id (another app's group is 404).
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/groups/{group}", operation_id = "admin_get_group", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"),
        ("group" = String, Path, description = "The group's id")),
    responses((status = 200, body = AdminGroup), (status = "4XX", body = ErrorEnvelope)))]
pub async fn group(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, group)): Path<(String, String, String)>,
) -> Result<Json<AdminGroup>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let id = GroupId::parse(&group).map_err(|_| AdminError::not_found())?;
    Ok(Json(groups::get(&st.pipeline, &app, &id).await?.into()))
}

/// A group's members and their roles, by user id.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/groups/{group}/members", operation_id = "admin_group_members", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"),
        ("group" = String, Path, description = "The group's id"), AfterQuery),
    responses((status = 200, body = AdminGroupMembers), (status = "4XX", body = ErrorEnvelope)))]
pub async fn members(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, group)): Path<(String, String, String)>,
    Query(q): Query<AfterQuery>,
) -> Result<Json<AdminGroupMembers>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let id = GroupId::parse(&group).map_err(|_| AdminError::not_found())?;
    let after = after_of(q.after.as_deref(), |a| UserId::parse(a).ok())?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let found = groups::members(&st.pipeline, &app, &Actor::Server, &id, after.as_ref(), limit).await?;
    let next_after = (found.len() as u32 == limit)
        .then(|| found.last().map(|m| m.user_id.to_string()))
        .flatten();
    let now = now_ms();
    Ok(Json(AdminGroupMembers {
        members: found.into_iter().map(|m| AdminGroupMember::at(m, now)).collect(),
        next_after,
    }))
}

/// The app's rooms by id, each with how many users are in it now.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/rooms", operation_id = "admin_list_rooms", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"), AfterQuery),
    responses((status = 200, body = AdminRooms), (status = "4XX", body = ErrorEnvelope)))]
pub async fn list_rooms(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<AfterQuery>,
) -> Result<Json<AdminRooms>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let after = after_of(q.after.as_deref(), |a| RoomId::parse(a).ok())?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let found = rooms::list(&st.pipeline, &app, after.as_ref(), limit).await?;
    let next_after = (found.len() as u32 == limit)
        .then(|| found.last().map(|d| d.room.id.to_string()))
        .flatten();
    Ok(Json(AdminRooms {
        rooms: found.into_iter().map(AdminRoom::from).collect(),
        next_after,
    }))
}
