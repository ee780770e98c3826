//! The alert evaluator: every interval (a minute by default) it checks every rule of every
//! app, raises an alert for a rule whose condition holds and has no open alert (mailing the
//! tenant's owners and admins), and resolves the open alert of a rule that no longer holds.
//!
//! Nodes that run the worker role all run it, but only the holder of the `alerts` lease in
//! the database checks (a node takes it when it is free or has lapsed, and renews it each
//! turn), so several nodes do not raise or mail the same episode twice; the unique index of
//! open alerts per rule makes a raise that slips through anyway a no-op.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::{now_ms, ConsoleRole, UnixMillis};
use crate::mail::{Mail, Mailer};
use crate::store::{Store, StoreResult};

use super::conditions::observe;
use super::{Alert, AlertRule};

/// The lease's name in `worker_leases`.
pub const LEASE: &str = "alerts";
/// How long the per-minute counters are kept (the longest window is a day).
const MINUTES_KEPT_MS: i64 = 2 * 24 * 3_600_000;

#[derive(Clone, Debug)]
pub struct EvaluatorConfig {
    /// How often the rules are checked (`TERN_ALERT_INTERVAL_SECONDS`).
    pub every: Duration,
    /// This node's id, in the lease's owner.
    pub node_id: String,
}

impl Default for EvaluatorConfig {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(60),
            node_id: "node-1".into(),
        }
    }
}

/// What one turn did, for logs and tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Turn {
    /// The lease was another node's: nothing was checked.
    pub skipped: bool,
    pub raised: Vec<Alert>,
    pub resolved: usize,
}

/// Checks the rules every `config.every` until `stop`. Mails go through `mailer` (none: the
/// alerts are only shown).
pub async fn run(store: Arc<dyn Store>, mailer: Option<Arc<Mailer>>, config: EvaluatorConfig, stop: CancellationToken) {
    let owner = format!("{}/{}", config.node_id, ulid::Ulid::new());
    let lease_ms = i64::try_from(config.every.as_millis())
        .unwrap_or(i64::MAX / 4)
        .saturating_mul(3)
        .max(10_000);
    let mut tick = tokio::time::interval(config.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        match turn(store.as_ref(), mailer.as_deref(), &owner, lease_ms, now_ms()).await {
            Ok(t) if !t.raised.is_empty() || t.resolved > 0 => {
                tracing::info!(raised = t.raised.len(), resolved = t.resolved, "alerts checked");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "alert rules not checked; trying again next turn"),
        }
    }
}

/// One turn at `now`: take (or renew) the lease, then check every rule.
pub async fn turn(
    store: &dyn Store,
    mailer: Option<&Mailer>,
    owner: &str,
    lease_ms: i64,
    now: UnixMillis,
) -> StoreResult<Turn> {
    if !store.take_worker_lease(LEASE, owner, now, now + lease_ms).await? {
        return Ok(Turn {
            skipped: true,
            ..Turn::default()
        });
    }
    let mut done = Turn::default();
    let open: HashMap<String, Alert> = store
        .open_alerts(None)
        .await?
        .into_iter()
        .map(|a| (a.rule_id.clone(), a))
        .collect();
    for rule in store.alert_rules(None).await? {
        let seen = match observe(store, &rule, now).await {
            Ok(seen) => seen,
            Err(e) => {
                tracing::warn!(rule = %rule.id, error = %e, "alert rule not checked");
                continue;
            }
        };
        match (seen.holds, open.get(&rule.id)) {
            (true, None) => {
                let alert = Alert {
                    id: Alert::new_id(),
                    app_id: rule.app_id.clone(),
                    rule_id: rule.id.clone(),
                    kind: rule.spec.kind,
                    threshold: rule.spec.threshold,
                    summary: seen.summary,
                    raised_at: now,
                    resolved_at: None,
                };
                if store.raise_alert(&alert).await? {
                    if let Some(m) = mailer {
                        notify(store, m, &rule, &alert).await;
                    }
                    done.raised.push(alert);
                }
            }
            (false, Some(alert)) => {
                let resolved = store.resolve_alert(&alert.app_id, &alert.id, now).await?;
                if resolved {
                    done.resolved += 1;
                }
            }
            _ => {}
        }
    }
    store.prune_minute_usage(now - MINUTES_KEPT_MS).await?;
    Ok(done)
}

/// Mails the raised alert to the owners and admins of the app's tenant. A mail that fails
/// is noted in the outbox (`Mailer::send`); the alert stays raised either way.
async fn notify(store: &dyn Store, mailer: &Mailer, rule: &AlertRule, alert: &Alert) {
    let app = match store.app(&rule.app_id).await {
        Ok(Some(app)) => app,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, alert = %alert.id, "alert not mailed: the app could not be read");
            return;
        }
    };
    let members = match store.tenant_members(&app.tenant_id).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, alert = %alert.id, "alert not mailed: the members could not be read");
            return;
        }
    };
    let link = mailer.link(&format!("/console/t/{}/apps/{}/alerts", app.tenant_id, app.id));
    for member in members.into_iter().filter(|m| m.role >= ConsoleRole::Admin) {
        let mail = Mail {
            tenant_id: Some(app.tenant_id.clone()),
            to: member.email,
            kind: "alert.raised",
            subject: format!("Alert on {}: {}", app.name, alert.kind.label()),
            body: format!(
                "An alert was raised on the app {} ({}).\n\n\
                 Rule: {}\n\
                 Seen: {}\n\n\
                 It resolves by itself when the condition stops holding. The app's alerts:\n{link}\n",
                app.name,
                app.id,
                rule.spec.describe(),
                alert.summary,
            ),
        };
        let _ = mailer.send(store, mail).await;
    }
}
