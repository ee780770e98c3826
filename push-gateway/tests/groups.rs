//! Groups from the SDK over real sockets, on SQLite and (when configured) PostgreSQL: users
//! create, invite, join, answer requests, change the profile and roles, mute, mention, read,
//! transfer, leave, remove and dismiss, and see every change arrive in order.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;
use tern_sdk::{Client, Event, Events, GroupChanges, GroupNotice, JoinOutcome, Message, NewGroup, SendOptions, Target};

/// The next group notice (a `system` message) with this event, skipping everything else.
async fn notice(events: &mut Events, event: &'static str) -> (Message, GroupNotice) {
    next_matching(events, |e| match e {
        Event::Message(m) => GroupNotice::of(&m).filter(|n| n.event == event).map(|n| (m, n)),
        _ => None,
    })
    .await
}

async fn notification(events: &mut Events, kind: &'static str) -> serde_json::Value {
    next_matching(events, |e| match e {
        Event::Notification { content, .. } if content["type"] == kind => Some(content),
        _ => None,
    })
    .await
}

/// The next group notice in the user's own system conversation (`s:<user>`).
async fn own_notice(events: &mut Events, conversation: &str) -> GroupNotice {
    next_matching(events, |e| match &e {
        Event::Notification {
            conversation_id: Some(c),
            ..
        } if c == conversation => GroupNotice::of_notification(&e),
        _ => None,
    })
    .await
}

/// The next ordinary message in `conversation`.
async fn message_in(events: &mut Events, conversation: &str) -> Message {
    next_matching(events, |e| match e {
        Event::Message(m) if m.conversation_id == conversation && m.msg_type != "system" => Some(m),
        _ => None,
    })
    .await
}

async fn say(c: &Client, group: &str, text: &str) -> Result<tern_sdk::SendAck, Option<String>> {
    c.send(Target::Group(group.into()), "text", json!({ "text": text }))
        .await
        .map_err(|e| e.code().map(str::to_owned))
}

fn code<T: std::fmt::Debug>(r: Result<T, tern_sdk::ClientError>) -> String {
    r.unwrap_err().code().unwrap_or("<none>").to_owned()
}

async fn the_whole_group_life_from_the_sdk(env: Env) {
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "bob", "carol", "dave", "erin"]).await;
    let server = env.start(None).await;
    let (alice, mut alice_ev) = connect(&server.url, &app, "alice", "a").await;
    let (bob, mut bob_ev) = connect(&server.url, &app, "bob", "b").await;
    let (carol, mut carol_ev) = connect(&server.url, &app, "carol", "c").await;
    let (dave, mut dave_ev) = connect(&server.url, &app, "dave", "d").await;

    // Alice creates an approval group with Bob; Bob sees it open.
    let g = alice
        .create_group(NewGroup {
            group_id: "team".into(),
            name: "Team".into(),
            members: vec!["bob".into()],
            announcement: "welcome".into(),
            metadata: Some(json!({"topic": "work"})),
            ..NewGroup::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (
            g.owner.as_str(),
            g.member_count,
            g.join_policy.as_str(),
            g.metadata.clone()
        ),
        ("alice", 2, "approval", json!({"topic": "work"}))
    );
    let (created, n) = notice(&mut bob_ev, "group_created").await;
    assert_eq!((created.conversation_id.as_str(), created.seq), ("g:team", 1));
    assert_eq!(
        (n.by.as_deref(), n.content["name"].as_str()),
        (Some("alice"), Some("Team"))
    );
    // Anyone in the app may read the profile; only members the member list.
    assert_eq!(carol.group("team").await.unwrap().announcement, "welcome");
    assert_eq!(code(carol.members("team", None, 10).await), "forbidden");

    // Carol asks; Alice is told, lists and accepts; Carol is told and is in.
    match carol.join_group("team", "hi, it's Carol").await.unwrap() {
        JoinOutcome::Requested(r) => assert_eq!((r.state.as_str(), r.message.as_str()), ("pending", "hi, it's Carol")),
        other => panic!("{other:?}"),
    }
    let asked = notification(&mut alice_ev, "group_join_request").await;
    assert_eq!(
        (asked["user_id"].as_str(), asked["group_id"].as_str()),
        (Some("carol"), Some("team"))
    );
    let pending = alice.join_requests("team", None, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|r| r.user_id.as_str()).collect::<Vec<_>>(),
        ["carol"]
    );
    assert_eq!(code(bob.join_requests("team", None, 10).await), "forbidden");
    assert_eq!(
        alice.answer_join_request("team", "carol", true).await.unwrap().state,
        "accepted"
    );
    // The notice of her joining reaches her (now a member), then the answer.
    let (_, joined) = notice(&mut carol_ev, "member_joined").await;
    assert_eq!(joined.content["user"], "carol");
    let told = own_notice(&mut carol_ev, "s:carol").await;
    assert_eq!(
        (told.event.as_str(), told.group_id.as_str(), told.by.as_deref()),
        ("join_request_accepted", "team", Some("alice"))
    );
    assert_eq!(
        carol
            .my_groups(None, 10)
            .await
            .unwrap()
            .iter()
            .map(|g| g.group_id.as_str())
            .collect::<Vec<_>>(),
        ["team"]
    );

    // Erin asks and goes offline; the answer is kept for her and reaches her when she is back.
    let (erin, _erin_ev) = connect(&server.url, &app, "erin", "e").await;
    assert!(matches!(
        erin.join_group("team", "").await.unwrap(),
        JoinOutcome::Requested(_)
    ));
    erin.close();
    drop(erin);
    notification(&mut alice_ev, "group_join_request").await;
    assert_eq!(
        alice.answer_join_request("team", "erin", false).await.unwrap().state,
        "declined"
    );
    let (erin, mut erin_ev) = connect(&server.url, &app, "erin", "e").await;
    let told = own_notice(&mut erin_ev, "s:erin").await;
    assert_eq!(
        (told.event.as_str(), told.group_id.as_str(), told.by.as_deref()),
        ("join_request_declined", "team", Some("alice"))
    );
    assert_eq!(code(erin.history("g:team", 0, 10).await), "not_found");
    erin.close();

    // Bob (a member) invites Dave to an approval group: a request, not a member.
    let invited = bob.invite("team", &["dave"]).await.unwrap();
    assert_eq!(
        (invited.added.len(), invited.requested.clone()),
        (0, vec!["dave".to_owned()])
    );
    let asked = notification(&mut alice_ev, "group_join_request").await;
    assert_eq!(asked["inviter"], "bob");
    // Alice (the owner) invites: added at once.
    let invited = alice.invite("team", &["dave"]).await.unwrap();
    assert_eq!(invited.added, ["dave"]);
    let (_, added) = notice(&mut dave_ev, "members_added").await;
    assert_eq!(added.content["users"], json!(["dave"]));
    assert!(
        alice.join_requests("team", None, 10).await.unwrap().is_empty(),
        "the invitation settled it"
    );

    // Profile and roles.
    let changed = alice
        .update_group(
            "team",
            GroupChanges {
                announcement: Some("standup at 10".into()),
                ..GroupChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.announcement, "standup at 10");
    let (_, updated) = notice(&mut dave_ev, "group_updated").await;
    assert_eq!(updated.content["changed"], json!({"announcement": "standup at 10"}));
    assert_eq!(
        code(
            bob.update_group(
                "team",
                GroupChanges {
                    name: Some("mine".into()),
                    ..GroupChanges::default()
                }
            )
            .await
        ),
        "forbidden"
    );
    assert_eq!(
        alice.set_member_role("team", "bob", "admin").await.unwrap().role,
        "admin"
    );
    let (_, role) = notice(&mut carol_ev, "role_changed").await;
    assert_eq!(
        (role.content["user"].as_str(), role.content["role"].as_str()),
        (Some("bob"), Some("admin"))
    );

    // Bob (admin) mutes Carol; her sends fail until he lifts it.
    let muted = bob.mute_member("team", "carol", None).await.unwrap();
    assert!(muted.muted_until.is_some());
    assert_eq!(
        say(&carol, "team", "hello?").await.unwrap_err().as_deref(),
        Some("member_muted")
    );
    bob.unmute_member("team", "carol").await.unwrap();
    say(&carol, "team", "thanks").await.unwrap();
    assert_eq!(message_in(&mut alice_ev, "g:team").await.content["text"], "thanks");

    // Mentions: Carol is named; her message shows it and her entry is flagged until read.
    let named = alice
        .send_with_options(
            Target::Group("team".into()),
            "text",
            json!({"text": "@carol can you check?"}),
            "mention-1",
            &SendOptions {
                mentions: vec!["carol".into()],
                mention_all: false,
            },
        )
        .await
        .unwrap();
    let got = next_matching(&mut carol_ev, |e| match e {
        Event::Message(m) if m.msg_id == named.msg_id => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(
        (got.mentions.clone(), got.mention_all),
        (vec!["carol".to_owned()], false)
    );
    assert!(carol.read("g:team", named.seq - 1).await.unwrap().mentioned);
    assert!(!dave.read("g:team", named.seq - 1).await.unwrap().mentioned);
    let read = carol.read("g:team", named.seq).await.unwrap();
    assert!(!read.mentioned && read.unread == 0);
    // The sender learns Carol read it.
    let receipt = next_matching(&mut alice_ev, |e| match e {
        Event::Receipt {
            conversation_id,
            user_id,
            read_seq,
        } if conversation_id == "g:team" && user_id == "carol" => Some(read_seq),
        _ => None,
    })
    .await;
    assert_eq!(receipt, named.seq);
    let counts = alice.read_counts("team", &[&named.msg_id]).await.unwrap();
    assert_eq!(
        (counts[0].read, counts[0].unread),
        (1, 2),
        "carol has; bob and dave (short of it) have not"
    );
    assert_eq!(
        alice.readers("team", &named.msg_id, false, None, 10).await.unwrap(),
        ["carol"]
    );
    assert_eq!(
        alice.readers("team", &named.msg_id, true, None, 10).await.unwrap(),
        ["bob", "dave"]
    );
    // @all: admins and the owner only.
    let everyone = SendOptions {
        mentions: Vec::new(),
        mention_all: true,
    };
    bob.send_with_options(
        Target::Group("team".into()),
        "text",
        json!({"text": "all"}),
        "all-1",
        &everyone,
    )
    .await
    .unwrap();
    assert_eq!(
        code(
            carol
                .send_with_options(
                    Target::Group("team".into()),
                    "text",
                    json!({"text": "all"}),
                    "all-2",
                    &everyone
                )
                .await
        ),
        "forbidden"
    );
    assert_eq!(
        code(
            carol
                .send_with_options(
                    Target::Group("team".into()),
                    "text",
                    json!({"text": "hey"}),
                    "m-x",
                    &SendOptions {
                        mentions: vec!["nobody".into()],
                        mention_all: false
                    }
                )
                .await
        ),
        "invalid_argument"
    );

    // mute_all: members fall silent, admins speak.
    alice
        .update_group(
            "team",
            GroupChanges {
                mute_all: Some(true),
                ..GroupChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        say(&dave, "team", "x").await.unwrap_err().as_deref(),
        Some("group_muted")
    );
    say(&bob, "team", "admins may").await.unwrap();
    alice
        .update_group(
            "team",
            GroupChanges {
                mute_all: Some(false),
                ..GroupChanges::default()
            },
        )
        .await
        .unwrap();

    // Members, paged.
    let first = alice.members("team", None, 2).await.unwrap();
    let rest = alice.members("team", Some(&first[1].user_id), 10).await.unwrap();
    let all: Vec<(String, String)> = first
        .iter()
        .chain(&rest)
        .map(|m| (m.user_id.clone(), m.role.clone()))
        .collect();
    assert_eq!(
        all,
        [
            ("alice", "owner"),
            ("bob", "admin"),
            ("carol", "member"),
            ("dave", "member")
        ]
        .map(|(u, r)| (u.to_owned(), r.to_owned()))
    );
    assert_eq!(alice.member("team", "carol").await.unwrap().muted_until, None);

    // The owner cannot leave before handing the group over; then she can.
    assert_eq!(code(alice.leave_group("team").await), "forbidden");
    assert_eq!(alice.transfer_group("team", "bob").await.unwrap().owner, "bob");
    let (_, moved) = notice(&mut carol_ev, "owner_transferred").await;
    assert_eq!(
        (moved.content["from"].as_str(), moved.content["to"].as_str()),
        (Some("alice"), Some("bob"))
    );
    alice.leave_group("team").await.unwrap();
    let (_, left) = notice(&mut carol_ev, "member_left").await;
    assert_eq!(left.content["user"], "alice");
    assert_eq!(
        say(&alice, "team", "bye").await.unwrap_err().as_deref(),
        Some("forbidden")
    );
    assert_eq!(code(alice.members("team", None, 10).await), "forbidden");

    // Bob removes Dave: Dave is told in his own conversation.
    bob.remove_member("team", "dave").await.unwrap();
    let n = own_notice(&mut dave_ev, "s:dave").await;
    assert_eq!((n.event.as_str(), n.by.as_deref()), ("removed_from_group", Some("bob")));
    assert_eq!(code(dave.history("g:team", 0, 10).await), "not_found");

    // Bob dismisses: Carol (and Bob) get the notice; the group is gone.
    bob.dismiss_group("team").await.unwrap();
    let told = own_notice(&mut carol_ev, "s:carol").await;
    assert_eq!(told.event, "group_dismissed");
    assert_eq!(code(carol.group("team").await), "not_found");
    assert!(carol.my_groups(None, 10).await.unwrap().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_group_life() {
    for (backend, env) in envs().await {
        eprintln!("on {backend}");
        the_whole_group_life_from_the_sdk(env).await;
    }
}

async fn joining_free_and_invite_only_groups(env: Env) {
    let app = env.app(|s| s.users_may_create_groups = true).await;
    app.users(&env, &["ann", "ben", "cy"]).await;
    let server = env.start(None).await;
    let (ann, _ann_ev) = connect(&server.url, &app, "ann", "a").await;
    let (ben, mut ben_ev) = connect(&server.url, &app, "ben", "b").await;
    let (cy, _cy_ev) = connect(&server.url, &app, "cy", "c").await;
    // A group without an id gets one.
    let open = ann
        .create_group(NewGroup {
            name: "Open".into(),
            join_policy: Some("free".into()),
            ..NewGroup::default()
        })
        .await
        .unwrap();
    assert!(open.group_id.starts_with("grp_"));
    ann.create_group(NewGroup {
        group_id: "vip".into(),
        name: "VIP".into(),
        join_policy: Some("invite_only".into()),
        ..NewGroup::default()
    })
    .await
    .unwrap();
    match ben.join_group(&open.group_id, "").await.unwrap() {
        JoinOutcome::Joined(m) => assert_eq!(m.role, "member"),
        other => panic!("{other:?}"),
    }
    let (m, n) = notice(&mut ben_ev, "member_joined").await;
    assert_eq!(
        (n.content["user"].as_str(), m.conversation_id),
        (Some("ben"), format!("g:{}", open.group_id))
    );
    assert_eq!(code(cy.join_group("vip", "").await), "forbidden");
    // In an invite-only group any member's invitation adds at once.
    ann.invite("vip", &["ben"]).await.unwrap();
    assert_eq!(ben.invite("vip", &["cy"]).await.unwrap().added, ["cy"]);
    // Bad input.
    assert_eq!(
        code(
            ann.create_group(NewGroup {
                name: String::new(),
                ..NewGroup::default()
            })
            .await
        ),
        "invalid_argument"
    );
    assert_eq!(
        code(
            ann.create_group(NewGroup {
                name: "x".into(),
                join_policy: Some("open".into()),
                ..NewGroup::default()
            })
            .await
        ),
        "invalid_argument"
    );
    assert_eq!(
        code(
            ann.create_group(NewGroup {
                group_id: "vip".into(),
                name: "again".into(),
                ..NewGroup::default()
            })
            .await
        ),
        "conflict"
    );
    assert_eq!(code(ann.invite("vip", &["no body"]).await), "invalid_argument");
    assert_eq!(code(ann.invite("vip", &[]).await), "invalid_argument");
    let many: Vec<String> = (0..501).map(|i| format!("u{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(code(ann.invite("vip", &many).await), "invalid_argument");
    assert_eq!(code(ann.join_group("vip", &"m".repeat(501)).await), "invalid_argument");
    assert_eq!(code(ann.read_counts("vip", &["not-an-id"]).await), "not_found");
    assert_eq!(
        code(ann.set_member_role("vip", "ben", "owner").await),
        "invalid_argument"
    );
    assert_eq!(code(ann.mute_member("vip", "ben", Some(1)).await), "invalid_argument");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_and_invite_only() {
    for (backend, env) in envs().await {
        eprintln!("on {backend}");
        joining_free_and_invite_only_groups(env).await;
    }
}

async fn users_may_not_create_groups_when_the_app_says_so(env: Env) {
    let app = env.app(|s| s.users_may_create_groups = false).await;
    app.users(&env, &["ann"]).await;
    let server = env.start(None).await;
    let (ann, _ev) = connect(&server.url, &app, "ann", "a").await;
    let e = ann
        .create_group(NewGroup {
            name: "Mine".into(),
            ..NewGroup::default()
        })
        .await;
    assert_eq!(code(e), "forbidden");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_creation_can_be_server_only() {
    for (backend, env) in envs().await {
        eprintln!("on {backend}");
        users_may_not_create_groups_when_the_app_says_so(env).await;
    }
}

/// A member offline during changes catches up on them, in order, when they reconnect; a
/// member who left and came back sees only what came after their return.
async fn offline_members_catch_up_in_order(env: Env) {
    let app = env.app(|_| {}).await;
    app.users(&env, &["ann", "ben"]).await;
    let server = env.start(None).await;
    let (ann, _ann_ev) = connect(&server.url, &app, "ann", "a").await;
    ann.create_group(NewGroup {
        group_id: "g".into(),
        name: "G".into(),
        members: vec!["ben".into()],
        join_policy: Some("free".into()),
        ..NewGroup::default()
    })
    .await
    .unwrap();
    say(&ann, "g", "one").await.unwrap();
    ann.update_group(
        "g",
        GroupChanges {
            announcement: Some("news".into()),
            ..GroupChanges::default()
        },
    )
    .await
    .unwrap();
    say(&ann, "g", "two").await.unwrap();
    // Ben connects now: what came after his read position (the opening notice) arrives
    // once each, in seq order.
    let (ben, mut ben_ev) = connect(&server.url, &app, "ben", "b").await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        if let Event::Message(m) = ben_ev.next().await.unwrap() {
            let what = GroupNotice::of(&m).map_or_else(|| m.content["text"].as_str().unwrap().to_owned(), |n| n.event);
            seen.push((m.seq, what));
        }
    }
    assert_eq!(
        seen,
        [(2, "one"), (3, "group_updated"), (4, "two")].map(|(s, w)| (s, w.to_owned()))
    );
    no_more_messages(&mut ben_ev).await;
    // Ben leaves; more is said; he joins again and sees only what follows.
    ben.leave_group("g").await.unwrap();
    say(&ann, "g", "while away").await.unwrap();
    ben.join_group("g", "").await.unwrap();
    say(&ann, "g", "welcome back").await.unwrap();
    let (_, n) = notice(&mut ben_ev, "member_joined").await;
    assert_eq!(n.content["user"], "ben");
    let back = message_in(&mut ben_ev, "g:g").await;
    assert_eq!(back.content["text"], "welcome back");
    let history = ben.history("g:g", 0, 50).await.unwrap();
    assert!(history.iter().all(|m| m.content["text"] != "while away"), "{history:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_after_offline() {
    for (backend, env) in envs().await {
        eprintln!("on {backend}");
        offline_members_catch_up_in_order(env).await;
    }
}

// ---- the JSON subprotocol, as docs/protocol.md shows it ----------------------------

mod raw {
    use futures::{SinkExt, StreamExt};
    use serde_json::Value;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    use super::support::PATIENCE;

    pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    pub async fn json_socket(url: &str) -> Ws {
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("tern.v1.json"));
        tokio_tungstenite::connect_async(req).await.unwrap().0
    }

    pub async fn send(ws: &mut Ws, frame: &str) {
        ws.send(WsMessage::text(frame.to_owned())).await.unwrap();
    }

    /// The answer to request `id` (pushes in between are skipped); `None` if the server
    /// closed the connection first, with the close code.
    pub async fn answer(ws: &mut Ws, id: &str) -> Result<Value, Option<u16>> {
        loop {
            let m = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
            match m {
                Some(Ok(WsMessage::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["id"] == id {
                        return Ok(v);
                    }
                }
                Some(Ok(WsMessage::Close(c))) => return Err(c.map(|c| u16::from(c.code))),
                None | Some(Err(_)) => return Err(None),
                Some(Ok(_)) => {}
            }
        }
    }
}

async fn json_examples(env: Env) {
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "bob", "carol", "dave", "erin"]).await;
    let server = env.start(None).await;
    let (bob, _bob_ev) = connect(&server.url, &app, "bob", "b").await;
    let mut ws = raw::json_socket(&server.url).await;
    let auth = json!({"id": "1", "auth": {"token": app.token("alice"), "device_id": "laptop-1", "platform": "PLATFORM_DESKTOP"}});
    raw::send(&mut ws, &auth.to_string()).await;
    assert_eq!(raw::answer(&mut ws, "1").await.unwrap()["auth_ok"]["user_id"], "alice");

    let ask = |frame: &'static str| {
        let id = serde_json::from_str::<serde_json::Value>(frame).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (frame, id)
    };
    // The examples of docs/protocol.md, in order.
    let steps = [
        (
            ask(
                r#"{"id":"30","create_group":{"group_id":"team","name":"Team","members":["bob","carol"],"announcement":"hi all","metadata":{"topic":"work"}}}"#,
            ),
            "group",
        ),
        (ask(r#"{"id":"31","get_group":{"group_id":"team"}}"#), "group"),
        (
            ask(r#"{"id":"32","update_group":{"group_id":"team","announcement":"standup at 10","mute_all":false}}"#),
            "group",
        ),
        (
            ask(r#"{"id":"33","invite_members":{"group_id":"team","user_ids":["dave"]}}"#),
            "invite_result",
        ),
        (
            ask(r#"{"id":"36","list_join_requests":{"group_id":"team","after":"","limit":50}}"#),
            "join_request_list",
        ),
        (
            ask(r#"{"id":"38","list_members":{"group_id":"team","after":"","limit":50}}"#),
            "member_list",
        ),
        (
            ask(r#"{"id":"39","get_member":{"group_id":"team","user_id":"bob"}}"#),
            "member",
        ),
        (
            ask(r#"{"id":"40","set_member_role":{"group_id":"team","user_id":"bob","role":"admin"}}"#),
            "member",
        ),
        (
            ask(r#"{"id":"41","mute_member":{"group_id":"team","user_id":"carol","until":"1798761600000"}}"#),
            "member",
        ),
        (
            ask(r#"{"id":"42","mute_member":{"group_id":"team","user_id":"carol","lift":true}}"#),
            "member",
        ),
        (
            ask(
                r#"{"id":"43","send":{"client_msg_id":"c-0009","group":"team","type":"text","content":{"text":"@bob look"},"mentions":["bob"]}}"#,
            ),
            "send_ack",
        ),
        (
            ask(
                r#"{"id":"44","send":{"client_msg_id":"c-0010","group":"team","type":"text","content":{"text":"all hands"},"mention_all":true}}"#,
            ),
            "send_ack",
        ),
        (
            ask(r#"{"id":"47","list_my_groups":{"after":"","limit":50}}"#),
            "group_list",
        ),
        (
            ask(r#"{"id":"48","remove_member":{"group_id":"team","user_id":"dave"}}"#),
            "ok",
        ),
    ];
    let mut answers = std::collections::HashMap::new();
    for ((frame, id), body) in steps {
        raw::send(&mut ws, frame).await;
        let a = raw::answer(&mut ws, &id).await.unwrap();
        assert!(a.get(body).is_some(), "{frame} answered {a}");
        answers.insert(id, a);
    }
    let g = &answers["30"]["group"];
    assert_eq!(
        (
            g["owner"].as_str(),
            g["member_count"].as_str(),
            g["join_policy"].as_str(),
            g["metadata"]["topic"].as_str()
        ),
        (Some("alice"), Some("3"), Some("approval"), Some("work")),
        "int64 as strings, the proto3 JSON mapping"
    );
    assert_eq!(answers["33"]["invite_result"]["added"], json!(["dave"]));
    assert_eq!(answers["38"]["member_list"]["members"].as_array().unwrap().len(), 4);
    assert_eq!(answers["40"]["member"]["role"], "admin");
    assert_eq!(answers["41"]["member"]["muted_until"], "1798761600000");
    assert!(answers["42"]["member"].get("muted_until").is_none(), "zero is left out");

    // Mentions: bob's entry is flagged; the read counts and readers answer in JSON too.
    let mention = &answers["43"]["send_ack"];
    let conv = bob.read("g:team", 0).await.unwrap();
    assert!(conv.mentioned);
    let msg_id = mention["msg_id"].as_str().unwrap();
    let frame = json!({"id": "45", "get_read_counts": {"group_id": "team", "msg_ids": [msg_id]}}).to_string();
    raw::send(&mut ws, &frame).await;
    let counts = raw::answer(&mut ws, "45").await.unwrap();
    // Bob and Carol; Dave was removed above.
    assert_eq!(counts["read_counts"]["counts"][0]["unread"], "2", "{counts}");
    assert!(
        counts["read_counts"]["counts"][0].get("read").is_none(),
        "zero is left out"
    );
    let frame = json!({"id": "46", "list_readers": {"group_id": "team", "msg_id": msg_id, "unread": true, "after": "", "limit": 50}}).to_string();
    raw::send(&mut ws, &frame).await;
    let readers = raw::answer(&mut ws, "46").await.unwrap();
    assert_eq!(readers["readers"]["user_ids"], json!(["bob", "carol"]));

    // Joining an approval group of Bob's: a request.
    bob.create_group(tern_sdk::NewGroup {
        group_id: "club".into(),
        name: "Club".into(),
        ..tern_sdk::NewGroup::default()
    })
    .await
    .unwrap();
    raw::send(
        &mut ws,
        r#"{"id":"34","join_group":{"group_id":"club","message":"hi, it's Carol"}}"#,
    )
    .await;
    let joined = raw::answer(&mut ws, "34").await.unwrap();
    assert_eq!(
        (
            joined["join_result"]["request"]["state"].as_str(),
            joined["join_result"].get("joined")
        ),
        (Some("pending"), None),
        "{joined}"
    );
    // Erin asks to join; the answer and the request list in JSON.
    let (erin, _erin_ev) = connect(&server.url, &app, "erin", "e").await;
    erin.join_group("team", "hi").await.unwrap();
    raw::send(
        &mut ws,
        r#"{"id":"37","answer_join_request":{"group_id":"team","user_id":"erin","accept":true}}"#,
    )
    .await;
    let answered = raw::answer(&mut ws, "37").await.unwrap();
    assert_eq!(answered["join_request"]["state"], "accepted");
    raw::send(
        &mut ws,
        r#"{"id":"49","transfer_owner":{"group_id":"team","user_id":"bob"}}"#,
    )
    .await;
    assert_eq!(raw::answer(&mut ws, "49").await.unwrap()["group"]["owner"], "bob");
    raw::send(&mut ws, r#"{"id":"50","leave_group":{"group_id":"team"}}"#).await;
    assert!(raw::answer(&mut ws, "50").await.unwrap().get("ok").is_some());
    raw::send(&mut ws, r#"{"id":"51","dismiss_group":{"group_id":"team"}}"#).await;
    assert_eq!(
        raw::answer(&mut ws, "51").await.unwrap()["error"]["code"],
        "forbidden",
        "no longer the owner"
    );

    // Errors keep the connection; a malformed frame closes it with bad_frame.
    raw::send(&mut ws, r#"{"id":"52","join_group":{"group_id":"no such group!"}}"#).await;
    assert_eq!(
        raw::answer(&mut ws, "52").await.unwrap()["error"]["code"],
        "invalid_argument"
    );
    raw::send(
        &mut ws,
        r#"{"id":"53","mute_member":{"group_id":"team","user_id":"carol","until":"soon"}}"#,
    )
    .await;
    assert_eq!(raw::answer(&mut ws, "53").await.unwrap_err(), Some(4000));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_examples_of_the_protocol_docs() {
    for (backend, env) in envs().await {
        eprintln!("on {backend}");
        json_examples(env).await;
    }
}
