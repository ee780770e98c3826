//! Who is asking, and whether a change really comes from their console page.
//!
//! - The session cookie (`tern_console`) holds a random token; the store keeps only its
//!   SHA-256. It is `HttpOnly; SameSite=Strict`, scoped to `/console`, and `Secure` behind
//!   HTTPS (a proxy's `X-Forwarded-Proto: https`) or when the operator asks for it.
//! - `Auth` (any page) finds the session; without one the browser is sent to sign in.
//! - `Posted<T>` (every change) also requires the session's CSRF token, from the form's
//!   `csrf` field or htmx's `X-CSRF-Token` header, and refuses cross-site requests.
//! - The sign-in form has its own token (double-submit cookie), since it has no session yet;
//!   `LoginLimiter` bounds sign-in attempts per client address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use subtle::ConstantTimeEq as _;
use tern_platform::domain::{now_ms, App, ConsoleRole, Tenant};
use tern_platform::ids::{AppId, TenantId};
use tern_platform::service::console::{self as console, Viewer, SESSION_TTL_MS};

use crate::error::PageError;
use crate::state::ConsoleState;
use crate::BASE;

pub const SESSION_COOKIE: &str = "tern_console";
pub const LOGIN_COOKIE: &str = "tern_console_login";
/// Largest form body the console reads.
const FORM_LIMIT: usize = 64 * 1024;

/// The value of cookie `name`, from every `Cookie` header.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Whether cookies set in this answer must be `Secure`.
pub fn secure(headers: &HeaderMap, st: &ConsoleState) -> bool {
    st.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` of a cookie the console's pages send back; `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path={BASE}; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

pub fn session_cookie(token: &str, secure: bool) -> String {
    set_cookie(SESSION_COOKIE, token, SESSION_TTL_MS / 1000, secure)
}

/// The client's address, as the listener saw it.
pub fn client_ip(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Compares two tokens in constant time.
pub fn same_token(given: &str, expected: &str) -> bool {
    !expected.is_empty() && given.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// A signed-in viewer, with the address they came from.
pub struct Auth {
    pub viewer: Viewer,
    pub ip: String,
}

impl FromRequestParts<ConsoleState> for Auth {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, st: &ConsoleState) -> Result<Self, PageError> {
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(PageError::SignIn)?;
        let viewer = console::viewer(&st.pipeline, &token, now_ms())
            .await?
            .ok_or(PageError::SignIn)?;
        Ok(Auth {
            viewer,
            ip: client_ip(parts),
        })
    }
}

#[derive(Deserialize, Default)]
struct CsrfField {
    csrf: Option<String>,
}

/// A change: a signed-in viewer, this session's CSRF token, and the form `T`.
pub struct Posted<T> {
    pub auth: Auth,
    pub form: T,
}

/// A change whose form has no fields but the CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}

/// Refuses requests a browser marks as coming from another site.
pub fn refuse_cross_site(headers: &HeaderMap) -> Result<(), PageError> {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("cross-site") | Some("same-site") => Err(PageError::Csrf),
        _ => Ok(()),
    }
}

impl<T: DeserializeOwned> FromRequest<ConsoleState> for Posted<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, st: &ConsoleState) -> Result<Self, PageError> {
        let (mut parts, body) = req.into_parts();
        refuse_cross_site(&parts.headers)?;
        let auth = Auth::from_request_parts(&mut parts, st).await?;
        let bytes = axum::body::to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| PageError::Invalid("the form is too large".into()))?;
        let field: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        let header = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let given = header.or(field.csrf).unwrap_or_default();
        if !same_token(&given, &auth.viewer.session.csrf_token) {
            return Err(PageError::Csrf);
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| PageError::Invalid(format!("the form does not parse: {e}")))?;
        Ok(Posted { auth, form })
    }
}

/// A tenant the viewer may see, with their role in it.
pub struct TenantScope {
    pub tenant: Tenant,
    pub role: ConsoleRole,
}

impl TenantScope {
    /// Refuses a change the viewer's role does not allow.
    pub fn require(&self, min: ConsoleRole, what: &str) -> Result<(), PageError> {
        if self.role >= min {
            Ok(())
        } else {
            Err(PageError::Forbidden(format!(
                "{what} needs the {} role or higher; yours is {}.",
                min.as_str(),
                self.role.as_str()
            )))
        }
    }
}

/// The tenant a URL names, if the viewer may see it; any other is not found (404), so a
/// URL does not even tell whether another tenant exists.
pub async fn tenant_scope(st: &ConsoleState, viewer: &Viewer, raw: &str) -> Result<TenantScope, PageError> {
    let id = TenantId::parse(raw).map_err(|_| PageError::NotFound)?;
    let role = viewer.role_in(&id).ok_or(PageError::NotFound)?;
    let tenant = console::tenant(&st.pipeline, &id).await?;
    Ok(TenantScope { tenant, role })
}

/// The app a URL names, if it belongs to the tenant the URL names and the viewer may see it.
pub async fn app_scope(
    st: &ConsoleState,
    viewer: &Viewer,
    tenant: &str,
    app: &str,
) -> Result<(TenantScope, App), PageError> {
    let scope = tenant_scope(st, viewer, tenant).await?;
    let id = AppId::parse(app).map_err(|_| PageError::NotFound)?;
    let app = console::app_of(&st.pipeline, &scope.tenant.id, &id).await?;
    Ok((scope, app))
}

/// Sign-in attempts allowed per client address per window.
pub const LOGIN_ATTEMPTS_PER_WINDOW: u32 = 20;
const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; past it, expired windows are dropped (and if none has
/// expired, all are: a flood of addresses must not grow memory without bound).
const LOGIN_ADDRESSES: usize = 10_000;

/// Counts sign-in attempts per client address in fixed one-minute windows.
#[derive(Default)]
pub struct LoginLimiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl LoginLimiter {
    /// Counts an attempt; `Err(seconds to wait)` past the allowance.
    pub fn attempt(&self, ip: &str) -> Result<(), u64> {
        self.attempt_at(ip, Instant::now())
    }

    fn attempt_at(&self, ip: &str, now: Instant) -> Result<(), u64> {
        let mut windows = match self.windows.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        if windows.len() >= LOGIN_ADDRESSES && !windows.contains_key(ip) {
            windows.retain(|_, (start, _)| now.duration_since(*start) < LOGIN_WINDOW);
            if windows.len() >= LOGIN_ADDRESSES {
                windows.clear();
            }
        }
        let entry = windows.entry(ip.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= LOGIN_WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= LOGIN_ATTEMPTS_PER_WINDOW {
            let left = LOGIN_WINDOW.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_attempts_are_limited_per_address_and_window() {
        let limiter = LoginLimiter::default();
        let start = Instant::now();
        for _ in 0..LOGIN_ATTEMPTS_PER_WINDOW {
            assert!(limiter.attempt_at("10.0.0.1", start).is_ok());
        }
        let wait = limiter
            .attempt_at("10.0.0.1", start + Duration::from_secs(20))
            .unwrap_err();
        assert_eq!(wait, 40);
        assert!(
            limiter.attempt_at("10.0.0.2", start).is_ok(),
            "another address has its own count"
        );
        assert!(
            limiter.attempt_at("10.0.0.1", start + LOGIN_WINDOW).is_ok(),
            "a new window"
        );
    }

    #[test]
    fn cookies_are_found_among_others_and_tokens_compared_exactly() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; tern_console=tok%3D; b=2".parse().unwrap());
        h.append("cookie", "tern_console_login=x".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("tok%3D"));
        assert_eq!(cookie(&h, LOGIN_COOKIE).as_deref(), Some("x"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("", ""), "an empty expected token never matches");
    }

    #[test]
    fn session_cookie_is_http_only_same_site_strict_and_secure_behind_tls() {
        let plain = session_cookie("t", false);
        assert!(
            plain.contains("HttpOnly") && plain.contains("SameSite=Strict"),
            "{plain}"
        );
        assert!(!plain.contains("Secure"));
        assert!(session_cookie("t", true).ends_with("; Secure"));
    }
}
