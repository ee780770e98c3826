//! Public tenant sign-up: a sign-up form → a verification mail with a single-use link valid
//! 24 hours → the tenant and its owner exist, `pending_approval` (or `active` when the
//! platform does not ask for approval) → an operator approves or declines, and the owners
//! are told by mail. The console (and the CLI, for decisions) call these; the mail goes
//! through `crate::mail::Mailer`.

use crate::domain::{validate_tenant_name, ConsoleAccount, ConsoleRole, NewSignup, Tenant, TenantStatus, UnixMillis};
use crate::ids::TenantId;
use crate::mail::{Mail, Mailer};
use crate::service::console::{
    check_new_password, hash_new_password, parse_email, random_token, token_hash, ConsoleError,
};
use crate::store::{Store, StoreError};

/// How long a verification link works.
pub const SIGNUP_LINK_TTL_MS: i64 = 24 * 3600 * 1000;

type Result<T> = std::result::Result<T, ConsoleError>;

/// The platform's sign-up setting (`TERN_SIGNUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignupPolicy {
    /// No public sign-up: operators create tenants.
    Off,
    /// Anyone may sign up; an operator approves each new tenant before its apps work.
    #[default]
    Approval,
    /// Anyone may sign up; a verified tenant is active at once.
    Open,
}

impl SignupPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Some(Self::Off),
            "approval" => Some(Self::Approval),
            "open" => Some(Self::Open),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Approval => "approval",
            Self::Open => "open",
        }
    }
}

/// What a visitor typed into the sign-up form.
pub struct SignupRequest<'a> {
    pub tenant_name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub ip: &'a str,
}

async fn mail(store: &dyn Store, mailer: &Mailer, m: Mail) -> Result<()> {
    mailer.send(store, m).await.map_err(|_| {
        ConsoleError::MailFailed("the email could not be sent just now; try again in a few minutes".into())
    })
}

/// Takes a sign-up: checks it, keeps it, and mails the verification link. An email that
/// already has an account is told so by mail instead, and the visitor sees the same answer,
/// so the form does not reveal who has an account.
pub async fn sign_up(
    store: &dyn Store,
    mailer: &Mailer,
    policy: SignupPolicy,
    req: SignupRequest<'_>,
    now: UnixMillis,
) -> Result<String> {
    if policy == SignupPolicy::Off {
        return Err(ConsoleError::NotFound("sign-up"));
    }
    let name = req.tenant_name.trim();
    validate_tenant_name(name).map_err(|m| ConsoleError::Invalid(m.to_owned()))?;
    let email = parse_email(req.email)?;
    check_new_password(req.password)?;
    if store.tenant_by_name(name).await?.is_some() {
        return Err(ConsoleError::Conflict(format!(
            "a tenant named {name:?} exists already: choose another name"
        )));
    }
    if store.account_by_email(&email).await?.is_some() {
        mail(
            store,
            mailer,
            Mail {
                tenant_id: None,
                to: email.clone(),
                kind: "signup.existing",
                subject: "You already have a Tern console account".into(),
                body: format!(
                    "Someone (perhaps you) asked to sign up to the Tern console with this address,\n\
                     which has an account already. Sign in instead:\n\n{}\n\n\
                     If it was not you, you need not do anything.\n",
                    mailer.link("/console/login")
                ),
            },
        )
        .await?;
        return Ok(email);
    }
    let password_hash = hash_new_password(req.password.to_owned()).await?;
    let token = random_token();
    store
        .create_signup(&NewSignup {
            token_hash: token_hash(&token),
            email: email.clone(),
            password_hash,
            tenant_name: name.to_owned(),
            ip: req.ip.to_owned(),
            created_at: now,
            expires_at: now + SIGNUP_LINK_TTL_MS,
        })
        .await?;
    let link = mailer.link(&format!("/console/verify?token={token}"));
    mail(
        store,
        mailer,
        Mail {
            tenant_id: None,
            to: email.clone(),
            kind: "signup.verify",
            subject: format!("Confirm your email to create {name} on Tern"),
            body: format!(
                "Open this link to confirm your email and create the tenant {name}:\n\n{link}\n\n\
                 The link works once, for 24 hours. If you did not sign up, ignore this mail.\n"
            ),
        },
    )
    .await?;
    Ok(email)
}

/// The sign-up a link's token names, if it is still usable.
pub async fn pending(store: &dyn Store, token: &str, now: UnixMillis) -> Result<NewSignup> {
    store
        .pending_signup(&token_hash(token), now)
        .await?
        .ok_or(ConsoleError::NotFound("sign-up link"))
}

/// Verifies the email: creates the tenant (waiting for approval, or active) and its owner,
/// once. Mails the owner what happens next.
pub async fn verify(
    store: &dyn Store,
    mailer: &Mailer,
    policy: SignupPolicy,
    token: &str,
    now: UnixMillis,
) -> Result<(Tenant, ConsoleAccount)> {
    let status = match policy {
        SignupPolicy::Open => TenantStatus::Active,
        SignupPolicy::Approval | SignupPolicy::Off => TenantStatus::PendingApproval,
    };
    let (tenant, account) = store
        .complete_signup(&token_hash(token), &TenantId::generate(), status, now)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ConsoleError::NotFound("sign-up link"),
            other => other.into(),
        })?;
    let body = if status == TenantStatus::Active {
        format!(
            "Your email is confirmed and {} is ready. Sign in to create your first app:\n\n{}\n",
            tenant.name,
            mailer.link("/console/login")
        )
    } else {
        format!(
            "Your email is confirmed. {} now waits for a platform operator's approval;\n\
             we will write again when it is decided.\n",
            tenant.name
        )
    };
    // The tenant exists now: a mail that fails is in the outbox, and is no reason to fail.
    let _ = mailer
        .send(
            store,
            Mail {
                tenant_id: Some(tenant.id.clone()),
                to: account.email.clone(),
                kind: "signup.verified",
                subject: format!("{} is created on Tern", tenant.name),
                body,
            },
        )
        .await;
    Ok((tenant, account))
}

/// An operator's decision on a tenant waiting for approval: `active` or `declined`. The
/// tenant's owners are told by mail. `Invalid` when the tenant is not waiting.
pub async fn decide(
    store: &dyn Store,
    mailer: &Mailer,
    tenant: &TenantId,
    approve: bool,
    reason: &str,
) -> Result<Tenant> {
    let reason = reason.trim();
    if reason.chars().count() > 500 {
        return Err(ConsoleError::Invalid("a reason must be at most 500 characters".into()));
    }
    let t = store.tenant(tenant).await?.ok_or(ConsoleError::NotFound("tenant"))?;
    let to = if approve {
        TenantStatus::Active
    } else {
        TenantStatus::Declined
    };
    if !store
        .change_tenant_status(tenant, TenantStatus::PendingApproval, to)
        .await?
    {
        return Err(ConsoleError::Invalid(format!(
            "{} is not waiting for approval (it is {})",
            t.name,
            store.tenant(tenant).await?.map(|t| t.status.as_str()).unwrap_or("gone")
        )));
    }
    let (subject, body) = if approve {
        (
            format!("{} is approved on Tern", t.name),
            format!(
                "A platform operator approved {}. Sign in to create your first app:\n\n{}\n",
                t.name,
                mailer.link("/console/login")
            ),
        )
    } else {
        let why = if reason.is_empty() {
            String::new()
        } else {
            format!("\nThe operator wrote: {reason}\n")
        };
        (
            format!("{} was not approved on Tern", t.name),
            format!("A platform operator declined {}.\n{why}", t.name),
        )
    };
    for owner in store
        .tenant_members(tenant)
        .await?
        .into_iter()
        .filter(|m| m.role == ConsoleRole::Owner)
    {
        let _ = mailer
            .send(
                store,
                Mail {
                    tenant_id: Some(tenant.clone()),
                    to: owner.email,
                    kind: if approve { "tenant.approved" } else { "tenant.declined" },
                    subject: subject.clone(),
                    body: body.clone(),
                },
            )
            .await;
    }
    Ok(Tenant { status: to, ..t })
}
