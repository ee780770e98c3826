//! Conformance of `PushStore`: devices and their tokens, provider credentials, the push
//! outbox written with a message, per-device jobs (never two for one message and device),
//! and the delivery log.

use std::sync::Arc;

use serde_json::json;
use tern_platform::domain::*;
use tern_platform::ids::*;
use tern_platform::store::*;

use crate::fixtures::*;

const APNS_A: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const APNS_B: &str = "0000000000000000000000000000000000000000000000000000000000000001";

fn apns(user: &str, token: &str) -> NewPushDevice {
    NewPushDevice {
        user_id: uid(user),
        provider: PushProvider::Apns,
        token: PushToken::parse(PushProvider::Apns, token).unwrap(),
        topic: "com.example.chat".into(),
        environment: PushEnvironment::Sandbox,
        locale: Some("en-US".into()),
    }
}

fn fcm(user: &str, token: &str) -> NewPushDevice {
    NewPushDevice {
        user_id: uid(user),
        provider: PushProvider::Fcm,
        token: PushToken::parse(PushProvider::Fcm, token).unwrap(),
        topic: String::new(),
        environment: PushEnvironment::Production,
        locale: None,
    }
}

fn log_line(user: &str, device: &DeviceId, msg: Option<&MsgId>, at: UnixMillis, outcome: PushOutcome) -> PushLogEntry {
    PushLogEntry {
        id: PushLogEntry::new_id(),
        at,
        user_id: uid(user),
        device_id: device.clone(),
        msg_id: msg.cloned(),
        provider: PushProvider::Apns,
        outcome,
        http_status: 200,
        reason: None,
        provider_id: Some("apns-id-1".into()),
        latency_ms: 12,
        attempt: 1,
    }
}

async fn devices_belong_to_one_user_and_tokens_are_unique_per_app(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    let b = app_of_other_tenant(&*store).await;

    let phone = store.register_device(&a, &apns("alice", APNS_A), 1_000).await.unwrap();
    assert_eq!((phone.user_id.as_str(), phone.provider), ("alice", PushProvider::Apns));
    assert_eq!(phone.locale.as_deref(), Some("en-US"));
    let tablet = store
        .register_device(&a, &fcm("alice", "fcm:tok-1"), 1_001)
        .await
        .unwrap();
    assert_ne!(phone.id, tablet.id);

    // The same token again (the phone changed hands): one device, now bob's, same id.
    let moved = store.register_device(&a, &apns("bob", APNS_A), 2_000).await.unwrap();
    assert_eq!((moved.id.clone(), moved.user_id.as_str()), (phone.id.clone(), "bob"));
    assert_eq!((moved.created_at, moved.updated_at), (1_000, 2_000));
    let alices = store.devices_of(&a, &[uid("alice")]).await.unwrap();
    assert_eq!(alices.iter().map(|d| &d.id).collect::<Vec<_>>(), vec![&tablet.id]);

    // Another app with the same token has its own device; neither sees the other's.
    let other = store.register_device(&b, &apns("bob", APNS_A), 3_000).await.unwrap();
    assert_ne!(other.id, phone.id);
    assert_eq!(store.device(&b, &phone.id).await.unwrap(), None);
    assert_eq!(store.devices_of(&b, &[uid("bob")]).await.unwrap().len(), 1);
    assert!(!store.remove_device(&b, &phone.id).await.unwrap(), "not app b's device");

    // An update: a rotated token; a token of another device is a conflict.
    let patch = PushDevicePatch {
        token: Some(PushToken::parse(PushProvider::Apns, APNS_B).unwrap()),
        environment: Some(PushEnvironment::Production),
        locale: Some(None),
    };
    let updated = store
        .update_device(&a, &uid("bob"), &phone.id, &patch, 4_000)
        .await
        .unwrap();
    assert_eq!(
        (updated.token.as_str(), updated.environment, updated.locale.clone()),
        (APNS_B, PushEnvironment::Production, None)
    );
    store.register_device(&a, &apns("carol", APNS_A), 4_100).await.unwrap();
    let clash = PushDevicePatch {
        token: Some(PushToken::parse(PushProvider::Apns, APNS_A).unwrap()),
        ..Default::default()
    };
    assert!(matches!(
        store.update_device(&a, &uid("bob"), &phone.id, &clash, 4_200).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        matches!(
            store.update_device(&a, &uid("alice"), &phone.id, &patch, 4_300).await,
            Err(StoreError::NotFound(_))
        ),
        "only the device's own user may change it"
    );

    assert!(store.remove_device(&a, &phone.id).await.unwrap());
    assert_eq!(store.device(&a, &phone.id).await.unwrap(), None);
    assert!(store.devices_of(&a, &[uid("bob")]).await.unwrap().is_empty());
}

async fn a_user_keeps_the_most_recent_devices(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    for i in 0..(MAX_DEVICES_PER_USER + 2) {
        store
            .register_device(&a, &fcm("dave", &format!("tok-{i:03}")), 1_000 + i as i64)
            .await
            .unwrap();
    }
    let kept = store.devices_of(&a, &[uid("dave")]).await.unwrap();
    assert_eq!(kept.len(), MAX_DEVICES_PER_USER);
    assert!(kept
        .iter()
        .all(|d| d.token.as_str() != "tok-000" && d.token.as_str() != "tok-001"));
}

async fn credentials_are_kept_per_app_and_provider(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    let b = app_of_other_tenant(&*store).await;
    let rec = |provider, bytes: &[u8], at| PushCredentialRecord {
        provider,
        ciphertext: bytes.to_vec(),
        summary: json!({"key_id": "ABC123DEFG"}),
        updated_at: at,
    };
    store
        .put_push_credential(&a, &rec(PushProvider::Apns, b"one", 1))
        .await
        .unwrap();
    store
        .put_push_credential(&a, &rec(PushProvider::Fcm, b"fcm", 2))
        .await
        .unwrap();
    store
        .put_push_credential(&a, &rec(PushProvider::Apns, b"two", 3))
        .await
        .unwrap();
    let got = store.push_credentials(&a).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].provider, got[0].ciphertext.as_slice(), got[0].updated_at),
        (PushProvider::Apns, &b"two"[..], 3)
    );
    assert_eq!(got[1].provider, PushProvider::Fcm);
    assert!(store.push_credentials(&b).await.unwrap().is_empty());
    assert!(!store.delete_push_credential(&b, PushProvider::Apns).await.unwrap());
    assert!(store.delete_push_credential(&a, PushProvider::Apns).await.unwrap());
    assert_eq!(store.push_credentials(&a).await.unwrap().len(), 1);
}

async fn the_push_outbox_becomes_one_job_per_message_and_device(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    let b = app_of_other_tenant(&*store).await;
    let pushed = stored(
        &commit_one(
            &*store,
            NewMessage {
                push: true,
                ..dm(&a, "alice", "bob", "p1", 5_000)
            },
        )
        .await,
    )
    .clone();
    commit_one(&*store, dm(&a, "alice", "bob", "quiet", 5_001)).await;
    let elsewhere = stored(
        &commit_one(
            &*store,
            NewMessage {
                push: true,
                ..dm(&b, "x", "y", "p1", 5_002)
            },
        )
        .await,
    )
    .clone();

    let claimed = store.claim_push_outbox(6_000, 10, 30_000).await.unwrap();
    assert_eq!(
        claimed,
        vec![
            (a.clone(), pushed.msg_id.clone()),
            (b.clone(), elsewhere.msg_id.clone())
        ]
    );
    assert!(
        store.claim_push_outbox(6_001, 10, 30_000).await.unwrap().is_empty(),
        "leased"
    );
    assert_eq!(
        store.claim_push_outbox(36_001, 10, 30_000).await.unwrap().len(),
        2,
        "the lease ran out"
    );

    let phone = store.register_device(&a, &apns("bob", APNS_A), 1_000).await.unwrap();
    let job = PushJob {
        app_id: a.clone(),
        msg_id: pushed.msg_id.clone(),
        device_id: phone.id.clone(),
        user_id: uid("bob"),
        notification: PushNotification {
            title: "alice".into(),
            body: "p1".into(),
            badge: Some(1),
            collapse_id: Some(pushed.conversation_id.to_string()),
            data: [("msg_id".to_string(), pushed.msg_id.to_string())].into(),
        },
        attempts: 0,
        created_at: 0,
    };
    assert_eq!(
        store
            .expand_push(&a, &pushed.msg_id, std::slice::from_ref(&job), 7_000)
            .await
            .unwrap(),
        1
    );
    // The same message expanded again (a worker that died after expanding): nothing new.
    assert_eq!(
        store
            .expand_push(&a, &pushed.msg_id, std::slice::from_ref(&job), 7_001)
            .await
            .unwrap(),
        0
    );
    store.expand_push(&b, &elsewhere.msg_id, &[], 7_002).await.unwrap();
    assert!(
        store.claim_push_outbox(i64::MAX / 2, 10, 1).await.unwrap().is_empty(),
        "expanded rows are gone"
    );

    let jobs = store.claim_push_jobs(7_100, 10, 30_000).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].notification.clone(), jobs[0].attempts, jobs[0].created_at),
        (job.notification.clone(), 0, 7_000)
    );
    assert!(
        store.claim_push_jobs(7_200, 10, 30_000).await.unwrap().is_empty(),
        "leased"
    );

    // A retry, then success: each attempt is one log line, and a finished job stays finished.
    let retry = PushLogEntry {
        outcome: PushOutcome::Retrying,
        http_status: 503,
        ..log_line("bob", &phone.id, Some(&pushed.msg_id), 7_300, PushOutcome::Retrying)
    };
    assert!(store
        .finish_push_job(&jobs[0], 1, JobNext::RetryAt(8_000), Some(&retry), false)
        .await
        .unwrap());
    assert!(store.claim_push_jobs(7_999, 10, 30_000).await.unwrap().is_empty());
    let again = store.claim_push_jobs(8_000, 10, 30_000).await.unwrap();
    assert_eq!(again[0].attempts, 1);
    let sent = log_line("bob", &phone.id, Some(&pushed.msg_id), 8_100, PushOutcome::Sent);
    assert!(store
        .finish_push_job(&again[0], 2, JobNext::Done, Some(&sent), false)
        .await
        .unwrap());
    assert!(
        !store
            .finish_push_job(&again[0], 3, JobNext::Done, Some(&sent), false)
            .await
            .unwrap(),
        "already done"
    );
    assert!(store.claim_push_jobs(i64::MAX / 2, 10, 1).await.unwrap().is_empty());

    let log = store.push_log(&a, &PushLogFilter::default(), 10).await.unwrap();
    assert_eq!(
        log.iter().map(|l| l.outcome).collect::<Vec<_>>(),
        vec![PushOutcome::Sent, PushOutcome::Retrying]
    );
    assert_eq!(log[0], sent);
    assert!(store
        .push_log(&b, &PushLogFilter::default(), 10)
        .await
        .unwrap()
        .is_empty());
}

async fn a_dead_token_removes_its_device_and_the_log_filters(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    let m = stored(
        &commit_one(
            &*store,
            NewMessage {
                push: true,
                ..dm(&a, "alice", "bob", "k", 1_000)
            },
        )
        .await,
    )
    .clone();
    let phone = store.register_device(&a, &apns("bob", APNS_A), 1_000).await.unwrap();
    let tablet = store
        .register_device(&a, &fcm("bob", "fcm-tablet"), 1_000)
        .await
        .unwrap();
    let watch = store
        .register_device(&a, &fcm("carol", "fcm-watch"), 1_000)
        .await
        .unwrap();
    let job = |d: &PushDevice, user: &str| PushJob {
        app_id: a.clone(),
        msg_id: m.msg_id.clone(),
        device_id: d.id.clone(),
        user_id: uid(user),
        notification: PushNotification::default(),
        attempts: 0,
        created_at: 0,
    };
    store
        .expand_push(&a, &m.msg_id, &[job(&phone, "bob"), job(&tablet, "bob")], 2_000)
        .await
        .unwrap();
    let jobs = store.claim_push_jobs(2_000, 10, 1_000).await.unwrap();
    assert_eq!(jobs.len(), 2);
    let gone = PushLogEntry {
        http_status: 410,
        reason: Some("Unregistered".into()),
        ..log_line("bob", &phone.id, Some(&m.msg_id), 2_100, PushOutcome::TokenRemoved)
    };
    let phone_job = jobs.iter().find(|j| j.device_id == phone.id).unwrap();
    store
        .finish_push_job(phone_job, 1, JobNext::Done, Some(&gone), true)
        .await
        .unwrap();
    assert_eq!(
        store.device(&a, &phone.id).await.unwrap(),
        None,
        "a dead token's device is removed"
    );
    assert!(store.device(&a, &tablet.id).await.unwrap().is_some());

    store
        .append_push_log(&a, &log_line("carol", &watch.id, None, 2_200, PushOutcome::Sent), false)
        .await
        .unwrap();
    let by_user = |u: &str| PushLogFilter {
        user_id: Some(uid(u)),
        ..Default::default()
    };
    assert_eq!(
        store.push_log(&a, &by_user("bob"), 10).await.unwrap(),
        vec![gone.clone()]
    );
    let carol = store.push_log(&a, &by_user("carol"), 10).await.unwrap();
    assert_eq!(
        (carol.len(), carol[0].msg_id.clone()),
        (1, None),
        "a test push has no message"
    );
    let by_msg = PushLogFilter {
        msg_id: Some(m.msg_id.clone()),
        ..Default::default()
    };
    assert_eq!(store.push_log(&a, &by_msg, 10).await.unwrap().len(), 1);
    let by_device = PushLogFilter {
        device_id: Some(watch.id.clone()),
        ..Default::default()
    };
    assert_eq!(store.push_log(&a, &by_device, 10).await.unwrap().len(), 1);
    // Paging: newest first, then older than the last line seen.
    let first = store.push_log(&a, &PushLogFilter::default(), 1).await.unwrap();
    let next = PushLogFilter {
        before: Some(first[0].id.clone()),
        ..Default::default()
    };
    let second = store.push_log(&a, &next, 10).await.unwrap();
    assert_eq!(first.len() + second.len(), 2);
    assert!(second.iter().all(|l| l.id < first[0].id));
}

async fn mutes_dnd_and_unread_counts_make_the_push_audience(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    let b = app_of_other_tenant(&*store).await;
    let bob = uid("bob");
    assert_eq!(
        store.push_settings(&a, &bob).await.unwrap(),
        UserPushSettings::default()
    );

    let night = DoNotDisturb::parse("22:00", "07:00", 60).unwrap();
    let g1 = ConversationId::Group(gid("g1"));
    let patch = UserPushSettingsPatch {
        dnd: Some(Some(night)),
        mute: vec![direct("alice", "bob"), g1.clone()],
        // Unmuting what the same change mutes leaves it unmuted.
        unmute: vec![g1.clone()],
    };
    let got = store.update_push_settings(&a, &bob, &patch, 1_000).await.unwrap();
    assert_eq!(got.dnd, Some(night));
    assert_eq!(got.muted, vec![direct("alice", "bob")]);
    assert_eq!(store.push_settings(&a, &bob).await.unwrap(), got);
    // Muting again changes nothing; another app's bob has his own settings.
    let again = UserPushSettingsPatch {
        mute: vec![direct("alice", "bob")],
        ..Default::default()
    };
    assert_eq!(store.update_push_settings(&a, &bob, &again, 2_000).await.unwrap(), got);
    assert_eq!(
        store.push_settings(&b, &bob).await.unwrap(),
        UserPushSettings::default()
    );

    // bob has 3 unread from alice and 1 from carol; alice read everything she sent.
    for (i, from) in ["alice", "alice", "alice", "carol"].iter().enumerate() {
        commit_one(&*store, dm(&a, from, "bob", &format!("k{i}"), 10 + i as i64)).await;
    }
    let who = [uid("bob"), uid("alice"), uid("dave")];
    let audience = store.push_audience(&a, &direct("alice", "bob"), &who).await.unwrap();
    assert_eq!(audience.len(), 3);
    assert_eq!(
        (audience[0].muted, audience[0].dnd, audience[0].unread),
        (true, Some(night), 4)
    );
    assert_eq!(
        (audience[1].muted, audience[1].dnd, audience[1].unread),
        (false, None, 0)
    );
    assert_eq!((audience[2].muted, audience[2].unread), (false, 0));
    // Muted is per conversation: carol's chat is not.
    let carol = store
        .push_audience(&a, &direct("carol", "bob"), &who[..1])
        .await
        .unwrap();
    assert!(!carol[0].muted);
    // Reading one conversation lowers the count.
    store.mark_read(&a, &bob, &direct("alice", "bob"), 3).await.unwrap();
    let after = store
        .push_audience(&a, &direct("alice", "bob"), &who[..1])
        .await
        .unwrap();
    assert_eq!(after[0].unread, 1);

    // Clearing the hours and unmuting leaves the defaults.
    let clear = UserPushSettingsPatch {
        dnd: Some(None),
        unmute: vec![direct("alice", "bob")],
        ..Default::default()
    };
    assert_eq!(
        store.update_push_settings(&a, &bob, &clear, 3_000).await.unwrap(),
        UserPushSettings::default()
    );
}

conformance!(
    mutes_dnd_and_unread_counts_make_the_push_audience,
    devices_belong_to_one_user_and_tokens_are_unique_per_app,
    a_user_keeps_the_most_recent_devices,
    credentials_are_kept_per_app_and_provider,
    the_push_outbox_becomes_one_job_per_message_and_device,
    a_dead_token_removes_its_device_and_the_log_filters,
);
