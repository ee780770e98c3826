//! An app's sensitive-word lists, the ones moderation filters every send with: each list's
//! name, policy (`replace`: matched words become `*`; `reject`: the send fails) and words,
//! shown to any role; created, replaced and deleted by developers and up, each change
//! audited. The platform checks names, words and limits and writes
//! (`service::moderation::{replace_word_list, delete_word_list}`, what the server API's
//! `PUT /v1/moderation/word-lists/{name}` calls); a refused form answers 400 saying why and
//! keeps nothing.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tern_platform::domain::{ConsoleRole, WordPolicy, MAX_WORDS_PER_LIST, MAX_WORD_CHARS, MAX_WORD_LISTS};
use tern_platform::error::DeliveryError;
use tern_platform::service::moderation;

use super::{audit, notice, see_other};
use crate::auth::{app_scope, Auth, NoFields, Posted};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, Chrome};

pub struct ListRow {
    pub name: String,
    pub policy: &'static str,
    pub count: usize,
    /// One word a line, as the form takes them back.
    pub words: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "word_lists.html")]
struct WordListsPage {
    chrome: Chrome,
    lists: Vec<ListRow>,
    can_edit: bool,
    error: Option<String>,
    max_lists: usize,
    max_words: usize,
    max_word_chars: usize,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// The list form: a name, a policy, and the words one a line.
#[derive(Deserialize)]
pub struct ListForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    policy: String,
    #[serde(default)]
    words: String,
}

/// The words of a form's text area: one a line (a word may hold spaces: a phrase).
pub fn words_of(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn page(
    st: &ConsoleState,
    auth: &Auth,
    tenant: &str,
    app: &str,
    done: Option<&str>,
    error: Option<String>,
) -> Result<WordListsPage, PageError> {
    let (scope, app) = app_scope(st, &auth.viewer, tenant, app).await?;
    let lists = moderation::word_lists(&st.pipeline, &app).await?;
    let chrome = Chrome::new(&auth.viewer, format!("Word lists of {}", app.name))
        .in_tenant(&scope)
        .in_app(&app, "app")
        .notice(notice(done));
    Ok(WordListsPage {
        chrome,
        lists: lists
            .into_iter()
            .map(|l| ListRow {
                policy: l.policy.as_str(),
                count: l.words.len(),
                words: l.words.join("\n"),
                updated: when(l.updated_at),
                name: l.name,
            })
            .collect(),
        can_edit: scope.role >= ConsoleRole::Developer,
        error,
        max_lists: MAX_WORD_LISTS,
        max_words: MAX_WORDS_PER_LIST,
        max_word_chars: MAX_WORD_CHARS,
    })
}

fn lists_url(app: &tern_platform::domain::App) -> String {
    format!("{}/t/{}/apps/{}/word-lists", crate::BASE, app.tenant_id, app.id)
}

pub async fn show(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PageError> {
    Ok(html(page(&st, &auth, &tenant, &app, q.done.as_deref(), None).await?))
}

/// Creates the list, or replaces the one of that name.
pub async fn save(
    State(st): State<ConsoleState>,
    Path((tenant, app_raw)): Path<(String, String)>,
    posted: Posted<ListForm>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app_raw).await?;
    scope.require(ConsoleRole::Developer, "Changing word lists")?;
    let form = &posted.form;
    let name = form.name.trim();
    let saved = match WordPolicy::parse(form.policy.trim()) {
        None => Err(DeliveryError::InvalidArgument(
            "policy must be replace or reject".into(),
        )),
        Some(policy) => moderation::replace_word_list(&st.pipeline, &app, name, policy, words_of(&form.words)).await,
    };
    let list = match saved {
        Ok(list) => list,
        Err(DeliveryError::InvalidArgument(m)) => {
            // The page again, saying why; nothing was written.
            let page = page(&st, auth, &tenant, &app_raw, None, Some(m)).await?;
            let mut response = html(page);
            *response.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(response);
        }
        Err(e) => return Err(e.into()),
    };
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.word_list.put",
        &list.name,
        format!("{}, {} words", list.policy.as_str(), list.words.len()),
    )
    .await?;
    Ok(see_other(&format!("{}?done=word-list-saved", lists_url(&app))))
}

/// Deletes a list: sends are no longer filtered by it.
pub async fn delete(
    State(st): State<ConsoleState>,
    Path((tenant, app, name)): Path<(String, String, String)>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Deleting word lists")?;
    moderation::delete_word_list(&st.pipeline, &app, &name).await?;
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.word_list.delete",
        &name,
        String::new(),
    )
    .await?;
    Ok(see_other(&format!("{}?done=word-list-deleted", lists_url(&app))))
}
