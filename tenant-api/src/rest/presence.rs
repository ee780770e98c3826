//! Presence of many users at once.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::App;
use tern_platform::service::presence;
use utoipa::ToSchema;

use super::dto::PresenceView;
use super::users::parse_user;
use crate::error::ApiError;
use crate::extract::Signed;
use crate::state::ApiState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceQuery {
    /// 1 to 500 user ids.
    pub users: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PresenceAnswer {
    /// In the order asked.
    pub users: Vec<PresenceView>,
}

/// Whether each user is online, their connected devices, and when they were last seen.
#[utoipa::path(post, path = "/v1/presence/query", operation_id = "query_presence", tag = "presence", request_body = PresenceQuery,
    responses((status = 200, body = PresenceAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn query(State(st): State<ApiState>, req: Signed<PresenceQuery>) -> Result<Json<PresenceAnswer>, ApiError> {
    query_presence(&st, &req.app, req.body).await.map(Json)
}

pub async fn query_presence(st: &ApiState, app: &App, body: PresenceQuery) -> Result<PresenceAnswer, ApiError> {
    presence::check_query(body.users.len())?;
    let ids = body
        .users
        .iter()
        .map(|u| parse_user(u))
        .collect::<Result<Vec<_>, _>>()?;
    let p = presence::query(&st.pipeline, app, &ids).await?;
    Ok(PresenceAnswer {
        users: p.into_iter().map(Into::into).collect(),
    })
}
