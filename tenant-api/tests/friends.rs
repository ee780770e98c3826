//! Friends, friend requests and blocks through the REST server API, on SQLite and (when
//! configured) PostgreSQL: the whole flow, blocked and non-friend direct messages, app
//! isolation and bad input.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use serde_json::{json, Value};
use support::*;

fn ids(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[field].as_str().unwrap().to_owned())
        .collect()
}

/// Turns webhooks on (so after-events are written) and optionally the friendship rule.
async fn set_settings(s: &TestServer, a: &TestApp, friendship_required: bool) {
    let mut settings = a.app.settings.clone();
    settings.webhook.url = Some("https://hooks.example.com/tern".into());
    settings.friendship_required_for_direct = friendship_required;
    s.store.update_app_settings(&a.app.id, &settings).await.unwrap();
    s.forget_credentials(&a.app.app_key);
}

async fn outbox_types(s: &TestServer) -> Vec<(String, Value)> {
    s.store
        .due_events(i64::MAX, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let body: Value = serde_json::from_str(&e.body).unwrap();
            (e.event_type, body["data"].clone())
        })
        .collect()
}

async fn request_accept_remark_delete(s: TestServer) {
    let a = s.app("a").await;
    set_settings(&s, &a, false).await;
    let c = &a.client;
    users(c, &["alice", "bob", "carol"]).await;

    let r = call(
        c,
        "POST",
        "/v1/users/alice/friend-requests",
        Some(json!({"to": "bob", "message": "hi, it's Alice"})),
    )
    .await;
    assert_eq!(
        (r["from"].as_str(), r["state"].as_str()),
        (Some("alice"), Some("pending"))
    );
    call(c, "POST", "/v1/users/carol/friend-requests", Some(json!({"to": "bob"}))).await;
    let incoming = call(c, "GET", "/v1/users/bob/friend-requests", None).await;
    assert_eq!(ids(&incoming, "requests", "from"), vec!["alice", "carol"]);
    assert_eq!(incoming["requests"][0]["message"], "hi, it's Alice");
    let page = call(c, "GET", "/v1/users/bob/friend-requests?limit=1", None).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let page2 = call(
        c,
        "GET",
        &format!("/v1/users/bob/friend-requests?limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(ids(&page2, "requests", "from"), vec!["carol"]);

    // Bob accepts Alice and declines Carol.
    let accepted = call(c, "POST", "/v1/users/bob/friend-requests/alice/accept", None).await;
    assert_eq!(accepted["state"], "accepted");
    let declined = call(c, "POST", "/v1/users/bob/friend-requests/carol/decline", None).await;
    assert_eq!(declined["state"], "declined");
    assert_eq!(
        fails(c, "POST", "/v1/users/bob/friend-requests/alice/accept", None).await,
        "not_found",
        "an answered request cannot be answered again"
    );
    assert!(call(c, "GET", "/v1/users/bob/friend-requests", None).await["requests"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(
            &call(c, "GET", "/v1/users/alice/friends", None).await,
            "friends",
            "friend_id"
        ),
        vec!["bob"]
    );
    assert_eq!(
        ids(
            &call(c, "GET", "/v1/users/bob/friends", None).await,
            "friends",
            "friend_id"
        ),
        vec!["alice"]
    );
    assert!(call(c, "GET", "/v1/users/carol/friends", None).await["friends"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        fails(c, "POST", "/v1/users/alice/friend-requests", Some(json!({"to": "bob"}))).await,
        "conflict",
        "friends already"
    );

    // Remark and tags are Alice's own.
    let f = call(
        c,
        "PATCH",
        "/v1/users/alice/friends/bob",
        Some(json!({"remark": "Bobby", "tags": ["work", "climbing"]})),
    )
    .await;
    assert_eq!(
        (f["remark"].as_str(), f["tags"].clone()),
        (Some("Bobby"), json!(["work", "climbing"]))
    );
    let f = call(c, "PATCH", "/v1/users/alice/friends/bob", Some(json!({"tags": []}))).await;
    assert_eq!(
        (f["remark"].as_str(), f["tags"].clone()),
        (Some("Bobby"), json!([])),
        "absent fields are kept"
    );
    assert_eq!(
        call(c, "GET", "/v1/users/bob/friends/alice", None).await["remark"],
        Value::Null
    );

    // One-sided delete: Bob still has Alice.
    call(c, "DELETE", "/v1/users/alice/friends/bob", None).await;
    assert_eq!(fails(c, "GET", "/v1/users/alice/friends/bob", None).await, "not_found");
    call(c, "GET", "/v1/users/bob/friends/alice", None).await;
    assert_eq!(
        fails(c, "DELETE", "/v1/users/alice/friends/bob", None).await,
        "not_found"
    );
    // Both sides.
    call(c, "POST", "/v1/users/alice/friend-requests", Some(json!({"to": "bob"}))).await;
    call(c, "POST", "/v1/users/bob/friend-requests/alice/accept", None).await;
    call(c, "DELETE", "/v1/users/bob/friends/alice?both=true", None).await;
    assert_eq!(fails(c, "GET", "/v1/users/alice/friends/bob", None).await, "not_found");
    assert_eq!(fails(c, "GET", "/v1/users/bob/friends/alice", None).await, "not_found");

    // The after-events with who and what (events of one millisecond have no set order).
    let mut events: Vec<(String, Value)> = outbox_types(&s)
        .await
        .into_iter()
        .filter(|(t, _)| t.starts_with("friend."))
        .collect();
    let by_text = |a: &(String, Value), b: &(String, Value)| format!("{a:?}").cmp(&format!("{b:?}"));
    events.sort_by(by_text);
    let mut want = vec![
        (
            "friend.added".to_owned(),
            json!({"user_id": "alice", "friend_id": "bob"}),
        ),
        (
            "friend.removed".to_owned(),
            json!({"user_id": "alice", "friend_id": "bob", "both": false}),
        ),
        (
            "friend.added".to_owned(),
            json!({"user_id": "alice", "friend_id": "bob"}),
        ),
        (
            "friend.removed".to_owned(),
            json!({"user_id": "bob", "friend_id": "alice", "both": true}),
        ),
    ];
    want.sort_by(by_text);
    assert_eq!(events, want);
}
on_every_store!(friends_flow, request_accept_remark_delete);

async fn blocks_and_direct_messages(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    users(c, &["alice", "bob", "carol"]).await;
    let before = c.send_text("alice", "bob", "k0", "before the block").await.unwrap();

    let b = call(c, "PUT", "/v1/users/bob/blocks/alice", None).await;
    assert_eq!(
        (b["user_id"].as_str(), b["blocked_id"].as_str()),
        (Some("bob"), Some("alice"))
    );
    call(c, "PUT", "/v1/users/bob/blocks/alice", None).await;
    call(c, "PUT", "/v1/users/bob/blocks/carol", None).await;
    let list = call(c, "GET", "/v1/users/bob/blocks", None).await;
    assert_eq!(ids(&list, "blocks", "blocked_id"), vec!["alice", "carol"]);

    // Alice cannot write to Bob, nor ask him to be friends; Bob can still write to her.
    let e = c.send_text("alice", "bob", "k1", "hello?").await.unwrap_err();
    assert_eq!(e.code(), Some("blocked"));
    assert_eq!(
        fails(c, "POST", "/v1/users/alice/friend-requests", Some(json!({"to": "bob"}))).await,
        "blocked"
    );
    // A retry of what was stored before the block still gets its first answer.
    let retry = c.send_text("alice", "bob", "k0", "before the block").await.unwrap();
    assert_eq!(retry.msg_id, before.msg_id);
    c.send_text("bob", "alice", "k2", "I can write").await.unwrap();
    let history = c.history("d:alice:bob", 0, 50).await.unwrap();
    assert_eq!(
        history.iter().map(|m| m.client_msg_id.as_str()).collect::<Vec<_>>(),
        vec!["k0", "k2"],
        "nothing of Alice's was stored after the block"
    );

    call(c, "DELETE", "/v1/users/bob/blocks/alice", None).await;
    assert_eq!(
        fails(c, "DELETE", "/v1/users/bob/blocks/alice", None).await,
        "not_found"
    );
    c.send_text("alice", "bob", "k3", "hello again").await.unwrap();
    assert_eq!(
        ids(
            &call(c, "GET", "/v1/users/bob/blocks", None).await,
            "blocks",
            "blocked_id"
        ),
        vec!["carol"]
    );
}
on_every_store!(blocks, blocks_and_direct_messages);

async fn friendship_required_for_direct(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    users(c, &["alice", "bob"]).await;
    // Off by default.
    c.send_text("alice", "bob", "k1", "hi").await.unwrap();
    set_settings(&s, &a, true).await;
    let e = c.send_text("alice", "bob", "k2", "hi").await.unwrap_err();
    assert_eq!(e.code(), Some("not_friends"));
    c.send_text("alice", "alice", "k3", "a note to myself").await.unwrap();

    call(c, "POST", "/v1/users/alice/friend-requests", Some(json!({"to": "bob"}))).await;
    call(c, "POST", "/v1/users/bob/friend-requests/alice/accept", None).await;
    c.send_text("alice", "bob", "k4", "friends now").await.unwrap();
    c.send_text("bob", "alice", "k5", "yes").await.unwrap();
    // Once one side deletes the other, they are not friends any more.
    call(c, "DELETE", "/v1/users/bob/friends/alice", None).await;
    let e = c.send_text("alice", "bob", "k6", "still?").await.unwrap_err();
    assert_eq!(e.code(), Some("not_friends"));
}
on_every_store!(friendship_setting, friendship_required_for_direct);

async fn isolation_and_bad_input(s: TestServer) {
    let a = s.app("a").await;
    let other = s.app("b").await;
    users(&a.client, &["alice", "bob"]).await;
    users(&other.client, &["mallory"]).await;
    let c = &a.client;
    call(c, "POST", "/v1/users/alice/friend-requests", Some(json!({"to": "bob"}))).await;
    call(c, "POST", "/v1/users/bob/friend-requests/alice/accept", None).await;

    // Another app's users do not exist here, and this app's do not exist there.
    let o = &other.client;
    for (method, path, body) in [
        (
            "POST",
            "/v1/users/mallory/friend-requests",
            Some(json!({"to": "alice"})),
        ),
        ("GET", "/v1/users/alice/friends", None),
        ("GET", "/v1/users/alice/friends/bob", None),
        ("PATCH", "/v1/users/alice/friends/bob", Some(json!({"remark": "x"}))),
        ("DELETE", "/v1/users/alice/friends/bob?both=true", None),
        ("POST", "/v1/users/bob/friend-requests/alice/accept", None),
        ("GET", "/v1/users/alice/friend-requests", None),
        ("PUT", "/v1/users/mallory/blocks/alice", None),
        ("GET", "/v1/users/alice/blocks", None),
    ] {
        assert_eq!(fails(o, method, path, body).await, "not_found", "{method} {path}");
    }
    assert_eq!(
        fails(
            c,
            "POST",
            "/v1/users/alice/friend-requests",
            Some(json!({"to": "mallory"}))
        )
        .await,
        "not_found"
    );
    call(c, "GET", "/v1/users/alice/friends/bob", None).await;
    call(c, "GET", "/v1/users/bob/friends/alice", None).await;

    // Bad input, each with its code.
    let long = "x".repeat(501);
    for (method, path, body, want) in [
        (
            "POST",
            "/v1/users/alice/friend-requests",
            Some(json!({"to": "alice"})),
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/users/alice/friend-requests",
            Some(json!({"to": "b b"})),
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/users/alice/friend-requests",
            Some(json!({"to": "bob", "message": long})),
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/users/alice/friend-requests",
            Some(json!({"to": 5})),
            "invalid_json",
        ),
        (
            "POST",
            "/v1/users/alice/friend-requests",
            Some(json!({"user": "bob"})),
            "invalid_json",
        ),
        (
            "PATCH",
            "/v1/users/alice/friends/bob",
            Some(json!({"remark": "r".repeat(101)})),
            "invalid_argument",
        ),
        (
            "PATCH",
            "/v1/users/alice/friends/bob",
            Some(json!({"tags": [""]})),
            "invalid_argument",
        ),
        (
            "PATCH",
            "/v1/users/alice/friends/bob",
            Some(json!({"colour": "red"})),
            "invalid_json",
        ),
        ("GET", "/v1/users/alice/friends?cursor=***", None, "invalid_argument"),
        (
            "DELETE",
            "/v1/users/alice/friends/bob?both=maybe",
            None,
            "invalid_argument",
        ),
        ("PUT", "/v1/users/alice/blocks/alice", None, "invalid_argument"),
        ("PUT", "/v1/users/alice/blocks/nobody", None, "not_found"),
        (
            "POST",
            "/v1/users/nobody/friend-requests/alice/accept",
            None,
            "not_found",
        ),
    ] {
        assert_eq!(
            fails(c, method, path, body.clone()).await,
            want,
            "{method} {path} {body:?}"
        );
    }
    let tags: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    assert_eq!(
        fails(c, "PATCH", "/v1/users/alice/friends/bob", Some(json!({"tags": tags}))).await,
        "invalid_argument"
    );
    let f = call(c, "GET", "/v1/users/alice/friends/bob", None).await;
    assert_eq!(
        (f["remark"].clone(), f["tags"].clone()),
        (Value::Null, json!([])),
        "nothing half-written"
    );
}
on_every_store!(friends_isolation_and_bad_input, isolation_and_bad_input);
