//! An app's broadcasts (docs/broadcasts.md): start one (a text to every user or to a list of
//! users), each job's progress as a bar that refreshes while a job runs, the history newest
//! first, and cancel. The platform runs and keeps the jobs (`tern_platform::broadcasts`);
//! this page renders them and asks for changes.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tern_platform::broadcasts::{self, StartBroadcast};
use tern_platform::domain::{Audience, Broadcast, BroadcastState, ConsoleRole, MessageType, MAX_BROADCAST_RECIPIENTS};
use tern_platform::ids::{ClientMsgId, UserId};
use tern_platform::service::broadcasts as service;

use super::{audit, notice, see_other};
use crate::auth::{app_scope, Auth, NoFields, Posted};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, when_or, Chrome};

/// Jobs per page.
const PAGE: u32 = 25;
/// Characters of a broadcast's text shown in the list.
const TEXT_CHARS: usize = 120;

pub struct JobRow {
    pub id: String,
    pub created: String,
    pub state: &'static str,
    pub running: bool,
    /// Not done: cancelled or failed (warning colours).
    pub stopped: bool,
    pub audience: String,
    pub text: String,
    /// Users handled so far, and of how many (`None`: every user, not known until the end).
    pub seen: i64,
    pub total: Option<i64>,
    pub sent: i64,
    pub failed: i64,
    pub finished: String,
    pub error: String,
}

impl From<Broadcast> for JobRow {
    fn from(b: Broadcast) -> Self {
        let text = match b.content.get("text").and_then(|t| t.as_str()) {
            Some(t) if b.msg_type == MessageType::Text => t.to_owned(),
            _ => b.content.to_string(),
        };
        Self {
            created: when(b.created_at),
            state: b.state.as_str(),
            running: b.state == BroadcastState::Running,
            stopped: matches!(b.state, BroadcastState::Cancelled | BroadcastState::Failed),
            audience: match &b.audience {
                Audience::AllUsers => "every user".into(),
                Audience::Users(list) if list.len() == 1 => "1 user".into(),
                Audience::Users(list) => format!("{} users", list.len()),
            },
            text: text.chars().take(TEXT_CHARS).collect(),
            seen: b.users_seen,
            total: b.total,
            sent: b.sent,
            failed: b.failed,
            finished: when_or(b.finished_at, ""),
            error: b.error.unwrap_or_default(),
            id: b.id,
        }
    }
}

#[derive(Template)]
#[template(path = "broadcasts.html")]
struct BroadcastsPage {
    chrome: Chrome,
    jobs: Vec<JobRow>,
    /// Some job runs: the list refreshes itself.
    any_running: bool,
    /// The list's URL (this page, with its `before`), for the refresh.
    here: String,
    older: Option<String>,
    can_start: bool,
    /// A fresh key for the start form: posting the same form twice starts one job.
    key: String,
    max_users: usize,
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// The last job of the previous page.
    before: Option<String>,
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct StartForm {
    text: String,
    /// `all` or `list`.
    audience: String,
    #[serde(default)]
    users: String,
    key: String,
}

pub async fn list(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    let before = q
        .before
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| {
            // Job ids are `bc_` and a ULID; anything else would only page nowhere.
            if b.starts_with("bc_") && b.len() == 29 && b.is_ascii() {
                Ok(b.to_owned())
            } else {
                Err(PageError::Invalid("That page link is malformed.".into()))
            }
        })
        .transpose()?;
    let found = broadcasts::list(&st.pipeline, &app, before.as_deref(), PAGE).await?;
    let older = (found.len() as u32 == PAGE)
        .then(|| found.last().map(|b| b.id.clone()))
        .flatten();
    let jobs: Vec<JobRow> = found.into_iter().map(JobRow::from).collect();
    let chrome = Chrome::new(&auth.viewer, format!("Broadcasts of {}", app.name))
        .in_tenant(&scope)
        .in_app(&app, "broadcasts")
        .notice(notice(q.done.as_deref()));
    let here = format!(
        "{}/broadcasts{}",
        chrome.app_url(),
        before.as_deref().map(|b| format!("?before={b}")).unwrap_or_default()
    );
    Ok(html(BroadcastsPage {
        chrome,
        any_running: jobs.iter().any(|j| j.running),
        jobs,
        here,
        older,
        can_start: scope.role >= ConsoleRole::Developer,
        key: format!("console-{:032x}", rand::random::<u128>()),
        max_users: MAX_BROADCAST_RECIPIENTS,
    }))
}

/// The user ids of a list audience: separated by spaces, commas or new lines.
fn audience_of(form: &StartForm) -> Result<Option<Vec<UserId>>, PageError> {
    match form.audience.as_str() {
        "all" => Ok(None),
        "list" => {
            let raw: Vec<&str> = form
                .users
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|u| !u.is_empty())
                .collect();
            broadcasts::check_audience_size(raw.len())?;
            raw.into_iter()
                .map(|u| UserId::parse(u).map_err(|_| PageError::Invalid(format!("“{u}” is not a user id."))))
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        _ => Err(PageError::Invalid("Choose every user or a list of users.".into())),
    }
}

/// Starts a broadcast of a text message; the platform checks the text as for any message
/// (size, word lists) and the list's size. The form's key makes a double submit one job.
pub async fn start(
    State(st): State<ConsoleState>,
    Path((tenant, app)): Path<(String, String)>,
    posted: Posted<StartForm>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Starting a broadcast")?;
    let form = &posted.form;
    let text = form.text.trim();
    if text.is_empty() {
        return Err(PageError::Invalid("The message is empty.".into()));
    }
    let users = audience_of(form)?;
    let key = ClientMsgId::parse(form.key.trim()).map_err(|e| PageError::Invalid(e.to_string()))?;
    let job = service::start(
        &st.pipeline,
        &app,
        StartBroadcast {
            msg_type: MessageType::Text,
            content: json!({ "text": text }),
            client_msg_id: Some(key),
            users,
        },
        &st.broadcast_wake,
    )
    .await?;
    let row = JobRow::from(job);
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.broadcast.start",
        &row.id,
        format!("to {}", row.audience),
    )
    .await?;
    Ok(see_other(&format!(
        "{}/t/{}/apps/{}/broadcasts?done=broadcast-started",
        crate::BASE,
        app.tenant_id,
        app.id
    )))
}

/// Stops a running broadcast; users it reached keep their notification.
pub async fn cancel(
    State(st): State<ConsoleState>,
    Path((tenant, app, id)): Path<(String, String, String)>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Cancelling a broadcast")?;
    let job = broadcasts::cancel(&st.pipeline, &app, &id).await?;
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.broadcast.cancel",
        &job.id,
        format!("{}: {} sent, {} failed", job.state.as_str(), job.sent, job.failed),
    )
    .await?;
    Ok(see_other(&format!(
        "{}/t/{}/apps/{}/broadcasts?done=broadcast-cancelled",
        crate::BASE,
        app.tenant_id,
        app.id
    )))
}

#[cfg(test)]
mod tests {
    use super::{audience_of, StartForm};

    fn form(audience: &str, users: &str) -> StartForm {
        StartForm {
            text: "hi".into(),
            audience: audience.into(),
            users: users.into(),
            key: "k".into(),
        }
    }

    #[test]
    fn the_audience_is_every_user_or_a_checked_list() {
        assert_eq!(audience_of(&form("all", "ignored")).unwrap(), None);
        let list = audience_of(&form("list", "alice, bob\ncarol  ")).unwrap().unwrap();
        assert_eq!(
            list.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
            ["alice", "bob", "carol"]
        );
        assert!(audience_of(&form("list", " , ")).is_err(), "an empty list");
        assert!(audience_of(&form("list", "ok bad:id")).is_err());
        assert!(audience_of(&form("everyone", "")).is_err());
    }
}
