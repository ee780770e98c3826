//! `/admin/v1`: an app's usage per hour (the usage page's figures), the audit log (a
//! tenant's, or the platform's for operators), and the caller's own API tokens.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tern_platform::domain::{now_ms, ConsoleRole};
use tern_platform::ids::TenantId;
use tern_platform::service::{api_tokens, console};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::{AdminError, JsonBody};
use super::views::*;
use crate::auth::{app_scope, tenant_scope};
use crate::state::ConsoleState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// 24 (default), 168 or 720: the period ending with the current UTC hour.
    hours: Option<i64>,
}

/// Per hour (UTC): messages stored, server API calls and the errors among them, the most SDK
/// connections open at once
/// (the figures of the console's usage page and its CSV).
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/usage", operation_id = "admin_app_usage", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"), UsageQuery),
    responses((status = 200, body = AdminUsage), (status = "4XX", body = ErrorEnvelope)))]
pub async fn usage(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<UsageQuery>,
) -> Result<Json<AdminUsage>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let hours = q.hours.unwrap_or(24);
    if ![24, 168, 720].contains(&hours) {
        return Err(AdminError::invalid("hours must be 24, 168 or 720"));
    }
    let all = crate::pages::usage::hours_of(&st, &app, hours).await?;
    Ok(Json(AdminUsage {
        hours,
        total_messages: all.iter().map(|(_, c)| c.messages).sum(),
        total_api_calls: all.iter().map(|(_, c)| c.api_calls).sum(),
        total_errors: all.iter().map(|(_, c)| c.errors).sum(),
        peak_connections: all.iter().map(|(_, c)| c.connections).max().unwrap_or(0),
        rows: all.into_iter().map(AdminUsageHour::from).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries older than this id (the previous page's `next_before`).
    before: Option<i64>,
    /// 1 to 200 (default 50).
    limit: Option<u32>,
}

async fn audit_page(
    st: &ConsoleState,
    tenant: Option<&TenantId>,
    q: &AuditQuery,
) -> Result<Json<AdminAuditPage>, AdminError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let entries = console::audit_log(&st.pipeline, tenant, q.before, limit).await?;
    let next_before = (entries.len() as u32 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AdminAuditPage {
        entries: entries.into_iter().map(AdminAuditEntry::from).collect(),
        next_before,
    }))
}

/// The whole platform's audit log, newest first (operators).
#[utoipa::path(get, path = "/admin/v1/audit", operation_id = "admin_platform_audit", tag = "operator API",
    params(AuditQuery),
    responses((status = 200, body = AdminAuditPage), (status = "4XX", body = ErrorEnvelope)))]
pub async fn platform_audit(
    State(st): State<ConsoleState>,
    c: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AdminAuditPage>, AdminError> {
    c.require_operator("read the platform's audit log")?;
    audit_page(&st, None, &q).await
}

/// A tenant's audit log, newest first.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/audit", operation_id = "admin_tenant_audit", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), AuditQuery),
    responses((status = 200, body = AdminAuditPage), (status = "4XX", body = ErrorEnvelope)))]
pub async fn tenant_audit(
    State(st): State<ConsoleState>,
    c: Caller,
    Path(tenant): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AdminAuditPage>, AdminError> {
    let scope = tenant_scope(&st, &c.viewer, &tenant).await?;
    audit_page(&st, Some(&scope.tenant.id), &q).await
}

/// The caller's own tokens, newest first (revoked ones with `revoked_at`), each with its
/// end (`expires_at`) and last use (`last_used_at`, recorded at most once a minute).
#[utoipa::path(get, path = "/admin/v1/tokens", operation_id = "admin_list_tokens", tag = "operator API",
    responses((status = 200, body = AdminTokenList), (status = "4XX", body = ErrorEnvelope)))]
pub async fn tokens(State(st): State<ConsoleState>, c: Caller) -> Result<Json<AdminTokenList>, AdminError> {
    Ok(Json(AdminTokenList {
        tokens: visible_tokens(&st, &c)
            .await?
            .into_iter()
            .map(AdminToken::from)
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminNewToken {
    pub name: String,
    /// The tenant it acts in; absent: a platform token (operators only).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Its role there, at most the caller's (default: the caller's).
    #[serde(default)]
    pub role: Option<String>,
    /// Days until it stops working, 1 to 365; absent: no end (until revoked).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A new token, shown in this answer only.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AdminCreatedToken {
    pub token: String,
    pub info: AdminToken,
}

/// Makes a token for the caller (a platform token: operators; a tenant token: a role up to
/// the caller's). A tenant token's own calls may only make tokens of its tenant and role.
#[utoipa::path(post, path = "/admin/v1/tokens", operation_id = "admin_create_token", tag = "operator API",
    request_body = AdminNewToken,
    responses((status = 201, body = AdminCreatedToken), (status = "4XX", body = ErrorEnvelope)))]
pub async fn create_token(
    State(st): State<ConsoleState>,
    c: Caller,
    JsonBody(body): JsonBody<AdminNewToken>,
) -> Result<(StatusCode, Json<AdminCreatedToken>), AdminError> {
    let tenant = match body.tenant_id.as_deref() {
        None => None,
        Some(raw) => Some(tenant_scope(&st, &c.viewer, raw).await?.tenant.id),
    };
    let role = match body.role.as_deref() {
        None => None,
        Some(r) => Some(
            ConsoleRole::parse(r)
                .ok_or_else(|| AdminError::invalid("role must be owner, admin, developer or viewer"))?,
        ),
    };
    let new = api_tokens::NewToken {
        name: &body.name,
        tenant: tenant.as_ref(),
        role,
        expires_in_days: body.expires_in_days,
    };
    let created = api_tokens::create(&st.pipeline, &c.viewer, new, now_ms()).await?;
    audit_token(&st, &c, &created.info, "api_token.create").await?;
    Ok((
        StatusCode::CREATED,
        Json(AdminCreatedToken {
            token: created.token,
            info: created.info.into(),
        }),
    ))
}

/// Revokes a token: one's own, or (admins and owners) one of their tenant's up to their role.
#[utoipa::path(post, path = "/admin/v1/tokens/{token}/revoke", operation_id = "admin_revoke_token", tag = "operator API",
    params(("token" = String, Path, description = "The token's id (at_…), not its value")),
    responses((status = 200, body = AdminToken), (status = "4XX", body = ErrorEnvelope)))]
pub async fn revoke_token(
    State(st): State<ConsoleState>,
    c: Caller,
    Path(token): Path<String>,
) -> Result<Json<AdminToken>, AdminError> {
    if c.token.as_ref().is_some_and(|t| t.tenant_id.is_some())
        && !visible_tokens(&st, &c).await?.iter().any(|t| t.id == token)
    {
        return Err(AdminError::not_found());
    }
    let revoked = api_tokens::revoke(&st.pipeline, &c.viewer, &token, now_ms()).await?;
    audit_token(&st, &c, &revoked, "api_token.revoke").await?;
    Ok(Json(revoked.into()))
}

/// The caller's tokens; a tenant token's calls see only its owner's tokens of that tenant.
async fn visible_tokens(st: &ConsoleState, c: &Caller) -> Result<Vec<tern_platform::domain::ApiToken>, AdminError> {
    let mut mine = api_tokens::list(&st.pipeline, &c.viewer).await?;
    if let Some(scope) = c.token.as_ref().and_then(|t| t.tenant_id.clone()) {
        mine.retain(|t| t.tenant_id.as_ref() == Some(&scope));
    }
    Ok(mine)
}

/// The audit line of a token made or revoked: names it, never its value.
pub(crate) async fn audit_token(
    st: &ConsoleState,
    c: &Caller,
    token: &tern_platform::domain::ApiToken,
    action: &str,
) -> Result<(), AdminError> {
    c.audit(
        st,
        token.tenant_id.as_ref(),
        None,
        action,
        &token.name,
        format!(
            "{} of {}, {}",
            token.id,
            token.email,
            token.role.map(|r| r.as_str()).unwrap_or("platform")
        ),
    )
    .await
}
