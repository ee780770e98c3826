//! The messages explorer: a conversation's history (direct `d:a:b`, group `g:id`, room
//! `r:id`), fifty messages a page, paged by seq (keyset: `before` and `after` a seq, never
//! an offset), as the server sees it (every message, recalled and edited ones marked, with
//! their reactions); and recall, as the server API recalls (at any time).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tern_platform::delivery::Actor;
use tern_platform::domain::{ConsoleRole, MessageType, Sender};
use tern_platform::ids::{ConversationId, MsgId};
use tern_platform::service::messages;
use tern_platform::store::SeqRange;

use super::users::percent;
use super::{audit, see_other};
use crate::auth::{app_scope, Auth, NoFields, Posted};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, when_or, Chrome};

/// Messages per page.
const PAGE: u32 = 50;

pub struct MessageRow {
    pub seq: i64,
    pub msg_id: String,
    pub at: String,
    pub sender: String,
    pub kind: String,
    /// The text of a text message, the content as JSON otherwise.
    pub body: String,
    pub recalled: bool,
    pub edited: String,
    /// `👍 2 · ❤️ 1`: each reaction and how many users gave it.
    pub reactions: String,
}

#[derive(Template)]
#[template(path = "messages.html")]
struct MessagesPage {
    chrome: Chrome,
    conversation: String,
    /// `conversation` as a URL query value.
    query: String,
    messages: Vec<MessageRow>,
    older: Option<i64>,
    newer: Option<i64>,
    error: Option<String>,
    can_recall: bool,
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    conversation: Option<String>,
    before: Option<i64>,
    after: Option<i64>,
}

pub async fn explore(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, PageError> {
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    let chrome = Chrome::new(&auth.viewer, format!("Messages of {}", app.name))
        .in_tenant(&scope)
        .in_app(&app, "messages");
    let conversation = q.conversation.unwrap_or_default().trim().to_owned();
    let mut page = MessagesPage {
        chrome,
        query: percent(&conversation),
        conversation,
        messages: Vec::new(),
        older: None,
        newer: None,
        error: None,
        can_recall: scope.role >= ConsoleRole::Developer,
    };
    if page.conversation.is_empty() {
        return Ok(html(page));
    }
    let Ok(id) = ConversationId::parse(&page.conversation) else {
        page.error = Some("That is not a conversation id: d:USER:USER, g:GROUP or r:ROOM.".into());
        return Ok(with_status(html(page), StatusCode::BAD_REQUEST));
    };
    let range = match (q.after, q.before) {
        (Some(a), _) => SeqRange::After(a.max(0)),
        (None, Some(b)) => SeqRange::Before(b.max(1)),
        (None, None) => SeqRange::Before(i64::MAX),
    };
    let found = match messages::history_range(&st.pipeline, &app, &Actor::Server, &id, range, PAGE).await {
        Ok(found) => found,
        Err(tern_platform::error::DeliveryError::NotFound(_)) => {
            page.error = Some("This app has no conversation with that id.".into());
            return Ok(with_status(html(page), StatusCode::NOT_FOUND));
        }
        Err(e) => return Err(e.into()),
    };
    let full = found.len() as u32 == PAGE;
    page.older = found.first().filter(|m| m.seq > 1).map(|m| m.seq);
    page.newer = match range {
        SeqRange::Before(i64::MAX) => None,
        SeqRange::After(_) if !full => None,
        _ => found.last().map(|m| m.seq),
    };
    page.messages = found
        .into_iter()
        .map(|m| MessageRow {
            seq: m.seq,
            msg_id: m.msg_id.to_string(),
            at: when(m.created_at),
            sender: match &m.sender {
                Sender::User(u) => u.to_string(),
                Sender::System => "(system)".into(),
            },
            kind: m.msg_type.as_str().to_owned(),
            body: match (m.msg_type, m.content.get("text").and_then(|t| t.as_str())) {
                (MessageType::Text, Some(text)) => text.to_owned(),
                _ => m.content.to_string(),
            },
            recalled: m.recalled,
            edited: when_or(m.edited_at, ""),
            reactions: m
                .reactions
                .iter()
                .map(|r| format!("{} {}", r.reaction, r.count))
                .collect::<Vec<_>>()
                .join(" · "),
        })
        .collect();
    Ok(html(page))
}

/// Recalls a message as the app's backend may (at any time): its content is gone for
/// everyone, devices are told. Then back to its place in the history.
pub async fn recall(
    State(st): State<ConsoleState>,
    Path((tenant, app, msg)): Path<(String, String, String)>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Recalling messages")?;
    let id = MsgId::parse(&msg).map_err(|_| PageError::NotFound)?;
    let m = messages::recall(&st.pipeline, &app, &Actor::Server, &id).await?;
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.message.recall",
        id.as_str(),
        format!("in {} (seq {})", m.conversation_id, m.seq),
    )
    .await?;
    let conversation = m.conversation_id.to_string();
    Ok(see_other(&format!(
        "{}/t/{}/apps/{}/messages?conversation={}&after={}#seq-{}",
        crate::BASE,
        app.tenant_id,
        app.id,
        percent(&conversation),
        (m.seq - 1).max(0),
        m.seq
    )))
}

fn with_status(mut r: Response, status: StatusCode) -> Response {
    *r.status_mut() = status;
    r
}
