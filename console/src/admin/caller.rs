//! `Caller`: who is calling the operator API. A bearer token (`Authorization: Bearer
//! tern_at_…`) acts as its owner, bounded by the token (`service::api_tokens`); without
//! one, the console's session cookie works too, and then every change must carry the
//! session's CSRF token in `X-CSRF-Token` (as the console's own htmx requests do).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use tern_platform::domain::{now_ms, ApiToken, App};
use tern_platform::ids::TenantId;
use tern_platform::service::api_tokens::{self, TokenCheck};
use tern_platform::service::console::{self, Viewer};

use super::error::AdminError;
use crate::auth::{client_ip, cookie, refuse_cross_site, same_token, SESSION_COOKIE};
use crate::pages::audit_entry;
use crate::state::ConsoleState;

pub struct Caller {
    pub viewer: Viewer,
    /// The token it came with; `None` for a session cookie.
    pub token: Option<ApiToken>,
    pub ip: String,
}

impl Caller {
    /// How the audit log names the caller: the owner's email, and the token's name.
    pub fn actor(&self) -> String {
        match &self.token {
            Some(t) => format!("{} (token {})", self.viewer.account.email, t.name),
            None => self.viewer.account.email.clone(),
        }
    }

    pub fn require_operator(&self, what: &str) -> Result<(), AdminError> {
        if self.viewer.account.operator {
            Ok(())
        } else {
            Err(AdminError::forbidden(format!("only platform operators may {what}")))
        }
    }

    /// Writes one line of the console's audit log for a change this caller made.
    pub async fn audit(
        &self,
        st: &ConsoleState,
        tenant: Option<&TenantId>,
        app: Option<&App>,
        action: &str,
        target: &str,
        detail: String,
    ) -> Result<(), AdminError> {
        let entry = audit_entry(self.actor(), self.ip.clone(), (tenant, app), action, target, detail);
        console::audit(&st.pipeline, entry).await?;
        Ok(())
    }
}

impl FromRequestParts<ConsoleState> for Caller {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, st: &ConsoleState) -> Result<Self, AdminError> {
        let ip = client_ip(parts);
        if let Some(auth) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let presented = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .map(str::trim)
                .ok_or_else(|| AdminError::new("api_token_invalid", "Authorization must be `Bearer <token>`"))?;
            return match api_tokens::caller(&st.pipeline, presented, now_ms()).await? {
                TokenCheck::Valid(viewer, token) => Ok(Caller {
                    viewer: *viewer,
                    token: Some(token),
                    ip,
                }),
                TokenCheck::Unknown => Err(AdminError::new("api_token_invalid", "this token is not valid")),
                TokenCheck::Revoked => Err(AdminError::new("api_token_revoked", "this token was revoked")),
                TokenCheck::Expired => Err(AdminError::new(
                    "api_token_expired",
                    "this token has expired: make a new one",
                )),
            };
        }
        let Some(session) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(AdminError::new(
                "missing_credentials",
                "send `Authorization: Bearer <token>` or the console's session cookie",
            ));
        };
        let viewer = console::viewer(&st.pipeline, &session, now_ms())
            .await?
            .ok_or_else(|| AdminError::new("api_token_invalid", "the session is unknown or has expired"))?;
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            refuse_cross_site(&parts.headers)?;
            let given = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !same_token(given, &viewer.session.csrf_token) {
                return Err(AdminError::new(
                    "csrf_token_invalid",
                    "a change with the session cookie needs the session's X-CSRF-Token",
                ));
            }
        }
        Ok(Caller {
            viewer,
            token: None,
            ip,
        })
    }
}
