//! A tenant's team: invitations by email (sent, revoked, accepted through the mailed link)
//! and members' roles (changed, removed). Admins and owners manage the team; nobody grants,
//! changes or removes a role above their own; a tenant keeps an owner (the platform decides,
//! `service::invitations`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use tern_platform::domain::{now_ms, ConsoleRole, NewAuditEntry};
use tern_platform::service::console::{self as console, ConsoleError};
use tern_platform::service::invitations::{self, Actor};

use super::sign_in::ClientIp;
use super::signup::{Confirm, PublicPage};
use super::{audit, see_other};
use crate::auth::{refuse_cross_site, tenant_scope, Auth, Posted, TenantScope};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::BASE;

/// Largest accept form read.
const FORM_LIMIT: usize = 16 * 1024;

fn actor<'a>(auth: &'a Auth, scope: &TenantScope) -> Actor<'a> {
    Actor {
        email: &auth.viewer.account.email,
        role: scope.role,
    }
}

fn role(raw: &str) -> Result<ConsoleRole, PageError> {
    ConsoleRole::parse(raw).ok_or_else(|| PageError::Invalid("role must be owner, admin, developer or viewer".into()))
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

pub async fn invite(
    State(st): State<ConsoleState>,
    Path(tenant): Path<String>,
    posted: Posted<InviteForm>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let scope = tenant_scope(&st, &auth.viewer, &tenant).await?;
    scope.require(ConsoleRole::Admin, "Inviting members")?;
    let role = role(&posted.form.role)?;
    let store = st.pipeline.store();
    let inv = invitations::invite(
        store.as_ref(),
        &st.mailer,
        &scope.tenant,
        &actor(auth, &scope),
        &posted.form.email,
        role,
        now_ms(),
    )
    .await?;
    audit(
        &st,
        auth,
        Some(&scope.tenant.id),
        None,
        "tenant.member.invite",
        &inv.email,
        format!("role {}", role.as_str()),
    )
    .await?;
    Ok(see_other(&format!("{BASE}/t/{}?done=invited", scope.tenant.id)))
}

pub async fn revoke(
    State(st): State<ConsoleState>,
    Path((tenant, hash)): Path<(String, String)>,
    posted: Posted<crate::auth::NoFields>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let scope = tenant_scope(&st, &auth.viewer, &tenant).await?;
    scope.require(ConsoleRole::Admin, "Revoking invitations")?;
    let store = st.pipeline.store();
    let inv = invitations::revoke(store.as_ref(), &scope.tenant.id, &actor(auth, &scope), &hash, now_ms()).await?;
    audit(
        &st,
        auth,
        Some(&scope.tenant.id),
        None,
        "tenant.invitation.revoke",
        &inv.email,
        format!("role {}", inv.role.as_str()),
    )
    .await?;
    Ok(see_other(&format!(
        "{BASE}/t/{}?done=invitation-revoked",
        scope.tenant.id
    )))
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

fn account_id(raw: &str) -> Result<i64, PageError> {
    raw.parse().map_err(|_| PageError::NotFound)
}

pub async fn change_role(
    State(st): State<ConsoleState>,
    Path((tenant, account)): Path<(String, String)>,
    posted: Posted<RoleForm>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let scope = tenant_scope(&st, &auth.viewer, &tenant).await?;
    let account = account_id(&account)?;
    scope.require(ConsoleRole::Admin, "Changing roles")?;
    let role = role(&posted.form.role)?;
    let store = st.pipeline.store();
    let before = invitations::change_role(
        store.as_ref(),
        &scope.tenant.id,
        &actor(auth, &scope),
        account,
        role,
        now_ms(),
    )
    .await?;
    audit(
        &st,
        auth,
        Some(&scope.tenant.id),
        None,
        "tenant.member.role",
        &before.email,
        format!("{} → {}", before.role.as_str(), role.as_str()),
    )
    .await?;
    Ok(see_other(&format!("{BASE}/t/{}?done=role-changed", scope.tenant.id)))
}

pub async fn remove(
    State(st): State<ConsoleState>,
    Path((tenant, account)): Path<(String, String)>,
    posted: Posted<crate::auth::NoFields>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let scope = tenant_scope(&st, &auth.viewer, &tenant).await?;
    let account = account_id(&account)?;
    scope.require(ConsoleRole::Admin, "Removing members")?;
    let store = st.pipeline.store();
    let before = invitations::remove(store.as_ref(), &scope.tenant.id, &actor(auth, &scope), account).await?;
    audit(
        &st,
        auth,
        Some(&scope.tenant.id),
        None,
        "tenant.member.remove",
        &before.email,
        format!("was {}", before.role.as_str()),
    )
    .await?;
    Ok(see_other(&format!("{BASE}/t/{}?done=member-removed", scope.tenant.id)))
}

const LINK_GONE: &str =
    "This invitation was accepted already, revoked, has expired (invitations work for 7 days), or never existed. Ask for a new one.";

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The link from the invitation mail: what it is, and the button (with a password field
/// when the email has no account yet).
pub async fn show(State(st): State<ConsoleState>, Query(q): Query<TokenQuery>) -> Result<Response, PageError> {
    let store = st.pipeline.store();
    let (inv, tenant, has_account) = match invitations::pending(store.as_ref(), &q.token, now_ms()).await {
        Ok(found) => found,
        Err(ConsoleError::NotFound(_)) => return Err(PageError::Gone(LINK_GONE.into())),
        Err(e) => return Err(e.into()),
    };
    let message = if has_account {
        format!(
            "{} invites {} to join {} as {}. Accept, then sign in with your password.",
            inv.invited_by,
            inv.email,
            tenant.name,
            inv.role.as_str()
        )
    } else {
        format!(
            "{} invites {} to join {} as {}. Choose a password (8 characters or more) for your new console account.",
            inv.invited_by,
            inv.email,
            tenant.name,
            inv.role.as_str()
        )
    };
    Ok(html(PublicPage {
        base: BASE,
        title: "Join a tenant".into(),
        message,
        confirm: Some(Confirm {
            action: "invite",
            token: q.token,
            button: "Accept the invitation",
            password: !has_account,
        }),
    }))
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

pub async fn accept(
    State(st): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    refuse_cross_site(&headers)?;
    if body.len() > FORM_LIMIT {
        return Err(PageError::Invalid("the form is too large".into()));
    }
    let form: AcceptForm =
        serde_urlencoded::from_bytes(&body).map_err(|_| PageError::Invalid("the form does not parse".into()))?;
    st.signup_limiter
        .attempt(&ip)
        .map_err(|retry_after_secs| PageError::TooManyAttempts { retry_after_secs })?;
    let store = st.pipeline.store();
    let (inv, account) = match invitations::accept(store.as_ref(), &form.token, &form.password, now_ms()).await {
        Ok(done) => done,
        Err(ConsoleError::NotFound(_)) => return Err(PageError::Gone(LINK_GONE.into())),
        Err(e) => return Err(e.into()),
    };
    let tenant = console::tenant(&st.pipeline, &inv.tenant_id).await?;
    console::audit(
        &st.pipeline,
        NewAuditEntry {
            actor: account.email.clone(),
            ip,
            tenant_id: Some(tenant.id.clone()),
            app_id: None,
            action: "tenant.member.join".into(),
            target: account.email.clone(),
            detail: format!("role {}, invited by {}", inv.role.as_str(), inv.invited_by),
        },
    )
    .await?;
    Ok(html(PublicPage {
        base: BASE,
        title: "Invitation accepted".into(),
        message: format!(
            "You are a member of {} now, as {}. Sign in as {}.",
            tenant.name,
            inv.role.as_str(),
            account.email
        ),
        confirm: None,
    }))
}
