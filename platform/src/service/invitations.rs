//! A tenant's team: invitations by email with a role (a single-use link valid 7 days), and
//! changing or removing a member's role. Nobody grants, changes or removes a role above
//! their own, and a tenant always keeps an owner.

use crate::domain::{ConsoleAccount, ConsoleRole, Invitation, Membership, Tenant, TenantStatus, UnixMillis};
use crate::ids::TenantId;
use crate::mail::{Mail, Mailer};
use crate::service::console::{
    check_new_password, hash_new_password, parse_email, random_token, token_hash, ConsoleError,
};
use crate::store::{Store, StoreError};

/// How long an invitation's link works.
pub const INVITATION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

type Result<T> = std::result::Result<T, ConsoleError>;

/// Who acts: their email (for the log and the mail) and their role in the tenant
/// (operators act as owners).
pub struct Actor<'a> {
    pub email: &'a str,
    pub role: ConsoleRole,
}

fn above_own(actor: &Actor<'_>, role: ConsoleRole, what: &str) -> Result<()> {
    if role > actor.role {
        return Err(ConsoleError::Forbidden(format!(
            "you cannot {what} the {} role: it is above your own ({})",
            role.as_str(),
            actor.role.as_str()
        )));
    }
    Ok(())
}

/// Invites `email` to the tenant with `role` and mails the link. `Conflict` when the email
/// is a member already; `Invalid` for an operator's email or a declined tenant.
pub async fn invite(
    store: &dyn Store,
    mailer: &Mailer,
    tenant: &Tenant,
    actor: &Actor<'_>,
    email: &str,
    role: ConsoleRole,
    now: UnixMillis,
) -> Result<Invitation> {
    let email = parse_email(email)?;
    above_own(actor, role, "grant")?;
    if tenant.status == TenantStatus::Declined {
        return Err(ConsoleError::Invalid(format!(
            "{} was declined: it takes no members",
            tenant.name
        )));
    }
    if let Some(account) = store.account_by_email(&email).await? {
        if account.operator {
            return Err(ConsoleError::Invalid(
                "that account is a platform operator and sees every tenant already".into(),
            ));
        }
        if store
            .tenant_members(&tenant.id)
            .await?
            .iter()
            .any(|m| m.account_id == account.id)
        {
            return Err(ConsoleError::Conflict(format!(
                "{email} is a member of {} already",
                tenant.name
            )));
        }
    }
    let token = random_token();
    let invitation = Invitation {
        token_hash: token_hash(&token),
        tenant_id: tenant.id.clone(),
        email: email.clone(),
        role,
        invited_by: actor.email.to_owned(),
        created_at: now,
        expires_at: now + INVITATION_TTL_MS,
        accepted_at: None,
    };
    store.create_invitation(&invitation).await?;
    let link = mailer.link(&format!("/console/invite?token={token}"));
    let sent = mailer
        .send(
            store,
            Mail {
                tenant_id: Some(tenant.id.clone()),
                to: email.clone(),
                kind: "invitation",
                subject: format!("{} invites you to {} on Tern", actor.email, tenant.name),
                body: format!(
                    "{} invites you to join {} on the Tern console as {}.\n\n\
                     Open this link to accept:\n\n{link}\n\n\
                     The link works once, for 7 days. If you did not expect it, ignore this mail.\n",
                    actor.email,
                    tenant.name,
                    role.as_str()
                ),
            },
        )
        .await;
    if sent.is_err() {
        // A link nobody received must not stay open.
        store.revoke_invitation(&tenant.id, &invitation.token_hash, now).await?;
        return Err(ConsoleError::MailFailed(
            "the invitation could not be mailed just now; try again in a few minutes".into(),
        ));
    }
    Ok(invitation)
}

/// An open invitation, its tenant, and whether its email has an account already.
pub async fn pending(store: &dyn Store, token: &str, now: UnixMillis) -> Result<(Invitation, Tenant, bool)> {
    let invitation = store
        .pending_invitation(&token_hash(token), now)
        .await?
        .ok_or(ConsoleError::NotFound("invitation"))?;
    let tenant = store
        .tenant(&invitation.tenant_id)
        .await?
        .ok_or(ConsoleError::NotFound("invitation"))?;
    let has_account = store.account_by_email(&invitation.email).await?.is_some();
    Ok((invitation, tenant, has_account))
}

/// Accepts: the email's account (made now with `password` when it has none) joins the
/// tenant with the invited role. Once.
pub async fn accept(
    store: &dyn Store,
    token: &str,
    password: &str,
    now: UnixMillis,
) -> Result<(Invitation, ConsoleAccount)> {
    let (_, _, has_account) = pending(store, token, now).await?;
    let hash = if has_account {
        None
    } else {
        check_new_password(password)?;
        Some(hash_new_password(password.to_owned()).await?)
    };
    store
        .accept_invitation(&token_hash(token), hash.as_deref(), now)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ConsoleError::NotFound("invitation"),
            other => other.into(),
        })
}

pub async fn open_invitations(store: &dyn Store, tenant: &TenantId, now: UnixMillis) -> Result<Vec<Invitation>> {
    Ok(store.tenant_invitations(tenant, now).await?)
}

/// Ends an open invitation's link now.
pub async fn revoke(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor<'_>,
    hash: &str,
    now: UnixMillis,
) -> Result<Invitation> {
    let invitation = store
        .tenant_invitations(tenant, now)
        .await?
        .into_iter()
        .find(|i| i.token_hash == hash)
        .ok_or(ConsoleError::NotFound("invitation"))?;
    above_own(actor, invitation.role, "revoke an invitation to")?;
    if !store.revoke_invitation(tenant, hash, now).await? {
        return Err(ConsoleError::NotFound("invitation"));
    }
    Ok(invitation)
}

async fn member(store: &dyn Store, tenant: &TenantId, account: i64) -> Result<(Membership, Vec<Membership>)> {
    let all = store.tenant_members(tenant).await?;
    let m = all
        .iter()
        .find(|m| m.account_id == account)
        .cloned()
        .ok_or(ConsoleError::NotFound("member"))?;
    Ok((m, all))
}

fn keeps_an_owner(all: &[Membership], changed: &Membership, after: Option<ConsoleRole>) -> Result<()> {
    let owners = all.iter().filter(|m| m.role == ConsoleRole::Owner).count();
    if changed.role == ConsoleRole::Owner && after != Some(ConsoleRole::Owner) && owners <= 1 {
        return Err(ConsoleError::Invalid(
            "a tenant keeps at least one owner: make someone else owner first".into(),
        ));
    }
    Ok(())
}

/// Changes a member's role (returns the membership as it was).
pub async fn change_role(
    store: &dyn Store,
    tenant: &TenantId,
    actor: &Actor<'_>,
    account: i64,
    role: ConsoleRole,
    now: UnixMillis,
) -> Result<Membership> {
    let (m, all) = member(store, tenant, account).await?;
    above_own(actor, m.role, "change a member with")?;
    above_own(actor, role, "grant")?;
    keeps_an_owner(&all, &m, Some(role))?;
    store.set_membership(account, tenant, role, now).await?;
    Ok(m)
}

/// Removes a member from the tenant (their account stays).
pub async fn remove(store: &dyn Store, tenant: &TenantId, actor: &Actor<'_>, account: i64) -> Result<Membership> {
    let (m, all) = member(store, tenant, account).await?;
    above_own(actor, m.role, "remove a member with")?;
    keeps_an_owner(&all, &m, None)?;
    if !store.remove_membership(account, tenant).await? {
        return Err(ConsoleError::NotFound("member"));
    }
    Ok(m)
}
