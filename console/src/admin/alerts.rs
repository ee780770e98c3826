//! `/admin/v1/tenants/{tenant}/apps/{app}/alert-rules` and `…/alerts`: an app's alert rules
//! (list, create, read, change, delete; changes need the developer role and are audited as
//! on the console's alerts page) and its raised alerts, through `service::alerts`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::alerts::{Alert, AlertRule};
use tern_platform::domain::ConsoleRole;
use tern_platform::service::alerts as service;
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::{AdminError, JsonBody};
use super::views::{AdminDone, ErrorEnvelope};
use crate::auth::app_scope;
use crate::state::ConsoleState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAlertRule {
    /// `ar_…`
    pub id: String,
    /// `error_rate`, `webhook_failures`, `dead_events` or `connection_drop`.
    pub kind: String,
    /// Percent (error_rate, connection_drop) or a count: the rule holds above it.
    pub threshold: i64,
    /// error_rate and webhook_failures: minutes looked back; 0 for the others.
    pub window_minutes: i64,
    /// error_rate: fewest calls to judge; connection_drop: fewest connections in the earlier hour; else 0.
    pub min_volume: i64,
    /// The condition in words.
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<AlertRule> for AdminAlertRule {
    fn from(r: AlertRule) -> Self {
        Self {
            kind: r.spec.kind.as_str().to_owned(),
            threshold: r.spec.threshold,
            window_minutes: r.spec.window_minutes,
            min_volume: r.spec.min_volume,
            description: r.spec.describe(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            id: r.id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAlertRuleList {
    pub rules: Vec<AdminAlertRule>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAlert {
    /// `al_…`
    pub id: String,
    pub rule_id: String,
    pub kind: String,
    pub threshold: i64,
    /// What was seen when it was raised.
    pub summary: String,
    pub raised_at: i64,
    /// Absent while the alert is open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<i64>,
}

impl From<Alert> for AdminAlert {
    fn from(a: Alert) -> Self {
        Self {
            id: a.id,
            rule_id: a.rule_id,
            kind: a.kind.as_str().to_owned(),
            threshold: a.threshold,
            summary: a.summary,
            raised_at: a.raised_at,
            resolved_at: a.resolved_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminAlertPage {
    pub alerts: Vec<AdminAlert>,
    /// The `before` of the next page, when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

/// A rule's settings. On create `kind` and `threshold` are needed; on change each field
/// given replaces the rule's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminRuleBody {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub threshold: Option<i64>,
    #[serde(default)]
    pub window_minutes: Option<i64>,
    #[serde(default)]
    pub min_volume: Option<i64>,
}

#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/alert-rules", operation_id = "admin_alert_rules", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id")),
    responses((status = 200, body = AdminAlertRuleList), (status = "4XX", body = ErrorEnvelope)))]
pub async fn rules(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<AdminAlertRuleList>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let rules = service::rules(&st.pipeline, &app).await?;
    Ok(Json(AdminAlertRuleList {
        rules: rules.into_iter().map(AdminAlertRule::from).collect(),
    }))
}

/// Creates a rule (developer and up); bad thresholds answer `invalid_argument`.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/apps/{app}/alert-rules", operation_id = "admin_create_alert_rule", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id")),
    request_body = AdminRuleBody,
    responses((status = 201, body = AdminAlertRule), (status = "4XX", body = ErrorEnvelope)))]
pub async fn create_rule(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    JsonBody(body): JsonBody<AdminRuleBody>,
) -> Result<(StatusCode, Json<AdminAlertRule>), AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Creating an alert rule")?;
    let kind = body
        .kind
        .as_deref()
        .ok_or_else(|| AdminError::invalid("a rule needs a kind"))?;
    let spec = service::spec(kind, body.threshold, body.window_minutes, body.min_volume)?;
    let rule = service::create_rule(&st.pipeline, &app, spec).await?;
    c.audit(
        &st,
        None,
        Some(&app),
        "app.alert_rule.create",
        &rule.id,
        rule.spec.describe(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(rule.into())))
}

#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/alert-rules/{rule}", operation_id = "admin_alert_rule", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"), ("rule" = String, Path, description = "The rule's id (ar_…)")),
    responses((status = 200, body = AdminAlertRule), (status = "4XX", body = ErrorEnvelope)))]
pub async fn rule(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, rule)): Path<(String, String, String)>,
) -> Result<Json<AdminAlertRule>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    Ok(Json(service::rule(&st.pipeline, &app, &rule).await?.into()))
}

/// Changes the fields given (developer and up); the rest stay.
#[utoipa::path(patch, path = "/admin/v1/tenants/{tenant}/apps/{app}/alert-rules/{rule}", operation_id = "admin_update_alert_rule", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"), ("rule" = String, Path, description = "The rule's id (ar_…)")),
    request_body = AdminRuleBody,
    responses((status = 200, body = AdminAlertRule), (status = "4XX", body = ErrorEnvelope)))]
pub async fn update_rule(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, rule)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<AdminRuleBody>,
) -> Result<Json<AdminAlertRule>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Changing an alert rule")?;
    let now = service::rule(&st.pipeline, &app, &rule).await?.spec;
    let spec = service::spec(
        body.kind.as_deref().unwrap_or(now.kind.as_str()),
        Some(body.threshold.unwrap_or(now.threshold)),
        Some(body.window_minutes.unwrap_or(now.window_minutes)),
        Some(body.min_volume.unwrap_or(now.min_volume)),
    )?;
    let changed = service::update_rule(&st.pipeline, &app, &rule, spec).await?;
    c.audit(
        &st,
        None,
        Some(&app),
        "app.alert_rule.update",
        &changed.id,
        changed.spec.describe(),
    )
    .await?;
    Ok(Json(changed.into()))
}

/// Deletes a rule (developer and up); its open alert is resolved.
#[utoipa::path(delete, path = "/admin/v1/tenants/{tenant}/apps/{app}/alert-rules/{rule}", operation_id = "admin_delete_alert_rule", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"), ("rule" = String, Path, description = "The rule's id (ar_…)")),
    responses((status = 200, body = AdminDone), (status = "4XX", body = ErrorEnvelope)))]
pub async fn delete_rule(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, rule)): Path<(String, String, String)>,
) -> Result<Json<AdminDone>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Deleting an alert rule")?;
    let gone = service::delete_rule(&st.pipeline, &app, &rule).await?;
    c.audit(
        &st,
        None,
        Some(&app),
        "app.alert_rule.delete",
        &gone.id,
        gone.spec.describe(),
    )
    .await?;
    Ok(Json(AdminDone { done: true }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// Alerts older than this id (the previous page's `next_before`).
    before: Option<String>,
    /// 1 to 200 (default 50).
    limit: Option<u32>,
    /// `true`: only the open ones.
    open: Option<bool>,
}

/// The app's raised alerts, newest first: open and resolved, or only the open ones.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/alerts", operation_id = "admin_alerts", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"), AlertQuery),
    responses((status = 200, body = AdminAlertPage), (status = "4XX", body = ErrorEnvelope)))]
pub async fn alerts(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<AlertQuery>,
) -> Result<Json<AdminAlertPage>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    if q.open == Some(true) {
        let open = service::open_alerts(&st.pipeline, Some(&app)).await?;
        return Ok(Json(AdminAlertPage {
            alerts: open.into_iter().map(|(a, _)| a.into()).collect(),
            next_before: None,
        }));
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let found = service::alerts(&st.pipeline, &app, q.before.as_deref(), limit).await?;
    let next_before = (found.len() as u32 == limit)
        .then(|| found.last().map(|a| a.id.clone()))
        .flatten();
    Ok(Json(AdminAlertPage {
        alerts: found.into_iter().map(AdminAlert::from).collect(),
        next_before,
    }))
}
