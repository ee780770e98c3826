//! Operator API tokens: an operator or a tenant member names a token in the console and
//! scripts `/admin/v1` with it (`Authorization: Bearer tern_at_…`). The token is 256 random
//! bits, shown once; the store keeps only its SHA-256 (like console sessions: a random token
//! needs no slow hash, and a hash lets each request find its token at once).
//!
//! A token acts as its account, bounded at every use: a platform token needs its account
//! to still be an operator; a tenant token needs its account to still be a member there (an
//! operator's tenant token, still an operator) and acts with the lower of its own role and
//! the member's role now. Revoking it, removing the member or demoting the operator ends it.
//! A token may be made with an end (`expires_in_days`); after it the token is refused as
//! expired. Each use is recorded (`last_used_at`) at most once a minute per token.

use crate::delivery::Pipeline;
use crate::domain::{ApiToken, ConsoleRole, ConsoleSession, Membership, UnixMillis};
use crate::ids::TenantId;
use crate::service::console::{random_token, token_hash, ConsoleError, Viewer};

/// Every token starts with this, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "tern_at_";
/// Longest token name.
pub const MAX_NAME_CHARS: usize = 64;
/// The longest end a token may be made with, in days.
pub const MAX_EXPIRES_IN_DAYS: u32 = 365;
/// A token's use is written at most this often (a busy script does not write on each read).
pub const LAST_USED_EVERY_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 3600 * 1000;

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
    /// Its end (`expires_at`) has passed.
    Expired,
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

/// When a token made `now` to last `days` ends; `None` days: never. `Invalid` outside 1 to
/// [`MAX_EXPIRES_IN_DAYS`].
pub fn expiry(days: Option<u32>, now: UnixMillis) -> Result<Option<UnixMillis>> {
    match days {
        None => Ok(None),
        Some(d) if (1..=MAX_EXPIRES_IN_DAYS).contains(&d) => Ok(Some(now.saturating_add(i64::from(d) * DAY_MS))),
        Some(_) => Err(ConsoleError::Invalid(format!(
            "expires_in_days must be 1 to {MAX_EXPIRES_IN_DAYS} (or absent: no end)"
        ))),
    }
}

/// What a token is made with besides its owner.
pub struct NewToken<'a> {
    pub name: &'a str,
    /// `None`: a platform token (operators only).
    pub tenant: Option<&'a TenantId>,
    /// Default: the owner's role there.
    pub role: Option<ConsoleRole>,
    /// `None`: no end.
    pub expires_in_days: Option<u32>,
}

/// Makes a token for `viewer`: for the whole platform (`tenant` `None`, operators only) or
/// for one tenant they see, with `role` (default: their own) no higher than theirs there,
/// ending after `expires_in_days` if given.
pub async fn create(p: &Pipeline, viewer: &Viewer, new: NewToken<'_>, now: UnixMillis) -> Result<CreatedToken> {
    let NewToken {
        name,
        tenant,
        role,
        expires_in_days,
    } = new;
    let name = check_name(name)?;
    let expires_at = expiry(expires_in_days, now)?;
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
        expires_at,
        last_used_at: None,
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

/// Who a presented token acts as at `now`, checked against the account as it is now; a
/// token that works has this use recorded (at most once a minute).
pub async fn caller(p: &Pipeline, presented: &str, now: UnixMillis) -> Result<TokenCheck> {
    if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 128 {
        return Ok(TokenCheck::Unknown);
    }
    let Some(mut token) = p.store().api_token_by_hash(&token_hash(presented)).await? else {
        return Ok(TokenCheck::Unknown);
    };
    if token.revoked_at.is_some() {
        return Ok(TokenCheck::Revoked);
    }
    if token.expires_at.is_some_and(|end| end <= now) {
        return Ok(TokenCheck::Expired);
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
    record_use(p, &mut token, now).await;
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

/// Writes `last_used_at` when the last recorded use is a minute old or more (the store
/// checks again, so two nodes write once). A failed write only loses a timestamp: logged,
/// the call goes on.
async fn record_use(p: &Pipeline, token: &mut ApiToken, now: UnixMillis) {
    if token
        .last_used_at
        .is_some_and(|at| now.saturating_sub(at) < LAST_USED_EVERY_MS)
    {
        return;
    }
    match p.store().touch_api_token(&token.id, now, LAST_USED_EVERY_MS).await {
        Ok(true) => token.last_used_at = Some(now),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, token = %token.id, "could not record an API token's use"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_is_1_to_365_days_or_none() {
        assert_eq!(expiry(None, 5).ok().flatten(), None);
        assert_eq!(expiry(Some(1), 5).ok().flatten(), Some(5 + DAY_MS));
        assert_eq!(expiry(Some(365), 0).ok().flatten(), Some(365 * DAY_MS));
        assert!(expiry(Some(0), 5).is_err());
        assert!(expiry(Some(366), 5).is_err());
    }
}
