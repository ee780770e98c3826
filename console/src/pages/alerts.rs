//! An app's alerts: its rules (API error rate, webhook failures, dead events, connection
//! drop) with their thresholds — listed, created, changed and deleted by developers and up,
//! each change audited — and the alerts raised, open and resolved, newest first. The
//! platform checks the rules and raises the alerts (`tern_platform::alerts`); this page
//! parses the forms and renders.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use tern_platform::alerts::{Alert, AlertKind, AlertRule, MAX_WINDOW_MINUTES};
use tern_platform::domain::ConsoleRole;
use tern_platform::service::alerts as service;

use super::{audit, notice, see_other};
use crate::auth::{app_scope, Auth, NoFields, Posted};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, when_or, Chrome};

/// Alerts per page.
const PAGE: u32 = 50;

pub struct KindOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

fn kinds(selected: AlertKind) -> Vec<KindOption> {
    AlertKind::ALL
        .into_iter()
        .map(|k| KindOption {
            value: k.as_str(),
            label: k.label(),
            selected: k == selected,
        })
        .collect()
}

pub struct RuleRow {
    pub id: String,
    pub label: &'static str,
    pub condition: String,
    pub kinds: Vec<KindOption>,
    pub threshold: i64,
    pub window_minutes: i64,
    pub min_volume: i64,
    pub updated: String,
    /// The rule has an open alert now.
    pub firing: bool,
}

pub struct AlertRow {
    pub id: String,
    pub label: &'static str,
    pub summary: String,
    pub raised: String,
    pub resolved: String,
    pub open: bool,
}

impl From<Alert> for AlertRow {
    fn from(a: Alert) -> Self {
        Self {
            label: a.kind.label(),
            raised: when(a.raised_at),
            resolved: when_or(a.resolved_at, ""),
            open: a.resolved_at.is_none(),
            summary: a.summary,
            id: a.id,
        }
    }
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    rules: Vec<RuleRow>,
    alerts: Vec<AlertRow>,
    older: Option<String>,
    can_edit: bool,
    new_kinds: Vec<KindOption>,
    max_window: i64,
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// The last alert of the previous page.
    before: Option<String>,
    done: Option<String>,
}

/// The rule form: every field as typed (an unused one may be empty).
#[derive(Deserialize)]
pub struct RuleForm {
    kind: String,
    #[serde(default)]
    threshold: String,
    #[serde(default)]
    window_minutes: String,
    #[serde(default)]
    min_volume: String,
}

fn number(name: &str, raw: &str) -> Result<Option<i64>, PageError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<i64>()
        .map(Some)
        .map_err(|_| PageError::Invalid(format!("{name} must be a whole number, not “{raw}”.")))
}

fn spec_of(form: &RuleForm) -> Result<tern_platform::alerts::RuleSpec, PageError> {
    Ok(service::spec(
        &form.kind,
        number("The threshold", &form.threshold)?,
        number("The window", &form.window_minutes)?,
        number("The minimum volume", &form.min_volume)?,
    )?)
}

fn app_url(app: &tern_platform::domain::App) -> String {
    format!("{}/t/{}/apps/{}/alerts", crate::BASE, app.tenant_id, app.id)
}

pub async fn show(
    State(st): State<ConsoleState>,
    auth: Auth,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    let before = q
        .before
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| {
            // Alert ids are `al_` and a ULID; anything else would only page nowhere.
            if b.starts_with("al_") && b.len() == 29 && b.is_ascii() {
                Ok(b.to_owned())
            } else {
                Err(PageError::Invalid("That page link is malformed.".into()))
            }
        })
        .transpose()?;
    let rules: Vec<AlertRule> = service::rules(&st.pipeline, &app).await?;
    let open = service::open_alerts(&st.pipeline, Some(&app)).await?;
    let found = service::alerts(&st.pipeline, &app, before.as_deref(), PAGE).await?;
    let older = (found.len() as u32 == PAGE)
        .then(|| found.last().map(|a| a.id.clone()))
        .flatten();
    let rules = rules
        .into_iter()
        .map(|r| RuleRow {
            label: r.spec.kind.label(),
            condition: r.spec.describe(),
            kinds: kinds(r.spec.kind),
            threshold: r.spec.threshold,
            window_minutes: r.spec.window_minutes,
            min_volume: r.spec.min_volume,
            updated: when(r.updated_at),
            firing: open.iter().any(|(a, _)| a.rule_id == r.id),
            id: r.id,
        })
        .collect();
    let chrome = Chrome::new(&auth.viewer, format!("Alerts of {}", app.name))
        .in_tenant(&scope)
        .in_app(&app, "alerts")
        .notice(notice(q.done.as_deref()));
    Ok(html(AlertsPage {
        chrome,
        rules,
        alerts: found.into_iter().map(AlertRow::from).collect(),
        older,
        can_edit: scope.role >= ConsoleRole::Developer,
        new_kinds: kinds(AlertKind::ErrorRate),
        max_window: MAX_WINDOW_MINUTES,
    }))
}

/// Creates a rule; the platform checks its thresholds.
pub async fn create(
    State(st): State<ConsoleState>,
    Path((tenant, app)): Path<(String, String)>,
    posted: Posted<RuleForm>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Creating an alert rule")?;
    let rule = service::create_rule(&st.pipeline, &app, spec_of(&posted.form)?).await?;
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.alert_rule.create",
        &rule.id,
        rule.spec.describe(),
    )
    .await?;
    Ok(see_other(&format!("{}?done=rule-created", app_url(&app))))
}

/// Changes a rule's kind and thresholds.
pub async fn update(
    State(st): State<ConsoleState>,
    Path((tenant, app, id)): Path<(String, String, String)>,
    posted: Posted<RuleForm>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Changing an alert rule")?;
    let rule = service::update_rule(&st.pipeline, &app, &id, spec_of(&posted.form)?).await?;
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.alert_rule.update",
        &rule.id,
        rule.spec.describe(),
    )
    .await?;
    Ok(see_other(&format!("{}?done=rule-saved", app_url(&app))))
}

/// Deletes a rule; its open alert is resolved, its alerts stay listed.
pub async fn delete(
    State(st): State<ConsoleState>,
    Path((tenant, app, id)): Path<(String, String, String)>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    let (scope, app) = app_scope(&st, &auth.viewer, &tenant, &app).await?;
    scope.require(ConsoleRole::Developer, "Deleting an alert rule")?;
    let rule = service::delete_rule(&st.pipeline, &app, &id).await?;
    audit(
        &st,
        auth,
        None,
        Some(&app),
        "app.alert_rule.delete",
        &rule.id,
        rule.spec.describe(),
    )
    .await?;
    Ok(see_other(&format!("{}?done=rule-deleted", app_url(&app))))
}
