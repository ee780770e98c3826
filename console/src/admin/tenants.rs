//! `/admin/v1/tenants…`: tenants (list and search, get, create, approve, decline, suspend,
//! activate) and their apps (list, create, get with settings and secrets, change settings,
//! rotate and revoke secrets, rotate the webhook secret). Each change calls the platform
//! operation the console's page calls and writes the same audit line.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tern_platform::domain::{ConsoleRole, TenantStatus};
use tern_platform::ids::TenantId;
use tern_platform::service::{console, signup};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::{AdminError, JsonBody};
use super::views::*;
use crate::auth::{app_scope, tenant_scope};
use crate::state::ConsoleState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// Part of the name (ignoring case); empty or absent: every tenant.
    q: Option<String>,
    /// `pending_approval` lists the tenants waiting for an operator, oldest first.
    status: Option<String>,
    /// The last id of the previous page.
    after: Option<String>,
    /// 1 to 200 (default 50).
    limit: Option<u32>,
}

/// The tenants the caller sees (operators: every tenant, by id, 50 a page; members: theirs).
#[utoipa::path(get, path = "/admin/v1/tenants", operation_id = "admin_list_tenants", tag = "operator API",
    params(TenantQuery),
    responses((status = 200, body = AdminTenantList), (status = "4XX", body = ErrorEnvelope)))]
pub async fn list(
    State(st): State<ConsoleState>,
    c: Caller,
    Query(q): Query<TenantQuery>,
) -> Result<Json<AdminTenantList>, AdminError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let query = q.q.unwrap_or_default();
    let query = query.trim().to_lowercase();
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            TenantStatus::parse(s)
                .ok_or_else(|| AdminError::invalid("status must be pending_approval, active, suspended or declined"))?,
        ),
    };
    let mut next_after = None;
    let mut tenants = if c.viewer.account.operator {
        match status {
            Some(s) => console::tenants_with_status(&st.pipeline, s, limit).await?,
            None => {
                let after = q.after.as_deref().and_then(|a| TenantId::parse(a).ok());
                let page = console::search_tenants(&st.pipeline, &query, after.as_ref(), limit).await?;
                if page.len() as u32 == limit {
                    next_after = page.last().map(|t| t.id.to_string());
                }
                page
            }
        }
    } else {
        let mut mine = Vec::new();
        for m in &c.viewer.memberships {
            mine.push(console::tenant(&st.pipeline, &m.tenant_id).await?);
        }
        mine
    };
    tenants.retain(|t| {
        (query.is_empty() || t.name.to_lowercase().contains(&query)) && status.is_none_or(|s| t.status == s)
    });
    Ok(Json(AdminTenantList {
        tenants: tenants.into_iter().map(AdminTenant::from).collect(),
        next_after,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminNewTenant {
    pub name: String,
}

/// Creates an active tenant (operators).
#[utoipa::path(post, path = "/admin/v1/tenants", operation_id = "admin_create_tenant", tag = "operator API",
    request_body = AdminNewTenant,
    responses((status = 201, body = AdminTenant), (status = "4XX", body = ErrorEnvelope)))]
pub async fn create(
    State(st): State<ConsoleState>,
    c: Caller,
    JsonBody(body): JsonBody<AdminNewTenant>,
) -> Result<(StatusCode, Json<AdminTenant>), AdminError> {
    c.require_operator("create tenants")?;
    let tenant = console::create_tenant(&st.pipeline, &body.name).await?;
    c.audit(
        &st,
        Some(&tenant.id),
        None,
        "tenant.create",
        &tenant.name,
        String::new(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(tenant.into())))
}

#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}", operation_id = "admin_get_tenant", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id")),
    responses((status = 200, body = AdminTenant), (status = "4XX", body = ErrorEnvelope)))]
pub async fn get(
    State(st): State<ConsoleState>,
    c: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<AdminTenant>, AdminError> {
    Ok(Json(tenant_scope(&st, &c.viewer, &tenant).await?.tenant.into()))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminDecision {
    /// Told to the tenant's owners in the mail (decline).
    #[serde(default)]
    pub reason: String,
}

/// Approves a tenant waiting for approval (operators); its owners are emailed.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/approve", operation_id = "admin_approve_tenant", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id")),
    responses((status = 200, body = AdminTenant), (status = "4XX", body = ErrorEnvelope)))]
pub async fn approve(
    State(st): State<ConsoleState>,
    c: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<AdminTenant>, AdminError> {
    decide(&st, &c, &tenant, true, "").await
}

/// Declines a tenant waiting for approval (operators); its owners are emailed the reason.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/decline", operation_id = "admin_decline_tenant", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id")), request_body = AdminDecision,
    responses((status = 200, body = AdminTenant), (status = "4XX", body = ErrorEnvelope)))]
pub async fn decline(
    State(st): State<ConsoleState>,
    c: Caller,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<AdminDecision>,
) -> Result<Json<AdminTenant>, AdminError> {
    decide(&st, &c, &tenant, false, &body.reason).await
}

async fn decide(
    st: &ConsoleState,
    c: &Caller,
    tenant: &str,
    approve: bool,
    reason: &str,
) -> Result<Json<AdminTenant>, AdminError> {
    let scope = tenant_scope(st, &c.viewer, tenant).await?;
    c.require_operator("approve or decline tenants")?;
    let decided = signup::decide(
        st.pipeline.store().as_ref(),
        &st.mailer,
        &scope.tenant.id,
        approve,
        reason,
    )
    .await?;
    let reason = reason.trim();
    let change = format!("{} → {}", scope.tenant.status.as_str(), decided.status.as_str());
    c.audit(
        st,
        Some(&decided.id),
        None,
        if approve { "tenant.approve" } else { "tenant.decline" },
        &decided.name,
        if reason.is_empty() {
            change
        } else {
            format!("{change}: {reason}")
        },
    )
    .await?;
    Ok(Json(decided.into()))
}

/// Suspends an active tenant (operators): its apps answer `app_suspended` at once.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/suspend", operation_id = "admin_suspend_tenant", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id")),
    responses((status = 200, body = AdminTenant), (status = "4XX", body = ErrorEnvelope)))]
pub async fn suspend(
    State(st): State<ConsoleState>,
    c: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<AdminTenant>, AdminError> {
    set_status(&st, &c, &tenant, TenantStatus::Suspended).await
}

/// Reactivates a suspended tenant (operators).
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/activate", operation_id = "admin_activate_tenant", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id")),
    responses((status = 200, body = AdminTenant), (status = "4XX", body = ErrorEnvelope)))]
pub async fn activate(
    State(st): State<ConsoleState>,
    c: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<AdminTenant>, AdminError> {
    set_status(&st, &c, &tenant, TenantStatus::Active).await
}

async fn set_status(
    st: &ConsoleState,
    c: &Caller,
    tenant: &str,
    status: TenantStatus,
) -> Result<Json<AdminTenant>, AdminError> {
    let scope = tenant_scope(st, &c.viewer, tenant).await?;
    c.require_operator("suspend or reactivate tenants")?;
    let changed = console::suspend_or_activate(&st.pipeline, &st.credentials, &scope.tenant, status).await?;
    c.audit(
        st,
        Some(&changed.id),
        None,
        "tenant.status",
        &changed.name,
        format!("{} → {}", scope.tenant.status.as_str(), changed.status.as_str()),
    )
    .await?;
    Ok(Json(changed.into()))
}

#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps", operation_id = "admin_list_apps", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id")),
    responses((status = 200, body = AdminAppList), (status = "4XX", body = ErrorEnvelope)))]
pub async fn apps(
    State(st): State<ConsoleState>,
    c: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<AdminAppList>, AdminError> {
    let scope = tenant_scope(&st, &c.viewer, &tenant).await?;
    let apps = console::apps(&st.pipeline, &scope.tenant.id).await?;
    Ok(Json(AdminAppList {
        apps: apps.iter().map(AdminApp::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminNewApp {
    pub name: String,
}

/// Creates an app (admin and up) in an active tenant; its AppSecret and webhook secret are
/// in this answer and never again.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/apps", operation_id = "admin_create_app", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id")), request_body = AdminNewApp,
    responses((status = 201, body = AdminCreatedApp), (status = "4XX", body = ErrorEnvelope)))]
pub async fn create_app(
    State(st): State<ConsoleState>,
    c: Caller,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<AdminNewApp>,
) -> Result<(StatusCode, Json<AdminCreatedApp>), AdminError> {
    let scope = tenant_scope(&st, &c.viewer, &tenant).await?;
    scope.require(ConsoleRole::Admin, "Creating apps")?;
    let created = console::create_app(&st.pipeline, &st.secrets, &scope.tenant.id, &body.name).await?;
    let app = console::app_of(&st.pipeline, &scope.tenant.id, &created.app_id).await?;
    c.audit(
        &st,
        Some(&scope.tenant.id),
        Some(&app),
        "app.create",
        &app.name,
        format!("app key {}", app.app_key),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(AdminCreatedApp {
            app: AdminApp::from(&app),
            app_secret: created.app_secret.clone(),
            webhook_secret: created.webhook_secret.clone(),
        }),
    ))
}

#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}", operation_id = "admin_get_app", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id")),
    responses((status = 200, body = AdminAppDetail), (status = "4XX", body = ErrorEnvelope)))]
pub async fn app(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<AdminAppDetail>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let secrets = console::secrets_of(&st.pipeline, &app).await?;
    Ok(Json(AdminAppDetail {
        app: AdminApp::from(&app),
        settings: serde_json::to_value(&app.settings).map_err(AdminError::internal)?,
        secrets: secrets.into_iter().map(AdminSecret::from).collect(),
    }))
}

/// Changes the settings named in the body (developer and up), checked as the server API's
/// `PATCH /v1/app/settings` checks them; answers every setting.
#[utoipa::path(patch, path = "/admin/v1/tenants/{tenant}/apps/{app}/settings", operation_id = "admin_update_app_settings", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id")),
    request_body(content = Object, description = "Any subset of the settings, by name"),
    responses((status = 200, body = Object), (status = "4XX", body = ErrorEnvelope)))]
pub async fn update_settings(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    JsonBody(patch): JsonBody<serde_json::Value>,
) -> Result<Json<serde_json::Value>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Changing settings")?;
    if !patch.is_object() {
        return Err(AdminError::new(
            "invalid_json",
            "the body must be a JSON object of settings",
        ));
    }
    let settings = tern_platform::service::settings::patch(
        &st.pipeline,
        &st.credentials,
        &app,
        &patch,
        st.max_app_rate_per_second,
    )
    .await?;
    let (before, after) = (
        serde_json::to_value(&app.settings).map_err(AdminError::internal)?,
        serde_json::to_value(&settings).map_err(AdminError::internal)?,
    );
    let changes = after
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| before.get(k.as_str()) != Some(*v))
        .map(|(k, v)| {
            format!(
                "{k}: {} → {v}",
                before.get(k.as_str()).unwrap_or(&serde_json::Value::Null)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    c.audit(&st, None, Some(&app), "app.settings", &app.name, changes)
        .await?;
    Ok(Json(after))
}

/// A new AppSecret (admin and up), in this answer only; the ones active before keep
/// working for the app's grace period.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/apps/{app}/secrets/rotate", operation_id = "admin_rotate_app_secret", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id")),
    responses((status = 200, body = AdminRotatedSecret), (status = "4XX", body = ErrorEnvelope)))]
pub async fn rotate_secret(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<AdminRotatedSecret>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Admin, "Rotating secrets")?;
    let rotated = console::rotate_secret(&st.pipeline, &st.credentials, &st.secrets, &app).await?;
    c.audit(
        &st,
        None,
        Some(&app),
        "app.secret.rotate",
        &app.name,
        format!(
            "new secret {}; earlier ones expire {}",
            rotated.secret_id,
            crate::views::when(rotated.previous_expire_at)
        ),
    )
    .await?;
    Ok(Json(AdminRotatedSecret {
        secret_id: rotated.secret_id.to_string(),
        app_secret: rotated.app_secret.clone(),
        previous_expire_at: rotated.previous_expire_at,
    }))
}

/// Ends one AppSecret now (admin and up); the last working one cannot be revoked.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/apps/{app}/secrets/{secret}/revoke", operation_id = "admin_revoke_app_secret", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"),
        ("secret" = String, Path, description = "The secret's id")),
    responses((status = 200, body = AdminDone), (status = "4XX", body = ErrorEnvelope)))]
pub async fn revoke_secret(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, secret)): Path<(String, String, String)>,
) -> Result<Json<AdminDone>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Admin, "Revoking secrets")?;
    console::revoke_secret(&st.pipeline, &st.credentials, &app, &secret).await?;
    c.audit(
        &st,
        None,
        Some(&app),
        "app.secret.revoke",
        &app.name,
        format!("secret {secret}"),
    )
    .await?;
    Ok(Json(AdminDone { done: true }))
}

/// A new webhook secret (admin and up), in this answer only.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/apps/{app}/webhook-secret/rotate", operation_id = "admin_rotate_webhook_secret", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id")),
    responses((status = 200, body = AdminRotatedWebhookSecret), (status = "4XX", body = ErrorEnvelope)))]
pub async fn rotate_webhook_secret(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<AdminRotatedWebhookSecret>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Admin, "Rotating the webhook secret")?;
    let rotated = console::rotate_webhook_secret(&st.pipeline, &st.credentials, &st.secrets, &app).await?;
    c.audit(
        &st,
        None,
        Some(&app),
        "app.webhook_secret.rotate",
        &app.name,
        format!(
            "the earlier one signs until {}",
            crate::views::when(rotated.previous_expire_at)
        ),
    )
    .await?;
    Ok(Json(AdminRotatedWebhookSecret {
        webhook_secret: rotated.webhook_secret.clone(),
        previous_expire_at: rotated.previous_expire_at,
    }))
}
