//! Groups through the server API: create, read, members.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tern_platform::domain::{now_ms, App};
use tern_platform::ids::{GroupId, UserId};
use tern_platform::store::NewGroup;
use tern_platform::webhook::after_event;
use utoipa::ToSchema;

use super::dto::*;
use super::users::parse_user;
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::state::ApiState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// 1–64 characters of `[A-Za-z0-9_.@-]`, unique in the app.
    pub id: String,
    pub name: String,
    pub owner: String,
    #[serde(default)]
    pub members: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Value>,
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

async fn require_users(st: &ApiState, app: &tern_platform::ids::AppId, ids: &[UserId]) -> Result<(), ApiError> {
    let existing = st.store.existing_users(app, ids).await?;
    let missing: Vec<&str> = ids
        .iter()
        .filter(|u| !existing.contains(u))
        .map(UserId::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            format!("users not found: {}", missing.join(", ")),
        ))
    }
}

fn parse_users(ids: &[String]) -> Result<Vec<UserId>, ApiError> {
    let mut out: Vec<UserId> = Vec::with_capacity(ids.len());
    for id in ids {
        let u = parse_user(id)?;
        if !out.contains(&u) {
            out.push(u);
        }
    }
    Ok(out)
}

/// Creates a group with its owner and first members.
#[utoipa::path(post, path = "/v1/groups", tag = "groups", request_body = CreateGroup,
    responses((status = 200, body = GroupView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn create(State(st): State<ApiState>, req: Signed<CreateGroup>) -> Result<Json<GroupView>, ApiError> {
    create_group(&st, &req.app, req.body).await.map(Json)
}

pub async fn create_group(st: &ApiState, app: &App, b: CreateGroup) -> Result<GroupView, ApiError> {
    let id = GroupId::parse(&b.id)?;
    if b.name.trim().is_empty() || b.name.chars().count() > 100 {
        return Err(ApiError::invalid("name must be 1 to 100 characters"));
    }
    let member_limit = app.settings.group_member_limit;
    if b.members.len() > member_limit {
        return Err(ApiError::invalid(format!("at most {member_limit} members")));
    }
    let owner = parse_user(&b.owner)?;
    let members = parse_users(&b.members)?;
    let metadata = b.metadata.unwrap_or_else(|| serde_json::json!({}));
    if !metadata.is_object() {
        return Err(ApiError::invalid("metadata must be a JSON object"));
    }
    let mut all = members.clone();
    all.push(owner.clone());
    require_users(st, &app.id, &all).await?;
    let group = NewGroup {
        id,
        name: b.name,
        owner,
        members,
        metadata,
        member_limit,
        events: Vec::new(),
    };
    let now = now_ms();
    let data = json!({"group_id": group.id, "name": group.name, "owner": group.owner, "members": group.members});
    let group = NewGroup {
        events: after_event(app, "group.created", data, now).into_iter().collect(),
        ..group
    };
    let g = st.store.create_group(&app.id, &group, now).await?;
    st.pipeline.outbox_written(!group.events.is_empty());
    Ok(g.into())
}

#[utoipa::path(get, path = "/v1/groups/{group_id}", tag = "groups", params(("group_id" = String, Path)),
    responses((status = 200, body = GroupView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<GroupView>, ApiError> {
    get_group(&st, &req.app, &id).await.map(Json)
}

pub async fn get_group(st: &ApiState, app: &App, id: &str) -> Result<GroupView, ApiError> {
    let id = GroupId::parse(id)?;
    let g = st
        .store
        .group(&app.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    Ok(g.into())
}

/// Adds members; existing members are left as they are.
#[utoipa::path(post, path = "/v1/groups/{group_id}/members", tag = "groups", params(("group_id" = String, Path)), request_body = AddMembers,
    responses((status = 200, body = AddedAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn add_members(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<AddMembers>,
) -> Result<Json<AddedAnswer>, ApiError> {
    add_group_members(&st, &req.app, &id, req.body).await.map(Json)
}

pub async fn add_group_members(st: &ApiState, app: &App, id: &str, body: AddMembers) -> Result<AddedAnswer, ApiError> {
    let id = GroupId::parse(id)?;
    if !(1..=500).contains(&body.members.len()) {
        return Err(ApiError::invalid("members must hold 1 to 500 users"));
    }
    let users = parse_users(&body.members)?;
    st.store
        .group(&app.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    require_users(st, &app.id, &users).await?;
    let now = now_ms();
    let added = st
        .store
        .add_group_members(
            &app.id,
            &id,
            &users,
            app.settings.group_member_limit,
            now,
            &|added: &[UserId]| {
                let data = json!({"group_id": id, "members": added});
                after_event(app, "group.member_added", data, now).into_iter().collect()
            },
        )
        .await?;
    // An event is written exactly when someone was added and the app wants it.
    st.pipeline
        .outbox_written(!added.is_empty() && app.settings.webhook.wants("group.member_added"));
    Ok(AddedAnswer {
        added: added.into_iter().map(UserId::into_string).collect(),
    })
}

/// Removes a member; they stop receiving the group's messages at once.
#[utoipa::path(delete, path = "/v1/groups/{group_id}/members/{user_id}", tag = "groups",
    params(("group_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = super::users::Done), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn remove_member(
    State(st): State<ApiState>,
    ApiPath((id, user)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<super::users::Done>, ApiError> {
    remove_group_member(&st, &req.app, &id, &user).await.map(Json)
}

pub async fn remove_group_member(
    st: &ApiState,
    app: &App,
    id: &str,
    user: &str,
) -> Result<super::users::Done, ApiError> {
    let id = GroupId::parse(id)?;
    let user = parse_user(user)?;
    st.store
        .group(&app.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    let now = now_ms();
    let event = after_event(
        app,
        "group.member_removed",
        json!({"group_id": id, "user_id": user}),
        now,
    );
    let events: Vec<_> = event.into_iter().collect();
    st.store
        .remove_group_member(&app.id, &id, &user, &events)
        .await
        .map_err(|e| match e {
            tern_platform::store::StoreError::NotFound(_) => ApiError::not_found("member"),
            e => e.into(),
        })?;
    st.pipeline.outbox_written(!events.is_empty());
    Ok(super::users::Done { ok: true })
}

/// Members by user id, paged.
#[utoipa::path(get, path = "/v1/groups/{group_id}/members", tag = "groups", params(("group_id" = String, Path), PageQuery),
    responses((status = 200, body = MembersAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn members(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<MembersAnswer>, ApiError> {
    list_members(&st, &req.app, &id, req.query()?).await.map(Json)
}

pub async fn list_members(st: &ApiState, app: &App, id: &str, q: PageQuery) -> Result<MembersAnswer, ApiError> {
    let id = GroupId::parse(id)?;
    let limit = tern_platform::delivery::clamp_limit(q.limit.unwrap_or(0));
    let after = q
        .cursor
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .map(|c| parse_user(&c))
        .transpose()?;
    st.store
        .group(&app.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    let list = st.store.group_members(&app.id, &id, after.as_ref(), limit).await?;
    let next_cursor = (list.len() as u32 == limit)
        .then(|| list.last().map(|m| encode_cursor(m.user_id.as_str())))
        .flatten();
    Ok(MembersAnswer {
        members: list.into_iter().map(Into::into).collect(),
        next_cursor,
    })
}
