//! One conformance suite for every `Store` adapter: each test is written once against the
//! trait and run on SQLite always and on PostgreSQL when `TERN_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;
use tern_platform::domain::*;
use tern_platform::ids::*;
use tern_platform::store::*;

// ---- fixtures ------------------------------------------------------------------------

fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn gid(s: &str) -> GroupId {
    GroupId::parse(s).unwrap()
}

fn cmid(s: &str) -> ClientMsgId {
    ClientMsgId::parse(s).unwrap()
}

fn tenant(name: &str) -> Tenant {
    Tenant {
        id: TenantId::generate(),
        name: name.into(),
        status: TenantStatus::Active,
        created_at: 1_000,
    }
}

fn secret(app: &AppId, created_at: UnixMillis) -> AppSecretRecord {
    AppSecretRecord {
        id: SecretId::generate(),
        app_id: app.clone(),
        ciphertext: vec![1, 2, 3, created_at as u8],
        created_at,
        expires_at: None,
    }
}

fn new_app(tenant: &TenantId, name: &str) -> NewApp {
    let id = AppId::generate();
    NewApp {
        first_secret: secret(&id, 1_000),
        id,
        tenant_id: tenant.clone(),
        name: name.into(),
        app_key: AppKey::generate(),
        settings: AppSettings::default(),
        webhook_secret_ciphertext: vec![9, 9, 9],
    }
}

/// A tenant with one app; returns the app.
async fn app(store: &dyn Store) -> App {
    let t = tenant(&format!("tenant-{}", rand::random::<u64>()));
    store.create_tenant(&t).await.unwrap();
    store.create_app(&new_app(&t.id, "app")).await.unwrap()
}

fn direct(a: &str, b: &str) -> ConversationId {
    ConversationId::direct(&uid(a), &uid(b))
}

/// A direct message from `from` to `to`, with `client_msg_id` `key`.
fn dm(app: &AppId, from: &str, to: &str, key: &str, created_at: UnixMillis) -> NewMessage {
    NewMessage {
        app_id: app.clone(),
        msg_id: MsgId::generate(),
        conversation_id: direct(from, to),
        sender: Sender::User(uid(from)),
        client_msg_id: cmid(key),
        msg_type: MessageType::Text,
        content: json!({ "text": key }),
        created_at,
        participants: vec![uid(from), uid(to)],
        events: Vec::new(),
        reply_to: None,
        mentions: Vec::new(),
        mention_all: false,
    }
}

fn group_msg(app: &AppId, group: &str, from: &str, key: &str, created_at: UnixMillis) -> NewMessage {
    NewMessage {
        app_id: app.clone(),
        msg_id: MsgId::generate(),
        conversation_id: ConversationId::Group(gid(group)),
        sender: Sender::User(uid(from)),
        client_msg_id: cmid(key),
        msg_type: MessageType::Text,
        content: json!({ "text": key }),
        created_at,
        participants: Vec::new(),
        events: Vec::new(),
        reply_to: None,
        mentions: Vec::new(),
        mention_all: false,
    }
}

fn event(app: &AppId, created_at: UnixMillis) -> NewOutboxEvent {
    NewOutboxEvent {
        id: format!("wh_{}", ulid::Ulid::new()),
        app_id: app.clone(),
        event_type: "message.sent".into(),
        body: "{}".into(),
        created_at,
    }
}

fn new_group(id: &str, owner: &str, members: &[&str], limit: usize) -> NewGroup {
    NewGroup {
        id: gid(id),
        name: format!("group {id}"),
        owner: uid(owner),
        members: members.iter().map(|m| uid(m)).collect(),
        metadata: json!({ "topic": "tests" }),
        avatar_url: None,
        announcement: String::new(),
        join_policy: JoinPolicy::Approval,
        member_limit: limit,
        notice: None,
        events: Vec::new(),
    }
}

async fn commit_one(store: &dyn Store, m: NewMessage) -> CommitOutcome {
    store.commit_messages(&[m]).await.unwrap().pop().unwrap()
}

fn stored(o: &CommitOutcome) -> &Message {
    match o {
        CommitOutcome::Stored(m) => m,
        CommitOutcome::Duplicate(m) => panic!("expected a new message, got a duplicate of {}", m.msg_id),
    }
}

// ---- tenants, apps, secrets ----------------------------------------------------------

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

// ---- users ---------------------------------------------------------------------------

async fn users_upsert_list_delete_ban(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let profile = UserProfile {
        name: Some("Alice".into()),
        avatar_url: Some(Some("https://img/a.png".into())),
        metadata: Some(json!({ "level": 3 })),
    };
    let users = store
        .upsert_users(a, &[(uid("alice"), profile), (uid("bob"), UserProfile::default())], 100)
        .await
        .unwrap();
    assert_eq!(users[0].id, uid("alice"));
    assert_eq!(users[1].id, uid("bob"));
    assert_eq!(users[0].name, "Alice");

    // Fields left out keep their value; `Some(None)` clears the avatar.
    let update = UserProfile {
        name: None,
        avatar_url: Some(None),
        metadata: None,
    };
    let updated = store.upsert_users(a, &[(uid("alice"), update)], 200).await.unwrap();
    assert_eq!(updated[0].name, "Alice");
    assert_eq!(updated[0].avatar_url, None);
    assert_eq!(updated[0].metadata, json!({ "level": 3 }));
    assert_eq!((updated[0].created_at, updated[0].updated_at), (100, 200));
    assert_eq!(store.user(a, &uid("alice")).await.unwrap(), Some(updated[0].clone()));

    let more: Vec<_> = ["carol", "dave", "erin"]
        .iter()
        .map(|n| (uid(n), UserProfile::default()))
        .collect();
    store.upsert_users(a, &more, 300).await.unwrap();
    let page1 = store.list_users(a, None, 2).await.unwrap();
    let page2 = store.list_users(a, Some(&page1[1].id), 2).await.unwrap();
    let page3 = store.list_users(a, Some(&page2[1].id), 2).await.unwrap();
    let names: Vec<_> = page1
        .iter()
        .chain(&page2)
        .chain(&page3)
        .map(|u| u.id.to_string())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol", "dave", "erin"]);

    let existing = store
        .existing_users(a, &[uid("erin"), uid("zed"), uid("alice")])
        .await
        .unwrap();
    assert_eq!(existing, vec![uid("erin"), uid("alice")]);

    store.set_user_ban(a, &uid("bob"), Some(5_000)).await.unwrap();
    store.revoke_user_tokens(a, &uid("bob"), 4_000).await.unwrap();
    let bob = store.user(a, &uid("bob")).await.unwrap().unwrap();
    assert!(bob.is_banned_at(4_999));
    assert_eq!(bob.tokens_revoked_before, Some(4_000));
    store.set_user_ban(a, &uid("bob"), None).await.unwrap();
    assert!(!store.user(a, &uid("bob")).await.unwrap().unwrap().is_banned_at(4_999));

    store.delete_user(a, &uid("bob")).await.unwrap();
    assert_eq!(store.user(a, &uid("bob")).await.unwrap(), None);
    let again = store.delete_user(a, &uid("bob")).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    let ghost = store.set_user_ban(a, &uid("ghost"), Some(1)).await;
    assert!(matches!(ghost, Err(StoreError::NotFound(_))), "{ghost:?}");
}

// ---- isolation -----------------------------------------------------------------------

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

// ---- messages ------------------------------------------------------------------------

async fn seqs_start_at_one_per_conversation(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let batch = vec![
        dm(a, "alice", "bob", "1", 10),
        dm(a, "bob", "alice", "2", 11),
        dm(a, "alice", "carol", "3", 12),
        dm(a, "alice", "bob", "4", 13),
    ];
    let out = store.commit_messages(&batch).await.unwrap();
    let seqs: Vec<i64> = out.iter().map(|o| stored(o).seq).collect();
    assert_eq!(seqs, vec![1, 2, 1, 3], "input order kept, seq per conversation");
    for (o, m) in out.iter().zip(&batch) {
        let got = stored(o);
        assert_eq!(got.msg_id, m.msg_id);
        assert_eq!(got.content, m.content);
        assert_eq!(store.message(a, &m.msg_id).await.unwrap().as_ref(), Some(got));
    }
    let system = NewMessage {
        sender: Sender::System,
        conversation_id: ConversationId::System(uid("alice")),
        participants: vec![uid("alice")],
        ..dm(a, "alice", "bob", "sys-1", 14)
    };
    let sys = stored(&commit_one(&*store, system).await).clone();
    assert_eq!((sys.seq, sys.sender.clone()), (1, Sender::System));
    assert_eq!(store.message(a, &sys.msg_id).await.unwrap(), Some(sys));
}

async fn duplicates_return_the_first_message(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let first = stored(&commit_one(&*store, dm(a, "alice", "bob", "same", 10)).await).clone();

    let mut retry = dm(a, "alice", "bob", "same", 20);
    retry.content = json!({ "text": "different" });
    retry.events = vec![event(a, 20)];
    match commit_one(&*store, retry).await {
        CommitOutcome::Duplicate(m) => assert_eq!(m, first),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // Nothing was written for the duplicate: no seq, no event.
    let history = store
        .messages(a, &direct("alice", "bob"), SeqRange::After(0), 10)
        .await
        .unwrap();
    assert_eq!(history, vec![first.clone()]);
    assert!(store.due_events(i64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(
        store.message_by_client_msg_id(a, "alice", &cmid("same")).await.unwrap(),
        Some(first.clone())
    );
    // The key belongs to the sender: bob may use the same one.
    let bobs = stored(&commit_one(&*store, dm(a, "bob", "alice", "same", 30)).await).clone();
    assert_eq!(bobs.seq, 2);
}

async fn duplicates_inside_one_batch(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let mut second = dm(a, "alice", "bob", "k", 11);
    second.content = json!({ "text": "second" });
    let batch = vec![
        dm(a, "alice", "bob", "k", 10),
        dm(a, "alice", "bob", "other", 10),
        second,
    ];
    let out = store.commit_messages(&batch).await.unwrap();
    let first = stored(&out[0]).clone();
    assert_eq!(first.seq, 1);
    assert_eq!(stored(&out[1]).seq, 2);
    assert_eq!(out[2], CommitOutcome::Duplicate(first));
    let history = store
        .messages(a, &direct("alice", "bob"), SeqRange::After(0), 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
}

async fn concurrent_batches_get_gapless_seqs(store: Arc<dyn Store>) {
    const TASKS: usize = 16;
    const PER_TASK: usize = 50;
    const BATCH: usize = 5;
    let app = app(&*store).await;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        let a = app.id.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for b in 0..PER_TASK / BATCH {
                let batch: Vec<_> = (0..BATCH)
                    .map(|i| {
                        let (from, to) = if t % 2 == 0 { ("alice", "bob") } else { ("bob", "alice") };
                        dm(&a, from, to, &format!("t{t}-b{b}-m{i}"), 1_000 + i as i64)
                    })
                    .collect();
                let out = store.commit_messages(&batch).await.unwrap();
                seqs.extend(out.iter().map(|o| stored(o).seq));
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    seqs.sort_unstable();
    let total = (TASKS * PER_TASK) as i64;
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "every seq once, no gap");

    let history = store
        .messages(&app.id, &direct("alice", "bob"), SeqRange::After(0), 10_000)
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    let entry = store
        .conversation(&app.id, &uid("alice"), &direct("alice", "bob"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.last_seq, total);
}

/// Batches that each touch several conversations, in different orders, at once: no
/// deadlock or failure, and every conversation's seqs stay gapless.
async fn concurrent_batches_over_several_conversations(store: Arc<dyn Store>) {
    const TASKS: usize = 8;
    const ROUNDS: usize = 10;
    let app = app(&*store).await;
    let peers = ["bob", "carol", "dave", "erin"];
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        let a = app.id.clone();
        tasks.push(tokio::spawn(async move {
            for r in 0..ROUNDS {
                // Each task walks the conversations in its own rotation and direction.
                let mut batch: Vec<_> = (0..peers.len())
                    .map(|p| {
                        let peer = peers[(p + t) % peers.len()];
                        dm(&a, "alice", peer, &format!("t{t}-r{r}-{peer}"), 1)
                    })
                    .collect();
                if t % 2 == 1 {
                    batch.reverse();
                }
                store.commit_messages(&batch).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for peer in peers {
        let history = store
            .messages(&app.id, &direct("alice", peer), SeqRange::After(0), 1_000)
            .await
            .unwrap();
        let expected: Vec<i64> = (1..=(TASKS * ROUNDS) as i64).collect();
        assert_eq!(history.iter().map(|m| m.seq).collect::<Vec<_>>(), expected, "{peer}");
    }
    let alice = store.conversations(&app.id, &uid("alice"), None, 10).await.unwrap();
    assert_eq!(alice.len(), peers.len());
    assert!(alice
        .iter()
        .all(|e| e.unread == 0 && e.read_seq == (TASKS * ROUNDS) as i64));
}

/// The same idempotency key committed by many senders' retries at once is stored once,
/// and every caller gets that one message back.
async fn concurrent_duplicates_are_stored_once(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let a = app.id.clone();
        tasks.push(tokio::spawn(async move {
            let mut m = dm(&a, "alice", "bob", "retry-me", 10 + i);
            m.content = json!({ "text": format!("attempt {i}") });
            commit_one(&*store, m).await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let stored_count = outcomes
        .iter()
        .filter(|o| matches!(o, CommitOutcome::Stored(_)))
        .count();
    assert_eq!(stored_count, 1, "{outcomes:?}");
    let first = outcomes[0].message().clone();
    assert!(outcomes.iter().all(|o| *o.message() == first));
    let history = store
        .messages(&app.id, &direct("alice", "bob"), SeqRange::After(0), 100)
        .await
        .unwrap();
    assert_eq!(history, vec![first]);
}

/// One batch mixing conversations, apps, a group, a stored duplicate and a duplicate inside
/// the batch: outcomes in input order, seqs per conversation, entries, read positions and
/// events as if each message had been committed alone.
async fn mixed_batch_of_conversations_duplicates_and_a_group(store: Arc<dyn Store>) {
    let other = app(&*store).await;
    let app = app(&*store).await;
    let (a, b) = (&app.id, &other.id);
    let g = gid("crew");
    store
        .create_group(a, &new_group("crew", "alice", &["bob", "carol"], 5), 100)
        .await
        .unwrap();
    let earlier = stored(&commit_one(&*store, dm(a, "alice", "bob", "old", 100)).await).clone();
    // Bob's entry exists (unread); alice writing again must not move his read position.
    let bob_before = store
        .conversation(a, &uid("bob"), &direct("alice", "bob"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob_before.read_seq, 0);

    let mut retried = dm(a, "alice", "bob", "old", 200);
    retried.events = vec![event(a, 200)];
    let mut first_new = dm(a, "alice", "bob", "n1", 201);
    first_new.events = vec![event(a, 201)];
    let mut to_dave = dm(a, "carol", "dave", "n2", 202);
    to_dave.events = vec![event(a, 202), event(a, 202)];
    let in_group = group_msg(a, "crew", "bob", "n3", 203);
    let mut repeat = dm(a, "alice", "bob", "n1", 204);
    repeat.events = vec![event(a, 204)];
    let reply = dm(a, "bob", "alice", "n4", 205);
    let elsewhere = dm(b, "alice", "bob", "n1", 206);
    let again = dm(a, "alice", "bob", "n5", 207);
    let in_group_again = group_msg(a, "crew", "bob", "n6", 208);
    let batch = vec![
        retried,
        first_new,
        to_dave,
        in_group,
        repeat,
        reply,
        elsewhere,
        again,
        in_group_again,
    ];
    let out = store.commit_messages(&batch).await.unwrap();
    assert_eq!(out.len(), batch.len());
    assert_eq!(out[0], CommitOutcome::Duplicate(earlier.clone()), "stored before");
    let n1 = stored(&out[1]).clone();
    assert_eq!(out[4], CommitOutcome::Duplicate(n1.clone()), "earlier in the batch");
    let seqs: Vec<(usize, i64)> = [1, 2, 3, 5, 6, 7, 8]
        .into_iter()
        .map(|i| (i, stored(&out[i]).seq))
        .collect();
    assert_eq!(
        seqs,
        [(1, 2), (2, 1), (3, 1), (5, 3), (6, 1), (7, 4), (8, 2)],
        "gapless per conversation and app, input order"
    );
    for i in [1, 2, 3, 5, 6, 7, 8] {
        let got = stored(&out[i]);
        assert_eq!(got.msg_id, batch[i].msg_id);
        assert_eq!(got.content, batch[i].content);
        assert_eq!(
            store.message(&batch[i].app_id, &got.msg_id).await.unwrap().as_ref(),
            Some(got)
        );
    }

    let history = store
        .messages(a, &direct("alice", "bob"), SeqRange::After(0), 10)
        .await
        .unwrap();
    let keys: Vec<&str> = history.iter().map(|m| m.client_msg_id.as_str()).collect();
    assert_eq!(keys, ["old", "n1", "n4", "n5"], "nothing written for the duplicates");
    let group_history = store
        .messages(a, &ConversationId::Group(g.clone()), SeqRange::After(0), 10)
        .await
        .unwrap();
    assert_eq!(group_history.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);

    let entry = |app: AppId, user: &'static str, id: ConversationId| {
        let store = store.clone();
        async move { store.conversation(&app, &uid(user), &id).await.unwrap().unwrap() }
    };
    let alice = entry(a.clone(), "alice", direct("alice", "bob")).await;
    assert_eq!(
        (alice.last_seq, alice.read_seq, alice.unread),
        (4, 4, 0),
        "alice sent the last one"
    );
    let bob = entry(a.clone(), "bob", direct("alice", "bob")).await;
    assert_eq!(
        (bob.last_seq, bob.read_seq, bob.unread),
        (4, 3, 1),
        "bob read up to his reply"
    );
    assert!(bob.version > bob_before.version);
    assert_eq!(bob.last_message.map(|m| m.msg_id), Some(batch[7].msg_id.clone()));
    let dave = entry(a.clone(), "dave", direct("carol", "dave")).await;
    assert_eq!(
        (dave.last_seq, dave.read_seq, dave.unread),
        (1, 0, 1),
        "created for the recipient"
    );
    let carol = entry(a.clone(), "carol", direct("carol", "dave")).await;
    assert_eq!((carol.read_seq, carol.unread), (1, 0));
    let group = ConversationId::Group(g.clone());
    let bob_in_group = entry(a.clone(), "bob", group.clone()).await;
    assert_eq!(
        (bob_in_group.last_seq, bob_in_group.read_seq),
        (2, 2),
        "group sender read both"
    );
    let carol_in_group = entry(a.clone(), "carol", group.clone()).await;
    assert_eq!((carol_in_group.read_seq, carol_in_group.unread), (0, 2));
    assert_eq!(
        store.conversation(a, &uid("dave"), &group).await.unwrap(),
        None,
        "a group message creates no entry for a non-member"
    );
    let in_b = entry(b.clone(), "bob", direct("alice", "bob")).await;
    assert_eq!(
        (in_b.last_seq, in_b.unread),
        (1, 1),
        "the other app's conversation is its own"
    );

    // Events of the stored messages only: 1 (n1) + 2 (n2), none of the duplicates.
    let due = store.due_events(i64::MAX, 100).await.unwrap();
    let mut due_ids: Vec<&str> = due.iter().map(|e| e.id.as_str()).collect();
    due_ids.sort_unstable();
    let mut expected: Vec<&str> = batch[1]
        .events
        .iter()
        .chain(&batch[2].events)
        .map(|e| e.id.as_str())
        .collect();
    expected.sort_unstable();
    assert_eq!(due_ids, expected);
}

/// A batch bigger than one statement may carry (bind-parameter limits: the store splits
/// it) is still one batch: every message stored once, seqs gapless, entries and events all
/// written.
async fn a_batch_larger_than_one_statement(store: Arc<dyn Store>) {
    const PEERS: usize = 1_050;
    let app = app(&*store).await;
    let a = &app.id;
    let mut batch = Vec::new();
    for round in 0..2 {
        for p in 0..PEERS {
            let mut m = dm(a, "alice", &format!("peer{p}"), &format!("r{round}-p{p}"), 10 + round);
            m.events = vec![event(a, 10)];
            batch.push(m);
        }
    }
    batch.push(dm(a, "alice", "peer7", "r0-p7", 99));
    let out = store.commit_messages(&batch).await.unwrap();
    assert_eq!(out.len(), 2 * PEERS + 1);
    for (i, o) in out[..2 * PEERS].iter().enumerate() {
        assert_eq!(stored(o).seq, 1 + (i / PEERS) as i64, "message {i}");
    }
    assert_eq!(out[2 * PEERS], CommitOutcome::Duplicate(stored(&out[7]).clone()));

    let mut alice = Vec::new();
    let mut after = None;
    loop {
        let page = store.conversations(a, &uid("alice"), after, 500).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.updated_at, last.conversation_id.to_string()));
        alice.extend(page);
    }
    assert_eq!(alice.len(), PEERS);
    assert!(alice.iter().all(|e| (e.last_seq, e.read_seq, e.unread) == (2, 2, 0)));
    let peer = store
        .conversation(a, &uid("peer1049"), &direct("alice", "peer1049"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((peer.last_seq, peer.read_seq, peer.unread), (2, 0, 2));
    assert_eq!(store.due_events(i64::MAX, 5_000).await.unwrap().len(), 2 * PEERS);
}

async fn history_ranges(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let batch: Vec<_> = (1..=10).map(|i| dm(a, "alice", "bob", &format!("m{i}"), i)).collect();
    store.commit_messages(&batch).await.unwrap();
    let conv = direct("alice", "bob");
    let seqs = |ms: Vec<Message>| ms.iter().map(|m| m.seq).collect::<Vec<_>>();

    assert_eq!(
        seqs(store.messages(a, &conv, SeqRange::After(0), 3).await.unwrap()),
        [1, 2, 3]
    );
    assert_eq!(
        seqs(store.messages(a, &conv, SeqRange::After(8), 5).await.unwrap()),
        [9, 10]
    );
    assert!(store
        .messages(a, &conv, SeqRange::After(10), 5)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        seqs(store.messages(a, &conv, SeqRange::Before(6), 3).await.unwrap()),
        [3, 4, 5]
    );
    assert_eq!(
        seqs(store.messages(a, &conv, SeqRange::Before(3), 10).await.unwrap()),
        [1, 2]
    );
    assert_eq!(
        seqs(store.messages(a, &conv, SeqRange::Before(i64::MAX), 2).await.unwrap()),
        [9, 10]
    );
    assert!(store
        .messages(a, &direct("alice", "zoe"), SeqRange::After(0), 5)
        .await
        .unwrap()
        .is_empty());
}

async fn recall_drops_content(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let sent = stored(&commit_one(&*store, dm(a, "alice", "bob", "r", 10)).await).clone();
    let before = store
        .conversation(a, &uid("bob"), &sent.conversation_id)
        .await
        .unwrap()
        .unwrap();

    let recalled = match store
        .recall_message(a, &sent.msg_id, None, 20, &[event(a, 20)])
        .await
        .unwrap()
    {
        RecallOutcome::Recalled(m) => m,
        other => panic!("expected a recall, got {other:?}"),
    };
    assert!(recalled.recalled);
    assert_eq!(recalled.content, serde_json::Value::Null);
    assert_eq!((recalled.seq, &recalled.msg_id), (sent.seq, &sent.msg_id));
    assert_eq!(store.message(a, &sent.msg_id).await.unwrap(), Some(recalled.clone()));

    let after = store
        .conversation(a, &uid("bob"), &sent.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert!(after.version > before.version, "a recall is a change clients sync");
    assert_eq!(after.last_message, Some(recalled));
    assert_eq!(
        store.due_events(100, 10).await.unwrap().len(),
        1,
        "the event is written with it"
    );
    let missing = store.recall_message(a, &MsgId::generate(), None, 20, &[]).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
}

// ---- conversations -------------------------------------------------------------------

async fn conversation_list_unread_paging_and_sync(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let alice = uid("alice");
    commit_one(&*store, dm(a, "bob", "alice", "1", 100)).await;
    commit_one(&*store, dm(a, "bob", "alice", "2", 110)).await;
    commit_one(&*store, dm(a, "carol", "alice", "3", 120)).await;
    let last = stored(&commit_one(&*store, dm(a, "alice", "dave", "4", 130)).await).clone();

    let list = store.conversations(a, &alice, None, 10).await.unwrap();
    let ids: Vec<_> = list.iter().map(|e| e.conversation_id.to_string()).collect();
    assert_eq!(
        ids,
        ["d:alice:dave", "d:alice:carol", "d:alice:bob"],
        "most recent first"
    );
    let unread: Vec<_> = list.iter().map(|e| e.unread).collect();
    assert_eq!(unread, [0, 1, 2], "a sender has read their own message");
    assert_eq!(list[0].last_message, Some(last));
    assert_eq!(list[2].last_message.as_ref().unwrap().client_msg_id, cmid("2"));
    assert_eq!(list[2].updated_at, 110);

    let page1 = store.conversations(a, &alice, None, 2).await.unwrap();
    let cursor = page1.last().map(|e| (e.updated_at, e.conversation_id.to_string()));
    let page2 = store.conversations(a, &alice, cursor, 2).await.unwrap();
    assert_eq!(page1.len() + page2.len(), 3);
    assert_eq!(page2[0].conversation_id, direct("alice", "bob"));

    // Sync: after the highest version seen, only what changed since comes back.
    let seen = list.iter().map(|e| e.version).max().unwrap();
    assert!(store
        .conversations_changed_since(a, &alice, seen, 10)
        .await
        .unwrap()
        .is_empty());
    commit_one(&*store, dm(a, "bob", "alice", "5", 140)).await;
    let changed = store.conversations_changed_since(a, &alice, seen, 10).await.unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].conversation_id, direct("alice", "bob"));
    assert_eq!(changed[0].unread, 3);
    let all = store.conversations_changed_since(a, &alice, 0, 10).await.unwrap();
    let versions: Vec<_> = all.iter().map(|e| e.version).collect();
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    assert_eq!(versions, sorted, "lowest version first");
    assert_eq!(all.len(), 3);

    // Bob's view of the same conversation.
    let bobs = store
        .conversation(a, &uid("bob"), &direct("alice", "bob"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((bobs.last_seq, bobs.read_seq, bobs.unread), (3, 3, 0));
    assert_eq!(
        store
            .conversation(a, &uid("erin"), &direct("alice", "bob"))
            .await
            .unwrap(),
        None
    );
}

async fn mark_read_clamps_and_never_lowers(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let conv = direct("alice", "bob");
    let batch: Vec<_> = (1..=5).map(|i| dm(a, "alice", "bob", &format!("m{i}"), i)).collect();
    store.commit_messages(&batch).await.unwrap();
    let bob = uid("bob");
    let start = store.conversation(a, &bob, &conv).await.unwrap().unwrap();
    assert_eq!((start.read_seq, start.unread), (0, 5));

    let e = store.mark_read(a, &bob, &conv, 3).await.unwrap();
    assert_eq!((e.read_seq, e.unread), (3, 2));
    assert!(e.version > start.version);
    let e = store.mark_read(a, &bob, &conv, 1).await.unwrap();
    assert_eq!(e.read_seq, 3, "never lowered");
    let e = store.mark_read(a, &bob, &conv, 99).await.unwrap();
    assert_eq!((e.read_seq, e.unread), (5, 0), "clamped to last_seq");
    let none = store.mark_read(a, &uid("zoe"), &conv, 1).await;
    assert!(matches!(none, Err(StoreError::NotFound(_))), "{none:?}");
}

// ---- groups --------------------------------------------------------------------------

async fn groups_are_one_timeline_with_members(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let g = gid("team");
    let group = store
        .create_group(
            a,
            &new_group("team", "alice", &["bob", "carol", "alice", "bob"], 5),
            100,
        )
        .await
        .unwrap()
        .value;
    assert_eq!((group.member_count, group.owner.clone()), (3, uid("alice")));
    assert_eq!(store.group(a, &g).await.unwrap(), Some(group.clone()));
    let dup = store.create_group(a, &new_group("team", "bob", &[], 5), 100).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let too_big = store
        .create_group(a, &new_group("big", "alice", &["b", "c", "d"], 3), 100)
        .await;
    assert!(matches!(too_big, Err(StoreError::Rejected(_))), "{too_big:?}");
    assert_eq!(store.group(a, &gid("big")).await.unwrap(), None);

    let owner = store.group_member(a, &g, &uid("alice")).await.unwrap().unwrap();
    assert_eq!((owner.role, owner.joined_seq), (GroupRole::Owner, 0));
    let entry = store
        .conversation(a, &uid("carol"), &ConversationId::Group(g.clone()))
        .await
        .unwrap();
    assert_eq!(entry.map(|e| (e.last_seq, e.unread)), Some((0, 0)));

    // Two messages, then dave joins: he starts at seq 2.
    let out = store
        .commit_messages(&[
            group_msg(a, "team", "alice", "g1", 200),
            group_msg(a, "team", "bob", "g2", 210),
        ])
        .await
        .unwrap();
    assert_eq!(out.iter().map(|o| stored(o).seq).collect::<Vec<_>>(), [1, 2]);
    let added = store
        .add_group_members(a, &g, &[uid("dave"), uid("bob")], 5, 300, &|_| GroupRecord::default())
        .await
        .unwrap()
        .value;
    assert_eq!(added, vec![uid("dave")], "existing members are skipped");
    let dave = store.group_member(a, &g, &uid("dave")).await.unwrap().unwrap();
    assert_eq!(
        (dave.role, dave.joined_seq, dave.joined_at),
        (GroupRole::Member, 2, 300)
    );
    let dave_entry = store
        .conversation(a, &uid("dave"), &ConversationId::Group(g.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((dave_entry.read_seq, dave_entry.unread), (2, 0));
    let carol_entry = store
        .conversation(a, &uid("carol"), &ConversationId::Group(g.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        carol_entry.unread, 2,
        "read diffusion: one timeline, every member sees it"
    );
    let bob_entry = store
        .conversation(a, &uid("bob"), &ConversationId::Group(g.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob_entry.read_seq, 2, "the sender read their own message");

    let over = store
        .add_group_members(a, &g, &[uid("erin"), uid("frank")], 5, 400, &|_| GroupRecord::default())
        .await;
    assert!(matches!(over, Err(StoreError::Rejected(_))), "{over:?}");
    assert_eq!(store.group(a, &g).await.unwrap().unwrap().member_count, 4);

    let page1 = store.group_members(a, &g, None, 3).await.unwrap();
    let page2 = store.group_members(a, &g, Some(&page1[2].user_id), 3).await.unwrap();
    let ids: Vec<_> = page1.iter().chain(&page2).map(|m| m.user_id.to_string()).collect();
    assert_eq!(ids, ["alice", "bob", "carol", "dave"]);

    store
        .remove_group_member(a, &g, &uid("carol"), &GroupRecord::default(), 1)
        .await
        .unwrap();
    let gone = store
        .remove_group_member(a, &g, &uid("carol"), &GroupRecord::default(), 1)
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    assert_eq!(
        store.group_member_ids(a, &g).await.unwrap(),
        vec![uid("alice"), uid("bob"), uid("dave")]
    );
    assert_eq!(store.group(a, &g).await.unwrap().unwrap().member_count, 3);
    let history = store
        .messages(a, &ConversationId::Group(g.clone()), SeqRange::After(0), 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "one copy of each message, not one per member");
}

fn record(notice: serde_json::Value, events: Vec<NewOutboxEvent>) -> GroupRecord {
    GroupRecord {
        notice: Some(notice),
        actor: None,
        personal: Vec::new(),
        events,
    }
}

fn gconv(g: &str) -> ConversationId {
    ConversationId::Group(gid(g))
}

async fn entry_of(store: &dyn Store, a: &AppId, user: &str, c: &ConversationId) -> Option<ConversationEntry> {
    store.conversation(a, &uid(user), c).await.unwrap()
}

async fn pending_event_types(store: &dyn Store, a: &AppId) -> Vec<String> {
    store
        .due_events(i64::MAX, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.app_id == *a)
        .map(|e| e.event_type)
        .collect()
}

fn typed_event(app: &AppId, event_type: &str) -> NewOutboxEvent {
    NewOutboxEvent {
        event_type: event_type.into(),
        ..event(app, 1)
    }
}

/// A group's opening notice, membership changes with their notices, events and personal
/// notices, and what each member's entry shows.
async fn group_changes_write_their_notices(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let g = gid("crew");
    let mut spec = new_group("crew", "alice", &["bob"], 4);
    spec.notice = Some(json!({"event": "group_created"}));
    spec.events = vec![typed_event(a, "group.created")];
    spec.announcement = "welcome".into();
    spec.join_policy = JoinPolicy::Free;
    let created = store.create_group(a, &spec, 100).await.unwrap();
    let opening = created.notice.clone().unwrap();
    assert_eq!(
        (opening.seq, opening.msg_type, opening.sender.clone()),
        (1, MessageType::System, Sender::System)
    );
    assert_eq!(created.value.announcement, "welcome");
    assert_eq!(created.value.join_policy, JoinPolicy::Free);
    assert!(created.value.version > 0);
    let bob = entry_of(&*store, a, "bob", &gconv("crew")).await.unwrap();
    assert_eq!(
        (bob.last_seq, bob.read_seq, bob.unread),
        (1, 1, 0),
        "members see the opening notice, already read"
    );
    let bob_member = store.group_member(a, &g, &uid("bob")).await.unwrap().unwrap();
    assert_eq!((bob_member.joined_seq, bob_member.muted_until), (0, None));

    // A message, then carol joins: she sees her own "joined" notice, not what came before.
    commit_one(&*store, group_msg(a, "crew", "bob", "m1", 110)).await;
    let added = store
        .add_group_members(a, &g, &[uid("carol"), uid("bob")], 4, 120, &|added: &[UserId]| {
            record(
                json!({"event": "members_added", "users": added}),
                vec![typed_event(a, "group.member_added")],
            )
        })
        .await
        .unwrap();
    assert_eq!(added.value, vec![uid("carol")]);
    let joined = added.notice.unwrap();
    assert_eq!((joined.seq, joined.content["users"].clone()), (3, json!(["carol"])));
    let carol = store.group_member(a, &g, &uid("carol")).await.unwrap().unwrap();
    assert_eq!(carol.joined_seq, 2);
    let carol_entry = entry_of(&*store, a, "carol", &gconv("crew")).await.unwrap();
    assert_eq!((carol_entry.read_seq, carol_entry.unread), (3, 0));
    let bob = entry_of(&*store, a, "bob", &gconv("crew")).await.unwrap();
    assert_eq!((bob.last_seq, bob.unread), (3, 1), "the notice is news to the others");
    let group = store.group(a, &g).await.unwrap().unwrap();
    assert_eq!(group.member_count, 3);
    assert!(
        group.version > created.value.version,
        "membership changes bump the version"
    );

    // Removal: the notice goes to the timeline, the personal one to the removed user.
    let removal = GroupRecord {
        notice: Some(json!({"event": "member_removed", "user": "carol"})),
        actor: Some(uid("alice")),
        personal: vec![(uid("carol"), json!({"event": "removed_from_group"}))],
        events: vec![typed_event(a, "group.member_removed")],
    };
    let removed = store
        .remove_group_member(a, &g, &uid("carol"), &removal, 130)
        .await
        .unwrap();
    assert_eq!(removed.notice.as_ref().map(|m| m.seq), Some(4));
    let alice = entry_of(&*store, a, "alice", &gconv("crew")).await.unwrap();
    assert_eq!(
        (alice.read_seq, alice.unread),
        (4, 0),
        "the one who removed carol has read the notice"
    );
    let bob = entry_of(&*store, a, "bob", &gconv("crew")).await.unwrap();
    assert_eq!((bob.read_seq, bob.unread), (2, 2), "for the others it is news");
    assert_eq!(removed.personal.len(), 1);
    let personal = &removed.personal[0];
    assert_eq!(personal.conversation_id, ConversationId::System(uid("carol")));
    assert_eq!(personal.content["event"], "removed_from_group");
    assert_eq!(entry_of(&*store, a, "carol", &gconv("crew")).await, None);
    let inbox = entry_of(&*store, a, "carol", &ConversationId::System(uid("carol")))
        .await
        .unwrap();
    assert_eq!(
        (inbox.last_seq, inbox.unread),
        (1, 1),
        "kept for carol like any message"
    );
    let owner_out = store
        .remove_group_member(a, &g, &uid("alice"), &GroupRecord::default(), 140)
        .await;
    assert!(matches!(owner_out, Err(StoreError::Rejected(_))), "{owner_out:?}");
    assert!(store.group_member(a, &g, &uid("alice")).await.unwrap().is_some());

    let types = pending_event_types(&*store, a).await;
    for t in ["group.created", "group.member_added", "group.member_removed"] {
        assert!(types.contains(&t.to_owned()), "{t} in {types:?}");
    }
    let history = store.messages(a, &gconv("crew"), SeqRange::After(0), 10).await.unwrap();
    let events: Vec<_> = history
        .iter()
        .map(|m| {
            m.content
                .get("event")
                .and_then(|e| e.as_str())
                .unwrap_or("-")
                .to_owned()
        })
        .collect();
    assert_eq!(events, ["group_created", "-", "members_added", "member_removed"]);
}

async fn group_profiles_roles_mutes_and_transfers(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let g = gid("club");
    let v0 = store
        .create_group(a, &new_group("club", "alice", &["bob", "carol"], 10), 100)
        .await
        .unwrap()
        .value
        .version;

    let patch = GroupPatch {
        name: Some("The Club".into()),
        avatar_url: Some(Some("https://x/a.png".into())),
        announcement: Some("be nice".into()),
        join_policy: Some(JoinPolicy::InviteOnly),
        mute_all: Some(true),
        ..GroupPatch::default()
    };
    let changed = store
        .update_group(
            a,
            &g,
            &patch,
            &record(json!({"event": "group_updated"}), Vec::new()),
            200,
        )
        .await
        .unwrap();
    let read = store.group(a, &g).await.unwrap().unwrap();
    assert_eq!(read, changed.value);
    assert_eq!(
        (
            read.name.as_str(),
            read.avatar_url.as_deref(),
            read.announcement.as_str(),
            read.join_policy,
            read.mute_all,
            read.updated_at
        ),
        (
            "The Club",
            Some("https://x/a.png"),
            "be nice",
            JoinPolicy::InviteOnly,
            true,
            200
        )
    );
    assert_eq!(read.metadata, json!({"topic": "tests"}), "fields not patched are kept");
    assert!(read.version > v0);
    assert_eq!(changed.notice.unwrap().seq, 1);
    let clear = GroupPatch {
        avatar_url: Some(None),
        ..GroupPatch::default()
    };
    let cleared = store
        .update_group(a, &g, &clear, &GroupRecord::default(), 210)
        .await
        .unwrap();
    assert_eq!((cleared.value.avatar_url, cleared.notice), (None, None));

    // Roles and mutes; the owner is untouchable here.
    let bob = store
        .change_group_member(
            a,
            &g,
            &uid("bob"),
            MemberChange::Role(GroupRole::Admin),
            &GroupRecord::default(),
            300,
        )
        .await
        .unwrap()
        .value;
    assert_eq!(bob.role, GroupRole::Admin);
    let carol = store
        .change_group_member(
            a,
            &g,
            &uid("carol"),
            MemberChange::Mute(Some(9_000)),
            &GroupRecord::default(),
            310,
        )
        .await
        .unwrap()
        .value;
    assert_eq!(carol.muted_until, Some(9_000));
    assert_eq!(
        store.group_member(a, &g, &uid("carol")).await.unwrap(),
        Some(carol.clone())
    );
    assert!(carol.is_muted_at(8_999) && !carol.is_muted_at(9_000));
    let unmuted = store
        .change_group_member(
            a,
            &g,
            &uid("carol"),
            MemberChange::Mute(None),
            &GroupRecord::default(),
            320,
        )
        .await
        .unwrap()
        .value;
    assert_eq!((unmuted.muted_until, unmuted.role), (None, GroupRole::Member));
    for change in [MemberChange::Role(GroupRole::Member), MemberChange::Mute(Some(5))] {
        let r = store
            .change_group_member(a, &g, &uid("alice"), change, &GroupRecord::default(), 330)
            .await;
        assert!(matches!(r, Err(StoreError::Rejected(_))), "{r:?}");
    }
    let to_owner = store
        .change_group_member(
            a,
            &g,
            &uid("bob"),
            MemberChange::Role(GroupRole::Owner),
            &GroupRecord::default(),
            330,
        )
        .await;
    assert!(matches!(to_owner, Err(StoreError::Rejected(_))), "{to_owner:?}");
    let stranger = store
        .change_group_member(
            a,
            &g,
            &uid("zed"),
            MemberChange::Mute(None),
            &GroupRecord::default(),
            330,
        )
        .await;
    assert!(matches!(stranger, Err(StoreError::NotFound(_))), "{stranger:?}");

    // Transfer: carol (muted before) becomes owner, alice a member.
    store
        .change_group_member(
            a,
            &g,
            &uid("carol"),
            MemberChange::Mute(Some(9_000)),
            &GroupRecord::default(),
            340,
        )
        .await
        .unwrap();
    let moved = store
        .transfer_group_owner(
            a,
            &g,
            &uid("alice"),
            &uid("carol"),
            &record(json!({"event": "owner_transferred"}), Vec::new()),
            400,
        )
        .await
        .unwrap();
    assert_eq!(moved.value.owner, uid("carol"));
    assert_eq!(store.group(a, &g).await.unwrap().unwrap().owner, uid("carol"));
    let carol = store.group_member(a, &g, &uid("carol")).await.unwrap().unwrap();
    assert_eq!((carol.role, carol.muted_until), (GroupRole::Owner, None));
    let alice = store.group_member(a, &g, &uid("alice")).await.unwrap().unwrap();
    assert_eq!(alice.role, GroupRole::Member);
    let stale = store
        .transfer_group_owner(a, &g, &uid("alice"), &uid("bob"), &GroupRecord::default(), 410)
        .await;
    assert!(matches!(stale, Err(StoreError::Rejected(_))), "{stale:?}");
    let outsider = store
        .transfer_group_owner(a, &g, &uid("carol"), &uid("zed"), &GroupRecord::default(), 410)
        .await;
    assert!(matches!(outsider, Err(StoreError::NotFound(_))), "{outsider:?}");
    assert_eq!(store.group(a, &g).await.unwrap().unwrap().owner, uid("carol"));

    // The groups a user is in, paged by id.
    store
        .create_group(a, &new_group("alpha", "bob", &["alice"], 10), 500)
        .await
        .unwrap();
    store
        .create_group(a, &new_group("zulu", "dave", &[], 10), 500)
        .await
        .unwrap();
    let first = store.user_groups(a, &uid("alice"), None, 1).await.unwrap();
    let rest = store
        .user_groups(a, &uid("alice"), Some(&first[0].id), 10)
        .await
        .unwrap();
    let ids: Vec<_> = first.iter().chain(&rest).map(|g| g.id.to_string()).collect();
    assert_eq!(ids, ["alpha", "club"]);
    assert_eq!(rest[0].name, "The Club");
}

async fn join_requests_are_answered_once(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let g = gid("book");
    store
        .create_group(a, &new_group("book", "alice", &["bob"], 3), 100)
        .await
        .unwrap();
    let ask = |user: &str, message: &str, at: UnixMillis| GroupJoinRequest {
        group_id: g.clone(),
        user_id: uid(user),
        message: message.into(),
        inviter: None,
        state: JoinRequestState::Pending,
        created_at: at,
        updated_at: at,
    };
    let first = store
        .put_group_join_request(a, &ask("carol", "hi", 200), &[typed_event(a, "group.join_requested")])
        .await
        .unwrap();
    assert_eq!((first.state, first.created_at), (JoinRequestState::Pending, 200));
    let again = store
        .put_group_join_request(
            a,
            &GroupJoinRequest {
                inviter: Some(uid("bob")),
                ..ask("carol", "please", 210)
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            again.message.as_str(),
            again.inviter.clone(),
            again.created_at,
            again.updated_at
        ),
        ("please", Some(uid("bob")), 200, 210),
        "asking again while pending replaces the message and keeps the first time"
    );
    store
        .put_group_join_request(a, &ask("dave", "", 220), &[])
        .await
        .unwrap();
    store
        .put_group_join_request(a, &ask("erin", "", 230), &[])
        .await
        .unwrap();
    let missing = store
        .put_group_join_request(
            a,
            &GroupJoinRequest {
                group_id: gid("nope"),
                ..ask("dave", "", 1)
            },
            &[],
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    let page = store.group_join_requests(a, &g, None, 2).await.unwrap();
    let next = store
        .group_join_requests(a, &g, Some(&page[1].user_id), 2)
        .await
        .unwrap();
    let ids: Vec<_> = page.iter().chain(&next).map(|r| r.user_id.to_string()).collect();
    assert_eq!(ids, ["carol", "dave", "erin"]);

    // Carol is accepted: a member with her notice, the request answered for good.
    let accepted = store
        .answer_group_join_request(
            a,
            &g,
            &uid("carol"),
            JoinAnswer::Accept { member_limit: 3 },
            300,
            &|joined: &[UserId]| record(json!({"event": "member_joined", "users": joined}), Vec::new()),
        )
        .await
        .unwrap();
    assert_eq!(accepted.value.state, JoinRequestState::Accepted);
    assert_eq!(accepted.notice.unwrap().content["users"], json!(["carol"]));
    assert!(store.group_member(a, &g, &uid("carol")).await.unwrap().is_some());
    assert_eq!(store.group(a, &g).await.unwrap().unwrap().member_count, 3);
    let twice = store
        .answer_group_join_request(
            a,
            &g,
            &uid("carol"),
            JoinAnswer::Accept { member_limit: 3 },
            310,
            &|_| GroupRecord::default(),
        )
        .await;
    assert!(matches!(twice, Err(StoreError::NotFound(_))), "{twice:?}");

    // The group is full now: accepting dave fails and changes nothing.
    let full = store
        .answer_group_join_request(
            a,
            &g,
            &uid("dave"),
            JoinAnswer::Accept { member_limit: 3 },
            320,
            &|_| GroupRecord::default(),
        )
        .await;
    assert!(matches!(full, Err(StoreError::Rejected(_))), "{full:?}");
    assert_eq!(
        store
            .group_join_request(a, &g, &uid("dave"))
            .await
            .unwrap()
            .unwrap()
            .state,
        JoinRequestState::Pending
    );
    assert!(store.group_member(a, &g, &uid("dave")).await.unwrap().is_none());
    let declined = store
        .answer_group_join_request(a, &g, &uid("dave"), JoinAnswer::Decline, 330, &|_| {
            GroupRecord::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (declined.value.state, declined.notice),
        (JoinRequestState::Declined, None)
    );
    // Adding erin directly settles her pending request.
    store
        .add_group_members(a, &g, &[uid("erin")], 4, 340, &|_| GroupRecord::default())
        .await
        .unwrap();
    assert_eq!(
        store
            .group_join_request(a, &g, &uid("erin"))
            .await
            .unwrap()
            .unwrap()
            .state,
        JoinRequestState::Accepted
    );
    assert!(store.group_join_requests(a, &g, None, 10).await.unwrap().is_empty());
    // Dave asks again after the decline: pending once more, with a new time.
    let reopened = store
        .put_group_join_request(a, &ask("dave", "again", 400), &[])
        .await
        .unwrap();
    assert_eq!((reopened.state, reopened.created_at), (JoinRequestState::Pending, 400));
}

async fn dismissing_removes_everything_of_the_group(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let g = gid("gone");
    let mut spec = new_group("gone", "alice", &["bob", "carol"], 10);
    spec.notice = Some(json!({"event": "group_created"}));
    store.create_group(a, &spec, 100).await.unwrap();
    commit_one(&*store, group_msg(a, "gone", "bob", "m1", 110)).await;
    let ask = GroupJoinRequest {
        group_id: g.clone(),
        user_id: uid("dave"),
        message: String::new(),
        inviter: None,
        state: JoinRequestState::Pending,
        created_at: 120,
        updated_at: 120,
    };
    store.put_group_join_request(a, &ask, &[]).await.unwrap();
    let dismissed = store
        .dismiss_group(a, &g, 200, &|members: &[UserId]| GroupRecord {
            notice: Some(json!({"event": "ignored: the timeline is gone"})),
            actor: None,
            personal: members
                .iter()
                .map(|m| (m.clone(), json!({"event": "group_dismissed"})))
                .collect(),
            events: vec![typed_event(a, "group.dismissed")],
        })
        .await
        .unwrap();
    assert_eq!(dismissed.value, vec![uid("alice"), uid("bob"), uid("carol")]);
    assert_eq!(dismissed.notice, None);
    let told: Vec<_> = dismissed
        .personal
        .iter()
        .map(|m| m.conversation_id.to_string())
        .collect();
    assert_eq!(told, ["s:alice", "s:bob", "s:carol"]);
    assert_eq!(store.group(a, &g).await.unwrap(), None);
    assert!(store.group_member_ids(a, &g).await.unwrap().is_empty());
    assert!(store
        .messages(a, &gconv("gone"), SeqRange::After(0), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(entry_of(&*store, a, "bob", &gconv("gone")).await, None);
    assert_eq!(store.group_join_request(a, &g, &uid("dave")).await.unwrap(), None);
    let bob_inbox = entry_of(&*store, a, "bob", &ConversationId::System(uid("bob")))
        .await
        .unwrap();
    assert_eq!(bob_inbox.last_message.unwrap().content["event"], "group_dismissed");
    assert!(pending_event_types(&*store, a)
        .await
        .contains(&"group.dismissed".to_owned()));
    let again = store.dismiss_group(a, &g, 210, &|_| GroupRecord::default()).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");

    // The id is free again, and the new group's timeline starts over.
    store
        .create_group(a, &new_group("gone", "dave", &["bob"], 10), 300)
        .await
        .unwrap();
    let first = stored(&commit_one(&*store, group_msg(a, "gone", "bob", "m2", 310)).await).clone();
    assert_eq!(first.seq, 1);
}

async fn mentions_mark_only_the_named_entries(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    store
        .create_group(a, &new_group("talk", "alice", &["bob", "carol", "dave"], 10), 100)
        .await
        .unwrap();
    let mentioned = |user: &'static str| {
        let store = store.clone();
        let a = a.clone();
        async move { entry_of(&*store, &a, user, &gconv("talk")).await.unwrap().mentioned }
    };
    let mut named = group_msg(a, "talk", "alice", "m1", 200);
    named.mentions = vec![uid("bob"), uid("carol")];
    let plain = group_msg(a, "talk", "dave", "m2", 201);
    let out = store.commit_messages(&[named, plain]).await.unwrap();
    let m1 = stored(&out[0]).clone();
    assert_eq!(
        (m1.mentions.clone(), m1.mention_all),
        (vec![uid("bob"), uid("carol")], false)
    );
    assert_eq!(store.message(a, &m1.msg_id).await.unwrap(), Some(m1.clone()));
    assert!(mentioned("bob").await && mentioned("carol").await);
    assert!(!mentioned("dave").await && !mentioned("alice").await);
    let history = store.messages(a, &gconv("talk"), SeqRange::After(0), 10).await.unwrap();
    assert_eq!(history[0].mentions, vec![uid("bob"), uid("carol")]);
    assert!(history[1].mentions.is_empty());

    // Reading up to the mention clears it; reading short of it does not.
    store.mark_read(a, &uid("bob"), &gconv("talk"), 1).await.unwrap();
    assert!(!mentioned("bob").await);
    store.mark_read(a, &uid("carol"), &gconv("talk"), 0).await.unwrap();
    assert!(mentioned("carol").await);

    // @all marks everyone but its sender, without writing their entries.
    let mut all = group_msg(a, "talk", "bob", "m3", 300);
    all.mention_all = true;
    let m3 = stored(&commit_one(&*store, all).await).clone();
    assert!(m3.mention_all);
    for u in ["alice", "carol", "dave"] {
        assert!(mentioned(u).await, "{u}");
    }
    assert!(!mentioned("bob").await, "the sender has read their own @all");
    store.mark_read(a, &uid("dave"), &gconv("talk"), m3.seq).await.unwrap();
    assert!(!mentioned("dave").await);
    let listed = store.conversations(a, &uid("carol"), None, 10).await.unwrap();
    assert!(listed[0].mentioned, "the list shows the flag too");
    let synced = store
        .conversations_changed_since(a, &uid("alice"), 0, 10)
        .await
        .unwrap();
    assert!(synced[0].mentioned);
    assert_eq!(synced[0].last_message.as_ref().map(|m| m.mention_all), Some(true));
}

/// Another app's group operations find nothing and change nothing.
async fn group_operations_are_scoped_by_app(store: Arc<dyn Store>) {
    let mine = app(&*store).await;
    let theirs = app(&*store).await;
    let (a, b) = (&mine.id, &theirs.id);
    let g = gid("private");
    store
        .create_group(a, &new_group("private", "alice", &["bob"], 10), 100)
        .await
        .unwrap();
    let nothing = GroupRecord::default();
    let r = store
        .update_group(
            b,
            &g,
            &GroupPatch {
                name: Some("x".into()),
                ..GroupPatch::default()
            },
            &nothing,
            1,
        )
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let r = store
        .change_group_member(b, &g, &uid("bob"), MemberChange::Mute(Some(9)), &nothing, 1)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let r = store
        .transfer_group_owner(b, &g, &uid("alice"), &uid("bob"), &nothing, 1)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let r = store.dismiss_group(b, &g, 1, &|_| GroupRecord::default()).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let ask = GroupJoinRequest {
        group_id: g.clone(),
        user_id: uid("eve"),
        message: String::new(),
        inviter: None,
        state: JoinRequestState::Pending,
        created_at: 1,
        updated_at: 1,
    };
    let r = store.put_group_join_request(b, &ask, &[]).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    store.put_group_join_request(a, &ask, &[]).await.unwrap();
    assert!(store.group_join_requests(b, &g, None, 10).await.unwrap().is_empty());
    assert_eq!(store.group_join_request(b, &g, &uid("eve")).await.unwrap(), None);
    let r = store
        .answer_group_join_request(b, &g, &uid("eve"), JoinAnswer::Accept { member_limit: 10 }, 1, &|_| {
            GroupRecord::default()
        })
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    assert!(store.user_groups(b, &uid("alice"), None, 10).await.unwrap().is_empty());
    assert!(store.group_read_positions(b, &g).await.unwrap().is_empty());
    // Nothing of A changed.
    let group = store.group(a, &g).await.unwrap().unwrap();
    assert_eq!((group.name.as_str(), group.owner.as_str()), ("group private", "alice"));
    assert_eq!(
        store
            .group_member(a, &g, &uid("bob"))
            .await
            .unwrap()
            .unwrap()
            .muted_until,
        None
    );
    assert_eq!(store.group_join_requests(a, &g, None, 10).await.unwrap().len(), 1);
}

async fn read_positions_of_members(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let g = gid("rr");
    store
        .create_group(a, &new_group("rr", "alice", &["bob", "carol"], 10), 100)
        .await
        .unwrap();
    for (k, from) in ["m1", "m2", "m3"].iter().zip(["alice", "alice", "bob"]) {
        commit_one(&*store, group_msg(a, "rr", from, k, 200)).await;
    }
    store.mark_read(a, &uid("carol"), &gconv("rr"), 2).await.unwrap();
    store
        .add_group_members(a, &g, &[uid("dave")], 10, 300, &|_| GroupRecord::default())
        .await
        .unwrap();
    let positions = store.group_read_positions(a, &g).await.unwrap();
    let seen: Vec<_> = positions
        .iter()
        .map(|p| (p.user_id.to_string(), p.read_seq, p.joined_seq))
        .collect();
    assert_eq!(
        seen,
        [
            ("alice".to_owned(), 2, 0),
            ("bob".to_owned(), 3, 0),
            ("carol".to_owned(), 2, 0),
            ("dave".to_owned(), 3, 3)
        ]
    );
}

// ---- outbox --------------------------------------------------------------------------

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

async fn app_of_other_tenant(store: &dyn Store) -> AppId {
    app(store).await.id
}

// ---- admins and lifecycle ------------------------------------------------------------

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

async fn migrating_twice_is_a_no_op(store: Arc<dyn Store>) {
    assert!(store.ready().await.unwrap());
    let t = tenant("kept");
    store.create_tenant(&t).await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.ready().await.unwrap());
    assert_eq!(store.tenant(&t.id).await.unwrap(), Some(t));
}

// ---- moderation ---------------------------------------------------------------------

fn word_list(name: &str, policy: WordPolicy, words: &[&str], at: UnixMillis) -> WordList {
    WordList {
        name: name.into(),
        policy,
        words: words.iter().map(|w| w.to_string()).collect(),
        created_at: at,
        updated_at: at,
    }
}

async fn word_lists_are_versioned_per_app(store: Arc<dyn Store>) {
    let a = &app(&*store).await.id;
    let b = &app_of_other_tenant(&*store).await;
    assert_eq!(store.word_lists_version(a).await.unwrap(), 0);
    assert_eq!(store.word_lists(a).await.unwrap(), vec![]);

    let first = store
        .put_word_list(a, &word_list("zh", WordPolicy::Replace, &["坏蛋"], 10), 2)
        .await
        .unwrap();
    assert_eq!(first, word_list("zh", WordPolicy::Replace, &["坏蛋"], 10));
    let v1 = store.word_lists_version(a).await.unwrap();
    assert!(v1 > 0);

    // Replacing keeps created_at, takes the rest, and moves the version.
    let replaced = store
        .put_word_list(a, &word_list("zh", WordPolicy::Reject, &["坏蛋", "笨蛋"], 20), 2)
        .await
        .unwrap();
    assert_eq!(replaced.created_at, 10);
    assert_eq!(replaced.updated_at, 20);
    assert_eq!(replaced.policy, WordPolicy::Reject);
    assert_eq!(replaced.words, vec!["坏蛋".to_owned(), "笨蛋".to_owned()]);
    let v2 = store.word_lists_version(a).await.unwrap();
    assert!(v2 > v1);

    store
        .put_word_list(a, &word_list("en", WordPolicy::Replace, &["darn"], 30), 2)
        .await
        .unwrap();
    let names: Vec<String> = store.word_lists(a).await.unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names, vec!["en".to_owned(), "zh".to_owned()]);
    // A third list is over the limit of 2; replacing an existing one is not.
    let over = store
        .put_word_list(a, &word_list("fr", WordPolicy::Replace, &["zut"], 40), 2)
        .await;
    assert!(matches!(over, Err(StoreError::Rejected(_))), "{over:?}");
    store
        .put_word_list(a, &word_list("en", WordPolicy::Reject, &["darn"], 40), 2)
        .await
        .unwrap();

    // Another app sees none of it and cannot delete it.
    assert_eq!(store.word_lists(b).await.unwrap(), vec![]);
    assert_eq!(store.word_list(b, "zh").await.unwrap(), None);
    assert_eq!(store.word_lists_version(b).await.unwrap(), 0);
    let cross = store.delete_word_list(b, "zh").await;
    assert!(matches!(cross, Err(StoreError::NotFound(_))), "{cross:?}");

    let before = store.word_lists_version(a).await.unwrap();
    store.delete_word_list(a, "zh").await.unwrap();
    assert_eq!(store.word_list(a, "zh").await.unwrap(), None);
    assert!(store.word_lists_version(a).await.unwrap() > before);
    let again = store.delete_word_list(a, "zh").await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
}

async fn users_are_muted_until_a_time(store: Arc<dyn Store>) {
    let a = &app(&*store).await.id;
    let b = &app_of_other_tenant(&*store).await;
    store
        .upsert_users(a, &[(uid("alice"), UserProfile::default())], 1)
        .await
        .unwrap();
    assert_eq!(store.user(a, &uid("alice")).await.unwrap().unwrap().muted_until, None);
    store.set_user_mute(a, &uid("alice"), Some(5_000)).await.unwrap();
    let alice = store.user(a, &uid("alice")).await.unwrap().unwrap();
    assert_eq!(alice.muted_until, Some(5_000));
    assert!(alice.is_muted_at(4_999) && !alice.is_muted_at(5_000));
    // A profile update keeps the mute; the ban is independent of it.
    store
        .upsert_users(a, &[(uid("alice"), UserProfile::default())], 2)
        .await
        .unwrap();
    let alice = store.user(a, &uid("alice")).await.unwrap().unwrap();
    assert_eq!((alice.muted_until, alice.banned_until), (Some(5_000), None));
    store.set_user_mute(a, &uid("alice"), None).await.unwrap();
    assert_eq!(store.user(a, &uid("alice")).await.unwrap().unwrap().muted_until, None);

    let missing = store.set_user_mute(a, &uid("nobody"), Some(1)).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    let cross = store.set_user_mute(b, &uid("alice"), Some(1)).await;
    assert!(matches!(cross, Err(StoreError::NotFound(_))), "{cross:?}");
}

// ---- friends and blocks --------------------------------------------------------------

async fn friend_requests_friends_and_deletes(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let (alice, bob, carol) = (uid("alice"), uid("bob"), uid("carol"));

    let r = store
        .create_friend_request(a, &alice, &bob, "hi bob", 10)
        .await
        .unwrap();
    assert_eq!((r.state, r.message.as_str()), (FriendRequestState::Pending, "hi bob"));
    // Asking again refreshes the message; still one pending request.
    store
        .create_friend_request(a, &alice, &bob, "hello?", 11)
        .await
        .unwrap();
    store.create_friend_request(a, &carol, &bob, "", 12).await.unwrap();
    let incoming = store.incoming_friend_requests(a, &bob, None, 10).await.unwrap();
    assert_eq!(
        incoming
            .iter()
            .map(|r| (r.from.as_str(), r.message.as_str()))
            .collect::<Vec<_>>(),
        vec![("alice", "hello?"), ("carol", "")]
    );
    let page = store.incoming_friend_requests(a, &bob, Some(&alice), 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert!(store
        .incoming_friend_requests(a, &alice, None, 10)
        .await
        .unwrap()
        .is_empty());

    // Accepting makes both sides, writes the event, and answers the reverse request too.
    store
        .create_friend_request(a, &bob, &alice, "me too", 13)
        .await
        .unwrap();
    let ev = event(a, 14);
    let accepted = store
        .answer_friend_request(a, &alice, &bob, true, std::slice::from_ref(&ev), 14)
        .await
        .unwrap();
    assert_eq!(accepted.state, FriendRequestState::Accepted);
    assert_eq!(
        store.friend_request(a, &bob, &alice).await.unwrap().unwrap().state,
        FriendRequestState::Accepted
    );
    assert!(store.due_events(14, 10).await.unwrap().iter().any(|e| e.id == ev.id));
    assert!(store.friend(a, &alice, &bob).await.unwrap().is_some());
    assert!(store.friend(a, &bob, &alice).await.unwrap().is_some());
    let again = store.answer_friend_request(a, &alice, &bob, true, &[], 15).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
    let dup = store.create_friend_request(a, &alice, &bob, "", 15).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    // Declining adds nobody.
    let declined = store
        .answer_friend_request(a, &carol, &bob, false, &[], 16)
        .await
        .unwrap();
    assert_eq!(declined.state, FriendRequestState::Declined);
    assert!(store.friend(a, &bob, &carol).await.unwrap().is_none());
    assert!(store
        .incoming_friend_requests(a, &bob, None, 10)
        .await
        .unwrap()
        .is_empty());

    // Remarks and tags are per side.
    let f = store
        .update_friend(a, &alice, &bob, Some("Bobby"), &["work".to_owned()], 17)
        .await
        .unwrap();
    assert_eq!(
        (f.remark.as_deref(), f.tags.clone()),
        (Some("Bobby"), vec!["work".to_owned()])
    );
    assert_eq!(store.friend(a, &bob, &alice).await.unwrap().unwrap().remark, None);
    let missing = store.update_friend(a, &alice, &carol, None, &[], 17).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");

    // Paging the list.
    store.create_friend_request(a, &carol, &alice, "", 18).await.unwrap();
    store
        .answer_friend_request(a, &carol, &alice, true, &[], 18)
        .await
        .unwrap();
    let list = store.friends(a, &alice, None, 1).await.unwrap();
    assert_eq!(
        list.iter().map(|f| f.friend_id.as_str()).collect::<Vec<_>>(),
        vec!["bob"]
    );
    let list = store.friends(a, &alice, Some(&bob), 10).await.unwrap();
    assert_eq!(
        list.iter().map(|f| f.friend_id.as_str()).collect::<Vec<_>>(),
        vec!["carol"]
    );

    // One-sided delete keeps the other side; both-sided removes both.
    store.delete_friend(a, &alice, &bob, false, &[]).await.unwrap();
    assert!(store.friend(a, &alice, &bob).await.unwrap().is_none());
    assert!(store.friend(a, &bob, &alice).await.unwrap().is_some());
    let gone = store.delete_friend(a, &alice, &bob, false, &[]).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    store.delete_friend(a, &carol, &alice, true, &[]).await.unwrap();
    assert!(store.friend(a, &alice, &carol).await.unwrap().is_none());

    // Another app sees none of it.
    let other = app_of_other_tenant(&*store).await;
    assert!(store.friends(&other, &bob, None, 10).await.unwrap().is_empty());
    assert!(store.friend_request(&other, &alice, &bob).await.unwrap().is_none());
    let cross = store.delete_friend(&other, &bob, &alice, true, &[]).await;
    assert!(matches!(cross, Err(StoreError::NotFound(_))), "{cross:?}");
    assert!(store.friend(a, &bob, &alice).await.unwrap().is_some());
}

async fn mutual_acceptance_at_once(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    for round in 0..5 {
        let (a, b) = (uid(&format!("a{round}")), uid(&format!("b{round}")));
        store.create_friend_request(&app.id, &a, &b, "", 1).await.unwrap();
        store.create_friend_request(&app.id, &b, &a, "", 1).await.unwrap();
        let (s1, s2, id) = (store.clone(), store.clone(), app.id.clone());
        let (a1, b1, a2, b2, id2) = (a.clone(), b.clone(), a.clone(), b.clone(), id.clone());
        let one = tokio::spawn(async move { s1.answer_friend_request(&id, &a1, &b1, true, &[], 2).await });
        let two = tokio::spawn(async move { s2.answer_friend_request(&id2, &b2, &a2, true, &[], 2).await });
        let results = [one.await.unwrap(), two.await.unwrap()];
        assert!(results.iter().any(Result::is_ok), "{results:?}");
        for r in &results {
            assert!(matches!(r, Ok(_) | Err(StoreError::NotFound(_))), "{r:?}");
        }
        assert!(store.friend(&app.id, &a, &b).await.unwrap().is_some());
        assert!(store.friend(&app.id, &b, &a).await.unwrap().is_some());
    }
}

async fn blocklists(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let (alice, bob, carol) = (uid("alice"), uid("bob"), uid("carol"));
    let first = store.block_user(a, &alice, &bob, 10).await.unwrap();
    let again = store.block_user(a, &alice, &bob, 20).await.unwrap();
    assert_eq!(first, again, "blocking twice keeps the first block");
    store.block_user(a, &alice, &carol, 30).await.unwrap();
    assert!(store.blocks_user(a, &alice, &bob).await.unwrap());
    assert!(!store.blocks_user(a, &bob, &alice).await.unwrap(), "blocks go one way");
    let list = store.blocks(a, &alice, None, 10).await.unwrap();
    assert_eq!(
        list.iter().map(|b| b.blocked_id.as_str()).collect::<Vec<_>>(),
        vec!["bob", "carol"]
    );
    assert_eq!(store.blocks(a, &alice, Some(&bob), 10).await.unwrap().len(), 1);
    let other = app_of_other_tenant(&*store).await;
    assert!(!store.blocks_user(&other, &alice, &bob).await.unwrap());
    let cross = store.unblock_user(&other, &alice, &bob).await;
    assert!(matches!(cross, Err(StoreError::NotFound(_))), "{cross:?}");
    store.unblock_user(a, &alice, &bob).await.unwrap();
    assert!(!store.blocks_user(a, &alice, &bob).await.unwrap());
    let missing = store.unblock_user(a, &alice, &bob).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
}

// ---- rooms and broadcasts ------------------------------------------------------------

fn rid(s: &str) -> RoomId {
    RoomId::parse(s).unwrap()
}

fn new_room(id: &str, origin: RoomOrigin) -> NewRoom {
    NewRoom {
        id: rid(id),
        name: format!("room {id}"),
        metadata: json!({ "topic": id }),
        created_by: origin,
    }
}

fn room_msg(app: &AppId, room: &str, from: &str, key: &str) -> NewMessage {
    NewMessage {
        app_id: app.clone(),
        msg_id: MsgId::generate(),
        conversation_id: ConversationId::Room(rid(room)),
        sender: Sender::User(uid(from)),
        client_msg_id: cmid(key),
        msg_type: MessageType::Text,
        content: json!({ "text": key }),
        created_at: 2_000,
        participants: Vec::new(),
        events: Vec::new(),
        reply_to: None,
        mentions: Vec::new(),
        mention_all: false,
    }
}

async fn rooms_registry_with_history(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    let b = app_of_other_tenant(&*store).await;
    let ev = event(&a, 1_000);
    let lobby = store
        .create_room(
            &a,
            &new_room("lobby", RoomOrigin::ServerApi),
            1_000,
            std::slice::from_ref(&ev),
        )
        .await
        .unwrap();
    assert_eq!(
        (lobby.name.as_str(), lobby.created_by, lobby.last_seq, lobby.created_at),
        ("room lobby", RoomOrigin::ServerApi, 0, 1_000)
    );
    assert_eq!(
        store.due_events(i64::MAX, 10).await.unwrap()[0].id,
        ev.id,
        "the event is written with the room"
    );
    let again = store
        .create_room(&a, &new_room("lobby", RoomOrigin::ServerApi), 1_001, &[])
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    // Another app has its own namespace: the same id is a different room, and A's is unseen.
    assert!(store.room(&b, &rid("lobby")).await.unwrap().is_none());
    store
        .create_room(&b, &new_room("lobby", RoomOrigin::ServerApi), 1_000, &[])
        .await
        .unwrap();

    // Created on join once, however many join at once; events only with the creation.
    let joins: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let a = a.clone();
            tokio::spawn(async move {
                let ev = event(&a, 1_000 + i);
                loop {
                    match store
                        .room_or_create(
                            &a,
                            &new_room("live", RoomOrigin::Join),
                            1_500,
                            std::slice::from_ref(&ev),
                        )
                        .await
                    {
                        Err(StoreError::Unavailable(_)) => tokio::task::yield_now().await,
                        r => return r.unwrap(),
                    }
                }
            })
        })
        .collect();
    let mut created = 0;
    for j in joins {
        let (room, c) = j.await.unwrap();
        assert_eq!(room.created_by, RoomOrigin::Join);
        created += usize::from(c);
    }
    assert_eq!(created, 1, "the room was created by exactly one join");
    let (existing, c) = store
        .room_or_create(&a, &new_room("lobby", RoomOrigin::Join), 9_999, &[])
        .await
        .unwrap();
    assert!(!c);
    assert_eq!(
        existing.created_by,
        RoomOrigin::ServerApi,
        "an existing room is left alone"
    );
    assert_eq!(store.due_events(i64::MAX, 100).await.unwrap().len(), 2);

    // History: the room's conversation keeps seqs; last_seq shows on the room.
    for i in 1..=3 {
        let m = stored(&commit_one(&*store, room_msg(&a, "lobby", "alice", &format!("l{i}"))).await).clone();
        assert_eq!(m.seq, i);
    }
    assert_eq!(store.room(&a, &rid("lobby")).await.unwrap().unwrap().last_seq, 3);
    assert_eq!(store.room(&b, &rid("lobby")).await.unwrap().unwrap().last_seq, 0);

    // Pages by id.
    for id in ["a1", "a2", "a3"] {
        store
            .create_room(&a, &new_room(id, RoomOrigin::ServerApi), 1_000, &[])
            .await
            .unwrap();
    }
    let first = store.rooms(&a, None, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["a1", "a2"]
    );
    let rest = store.rooms(&a, Some(&rid("a2")), 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["a3", "live", "lobby"]
    );
    assert_eq!(rest[2].last_seq, 3);

    // Updates keep what they do not name.
    let u = store
        .update_room(&a, &rid("lobby"), Some("Lobby"), None, 3_000, &[])
        .await
        .unwrap();
    assert_eq!(
        (u.name.as_str(), &u.metadata, u.updated_at),
        ("Lobby", &json!({"topic": "lobby"}), 3_000)
    );
    let u = store
        .update_room(&a, &rid("lobby"), None, Some(&json!({"pinned": true})), 3_001, &[])
        .await
        .unwrap();
    assert_eq!((u.name.as_str(), &u.metadata), ("Lobby", &json!({"pinned": true})));
    let missing = store.update_room(&b, &rid("a1"), Some("x"), None, 1, &[]).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");

    // Deleting takes the history and the mutes with it; the id can be used again, from seq 1.
    store
        .mute_in_room(&a, &rid("lobby"), &uid("bob"), i64::MAX, 3_000)
        .await
        .unwrap();
    let conv = ConversationId::Room(rid("lobby"));
    let old = store.messages(&a, &conv, SeqRange::After(0), 1).await.unwrap()[0].clone();
    store
        .set_reaction(&a, &old.msg_id, &uid("bob"), "+1", true, 3_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .message_changes(&a, &conv, &uid("bob"), 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let missing = store.delete_room(&b, &rid("a1"), &[]).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    store.delete_room(&a, &rid("lobby"), &[]).await.unwrap();
    // What the lifecycle kept of its messages goes too (a new room of that id starts clean).
    assert!(store
        .reaction_summaries(&a, std::slice::from_ref(&old.msg_id), None, 3)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .message_changes(&a, &conv, &uid("bob"), 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.room(&a, &rid("lobby")).await.unwrap().is_none());
    assert!(store
        .messages(&a, &conv, SeqRange::After(0), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.delete_room(&a, &rid("lobby"), &[]).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.room(&b, &rid("lobby")).await.unwrap().unwrap().id,
        rid("lobby"),
        "B's room stays"
    );
    let again = store
        .create_room(&a, &new_room("lobby", RoomOrigin::ServerApi), 4_000, &[])
        .await
        .unwrap();
    assert_eq!(again.last_seq, 0);
    assert_eq!(store.room_mute(&a, &rid("lobby"), &uid("bob")).await.unwrap(), None);
    let m = stored(&commit_one(&*store, room_msg(&a, "lobby", "alice", "after")).await).clone();
    assert_eq!(m.seq, 1);
}

async fn room_mutes_until_a_time(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    let b = app_of_other_tenant(&*store).await;
    let missing = store.mute_in_room(&a, &rid("nowhere"), &uid("bob"), 5_000, 1_000).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    store
        .create_room(&a, &new_room("r", RoomOrigin::ServerApi), 1_000, &[])
        .await
        .unwrap();
    let m = store
        .mute_in_room(&a, &rid("r"), &uid("bob"), 5_000, 1_000)
        .await
        .unwrap();
    assert_eq!(
        m,
        RoomMute {
            user_id: uid("bob"),
            until: 5_000
        }
    );
    // Muting again replaces the time.
    store
        .mute_in_room(&a, &rid("r"), &uid("bob"), 9_000, 1_100)
        .await
        .unwrap();
    store
        .mute_in_room(&a, &rid("r"), &uid("carol"), 2_000, 1_100)
        .await
        .unwrap();
    assert_eq!(store.room_mute(&a, &rid("r"), &uid("bob")).await.unwrap(), Some(9_000));
    assert_eq!(store.room_mute(&a, &rid("r"), &uid("dave")).await.unwrap(), None);
    assert_eq!(
        store.room_mute(&b, &rid("r"), &uid("bob")).await.unwrap(),
        None,
        "scoped by app"
    );
    // Lists only mutes still in force.
    let now = store.room_mutes(&a, &rid("r"), 1_500, None, 10).await.unwrap();
    assert_eq!(now.len(), 2);
    let later = store.room_mutes(&a, &rid("r"), 3_000, None, 10).await.unwrap();
    assert_eq!(
        later,
        vec![RoomMute {
            user_id: uid("bob"),
            until: 9_000
        }]
    );
    let paged = store
        .room_mutes(&a, &rid("r"), 1_500, Some(&uid("bob")), 10)
        .await
        .unwrap();
    assert_eq!(
        paged.iter().map(|m| m.user_id.as_str()).collect::<Vec<_>>(),
        vec!["carol"]
    );
    store.unmute_in_room(&a, &rid("r"), &uid("bob")).await.unwrap();
    assert!(matches!(
        store.unmute_in_room(&a, &rid("r"), &uid("bob")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.unmute_in_room(&b, &rid("r"), &uid("carol")).await,
        Err(StoreError::NotFound(_))
    ));
}

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

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _dir) = tern_platform::store::testing::sqlite_temp().await;
                    assert_eq!(store.backend(), tern_platform::store::Backend::Sqlite);
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(store) = tern_platform::store::testing::postgres_fresh().await {
                        assert_eq!(store.backend(), tern_platform::store::Backend::Postgres);
                        super::$name(store).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    tenants_have_unique_names,
    apps_have_unique_names_within_a_tenant,
    secret_rotation_keeps_two_active,
    users_upsert_list_delete_ban,
    apps_cannot_see_each_others_data,
    seqs_start_at_one_per_conversation,
    duplicates_return_the_first_message,
    duplicates_inside_one_batch,
    concurrent_batches_get_gapless_seqs,
    concurrent_batches_over_several_conversations,
    concurrent_duplicates_are_stored_once,
    mixed_batch_of_conversations_duplicates_and_a_group,
    a_batch_larger_than_one_statement,
    history_ranges,
    recall_drops_content,
    conversation_list_unread_paging_and_sync,
    mark_read_clamps_and_never_lowers,
    groups_are_one_timeline_with_members,
    group_changes_write_their_notices,
    group_profiles_roles_mutes_and_transfers,
    join_requests_are_answered_once,
    dismissing_removes_everything_of_the_group,
    mentions_mark_only_the_named_entries,
    group_operations_are_scoped_by_app,
    read_positions_of_members,
    outbox_delivery_states,
    claims_lease_events_to_one_worker,
    concurrent_claims_hand_out_each_event_once,
    platform_admins,
    webhook_secrets_rotate_with_a_grace_period,
    migrating_twice_is_a_no_op,
    word_lists_are_versioned_per_app,
    users_are_muted_until_a_time,
    friend_requests_friends_and_deletes,
    mutual_acceptance_at_once,
    blocklists,
    rooms_registry_with_history,
    room_mutes_until_a_time,
    broadcasts_are_leased_jobs,
    concurrent_broadcast_claims_take_each_job_once,
);

// ---- backend-specific lifecycle ------------------------------------------------------

#[tokio::test]
async fn sqlite_is_not_ready_until_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let store = tern_platform::store::connect(&url).await.unwrap();
    assert!(!store.ready().await.unwrap());
    store.migrate().await.unwrap();
    assert!(store.ready().await.unwrap());
}

#[tokio::test]
async fn postgres_is_not_ready_until_migrated() {
    if let Some(store) = tern_platform::store::testing::postgres_unmigrated().await {
        assert!(!store.ready().await.unwrap());
        store.migrate().await.unwrap();
        assert!(store.ready().await.unwrap());
    }
}

#[tokio::test]
async fn a_corrupted_sqlite_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    std::fs::write(
        &path,
        b"this is certainly not a SQLite database, just some garbage bytes".repeat(100),
    )
    .unwrap();
    let url = format!("sqlite://{}", path.display());
    let err = match tern_platform::store::connect(&url).await {
        Ok(store) => store
            .migrate()
            .await
            .err()
            .unwrap_or_else(|| panic!("a corrupted file was accepted")),
        Err(e) => e,
    };
    assert!(
        err.to_string().contains("corrupt.db"),
        "the error names the file: {err}"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable() {
    // Port 1 on loopback: nothing listens there.
    let err = tern_platform::store::connect("postgres://postgres@127.0.0.1:1/none")
        .await
        .err();
    assert!(matches!(err, Some(StoreError::Unavailable(_))), "{err:?}");
}
