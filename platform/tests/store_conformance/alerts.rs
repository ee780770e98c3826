//! Alert rules and raised alerts: scoped per app, one open alert per rule, resolved on a
//! rule's deletion; the per-minute counts the error rate reads; the evaluator's lease held
//! by one owner at a time; and a whole evaluator turn raising, then resolving, an alert.

use std::sync::Arc;

use tern_platform::alerts::evaluator::turn;
use tern_platform::alerts::{Alert, AlertKind, AlertRule, RuleSpec};
use tern_platform::domain::now_ms;
use tern_platform::store::Store;
use tern_platform::usage::{minute_of, UsageMinute, MINUTE_MS};

fn rule(app: &tern_platform::ids::AppId, kind: AlertKind, threshold: i64) -> AlertRule {
    AlertRule {
        id: AlertRule::new_id(),
        app_id: app.clone(),
        spec: RuleSpec {
            kind,
            threshold,
            window_minutes: 5,
            min_volume: 2,
        },
        created_at: 1,
        updated_at: 1,
    }
}

fn alert(r: &AlertRule, at: i64) -> Alert {
    Alert {
        id: Alert::new_id(),
        app_id: r.app_id.clone(),
        rule_id: r.id.clone(),
        kind: r.spec.kind,
        threshold: r.spec.threshold,
        summary: "seen".into(),
        raised_at: at,
        resolved_at: None,
    }
}

async fn rules_and_alerts_are_scoped_and_one_is_open_per_rule(store: Arc<dyn Store>) {
    let app = crate::fixtures::app(store.as_ref()).await;
    let other = crate::fixtures::app(store.as_ref()).await;
    let mut r = rule(&app.id, AlertKind::ErrorRate, 50);
    store.create_alert_rule(&r).await.unwrap();
    store
        .create_alert_rule(&rule(&other.id, AlertKind::DeadEvents, 0))
        .await
        .unwrap();
    assert_eq!(store.alert_rules(Some(&app.id)).await.unwrap(), vec![r.clone()]);
    assert_eq!(store.alert_rules(None).await.unwrap().len(), 2);
    assert!(
        store.alert_rule(&other.id, &r.id).await.unwrap().is_none(),
        "another app's"
    );

    r.spec.threshold = 20;
    r.updated_at = 2;
    assert!(store.update_alert_rule(&r).await.unwrap());
    assert_eq!(store.alert_rule(&app.id, &r.id).await.unwrap(), Some(r.clone()));
    let mut foreign = r.clone();
    foreign.app_id = other.id.clone();
    assert!(!store.update_alert_rule(&foreign).await.unwrap(), "scoped by app");

    let first = alert(&r, 10);
    assert!(store.raise_alert(&first).await.unwrap());
    assert!(
        !store.raise_alert(&alert(&r, 11)).await.unwrap(),
        "one open alert per rule"
    );
    assert_eq!(store.open_alerts(Some(&app.id)).await.unwrap(), vec![first.clone()]);
    assert!(store.open_alerts(Some(&other.id)).await.unwrap().is_empty());
    assert!(
        !store.resolve_alert(&other.id, &first.id, 12).await.unwrap(),
        "scoped by app"
    );
    assert!(store.resolve_alert(&app.id, &first.id, 12).await.unwrap());
    assert!(
        !store.resolve_alert(&app.id, &first.id, 13).await.unwrap(),
        "resolved once"
    );
    // A new episode.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let second = alert(&r, 20);
    assert!(store.raise_alert(&second).await.unwrap());
    let all = store.alerts(&app.id, None, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], second, "newest first");
    assert_eq!(all[1].resolved_at, Some(12));
    assert_eq!(store.alerts(&app.id, Some(&second.id), 10).await.unwrap().len(), 1);

    // Deleting the rule resolves its open alert; the history stays.
    assert!(!store.delete_alert_rule(&other.id, &r.id, 30).await.unwrap());
    assert!(store.delete_alert_rule(&app.id, &r.id, 30).await.unwrap());
    assert!(store.open_alerts(None).await.unwrap().is_empty());
    assert_eq!(store.alerts(&app.id, None, 10).await.unwrap()[0].resolved_at, Some(30));
}

async fn minute_counts_add_up_and_the_lease_has_one_holder(store: Arc<dyn Store>) {
    let app = crate::fixtures::app(store.as_ref()).await;
    let m = 1_000 * MINUTE_MS;
    let minute = |minute, api_calls, errors| UsageMinute {
        app_id: app.id.clone(),
        minute,
        api_calls,
        errors,
    };
    store
        .add_usage(&[], &[minute(m, 4, 1), minute(m + MINUTE_MS, 2, 2)])
        .await
        .unwrap();
    store.add_usage(&[], &[minute(m, 1, 1)]).await.unwrap();
    assert_eq!(store.minute_usage(&app.id, m).await.unwrap(), (7, 4));
    assert_eq!(store.minute_usage(&app.id, m + MINUTE_MS).await.unwrap(), (2, 2));
    assert_eq!(store.prune_minute_usage(m + MINUTE_MS).await.unwrap(), 1);
    assert_eq!(store.minute_usage(&app.id, 0).await.unwrap(), (2, 2));

    assert!(store.take_worker_lease("alerts", "a", 100, 200).await.unwrap());
    assert!(
        !store.take_worker_lease("alerts", "b", 150, 250).await.unwrap(),
        "a holds it"
    );
    assert!(
        store.take_worker_lease("alerts", "a", 150, 250).await.unwrap(),
        "renewed"
    );
    assert!(!store.take_worker_lease("alerts", "b", 249, 350).await.unwrap());
    assert!(
        store.take_worker_lease("alerts", "b", 250, 350).await.unwrap(),
        "lapsed"
    );
    assert!(
        store.take_worker_lease("other", "a", 250, 350).await.unwrap(),
        "per name"
    );
}

async fn an_evaluator_turn_raises_then_resolves_an_error_rate_alert(store: Arc<dyn Store>) {
    let app = crate::fixtures::app(store.as_ref()).await;
    let r = rule(&app.id, AlertKind::ErrorRate, 50);
    store.create_alert_rule(&r).await.unwrap();
    let now = now_ms();
    let calls = |api_calls, errors| UsageMinute {
        app_id: app.id.clone(),
        minute: minute_of(now),
        api_calls,
        errors,
    };
    store.add_usage(&[], &[calls(3, 3)]).await.unwrap();
    let done = turn(store.as_ref(), None, "node-a", 60_000, now).await.unwrap();
    assert_eq!(done.raised.len(), 1, "{done:?}");
    assert!(done.raised[0].summary.contains("3 of 3 API calls"), "{done:?}");
    // Another node does nothing while the lease is held; the holder raises nothing twice.
    assert!(turn(store.as_ref(), None, "node-b", 60_000, now).await.unwrap().skipped);
    assert!(turn(store.as_ref(), None, "node-a", 60_000, now + 1)
        .await
        .unwrap()
        .raised
        .is_empty());
    // Successful calls bring the rate to 3 of 6: not above 50 %.
    store.add_usage(&[], &[calls(3, 0)]).await.unwrap();
    let done = turn(store.as_ref(), None, "node-a", 60_000, now + 2).await.unwrap();
    assert_eq!(done.resolved, 1);
    assert!(store.open_alerts(Some(&app.id)).await.unwrap().is_empty());
}

conformance!(
    rules_and_alerts_are_scoped_and_one_is_open_per_rule,
    minute_counts_add_up_and_the_lease_has_one_holder,
    an_evaluator_turn_raises_then_resolves_an_error_rate_alert,
);
