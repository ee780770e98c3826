//! Operator API tokens: an operator or a tenant member names a token in the console and
//! scripts `/admin/v1` with it (`Authorization: Bearer tern_at_…`). The token is 256 random
//! bits, shown once; the store keeps only its SHA-256 (like console sessions: a random token
//! needs no slow hash, and a hash lets each request find its token at once).
//!
//! A token acts as its account, bounded at every use: a platform token needs its account
//! to still be an operator; a tenant token needs its account to still be a member there (an
//! operator's tenant token, still an operator) and acts with the lower of its own role and
//! the member's role now. Revoking it, removing the member or demoting the operator ends it.

use crate::delivery::Pipeline;
use crate::domain::{ApiToken, ConsoleRole, ConsoleSession, Membership, UnixMillis};
use crate::ids::TenantId;
use crate::service::console::{random_token, token_hash, ConsoleError, Viewer};

/// Every token starts with this, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "tern_at_";
/// Longest token name.
pub const MAX_NAME_CHARS: usize = 64;

type Result<T> = std::result::Result<T, ConsoleError>;

/// A new token: `token` goes to its owner once and is never kept.
pub struct CreatedToken {
    pub token: String,
    pub info: ApiToken,
}

/// What a presented token turns out to be.
pub enum TokenCheck {
    /// It works: who it acts as (their memberships already bounded by the token).
    Valid(Box<Viewer>, ApiToken),
    /// Malformed or never issued.
    Unknown,
    /// Revoked, or its owner lost the access it was made with.
    Revoked,
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ConsoleError::Invalid(format!(
            "a token name must be 1 to {MAX_NAME_CHARS} characters, without control characters"
        )));
    }
    Ok(name.to_owned())
}

/// Makes a token for `viewer`: for the whole platform (`tenant` `None`, operators only) or
/// for one tenant they see, with `role` (default: their own) no higher than theirs there.
pub async fn create(
    p: &Pipeline,
    viewer: &Viewer,
    name: &str,
    tenant: Option<&TenantId>,
    role: Option<ConsoleRole>,
    now: UnixMillis,
) -> Result<CreatedToken> {
    let name = check_name(name)?;
    let role = match tenant {
        None if !viewer.account.operator => {
            return Err(ConsoleError::Forbidden(
                "only platform operators make platform tokens: choose one of your tenants".into(),
            ))
        }
        None => None,
        Some(t) => {
            let own = viewer.role_in(t).ok_or(ConsoleError::NotFound("tenant"))?;
            let role = role.unwrap_or(own);
            if role > own {
                return Err(ConsoleError::Forbidden(format!(
                    "a token cannot have the {} role: it is above your own ({})",
                    role.as_str(),
                    own.as_str()
                )));
            }
            Some(role)
        }
    };
    let token = format!("{TOKEN_PREFIX}{}", random_token());
    let mut id_bytes = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id_bytes);
    let info = ApiToken {
        id: format!("at_{}", hex::encode(id_bytes)),
        account_id: viewer.account.id,
        email: viewer.account.email.clone(),
        name,
        tenant_id: tenant.cloned(),
        role,
        created_at: now,
        revoked_at: None,
    };
    p.store().create_api_token(&info, &token_hash(&token)).await?;
    Ok(CreatedToken { token, info })
}

/// The viewer's own tokens, newest first (revoked ones marked).
pub async fn list(p: &Pipeline, viewer: &Viewer) -> Result<Vec<ApiToken>> {
    Ok(p.store().api_tokens_of(viewer.account.id).await?)
}

/// Revokes a token: its owner, an operator, or an admin or owner of the token's tenant
/// whose role is at least the token's may. Any other token is not found, as if it did not
/// exist. Revoking a revoked token changes nothing.
pub async fn revoke(p: &Pipeline, viewer: &Viewer, id: &str, now: UnixMillis) -> Result<ApiToken> {
    let token = p.store().api_token(id).await?.ok_or(ConsoleError::NotFound("token"))?;
    let allowed = token.account_id == viewer.account.id
        || viewer.account.operator
        || match (&token.tenant_id, token.role) {
            (Some(t), Some(role)) => viewer
                .role_in(t)
                .is_some_and(|own| own >= ConsoleRole::Admin && own >= role),
            _ => false,
        };
    if !allowed {
        return Err(ConsoleError::NotFound("token"));
    }
    p.store().revoke_api_token(id, now).await?;
    Ok(p.store().api_token(id).await?.unwrap_or(token))
}

/// Who a presented token acts as, checked against the account as it is now.
pub async fn caller(p: &Pipeline, presented: &str) -> Result<TokenCheck> {
    if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 128 {
        return Ok(TokenCheck::Unknown);
    }
    let Some(token) = p.store().api_token_by_hash(&token_hash(presented)).await? else {
        return Ok(TokenCheck::Unknown);
    };
    if token.revoked_at.is_some() {
        return Ok(TokenCheck::Revoked);
    }
    let Some(mut account) = p.store().account(token.account_id).await? else {
        return Ok(TokenCheck::Revoked);
    };
    let memberships = match (&token.tenant_id, token.role) {
        (None, _) if account.operator => p.store().memberships_of(account.id).await?,
        (Some(t), Some(role)) => {
            let now_role = if account.operator {
                Some(ConsoleRole::Owner)
            } else {
                p.store()
                    .memberships_of(account.id)
                    .await?
                    .into_iter()
                    .find(|m| &m.tenant_id == t)
                    .map(|m| m.role)
            };
            let Some(now_role) = now_role else {
                return Ok(TokenCheck::Revoked);
            };
            // A tenant token sees its tenant only, even an operator's.
            account.operator = false;
            vec![Membership {
                account_id: account.id,
                email: account.email.clone(),
                tenant_id: t.clone(),
                role: role.min(now_role),
                created_at: token.created_at,
            }]
        }
        _ => return Ok(TokenCheck::Revoked),
    };
    // A token has no browser session: no CSRF token (an empty one never matches).
    let session = ConsoleSession {
        token_hash: token.id.clone(),
        account_id: account.id,
        csrf_token: String::new(),
        ip: String::new(),
        created_at: token.created_at,
        expires_at: UnixMillis::MAX,
    };
    Ok(TokenCheck::Valid(
        Box::new(Viewer {
            session,
            account,
            memberships,
        }),
        token,
    ))
}
