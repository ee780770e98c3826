//! Tenants: the list (operators see all, members their own), a tenant's page (its apps,
//! its members, its status), creating and suspending tenants (operators), adding members.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use tern_platform::domain::{ConsoleRole, TenantStatus};
use tern_platform::ids::TenantId;
use tern_platform::service::{console, signup};

use super::{audit, notice, see_other};
use crate::auth::{tenant_scope, Auth, Posted};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, Chrome};
use crate::BASE;

/// Tenants per page of the list.
const PAGE: u32 = 50;

pub async fn home(auth: Auth) -> Response {
    let v = &auth.viewer;
    if !v.account.operator && v.memberships.len() == 1 {
        return see_other(&format!("{BASE}/t/{}", v.memberships[0].tenant_id));
    }
    see_other(&format!("{BASE}/tenants"))
}

pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub created: String,
    pub role: String,
}

#[derive(Template)]
#[template(path = "tenants.html")]
struct TenantsPage {
    chrome: Chrome,
    /// Operators: the tenants waiting for their approval.
    pending: Vec<TenantRow>,
    tenants: Vec<TenantRow>,
    next: Option<String>,
}

/// Pending tenants listed at once, oldest first.
const PENDING_SHOWN: u32 = 200;

#[derive(Deserialize)]
pub struct ListQuery {
    after: Option<String>,
    done: Option<String>,
}

pub async fn list(
    State(st): State<ConsoleState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let v = &auth.viewer;
    let mut next = None;
    let mut pending = Vec::new();
    let tenants = if v.account.operator {
        pending = console::tenants_with_status(&st.pipeline, TenantStatus::PendingApproval, PENDING_SHOWN)
            .await?
            .into_iter()
            .map(|t| TenantRow {
                id: t.id.to_string(),
                name: t.name,
                status: t.status.as_str().into(),
                created: when(t.created_at),
                role: "operator".into(),
            })
            .collect();
        let after = q.after.as_deref().and_then(|a| TenantId::parse(a).ok());
        let page = console::tenants(&st.pipeline, after.as_ref(), PAGE).await?;
        if page.len() as u32 == PAGE {
            next = page.last().map(|t| t.id.to_string());
        }
        page.into_iter()
            .map(|t| TenantRow {
                id: t.id.to_string(),
                name: t.name,
                status: t.status.as_str().into(),
                created: when(t.created_at),
                role: "operator".into(),
            })
            .collect()
    } else {
        let mut rows = Vec::new();
        for m in &v.memberships {
            let t = console::tenant(&st.pipeline, &m.tenant_id).await?;
            rows.push(TenantRow {
                id: t.id.to_string(),
                name: t.name,
                status: t.status.as_str().into(),
                created: when(t.created_at),
                role: m.role.as_str().into(),
            });
        }
        rows
    };
    let chrome = Chrome::new(v, "Tenants").notice(notice(q.done.as_deref()));
    Ok(html(TenantsPage {
        chrome,
        pending,
        tenants,
        next,
    }))
}

#[derive(Deserialize)]
pub struct CreateTenant {
    #[serde(default)]
    name: String,
}

pub async fn create(State(st): State<ConsoleState>, posted: Posted<CreateTenant>) -> Result<Response, PageError> {
    let auth = &posted.auth;
    if !auth.viewer.account.operator {
        return Err(PageError::Forbidden("Only platform operators create tenants.".into()));
    }
    let tenant = console::create_tenant(&st.pipeline, &posted.form.name).await?;
    audit(
        &st,
        auth,
        Some(&tenant.id),
        None,
        "tenant.create",
        &tenant.name,
        String::new(),
    )
    .await?;
    Ok(see_other(&format!("{BASE}/t/{}?done=tenant-created", tenant.id)))
}

pub struct AppRow {
    pub id: String,
    pub name: String,
    pub app_key: String,
    pub status: String,
    pub created: String,
}

pub struct MemberRow {
    pub account: i64,
    pub email: String,
    pub role: String,
    pub since: String,
    /// The viewer may change or remove this member (not above their own role).
    pub editable: bool,
}

pub struct InvitationRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub invited_by: String,
    pub expires: String,
    pub revocable: bool,
}

#[derive(Template)]
#[template(path = "tenant.html")]
struct TenantPage {
    chrome: Chrome,
    apps: Vec<AppRow>,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    can_manage: bool,
    roles: Vec<RoleChoice>,
}

pub struct RoleChoice {
    pub name: &'static str,
    pub selected: bool,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    pub done: Option<String>,
}

pub async fn show(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path(tenant): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PageError> {
    let scope = tenant_scope(&st, &auth.viewer, &tenant).await?;
    let apps = console::apps(&st.pipeline, &scope.tenant.id)
        .await?
        .into_iter()
        .map(|a| AppRow {
            id: a.id.to_string(),
            name: a.name,
            app_key: a.app_key.to_string(),
            status: a.status.as_str().into(),
            created: when(a.created_at),
        })
        .collect();
    let members = console::members(&st.pipeline, &scope.tenant.id)
        .await?
        .into_iter()
        .map(|m| MemberRow {
            account: m.account_id,
            email: m.email,
            role: m.role.as_str().into(),
            since: when(m.created_at),
            editable: scope.role >= ConsoleRole::Admin && m.role <= scope.role,
        })
        .collect();
    let invitations = tern_platform::service::invitations::open_invitations(
        st.pipeline.store().as_ref(),
        &scope.tenant.id,
        tern_platform::domain::now_ms(),
    )
    .await?
    .into_iter()
    .map(|i| InvitationRow {
        id: i.token_hash,
        email: i.email,
        role: i.role.as_str().into(),
        invited_by: i.invited_by,
        expires: when(i.expires_at),
        revocable: scope.role >= ConsoleRole::Admin && i.role <= scope.role,
    })
    .collect();
    let can_manage = scope.role >= ConsoleRole::Admin;
    let roles = ConsoleRole::ALL
        .iter()
        .filter(|r| **r <= scope.role)
        .map(|r| RoleChoice {
            name: r.as_str(),
            selected: *r == ConsoleRole::Viewer,
        })
        .collect();
    let chrome = Chrome::new(&auth.viewer, scope.tenant.name.clone())
        .in_tenant(&scope)
        .notice(notice(q.done.as_deref()));
    Ok(html(TenantPage {
        chrome,
        apps,
        members,
        invitations,
        can_manage,
        roles,
    }))
}

#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    status: String,
}

/// Suspends or reactivates a tenant (operators only). A suspended tenant's apps answer
/// `app_suspended` to API calls and SDK logins.
pub async fn set_status(
    State(st): State<ConsoleState>,
    Path(tenant): Path<String>,
    posted: Posted<StatusForm>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let scope = tenant_scope(&st, &auth.viewer, &tenant).await?;
    if !auth.viewer.account.operator {
        return Err(PageError::Forbidden(
            "Only platform operators suspend or reactivate tenants.".into(),
        ));
    }
    let status = match posted.form.status.as_str() {
        "active" => TenantStatus::Active,
        "suspended" => TenantStatus::Suspended,
        _ => return Err(PageError::Invalid("status must be active or suspended".into())),
    };
    console::suspend_or_activate(&st.pipeline, &st.credentials, &scope.tenant, status).await?;
    audit(
        &st,
        auth,
        Some(&scope.tenant.id),
        None,
        "tenant.status",
        &scope.tenant.name,
        format!("{} → {}", scope.tenant.status.as_str(), status.as_str()),
    )
    .await?;
    Ok(see_other(&format!("{BASE}/t/{}?done=status-changed", scope.tenant.id)))
}

#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

/// Adds a member (admins and owners; nobody grants a role above their own).
pub async fn add_member(
    State(st): State<ConsoleState>,
    Path(tenant): Path<String>,
    posted: Posted<MemberForm>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let scope = tenant_scope(&st, &auth.viewer, &tenant).await?;
    scope.require(ConsoleRole::Admin, "Adding members")?;
    let role = ConsoleRole::parse(&posted.form.role)
        .ok_or_else(|| PageError::Invalid("role must be owner, admin, developer or viewer".into()))?;
    if role > scope.role {
        return Err(PageError::Forbidden(format!(
            "You cannot grant the {} role: it is above your own.",
            role.as_str()
        )));
    }
    let password = Some(posted.form.password.as_str()).filter(|p| !p.is_empty());
    let member = console::add_member(&st.pipeline, &scope.tenant.id, &posted.form.email, password, role).await?;
    audit(
        &st,
        auth,
        Some(&scope.tenant.id),
        None,
        "tenant.member.add",
        &member.email,
        format!("role {}", role.as_str()),
    )
    .await?;
    Ok(see_other(&format!("{BASE}/t/{}?done=member-added", scope.tenant.id)))
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
}

/// An operator approves or declines a tenant that signed up; its owners are emailed.
pub async fn decide(
    State(st): State<ConsoleState>,
    Path(tenant): Path<String>,
    posted: Posted<DecisionForm>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let scope = tenant_scope(&st, &auth.viewer, &tenant).await?;
    if !auth.viewer.account.operator {
        return Err(PageError::Forbidden(
            "Only platform operators approve or decline tenants.".into(),
        ));
    }
    let approve = match posted.form.decision.as_str() {
        "approve" => true,
        "decline" => false,
        _ => return Err(PageError::Invalid("decision must be approve or decline".into())),
    };
    let store = st.pipeline.store();
    let decided = signup::decide(
        store.as_ref(),
        &st.mailer,
        &scope.tenant.id,
        approve,
        &posted.form.reason,
    )
    .await?;
    let reason = posted.form.reason.trim();
    audit(
        &st,
        auth,
        Some(&decided.id),
        None,
        if approve { "tenant.approve" } else { "tenant.decline" },
        &decided.name,
        if reason.is_empty() {
            format!("{} → {}", scope.tenant.status.as_str(), decided.status.as_str())
        } else {
            format!(
                "{} → {}: {reason}",
                scope.tenant.status.as_str(),
                decided.status.as_str()
            )
        },
    )
    .await?;
    let done = if approve { "approved" } else { "declined" };
    Ok(see_other(&format!("{BASE}/t/{}?done={done}", decided.id)))
}
