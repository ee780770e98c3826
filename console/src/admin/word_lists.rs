//! `/admin/v1/tenants/{tenant}/apps/{app}/word-lists…`: the word lists page as JSON. An
//! app's sensitive-word lists (any role reads them); create or replace one, delete one
//! (developer and up, audited as on the page). The platform checks and writes, as for the
//! server API's `PUT /v1/moderation/word-lists/{name}` (`service::moderation`): a bad name,
//! policy, word or too many of them is `invalid_argument` naming the field, and nothing is
//! kept.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::{ConsoleRole, WordList, WordPolicy};
use tern_platform::error::DeliveryError;
use tern_platform::service::moderation;
use utoipa::ToSchema;

use super::caller::Caller;
use super::error::{AdminError, JsonBody};
use super::views::{AdminDone, ErrorEnvelope};
use crate::auth::app_scope;
use crate::state::ConsoleState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminWordList {
    /// 1–64 characters of `[A-Za-z0-9_.-]`, unique in the app.
    pub name: String,
    /// `replace` (matched words become `*`) or `reject` (the send fails with `content_rejected`).
    pub policy: String,
    /// Trimmed, without duplicates (ignoring ASCII case), in the order given.
    pub words: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<WordList> for AdminWordList {
    fn from(l: WordList) -> Self {
        Self {
            policy: l.policy.as_str().to_owned(),
            name: l.name,
            words: l.words,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminWordLists {
    /// By name.
    pub word_lists: Vec<AdminWordList>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminWordListBody {
    /// `replace` or `reject`.
    pub policy: String,
    /// 1 to 10,000 words of at most 64 characters each.
    pub words: Vec<String>,
}

/// The platform's refusal of a list, naming the field its message is about.
fn refused(e: DeliveryError) -> AdminError {
    match e {
        DeliveryError::InvalidArgument(m) => {
            let field = ["name", "policy", "words"]
                .into_iter()
                .find(|f| m.starts_with(f))
                .unwrap_or("words");
            AdminError::invalid_field(field, m)
        }
        e => e.into(),
    }
}

/// The app's sensitive-word lists, by name.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/word-lists", operation_id = "admin_word_lists", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id")),
    responses((status = 200, body = AdminWordLists), (status = "4XX", body = ErrorEnvelope)))]
pub async fn list(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<AdminWordLists>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let lists = moderation::word_lists(&st.pipeline, &app).await?;
    Ok(Json(AdminWordLists {
        word_lists: lists.into_iter().map(AdminWordList::from).collect(),
    }))
}

/// One word list (none of that name: 404).
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/word-lists/{name}", operation_id = "admin_word_list", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"),
        ("name" = String, Path, description = "The list's name")),
    responses((status = 200, body = AdminWordList), (status = "4XX", body = ErrorEnvelope)))]
pub async fn get(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, name)): Path<(String, String, String)>,
) -> Result<Json<AdminWordList>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    Ok(Json(moderation::word_list(&st.pipeline, &app, &name).await?.into()))
}

/// Creates the list, or replaces the one of that name (developer and up); sends are
/// filtered by it at once.
#[utoipa::path(put, path = "/admin/v1/tenants/{tenant}/apps/{app}/word-lists/{name}", operation_id = "admin_put_word_list", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"),
        ("name" = String, Path, description = "The list's name: 1–64 characters of [A-Za-z0-9_.-]")),
    request_body = AdminWordListBody,
    responses((status = 200, body = AdminWordList), (status = "4XX", body = ErrorEnvelope)))]
pub async fn put(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, name)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<AdminWordListBody>,
) -> Result<Json<AdminWordList>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Changing word lists")?;
    let policy = WordPolicy::parse(&body.policy)
        .ok_or_else(|| AdminError::invalid_field("policy", "policy must be replace or reject"))?;
    let list = moderation::replace_word_list(&st.pipeline, &app, &name, policy, body.words)
        .await
        .map_err(refused)?;
    c.audit(
        &st,
        None,
        Some(&app),
        "app.word_list.put",
        &list.name,
        format!("{}, {} words", list.policy.as_str(), list.words.len()),
    )
    .await?;
    Ok(Json(list.into()))
}

/// Deletes a list (developer and up): sends are no longer filtered by it.
#[utoipa::path(delete, path = "/admin/v1/tenants/{tenant}/apps/{app}/word-lists/{name}", operation_id = "admin_delete_word_list", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"),
        ("name" = String, Path, description = "The list's name")),
    responses((status = 200, body = AdminDone), (status = "4XX", body = ErrorEnvelope)))]
pub async fn delete(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, name)): Path<(String, String, String)>,
) -> Result<Json<AdminDone>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Deleting word lists")?;
    moderation::delete_word_list(&st.pipeline, &app, &name).await?;
    c.audit(&st, None, Some(&app), "app.word_list.delete", &name, String::new())
        .await?;
    Ok(Json(AdminDone { done: true }))
}
