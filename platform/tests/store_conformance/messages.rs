//! Conformance of `MessageStore`: the group commit (seqs, duplicates, concurrency, batch size),
//! history, recall, conversation lists and read state.

use std::sync::Arc;

use serde_json::json;
use tern_platform::domain::*;
use tern_platform::ids::*;
use tern_platform::store::*;

use crate::fixtures::*;

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

/// A batch that fails part-way writes nothing: no message, no seq, no entry, no event; the
/// next batch goes on from where the store was.
async fn a_failing_batch_writes_nothing(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let a = &app.id;
    let mut first = dm(a, "alice", "bob", "before", 10);
    first.events = vec![event(a, 10)];
    let taken = first.events[0].id.clone();
    commit_one(&*store, first).await;
    let entry_before = store
        .conversation(a, &uid("bob"), &direct("alice", "bob"))
        .await
        .unwrap();

    // The second message of the batch reuses a stored event's id: the insert fails.
    let mut clash = dm(a, "carol", "bob", "clash", 20);
    clash.events = vec![NewOutboxEvent {
        id: taken,
        ..event(a, 20)
    }];
    let batch = vec![dm(a, "alice", "bob", "lost", 20), clash];
    let err = store.commit_messages(&batch).await.expect_err("the batch must fail");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    let history = store
        .messages(a, &direct("alice", "bob"), SeqRange::After(0), 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "nothing of the failed batch is stored");
    assert!(store
        .message_by_client_msg_id(a, "alice", &cmid("lost"))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .conversation(a, &uid("carol"), &direct("carol", "bob"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .conversation(a, &uid("bob"), &direct("alice", "bob"))
            .await
            .unwrap(),
        entry_before
    );
    assert_eq!(store.due_events(i64::MAX, 10).await.unwrap().len(), 1);

    // The store still takes batches, and the seq goes on with no gap.
    let next = stored(&commit_one(&*store, dm(a, "alice", "bob", "after", 30)).await).clone();
    assert_eq!(next.seq, 2);
}

conformance!(
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
    a_failing_batch_writes_nothing,
);
