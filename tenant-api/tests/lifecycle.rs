//! The message lifecycle through the server API, REST and gRPC, on SQLite and (when
//! configured) PostgreSQL: replies, edits with their webhook, deletes for one user,
//! extensions with compare-and-set, reactions, recalls; and for every new route malformed,
//! oversized, unsigned and cross-app requests.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use serde_json::{json, Value};
use support::*;
use tern_platform::proto::server_v1 as pb;
use tern_sdk::server::{encode_segment, ServerClient, ServerError};
use tern_tenant_api::grpc::error_code;

async fn call(c: &ServerClient, method: &str, path: &str, body: Option<Value>) -> Value {
    c.request::<Value>(method, path, body.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
}

/// The status and code of a request that must fail.
async fn fails(c: &ServerClient, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    match c.request::<Value>(method, path, body.as_ref()).await {
        Err(ServerError::Api { status, code, .. }) => (status, code),
        other => panic!("{method} {path} should fail, got {other:?}"),
    }
}

fn text(t: &str) -> Value {
    json!({ "text": t })
}

fn msg_path(id: &str, rest: &str) -> String {
    format!("/v1/messages/{}{rest}", encode_segment(id))
}

fn reaction_path(id: &str, reaction: &str, user: &str) -> String {
    msg_path(
        id,
        &format!("/reactions/{}/users/{}", encode_segment(reaction), encode_segment(user)),
    )
}

async fn setup(s: &TestServer, name: &str) -> TestApp {
    let a = s.app(name).await;
    let users: Vec<Value> = ["alice", "bob", "carol"].iter().map(|u| json!({"id": u})).collect();
    a.client.upsert_users(&users).await.unwrap();
    a
}

async fn rest_flow(s: TestServer) {
    let a = setup(&s, "a").await;
    let c = &a.client;
    // Webhooks on, so the after-events are written (and read back below).
    let mut settings = a.app.settings.clone();
    settings.webhook.url = Some("https://hooks.example.com/tern".into());
    s.store.update_app_settings(&a.app.id, &settings).await.unwrap();
    s.forget_credentials(&a.app.app_key);

    let m1 = c.send_text("alice", "bob", "c1", "first").await.unwrap();
    let reply = c
        .send(
            &json!({"from": "bob", "to": {"user": "alice"}, "type": "text", "content": text("re"),
                      "reply_to": m1.msg_id, "client_msg_id": "r1"}),
        )
        .await
        .unwrap();
    let shown = c.get_message(&reply.msg_id).await.unwrap();
    assert_eq!(shown.reply_to.as_deref(), Some(m1.msg_id.as_str()));
    assert_eq!(shown.quoted.as_ref().unwrap()["content"], text("first"));

    // Edit: the quote shows it; the webhook says it.
    let edited = c.edit_message(&m1.msg_id, &text("first, fixed")).await.unwrap();
    assert_eq!(
        (edited.content.clone(), edited.edited_at.is_some()),
        (text("first, fixed"), true)
    );
    assert!(edited.version > 0);
    let quoted = c.get_message(&reply.msg_id).await.unwrap().quoted.unwrap();
    assert_eq!(
        (quoted["content"].clone(), quoted["from"].clone()),
        (text("first, fixed"), json!("alice"))
    );
    let events: Vec<Value> = s
        .store
        .due_events(i64::MAX, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "message.edited")
        .map(|e| serde_json::from_str::<Value>(&e.body).unwrap()["data"].clone())
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (
            events[0]["msg_id"].as_str(),
            events[0]["content"].clone(),
            events[0]["by"].clone()
        ),
        (Some(m1.msg_id.as_str()), text("first, fixed"), Value::Null)
    );
    let sent: Vec<Value> = s
        .store
        .due_events(i64::MAX, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "message.sent")
        .map(|e| serde_json::from_str::<Value>(&e.body).unwrap()["data"].clone())
        .collect();
    assert_eq!(
        sent[1]["reply_to"],
        json!(m1.msg_id),
        "message.sent names what a reply quotes"
    );

    // Reactions, for users who can see the message.
    let r = c.add_reaction(&m1.msg_id, "👍", "bob").await.unwrap();
    assert_eq!((r.count, r.reacted, r.users.clone()), (1, true, vec!["bob".to_owned()]));
    assert_eq!(c.add_reaction(&m1.msg_id, "👍", "bob").await.unwrap().count, 1);
    let r = c.add_reaction(&m1.msg_id, "👍", "alice").await.unwrap();
    assert_eq!(r.users, vec!["bob", "alice"]);
    let page = c.reaction_users(&m1.msg_id, "👍", None, 1).await.unwrap();
    assert_eq!(page["users"][0]["user_id"], "bob");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = c.reaction_users(&m1.msg_id, "👍", Some(&cursor), 1).await.unwrap();
    assert_eq!(rest["users"][0]["user_id"], "alice");
    let read = c.get_message(&m1.msg_id).await.unwrap();
    assert_eq!(
        (read.reactions[0].count, read.reactions[0].reacted),
        (2, false),
        "the app reads as nobody"
    );
    assert_eq!(c.remove_reaction(&m1.msg_id, "👍", "bob").await.unwrap().count, 1);
    for (reaction, user, want) in [
        ("👍", "carol", (404, "not_found")),
        ("👍", "zed", (404, "not_found")),
        ("two words", "bob", (400, "invalid_argument")),
    ] {
        let got = fails(c, "PUT", &reaction_path(&m1.msg_id, reaction, user), None).await;
        assert_eq!((got.0, got.1.as_str()), want, "{reaction} by {user}");
    }

    // Extensions: as the app or as a member, versioned.
    let x = c
        .update_extensions(
            &m1.msg_id,
            &json!({"user_id": "bob", "set": [{"key": "vote", "value": "yes", "expected_version": 0}]}),
        )
        .await
        .unwrap();
    assert_eq!(
        (x.extensions[0].version, x.extensions[0].updated_by.as_deref()),
        (1, Some("bob"))
    );
    let stale = fails(
        c,
        "POST",
        &msg_path(&m1.msg_id, "/extensions"),
        Some(json!({"set": [{"key": "vote", "value": "no", "expected_version": 0}]})),
    )
    .await;
    assert_eq!(stale, (409, "version_conflict".to_owned()));
    assert_eq!(
        fails(
            c,
            "POST",
            &msg_path(&m1.msg_id, "/extensions"),
            Some(json!({"user_id": "carol", "set": [{"key": "k", "value": "v"}]}))
        )
        .await,
        (404, "not_found".to_owned())
    );
    let x = c
        .update_extensions(
            &m1.msg_id,
            &json!({"delete": [{"key": "vote", "expected_version": 1}], "set": [{"key": "n", "value": "1"}]}),
        )
        .await
        .unwrap();
    assert_eq!(
        x.extensions.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        vec!["n"]
    );
    assert_eq!(c.extensions(&m1.msg_id).await.unwrap(), x);
    assert_eq!(c.get_message(&m1.msg_id).await.unwrap().extensions.len(), 1);

    // Delete for one user: gone from their list's last message and their own history only.
    let d = c.delete_for_user(&reply.msg_id, "alice").await.unwrap();
    assert_eq!(d["deleted"], true);
    assert_eq!(
        c.delete_for_user(&reply.msg_id, "alice").await.unwrap()["deleted"],
        false
    );
    assert_eq!(
        fails(
            c,
            "POST",
            &msg_path(&reply.msg_id, "/delete-for-user"),
            Some(json!({"user_id": "carol"}))
        )
        .await,
        (404, "not_found".to_owned())
    );
    let alices = call(c, "GET", "/v1/users/alice/conversations", None).await;
    assert_eq!(alices["conversations"][0]["last_message"]["msg_id"], json!(m1.msg_id));
    let bobs = call(c, "GET", "/v1/users/bob/conversations", None).await;
    assert_eq!(bobs["conversations"][0]["last_message"]["msg_id"], json!(reply.msg_id));
    assert_eq!(
        c.history(&m1.conversation_id, 0, 10).await.unwrap().len(),
        2,
        "the app sees all"
    );

    // A recalled message takes nothing more.
    c.recall(&m1.msg_id).await.unwrap();
    for (method, path, body) in [
        ("PATCH", msg_path(&m1.msg_id, ""), Some(json!({"content": text("x")}))),
        ("PUT", reaction_path(&m1.msg_id, "🎉", "bob"), None),
        (
            "POST",
            msg_path(&m1.msg_id, "/extensions"),
            Some(json!({"set": [{"key": "k", "value": "v"}]})),
        ),
    ] {
        assert_eq!(
            fails(c, method, &path, body).await,
            (422, "message_recalled".to_owned()),
            "{method} {path}"
        );
    }
    let late_reply =
        json!({"from": "bob", "to": {"user": "alice"}, "type": "text", "content": text("x"), "reply_to": m1.msg_id});
    assert_eq!(
        fails(c, "POST", "/v1/messages", Some(late_reply)).await,
        (422, "message_recalled".to_owned())
    );
    // ... but a retry of a reply stored before the recall still gets its first answer.
    let retry = c
        .send(
            &json!({"from": "bob", "to": {"user": "alice"}, "type": "text", "content": text("re"),
                      "reply_to": m1.msg_id, "client_msg_id": "r1"}),
        )
        .await
        .unwrap();
    assert_eq!(retry, reply);
    let quoted = c.get_message(&reply.msg_id).await.unwrap().quoted.unwrap();
    assert_eq!(
        (quoted["recalled"].clone(), quoted["content"].clone()),
        (json!(true), Value::Null)
    );
}
on_every_store!(rest_replies_edits_reactions_extensions_and_deletes, rest_flow);

async fn rest_refusals(s: TestServer) {
    let a = setup(&s, "a").await;
    let b = setup(&s, "b").await;
    let c = &a.client;
    let m = c.send_text("alice", "bob", "c1", "hi").await.unwrap();
    let id = m.msg_id.as_str();
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("PATCH", msg_path(id, ""), Some(json!({"content": text("x")}))),
        (
            "POST",
            msg_path(id, "/delete-for-user"),
            Some(json!({"user_id": "bob"})),
        ),
        ("GET", msg_path(id, "/extensions"), None),
        (
            "POST",
            msg_path(id, "/extensions"),
            Some(json!({"set": [{"key": "k", "value": "v"}]})),
        ),
        ("PUT", reaction_path(id, "👍", "bob"), None),
        ("DELETE", reaction_path(id, "👍", "bob"), None),
        (
            "GET",
            msg_path(id, &format!("/reactions/{}/users", encode_segment("👍"))),
            None,
        ),
    ];
    for (method, path, body) in &routes {
        // Another app's message does not exist for this app.
        assert_eq!(
            fails(&b.client, method, path, body.clone()).await,
            (404, "not_found".to_owned()),
            "{method} {path} from another app"
        );
        // Unsigned.
        let url = format!("{}{path}", s.base);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = s.http().request(m, url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), 401, "{method} {path} unsigned");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"]["code"], "missing_credentials");
        // Malformed message ids name nothing.
        let bad = path.replace(&encode_segment(id), "m_not-an-id");
        assert_ne!(&bad, path);
        assert_eq!(fails(c, method, &bad, body.clone()).await.0, 404, "{method} {bad}");
    }
    // Malformed and oversized bodies.
    let cases: Vec<(&str, String, Value, (u16, &str))> = vec![
        (
            "PATCH",
            msg_path(id, ""),
            json!({"content": text("x"), "extra": 1}),
            (400, "invalid_json"),
        ),
        (
            "PATCH",
            msg_path(id, ""),
            json!({"content": "not an object"}),
            (400, "invalid_argument"),
        ),
        (
            "PATCH",
            msg_path(id, ""),
            json!({"content": text(&"x".repeat(13_000))}),
            (400, "content_too_large"),
        ),
        (
            "PATCH",
            msg_path(id, ""),
            json!({"content": text(&"x".repeat(300_000))}),
            (413, "payload_too_large"),
        ),
        (
            "POST",
            msg_path(id, "/delete-for-user"),
            json!({"user_id": "no body here"}),
            (400, "invalid_argument"),
        ),
        (
            "POST",
            msg_path(id, "/extensions"),
            json!({}),
            (400, "invalid_argument"),
        ),
        (
            "POST",
            msg_path(id, "/extensions"),
            json!({"set": [{"key": "k"}]}),
            (400, "invalid_json"),
        ),
        (
            "POST",
            msg_path(id, "/extensions"),
            json!({"set": [{"key": "k", "value": "v".repeat(1025)}]}),
            (400, "invalid_argument"),
        ),
        (
            "POST",
            msg_path(id, "/extensions"),
            json!({"set": [{"key": "a b", "value": "v"}]}),
            (400, "invalid_argument"),
        ),
        (
            "POST",
            msg_path(id, "/extensions"),
            json!({"set": (0..21).map(|i| json!({"key": format!("k{i}"), "value": "v"})).collect::<Vec<_>>()}),
            (400, "invalid_argument"),
        ),
        (
            "POST",
            msg_path(id, "/extensions"),
            json!({"set": [{"key": "k", "value": "v"}], "delete": [{"key": "k"}]}),
            (400, "invalid_argument"),
        ),
        (
            "PUT",
            reaction_path(id, &"x".repeat(33), "bob"),
            json!(null),
            (400, "invalid_argument"),
        ),
        (
            "POST",
            "/v1/messages".into(),
            json!({"from": "bob", "to": {"user": "alice"}, "type": "text", "content": text("x"), "reply_to": "nonsense"}),
            (400, "invalid_argument"),
        ),
        (
            "POST",
            "/v1/messages".into(),
            json!({"from": "carol", "to": {"user": "alice"}, "type": "text", "content": text("x"), "reply_to": id}),
            (404, "not_found"),
        ),
    ];
    for (method, path, body, want) in cases {
        let body = (!body.is_null()).then_some(body);
        let got = fails(c, method, &path, body).await;
        assert_eq!((got.0, got.1.as_str()), want, "{method} {path}");
    }
    let cursor = format!(
        "{}?cursor=garbage",
        msg_path(id, &format!("/reactions/{}/users", encode_segment("👍")))
    );
    assert_eq!(
        fails(c, "GET", &cursor, None).await,
        (400, "invalid_argument".to_owned())
    );
    // Nothing of the above changed the message.
    let now = c.get_message(id).await.unwrap();
    assert_eq!((now.content, now.version, now.edited_at), (text("hi"), 0, None));
}
on_every_store!(rest_refuses_bad_unsigned_and_foreign_requests, rest_refusals);

async fn grpc_flow(s: TestServer) {
    let ch = grpc_channel(&s).await;
    let mut messages = pb::messages_client::MessagesClient::new(ch);
    let a = setup(&s, "a").await;
    let other = setup(&s, "other").await;
    let m = a.client.send_text("alice", "bob", "c1", "hi").await.unwrap();
    let path = |method: &str| format!("/tern.server.v1.Messages/{method}");
    let content = tern_tenant_api::grpc_struct(text("a reply"));
    let reply = messages
        .send(grpc_signed(
            &a,
            &path("Send"),
            pb::SendRequest {
                from: Some("bob".into()),
                to: Some(pb::Target {
                    to: Some(pb::target::To::User("alice".into())),
                }),
                client_msg_id: "g1".into(),
                r#type: "text".into(),
                content,
                reply_to: Some(m.msg_id.clone()),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();

    let edited = messages
        .edit(grpc_signed(
            &a,
            &path("Edit"),
            pb::EditRequest {
                msg_id: m.msg_id.clone(),
                content: tern_tenant_api::grpc_struct(text("edited")),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(edited.edited_at.is_some() && edited.version > 0);
    let shown = messages
        .get_message(grpc_signed(
            &a,
            &path("GetMessage"),
            pb::MessageRequest {
                msg_id: reply.msg_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shown.reply_to.as_deref(), Some(m.msg_id.as_str()));
    let q = shown.quoted.unwrap();
    assert_eq!(
        (q.seq, q.from.as_deref(), q.edited_at.is_some()),
        (1, Some("alice"), true)
    );

    let react = |user: &str| pb::ReactionRequest {
        msg_id: m.msg_id.clone(),
        reaction: "👍".into(),
        user_id: user.into(),
    };
    let r = messages
        .add_reaction(grpc_signed(&a, &path("AddReaction"), react("bob")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.count, r.reacted), (1, true));
    let users = messages
        .list_reaction_users(grpc_signed(
            &a,
            &path("ListReactionUsers"),
            pb::ReactionUsersRequest {
                msg_id: m.msg_id.clone(),
                reaction: "👍".into(),
                cursor: String::new(),
                limit: 10,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        users.users.iter().map(|u| u.user_id.as_str()).collect::<Vec<_>>(),
        vec!["bob"]
    );
    let r = messages
        .remove_reaction(grpc_signed(&a, &path("RemoveReaction"), react("bob")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.count, 0);
    let stranger = messages
        .add_reaction(grpc_signed(&a, &path("AddReaction"), react("carol")))
        .await
        .unwrap_err();
    assert_eq!(
        (stranger.code(), error_code(&stranger).as_deref()),
        (tonic::Code::NotFound, Some("not_found"))
    );

    let update = |expected: i64| pb::UpdateExtensionsRequest {
        msg_id: m.msg_id.clone(),
        user_id: Some("alice".into()),
        set: vec![pb::ExtensionSet {
            key: "k".into(),
            value: "v".into(),
            expected_version: Some(expected),
        }],
        delete: Vec::new(),
    };
    let x = messages
        .update_extensions(grpc_signed(&a, &path("UpdateExtensions"), update(0)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (x.extensions[0].version, x.extensions[0].updated_by.as_deref()),
        (1, Some("alice"))
    );
    let conflict = messages
        .update_extensions(grpc_signed(&a, &path("UpdateExtensions"), update(0)))
        .await
        .unwrap_err();
    assert_eq!(
        (conflict.code(), error_code(&conflict).as_deref()),
        (tonic::Code::Aborted, Some("version_conflict"))
    );
    let read = messages
        .get_extensions(grpc_signed(
            &a,
            &path("GetExtensions"),
            pb::MessageRequest {
                msg_id: m.msg_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, x);

    messages
        .delete_for_user(grpc_signed(
            &a,
            &path("DeleteForUser"),
            pb::DeleteForUserRequest {
                msg_id: m.msg_id.clone(),
                user_id: "bob".into(),
            },
        ))
        .await
        .unwrap();
    let bobs = a.client.conversations("bob").await.unwrap();
    assert_eq!(bobs["conversations"][0]["last_message"]["msg_id"], json!(reply.msg_id));

    // Another app's message id is not found; neither is a malformed one.
    for id in [m.msg_id.clone(), "garbage".to_owned()] {
        let e = messages
            .edit(grpc_signed(
                &other,
                &path("Edit"),
                pb::EditRequest {
                    msg_id: id,
                    content: tern_tenant_api::grpc_struct(text("x")),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), error_code(&e).as_deref()),
            (tonic::Code::NotFound, Some("not_found"))
        );
    }
    // Unsigned.
    let e = messages
        .get_extensions(tonic::Request::new(pb::MessageRequest {
            msg_id: m.msg_id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    // Recalled: FAILED_PRECONDITION with its code.
    a.client.recall(&m.msg_id).await.unwrap();
    let e = messages
        .add_reaction(grpc_signed(&a, &path("AddReaction"), react("alice")))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), error_code(&e).as_deref()),
        (tonic::Code::FailedPrecondition, Some("message_recalled"))
    );
}
on_every_store!(grpc_messages_lifecycle_methods, grpc_flow);

/// A before-send receiver: answers with `answer` and keeps every body it was sent.
#[derive(Clone, Default)]
struct Hook {
    bodies: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    answer: std::sync::Arc<std::sync::Mutex<Value>>,
}

async fn hook_answer(axum::extract::State(h): axum::extract::State<Hook>, body: String) -> axum::Json<Value> {
    h.bodies.lock().unwrap().push(serde_json::from_str(&body).unwrap());
    axum::Json(h.answer.lock().unwrap().clone())
}

async fn edits_through_the_hook(s: TestServer) {
    let a = setup(&s, "a").await;
    let c = &a.client;
    let hook = Hook::default();
    *hook.answer.lock().unwrap() = json!({"action": "allow"});
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(hook_answer))
        .with_state(hook.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    c.set_webhook(&json!({"url": url, "before_send": {"enabled": true, "timeout_ms": 1000, "policy": "fail_closed"}}))
        .await
        .unwrap();
    let m = c.send_text("alice", "bob", "c1", "hello").await.unwrap();

    *hook.answer.lock().unwrap() = json!({"action": "reject", "reason": "not that"});
    let refused = fails(
        c,
        "PATCH",
        &msg_path(&m.msg_id, ""),
        Some(json!({"content": text("rude")})),
    )
    .await;
    assert_eq!(refused, (422, "message_rejected".to_owned()));
    assert_eq!(
        c.get_message(&m.msg_id).await.unwrap().content,
        text("hello"),
        "nothing stored"
    );

    *hook.answer.lock().unwrap() = json!({"action": "replace", "content": {"text": "cleaned"}});
    let edited = c.edit_message(&m.msg_id, &text("anything")).await.unwrap();
    assert_eq!(edited.content, text("cleaned"));
    let last = hook.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last["type"], "message.before_send");
    let data = &last["data"];
    assert_eq!(
        (
            data["edit_of"].as_str(),
            data["content"].clone(),
            data["client_msg_id"].as_str(),
            data["source"].as_str()
        ),
        (
            Some(m.msg_id.as_str()),
            text("anything"),
            Some("c1"),
            Some("server_api")
        )
    );
    let sends: Vec<Value> = hook
        .bodies
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b["data"].get("edit_of").is_none())
        .cloned()
        .collect();
    assert_eq!(sends.len(), 1, "a send's draft has no edit_of");

    *hook.answer.lock().unwrap() = json!({"verdict": "maybe"});
    let down = fails(
        c,
        "PATCH",
        &msg_path(&m.msg_id, ""),
        Some(json!({"content": text("x")})),
    )
    .await;
    assert_eq!(down, (503, "webhook_unavailable".to_owned()));
    assert_eq!(c.get_message(&m.msg_id).await.unwrap().content, text("cleaned"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_pass_the_before_send_hook() {
    for (backend, store, dir) in stores().await {
        eprintln!("edits_pass_the_before_send_hook on {backend}");
        let config = EngineConfig {
            run_worker: false,
            webhook_allow_private: true,
            ..EngineConfig::default()
        };
        edits_through_the_hook(TestServer::start_with(store, dir, config).await).await;
    }
}
