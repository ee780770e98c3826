//! The mail outbox (operators only): every mail the platform sent or tried to send, newest
//! first, fifty a page, without bodies. Anyone else gets the 404 of a page that is not there.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, Chrome};

const PAGE: u32 = 50;

pub struct MailRow {
    pub at: String,
    pub to: String,
    pub kind: String,
    pub subject: String,
    pub transport: String,
    pub status: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "mail.html")]
struct MailPage {
    chrome: Chrome,
    rows: Vec<MailRow>,
    next: Option<i64>,
    /// The folder mails are written to when there is no SMTP server.
    folder: Option<String>,
    transport: String,
}

#[derive(Deserialize)]
pub struct MailQuery {
    before: Option<i64>,
}

pub async fn outbox(
    State(st): State<ConsoleState>,
    auth: Auth,
    Query(q): Query<MailQuery>,
) -> Result<Response, PageError> {
    if !auth.viewer.account.operator {
        return Err(PageError::NotFound);
    }
    let log = tern_platform::service::console::mail_log(&st.pipeline, q.before, PAGE).await?;
    let next = (log.len() as u32 == PAGE).then(|| log.last().map(|m| m.id)).flatten();
    let rows = log
        .into_iter()
        .map(|m| MailRow {
            at: when(m.at),
            to: m.mail.recipient,
            kind: m.mail.kind,
            subject: m.mail.subject,
            transport: m.mail.transport,
            status: m.mail.status,
            error: m.mail.error,
        })
        .collect();
    Ok(html(MailPage {
        chrome: Chrome::new(&auth.viewer, "Mail"),
        rows,
        next,
        folder: st.mailer.folder_path().map(|p| p.display().to_string()),
        transport: st.mailer.describe(),
    }))
}
