//! The audit log: every change made through the console, newest first, fifty a page. A
//! tenant's members see their tenant's; operators also see the whole platform's. Nothing
//! here changes or removes a line (the database refuses to), and no line holds a secret.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use tern_platform::service::console;

use crate::auth::{tenant_scope, Auth};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, Chrome};

const PAGE: u32 = 50;

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub ip: String,
    pub action: String,
    pub target: String,
    pub app: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    rows: Vec<AuditRow>,
    /// The query string of the next (older) page.
    next: Option<i64>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
}

async fn page(
    st: &ConsoleState,
    chrome: Chrome,
    tenant: Option<&tern_platform::ids::TenantId>,
    before: Option<i64>,
) -> Result<Response, PageError> {
    let entries = console::audit_log(&st.pipeline, tenant, before, PAGE).await?;
    let next = (entries.len() as u32 == PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let rows = entries
        .into_iter()
        .map(|e| AuditRow {
            at: when(e.at),
            actor: e.entry.actor,
            ip: e.entry.ip,
            action: e.entry.action,
            target: e.entry.target,
            app: e.entry.app_id.map(|a| a.to_string()).unwrap_or_default(),
            detail: e.entry.detail,
        })
        .collect();
    Ok(html(AuditPage { chrome, rows, next }))
}

/// The whole platform's log (operators).
pub async fn platform(
    State(st): State<ConsoleState>,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    if !auth.viewer.account.operator {
        return Err(PageError::NotFound);
    }
    let chrome = Chrome::new(&auth.viewer, "Audit log");
    page(&st, chrome, None, q.before).await
}

/// One tenant's log.
pub async fn tenant(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path(tenant): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let scope = tenant_scope(&st, &auth.viewer, &tenant).await?;
    let chrome = Chrome::new(&auth.viewer, format!("Audit log of {}", scope.tenant.name)).in_tenant(&scope);
    page(&st, chrome, Some(&scope.tenant.id), q.before).await
}
