//! Conformance of `BroadcastStore`: broadcasts as leased jobs.

use std::sync::Arc;

use serde_json::json;
use tern_platform::domain::*;
use tern_platform::store::*;

use crate::fixtures::*;

fn new_broadcast(key: &str, audience: Audience, at: UnixMillis) -> NewBroadcast {
    NewBroadcast {
        id: format!("bc_{}", ulid::Ulid::new().to_string().to_ascii_lowercase()),
        request_key: key.into(),
        msg_type: MessageType::Text,
        content: json!({"text": "maintenance tonight"}),
        audience,
        created_at: at,
    }
}

fn step(after: Option<&str>, next_index: i64, sent: i64, failed: i64, done: bool, at: UnixMillis) -> BroadcastStep {
    BroadcastStep {
        after_user: after.map(uid),
        next_index,
        seen: sent + failed,
        sent,
        failed,
        done,
        now: at,
        next_run_at: at,
    }
}

async fn broadcasts_are_leased_jobs(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    let b = app_of_other_tenant(&*store).await;
    let list = Audience::Users(vec![uid("bob"), uid("carol"), uid("dave")]);
    let (job, created) = store
        .create_broadcast(&a, &new_broadcast("k1", list.clone(), 1_000))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        (
            job.state,
            job.total,
            job.users_seen,
            job.after_user.clone(),
            job.next_index
        ),
        (BroadcastState::Running, Some(3), 0, None, 0)
    );
    assert_eq!(job.audience, list);
    // The same key is the same job.
    let (same, created) = store
        .create_broadcast(&a, &new_broadcast("k1", Audience::AllUsers, 1_001))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(same.id, job.id);
    assert!(store.broadcast(&b, &job.id).await.unwrap().is_none(), "scoped by app");

    // One worker at a time holds the job.
    let (app_id, claimed) = store.claim_broadcast(1_000, 30_000, "w1").await.unwrap().unwrap();
    assert_eq!((app_id, claimed.id.clone()), (a.clone(), job.id.clone()));
    assert!(store.claim_broadcast(2_000, 30_000, "w2").await.unwrap().is_none());
    // A step of a worker that does not hold it changes nothing.
    assert!(!store
        .advance_broadcast(&a, &job.id, "w2", &step(None, 2, 2, 0, false, 2_000), &[])
        .await
        .unwrap());
    assert!(store
        .advance_broadcast(&a, &job.id, "w1", &step(None, 2, 1, 1, false, 2_000), &[])
        .await
        .unwrap());
    let j = store.broadcast(&a, &job.id).await.unwrap().unwrap();
    assert_eq!(
        (j.next_index, j.users_seen, j.sent, j.failed, j.state),
        (2, 2, 1, 1, BroadcastState::Running)
    );
    // The step released it: due again, to whoever claims next.
    assert!(
        !store
            .advance_broadcast(&a, &job.id, "w1", &step(None, 3, 1, 0, true, 2_100), &[])
            .await
            .unwrap(),
        "a released job needs a new claim"
    );
    let (_, again) = store.claim_broadcast(2_100, 30_000, "w2").await.unwrap().unwrap();
    assert_eq!(again.next_index, 2, "the next claim resumes where the last step ended");
    let done_event = event(&a, 2_200);
    assert!(store
        .advance_broadcast(
            &a,
            &job.id,
            "w2",
            &step(None, 3, 1, 0, true, 2_200),
            std::slice::from_ref(&done_event)
        )
        .await
        .unwrap());
    let j = store.broadcast(&a, &job.id).await.unwrap().unwrap();
    assert_eq!(
        (j.state, j.users_seen, j.sent, j.failed, j.finished_at),
        (BroadcastState::Done, 3, 2, 1, Some(2_200))
    );
    assert_eq!(store.due_events(i64::MAX, 10).await.unwrap()[0].id, done_event.id);
    assert!(
        store
            .claim_broadcast(i64::MAX / 2, 30_000, "w3")
            .await
            .unwrap()
            .is_none(),
        "done jobs are not claimed"
    );

    // A lease that runs out lets the next worker take over; the old holder's step is refused.
    let (all, _) = store
        .create_broadcast(&a, &new_broadcast("k2", Audience::AllUsers, 3_000))
        .await
        .unwrap();
    assert_eq!(all.total, None);
    store.claim_broadcast(3_000, 1_000, "w1").await.unwrap().unwrap();
    let (_, taken) = store.claim_broadcast(4_001, 1_000, "w2").await.unwrap().unwrap();
    assert_eq!(taken.id, all.id);
    assert!(!store
        .advance_broadcast(&a, &all.id, "w1", &step(Some("m"), 0, 5, 0, false, 4_002), &[])
        .await
        .unwrap());
    assert!(store
        .advance_broadcast(&a, &all.id, "w2", &step(Some("m"), 0, 5, 0, false, 4_002), &[])
        .await
        .unwrap());
    let j = store.broadcast(&a, &all.id).await.unwrap().unwrap();
    assert_eq!((j.after_user, j.sent), (Some(uid("m")), 5));

    // Stopping: a running job is cancelled; a finished one is left as it is.
    let c = store
        .stop_broadcast(&a, &all.id, BroadcastState::Cancelled, None, 5_000)
        .await
        .unwrap();
    assert_eq!((c.state, c.finished_at), (BroadcastState::Cancelled, Some(5_000)));
    let d = store
        .stop_broadcast(&a, &job.id, BroadcastState::Cancelled, None, 5_000)
        .await
        .unwrap();
    assert_eq!(d.state, BroadcastState::Done);
    assert!(matches!(
        store
            .stop_broadcast(&b, &all.id, BroadcastState::Cancelled, None, 5_000)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store
        .claim_broadcast(i64::MAX / 2, 30_000, "w3")
        .await
        .unwrap()
        .is_none());

    // Newest first, paged by id.
    let (third, _) = store
        .create_broadcast(&a, &new_broadcast("k3", Audience::AllUsers, 6_000))
        .await
        .unwrap();
    let page = store.broadcasts(&a, None, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
        vec![third.id.clone(), all.id.clone()]
    );
    let rest = store.broadcasts(&a, Some(&all.id), 2).await.unwrap();
    assert_eq!(
        rest.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
        vec![job.id.clone()]
    );
    assert!(store.broadcasts(&b, None, 10).await.unwrap().is_empty());
}

async fn concurrent_broadcast_claims_take_each_job_once(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    for i in 0..5 {
        store
            .create_broadcast(&a, &new_broadcast(&format!("k{i}"), Audience::AllUsers, 1_000 + i))
            .await
            .unwrap();
    }
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..10 {
                    match store.claim_broadcast(10_000, 60_000, &format!("w{w}")).await {
                        Ok(Some((_, j))) => got.push(j.id),
                        Ok(None) => {}
                        Err(StoreError::Unavailable(_)) => tokio::task::yield_now().await,
                        Err(e) => panic!("{e}"),
                    }
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: std::collections::HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), unique.len(), "no job was leased twice");
    assert_eq!(unique.len(), 5, "every job was leased");
}

conformance!(
    broadcasts_are_leased_jobs,
    concurrent_broadcast_claims_take_each_job_once,
);
