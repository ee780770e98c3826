//! The group permission matrix, from the SDK over real sockets, on SQLite and (when
//! configured) PostgreSQL: what an owner, an admin, a member and a non-member may and may not
//! do; that a muted member cannot send; that a removed member stops receiving at once; and
//! that group and room ids of another app are `not_found`.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;
use tern_platform::delivery::Actor;
use tern_platform::ids::ConversationId;
use tern_platform::store::SeqRange;
use tern_sdk::{Client, ClientError, Event, GroupChanges, NewGroup, Target};

fn code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> String {
    match r {
        Ok(v) => format!("ok: {v:?}"),
        Err(e) => e.code().unwrap_or("<none>").to_owned(),
    }
}

async fn say(c: &Client, group: &str, text: &str) -> String {
    code(
        c.send(Target::Group(group.into()), "text", json!({ "text": text }))
            .await,
    )
}

fn rename() -> GroupChanges {
    GroupChanges {
        name: Some("renamed".into()),
        ..GroupChanges::default()
    }
}

async fn the_matrix(env: Env) {
    let app = env.app(|_| {}).await;
    app.users(&env, &["owner", "admin", "admin2", "member", "member2", "outsider"])
        .await;
    let server = env.start(None).await;
    let (owner, _owner_ev) = connect(&server.url, &app, "owner", "o").await;
    let (admin, _admin_ev) = connect(&server.url, &app, "admin", "a").await;
    let (admin2, _admin2_ev) = connect(&server.url, &app, "admin2", "a2").await;
    let (member, _member_ev) = connect(&server.url, &app, "member", "m").await;
    let (member2, mut member2_ev) = connect(&server.url, &app, "member2", "m2").await;
    let (outsider, _outsider_ev) = connect(&server.url, &app, "outsider", "x").await;
    owner
        .create_group(NewGroup {
            group_id: "g".into(),
            name: "G".into(),
            members: ["admin", "admin2", "member", "member2"].map(String::from).to_vec(),
            ..NewGroup::default()
        })
        .await
        .unwrap();
    owner.set_member_role("g", "admin", "admin").await.unwrap();
    owner.set_member_role("g", "admin2", "admin").await.unwrap();

    // ---- a member ----
    assert_eq!(
        code(member.remove_member("g", "member2").await),
        "forbidden",
        "a member cannot remove others"
    );
    assert_eq!(code(member.mute_member("g", "member2", None).await), "forbidden");
    assert_eq!(code(member.set_member_role("g", "member2", "admin").await), "forbidden");
    assert_eq!(code(member.update_group("g", rename()).await), "forbidden");
    assert_eq!(code(member.dismiss_group("g").await), "forbidden");
    assert_eq!(code(member.transfer_group("g", "member").await), "forbidden");
    assert_eq!(code(member.join_requests("g", None, 10).await), "forbidden");
    assert_eq!(
        code(member.answer_join_request("g", "outsider", true).await),
        "forbidden"
    );
    assert_eq!(
        code(member.remove_member("g", "member").await),
        "invalid_argument",
        "leaving is `leave`"
    );
    assert_eq!(
        member.members("g", None, 10).await.unwrap().len(),
        5,
        "a member sees the members"
    );

    // ---- an admin ----
    assert_eq!(
        code(admin.dismiss_group("g").await),
        "forbidden",
        "an admin cannot dismiss"
    );
    assert_eq!(code(admin.set_member_role("g", "member", "admin").await), "forbidden");
    assert_eq!(code(admin.transfer_group("g", "admin").await), "forbidden");
    assert_eq!(code(admin.remove_member("g", "owner").await), "forbidden");
    assert_eq!(
        code(admin.remove_member("g", "admin2").await),
        "forbidden",
        "admins do not remove admins"
    );
    assert_eq!(code(admin2.remove_member("g", "admin").await), "forbidden");
    assert_eq!(code(admin.mute_member("g", "admin2", None).await), "forbidden");
    assert_eq!(code(admin.mute_member("g", "owner", None).await), "forbidden");
    admin.update_group("g", rename()).await.unwrap();
    assert!(admin.join_requests("g", None, 10).await.unwrap().is_empty());

    // ---- the owner ----
    assert_eq!(
        code(owner.leave_group("g").await),
        "forbidden",
        "the owner transfers first"
    );
    assert_eq!(code(owner.remove_member("g", "owner").await), "invalid_argument");
    assert_eq!(code(owner.mute_member("g", "owner", None).await), "forbidden");
    owner.mute_member("g", "admin2", None).await.unwrap();
    owner.unmute_member("g", "admin2").await.unwrap();

    // ---- a muted member cannot send; mute_all silences all but admins ----
    admin.mute_member("g", "member", None).await.unwrap();
    assert_eq!(
        say(&member, "g", "hello?").await,
        "member_muted",
        "a muted member cannot send"
    );
    admin.unmute_member("g", "member").await.unwrap();
    let hello = member
        .send(Target::Group("g".into()), "text", json!({"text": "hello"}))
        .await
        .unwrap();
    owner
        .update_group(
            "g",
            GroupChanges {
                mute_all: Some(true),
                ..GroupChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(say(&member, "g", "x").await, "group_muted");
    assert!(say(&admin, "g", "admins speak").await.starts_with("ok"));
    assert!(say(&owner, "g", "and the owner").await.starts_with("ok"));
    owner
        .update_group(
            "g",
            GroupChanges {
                mute_all: Some(false),
                ..GroupChanges::default()
            },
        )
        .await
        .unwrap();

    // ---- a non-member ----
    assert_eq!(
        code(outsider.history("g:g", 0, 50).await),
        "not_found",
        "a non-member cannot read history"
    );
    assert_eq!(code(outsider.history_before("g:g", 100, 50).await), "not_found");
    assert_eq!(say(&outsider, "g", "let me in").await, "forbidden");
    assert_eq!(code(outsider.members("g", None, 10).await), "forbidden");
    assert_eq!(code(outsider.invite("g", &["outsider"]).await), "forbidden");
    assert_eq!(code(outsider.update_group("g", rename()).await), "forbidden");
    assert_eq!(code(outsider.remove_member("g", "member").await), "forbidden");
    assert_eq!(code(outsider.read_counts("g", &[&hello.msg_id]).await), "forbidden");
    assert_eq!(
        code(outsider.readers("g", &hello.msg_id, false, None, 10).await),
        "forbidden"
    );
    assert_eq!(code(outsider.typing("g:g").await), "not_found");
    assert_eq!(code(outsider.leave_group("g").await), "not_found");
    assert_eq!(
        outsider.group("g").await.unwrap().name,
        "renamed",
        "the profile is public in the app"
    );

    // ---- an admin removes a member: they stop receiving at once ----
    // A direct message marks where member2's stream stands before the removal.
    server.send_direct(&app, "owner", "member2", "before").await;
    wait_for_text(&mut member2_ev, "before").await;
    admin.remove_member("g", "member2").await.unwrap();
    // Sent after the removal returned: it must not reach member2. The direct message after
    // it is published later on the same path, so member2 getting it first proves the group
    // message was never sent to them.
    say(&owner, "g", "after the removal").await;
    server.send_direct(&app, "owner", "member2", "after").await;
    let mut seen = Vec::new();
    loop {
        // Messages, and the notices of the user's own system conversation.
        let (conversation, content) = next_matching(&mut member2_ev, |e| match e {
            Event::Message(m) => Some((m.conversation_id, m.content)),
            Event::Notification {
                conversation_id: Some(c),
                content,
                ..
            } => Some((c, content)),
            _ => None,
        })
        .await;
        let done = content["text"] == "after";
        seen.push((conversation, content));
        if done {
            break;
        }
    }
    assert!(
        seen.iter().all(|(c, _)| c != "g:g"),
        "nothing of the group after the removal: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(c, content)| c == "s:member2" && content["event"] == "removed_from_group"),
        "member2 is told: {seen:?}"
    );
    assert_eq!(say(&member2, "g", "still here?").await, "forbidden");
    assert_eq!(code(member2.history("g:g", 0, 50).await), "not_found");

    // ---- the owner may do what others may not ----
    owner.remove_member("g", "admin2").await.unwrap();
    owner.set_member_role("g", "admin", "member").await.unwrap();
    owner.transfer_group("g", "member").await.unwrap();
    assert_eq!(code(owner.dismiss_group("g").await), "forbidden", "no longer the owner");
    member.dismiss_group("g").await.unwrap();

    server.stop().await;
}

async fn wait_for_text(events: &mut tern_sdk::Events, text: &str) {
    next_matching(events, |e| match e {
        Event::Message(m) if m.content["text"] == text => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_do_what_in_a_group() {
    for (backend, env) in envs().await {
        eprintln!("on {backend}");
        the_matrix(env).await;
    }
}

/// Group and room ids of another app are `not_found`, from the SDK and the pipeline the
/// server API runs on, and nothing crosses over.
async fn other_apps_ids(env: Env) {
    let mine = env.app(|_| {}).await;
    let theirs = env.app(|_| {}).await;
    mine.users(&env, &["ann", "ben"]).await;
    theirs.users(&env, &["ann", "ben"]).await;
    let server = env.start(None).await;
    let (ann, _ann_ev) = connect(&server.url, &mine, "ann", "a").await;
    let (ben, mut ben_ev) = connect(&server.url, &mine, "ben", "b").await;
    ann.create_group(NewGroup {
        group_id: "g".into(),
        name: "G".into(),
        members: vec!["ben".into()],
        join_policy: Some("free".into()),
        ..NewGroup::default()
    })
    .await
    .unwrap();
    ann.join_room("lobby").await.unwrap();
    ben.join_room("lobby").await.unwrap();
    ann.send(
        Target::Room("lobby".into()),
        "text",
        json!({"text": "in my app's room"}),
    )
    .await
    .unwrap();
    wait_for_text(&mut ben_ev, "in my app's room").await;

    use tern_platform::service::messages::history_range;
    // The server API's door (the pipeline): another app's group and room are not found.
    let p = &server.pipeline;
    for c in ["g:g", "r:lobby"] {
        let c = ConversationId::parse(c).unwrap();
        let e = history_range(p, &theirs.app, &Actor::Server, &c, SeqRange::After(0), 10)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "not_found", "{c}");
        assert!(!history_range(p, &mine.app, &Actor::Server, &c, SeqRange::After(0), 10)
            .await
            .unwrap()
            .is_empty());
    }
    let e = tern_platform::groups::get(p, &theirs.app, &tern_platform::ids::GroupId::parse("g").unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_found");

    // The other app's "ann", with the same ids.
    let (other, mut other_ev) = connect(&server.url, &theirs, "ann", "o").await;
    assert_eq!(code(other.group("g").await), "not_found");
    assert_eq!(code(other.join_group("g", "").await), "not_found");
    assert_eq!(code(other.members("g", None, 10).await), "not_found");
    assert_eq!(code(other.invite("g", &["ben"]).await), "not_found");
    assert_eq!(code(other.dismiss_group("g").await), "not_found");
    assert_eq!(code(other.leave_group("g").await), "not_found");
    assert_eq!(code(other.history("g:g", 0, 10).await), "not_found");
    assert_eq!(say(&other, "g", "hi").await, "not_found");
    assert!(other.my_groups(None, 10).await.unwrap().is_empty());
    // Joining "lobby" there is another room: none of this app's messages.
    other.join_room("lobby").await.unwrap();
    assert!(other.history("r:lobby", 0, 10).await.unwrap().is_empty());
    ann.send(Target::Room("lobby".into()), "text", json!({"text": "still mine"}))
        .await
        .unwrap();
    wait_for_text(&mut ben_ev, "still mine").await;
    other
        .send(Target::Room("lobby".into()), "text", json!({"text": "theirs"}))
        .await
        .unwrap();
    wait_for_text(&mut other_ev, "theirs").await;
    no_more_messages(&mut other_ev).await;
    // Nothing changed in my app.
    assert_eq!(ann.group("g").await.unwrap().member_count, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_and_room_ids_of_another_app_are_not_found() {
    for (backend, env) in envs().await {
        eprintln!("on {backend}");
        other_apps_ids(env).await;
    }
}
