//! `/admin/v1/mail`: the mail outbox as JSON (operators only), as the console's mail page
//! shows it: every mail the platform sent or tried, newest first, without bodies (their
//! links carry single-use tokens), and where mail goes.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::MailRecord;
use tern_platform::service::console;
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::AdminError;
use super::views::ErrorEnvelope;
use crate::state::ConsoleState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminMail {
    pub id: i64,
    pub at: i64,
    pub to: String,
    /// `signup.verify`, `signup.verified`, `signup.existing`, `tenant.approved`,
    /// `tenant.declined` or `invitation`.
    pub kind: String,
    pub subject: String,
    /// `smtp` or `file`.
    pub transport: String,
    /// `sent` or `failed`.
    pub status: String,
    /// The server's error when it failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

impl From<MailRecord> for AdminMail {
    fn from(m: MailRecord) -> Self {
        Self {
            id: m.id,
            at: m.at,
            to: m.mail.recipient,
            kind: m.mail.kind,
            subject: m.mail.subject,
            transport: m.mail.transport,
            status: m.mail.status,
            error: m.mail.error,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminMailOutbox {
    /// Where mail goes: `SMTP via host:port`, or the folder it is written to.
    pub delivery: String,
    /// Newest first.
    pub mails: Vec<AdminMail>,
    /// Pass as `before` for the older page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MailQuery {
    /// Mails older than this id (the previous page's `next_before`).
    before: Option<i64>,
    /// 1 to 200 (default 50).
    limit: Option<u32>,
}

/// The mail outbox (operators): every mail sent or tried, newest first.
#[utoipa::path(get, path = "/admin/v1/mail", operation_id = "admin_mail_outbox", tag = "operator API",
    params(MailQuery),
    responses((status = 200, body = AdminMailOutbox), (status = "4XX", body = ErrorEnvelope)))]
pub async fn outbox(
    State(st): State<ConsoleState>,
    c: Caller,
    Query(q): Query<MailQuery>,
) -> Result<Json<AdminMailOutbox>, AdminError> {
    c.require_operator("read the mail outbox")?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let log = console::mail_log(&st.pipeline, q.before, limit).await?;
    let next_before = (log.len() as u32 == limit).then(|| log.last().map(|m| m.id)).flatten();
    Ok(Json(AdminMailOutbox {
        delivery: st.mailer.describe(),
        mails: log.into_iter().map(AdminMail::from).collect(),
        next_before,
    }))
}
