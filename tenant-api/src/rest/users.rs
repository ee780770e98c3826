//! Users of an app: import (upsert), read, update, delete, tokens, kick.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::auth::token::mint_user_token;
use tern_platform::domain::{now_ms, validate_profile, App, UserProfile};
use tern_platform::ids::UserId;
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
    #[schema(value_type = Object)]
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
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Value>,
}

/// Tells "absent" (keep) from `null` (clear).
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Ok(Some(Option::deserialize(d)?))
    }
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

fn profile(
    name: Option<String>,
    avatar_url: Option<Option<String>>,
    metadata: Option<serde_json::Value>,
) -> Result<UserProfile, ApiError> {
    let p = UserProfile {
        name,
        avatar_url,
        metadata,
    };
    validate_profile(&p).map_err(ApiError::invalid)?;
    Ok(p)
}

pub(crate) fn parse_user(id: &str) -> Result<UserId, ApiError> {
    Ok(UserId::parse(id)?)
}

/// Creates or updates up to 100 users at once.
#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = UpsertUsers,
    responses((status = 200, body = UsersAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn upsert(State(st): State<ApiState>, req: Signed<UpsertUsers>) -> Result<Json<UsersAnswer>, ApiError> {
    upsert_users(&st, &req.app, req.body).await.map(Json)
}

pub async fn upsert_users(st: &ApiState, app: &App, body: UpsertUsers) -> Result<UsersAnswer, ApiError> {
    let n = body.users.len();
    if !(1..=100).contains(&n) {
        return Err(ApiError::invalid("users must hold 1 to 100 users"));
    }
    let mut input = Vec::with_capacity(n);
    for u in body.users {
        let id = parse_user(&u.id)?;
        if input.iter().any(|(seen, _)| seen == &id) {
            return Err(ApiError::invalid(format!("user {id} appears twice")));
        }
        input.push((id, profile(u.name, u.avatar_url.map(Some), u.metadata)?));
    }
    let users = st.store.upsert_users(&app.id, &input, now_ms()).await?;
    Ok(UsersAnswer {
        users: users.into_iter().map(Into::into).collect(),
        next_cursor: None,
    })
}

/// Lists the app's users by id.
#[utoipa::path(get, path = "/v1/users", tag = "users", params(PageQuery),
    responses((status = 200, body = UsersAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn list(State(st): State<ApiState>, req: Signed<()>) -> Result<Json<UsersAnswer>, ApiError> {
    list_users(&st, &req.app, req.query()?).await.map(Json)
}

pub async fn list_users(st: &ApiState, app: &App, q: PageQuery) -> Result<UsersAnswer, ApiError> {
    let limit = tern_platform::delivery::clamp_limit(q.limit.unwrap_or(0));
    let after = q
        .cursor
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .map(|c| parse_user(&c))
        .transpose()?;
    let users = st.store.list_users(&app.id, after.as_ref(), limit).await?;
    let next_cursor = (users.len() as u32 == limit)
        .then(|| users.last().map(|u| encode_cursor(u.id.as_str())))
        .flatten();
    Ok(UsersAnswer {
        users: users.into_iter().map(Into::into).collect(),
        next_cursor,
    })
}

/// A user, with whether they are online and which devices are connected.
#[utoipa::path(get, path = "/v1/users/{user_id}", tag = "users", params(("user_id" = String, Path)),
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
    let user = st
        .store
        .user(&app.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let p = st
        .pipeline
        .presence()
        .presence(&app.id, std::slice::from_ref(&id))
        .await
        .map_err(ApiError::unavailable)?;
    let p = p.into_iter().next();
    Ok(UserDetail {
        user: user.into(),
        online: p.as_ref().is_some_and(|p| p.online),
        devices: p.as_ref().map(|p| p.devices.clone()).unwrap_or_default(),
        last_seen: p.and_then(|p| p.last_seen),
    })
}

/// Updates a user's profile; absent fields keep their value.
#[utoipa::path(patch, path = "/v1/users/{user_id}", tag = "users", params(("user_id" = String, Path)), request_body = UpdateUser,
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
    st.store
        .user(&app.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let p = profile(body.name, body.avatar_url, body.metadata)?;
    let mut users = st.store.upsert_users(&app.id, &[(id, p)], now_ms()).await?;
    users
        .pop()
        .map(Into::into)
        .ok_or_else(|| ApiError::internal("upsert returned no user"))
}

/// Deletes a user and closes their sessions. Their messages stay in history.
#[utoipa::path(delete, path = "/v1/users/{user_id}", tag = "users", params(("user_id" = String, Path)),
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
    st.store.delete_user(&app.id, &id).await?;
    st.pipeline.forget_user(app, &id);
    st.pipeline.kick(app, &id, "user_deleted", "the user was deleted").await;
    Ok(Done { ok: true })
}

/// Mints a user token for SDK login (SIGNING.md §2).
#[utoipa::path(post, path = "/v1/users/{user_id}/tokens", tag = "users", params(("user_id" = String, Path)), request_body = TokenRequest,
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
    let max = app.settings.max_token_ttl_seconds;
    let ttl = ttl_seconds.unwrap_or((7 * 24 * 3600).min(max));
    if ttl < 1 || ttl > max {
        return Err(ApiError::invalid(format!("ttl_seconds must be from 1 to {max}")));
    }
    let now = now_ms();
    let secret = st
        .store
        .active_app_secrets(&app.id, now)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("app has no active secret"))?;
    let secret = st
        .secrets
        .open_string(app.id.as_str(), &secret.ciphertext)
        .map_err(ApiError::internal)?;
    let iat = now / 1000;
    let token = mint_user_token(&app.app_key, &secret, &id, iat, iat + ttl, None);
    Ok(TokenAnswer {
        token,
        expires_at: iat + ttl,
    })
}

/// Revokes every token issued to the user until now and closes their sessions.
#[utoipa::path(post, path = "/v1/users/{user_id}/tokens/revoke", tag = "users", params(("user_id" = String, Path)),
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
    st.store
        .user(&app.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    st.store.revoke_user_tokens(&app.id, &id, now_ms()).await?;
    st.pipeline
        .kick(app, &id, "token_revoked", "the user's tokens were revoked")
        .await;
    Ok(Done { ok: true })
}

/// Closes the user's sessions now; they may log in again.
#[utoipa::path(post, path = "/v1/users/{user_id}/kick", tag = "users", params(("user_id" = String, Path)),
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
    st.store
        .user(&app.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    st.pipeline.kick(app, &id, "kicked", "kicked by the app's server").await;
    let data = serde_json::json!({"user_id": id, "reason": "kicked by the app's server"});
    st.pipeline.emit(app, "user.kicked", data).await;
    Ok(Done { ok: true })
}
