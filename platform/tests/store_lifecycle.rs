//! Store conformance for the message lifecycle (replies, edits, recalls, deletes for one
//! user, extensions, reactions and the change log), written once against the `Store` trait
//! and run on SQLite always and on PostgreSQL when `TERN_TEST_DATABASE_URL` is set.
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

async fn app(store: &dyn Store) -> App {
    let t = Tenant {
        id: TenantId::generate(),
        name: format!("tenant-{}", rand::random::<u64>()),
        status: TenantStatus::Active,
        created_at: 1_000,
    };
    store.create_tenant(&t).await.unwrap();
    let id = AppId::generate();
    let new = NewApp {
        first_secret: AppSecretRecord {
            id: SecretId::generate(),
            app_id: id.clone(),
            ciphertext: vec![1, 2, 3],
            created_at: 1_000,
            expires_at: None,
        },
        id,
        tenant_id: t.id,
        name: "app".into(),
        app_key: AppKey::generate(),
        settings: AppSettings::default(),
        webhook_secret_ciphertext: vec![9],
    };
    store.create_app(&new).await.unwrap()
}

fn dm(app: &AppId, from: &str, to: &str, key: &str, reply_to: Option<&MsgId>) -> NewMessage {
    NewMessage {
        app_id: app.clone(),
        msg_id: MsgId::generate(),
        conversation_id: ConversationId::direct(&uid(from), &uid(to)),
        sender: Sender::User(uid(from)),
        client_msg_id: ClientMsgId::parse(key).unwrap(),
        msg_type: MessageType::Text,
        content: json!({ "text": key }),
        created_at: 100,
        participants: vec![uid(from), uid(to)],
        events: Vec::new(),
        reply_to: reply_to.cloned(),
        mentions: Vec::new(),
        mention_all: false,
        push: false,
    }
}

async fn send(store: &dyn Store, m: NewMessage) -> Message {
    match store.commit_messages(&[m]).await.unwrap().pop().unwrap() {
        CommitOutcome::Stored(m) => m,
        CommitOutcome::Duplicate(m) => panic!("duplicate of {}", m.msg_id),
    }
}

fn event(app: &AppId, kind: &str) -> NewOutboxEvent {
    NewOutboxEvent {
        id: format!("wh_{}", ulid::Ulid::new()),
        app_id: app.clone(),
        event_type: kind.into(),
        body: "{}".into(),
        created_at: 1,
    }
}

fn set(key: &str, value: &str, expected: Option<i64>) -> ExtensionUpdate {
    ExtensionUpdate {
        key: key.into(),
        value: Some(value.into()),
        expected_version: expected,
    }
}

fn delete(key: &str, expected: Option<i64>) -> ExtensionUpdate {
    ExtensionUpdate {
        key: key.into(),
        value: None,
        expected_version: expected,
    }
}

fn edit(text: &str, at: UnixMillis, by: &str) -> MessageEdit {
    MessageEdit {
        content: json!({ "text": text }),
        edited_at: at,
        by: Some(uid(by)),
    }
}

async fn entry_version(store: &dyn Store, app: &AppId, user: &str, c: &ConversationId) -> i64 {
    store.conversation(app, &uid(user), c).await.unwrap().unwrap().version
}

async fn changes(store: &dyn Store, app: &AppId, c: &ConversationId, user: &str, since: i64) -> Vec<MessageChange> {
    store.message_changes(app, c, &uid(user), since, 100).await.unwrap()
}

async fn add_reaction(store: &dyn Store, app: &AppId, m: &MsgId, user: &str, r: &str) -> ReactionOutcome {
    store.set_reaction(app, m, &uid(user), r, true, 500).await.unwrap()
}

// ---- tests -----------------------------------------------------------------------------

async fn replies_keep_their_target(store: Arc<dyn Store>) {
    let a = &app(&*store).await.id;
    let first = send(&*store, dm(a, "alice", "bob", "q", None)).await;
    let reply = send(&*store, dm(a, "bob", "alice", "r", Some(&first.msg_id))).await;
    assert_eq!(reply.reply_to.as_ref(), Some(&first.msg_id));
    assert_eq!(first.reply_to, None);
    assert_eq!(
        store.message(a, &reply.msg_id).await.unwrap().unwrap().reply_to,
        Some(first.msg_id.clone())
    );
    let history = store
        .messages(a, &first.conversation_id, SeqRange::After(0), 10)
        .await
        .unwrap();
    assert_eq!(history[1].reply_to, Some(first.msg_id.clone()));
    let entry = store
        .conversation(a, &uid("alice"), &first.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.last_message.unwrap().reply_to, Some(first.msg_id.clone()));

    let mut both = store
        .messages_by_ids(a, &[reply.msg_id.clone(), first.msg_id.clone(), MsgId::generate()])
        .await
        .unwrap();
    both.sort_by_key(|m| m.seq);
    assert_eq!(both, vec![first, reply]);
}

async fn edits_replace_content_and_are_recorded(store: Arc<dyn Store>) {
    let a = &app(&*store).await.id;
    let m = send(&*store, dm(a, "alice", "bob", "e", None)).await;
    let c = &m.conversation_id;
    let before = entry_version(&*store, a, "bob", c).await;
    let out = store
        .edit_message(
            a,
            &m.msg_id,
            &edit("fixed", 300, "alice"),
            &[event(a, "message.edited")],
        )
        .await
        .unwrap();
    let EditOutcome::Edited(edited) = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        (edited.content.clone(), edited.edited_at, edited.seq),
        (json!({"text": "fixed"}), Some(300), m.seq)
    );
    assert!(edited.version > before, "the edit took a change version");
    assert_eq!(store.message(a, &m.msg_id).await.unwrap(), Some(*edited.clone()));
    assert_eq!(
        entry_version(&*store, a, "bob", c).await,
        edited.version,
        "members sync it"
    );
    assert_eq!(store.due_events(i64::MAX, 10).await.unwrap().len(), 1, "with its event");
    let log = changes(&*store, a, c, "bob", before).await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0].version,
            log[0].by.clone(),
            log[0].changed_at,
            log[0].kind.clone()
        ),
        (
            edited.version,
            Some(uid("alice")),
            300,
            ChangeKind::Edited {
                content: json!({"text": "fixed"}),
                edited_at: 300
            }
        )
    );
    assert!(changes(&*store, a, c, "bob", edited.version).await.is_empty());

    let missing = store
        .edit_message(a, &MsgId::generate(), &edit("x", 1, "alice"), &[])
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    store.recall_message(a, &m.msg_id, None, 400, &[]).await.unwrap();
    let late = store
        .edit_message(a, &m.msg_id, &edit("again", 500, "alice"), &[])
        .await
        .unwrap();
    assert_eq!(late, EditOutcome::Recalled);
    assert_eq!(
        store.message(a, &m.msg_id).await.unwrap().unwrap().content,
        serde_json::Value::Null
    );
}

async fn recall_takes_everything_else_away(store: Arc<dyn Store>) {
    let a = &app(&*store).await.id;
    let m = send(&*store, dm(a, "alice", "bob", "r", None)).await;
    let other = send(&*store, dm(a, "bob", "alice", "o", None)).await;
    let c = &m.conversation_id;
    store
        .edit_message(a, &m.msg_id, &edit("v2", 200, "alice"), &[])
        .await
        .unwrap();
    store
        .update_extensions(a, &m.msg_id, None, &[set("k", "v", None)], 210)
        .await
        .unwrap();
    add_reaction(&*store, a, &m.msg_id, "bob", "👍").await;
    add_reaction(&*store, a, &other.msg_id, "alice", "👍").await;
    assert_eq!(changes(&*store, a, c, "bob", 0).await.len(), 4);

    let RecallOutcome::Recalled(recalled) = store
        .recall_message(a, &m.msg_id, Some(&uid("alice")), 300, &[])
        .await
        .unwrap()
    else {
        panic!("not recalled")
    };
    assert!(recalled.recalled);
    assert_eq!(recalled.content, serde_json::Value::Null);
    let log = changes(&*store, a, c, "bob", 0).await;
    let kinds: Vec<(&MsgId, &str)> = log.iter().map(|c| (&c.msg_id, c.kind.as_str())).collect();
    assert_eq!(
        kinds,
        vec![(&other.msg_id, "reaction"), (&m.msg_id, "recall")],
        "the recalled message's earlier changes are gone (the edit's content with them)"
    );
    let ChangeKind::Recalled { message } = &log[1].kind else {
        panic!("{log:?}")
    };
    assert_eq!((message.as_ref(), log[1].by.clone()), (&recalled, Some(uid("alice"))));
    assert!(store
        .message_extensions(a, std::slice::from_ref(&m.msg_id))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .reaction_summaries(a, std::slice::from_ref(&m.msg_id), None, 3)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .reaction_summaries(a, std::slice::from_ref(&other.msg_id), None, 3)
            .await
            .unwrap()
            .len(),
        1,
        "other messages keep theirs"
    );

    let again = store.recall_message(a, &m.msg_id, None, 400, &[]).await.unwrap();
    assert_eq!(again, RecallOutcome::AlreadyRecalled(recalled.clone()));
    assert_eq!(changes(&*store, a, c, "bob", recalled.version).await, vec![]);
    assert_eq!(
        store
            .update_extensions(a, &m.msg_id, None, &[set("k", "v", None)], 500)
            .await
            .unwrap(),
        ExtensionsOutcome::Recalled
    );
    assert_eq!(
        add_reaction(&*store, a, &m.msg_id, "bob", "👍").await,
        ReactionOutcome::Recalled
    );
}

async fn deletes_for_one_user_hide_only_from_them(store: Arc<dyn Store>) {
    let a = &app(&*store).await.id;
    let m1 = send(&*store, dm(a, "alice", "bob", "1", None)).await;
    let m2 = send(&*store, dm(a, "bob", "alice", "2", None)).await;
    let m3 = send(&*store, dm(a, "alice", "bob", "3", None)).await;
    let c = &m1.conversation_id;
    let bob_before = entry_version(&*store, a, "bob", c).await;
    let alice_before = entry_version(&*store, a, "alice", c).await;

    let done = store
        .delete_for_user(a, &uid("bob"), &[m3.clone(), m1.clone()], 700)
        .await
        .unwrap();
    assert_eq!(done.len(), 2);
    assert!(done
        .iter()
        .all(|d| d.kind == ChangeKind::Deleted && d.by == Some(uid("bob"))));
    assert_ne!(done[0].version, done[1].version, "each deletion has its own version");
    assert_eq!(
        store
            .deleted_for_user(
                a,
                &uid("bob"),
                &[m1.msg_id.clone(), m2.msg_id.clone(), m3.msg_id.clone()]
            )
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(store
        .deleted_for_user(a, &uid("alice"), std::slice::from_ref(&m1.msg_id))
        .await
        .unwrap()
        .is_empty());

    let seqs = |v: Vec<Message>| v.iter().map(|m| m.seq).collect::<Vec<_>>();
    let bob = uid("bob");
    assert_eq!(
        seqs(
            store
                .visible_messages(a, c, &bob, SeqRange::After(0), 10)
                .await
                .unwrap()
        ),
        vec![2]
    );
    assert_eq!(
        seqs(
            store
                .visible_messages(a, c, &bob, SeqRange::Before(4), 10)
                .await
                .unwrap()
        ),
        vec![2]
    );
    assert_eq!(
        seqs(
            store
                .visible_messages(a, c, &uid("alice"), SeqRange::After(0), 10)
                .await
                .unwrap()
        ),
        vec![1, 2, 3]
    );

    // The conversation list: bob's last message is the last he kept; alice's is unchanged.
    let bobs = store.conversation(a, &bob, c).await.unwrap().unwrap();
    assert_eq!(bobs.last_message.map(|m| m.msg_id), Some(m2.msg_id.clone()));
    assert!(bobs.version > bob_before, "bob's other devices see the entry change");
    assert_eq!(bobs.last_seq, 3);
    let listed = store.conversations(a, &bob, None, 10).await.unwrap();
    assert_eq!(listed[0].last_message.as_ref().map(|m| &m.msg_id), Some(&m2.msg_id));
    let synced = store
        .conversations_changed_since(a, &bob, bob_before, 10)
        .await
        .unwrap();
    assert_eq!(synced.len(), 1);
    assert_eq!(synced[0].last_message.as_ref().map(|m| &m.msg_id), Some(&m2.msg_id));
    let alices = store.conversation(a, &uid("alice"), c).await.unwrap().unwrap();
    assert_eq!(alices.last_message.map(|m| m.msg_id), Some(m3.msg_id.clone()));
    assert_eq!(alices.version, alice_before, "alice's entry did not change");
    assert!(store
        .conversations_changed_since(a, &uid("alice"), alice_before, 10)
        .await
        .unwrap()
        .is_empty());
    let read = store.mark_read(a, &bob, c, 3).await.unwrap();
    assert_eq!(read.last_message.map(|m| m.msg_id), Some(m2.msg_id.clone()));

    // Deleting again changes nothing; the log shows bob his deletions, alice nothing.
    assert!(store
        .delete_for_user(a, &bob, std::slice::from_ref(&m1), 800)
        .await
        .unwrap()
        .is_empty());
    let bobs_log = changes(&*store, a, c, "bob", 0).await;
    assert_eq!(bobs_log, done, "lowest version first, as they were taken");
    assert!(changes(&*store, a, c, "alice", 0).await.is_empty());

    // Changes to a message bob deleted reach alice's log, not his.
    store
        .edit_message(a, &m3.msg_id, &edit("edited", 900, "alice"), &[])
        .await
        .unwrap();
    assert_eq!(changes(&*store, a, c, "alice", 0).await.len(), 1);
    assert_eq!(changes(&*store, a, c, "bob", 0).await.len(), 2);

    // Everything deleted: the entry shows no last message.
    store
        .delete_for_user(a, &bob, std::slice::from_ref(&m2), 950)
        .await
        .unwrap();
    assert_eq!(
        store.conversation(a, &bob, c).await.unwrap().unwrap().last_message,
        None
    );
}

async fn extensions_compare_and_set_per_key(store: Arc<dyn Store>) {
    let a = &app(&*store).await.id;
    let m = send(&*store, dm(a, "alice", "bob", "x", None)).await;
    let id = &m.msg_id;
    let by = uid("bob");

    let out = store
        .update_extensions(
            a,
            id,
            Some(&by),
            &[set("vote", "yes", Some(0)), set("n", "1", None)],
            10,
        )
        .await
        .unwrap();
    let ExtensionsOutcome::Applied {
        message,
        change,
        extensions,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        extensions
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.version))
            .collect::<Vec<_>>(),
        vec![("n", "1", 1), ("vote", "yes", 1)]
    );
    assert_eq!(extensions[0].updated_by, Some(by.clone()));
    assert_eq!(change.version, message.version);
    assert_eq!(
        change.kind,
        ChangeKind::Extensions {
            items: vec![
                ExtensionChange {
                    key: "vote".into(),
                    value: Some("yes".into()),
                    version: 1
                },
                ExtensionChange {
                    key: "n".into(),
                    value: Some("1".into()),
                    version: 1
                },
            ]
        }
    );

    // A stale version changes nothing, not even the other keys of the update.
    let stale = store
        .update_extensions(a, id, None, &[set("n", "2", None), set("vote", "no", Some(0))], 20)
        .await
        .unwrap();
    assert_eq!(
        stale,
        ExtensionsOutcome::Conflict {
            key: "vote".into(),
            version: 1
        }
    );
    let now = store.message_extensions(a, std::slice::from_ref(id)).await.unwrap();
    assert_eq!(
        now.iter().map(|(_, e)| e.value.as_str()).collect::<Vec<_>>(),
        vec!["1", "yes"]
    );

    let ok = store
        .update_extensions(a, id, None, &[set("vote", "no", Some(1))], 30)
        .await
        .unwrap();
    assert!(matches!(ok, ExtensionsOutcome::Applied { .. }), "{ok:?}");

    // A deleted key keeps counting: re-creating it needs its current version.
    let gone = store
        .update_extensions(a, id, None, &[delete("vote", Some(2))], 40)
        .await
        .unwrap();
    let ExtensionsOutcome::Applied { change, extensions, .. } = gone else {
        panic!("{gone:?}")
    };
    assert_eq!(extensions.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), vec!["n"]);
    assert_eq!(
        change.kind,
        ChangeKind::Extensions {
            items: vec![ExtensionChange {
                key: "vote".into(),
                value: None,
                version: 3
            }]
        }
    );
    assert_eq!(
        store
            .update_extensions(a, id, None, &[set("vote", "x", Some(0))], 50)
            .await
            .unwrap(),
        ExtensionsOutcome::Conflict {
            key: "vote".into(),
            version: 3
        }
    );
    assert_eq!(
        store
            .update_extensions(a, id, None, &[delete("nothing", None)], 55)
            .await
            .unwrap(),
        ExtensionsOutcome::Unchanged {
            extensions: extensions.clone()
        }
    );
    let back = store
        .update_extensions(a, id, None, &[set("vote", "x", Some(3))], 60)
        .await
        .unwrap();
    assert!(matches!(back, ExtensionsOutcome::Applied { .. }), "{back:?}");

    // At most MAX_EXTENSIONS_PER_MESSAGE keys, checked as a whole.
    for batch in 0..5 {
        let updates: Vec<_> = (0..20).map(|i| set(&format!("k{batch}-{i}"), "v", None)).collect();
        let out = store.update_extensions(a, id, None, &updates, 70).await.unwrap();
        if batch < 4 {
            assert!(matches!(out, ExtensionsOutcome::Applied { .. }), "{out:?}");
        } else {
            assert_eq!(out, ExtensionsOutcome::TooMany, "102 keys");
        }
    }
    assert_eq!(
        store
            .message_extensions(a, std::slice::from_ref(id))
            .await
            .unwrap()
            .len(),
        82
    );

    let missing = store
        .update_extensions(a, &MsgId::generate(), None, &[set("k", "v", None)], 1)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    let log = changes(&*store, a, &m.conversation_id, "alice", 0).await;
    assert_eq!(log.len(), 8, "one record per applied update");
}

async fn reactions_count_users_and_stay_bounded(store: Arc<dyn Store>) {
    let a = &app(&*store).await.id;
    let m = send(&*store, dm(a, "alice", "bob", "x", None)).await;
    let plain = send(&*store, dm(a, "alice", "bob", "y", None)).await;
    let id = &m.msg_id;

    let out = add_reaction(&*store, a, id, "bob", "👍").await;
    let ReactionOutcome::Applied {
        summary,
        change,
        message,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        (summary.count, summary.reacted, summary.users.clone()),
        (1, true, vec![uid("bob")])
    );
    assert_eq!(message.version, change.version);
    assert_eq!(
        change.kind,
        ChangeKind::Reaction {
            reaction: "👍".into(),
            user_id: uid("bob"),
            added: true,
            count: 1
        }
    );
    store.set_reaction(a, id, &uid("alice"), "👍", true, 600).await.unwrap();
    store.set_reaction(a, id, &uid("alice"), "🎉", true, 700).await.unwrap();
    for u in ["carol", "dave", "erin"] {
        store.set_reaction(a, id, &uid(u), "🎉", true, 800).await.unwrap();
    }
    let again = add_reaction(&*store, a, id, "bob", "👍").await;
    assert!(
        matches!(again, ReactionOutcome::Unchanged { ref summary } if summary.count == 2),
        "{again:?}"
    );

    let seen = store
        .reaction_summaries(a, &[id.clone(), plain.msg_id.clone()], Some(&uid("bob")), 3)
        .await
        .unwrap();
    let shown: Vec<(&str, i64, bool, Vec<&str>)> = seen
        .iter()
        .map(|(_, s)| {
            (
                s.reaction.as_str(),
                s.count,
                s.reacted,
                s.users.iter().map(UserId::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            ("👍", 2, true, vec!["bob", "alice"]),
            ("🎉", 4, false, vec!["alice", "carol", "dave"]),
        ],
        "first used first; the first three users, earliest first"
    );
    assert!(seen.iter().all(|(m, _)| m == id));
    let anonymous = store
        .reaction_summaries(a, std::slice::from_ref(id), None, 3)
        .await
        .unwrap();
    assert!(anonymous.iter().all(|(_, s)| !s.reacted));

    // Who reacted, paged by (time, user).
    let page1 = store.reaction_users(a, id, "🎉", None, 2).await.unwrap();
    assert_eq!(
        page1.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>(),
        vec!["alice", "carol"]
    );
    let page2 = store
        .reaction_users(a, id, "🎉", page1.last().cloned().map(|(u, t)| (t, u)), 10)
        .await
        .unwrap();
    assert_eq!(
        page2.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>(),
        vec!["dave", "erin"]
    );

    let removed = store.set_reaction(a, id, &uid("bob"), "👍", false, 900).await.unwrap();
    let ReactionOutcome::Applied { summary, change, .. } = removed else {
        panic!("{removed:?}")
    };
    assert_eq!((summary.count, summary.reacted), (1, false));
    assert!(matches!(
        change.kind,
        ChangeKind::Reaction {
            added: false,
            count: 1,
            ..
        }
    ));
    let twice = store.set_reaction(a, id, &uid("bob"), "👍", false, 901).await.unwrap();
    assert!(matches!(twice, ReactionOutcome::Unchanged { .. }), "{twice:?}");

    // Limits: reactions per user, distinct reactions per message.
    for i in 0..MAX_REACTIONS_PER_USER {
        let r = format!("r{i}");
        let out = store
            .set_reaction(a, &plain.msg_id, &uid("zed"), &r, true, 1000)
            .await
            .unwrap();
        assert!(matches!(out, ReactionOutcome::Applied { .. }), "{out:?}");
    }
    let over = store
        .set_reaction(a, &plain.msg_id, &uid("zed"), "one-more", true, 1000)
        .await
        .unwrap();
    assert!(matches!(over, ReactionOutcome::TooMany(_)), "{over:?}");
    // 20 distinct so far: two more users bring the message to its 50 distinct reactions.
    for i in 0..MAX_REACTIONS_PER_USER {
        let out = store
            .set_reaction(a, &plain.msg_id, &uid("u1"), &format!("a{i}"), true, 1000)
            .await
            .unwrap();
        assert!(matches!(out, ReactionOutcome::Applied { .. }), "{out:?}");
    }
    let left = MAX_REACTIONS_PER_MESSAGE - 2 * MAX_REACTIONS_PER_USER;
    for i in 0..left {
        let out = store
            .set_reaction(a, &plain.msg_id, &uid("u2"), &format!("b{i}"), true, 1000)
            .await
            .unwrap();
        assert!(matches!(out, ReactionOutcome::Applied { .. }), "{out:?}");
    }
    let full = store
        .set_reaction(a, &plain.msg_id, &uid("u2"), "one-too-many", true, 1000)
        .await
        .unwrap();
    assert!(
        matches!(&full, ReactionOutcome::TooMany(why) if why.contains(&MAX_REACTIONS_PER_MESSAGE.to_string())),
        "{full:?}"
    );
    assert_eq!(
        store
            .reaction_summaries(a, std::slice::from_ref(&plain.msg_id), None, 3)
            .await
            .unwrap()
            .len(),
        MAX_REACTIONS_PER_MESSAGE
    );
    // An existing reaction can still be added by someone new.
    let joined = store
        .set_reaction(a, &plain.msg_id, &uid("u2"), "r0", true, 1000)
        .await
        .unwrap();
    assert!(matches!(joined, ReactionOutcome::Applied { .. }), "{joined:?}");
}

async fn changes_page_by_version(store: Arc<dyn Store>) {
    let a = &app(&*store).await.id;
    let m = send(&*store, dm(a, "alice", "bob", "x", None)).await;
    let c = &m.conversation_id;
    for i in 0..5 {
        store
            .set_reaction(a, &m.msg_id, &uid("bob"), &format!("r{i}"), true, 10 + i)
            .await
            .unwrap();
    }
    let all = changes(&*store, a, c, "alice", 0).await;
    assert_eq!(all.len(), 5);
    let versions: Vec<i64> = all.iter().map(|c| c.version).collect();
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(versions, sorted, "lowest version first, each once");
    let page = store.message_changes(a, c, &uid("alice"), 0, 2).await.unwrap();
    assert_eq!(page, all[..2].to_vec());
    let rest = store
        .message_changes(a, c, &uid("alice"), page[1].version, 10)
        .await
        .unwrap();
    assert_eq!(rest, all[2..].to_vec());
    let other = ConversationId::direct(&uid("alice"), &uid("carol"));
    assert!(changes(&*store, a, &other, "alice", 0).await.is_empty());
}

async fn lifecycle_is_scoped_to_the_app(store: Arc<dyn Store>) {
    let a = &app(&*store).await.id;
    let b = &app(&*store).await.id;
    let m = send(&*store, dm(a, "alice", "bob", "x", None)).await;
    let id = &m.msg_id;
    store.set_reaction(a, id, &uid("bob"), "👍", true, 1).await.unwrap();
    store
        .update_extensions(a, id, None, &[set("k", "v", None)], 1)
        .await
        .unwrap();

    assert!(store
        .messages_by_ids(b, std::slice::from_ref(id))
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.edit_message(b, id, &edit("x", 1, "alice"), &[]).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.recall_message(b, id, None, 1, &[]).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.update_extensions(b, id, None, &[set("k", "w", None)], 1).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.set_reaction(b, id, &uid("bob"), "👍", true, 1).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store
        .message_extensions(b, std::slice::from_ref(id))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .reaction_summaries(b, std::slice::from_ref(id), None, 3)
        .await
        .unwrap()
        .is_empty());
    assert!(store.reaction_users(b, id, "👍", None, 10).await.unwrap().is_empty());
    assert!(changes(&*store, b, &m.conversation_id, "bob", 0).await.is_empty());
    // Deleting app a's message "in" app b leaves app a's view alone.
    store
        .delete_for_user(b, &uid("bob"), std::slice::from_ref(&m), 1)
        .await
        .unwrap();
    assert!(store
        .deleted_for_user(a, &uid("bob"), std::slice::from_ref(id))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .message_extensions(a, std::slice::from_ref(id))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn concurrent_compare_and_set_lets_one_win(store: Arc<dyn Store>) {
    let a = app(&*store).await.id;
    let m = send(&*store, dm(&a, "alice", "bob", "x", None)).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, a, id) = (store.clone(), a.clone(), m.msg_id.clone());
            tokio::spawn(async move {
                let update = set("k", &format!("writer {i}"), Some(0));
                store.update_extensions(&a, &id, None, &[update], 10).await.unwrap()
            })
        })
        .collect();
    let mut won = Vec::new();
    let mut lost = 0;
    for t in tasks {
        match t.await.unwrap() {
            ExtensionsOutcome::Applied { extensions, .. } => won.push(extensions),
            ExtensionsOutcome::Conflict { key, version } => {
                assert_eq!((key.as_str(), version), ("k", 1));
                lost += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((won.len(), lost), (1, 7), "exactly one writer saw version 0");
    let stored = store
        .message_extensions(&a, std::slice::from_ref(&m.msg_id))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, won[0][0], "the winner's value is the one stored");

    // Concurrent reactions of different users all count, each change with its own version.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, a, id) = (store.clone(), a.clone(), m.msg_id.clone());
            tokio::spawn(async move {
                store
                    .set_reaction(&a, &id, &uid(&format!("u{i}")), "👍", true, 20)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut versions = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            ReactionOutcome::Applied { change, .. } => versions.push(change.version),
            other => panic!("{other:?}"),
        }
    }
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), 8);
    let summary = store
        .reaction_summaries(&a, std::slice::from_ref(&m.msg_id), None, 3)
        .await
        .unwrap();
    assert_eq!(summary[0].1.count, 8);
    let log = changes(&*store, &a, &m.conversation_id, "bob", 0).await;
    assert_eq!(log.len(), 9, "one extension change and eight reactions");
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _dir) = tern_platform::store::testing::sqlite_temp().await;
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(store) = tern_platform::store::testing::postgres_fresh().await {
                        super::$name(store).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    replies_keep_their_target,
    edits_replace_content_and_are_recorded,
    recall_takes_everything_else_away,
    deletes_for_one_user_hide_only_from_them,
    extensions_compare_and_set_per_key,
    reactions_count_users_and_stay_bounded,
    changes_page_by_version,
    lifecycle_is_scoped_to_the_app,
    concurrent_compare_and_set_lets_one_win,
);
