//! Moderation: the app's sensitive-word lists, user bans and app-wide mutes
//! (docs/moderation.md). Every send, from any door, is filtered by the lists in the pipeline.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::{
    normalize_words, now_ms, validate_word_list_name, App, UnixMillis, WordList, WordPolicy, FOREVER, MAX_WORD_LISTS,
};
use tern_platform::ids::UserId;
use tern_platform::store::StoreError;
use utoipa::ToSchema;

use super::dto::UserView;
use super::users::{parse_user, Done};
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::state::ApiState;

/// Longest `reason` of a ban, in characters.
pub const MAX_REASON_CHARS: usize = 256;

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
    validate_word_list_name(name).map_err(ApiError::invalid)?;
    Ok(name.to_owned())
}

/// A ban's or mute's end: in the future, at most `FOREVER`; `None` is `FOREVER`.
pub(crate) fn parse_until(until: Option<i64>, now: UnixMillis) -> Result<UnixMillis, ApiError> {
    match until {
        None => Ok(FOREVER),
        Some(t) if t <= now => Err(ApiError::invalid("until must be in the future (unix ms)")),
        Some(t) if t > FOREVER => Err(ApiError::invalid(format!("until must be at most {FOREVER}"))),
        Some(t) => Ok(t),
    }
}

async fn existing_user(st: &ApiState, app: &App, id: &str) -> Result<UserId, ApiError> {
    let id = parse_user(id)?;
    st.store
        .user(&app.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(id)
}

async fn user_view(st: &ApiState, app: &App, id: &UserId) -> Result<UserView, ApiError> {
    st.store
        .user(&app.id, id)
        .await?
        .map(Into::into)
        .ok_or_else(|| ApiError::not_found("user"))
}

/// The app's sensitive-word lists, by name.
#[utoipa::path(get, path = "/v1/moderation/word-lists", tag = "moderation",
    responses((status = 200, body = WordListsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn list_word_lists(State(st): State<ApiState>, req: Signed<()>) -> Result<Json<WordListsAnswer>, ApiError> {
    word_lists(&st, &req.app).await.map(Json)
}

pub async fn word_lists(st: &ApiState, app: &App) -> Result<WordListsAnswer, ApiError> {
    let lists = st.store.word_lists(&app.id).await?;
    Ok(WordListsAnswer {
        word_lists: lists.into_iter().map(Into::into).collect(),
    })
}

/// One word list.
#[utoipa::path(get, path = "/v1/moderation/word-lists/{name}", tag = "moderation", params(("name" = String, Path)),
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
    st.store
        .word_list(&app.id, &name)
        .await?
        .map(Into::into)
        .ok_or_else(|| ApiError::not_found("word list"))
}

/// Creates or replaces a word list; sends are filtered by it at once on this node and
/// within a second on the others.
#[utoipa::path(put, path = "/v1/moderation/word-lists/{name}", tag = "moderation", params(("name" = String, Path)),
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
    let name = parse_list_name(name)?;
    let words = normalize_words(body.words).map_err(ApiError::invalid)?;
    let now = now_ms();
    let list = WordList {
        name,
        policy: body.policy.into(),
        words,
        created_at: now,
        updated_at: now,
    };
    let stored = st
        .store
        .put_word_list(&app.id, &list, MAX_WORD_LISTS)
        .await
        .map_err(|e| match e {
            // Over the number of lists: a limit of the input, like the other ones here.
            StoreError::Rejected(m) => ApiError::invalid(m),
            e => e.into(),
        })?;
    st.pipeline.word_filter().forget(&app.id);
    Ok(stored.into())
}

/// Deletes a word list.
#[utoipa::path(delete, path = "/v1/moderation/word-lists/{name}", tag = "moderation", params(("name" = String, Path)),
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
    st.store.delete_word_list(&app.id, &name).await?;
    st.pipeline.word_filter().forget(&app.id);
    Ok(Done { ok: true })
}

/// Bans a user until a time (or forever): their sessions close at once with `user_banned`,
/// new logins and sends fail with `user_banned`. Banning again replaces the end.
#[utoipa::path(post, path = "/v1/users/{user_id}/ban", tag = "moderation", params(("user_id" = String, Path)),
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
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::invalid(format!(
            "reason must be at most {MAX_REASON_CHARS} characters"
        )));
    }
    let id = existing_user(st, app, id).await?;
    st.store.set_user_ban(&app.id, &id, Some(until)).await?;
    st.pipeline.forget_user(app, &id);
    let reason = if reason.is_empty() {
        "banned by the app".to_owned()
    } else {
        reason
    };
    st.pipeline.kick(app, &id, "user_banned", &reason).await;
    user_view(st, app, &id).await
}

/// Lifts a user's ban; they may log in again.
#[utoipa::path(delete, path = "/v1/users/{user_id}/ban", tag = "moderation", params(("user_id" = String, Path)),
    responses((status = 200, body = UserView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn unban(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<UserView>, ApiError> {
    unban_user(&st, &req.app, &id).await.map(Json)
}

pub async fn unban_user(st: &ApiState, app: &App, id: &str) -> Result<UserView, ApiError> {
    let id = existing_user(st, app, id).await?;
    st.store.set_user_ban(&app.id, &id, None).await?;
    st.pipeline.forget_user(app, &id);
    user_view(st, app, &id).await
}

/// Mutes a user app-wide until a time (or forever): they stay connected and read, but
/// every send fails with `user_muted`.
#[utoipa::path(post, path = "/v1/users/{user_id}/mute", tag = "moderation", params(("user_id" = String, Path)),
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
    let id = existing_user(st, app, id).await?;
    st.store.set_user_mute(&app.id, &id, Some(until)).await?;
    st.pipeline.forget_user(app, &id);
    user_view(st, app, &id).await
}

/// Lifts a user's app-wide mute.
#[utoipa::path(delete, path = "/v1/users/{user_id}/mute", tag = "moderation", params(("user_id" = String, Path)),
    responses((status = 200, body = UserView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn unmute(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<UserView>, ApiError> {
    unmute_user(&st, &req.app, &id).await.map(Json)
}

pub async fn unmute_user(st: &ApiState, app: &App, id: &str) -> Result<UserView, ApiError> {
    let id = existing_user(st, app, id).await?;
    st.store.set_user_mute(&app.id, &id, None).await?;
    st.pipeline.forget_user(app, &id);
    user_view(st, app, &id).await
}
