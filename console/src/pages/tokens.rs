//! API tokens for the operator API: a viewer's own tokens, making one (shown once on the
//! answer to the POST, never again), and revoking one. The platform decides who may make
//! which (`service::api_tokens`); the change is audited as the API's own token calls are.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tern_platform::domain::{now_ms, ApiToken, ConsoleRole, NewAuditEntry};
use tern_platform::ids::TenantId;
use tern_platform::service::{api_tokens, console};

use super::see_other;
use crate::auth::{Auth, NoFields, Posted};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, when_or, Chrome};
use crate::BASE;

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub role: String,
    pub created: String,
    /// When it stops working ("never" without an end).
    pub expires: String,
    /// When it last authenticated a call (to the minute), or "never".
    pub last_used: String,
    pub state: String,
    pub active: bool,
}

pub struct ScopeChoice {
    pub id: String,
    pub name: String,
    pub role: String,
}

pub struct NewToken {
    pub name: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenRow>,
    scopes: Vec<ScopeChoice>,
    created: Option<NewToken>,
    error: Option<String>,
}

async fn page(
    st: &ConsoleState,
    auth: &Auth,
    created: Option<NewToken>,
    error: Option<String>,
) -> Result<TokensPage, PageError> {
    let v = &auth.viewer;
    let mut names = std::collections::HashMap::new();
    let mut scopes = Vec::new();
    for m in &v.memberships {
        let t = console::tenant(&st.pipeline, &m.tenant_id).await?;
        names.insert(t.id.clone(), t.name.clone());
        scopes.push(ScopeChoice {
            id: t.id.to_string(),
            name: t.name,
            role: m.role.as_str().into(),
        });
    }
    let mut tokens = Vec::new();
    let now = now_ms();
    for t in api_tokens::list(&st.pipeline, v).await? {
        let scope = match &t.tenant_id {
            None => "the whole platform".to_owned(),
            Some(id) => match names.get(id) {
                Some(n) => n.clone(),
                None => console::tenant(&st.pipeline, id)
                    .await
                    .map(|t| t.name)
                    .unwrap_or_else(|_| id.to_string()),
            },
        };
        tokens.push(TokenRow {
            state: match (t.revoked_at, t.expires_at) {
                (Some(at), _) => format!("revoked {}", when(at)),
                (None, Some(end)) if end <= now => format!("expired {}", when(end)),
                _ => "active".into(),
            },
            active: t.revoked_at.is_none() && t.expires_at.is_none_or(|end| end > now),
            expires: when_or(t.expires_at, "never"),
            last_used: when_or(t.last_used_at, "never"),
            id: t.id,
            name: t.name,
            scope,
            role: t.role.map(|r| r.as_str()).unwrap_or("operator").into(),
            created: when(t.created_at),
        });
    }
    Ok(TokensPage {
        chrome: Chrome::new(v, "API tokens"),
        tokens,
        scopes,
        created,
        error,
    })
}

pub async fn list(State(st): State<ConsoleState>, auth: Auth) -> Result<Response, PageError> {
    Ok(html(page(&st, &auth, None, None).await?))
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    role: String,
    /// Days until it stops working; empty: no end.
    #[serde(default)]
    expires: String,
}

pub async fn create(State(st): State<ConsoleState>, posted: Posted<CreateForm>) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let f = &posted.form;
    let tenant = match f.tenant.trim() {
        "" => None,
        raw => {
            let id = TenantId::parse(raw).map_err(|_| PageError::NotFound)?;
            auth.viewer.role_in(&id).ok_or(PageError::NotFound)?;
            Some(id)
        }
    };
    let role = match f.role.trim() {
        "" => None,
        r => Some(
            ConsoleRole::parse(r)
                .ok_or_else(|| PageError::Invalid("role must be owner, admin, developer or viewer".into()))?,
        ),
    };
    let expires_in_days = match f.expires.trim() {
        "" => None,
        d => Some(
            d.parse::<u32>()
                .map_err(|_| PageError::Invalid("expires must be a whole number of days".into()))?,
        ),
    };
    let new = api_tokens::NewToken {
        name: &f.name,
        tenant: tenant.as_ref(),
        role,
        expires_in_days,
    };
    let created = match api_tokens::create(&st.pipeline, &auth.viewer, new, now_ms()).await {
        Ok(c) => c,
        Err(console::ConsoleError::Invalid(message)) => {
            let mut r = html(page(&st, auth, None, Some(message)).await?);
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(r);
        }
        Err(e) => return Err(e.into()),
    };
    audit(&st, auth, &created.info, "api_token.create").await?;
    let shown = NewToken {
        name: created.info.name.clone(),
        value: created.token,
    };
    Ok(html(page(&st, auth, Some(shown), None).await?))
}

pub async fn revoke(
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let revoked = api_tokens::revoke(&st.pipeline, &posted.auth.viewer, &id, now_ms()).await?;
    audit(&st, &posted.auth, &revoked, "api_token.revoke").await?;
    Ok(see_other(&format!("{BASE}/tokens")))
}

async fn audit(st: &ConsoleState, auth: &Auth, token: &ApiToken, action: &str) -> Result<(), PageError> {
    console::audit(
        &st.pipeline,
        NewAuditEntry {
            actor: auth.viewer.account.email.clone(),
            ip: auth.ip.clone(),
            tenant_id: token.tenant_id.clone(),
            app_id: None,
            action: action.to_owned(),
            target: token.name.clone(),
            detail: format!(
                "{} of {}, {}",
                token.id,
                token.email,
                token.role.map(|r| r.as_str()).unwrap_or("platform")
            ),
        },
    )
    .await?;
    Ok(())
}
