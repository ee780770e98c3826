//! The console's pages, one module per area. Each handler parses the URL and form, checks
//! scope and role (`crate::auth`), calls one platform operation, writes the audit log for a
//! change, and renders a template or redirects (POST, then redirect, then GET).

pub mod alerts;
pub mod apps;
pub mod audit;
pub mod broadcasts;
pub mod groups;
pub mod mail;
pub mod messages;
pub mod operators;
pub mod overview;
pub mod push;
pub mod sign_in;
pub mod signup;
pub mod team;
pub mod tenants;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod webhooks;
pub mod word_lists;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use tern_platform::domain::{App, NewAuditEntry};
use tern_platform::ids::TenantId;
use tern_platform::service::console;

use crate::auth::Auth;
use crate::error::PageError;
use crate::state::ConsoleState;

/// 303 to `to` (after a change, so a reload does not repeat it).
pub fn see_other(to: &str) -> Response {
    (axum::http::StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// Writes one line of the audit log for a change the viewer made.
pub async fn audit(
    st: &ConsoleState,
    auth: &Auth,
    tenant: Option<&TenantId>,
    app: Option<&App>,
    action: &str,
    target: &str,
    detail: String,
) -> Result<(), PageError> {
    let entry = audit_entry(
        auth.viewer.account.email.clone(),
        auth.ip.clone(),
        (tenant, app),
        action,
        target,
        detail,
    );
    console::audit(&st.pipeline, entry).await?;
    Ok(())
}

/// One line of the audit log, by `actor` from `ip`, on `tenant` (else the app's tenant) and
/// `app`: how the pages and the operator API (`admin::caller`) both write theirs.
pub(crate) fn audit_entry(
    actor: String,
    ip: String,
    (tenant, app): (Option<&TenantId>, Option<&App>),
    action: &str,
    target: &str,
    detail: String,
) -> NewAuditEntry {
    NewAuditEntry {
        actor,
        ip,
        tenant_id: tenant.cloned().or_else(|| app.map(|a| a.tenant_id.clone())),
        app_id: app.map(|a| a.id.clone()),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
    }
}

/// A notice to show after a redirect, from the `done` query parameter: only known words
/// become text, so a link cannot put words of its own on the page.
pub fn notice(done: Option<&str>) -> Option<String> {
    let text = match done? {
        "tenant-created" => "Tenant created.",
        "status-changed" => "Tenant status changed.",
        "approved" => "Tenant approved: its owners were emailed.",
        "declined" => "Tenant declined: its owners were emailed.",
        "member-added" => "Member added.",
        "invited" => "Invitation sent.",
        "invitation-revoked" => "Invitation revoked: its link no longer works.",
        "role-changed" => "Role changed.",
        "member-removed" => "Member removed.",
        "settings-saved" => "Settings saved.",
        "secret-revoked" => "Secret revoked: it no longer signs requests.",
        "webhook-saved" => "Webhook settings saved.",
        "redelivered" => "Event queued for redelivery.",
        "broadcast-started" => "Broadcast started: its progress shows below.",
        "rule-created" => "Alert rule added: it is checked every minute.",
        "rule-saved" => "Alert rule saved.",
        "rule-deleted" => "Alert rule deleted.",
        "word-list-saved" => "Word list saved: sends are filtered by it at once.",
        "word-list-deleted" => "Word list deleted.",
        "operator-invited" => "Invitation sent: the link works once, for 24 hours.",
        "broadcast-cancelled" => "Broadcast cancelled: users it reached keep their notification.",
        "banned" => "User banned.",
        "unbanned" => "Ban lifted.",
        "muted" => "User muted.",
        "unmuted" => "Mute lifted.",
        "tokens-revoked" => "Tokens revoked and sessions closed.",
        "kicked" => "Sessions closed.",
        "signed-out-elsewhere" => "Signed out everywhere else.",
        _ => return None,
    };
    Some(text.to_owned())
}
