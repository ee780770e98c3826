//! An app's alert rules and raised alerts, for the console's alerts page, its overview and
//! the operator API: rules are checked here (`RuleSpec::validate`, at most
//! `MAX_RULES_PER_APP` per app) before they are kept; the evaluator (`crate::alerts::evaluator`)
//! raises and resolves the alerts.

use crate::alerts::{Alert, AlertKind, AlertRule, RuleSpec, MAX_RULES_PER_APP};
use crate::delivery::Pipeline;
use crate::domain::{now_ms, App};
use crate::ids::AppId;
use crate::service::console::ConsoleError;

/// A rule's settings from what a caller sent: the kind by name, then `RuleSpec::validate`.
/// A value a kind does not use may be absent (0).
pub fn spec(
    kind: &str,
    threshold: Option<i64>,
    window_minutes: Option<i64>,
    min_volume: Option<i64>,
) -> Result<RuleSpec, ConsoleError> {
    let kind = AlertKind::parse(kind.trim()).ok_or_else(|| {
        ConsoleError::Invalid(format!(
            "kind must be one of error_rate, webhook_failures, dead_events, connection_drop, not {kind:?}"
        ))
    })?;
    let threshold = threshold.ok_or_else(|| ConsoleError::Invalid("a rule needs a threshold".into()))?;
    RuleSpec {
        kind,
        threshold,
        window_minutes: window_minutes.unwrap_or(0),
        min_volume: min_volume.unwrap_or(0),
    }
    .validate()
    .map_err(ConsoleError::Invalid)
}

/// The app's rules, oldest first.
pub async fn rules(p: &Pipeline, app: &App) -> Result<Vec<AlertRule>, ConsoleError> {
    Ok(p.store().alert_rules(Some(&app.id)).await?)
}

/// The app's rule, or `NotFound("alert rule")`.
pub async fn rule(p: &Pipeline, app: &App, id: &str) -> Result<AlertRule, ConsoleError> {
    p.store()
        .alert_rule(&app.id, id)
        .await?
        .ok_or(ConsoleError::NotFound("alert rule"))
}

pub async fn create_rule(p: &Pipeline, app: &App, spec: RuleSpec) -> Result<AlertRule, ConsoleError> {
    let spec = spec.validate().map_err(ConsoleError::Invalid)?;
    if p.store().alert_rules(Some(&app.id)).await?.len() >= MAX_RULES_PER_APP {
        return Err(ConsoleError::Invalid(format!(
            "an app has at most {MAX_RULES_PER_APP} alert rules"
        )));
    }
    let now = now_ms();
    let rule = AlertRule {
        id: AlertRule::new_id(),
        app_id: app.id.clone(),
        spec,
        created_at: now,
        updated_at: now,
    };
    p.store().create_alert_rule(&rule).await?;
    Ok(rule)
}

/// Changes a rule's settings. Its open alert, if any, stays open until the next check
/// finds the new condition no longer holds.
pub async fn update_rule(p: &Pipeline, app: &App, id: &str, spec: RuleSpec) -> Result<AlertRule, ConsoleError> {
    let spec = spec.validate().map_err(ConsoleError::Invalid)?;
    let mut rule = rule(p, app, id).await?;
    rule.spec = spec;
    rule.updated_at = now_ms();
    if !p.store().update_alert_rule(&rule).await? {
        return Err(ConsoleError::NotFound("alert rule"));
    }
    Ok(rule)
}

/// Deletes a rule; its open alert is resolved, its alerts stay in the history.
pub async fn delete_rule(p: &Pipeline, app: &App, id: &str) -> Result<AlertRule, ConsoleError> {
    let rule = rule(p, app, id).await?;
    if !p.store().delete_alert_rule(&app.id, id, now_ms()).await? {
        return Err(ConsoleError::NotFound("alert rule"));
    }
    Ok(rule)
}

/// The app's alerts, open and resolved, newest first, before id `before`.
pub async fn alerts(p: &Pipeline, app: &App, before: Option<&str>, limit: u32) -> Result<Vec<Alert>, ConsoleError> {
    Ok(p.store().alerts(&app.id, before, limit).await?)
}

/// Open alerts with their apps, newest first: one app's, or with `None` every app's
/// (operators only: the caller checks).
pub async fn open_alerts(p: &Pipeline, app: Option<&App>) -> Result<Vec<(Alert, App)>, ConsoleError> {
    let open = p.store().open_alerts(app.map(|a| &a.id)).await?;
    let mut apps: std::collections::HashMap<AppId, Option<App>> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(open.len());
    for alert in open {
        let found = match apps.get(&alert.app_id) {
            Some(found) => found.clone(),
            None => {
                let found = match app {
                    Some(a) if a.id == alert.app_id => Some(a.clone()),
                    _ => p.store().app(&alert.app_id).await?,
                };
                apps.insert(alert.app_id.clone(), found.clone());
                found
            }
        };
        if let Some(a) = found {
            out.push((alert, a));
        }
    }
    Ok(out)
}
