//! Conformance of `WebhookStore`: outbox states, leased claims, webhook secret rotation,
//! the delivery log.

use std::sync::Arc;

use tern_platform::ids::*;
use tern_platform::store::*;

use crate::fixtures::*;

async fn outbox_delivery_states(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let mut m = dm(a, "alice", "bob", "k", 10);
    let with_message = event(a, 10);
    m.events = vec![with_message.clone()];
    commit_one(&*store, m).await;
    let later = event(a, 20);
    let third = event(a, 30);
    store.enqueue_events(&[later.clone(), third.clone()]).await.unwrap();

    let due = store.due_events(25, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        vec![with_message.id.clone(), later.id.clone()],
        "due ones, oldest first"
    );
    assert_eq!(
        (due[0].state, due[0].attempts, due[0].next_attempt_at),
        (OutboxState::Pending, 0, 10)
    );

    store.mark_event_delivered(&with_message.id, 1).await.unwrap();
    store.reschedule_event(&later.id, 1, 1_000, "HTTP 500").await.unwrap();
    let due = store.due_events(999, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        vec![third.id.clone()]
    );
    let due = store.due_events(1_000, 10).await.unwrap();
    let rescheduled = due.iter().find(|e| e.id == later.id).unwrap();
    assert_eq!(
        (rescheduled.attempts, rescheduled.last_error.as_deref()),
        (1, Some("HTTP 500"))
    );

    store.mark_event_dead(&later.id, 8, "gave up").await.unwrap();
    let dead = store.dead_events(a, None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].state, dead[0].attempts), (OutboxState::Dead, 8));
    assert!(store
        .due_events(i64::MAX, 10)
        .await
        .unwrap()
        .iter()
        .all(|e| e.id != later.id));

    store.redeliver_event(a, &later.id, 2_000).await.unwrap();
    assert!(store.dead_events(a, None, 10).await.unwrap().is_empty());
    let due = store.due_events(2_000, 10).await.unwrap();
    assert!(due.iter().any(|e| e.id == later.id && e.state == OutboxState::Pending));
    let not_dead = store.redeliver_event(a, &third.id, 2_000).await;
    assert!(matches!(not_dead, Err(StoreError::NotFound(_))), "{not_dead:?}");
    let other_app = app_of_other_tenant(&*store).await;
    store.mark_event_dead(&third.id, 3, "x").await.unwrap();
    let cross = store.redeliver_event(&other_app, &third.id, 2_000).await;
    assert!(matches!(cross, Err(StoreError::NotFound(_))), "{cross:?}");
    assert!(matches!(
        store.mark_event_delivered("wh_missing", 1).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn claims_lease_events_to_one_worker(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let events: Vec<_> = (0..5).map(|i| event(a, 10 + i)).collect();
    store.enqueue_events(&events).await.unwrap();
    let not_yet = event(a, 5_000);
    store.enqueue_events(std::slice::from_ref(&not_yet)).await.unwrap();

    // Oldest first, at most `limit`, and only what is due.
    let first = store.claim_due_events(100, 2, 1_000).await.unwrap();
    assert_eq!(
        first.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        vec![events[0].id.clone(), events[1].id.clone()]
    );
    assert!(first
        .iter()
        .all(|e| e.state == OutboxState::Pending && e.next_attempt_at == 1_100));
    // A second worker gets the rest, not the leased ones, nor the future one.
    let second = store.claim_due_events(100, 10, 1_000).await.unwrap();
    assert_eq!(
        second.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        events[2..].iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );
    assert!(store.claim_due_events(1_099, 10, 1_000).await.unwrap().is_empty());

    // Outcomes are recorded on claimed events as before; a release makes one due again.
    store.mark_event_delivered(&first[0].id, 1).await.unwrap();
    store
        .reschedule_event(&first[1].id, 1, 3_000, "HTTP 500")
        .await
        .unwrap();
    assert_eq!(
        store
            .release_events(std::slice::from_ref(&second[0].id), 200)
            .await
            .unwrap(),
        1
    );
    let again = store.claim_due_events(200, 10, 1_000).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id.as_str(), again[0].attempts), (second[0].id.as_str(), 0));

    // A worker that died holding a lease: its events come back when the lease runs out.
    let expired = store.claim_due_events(1_100, 10, 1_000).await.unwrap();
    assert_eq!(
        expired.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        events[3..].iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        "second's lease (to 1100) ended; the released one is leased again to 1200"
    );
    let dead = &expired[0].id;
    store.mark_event_dead(dead, 3, "x").await.unwrap();
    assert!(store
        .claim_due_events(i64::MAX / 2, 100, 0)
        .await
        .unwrap()
        .iter()
        .all(|e| &e.id != dead));
    // Only pending events are given back.
    let ids = [dead.clone(), "wh_missing".to_owned(), expired[1].id.clone()];
    assert_eq!(store.release_events(&ids, 0).await.unwrap(), 1);
    assert!(store
        .dead_events(a, None, 10)
        .await
        .unwrap()
        .iter()
        .any(|e| &e.id == dead));
    assert_eq!(store.release_events(&[], 0).await.unwrap(), 0);
}

/// Several workers claiming at once from one database: every event goes to exactly one.
async fn concurrent_claims_hand_out_each_event_once(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let events: Vec<_> = (0..300).map(|i| event(&app.id, i)).collect();
    for chunk in events.chunks(50) {
        store.enqueue_events(chunk).await.unwrap();
    }
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    match store.claim_due_events(1_000, 7, 60_000).await {
                        Ok(batch) if batch.is_empty() => return got,
                        Ok(batch) => got.extend(batch.into_iter().map(|e| e.id)),
                        // SQLite's busy writer: try again, as the worker does next poll.
                        Err(StoreError::Unavailable(_)) => tokio::task::yield_now().await,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: std::collections::HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), unique.len(), "no event was claimed twice");
    assert_eq!(unique.len(), events.len(), "every event was claimed");
}

async fn webhook_secrets_rotate_with_a_grace_period(store: Arc<dyn Store>) {
    let a = app(&*store).await;
    let b = app_of_other_tenant(&*store).await;
    let first = store.webhook_secret_ciphertexts(&a.id, 0).await.unwrap();
    assert_eq!(first.len(), 1);
    store.rotate_webhook_secret(&a.id, b"second", 1_000).await.unwrap();
    assert_eq!(
        store.webhook_secret_ciphertexts(&a.id, 999).await.unwrap(),
        vec![b"second".to_vec(), first[0].clone()],
        "newest first; the old one during its grace period"
    );
    assert_eq!(
        store.webhook_secret_ciphertexts(&a.id, 1_000).await.unwrap(),
        vec![b"second".to_vec()]
    );
    store.rotate_webhook_secret(&a.id, b"third", 5_000).await.unwrap();
    assert_eq!(
        store.webhook_secret_ciphertexts(&a.id, 2_000).await.unwrap(),
        vec![b"third".to_vec(), b"second".to_vec()],
        "a second rotation drops the first secret at once"
    );
    // Another app's secrets are untouched, and unknown apps have none.
    assert_eq!(store.webhook_secret_ciphertexts(&b, 0).await.unwrap().len(), 1);
    assert!(store
        .webhook_secret_ciphertexts(&AppId::generate(), 0)
        .await
        .unwrap()
        .is_empty());
    let missing = store.rotate_webhook_secret(&AppId::generate(), b"x", 1).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
}

fn attempt(app: &AppId, event: &str, at: i64, outcome: AttemptOutcome, status: u16) -> WebhookAttempt {
    WebhookAttempt {
        id: WebhookAttempt::new_id(),
        app_id: app.clone(),
        at,
        event_id: event.to_owned(),
        event_type: "message.sent".into(),
        attempt: 1,
        outcome,
        http_status: status,
        error: (outcome != AttemptOutcome::Delivered).then(|| format!("HTTP {status}")),
        latency_ms: 12,
        response_excerpt: "<b>oops</b> ünïcode".into(),
    }
}

async fn the_delivery_log_pages_newest_first_per_app(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    let other = app_of_other_tenant(&*store).await;
    let mut lines = Vec::new();
    for i in 0..5 {
        let event = if i % 2 == 0 { "wh_even" } else { "wh_odd" };
        let outcome = if i == 4 {
            AttemptOutcome::Delivered
        } else {
            AttemptOutcome::Retrying
        };
        let line = attempt(&a, event, 1_000 + i, outcome, if i == 4 { 200 } else { 503 });
        store.record_webhook_attempt(&line).await.unwrap();
        lines.push(line);
        // ULIDs within one millisecond are random in their tail: keep ids in time order.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    store
        .record_webhook_attempt(&attempt(&other, "wh_even", 1_000, AttemptOutcome::Dead, 0))
        .await
        .unwrap();

    let all = store.webhook_attempts(&a, &AttemptFilter::default(), 10).await.unwrap();
    assert_eq!(all.len(), 5, "only this app's lines");
    assert_eq!(all[0], lines[4], "newest first, every field kept");
    assert_eq!(all[4], lines[0]);
    let page = store
        .webhook_attempts(
            &a,
            &AttemptFilter {
                before: Some(all[1].id.clone()),
                ..AttemptFilter::default()
            },
            2,
        )
        .await
        .unwrap();
    assert_eq!(page, vec![lines[2].clone(), lines[1].clone()]);
    let even = store
        .webhook_attempts(
            &a,
            &AttemptFilter {
                event_id: Some("wh_even".into()),
                ..AttemptFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(even.iter().map(|l| l.at).collect::<Vec<_>>(), vec![1_004, 1_002, 1_000]);
    let dead = store
        .webhook_attempts(&other, &AttemptFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(
        (dead.len(), dead[0].outcome, dead[0].http_status),
        (1, AttemptOutcome::Dead, 0)
    );

    // Success counts leave test events out: this app 1 of 5, everyone since 1_003 1 of 2.
    let mut test = attempt(&a, "wh_test", 1_004, AttemptOutcome::Failed, 500);
    test.event_type = "webhook.test".into();
    store.record_webhook_attempt(&test).await.unwrap();
    assert_eq!(store.webhook_attempt_counts(Some(&a), 0).await.unwrap(), (1, 5));
    assert_eq!(store.webhook_attempt_counts(None, 1_003).await.unwrap(), (1, 2));
    assert_eq!(store.webhook_attempt_counts(Some(&other), 0).await.unwrap(), (0, 1));
    assert_eq!(store.webhook_attempt_counts(None, 5_000).await.unwrap(), (0, 0));

    // Pruning drops every app's old lines and keeps the newer ones.
    assert_eq!(store.prune_webhook_attempts(1_002).await.unwrap(), 3);
    let kept = store.webhook_attempts(&a, &AttemptFilter::default(), 10).await.unwrap();
    assert_eq!(
        kept.iter()
            .filter(|l| l.event_type != "webhook.test")
            .map(|l| l.at)
            .collect::<Vec<_>>(),
        vec![1_004, 1_003, 1_002]
    );
    assert!(store
        .webhook_attempts(&other, &AttemptFilter::default(), 10)
        .await
        .unwrap()
        .is_empty());
}

conformance!(
    the_delivery_log_pages_newest_first_per_app,
    outbox_delivery_states,
    claims_lease_events_to_one_worker,
    concurrent_claims_hand_out_each_event_once,
    webhook_secrets_rotate_with_a_grace_period,
);
