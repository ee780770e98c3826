//! Conformance of `TenancyStore`: tenants, apps, secrets, admins, and the scoping that keeps apps apart.

use std::sync::Arc;

use tern_platform::domain::*;
use tern_platform::ids::*;
use tern_platform::store::*;

use crate::fixtures::*;

async fn tenants_have_unique_names(store: Arc<dyn Store>) {
    let a = tenant("Acme");
    store.create_tenant(&a).await.unwrap();
    let again = store.create_tenant(&tenant("Acme")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    assert_eq!(store.tenant(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.tenant_by_name("Acme").await.unwrap(), Some(a.clone()));
    assert_eq!(store.tenant_by_name("Nobody").await.unwrap(), None);

    store.set_tenant_status(&a.id, TenantStatus::Suspended).await.unwrap();
    assert_eq!(
        store.tenant(&a.id).await.unwrap().unwrap().status,
        TenantStatus::Suspended
    );
    let missing = store
        .set_tenant_status(&TenantId::generate(), TenantStatus::Active)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");

    for i in 0..4 {
        store.create_tenant(&tenant(&format!("t{i}"))).await.unwrap();
    }
    let first = store.list_tenants(None, 3).await.unwrap();
    let rest = store.list_tenants(Some(&first[2].id), 10).await.unwrap();
    assert_eq!((first.len(), rest.len()), (3, 2));
    let mut all: Vec<_> = first.iter().chain(&rest).map(|t| t.id.clone()).collect();
    all.dedup();
    assert_eq!(all.len(), 5);
}

async fn apps_have_unique_names_within_a_tenant(store: Arc<dyn Store>) {
    let t1 = tenant("one");
    let t2 = tenant("two");
    store.create_tenant(&t1).await.unwrap();
    store.create_tenant(&t2).await.unwrap();

    let created = store.create_app(&new_app(&t1.id, "chat")).await.unwrap();
    assert_eq!(created.status, AppStatus::Active);
    let dup = store.create_app(&new_app(&t1.id, "chat")).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let other_tenant = store.create_app(&new_app(&t2.id, "chat")).await.unwrap();
    let orphan = store.create_app(&new_app(&TenantId::generate(), "chat")).await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");

    assert_eq!(store.app(&created.id).await.unwrap(), Some(created.clone()));
    assert_eq!(store.app_by_key(&created.app_key).await.unwrap(), Some(created.clone()));
    assert_eq!(store.list_apps(&t1.id).await.unwrap(), vec![created.clone()]);
    assert_eq!(store.list_apps(&t2.id).await.unwrap(), vec![other_tenant]);

    let mut settings = AppSettings::default();
    settings.webhook.url = Some("https://example.com/hook".into());
    settings.recall_window_seconds = 5;
    store.update_app_settings(&created.id, &settings).await.unwrap();
    store.set_app_status(&created.id, AppStatus::Suspended).await.unwrap();
    let reread = store.app(&created.id).await.unwrap().unwrap();
    assert_eq!(reread.settings, settings);
    assert_eq!(reread.status, AppStatus::Suspended);
    assert_eq!(
        store.webhook_secret_ciphertext(&created.id).await.unwrap(),
        Some(vec![9, 9, 9])
    );
    assert!(store.sample_ciphertext().await.unwrap().is_some());
}

async fn secret_rotation_keeps_two_active(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let first = store.active_app_secrets(&app.id, 1_500).await.unwrap();
    assert_eq!(first.len(), 1);

    let revoke_last = store.revoke_app_secret(&app.id, &first[0].id, 1_500).await;
    assert!(matches!(revoke_last, Err(StoreError::Rejected(_))), "{revoke_last:?}");

    let second = secret(&app.id, 2_000);
    store.add_app_secret(&second, 10_000).await.unwrap();
    let third = secret(&app.id, 3_000);
    store.add_app_secret(&third, 20_000).await.unwrap();

    let active = store.active_app_secrets(&app.id, 3_000).await.unwrap();
    let ids: Vec<_> = active.iter().map(|s| s.id.clone()).collect();
    assert_eq!(
        ids,
        vec![third.id.clone(), second.id.clone()],
        "newest first, at most two"
    );
    // The oldest was expired at once; the previous one lives out its grace period.
    assert_eq!(active[1].expires_at, Some(20_000));
    assert_eq!(store.active_app_secrets(&app.id, 20_000).await.unwrap().len(), 1);

    store.revoke_app_secret(&app.id, &second.id, 4_000).await.unwrap();
    let active = store.active_app_secrets(&app.id, 4_000).await.unwrap();
    assert_eq!(active.iter().map(|s| &s.id).collect::<Vec<_>>(), vec![&third.id]);
    let last = store.revoke_app_secret(&app.id, &third.id, 4_000).await;
    assert!(matches!(last, Err(StoreError::Rejected(_))), "{last:?}");
    let orphan = store.add_app_secret(&secret(&AppId::generate(), 5_000), 6_000).await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");
}

async fn apps_cannot_see_each_others_data(store: Arc<dyn Store>) {
    let app_a = app(&*store).await;
    let app_b = app(&*store).await;
    let (a, b) = (&app_a.id, &app_b.id);

    store
        .upsert_users(
            a,
            &[
                (uid("alice"), UserProfile::default()),
                (uid("bob"), UserProfile::default()),
            ],
            1,
        )
        .await
        .unwrap();
    let mut m = dm(a, "alice", "bob", "k1", 10);
    m.events = vec![event(a, 10)];
    let sent = stored(&commit_one(&*store, m).await).clone();
    store
        .create_group(a, &new_group("team", "alice", &["bob"], 10), 20)
        .await
        .unwrap();
    let ev = event(a, 30);
    store.enqueue_events(std::slice::from_ref(&ev)).await.unwrap();
    store.mark_event_dead(&ev.id, 5, "gone").await.unwrap();

    // Users.
    assert_eq!(store.user(b, &uid("alice")).await.unwrap(), None);
    assert!(store.list_users(b, None, 100).await.unwrap().is_empty());
    assert!(store.existing_users(b, &[uid("alice")]).await.unwrap().is_empty());
    assert!(matches!(
        store.delete_user(b, &uid("alice")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.set_user_ban(b, &uid("alice"), Some(9)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.revoke_user_tokens(b, &uid("alice"), 9).await,
        Err(StoreError::NotFound(_))
    ));
    // Messages.
    assert_eq!(store.message(b, &sent.msg_id).await.unwrap(), None);
    assert_eq!(
        store.message_by_client_msg_id(b, "alice", &cmid("k1")).await.unwrap(),
        None
    );
    assert!(store
        .messages(b, &sent.conversation_id, SeqRange::After(0), 100)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.recall_message(b, &sent.msg_id, None, 20, &[]).await,
        Err(StoreError::NotFound(_))
    ));
    // Conversations.
    assert!(store
        .conversations(b, &uid("alice"), None, 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .conversation(b, &uid("alice"), &sent.conversation_id)
            .await
            .unwrap(),
        None
    );
    assert!(store
        .conversations_changed_since(b, &uid("alice"), 0, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.mark_read(b, &uid("alice"), &sent.conversation_id, 1).await,
        Err(StoreError::NotFound(_))
    ));
    // Groups.
    assert_eq!(store.group(b, &gid("team")).await.unwrap(), None);
    assert_eq!(store.group_member(b, &gid("team"), &uid("bob")).await.unwrap(), None);
    assert!(store
        .group_members(b, &gid("team"), None, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(store.group_member_ids(b, &gid("team")).await.unwrap().is_empty());
    assert!(matches!(
        store
            .add_group_members(b, &gid("team"), &[uid("x")], 10, 1, &|_| GroupRecord::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .remove_group_member(b, &gid("team"), &uid("bob"), &GroupRecord::default(), 1)
            .await,
        Err(StoreError::NotFound(_))
    ));
    // Outbox and secrets.
    assert!(store.dead_events(b, None, 100).await.unwrap().is_empty());
    assert!(matches!(
        store.redeliver_event(b, &ev.id, 40).await,
        Err(StoreError::NotFound(_))
    ));
    let a_secret = store.active_app_secrets(a, 1_500).await.unwrap().remove(0);
    assert!(matches!(
        store.revoke_app_secret(b, &a_secret.id, 1_500).await,
        Err(StoreError::NotFound(_))
    ));

    // Nothing of A changed.
    assert_eq!(store.message(a, &sent.msg_id).await.unwrap(), Some(sent.clone()));
    assert!(store.user(a, &uid("alice")).await.unwrap().is_some());
    assert_eq!(
        store.group_member_ids(a, &gid("team")).await.unwrap(),
        vec![uid("alice"), uid("bob")]
    );
    assert_eq!(store.dead_events(a, None, 100).await.unwrap().len(), 1);
    // The same ids in B are B's own: B's first message in the "same" conversation is seq 1.
    let b_msg = stored(&commit_one(&*store, dm(b, "alice", "bob", "k1", 50)).await).clone();
    assert_eq!(b_msg.seq, 1);
}

async fn platform_admins(store: Arc<dyn Store>) {
    assert_eq!(store.admin_count().await.unwrap(), 0);
    let admin = store.create_admin("ops@example.com", "$argon2id$x", 10).await.unwrap();
    assert_eq!(admin.email, "ops@example.com");
    let dup = store.create_admin("ops@example.com", "$argon2id$y", 11).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(store.admin_count().await.unwrap(), 1);
    assert_eq!(store.admin_by_email("ops@example.com").await.unwrap(), Some(admin));
    assert_eq!(store.admin_by_email("nobody@example.com").await.unwrap(), None);
}

conformance!(
    tenants_have_unique_names,
    apps_have_unique_names_within_a_tenant,
    secret_rotation_keeps_two_active,
    apps_cannot_see_each_others_data,
    platform_admins,
);
