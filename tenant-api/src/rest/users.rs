//! Users of an app: import (upsert), read, update, delete, tokens, kick.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::App;
use tern_platform::service::users as service;
use utoipa::ToSchema;

use super::dto::*;
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::state::ApiState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    /// 1–64 characters of `[A-Za-z0-9_.@-]`.
    pub id: String,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    /// A JSON object, at most 4 KiB serialised.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertUsers {
    /// 1 to 100 users.
    pub users: Vec<UserInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub name: Option<String>,
    /// `null` clears it.
    #[serde(default, with = "crate::input::double_option")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Lifetime in seconds; default 7 days, at most the app's maximum (30 days by default).
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenAnswer {
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Done {
    pub ok: bool,
}

pub(crate) use crate::input::user as parse_user;

/// Creates or updates up to 100 users at once.
#[utoipa::path(post, path = "/v1/users", operation_id = "upsert_users", tag = "users", request_body = UpsertUsers,
    responses((status = 200, body = UsersAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn upsert(State(st): State<ApiState>, req: Signed<UpsertUsers>) -> Result<Json<UsersAnswer>, ApiError> {
    upsert_users(&st, &req.app, req.body).await.map(Json)
}

pub async fn upsert_users(st: &ApiState, app: &App, body: UpsertUsers) -> Result<UsersAnswer, ApiError> {
    service::check_batch(body.users.len())?;
    let mut input = Vec::with_capacity(body.users.len());
    for u in body.users {
        let id = parse_user(&u.id)?;
        service::check_distinct(&input, &id)?;
        input.push((id, service::profile(u.name, u.avatar_url.map(Some), u.metadata)?));
    }
    let users = service::upsert(&st.pipeline, app, &input).await?;
    Ok(UsersAnswer {
        users: users.into_iter().map(Into::into).collect(),
        next_cursor: None,
    })
}

/// Lists the app's users by id.
#[utoipa::path(get, path = "/v1/users", operation_id = "list_users", tag = "users", params(PageQuery),
    responses((status = 200, body = UsersAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn list(State(st): State<ApiState>, req: Signed<()>) -> Result<Json<UsersAnswer>, ApiError> {
    list_users(&st, &req.app, req.query()?).await.map(Json)
}

pub async fn list_users(st: &ApiState, app: &App, q: PageQuery) -> Result<UsersAnswer, ApiError> {
    let page = service::list_page(&st.pipeline, app, q.cursor.as_deref(), q.limit.unwrap_or(0)).await?;
    Ok(UsersAnswer {
        users: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    })
}

/// A user, with whether they are online and which devices are connected.
#[utoipa::path(get, path = "/v1/users/{user_id}", operation_id = "get_user", tag = "users", params(("user_id" = String, Path)),
    responses((status = 200, body = UserDetail), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<UserDetail>, ApiError> {
    get_user(&st, &req.app, &id).await.map(Json)
}

pub async fn get_user(st: &ApiState, app: &App, id: &str) -> Result<UserDetail, ApiError> {
    let id = parse_user(id)?;
    let detail = service::detail(&st.pipeline, app, &id).await?;
    let p = detail.presence;
    Ok(UserDetail {
        user: detail.user.into(),
        online: p.as_ref().is_some_and(|p| p.online),
        devices: p.as_ref().map(|p| p.devices.clone()).unwrap_or_default(),
        last_seen: p.and_then(|p| p.last_seen),
    })
}

/// Updates a user's profile; absent fields keep their value.
#[utoipa::path(patch, path = "/v1/users/{user_id}", operation_id = "update_user", tag = "users", params(("user_id" = String, Path)), request_body = UpdateUser,
    responses((status = 200, body = UserView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn update(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<UpdateUser>,
) -> Result<Json<UserView>, ApiError> {
    update_user(&st, &req.app, &id, req.body).await.map(Json)
}

pub async fn update_user(st: &ApiState, app: &App, id: &str, body: UpdateUser) -> Result<UserView, ApiError> {
    let id = parse_user(id)?;
    service::get(&st.pipeline, app, &id).await?;
    let p = service::profile(body.name, body.avatar_url, body.metadata)?;
    Ok(service::update(&st.pipeline, app, &id, p).await?.into())
}

/// Deletes a user and closes their sessions. Their messages stay in history.
#[utoipa::path(delete, path = "/v1/users/{user_id}", operation_id = "delete_user", tag = "users", params(("user_id" = String, Path)),
    responses((status = 200, body = Done), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn delete(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<Done>, ApiError> {
    delete_user(&st, &req.app, &id).await.map(Json)
}

pub async fn delete_user(st: &ApiState, app: &App, id: &str) -> Result<Done, ApiError> {
    let id = parse_user(id)?;
    service::delete(&st.pipeline, app, &id).await?;
    Ok(Done { ok: true })
}

/// Mints a user token for SDK login (SIGNING.md §2).
#[utoipa::path(post, path = "/v1/users/{user_id}/tokens", operation_id = "mint_user_token", tag = "users", params(("user_id" = String, Path)), request_body = TokenRequest,
    responses((status = 200, body = TokenAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn mint_token(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<Option<TokenRequest>>,
) -> Result<Json<TokenAnswer>, ApiError> {
    user_token(&st, &req.app, &id, req.body.and_then(|b| b.ttl_seconds))
        .await
        .map(Json)
}

pub async fn user_token(st: &ApiState, app: &App, id: &str, ttl_seconds: Option<i64>) -> Result<TokenAnswer, ApiError> {
    let id = parse_user(id)?;
    let ttl = service::token_ttl(app, ttl_seconds)?;
    let minted = service::mint_token(&st.pipeline, &st.secrets, app, &id, ttl).await?;
    Ok(TokenAnswer {
        token: minted.token,
        expires_at: minted.expires_at,
    })
}

/// Revokes every token issued to the user until now and closes their sessions.
#[utoipa::path(post, path = "/v1/users/{user_id}/tokens/revoke", operation_id = "revoke_user_tokens", tag = "users", params(("user_id" = String, Path)),
    responses((status = 200, body = Done), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn revoke_tokens(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<Done>, ApiError> {
    revoke_user_tokens(&st, &req.app, &id).await.map(Json)
}

pub async fn revoke_user_tokens(st: &ApiState, app: &App, id: &str) -> Result<Done, ApiError> {
    let id = parse_user(id)?;
    service::revoke_tokens(&st.pipeline, app, &id).await?;
    Ok(Done { ok: true })
}

/// Closes the user's sessions now; they may log in again.
#[utoipa::path(post, path = "/v1/users/{user_id}/kick", operation_id = "kick_user", tag = "users", params(("user_id" = String, Path)),
    responses((status = 200, body = Done), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn kick(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<Done>, ApiError> {
    kick_user(&st, &req.app, &id).await.map(Json)
}

pub async fn kick_user(st: &ApiState, app: &App, id: &str) -> Result<Done, ApiError> {
    let id = parse_user(id)?;
    service::kick(&st.pipeline, app, &id).await?;
    Ok(Done { ok: true })
}
