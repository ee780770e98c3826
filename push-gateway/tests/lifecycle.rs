//! The message lifecycle from the SDK over real sockets, on every configured store: each
//! change (edit, recall, reaction, extension, delete for one user) reaches every online
//! device of every member once, a device that was offline sees each exactly once when it
//! reconnects, replies quote their message as it is now, and windows, permissions, other
//! apps' ids and bad input get stable codes. Server-side actions go through the same
//! platform operations the server API calls (tenant-api/tests/lifecycle.rs drives those
//! over REST and gRPC).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::*;
use tern_platform::delivery::Actor;
use tern_platform::domain::{now_ms, JoinPolicy};
use tern_platform::ids::{GroupId, MsgId, UserId};
use tern_platform::lifecycle;
use tern_platform::store::{GroupRecord, NewGroup};
use tern_sdk::{ChangeKind, Event, Events, ExtensionUpdate, Message, MessageChange, Target};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn mid(s: &str) -> MsgId {
    MsgId::parse(s).unwrap()
}

fn text(t: &str) -> Value {
    json!({ "text": t })
}

fn to(user: &str) -> Target {
    Target::User(user.into())
}

/// The next `n` messages (other events skipped).
async fn messages(ev: &mut Events, n: usize) -> Vec<Message> {
    let mut out = Vec::new();
    while out.len() < n {
        out.push(
            next_matching(ev, |e| match e {
                Event::Message(m) => Some(m),
                _ => None,
            })
            .await,
        );
    }
    out
}

/// The next `n` changes (other events skipped).
async fn changes(ev: &mut Events, n: usize) -> Vec<MessageChange> {
    let mut out = Vec::new();
    while out.len() < n {
        out.push(
            next_matching(ev, |e| match e {
                Event::Changed(c) => Some(c),
                _ => None,
            })
            .await,
        );
    }
    out
}

/// No change and no message arrives within a short settle time (used once everything
/// expected has arrived, to catch repeats; never the pass condition on its own).
async fn nothing_more(ev: &mut Events) {
    let extra = tokio::time::timeout(Duration::from_millis(600), async {
        loop {
            match ev.next().await {
                Some(e @ (Event::Changed(_) | Event::Message(_))) => return Some(e),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await;
    if let Ok(Some(e)) = extra {
        panic!("unexpected extra event: {e:?}");
    }
}

/// `(msg_id, kind)` of each change, kinds named as in the protocol.
fn kinds(v: &[MessageChange]) -> Vec<(String, &'static str)> {
    v.iter()
        .map(|c| {
            let k = match c.kind {
                ChangeKind::Recalled => "recall",
                ChangeKind::Edited { .. } => "edit",
                ChangeKind::Extensions(_) => "extensions",
                ChangeKind::Reaction { .. } => "reaction",
                ChangeKind::Deleted => "deleted",
            };
            (c.msg_id.clone(), k)
        })
        .collect()
}

fn code(e: tern_sdk::ClientError) -> String {
    e.code().unwrap_or("<no code>").to_owned()
}

async fn wait_connected(ev: &mut Events) {
    next_matching(ev, |e| {
        matches!(e, Event::Connection(tern_sdk::ConnectionState::Connected)).then_some(())
    })
    .await;
}

/// Gives `user` a role in a group: role management is the groups API's; here the row is set
/// directly, as that API will.
async fn set_role(db_url: &str, group: &str, user: &str, role: &str) {
    let sql = "UPDATE group_members SET role = $1 WHERE group_id = $2 AND user_id = $3";
    if db_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(db_url).await.unwrap();
        sqlx::query(sql)
            .bind(role)
            .bind(group)
            .bind(user)
            .execute(&pool)
            .await
            .unwrap();
    } else {
        let pool = sqlx::PgPool::connect(db_url).await.unwrap();
        sqlx::query(sql)
            .bind(role)
            .bind(group)
            .bind(user)
            .execute(&pool)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_reaches_every_online_device_once() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|_| {}).await;
        app.users(&env, &["alice", "bob"]).await;
        let server = env.start(None).await;
        let (phone, mut phone_ev) = connect(&server.url, &app, "alice", "phone").await;
        let (laptop, mut laptop_ev) = connect(&server.url, &app, "alice", "laptop").await;
        let (bob, mut bob_ev) = connect(&server.url, &app, "bob", "b-phone").await;

        let m1 = phone.send(to("bob"), "text", text("original")).await.unwrap();
        let m2 = bob
            .reply(to("alice"), &m1.msg_id, "text", text("answer"))
            .await
            .unwrap();
        for ev in [&mut phone_ev, &mut laptop_ev, &mut bob_ev] {
            let got = messages(ev, 2).await;
            assert_eq!(got[1].reply_to.as_deref(), Some(m1.msg_id.as_str()));
            let quoted = got[1].quoted.as_ref().unwrap();
            assert_eq!((quoted.seq, quoted.content["text"].as_str()), (1, Some("original")));
        }

        let edited = phone.edit(&m1.msg_id, text("corrected")).await.unwrap();
        assert_eq!(edited.content, text("corrected"));
        assert!(edited.edited_at.is_some() && edited.version > 0);
        let thumbs = bob.add_reaction(&m1.msg_id, "👍").await.unwrap();
        assert_eq!(
            (thumbs.count, thumbs.reacted, thumbs.users.clone()),
            (1, true, vec!["bob".to_owned()])
        );
        let ext = laptop
            .update_extensions(&m2.msg_id, &[ExtensionUpdate::set("todo", "done").if_version(0)])
            .await
            .unwrap();
        assert_eq!(
            (ext[0].key.as_str(), ext[0].version, ext[0].updated_by.as_deref()),
            ("todo", 1, Some("alice"))
        );
        phone.delete_for_me(&[&m2.msg_id]).await.unwrap();
        lifecycle::recall(&server.pipeline, &app.app, &Actor::Server, &mid(&m1.msg_id))
            .await
            .unwrap();

        // Alice's devices see all five, Bob's device all but Alice's delete for herself.
        let all = |with_delete: bool| {
            let mut k = vec![
                (m1.msg_id.clone(), "edit"),
                (m1.msg_id.clone(), "reaction"),
                (m2.msg_id.clone(), "extensions"),
            ];
            if with_delete {
                k.push((m2.msg_id.clone(), "deleted"));
            }
            k.push((m1.msg_id.clone(), "recall"));
            k
        };
        for (ev, with_delete) in [(&mut phone_ev, true), (&mut laptop_ev, true), (&mut bob_ev, false)] {
            let got = changes(ev, if with_delete { 5 } else { 4 }).await;
            assert_eq!(kinds(&got), all(with_delete));
            let versions: Vec<i64> = got.iter().map(|c| c.version).collect();
            assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
            assert_eq!(
                got[0].kind,
                ChangeKind::Edited {
                    content: text("corrected"),
                    edited_at: edited.edited_at.unwrap()
                }
            );
            assert_eq!(got[0].by.as_deref(), Some("alice"));
            assert!(
                matches!(&got[1].kind, ChangeKind::Reaction { reaction, user_id, added: true, count: 1 }
                if reaction == "👍" && user_id == "bob")
            );
            assert_eq!(got.last().unwrap().by, None, "recalled by the app");
        }
        for ev in [&mut phone_ev, &mut laptop_ev, &mut bob_ev] {
            nothing_more(ev).await;
        }

        // What each side reads now.
        let bobs = bob.history("d:alice:bob", 0, 10).await.unwrap();
        assert!(bobs[0].recalled && bobs[0].content.is_null() && bobs[0].reactions.is_empty());
        assert!(bobs[1].quoted.as_ref().unwrap().recalled, "the quote shows the recall");
        assert_eq!(bobs[1].extensions[0].value, "done");
        let alices = laptop.history("d:alice:bob", 0, 10).await.unwrap();
        assert_eq!(
            alices.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![1],
            "m2 is deleted for her"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_was_offline_sees_each_change_once_when_it_reconnects() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|_| {}).await;
        app.users(&env, &["alice", "bob"]).await;
        let server = env.start(None).await;
        let proxy = Proxy::start(server.addr).await;
        let phone_link = Proxy::start(server.addr).await;
        let (phone, mut phone_ev) = connect(&phone_link.url, &app, "alice", "phone").await;
        let (_laptop, mut laptop_ev) = connect(&proxy.url, &app, "alice", "laptop").await;
        let (bob, mut bob_ev) = connect(&server.url, &app, "bob", "b-phone").await;

        let b1 = bob.send(to("alice"), "text", text("b1")).await.unwrap();
        let b2 = bob.send(to("alice"), "text", text("b2")).await.unwrap();
        let a1 = phone.send(to("bob"), "text", text("a1")).await.unwrap();
        assert_eq!(messages(&mut laptop_ev, 3).await.len(), 3);

        proxy.set_down(true);
        disconnected(&mut laptop_ev).await;
        // While the laptop is away:
        bob.edit(&b1.msg_id, text("b1, edited")).await.unwrap();
        phone.add_reaction(&b2.msg_id, "❤").await.unwrap();
        bob.update_extensions(&a1.msg_id, &[ExtensionUpdate::set("seen", "yes")])
            .await
            .unwrap();
        phone.delete_for_me(&[&b2.msg_id]).await.unwrap();
        lifecycle::recall(&server.pipeline, &app.app, &Actor::Server, &mid(&b1.msg_id))
            .await
            .unwrap();
        let b3 = bob.send(to("alice"), "text", text("b3")).await.unwrap();
        let live = changes(&mut phone_ev, 5).await;
        assert_eq!(
            kinds(&live),
            vec![
                (b1.msg_id.clone(), "edit"),
                (b2.msg_id.clone(), "reaction"),
                (a1.msg_id.clone(), "extensions"),
                (b2.msg_id.clone(), "deleted"),
                (b1.msg_id.clone(), "recall"),
            ]
        );
        assert_eq!(changes(&mut bob_ev, 4).await.len(), 4, "all but alice's delete");

        proxy.set_down(false);
        wait_connected(&mut laptop_ev).await;
        // The laptop catches up: the new message, and the changes as they stand: b1's edit
        // went with its recall, b2's reaction with alice's delete of it.
        let caught: Vec<MessageChange> = changes(&mut laptop_ev, 3).await;
        assert_eq!(
            kinds(&caught),
            vec![
                (a1.msg_id.clone(), "extensions"),
                (b2.msg_id.clone(), "deleted"),
                (b1.msg_id.clone(), "recall"),
            ]
        );
        assert_eq!(
            caught.iter().map(|c| c.version).collect::<Vec<_>>(),
            live[2..].iter().map(|c| c.version).collect::<Vec<_>>(),
            "the same changes the phone saw live"
        );
        let new = messages(&mut laptop_ev, 1).await;
        assert_eq!(new[0].msg_id, b3.msg_id);
        nothing_more(&mut laptop_ev).await;

        // Reconnecting again repeats nothing; nor does the phone's first reconnect, whose
        // pull covers the changes it saw live.
        proxy.cut();
        phone_link.cut();
        wait_connected(&mut laptop_ev).await;
        wait_connected(&mut phone_ev).await;
        nothing_more(&mut laptop_ev).await;
        nothing_more(&mut phone_ev).await;
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_roles_windows_and_what_members_see() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env
            .app(|s| {
                s.recall_window_seconds = 0;
            })
            .await;
        app.users(&env, &["alice", "bob", "carol", "dave"]).await;
        let server = env.start(None).await;
        let group = NewGroup {
            id: GroupId::parse("g1").unwrap(),
            name: "G".into(),
            owner: uid("alice"),
            members: vec![uid("bob"), uid("carol")],
            metadata: json!({}),
            avatar_url: None,
            announcement: String::new(),
            join_policy: JoinPolicy::InviteOnly,
            member_limit: 100,
            notice: None,
            events: Vec::new(),
        };
        server.store.create_group(&app.app.id, &group, now_ms()).await.unwrap();
        let g = Target::Group("g1".into());
        let (alice, _alice_ev) = connect(&server.url, &app, "alice", "a").await;
        let (bob, mut bob_ev) = connect(&server.url, &app, "bob", "b").await;
        let (carol, mut carol_ev) = connect(&server.url, &app, "carol", "c").await;

        let g1 = bob.send(g.clone(), "text", text("from bob")).await.unwrap();
        let g2 = alice.send(g.clone(), "text", text("from alice")).await.unwrap();
        carol.add_reaction(&g1.msg_id, "👍").await.unwrap();
        bob.add_reaction(&g1.msg_id, "👍").await.unwrap();
        alice.add_reaction(&g1.msg_id, "🎉").await.unwrap();
        carol
            .update_extensions(&g1.msg_id, &[ExtensionUpdate::set("poll:a", "1")])
            .await
            .unwrap();

        // Read with the message: counts, the reader's own, the first users.
        let seen = bob.history("g:g1", 0, 10).await.unwrap();
        let r = &seen[0].reactions;
        assert_eq!(
            r.iter()
                .map(|r| (r.reaction.as_str(), r.count, r.reacted))
                .collect::<Vec<_>>(),
            vec![("👍", 2, true), ("🎉", 1, false)]
        );
        assert_eq!(r[0].users, vec!["carol", "bob"]);
        assert_eq!(seen[0].extensions[0].key, "poll:a");
        let page = alice.reaction_users(&g1.msg_id, "👍", None, 1).await.unwrap();
        assert_eq!(
            page.users.iter().map(|u| u.0.as_str()).collect::<Vec<_>>(),
            vec!["carol"]
        );
        let rest = alice
            .reaction_users(&g1.msg_id, "👍", page.next_cursor.as_deref(), 1)
            .await
            .unwrap();
        assert_eq!(rest.users.iter().map(|u| u.0.as_str()).collect::<Vec<_>>(), vec!["bob"]);

        // A member who joins later sees (and touches) only what followed.
        server
            .store
            .add_group_members(&app.app.id, &group.id, &[uid("dave")], 100, now_ms(), &|_| {
                GroupRecord::default()
            })
            .await
            .unwrap();
        let (dave, _dave_ev) = connect(&server.url, &app, "dave", "d").await;
        assert_eq!(
            code(dave.add_reaction(&g1.msg_id, "👍").await.unwrap_err()),
            "not_found"
        );
        assert_eq!(
            code(dave.reply(g.clone(), &g1.msg_id, "text", text("re")).await.unwrap_err()),
            "not_found"
        );

        // Recall: the window is 0, so senders cannot; the owner and admins can, anyone's.
        assert_eq!(code(bob.recall(&g1.msg_id).await.unwrap_err()), "recall_window_passed");
        assert_eq!(code(carol.recall(&g2.msg_id).await.unwrap_err()), "forbidden");
        alice.recall(&g1.msg_id).await.unwrap();
        set_role(&env.db_url, "g1", "carol", "admin").await;
        carol.recall(&g2.msg_id).await.unwrap();
        for ev in [&mut bob_ev, &mut carol_ev] {
            let got: Vec<MessageChange> = changes(ev, 6).await;
            let recalls: Vec<(String, Option<String>)> = got
                .iter()
                .filter(|c| c.kind == ChangeKind::Recalled)
                .map(|c| (c.msg_id.clone(), c.by.clone()))
                .collect();
            assert_eq!(
                recalls,
                vec![
                    (g1.msg_id.clone(), Some("alice".to_owned())),
                    (g2.msg_id.clone(), Some("carol".to_owned()))
                ]
            );
        }
        assert_eq!(
            code(carol.add_reaction(&g1.msg_id, "👍").await.unwrap_err()),
            "message_recalled"
        );
        assert_eq!(
            code(bob.reply(g.clone(), &g1.msg_id, "text", text("re")).await.unwrap_err()),
            "message_recalled"
        );
        let after = bob.history("g:g1", 0, 10).await.unwrap();
        assert!(after
            .iter()
            .all(|m| m.recalled && m.reactions.is_empty() && m.extensions.is_empty()));
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_are_checked_like_sends_and_refused_past_the_window() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|s| s.max_text_bytes = 64).await;
        let closed = env.app(|s| s.edit_window_seconds = 0).await;
        app.users(&env, &["alice", "bob", "carol"]).await;
        closed.users(&env, &["alice", "bob"]).await;
        let server = env.start(None).await;
        let (alice, _a) = connect(&server.url, &app, "alice", "a").await;
        let (bob, mut bob_ev) = connect(&server.url, &app, "bob", "b").await;
        let (carol, _c) = connect(&server.url, &app, "carol", "c").await;
        let m = alice.send(to("bob"), "text", text("hello")).await.unwrap();
        messages(&mut bob_ev, 1).await;

        assert_eq!(
            code(bob.edit(&m.msg_id, text("mine now")).await.unwrap_err()),
            "forbidden"
        );
        assert_eq!(code(carol.edit(&m.msg_id, text("x")).await.unwrap_err()), "not_found");
        assert_eq!(
            code(alice.edit(&m.msg_id, json!({"text": ""})).await.unwrap_err()),
            "invalid_argument"
        );
        assert_eq!(
            code(
                alice
                    .edit(&m.msg_id, json!({"url": "https://x/y.png"}))
                    .await
                    .unwrap_err()
            ),
            "invalid_argument"
        );
        assert_eq!(
            code(alice.edit(&m.msg_id, text(&"x".repeat(65))).await.unwrap_err()),
            "content_too_large"
        );
        assert_eq!(
            code(alice.edit("m_nonsense", text("x")).await.unwrap_err()),
            "not_found"
        );

        // The app's word lists apply to edits as to sends.
        let words = |name: &str, policy, list: &[&str]| tern_platform::domain::WordList {
            name: name.into(),
            policy,
            words: list.iter().map(|w| w.to_string()).collect(),
            created_at: 0,
            updated_at: 0,
        };
        let store = &server.store;
        store
            .put_word_list(
                &app.app.id,
                &words("mild", tern_platform::domain::WordPolicy::Replace, &["darn"]),
                50,
            )
            .await
            .unwrap();
        store
            .put_word_list(
                &app.app.id,
                &words("hard", tern_platform::domain::WordPolicy::Reject, &["forbidden"]),
                50,
            )
            .await
            .unwrap();
        server.pipeline.word_filter().forget(&app.app.id);
        assert_eq!(
            code(alice.edit(&m.msg_id, text("so forbidden")).await.unwrap_err()),
            "content_rejected"
        );
        let masked = alice.edit(&m.msg_id, text("darn it")).await.unwrap();
        assert_eq!(masked.content, text("**** it"));
        let pushed = changes(&mut bob_ev, 1).await;
        assert_eq!(
            pushed[0].kind,
            ChangeKind::Edited {
                content: text("**** it"),
                edited_at: masked.edited_at.unwrap()
            }
        );

        // A muted sender cannot edit either.
        store
            .set_user_mute(&app.app.id, &uid("alice"), Some(now_ms() + 60_000))
            .await
            .unwrap();
        server.pipeline.forget_user(&app.app, &uid("alice"));
        assert_eq!(
            code(alice.edit(&m.msg_id, text("still me")).await.unwrap_err()),
            "user_muted"
        );

        // An app with an edit window of 0: senders cannot edit, the server API can.
        let (ca, _cae) = connect(&server.url, &closed, "alice", "a2").await;
        let cm = ca.send(to("bob"), "text", text("v1")).await.unwrap();
        assert_eq!(
            code(ca.edit(&cm.msg_id, text("v2")).await.unwrap_err()),
            "edit_window_passed"
        );
        let by_server = lifecycle::edit(
            &server.pipeline,
            &closed.app,
            &Actor::Server,
            &mid(&cm.msg_id),
            text("v2"),
        )
        .await
        .unwrap();
        assert_eq!(by_server.content, text("v2"));
        // Another app's message is not found, whoever asks.
        assert_eq!(code(alice.edit(&cm.msg_id, text("x")).await.unwrap_err()), "not_found");
        lifecycle::recall(&server.pipeline, &closed.app, &Actor::Server, &mid(&cm.msg_id))
            .await
            .unwrap();
        let late = lifecycle::edit(
            &server.pipeline,
            &closed.app,
            &Actor::Server,
            &mid(&cm.msg_id),
            text("v3"),
        )
        .await;
        assert_eq!(late.unwrap_err().code(), "message_recalled");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_extensions_replies_and_deletes_refuse_bad_input_and_strangers() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|_| {}).await;
        let other = env.app(|_| {}).await;
        app.users(&env, &["alice", "bob", "carol"]).await;
        other.users(&env, &["alice", "bob"]).await;
        let server = env.start(None).await;
        let (alice, _a) = connect(&server.url, &app, "alice", "a").await;
        let (bob, mut bob_ev) = connect(&server.url, &app, "bob", "b").await;
        let (carol, _c) = connect(&server.url, &app, "carol", "c").await;
        let (elsewhere, _e) = connect(&server.url, &other, "alice", "e").await;
        let m = alice.send(to("bob"), "text", text("hi")).await.unwrap();
        let theirs = elsewhere.send(to("bob"), "text", text("other app")).await.unwrap();
        let with_carol = alice.send(to("carol"), "text", text("to carol")).await.unwrap();
        messages(&mut bob_ev, 1).await;

        // Bad reactions, strangers, other apps.
        for bad in ["", "two words", &"x".repeat(33), "tab\t"] {
            assert_eq!(
                code(bob.add_reaction(&m.msg_id, bad).await.unwrap_err()),
                "invalid_argument",
                "{bad:?}"
            );
        }
        assert_eq!(
            code(carol.add_reaction(&m.msg_id, "👍").await.unwrap_err()),
            "not_found"
        );
        assert_eq!(
            code(bob.add_reaction(&theirs.msg_id, "👍").await.unwrap_err()),
            "not_found"
        );
        assert_eq!(
            code(carol.reaction_users(&m.msg_id, "👍", None, 10).await.unwrap_err()),
            "not_found"
        );
        assert_eq!(
            code(
                bob.reaction_users(&m.msg_id, "👍", Some("not a cursor"), 10)
                    .await
                    .unwrap_err()
            ),
            "invalid_argument"
        );
        // Reacting twice, or removing what is not there, changes nothing.
        bob.add_reaction(&m.msg_id, "👍").await.unwrap();
        assert_eq!(bob.add_reaction(&m.msg_id, "👍").await.unwrap().count, 1);
        assert_eq!(bob.remove_reaction(&m.msg_id, "🎉").await.unwrap().count, 0);
        assert_eq!(changes(&mut bob_ev, 1).await.len(), 1);

        // Extensions: bounded, versioned, members only.
        let set = |k: &str, v: &str| ExtensionUpdate::set(k, v);
        assert_eq!(
            code(
                bob.update_extensions(&m.msg_id, &[set("k", &"v".repeat(1025))])
                    .await
                    .unwrap_err()
            ),
            "invalid_argument"
        );
        assert_eq!(
            code(
                bob.update_extensions(&m.msg_id, &[set("bad key", "v")])
                    .await
                    .unwrap_err()
            ),
            "invalid_argument"
        );
        let many: Vec<ExtensionUpdate> = (0..21).map(|i| set(&format!("k{i}"), "v")).collect();
        assert_eq!(
            code(bob.update_extensions(&m.msg_id, &many).await.unwrap_err()),
            "invalid_argument"
        );
        assert_eq!(
            code(bob.update_extensions(&m.msg_id, &[]).await.unwrap_err()),
            "invalid_argument"
        );
        assert_eq!(
            code(carol.update_extensions(&m.msg_id, &[set("k", "v")]).await.unwrap_err()),
            "not_found"
        );
        assert_eq!(
            code(
                bob.update_extensions(&theirs.msg_id, &[set("k", "v")])
                    .await
                    .unwrap_err()
            ),
            "not_found"
        );
        let first = bob
            .update_extensions(&m.msg_id, &[set("k", "v1").if_version(0)])
            .await
            .unwrap();
        assert_eq!(first[0].version, 1);
        assert_eq!(
            code(
                alice
                    .update_extensions(&m.msg_id, &[set("k", "v2").if_version(0)])
                    .await
                    .unwrap_err()
            ),
            "version_conflict"
        );
        alice
            .update_extensions(&m.msg_id, &[set("k", "v2").if_version(1)])
            .await
            .unwrap();
        let gone = bob
            .update_extensions(&m.msg_id, &[ExtensionUpdate::delete("k").if_version(2)])
            .await
            .unwrap();
        assert!(gone.is_empty());

        // Replies: same conversation, visible, not recalled.
        assert_eq!(
            code(
                bob.reply(to("alice"), &with_carol.msg_id, "text", text("x"))
                    .await
                    .unwrap_err()
            ),
            "not_found"
        );
        assert_eq!(
            code(
                alice
                    .reply(to("bob"), &with_carol.msg_id, "text", text("x"))
                    .await
                    .unwrap_err()
            ),
            "not_found"
        );
        assert_eq!(
            code(
                bob.reply(to("alice"), &theirs.msg_id, "text", text("x"))
                    .await
                    .unwrap_err()
            ),
            "not_found"
        );
        assert_eq!(
            code(bob.reply(to("alice"), "no id", "text", text("x")).await.unwrap_err()),
            "invalid_argument"
        );

        // Deletes for oneself: visible messages only, 1 to 100 at a time; others unaffected.
        assert_eq!(code(carol.delete_for_me(&[&m.msg_id]).await.unwrap_err()), "not_found");
        assert_eq!(
            code(bob.delete_for_me(&[&theirs.msg_id]).await.unwrap_err()),
            "not_found"
        );
        assert_eq!(code(bob.delete_for_me(&[]).await.unwrap_err()), "invalid_argument");
        let ids: Vec<String> = (0..101).map(|_| MsgId::generate().into_string()).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(code(bob.delete_for_me(&refs).await.unwrap_err()), "invalid_argument");
        bob.delete_for_me(&[&m.msg_id]).await.unwrap();
        bob.delete_for_me(&[&m.msg_id]).await.unwrap();
        assert_eq!(
            code(bob.add_reaction(&m.msg_id, "🎉").await.unwrap_err()),
            "not_found",
            "hidden from him now"
        );
        assert_eq!(alice.history("d:alice:bob", 0, 10).await.unwrap().len(), 1);
        assert!(bob.history("d:alice:bob", 0, 10).await.unwrap().is_empty());
        server.stop().await;
    }
}

type Raw = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Raw) -> Value {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WsMessage::Text(t) => return serde_json::from_str(&t).unwrap(),
            WsMessage::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// Sends a command and reads `n` frames: its answer (by id) and the pushes it caused.
async fn command(ws: &mut Raw, frame: Value, n: usize) -> (Value, Vec<Value>) {
    let id = frame["id"].clone();
    ws.send(WsMessage::text(frame.to_string())).await.unwrap();
    let (mut answer, mut pushes) = (Value::Null, Vec::new());
    for _ in 0..n {
        let f = next_json(ws).await;
        if f["id"] == id {
            answer = f;
        } else {
            pushes.push(f);
        }
    }
    (answer, pushes)
}

#[tokio::test]
async fn the_json_subprotocol_carries_the_lifecycle_frames() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "bob"]).await;
    let server = env.start(None).await;
    let sent = server.send_direct(&app, "bob", "alice", "hello").await;
    let msg = sent.msg_id.to_string();
    let mut req = server.url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("tern.v1.json"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let auth =
        json!({"id": "a", "auth": {"token": app.token("alice"), "device_id": "raw", "platform": "PLATFORM_WEB"}});
    let (ok, _) = command(&mut ws, auth, 1).await;
    assert_eq!(ok["auth_ok"]["user_id"], "alice");

    let (answer, pushes) = command(
        &mut ws,
        json!({"id": "r1", "add_reaction": {"msg_id": msg, "reaction": "👍"}}),
        2,
    )
    .await;
    assert_eq!(
        answer["reaction_result"],
        json!({"reaction": "👍", "count": "1", "reacted": true, "users": ["alice"]})
    );
    let change = &pushes[0]["change"];
    assert_eq!(
        (change["msg_id"].as_str(), change["seq"].as_str(), change["by"].as_str()),
        (Some(msg.as_str()), Some("1"), Some("alice"))
    );
    assert_eq!(
        change["reaction"],
        json!({"reaction": "👍", "user_id": "alice", "added": true, "count": "1"})
    );

    let (answer, pushes) = command(
        &mut ws,
        json!({"id": "x1", "update_extensions": {"msg_id": msg, "updates": [{"key": "k", "value": "v", "expected_version": "0"}]}}),
        2,
    )
    .await;
    let ext = &answer["extensions_result"]["extensions"][0];
    assert_eq!(
        (ext["key"].as_str(), ext["value"].as_str(), ext["version"].as_str()),
        (Some("k"), Some("v"), Some("1"))
    );
    assert_eq!(
        pushes[0]["change"]["extensions"]["items"],
        json!([{"key": "k", "value": "v", "version": "1"}])
    );

    let (answer, _) = command(
        &mut ws,
        json!({"id": "c1", "get_changes": {"conversation_id": "d:alice:bob", "since_version": "0"}}),
        1,
    )
    .await;
    let result = &answer["changes_result"];
    assert_eq!(result["conversation_id"], "d:alice:bob");
    let got: Vec<bool> = result["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.get("reaction").is_some())
        .collect();
    assert_eq!(got, vec![true, false], "the reaction, then the extensions");
    assert_eq!(result["version"], result["changes"][1]["version"]);

    let (answer, _) = command(
        &mut ws,
        json!({"id": "e1", "edit_message": {"msg_id": msg, "content": {"text": "not mine"}}}),
        1,
    )
    .await;
    assert_eq!(answer["error"]["code"], "forbidden");
    server.stop().await;
}
