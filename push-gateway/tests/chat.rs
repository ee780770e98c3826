//! Conversations over real sockets with the SDK: two users chat, several devices of one
//! user see everything, receipts, typing, presence, recall and rooms.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;
use tern_sdk::{ChangeKind, Event, Target};

#[tokio::test]
async fn two_users_chat_with_receipts_typing_and_recall() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    let server = env.start(None).await;
    let (alice, mut alice_ev) = connect(&server.url, &app, "alice", "a-phone").await;
    let (bob, mut bob_ev) = connect(&server.url, &app, "bob", "b-phone").await;

    let ack = alice
        .send(Target::User("bob".into()), "text", json!({"text": "hi bob"}))
        .await
        .unwrap();
    assert_eq!(ack.conversation_id, "d:alice:bob");
    assert_eq!(ack.seq, 1);
    let got = texts(&mut bob_ev, 1).await;
    assert_eq!(got, vec![("d:alice:bob".to_owned(), 1, "hi bob".to_owned())]);
    // Alice's own device sees what she sent, too.
    assert_eq!(texts(&mut alice_ev, 1).await, got);

    // Bob reads; Alice gets the receipt.
    let conv = bob.read("d:alice:bob", 1).await.unwrap();
    assert_eq!((conv.read_seq, conv.unread), (1, 0));
    let (user, read_seq) = next_matching(&mut alice_ev, |e| match e {
        Event::Receipt { user_id, read_seq, .. } => Some((user_id, read_seq)),
        _ => None,
    })
    .await;
    assert_eq!((user.as_str(), read_seq), ("bob", 1));

    let ack2 = bob
        .send(Target::User("alice".into()), "text", json!({"text": "hi alice"}))
        .await
        .unwrap();
    assert_eq!(ack2.seq, 2);
    let got = texts(&mut alice_ev, 1).await;
    assert_eq!(got, vec![("d:alice:bob".to_owned(), 2, "hi alice".to_owned())]);

    // Typing reaches the other side.
    alice.typing("d:alice:bob").await.unwrap();
    let who = next_matching(&mut bob_ev, |e| match e {
        Event::Typing { user_id, .. } => Some(user_id),
        _ => None,
    })
    .await;
    assert_eq!(who, "alice");

    // Alice recalls her message; Bob sees it recalled with its content gone.
    alice.recall(&ack.msg_id).await.unwrap();
    let recalled = next_matching(&mut bob_ev, |e| match e {
        Event::Changed(c) if c.kind == ChangeKind::Recalled => Some(c),
        _ => None,
    })
    .await;
    assert_eq!(
        (recalled.msg_id.as_str(), recalled.seq, recalled.by.as_deref()),
        (ack.msg_id.as_str(), 1, Some("alice"))
    );

    // Bob may not recall Alice's message, and history shows both messages in order.
    let err = bob.recall(&ack.msg_id).await.unwrap_err();
    assert_eq!(err.code(), Some("forbidden"));
    let history = bob.history("d:alice:bob", 0, 50).await.unwrap();
    assert_eq!(history.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert!(history[0].recalled);

    // A conversation Bob is not in is invisible to him.
    let err = bob.history("d:alice:carol", 0, 50).await.unwrap_err();
    assert_eq!(err.code(), Some("not_found"));
    server.stop().await;
}

#[tokio::test]
async fn three_devices_of_one_user_see_everything_including_their_own_sends() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    let server = env.start(None).await;
    let (phone, mut phone_ev) = connect(&server.url, &app, "alice", "phone").await;
    let (_tablet, mut tablet_ev) = connect(&server.url, &app, "alice", "tablet").await;
    let (_laptop, mut laptop_ev) = connect(&server.url, &app, "alice", "laptop").await;
    let (bob, mut bob_ev) = connect(&server.url, &app, "bob", "b").await;

    phone
        .send(Target::User("bob".into()), "text", json!({"text": "from my phone"}))
        .await
        .unwrap();
    bob.send(
        Target::User("alice".into()),
        "text",
        json!({"text": "hello all of you"}),
    )
    .await
    .unwrap();
    let expected = vec![
        ("d:alice:bob".to_owned(), 1, "from my phone".to_owned()),
        ("d:alice:bob".to_owned(), 2, "hello all of you".to_owned()),
    ];
    for ev in [&mut phone_ev, &mut tablet_ev, &mut laptop_ev, &mut bob_ev] {
        assert_eq!(texts(ev, 2).await, expected);
        no_more_messages(ev).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn presence_follows_the_last_device() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    let server = env.start(None).await;
    let (watcher, mut ev) = connect(&server.url, &app, "watcher", "w").await;
    let now = watcher.subscribe_presence(&["carol"]).await.unwrap();
    assert_eq!(now.len(), 1);
    assert!(!now[0].online);

    let (c1, _e1) = connect(&server.url, &app, "carol", "c1").await;
    let p = next_matching(&mut ev, |e| match e {
        Event::Presence(p) if p.online => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(p.user_id, "carol");
    let (c2, _e2) = connect(&server.url, &app, "carol", "c2").await;
    c1.close();
    // Still online on her second device: offline only once that one closes too.
    c2.close();
    let p = next_matching(&mut ev, |e| match e {
        Event::Presence(p) => Some(p),
        _ => None,
    })
    .await;
    assert!(!p.online);
    assert!(p.last_seen.is_some());
    let now = watcher.subscribe_presence(&["carol"]).await.unwrap();
    assert!(!now[0].online);
    server.stop().await;
}

#[tokio::test]
async fn rooms_deliver_to_members_and_give_newcomers_the_backlog() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    let server = env.start(None).await;
    let (host, mut host_ev) = connect(&server.url, &app, "host", "h").await;

    // Not a member yet: sending to the room is refused.
    let err = host
        .send(Target::Room("live".into()), "text", json!({"text": "x"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("not_in_room"));

    assert_eq!(host.join_room("live").await.unwrap(), 1);
    for i in 1..=60 {
        host.send(Target::Room("live".into()), "text", json!({"text": format!("m{i}")}))
            .await
            .unwrap();
    }
    let got = texts(&mut host_ev, 60).await;
    assert_eq!(got.last().map(|(_, s, _)| *s), Some(60));

    // A newcomer gets the last 50, then live messages.
    let (viewer, mut viewer_ev) = connect(&server.url, &app, "viewer", "v").await;
    assert_eq!(viewer.join_room("live").await.unwrap(), 2);
    let backlog = texts(&mut viewer_ev, 50).await;
    assert_eq!(backlog.first().map(|(_, s, _)| *s), Some(11));
    assert_eq!(backlog.last().map(|(_, s, _)| *s), Some(60));
    host.send(Target::Room("live".into()), "text", json!({"text": "live!"}))
        .await
        .unwrap();
    assert_eq!(
        texts(&mut viewer_ev, 1).await,
        vec![("r:live".to_owned(), 61, "live!".to_owned())]
    );

    // After leaving, nothing more arrives.
    viewer.leave_room("live").await.unwrap();
    host.send(Target::Room("live".into()), "text", json!({"text": "gone"}))
        .await
        .unwrap();
    texts(&mut host_ev, 2).await;
    no_more_messages(&mut viewer_ev).await;
    server.stop().await;
}

#[tokio::test]
async fn group_members_get_the_group_and_late_joiners_only_what_followed() {
    use tern_platform::domain::{now_ms, JoinPolicy, DEFAULT_GROUP_MEMBER_LIMIT};
    use tern_platform::ids::{GroupId, UserId};
    use tern_platform::store::{GroupRecord, NewGroup};

    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["ann", "ben", "cat", "dan"]).await;
    let server = env.start(None).await;
    let uid = |u: &str| UserId::parse(u).unwrap();
    server
        .store
        .create_group(
            &app.app.id,
            &NewGroup {
                id: GroupId::parse("g1").unwrap(),
                name: "team".into(),
                owner: uid("ann"),
                members: vec![uid("ben"), uid("cat")],
                metadata: json!({}),
                avatar_url: None,
                announcement: String::new(),
                join_policy: JoinPolicy::Approval,
                member_limit: DEFAULT_GROUP_MEMBER_LIMIT,
                notice: None,
                events: Vec::new(),
            },
            now_ms(),
        )
        .await
        .unwrap();
    let (ann, mut ann_ev) = connect(&server.url, &app, "ann", "a").await;
    let (_ben, mut ben_ev) = connect(&server.url, &app, "ben", "b").await;
    let (dan, mut dan_ev) = connect(&server.url, &app, "dan", "d").await;

    ann.send(Target::Group("g1".into()), "text", json!({"text": "standup?"}))
        .await
        .unwrap();
    let want = vec![("g:g1".to_owned(), 1, "standup?".to_owned())];
    assert_eq!(texts(&mut ann_ev, 1).await, want);
    assert_eq!(texts(&mut ben_ev, 1).await, want);
    // Not a member: cannot send, read or see it.
    let err = dan
        .send(Target::Group("g1".into()), "text", json!({"text": "let me in"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("forbidden"));
    assert_eq!(dan.history("g:g1", 0, 50).await.unwrap_err().code(), Some("not_found"));

    // Typing in a group reaches the other members.
    ann.typing("g:g1").await.unwrap();
    let who = next_matching(&mut ben_ev, |e| match e {
        Event::Typing {
            user_id,
            conversation_id,
        } if conversation_id == "g:g1" => Some(user_id),
        _ => None,
    })
    .await;
    assert_eq!(who, "ann");

    // Dan joins later: he gets what follows, not what came before.
    server
        .store
        .add_group_members(
            &app.app.id,
            &GroupId::parse("g1").unwrap(),
            &[uid("dan")],
            DEFAULT_GROUP_MEMBER_LIMIT,
            now_ms(),
            &|_| GroupRecord::default(),
        )
        .await
        .unwrap();
    ann.send(Target::Group("g1".into()), "text", json!({"text": "welcome dan"}))
        .await
        .unwrap();
    assert_eq!(
        texts(&mut dan_ev, 1).await,
        vec![("g:g1".to_owned(), 2, "welcome dan".to_owned())]
    );
    let seen = dan.history("g:g1", 0, 50).await.unwrap();
    assert_eq!(seen.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2]);
    // Cat was offline throughout; on login she catches up on both.
    let (_cat, mut cat_ev) = connect(&server.url, &app, "cat", "c").await;
    assert_eq!(
        texts(&mut cat_ev, 2)
            .await
            .into_iter()
            .map(|(_, s, _)| s)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    no_more_messages(&mut dan_ev).await;
    server.stop().await;
}

/// user.online and user.offline go to the app's webhook outbox once per user, not per device.
#[tokio::test]
async fn presence_changes_become_after_events() {
    let env = Env::new().await;
    let app = env
        .app(|s| s.webhook.url = Some("https://hooks.example.com/tern".into()))
        .await;
    let server = env.start(None).await;
    let (watcher, mut ev) = connect(&server.url, &app, "watcher", "w").await;
    watcher.subscribe_presence(&["dora"]).await.unwrap();
    let (d1, _e1) = connect(&server.url, &app, "dora", "phone").await;
    let (d2, _e2) = connect(&server.url, &app, "dora", "laptop").await;
    d1.close();
    d2.close();
    next_matching(&mut ev, |e| match e {
        Event::Presence(p) if !p.online && p.user_id == "dora" => Some(()),
        _ => None,
    })
    .await;
    // The offline event is written right after the last session closes and the push goes out.
    let mut dora = Vec::new();
    for _ in 0..100 {
        let due = server.store.due_events(i64::MAX, 1000).await.unwrap();
        dora = due
            .into_iter()
            .filter(|e| e.app_id == app.app.id && e.body.contains("\"user_id\":\"dora\""))
            .map(|e| e.event_type)
            .collect::<Vec<_>>();
        if dora.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(dora, vec!["user.online".to_string(), "user.offline".to_string()]);
}
