//! Moderation: the app's sensitive-word lists, user bans and app-wide mutes
//! (docs/moderation.md). Every send, from any door, is filtered by the lists in the pipeline.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::{now_ms, App, UnixMillis, WordList, WordPolicy};
use tern_platform::service::moderation as service;
use utoipa::ToSchema;

use super::dto::UserView;
use super::users::{parse_user, Done};
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::state::ApiState;

pub use tern_platform::service::moderation::MAX_REASON_CHARS;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Matched words become `*`, one per character; the message is sent.
    Replace,
    /// The send fails with `content_rejected`.
    Reject,
}

impl From<Policy> for WordPolicy {
    fn from(p: Policy) -> Self {
        match p {
            Policy::Replace => Self::Replace,
            Policy::Reject => Self::Reject,
        }
    }
}

impl From<WordPolicy> for Policy {
    fn from(p: WordPolicy) -> Self {
        match p {
            WordPolicy::Replace => Self::Replace,
            WordPolicy::Reject => Self::Reject,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutWordList {
    pub policy: Policy,
    /// 1 to 10,000 words of at most 64 characters; trimmed, and duplicates (ignoring ASCII
    /// case) dropped.
    pub words: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WordListView {
    pub name: String,
    pub policy: Policy,
    pub words: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<WordList> for WordListView {
    fn from(l: WordList) -> Self {
        Self {
            name: l.name,
            policy: l.policy.into(),
            words: l.words,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WordListsAnswer {
    pub word_lists: Vec<WordListView>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    /// Unix ms when the ban ends; `null` or absent: forever (stored as 253402300799999).
    pub until: Option<i64>,
    /// Shown to the user's closed sessions in the `kicked` push; at most 256 characters.
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteRequest {
    /// Unix ms when the mute ends; `null` or absent: forever (stored as 253402300799999).
    pub until: Option<i64>,
}

fn parse_list_name(name: &str) -> Result<String, ApiError> {
    service::check_list_name(name)?;
    Ok(name.to_owned())
}

/// A ban's or mute's end: in the future, at most `FOREVER`; `None` is `FOREVER`.
pub(crate) fn parse_until(until: Option<i64>, now: UnixMillis) -> Result<UnixMillis, ApiError> {
    Ok(service::restriction_end(until, now)?)
}

/// The app's sensitive-word lists, by name.
#[utoipa::path(get, path = "/v1/moderation/word-lists", operation_id = "list_word_lists", tag = "moderation",
    responses((status = 200, body = WordListsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn list_word_lists(State(st): State<ApiState>, req: Signed<()>) -> Result<Json<WordListsAnswer>, ApiError> {
    word_lists(&st, &req.app).await.map(Json)
}

pub async fn word_lists(st: &ApiState, app: &App) -> Result<WordListsAnswer, ApiError> {
    let lists = service::word_lists(&st.pipeline, app).await?;
    Ok(WordListsAnswer {
        word_lists: lists.into_iter().map(Into::into).collect(),
    })
}

/// One word list.
#[utoipa::path(get, path = "/v1/moderation/word-lists/{name}", operation_id = "get_word_list", tag = "moderation", params(("name" = String, Path)),
    responses((status = 200, body = WordListView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get_word_list(
    State(st): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<WordListView>, ApiError> {
    word_list(&st, &req.app, &name).await.map(Json)
}

pub async fn word_list(st: &ApiState, app: &App, name: &str) -> Result<WordListView, ApiError> {
    let name = parse_list_name(name)?;
    Ok(service::word_list(&st.pipeline, app, &name).await?.into())
}

/// Creates or replaces a word list; sends are filtered by it at once on this node and
/// within a second on the others.
#[utoipa::path(put, path = "/v1/moderation/word-lists/{name}", operation_id = "put_word_list", tag = "moderation", params(("name" = String, Path)),
    request_body = PutWordList,
    responses((status = 200, body = WordListView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn put_word_list(
    State(st): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    req: Signed<PutWordList>,
) -> Result<Json<WordListView>, ApiError> {
    store_word_list(&st, &req.app, &name, req.body).await.map(Json)
}

pub async fn store_word_list(
    st: &ApiState,
    app: &App,
    name: &str,
    body: PutWordList,
) -> Result<WordListView, ApiError> {
    Ok(
        service::replace_word_list(&st.pipeline, app, name, body.policy.into(), body.words)
            .await?
            .into(),
    )
}

/// Deletes a word list.
#[utoipa::path(delete, path = "/v1/moderation/word-lists/{name}", operation_id = "delete_word_list", tag = "moderation", params(("name" = String, Path)),
    responses((status = 200, body = Done), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn delete_word_list(
    State(st): State<ApiState>,
    ApiPath(name): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<Done>, ApiError> {
    remove_word_list(&st, &req.app, &name).await.map(Json)
}

pub async fn remove_word_list(st: &ApiState, app: &App, name: &str) -> Result<Done, ApiError> {
    let name = parse_list_name(name)?;
    service::delete_word_list(&st.pipeline, app, &name).await?;
    Ok(Done { ok: true })
}

/// Bans a user until a time (or forever): their sessions close at once with `user_banned`,
/// new logins and sends fail with `user_banned`. Banning again replaces the end.
#[utoipa::path(post, path = "/v1/users/{user_id}/ban", operation_id = "ban_user", tag = "moderation", params(("user_id" = String, Path)),
    request_body = BanRequest,
    responses((status = 200, body = UserView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn ban(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<Option<BanRequest>>,
) -> Result<Json<UserView>, ApiError> {
    ban_user(&st, &req.app, &id, req.body.unwrap_or_default())
        .await
        .map(Json)
}

pub async fn ban_user(st: &ApiState, app: &App, id: &str, body: BanRequest) -> Result<UserView, ApiError> {
    let until = parse_until(body.until, now_ms())?;
    let reason = body.reason.unwrap_or_default();
    service::check_reason(&reason)?;
    let id = parse_user(id)?;
    Ok(service::ban(&st.pipeline, app, &id, until, &reason).await?.into())
}

/// Lifts a user's ban; they may log in again.
#[utoipa::path(delete, path = "/v1/users/{user_id}/ban", operation_id = "unban_user", tag = "moderation", params(("user_id" = String, Path)),
    responses((status = 200, body = UserView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn unban(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<UserView>, ApiError> {
    unban_user(&st, &req.app, &id).await.map(Json)
}

pub async fn unban_user(st: &ApiState, app: &App, id: &str) -> Result<UserView, ApiError> {
    let id = parse_user(id)?;
    Ok(service::unban(&st.pipeline, app, &id).await?.into())
}

/// Mutes a user app-wide until a time (or forever): they stay connected and read, but
/// every send fails with `user_muted`.
#[utoipa::path(post, path = "/v1/users/{user_id}/mute", operation_id = "mute_user", tag = "moderation", params(("user_id" = String, Path)),
    request_body = MuteRequest,
    responses((status = 200, body = UserView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn mute(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<Option<MuteRequest>>,
) -> Result<Json<UserView>, ApiError> {
    mute_user(&st, &req.app, &id, req.body.unwrap_or_default())
        .await
        .map(Json)
}

pub async fn mute_user(st: &ApiState, app: &App, id: &str, body: MuteRequest) -> Result<UserView, ApiError> {
    let until = parse_until(body.until, now_ms())?;
    let id = parse_user(id)?;
    Ok(service::mute(&st.pipeline, app, &id, until).await?.into())
}

/// Lifts a user's app-wide mute.
#[utoipa::path(delete, path = "/v1/users/{user_id}/mute", operation_id = "unmute_user", tag = "moderation", params(("user_id" = String, Path)),
    responses((status = 200, body = UserView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn unmute(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<UserView>, ApiError> {
    unmute_user(&st, &req.app, &id).await.map(Json)
}

pub async fn unmute_user(st: &ApiState, app: &App, id: &str) -> Result<UserView, ApiError> {
    let id = parse_user(id)?;
    Ok(service::unmute(&st.pipeline, app, &id).await?.into())
}
