//! The users explorer: search an app's users by id prefix or name, open a profile (metadata,
//! presence and devices, ban and mute state, conversations), and moderate: ban, mute, revoke
//! tokens, kick, all through `tern_platform::service`, as the server API does.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use tern_platform::domain::{now_ms, ConsoleRole, FOREVER};
use tern_platform::ids::UserId;
use tern_platform::service::{console, conversations, moderation, users};

use super::{audit, notice, see_other};
use crate::auth::{app_scope, Auth, Posted};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, when_or, Chrome};

/// Users per page of the explorer.
const PAGE: u32 = 50;
/// Longest search text.
const MAX_QUERY_CHARS: usize = 100;

pub struct UserRow {
    pub id: String,
    /// The id as a URL path segment.
    pub path: String,
    pub name: String,
    pub state: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    q: String,
    users: Vec<UserRow>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    after: Option<String>,
}

fn restriction(banned_until: Option<i64>, muted_until: Option<i64>, now: i64) -> String {
    let mut parts = Vec::new();
    if let Some(b) = banned_until.filter(|b| *b > now) {
        parts.push(if b >= FOREVER {
            "banned".to_owned()
        } else {
            format!("banned until {}", when(b))
        });
    }
    if let Some(m) = muted_until.filter(|m| *m > now) {
        parts.push(if m >= FOREVER {
            "muted".to_owned()
        } else {
            format!("muted until {}", when(m))
        });
    }
    if parts.is_empty() {
        "active".into()
    } else {
        parts.join(", ")
    }
}

pub async fn list(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
    Query(query): Query<UsersQuery>,
) -> Result<Response, PageError> {
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    let q: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(MAX_QUERY_CHARS)
        .collect();
    let after = query.after.as_deref().and_then(|a| UserId::parse(a).ok());
    let found = console::search_users(&st.pipeline, &app, &q, after.as_ref(), PAGE).await?;
    let next = (found.len() as u32 == PAGE)
        .then(|| found.last().map(|u| u.id.to_string()))
        .flatten();
    let now = now_ms();
    let users = found
        .into_iter()
        .map(|u| UserRow {
            path: percent(u.id.as_str()),
            id: u.id.to_string(),
            name: u.name,
            state: restriction(u.banned_until, u.muted_until, now),
            created: when(u.created_at),
        })
        .collect();
    let chrome = Chrome::new(&auth.viewer, format!("Users of {}", app.name))
        .in_tenant(&scope)
        .in_app(&app, "users");
    Ok(html(UsersPage { chrome, q, users, next }))
}

pub struct ConversationRow {
    pub id: String,
    /// The id as a URL query value.
    pub query: String,
    pub last_seq: i64,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    chrome: Chrome,
    id: String,
    path: String,
    name: String,
    avatar_url: String,
    metadata: String,
    state: String,
    online: bool,
    devices: Vec<String>,
    last_seen: String,
    tokens_revoked: String,
    created: String,
    conversations: Vec<ConversationRow>,
    can_moderate: bool,
}

#[derive(Deserialize)]
pub struct UserQuery {
    done: Option<String>,
}

pub async fn show(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app, user)): Path<(String, String, String)>,
    Query(q): Query<UserQuery>,
) -> Result<Response, PageError> {
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    let id = UserId::parse(&user).map_err(|_| PageError::NotFound)?;
    let detail = users::detail(&st.pipeline, &app, &id).await?;
    let u = detail.user;
    let presence = detail.presence;
    let page = conversations::list_page(&st.pipeline, &app, &id, None, 50).await?;
    let conversations = page
        .items
        .into_iter()
        .map(|c| ConversationRow {
            query: percent(&c.conversation_id.to_string()),
            id: c.conversation_id.to_string(),
            last_seq: c.last_seq,
            updated: when(c.updated_at),
        })
        .collect();
    let chrome = Chrome::new(&auth.viewer, format!("User {}", u.id))
        .in_tenant(&scope)
        .in_app(&app, "users")
        .notice(notice(q.done.as_deref()));
    Ok(html(UserPage {
        chrome,
        path: percent(u.id.as_str()),
        id: u.id.to_string(),
        name: u.name,
        avatar_url: u.avatar_url.unwrap_or_default(),
        metadata: serde_json::to_string_pretty(&u.metadata).unwrap_or_default(),
        state: restriction(u.banned_until, u.muted_until, now_ms()),
        online: presence.as_ref().is_some_and(|p| p.online),
        devices: presence.as_ref().map(|p| p.devices.clone()).unwrap_or_default(),
        last_seen: when_or(presence.and_then(|p| p.last_seen), "—"),
        tokens_revoked: when_or(u.tokens_revoked_before, "never"),
        created: when(u.created_at),
        conversations,
        can_moderate: scope.role >= ConsoleRole::Developer,
    }))
}

#[derive(Deserialize)]
pub struct ActForm {
    /// How long a ban or mute lasts, seconds; empty or 0 for no end.
    #[serde(default)]
    duration: String,
    #[serde(default)]
    reason: String,
}

/// Ban, unban, mute, unmute, revoke tokens or kick; developers and above.
pub async fn act(
    State(st): State<ConsoleState>,
    Path((tenant, app, user, action)): Path<(String, String, String, String)>,
    posted: Posted<ActForm>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    let id = UserId::parse(&user).map_err(|_| PageError::NotFound)?;
    scope.require(ConsoleRole::Developer, "Moderating users")?;
    let now = now_ms();
    let until = || -> Result<i64, PageError> {
        let d = posted.form.duration.trim();
        if d.is_empty() || d == "0" {
            return Ok(FOREVER);
        }
        let secs: i64 = d
            .parse()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| PageError::Invalid("duration must be a whole number of seconds".into()))?;
        let end = now.saturating_add(secs.saturating_mul(1000));
        Ok(moderation::restriction_end(Some(end.min(FOREVER)), now)?)
    };
    let (done, detail) = match action.as_str() {
        "ban" => {
            moderation::check_reason(&posted.form.reason)?;
            let end = until()?;
            moderation::ban(&st.pipeline, &app, &id, end, posted.form.reason.trim()).await?;
            (
                "banned",
                format!("until {}", if end >= FOREVER { "no end".into() } else { when(end) }),
            )
        }
        "unban" => {
            moderation::unban(&st.pipeline, &app, &id).await?;
            ("unbanned", String::new())
        }
        "mute" => {
            let end = until()?;
            moderation::mute(&st.pipeline, &app, &id, end).await?;
            (
                "muted",
                format!("until {}", if end >= FOREVER { "no end".into() } else { when(end) }),
            )
        }
        "unmute" => {
            moderation::unmute(&st.pipeline, &app, &id).await?;
            ("unmuted", String::new())
        }
        "revoke-tokens" => {
            users::revoke_tokens(&st.pipeline, &app, &id).await?;
            ("tokens-revoked", String::new())
        }
        "kick" => {
            users::kick(&st.pipeline, &app, &id).await?;
            ("kicked", String::new())
        }
        _ => return Err(PageError::NotFound),
    };
    audit(
        &st,
        auth,
        None,
        Some(&app),
        &format!("user.{}", action.replace('-', "_")),
        id.as_str(),
        detail,
    )
    .await?;
    Ok(see_other(&format!(
        "{}/t/{}/apps/{}/users/{}?done={done}",
        crate::BASE,
        app.tenant_id,
        app.id,
        percent(id.as_str())
    )))
}

/// A user id as one URL path segment.
pub fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
