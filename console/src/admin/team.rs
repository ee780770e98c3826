//! `/admin/v1/tenants/{tenant}/members…` and `…/invitations…`: a tenant's team, as the
//! tenant's page manages it. Members (list, change a role, remove) and invitations by email
//! (invite, list the open ones, revoke). Admins and owners (and operators) change the team;
//! the platform keeps the rules (`service::invitations`: nobody grants, changes, removes or
//! revokes a role above their own; a tenant keeps an owner; no member invited twice). Same
//! audit lines as the page.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::{now_ms, ConsoleRole, Invitation, Membership};
use tern_platform::service::console;
use tern_platform::service::invitations::{self, Actor};
use utoipa::ToSchema;

use super::caller::Caller;
use super::error::{AdminError, JsonBody};
use super::views::ErrorEnvelope;
use crate::auth::{tenant_scope, TenantScope};
use crate::state::ConsoleState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminMember {
    /// The account's id: names the member in the routes that change it.
    pub account_id: i64,
    pub email: String,
    /// `owner`, `admin`, `developer` or `viewer`.
    pub role: String,
    /// Member since.
    pub created_at: i64,
}

impl From<Membership> for AdminMember {
    fn from(m: Membership) -> Self {
        Self {
            account_id: m.account_id,
            email: m.email,
            role: m.role.as_str().to_owned(),
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminMembers {
    pub members: Vec<AdminMember>,
}

/// An open invitation (never its link's token).
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminInvitation {
    /// Names the invitation in `…/invitations/{id}/revoke` (the SHA-256 of its link's token).
    pub id: String,
    pub email: String,
    pub role: String,
    /// Who sent it (an email, or `cli`).
    pub invited_by: String,
    pub created_at: i64,
    /// Its link works until then.
    pub expires_at: i64,
}

impl From<Invitation> for AdminInvitation {
    fn from(i: Invitation) -> Self {
        Self {
            id: i.token_hash,
            email: i.email,
            role: i.role.as_str().to_owned(),
            invited_by: i.invited_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminInvitations {
    pub invitations: Vec<AdminInvitation>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminInvite {
    pub email: String,
    /// `owner`, `admin`, `developer` or `viewer`, at most the caller's.
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminRoleChange {
    /// The new role, at most the caller's.
    pub role: String,
}

fn actor<'a>(c: &'a Caller, scope: &TenantScope) -> Actor<'a> {
    Actor {
        email: &c.viewer.account.email,
        role: scope.role,
    }
}

fn role(raw: &str) -> Result<ConsoleRole, AdminError> {
    ConsoleRole::parse(raw.trim())
        .ok_or_else(|| AdminError::invalid_field("role", "role must be owner, admin, developer or viewer"))
}

fn account_id(raw: &str) -> Result<i64, AdminError> {
    raw.parse().map_err(|_| AdminError::not_found())
}

/// The tenant's members and their roles.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/members", operation_id = "admin_list_members", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id")),
    responses((status = 200, body = AdminMembers), (status = "4XX", body = ErrorEnvelope)))]
pub async fn members(
    State(st): State<ConsoleState>,
    c: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<AdminMembers>, AdminError> {
    let scope = tenant_scope(&st, &c.viewer, &tenant).await?;
    let all = console::members(&st.pipeline, &scope.tenant.id).await?;
    Ok(Json(AdminMembers {
        members: all.into_iter().map(AdminMember::from).collect(),
    }))
}

/// Changes a member's role (admin and up; never to or from a role above the caller's; the
/// last owner stays an owner). Answers the membership as it is now.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/members/{account}/role", operation_id = "admin_change_member_role", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("account" = i64, Path, description = "The member's account id")),
    request_body = AdminRoleChange,
    responses((status = 200, body = AdminMember), (status = "4XX", body = ErrorEnvelope)))]
pub async fn change_role(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, account)): Path<(String, String)>,
    JsonBody(body): JsonBody<AdminRoleChange>,
) -> Result<Json<AdminMember>, AdminError> {
    let scope = tenant_scope(&st, &c.viewer, &tenant).await?;
    let account = account_id(&account)?;
    scope.require(ConsoleRole::Admin, "Changing roles")?;
    let new = role(&body.role)?;
    let store = st.pipeline.store();
    let before = invitations::change_role(
        store.as_ref(),
        &scope.tenant.id,
        &actor(&c, &scope),
        account,
        new,
        now_ms(),
    )
    .await?;
    c.audit(
        &st,
        Some(&scope.tenant.id),
        None,
        "tenant.member.role",
        &before.email,
        format!("{} → {}", before.role.as_str(), new.as_str()),
    )
    .await?;
    Ok(Json(AdminMember {
        role: new.as_str().to_owned(),
        ..before.into()
    }))
}

/// Removes a member from the tenant (admin and up; their account stays). Answers the
/// membership as it was.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/members/{account}/remove", operation_id = "admin_remove_member", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("account" = i64, Path, description = "The member's account id")),
    responses((status = 200, body = AdminMember), (status = "4XX", body = ErrorEnvelope)))]
pub async fn remove(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, account)): Path<(String, String)>,
) -> Result<Json<AdminMember>, AdminError> {
    let scope = tenant_scope(&st, &c.viewer, &tenant).await?;
    let account = account_id(&account)?;
    scope.require(ConsoleRole::Admin, "Removing members")?;
    let store = st.pipeline.store();
    let before = invitations::remove(store.as_ref(), &scope.tenant.id, &actor(&c, &scope), account).await?;
    c.audit(
        &st,
        Some(&scope.tenant.id),
        None,
        "tenant.member.remove",
        &before.email,
        format!("was {}", before.role.as_str()),
    )
    .await?;
    Ok(Json(before.into()))
}

/// The tenant's open invitations (not accepted, revoked or expired).
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/invitations", operation_id = "admin_list_invitations", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id")),
    responses((status = 200, body = AdminInvitations), (status = "4XX", body = ErrorEnvelope)))]
pub async fn invitations(
    State(st): State<ConsoleState>,
    c: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<AdminInvitations>, AdminError> {
    let scope = tenant_scope(&st, &c.viewer, &tenant).await?;
    let open = invitations::open_invitations(st.pipeline.store().as_ref(), &scope.tenant.id, now_ms()).await?;
    Ok(Json(AdminInvitations {
        invitations: open.into_iter().map(AdminInvitation::from).collect(),
    }))
}

/// Invites an email with a role (admin and up; at most the caller's role): the platform
/// mails a link that works once, for 7 days. 409 when the email is a member already.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/invitations", operation_id = "admin_invite", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id")),
    request_body = AdminInvite,
    responses((status = 201, body = AdminInvitation), (status = "4XX", body = ErrorEnvelope)))]
pub async fn invite(
    State(st): State<ConsoleState>,
    c: Caller,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<AdminInvite>,
) -> Result<(StatusCode, Json<AdminInvitation>), AdminError> {
    let scope = tenant_scope(&st, &c.viewer, &tenant).await?;
    scope.require(ConsoleRole::Admin, "Inviting members")?;
    let role = role(&body.role)?;
    let store = st.pipeline.store();
    let inv = invitations::invite(
        store.as_ref(),
        &st.mailer,
        &scope.tenant,
        &actor(&c, &scope),
        &body.email,
        role,
        now_ms(),
    )
    .await
    .map_err(|e| match e {
        console::ConsoleError::Invalid(m) if m.contains("email") => AdminError::invalid_field("email", m),
        other => other.into(),
    })?;
    c.audit(
        &st,
        Some(&scope.tenant.id),
        None,
        "tenant.member.invite",
        &inv.email,
        format!("role {}", role.as_str()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(inv.into())))
}

/// Ends an open invitation's link now (admin and up; not one of a role above the caller's).
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/invitations/{invitation}/revoke", operation_id = "admin_revoke_invitation", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("invitation" = String, Path, description = "The invitation's id")),
    responses((status = 200, body = AdminInvitation), (status = "4XX", body = ErrorEnvelope)))]
pub async fn revoke(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<AdminInvitation>, AdminError> {
    let scope = tenant_scope(&st, &c.viewer, &tenant).await?;
    scope.require(ConsoleRole::Admin, "Revoking invitations")?;
    let store = st.pipeline.store();
    let inv = invitations::revoke(store.as_ref(), &scope.tenant.id, &actor(&c, &scope), &id, now_ms()).await?;
    c.audit(
        &st,
        Some(&scope.tenant.id),
        None,
        "tenant.invitation.revoke",
        &inv.email,
        format!("role {}", inv.role.as_str()),
    )
    .await?;
    Ok(Json(inv.into()))
}
