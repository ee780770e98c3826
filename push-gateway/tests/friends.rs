//! Friends and blocks from the SDK over real sockets: a request reaches the other user at
//! once, acceptance reaches the asker, lists, remarks, deletes, blocks and the
//! friendship rule for direct messages.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;
use tern_sdk::{Event, Target};

fn friend_notification(kind: &'static str) -> impl FnMut(Event) -> Option<serde_json::Value> {
    move |e| match e {
        Event::Notification { content, .. } if content["type"] == kind => Some(content),
        _ => None,
    }
}

#[tokio::test]
async fn the_whole_flow_from_the_sdk() {
    let env = Env::new().await;
    let app = env.app(|s| s.friendship_required_for_direct = true).await;
    app.users(&env, &["alice", "bob", "carol"]).await;
    let server = env.start(None).await;
    let (alice, mut alice_ev) = connect(&server.url, &app, "alice", "a-phone").await;
    let (bob, mut bob_ev) = connect(&server.url, &app, "bob", "b-phone").await;

    // Not friends yet: the app's rule refuses the direct message.
    let e = alice
        .send(Target::User("bob".into()), "text", json!({"text": "hi"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("not_friends"));

    let r = alice.send_friend_request("bob", "it's Alice").await.unwrap();
    assert_eq!((r.from.as_str(), r.state.as_str()), ("alice", "pending"));
    let pushed = next_matching(&mut bob_ev, friend_notification("friend_request")).await;
    assert_eq!(
        (pushed["from"].as_str(), pushed["message"].as_str()),
        (Some("alice"), Some("it's Alice"))
    );
    let pending = bob.friend_requests(None, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|r| r.from.as_str()).collect::<Vec<_>>(),
        vec!["alice"]
    );

    let accepted = bob.answer_friend_request("alice", true).await.unwrap();
    assert_eq!(accepted.state, "accepted");
    let pushed = next_matching(&mut alice_ev, friend_notification("friend_accepted")).await;
    assert_eq!(pushed["by"], "bob");
    assert_eq!(
        alice
            .friends(None, 10)
            .await
            .unwrap()
            .iter()
            .map(|f| f.friend_id.as_str())
            .collect::<Vec<_>>(),
        vec!["bob"]
    );
    alice
        .send(Target::User("bob".into()), "text", json!({"text": "friends now"}))
        .await
        .unwrap();
    assert_eq!(texts(&mut bob_ev, 1).await[0].2, "friends now");

    // Remark and tags: absent keeps, given replaces.
    let f = alice
        .update_friend("bob", Some("Bobby"), Some(&["work"]))
        .await
        .unwrap();
    assert_eq!(
        (f.remark.as_deref(), f.tags.clone()),
        (Some("Bobby"), vec!["work".to_owned()])
    );
    let f = alice.update_friend("bob", None, None).await.unwrap();
    assert_eq!(
        (f.remark.as_deref(), f.tags.clone()),
        (Some("Bobby"), vec!["work".to_owned()])
    );
    assert_eq!(
        alice.update_friend("carol", Some("x"), None).await.unwrap_err().code(),
        Some("not_found")
    );

    // Declining, and bad input.
    let (carol, _carol_ev) = connect(&server.url, &app, "carol", "c-phone").await;
    carol.send_friend_request("bob", "").await.unwrap();
    assert_eq!(
        bob.answer_friend_request("carol", false).await.unwrap().state,
        "declined"
    );
    assert!(bob.friend_requests(None, 10).await.unwrap().is_empty());
    assert_eq!(
        carol.send_friend_request("carol", "").await.unwrap_err().code(),
        Some("invalid_argument")
    );
    assert_eq!(
        carol.send_friend_request("no body", "").await.unwrap_err().code(),
        Some("invalid_argument")
    );
    assert_eq!(
        carol.send_friend_request("nobody", "").await.unwrap_err().code(),
        Some("not_found")
    );

    // Blocks: Bob blocks Carol; her requests fail; he unblocks.
    bob.block("carol").await.unwrap();
    assert_eq!(bob.blocks(None, 10).await.unwrap(), vec!["carol".to_owned()]);
    assert_eq!(
        carol.send_friend_request("bob", "again").await.unwrap_err().code(),
        Some("blocked")
    );
    bob.unblock("carol").await.unwrap();
    assert_eq!(bob.unblock("carol").await.unwrap_err().code(), Some("not_found"));
    carol.send_friend_request("bob", "again").await.unwrap();

    // Deleting both sides ends the friendship and, with it, direct messages.
    bob.delete_friend("alice", true).await.unwrap();
    assert!(alice.friends(None, 10).await.unwrap().is_empty());
    let e = alice
        .send(Target::User("bob".into()), "text", json!({"text": "still there?"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("not_friends"));
    server.stop().await;
}

#[tokio::test]
async fn a_blocked_users_direct_messages_fail() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "bob"]).await;
    let server = env.start(None).await;
    let (alice, _alice_ev) = connect(&server.url, &app, "alice", "a-phone").await;
    let (bob, mut bob_ev) = connect(&server.url, &app, "bob", "b-phone").await;
    bob.block("alice").await.unwrap();
    let e = alice
        .send(Target::User("bob".into()), "text", json!({"text": "hello?"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("blocked"));
    // Bob can still write to Alice; nothing of Alice's was stored.
    bob.send(Target::User("alice".into()), "text", json!({"text": "I can"}))
        .await
        .unwrap();
    assert_eq!(texts(&mut bob_ev, 1).await[0].2, "I can");
    let history = bob.history("d:alice:bob", 0, 50).await.unwrap();
    assert_eq!(history.len(), 1);
    bob.unblock("alice").await.unwrap();
    alice
        .send(Target::User("bob".into()), "text", json!({"text": "thanks"}))
        .await
        .unwrap();
    server.stop().await;
}
