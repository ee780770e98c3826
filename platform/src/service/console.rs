//! The console's operations: signing in (argon2id, lockout after wrong passwords),
//! sessions with their CSRF token, accounts and tenant memberships, the audit log, and the
//! tenant and app changes an operator or tenant admin makes. The console door parses and
//! renders; whether a change is allowed and what it writes is decided here.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::admins::{hash_password, MIN_PASSWORD_LEN};
use crate::auth::credentials::CredentialCache;
use crate::bus::Invalidation;
use crate::delivery::Pipeline;
use crate::domain::{
    now_ms, App, AuditEntry, ConsoleAccount, ConsoleRole, ConsoleSession, Membership, NewAuditEntry, Tenant,
    TenantStatus, UnixMillis,
};
use crate::ids::{AppId, TenantId};
use crate::secret_box::SecretBox;
use crate::store::StoreError;
use crate::tenancy::{self, CreatedApp, RotatedSecret, RotatedWebhookSecret, TenancyError};

/// Wrong passwords in a row before an account is locked.
pub const MAX_FAILED_LOGINS: i32 = 5;
/// How long a locked account refuses every sign-in.
pub const LOCKOUT_MS: i64 = 15 * 60 * 1000;
/// A session's lifetime from sign-in; after it the browser signs in again.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;
/// Longest email accepted for an account.
const MAX_EMAIL_CHARS: usize = 254;
/// Longest password accepted (argon2 would take any length; a bound keeps a request cheap).
const MAX_PASSWORD_CHARS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("wrong email or password")]
    WrongCredentials,
    #[error("too many wrong passwords: this account is locked for a while")]
    Locked { until: UnixMillis },
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// The actor's role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// A mail the operation needs could not be sent (the SMTP server is down, say).
    #[error("{0}")]
    MailFailed(String),
    #[error(transparent)]
    Tenancy(TenancyError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Rejected(m) => Self::Invalid(m),
            other => Self::Store(other),
        }
    }
}

impl From<TenancyError> for ConsoleError {
    fn from(e: TenancyError) -> Self {
        match e {
            TenancyError::InvalidName(m) => Self::Invalid(m.to_owned()),
            TenancyError::InvalidArgument(m) | TenancyError::Rejected(m) => Self::Invalid(m),
            TenancyError::TenantExists(_) | TenancyError::AppNameTaken(_) => Self::Conflict(e.to_string()),
            TenancyError::UnknownTenant(_) => Self::NotFound("tenant"),
            TenancyError::UnknownApp(_) => Self::NotFound("app"),
            TenancyError::UnknownSecret(_) => Self::NotFound("secret"),
            TenancyError::Store(s) => s.into(),
            other => Self::Tenancy(other),
        }
    }
}

type Result<T> = std::result::Result<T, ConsoleError>;

/// A new session: the token goes to the browser (once, in a cookie); only its hash is kept.
pub struct SignedIn {
    pub token: String,
    pub session: ConsoleSession,
    pub account: ConsoleAccount,
}

/// Who a session belongs to, as every console request sees it.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session: ConsoleSession,
    pub account: ConsoleAccount,
    pub memberships: Vec<Membership>,
}

impl Viewer {
    /// The viewer's role in the tenant: operators are owners everywhere; `None` for a
    /// tenant they do not belong to.
    pub fn role_in(&self, tenant: &TenantId) -> Option<ConsoleRole> {
        if self.account.operator {
            return Some(ConsoleRole::Owner);
        }
        self.memberships.iter().find(|m| &m.tenant_id == tenant).map(|m| m.role)
    }
}

pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored for a session token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A syntactically plausible email, lowercased and trimmed.
pub fn parse_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(email)
    } else {
        Err(ConsoleError::Invalid("enter a valid email address".into()))
    }
}

/// A password for a new account: 8 to 256 characters.
pub fn check_new_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(ConsoleError::Invalid(format!(
            "a password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Checks a password against a stored argon2id hash, off the async threads (argon2 is
/// deliberately slow).
async fn password_matches(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

pub(crate) async fn hash_new_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ConsoleError::Invalid(format!("could not hash the password: {e}")))?
        .map_err(|e| ConsoleError::Invalid(e.to_string()))
}

/// A hash of no one's password, checked when the email is unknown so that an unknown
/// email takes as long as a wrong password.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password(&random_token()).unwrap_or_default())
        .clone()
}

/// Signs in: the password must match and the account must not be locked. Each wrong
/// password counts; the `MAX_FAILED_LOGINS`th locks the account for `LOCKOUT_MS`, during
/// which even the right password is refused. An unknown email is a wrong password.
pub async fn sign_in(p: &Pipeline, email: &str, password: &str, ip: &str, now: UnixMillis) -> Result<SignedIn> {
    let email = email.trim().to_lowercase();
    let password = password.chars().take(MAX_PASSWORD_CHARS + 1).collect::<String>();
    let Some(account) = p.store().account_by_email(&email).await? else {
        password_matches(dummy_hash(), password).await;
        return Err(ConsoleError::WrongCredentials);
    };
    if let Some(until) = account.locked_until.filter(|u| *u > now) {
        return Err(ConsoleError::Locked { until });
    }
    if !password_matches(account.password_hash.clone(), password).await {
        let after = p
            .store()
            .record_failed_login(account.id, MAX_FAILED_LOGINS, now + LOCKOUT_MS)
            .await?;
        return match after.locked_until.filter(|u| *u > now) {
            Some(until) => Err(ConsoleError::Locked { until }),
            None => Err(ConsoleError::WrongCredentials),
        };
    }
    if account.failed_logins != 0 || account.locked_until.is_some() {
        p.store().clear_failed_logins(account.id).await?;
    }
    let token = random_token();
    let session = ConsoleSession {
        token_hash: token_hash(&token),
        account_id: account.id,
        csrf_token: random_token(),
        ip: ip.to_owned(),
        created_at: now,
        expires_at: now + SESSION_TTL_MS,
    };
    p.store().create_session(&session).await?;
    Ok(SignedIn {
        token,
        session,
        account,
    })
}

/// The viewer a session token belongs to; `None` for an unknown or expired one.
pub async fn viewer(p: &Pipeline, token: &str, now: UnixMillis) -> Result<Option<Viewer>> {
    let Some(session) = p.store().session(&token_hash(token), now).await? else {
        return Ok(None);
    };
    let Some(account) = p.store().account(session.account_id).await? else {
        return Ok(None);
    };
    let memberships = p.store().memberships_of(account.id).await?;
    Ok(Some(Viewer {
        session,
        account,
        memberships,
    }))
}

/// Ends this session.
pub async fn sign_out(p: &Pipeline, viewer: &Viewer) -> Result<()> {
    Ok(p.store().delete_session(&viewer.session.token_hash).await?)
}

/// Ends every session of the viewer's account, on every browser; returns how many.
pub async fn sign_out_everywhere(p: &Pipeline, viewer: &Viewer) -> Result<u64> {
    Ok(p.store().delete_sessions_of(viewer.account.id).await?)
}

/// Adds someone to a tenant with a role. A new email gets an account with `password`
/// (required then); an existing account keeps its password and gets the role.
pub async fn add_member(
    p: &Pipeline,
    tenant: &TenantId,
    email: &str,
    password: Option<&str>,
    role: ConsoleRole,
) -> Result<Membership> {
    let email = parse_email(email)?;
    let account = match p.store().account_by_email(&email).await? {
        Some(a) if a.operator => {
            return Err(ConsoleError::Invalid(
                "that account is a platform operator and sees every tenant already".into(),
            ))
        }
        Some(a) => a,
        None => {
            let password = password
                .filter(|p| !p.is_empty())
                .ok_or_else(|| ConsoleError::Invalid("a new member needs a first password".into()))?;
            check_new_password(password)?;
            let hash = hash_new_password(password.to_owned()).await?;
            p.store().create_account(&email, &hash, false, now_ms()).await?
        }
    };
    p.store().set_membership(account.id, tenant, role, now_ms()).await?;
    p.store()
        .tenant_members(tenant)
        .await?
        .into_iter()
        .find(|m| m.account_id == account.id)
        .ok_or(ConsoleError::NotFound("membership"))
}

pub async fn members(p: &Pipeline, tenant: &TenantId) -> Result<Vec<Membership>> {
    Ok(p.store().tenant_members(tenant).await?)
}

/// Writes one line of the audit log.
pub async fn audit(p: &Pipeline, entry: NewAuditEntry) -> Result<()> {
    p.store().append_audit(&entry, now_ms()).await?;
    Ok(())
}

/// The audit log newest first: one tenant's, or with `None` the whole platform's.
pub async fn audit_log(
    p: &Pipeline,
    tenant: Option<&TenantId>,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    Ok(p.store().audit_log(tenant, before, limit.clamp(1, 200)).await?)
}

/// The mails the platform sent (or tried to), newest first, before the id `before`.
pub async fn mail_log(p: &Pipeline, before: Option<i64>, limit: u32) -> Result<Vec<crate::domain::MailRecord>> {
    Ok(p.store().mail_log(before, limit.clamp(1, 200)).await?)
}

/// An app's usage counters by hour, for the hours in `from..to`, oldest first.
pub async fn usage(p: &Pipeline, app: &App, from: UnixMillis, to: UnixMillis) -> Result<Vec<crate::usage::UsageHour>> {
    Ok(p.store().usage(&app.id, from, to).await?)
}

/// Tenants by id after `after`.
pub async fn tenants(p: &Pipeline, after: Option<&TenantId>, limit: u32) -> Result<Vec<Tenant>> {
    Ok(p.store().list_tenants(after, limit.clamp(1, 200)).await?)
}

pub async fn tenant(p: &Pipeline, id: &TenantId) -> Result<Tenant> {
    p.store().tenant(id).await?.ok_or(ConsoleError::NotFound("tenant"))
}

pub async fn create_tenant(p: &Pipeline, name: &str) -> Result<Tenant> {
    Ok(tenancy::create_tenant(p.store().as_ref(), name.trim()).await?)
}

/// Suspends or reactivates a tenant. Its apps' cached credentials are dropped here and on
/// every node, so API calls and SDK logins see the change at once (`app_suspended`).
pub async fn set_tenant_status(
    p: &Pipeline,
    credentials: &CredentialCache,
    id: &TenantId,
    status: TenantStatus,
) -> Result<Tenant> {
    p.store().set_tenant_status(id, status).await?;
    for app in p.store().list_apps(id).await? {
        credentials.invalidate(&app.app_key);
        p.announce(Invalidation::App { app_key: app.app_key });
    }
    tenant(p, id).await
}

/// Suspends (`Suspended`) or reactivates (`Active`) a tenant that is active or suspended;
/// one waiting for approval or declined is approved or declined instead (`Invalid`).
pub async fn suspend_or_activate(
    p: &Pipeline,
    credentials: &CredentialCache,
    tenant: &Tenant,
    status: TenantStatus,
) -> Result<Tenant> {
    if !matches!(status, TenantStatus::Active | TenantStatus::Suspended) {
        return Err(ConsoleError::Invalid("status must be active or suspended".into()));
    }
    if !matches!(tenant.status, TenantStatus::Active | TenantStatus::Suspended) {
        return Err(ConsoleError::Invalid(format!(
            "{} is {}: approve or decline it instead",
            tenant.name,
            tenant.status.as_str()
        )));
    }
    set_tenant_status(p, credentials, &tenant.id, status).await
}

/// Tenants with this status, oldest first (the ones waiting for approval, say).
pub async fn tenants_with_status(p: &Pipeline, status: TenantStatus, limit: u32) -> Result<Vec<Tenant>> {
    Ok(p.store().tenants_with_status(status, limit.clamp(1, 200)).await?)
}

/// Tenants by id after `after` whose name contains `query` (every tenant for an empty one).
pub async fn search_tenants(p: &Pipeline, query: &str, after: Option<&TenantId>, limit: u32) -> Result<Vec<Tenant>> {
    let limit = limit.clamp(1, 200);
    let query = query.trim();
    if query.is_empty() {
        return tenants(p, after, limit).await;
    }
    Ok(p.store().search_tenants(query, after, limit).await?)
}

pub async fn apps(p: &Pipeline, tenant: &TenantId) -> Result<Vec<App>> {
    Ok(p.store().list_apps(tenant).await?)
}

/// The app, only if it belongs to `tenant`: an app of another tenant is not found.
pub async fn app_of(p: &Pipeline, tenant: &TenantId, id: &AppId) -> Result<App> {
    match p.store().app(id).await? {
        Some(app) if &app.tenant_id == tenant => Ok(app),
        _ => Err(ConsoleError::NotFound("app")),
    }
}

/// A new app in the tenant, which must be active: a tenant waiting for approval, declined
/// or suspended gets none.
pub async fn create_app(p: &Pipeline, secrets: &SecretBox, tenant: &TenantId, name: &str) -> Result<CreatedApp> {
    let t = self::tenant(p, tenant).await?;
    if t.status != TenantStatus::Active {
        return Err(ConsoleError::Invalid(match t.status {
            TenantStatus::PendingApproval => {
                format!(
                    "{} is waiting for an operator's approval: apps can be created once it is approved",
                    t.name
                )
            }
            other => format!("{} is {}: only an active tenant gets new apps", t.name, other.as_str()),
        }));
    }
    Ok(tenancy::create_app(p.store().as_ref(), secrets, tenant.as_str(), name.trim()).await?)
}

/// An AppSecret as the console lists it: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub id: crate::ids::SecretId,
    pub created_at: UnixMillis,
    /// When it stops working (a rotated-out secret's grace period); `None`: no end.
    pub expires_at: Option<UnixMillis>,
}

/// The app's secrets still working, newest first.
pub async fn secrets_of(p: &Pipeline, app: &App) -> Result<Vec<SecretInfo>> {
    Ok(p.store()
        .active_app_secrets(&app.id, now_ms())
        .await?
        .into_iter()
        .map(|s| SecretInfo {
            id: s.id,
            created_at: s.created_at,
            expires_at: s.expires_at,
        })
        .collect())
}

/// A new AppSecret, returned in plaintext once; the others expire after the grace period.
pub async fn rotate_secret(
    p: &Pipeline,
    credentials: &CredentialCache,
    secrets: &SecretBox,
    app: &App,
) -> Result<RotatedSecret> {
    let rotated = tenancy::rotate_secret(p.store().as_ref(), secrets, app.app_key.as_str()).await?;
    forget_app(p, credentials, app);
    Ok(rotated)
}

/// Ends one secret now; the last working one cannot be revoked.
pub async fn revoke_secret(p: &Pipeline, credentials: &CredentialCache, app: &App, secret_id: &str) -> Result<()> {
    tenancy::revoke_secret(p.store().as_ref(), app.app_key.as_str(), secret_id).await?;
    forget_app(p, credentials, app);
    Ok(())
}

/// A new webhook secret, returned in plaintext once.
pub async fn rotate_webhook_secret(
    p: &Pipeline,
    credentials: &CredentialCache,
    secrets: &SecretBox,
    app: &App,
) -> Result<RotatedWebhookSecret> {
    let rotated = tenancy::rotate_webhook_secret(p.store().as_ref(), secrets, app.app_key.as_str()).await?;
    forget_app(p, credentials, app);
    Ok(rotated)
}

fn forget_app(p: &Pipeline, credentials: &CredentialCache, app: &App) {
    credentials.invalidate(&app.app_key);
    p.announce(Invalidation::App {
        app_key: app.app_key.clone(),
    });
}

/// Users of the app whose id starts with `query` or whose name contains it.
pub async fn search_users(
    p: &Pipeline,
    app: &App,
    query: &str,
    after: Option<&crate::ids::UserId>,
    limit: u32,
) -> Result<Vec<crate::domain::User>> {
    let limit = limit.clamp(1, 200);
    if query.is_empty() {
        return Ok(p.store().list_users(&app.id, after, limit).await?);
    }
    Ok(p.store().search_users(&app.id, query, after, limit).await?)
}
