//! Broadcasts through the server API, REST and gRPC, on SQLite and (when configured)
//! PostgreSQL: to every user and to a list, idempotent starts, progress, listing and
//! cancelling, the content checks (word lists included), bad and oversized input, unsigned
//! callers, and other apps' broadcasts answering `not_found`.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::*;
use tern_sdk::server::{Broadcast, ServerClient};
use tern_sdk::signing::{new_nonce, sign_request, unix_now};

async fn fails(c: &ServerClient, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    match c.request::<Value>(method, path, body.as_ref()).await {
        Err(tern_sdk::server::ServerError::Api { status, code, .. }) => (status, code),
        other => panic!("{method} {path} should fail, got {other:?}"),
    }
}

/// Polls until the broadcast is no longer running (only the state is asserted, not how
/// long it took).
async fn finished(c: &ServerClient, id: &str) -> Broadcast {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let b = c.get_broadcast(id).await.unwrap();
        if b.status != "running" {
            return b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "broadcast {id} never finished: {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn inbox(c: &ServerClient, user: &str) -> Vec<String> {
    match c.history(&format!("s:{user}"), 0, 100).await {
        Ok(h) => h
            .into_iter()
            .map(|m| {
                assert_eq!(m.from, None, "sent as the system");
                m.content["text"].as_str().unwrap_or_default().to_owned()
            })
            .collect(),
        Err(e) if e.code() == Some("not_found") => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}

async fn to_all_and_to_lists(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    let users: Vec<Value> = (1..=5).map(|i| json!({"id": format!("u{i}")})).collect();
    c.upsert_users(&users).await.unwrap();

    let job = c
        .broadcast("text", json!({"text": "hello all"}), None, None)
        .await
        .unwrap();
    assert_eq!(
        (
            job.status.as_str(),
            job.audience.as_str(),
            job.total,
            job.msg_type.as_str()
        ),
        ("running", "all", None, "text")
    );
    let done = finished(c, &job.id).await;
    assert_eq!(
        (done.status.as_str(), done.users_seen, done.sent, done.failed),
        ("done", 5, 5, 0)
    );
    assert!(done.finished_at.is_some());
    for i in 1..=5 {
        assert_eq!(inbox(c, &format!("u{i}")).await, vec!["hello all".to_owned()]);
    }

    // A list: only those users; an id the app does not know counts as failed; repeats
    // count once.
    let list = c
        .broadcast(
            "text",
            json!({"text": "beta"}),
            Some(&["u2", "ghost", "u4", "u2"]),
            Some("beta-1"),
        )
        .await
        .unwrap();
    assert_eq!((list.audience.as_str(), list.total), ("list", Some(3)));
    let done = finished(c, &list.id).await;
    assert_eq!((done.users_seen, done.sent, done.failed), (3, 2, 1));
    assert_eq!(inbox(c, "u2").await, vec!["hello all".to_owned(), "beta".to_owned()]);
    assert_eq!(inbox(c, "u3").await, vec!["hello all".to_owned()]);
    // The same key again is the same job, and reaches nobody twice.
    let again = c
        .broadcast(
            "text",
            json!({"text": "beta"}),
            Some(&["u2", "ghost", "u4"]),
            Some("beta-1"),
        )
        .await
        .unwrap();
    assert_eq!((again.id.as_str(), again.status.as_str()), (list.id.as_str(), "done"));
    assert_eq!(inbox(c, "u4").await.len(), 2);

    // Newest first, paged; cancelling a finished job leaves it as it is.
    let page: Value = c.request("GET", "/v1/broadcasts?limit=1", None).await.unwrap();
    assert_eq!(page["broadcasts"][0]["id"], list.id);
    let next = page["next_cursor"].as_str().unwrap();
    let page2: Value = c
        .request("GET", &format!("/v1/broadcasts?limit=1&cursor={next}"), None)
        .await
        .unwrap();
    assert_eq!(page2["broadcasts"][0]["id"], job.id);
    assert_eq!(c.cancel_broadcast(&job.id).await.unwrap().status, "done");
    let all: Value = c.broadcasts(None).await.unwrap();
    assert_eq!(all["broadcasts"].as_array().unwrap().len(), 2);
    assert!(all.get("next_cursor").is_none());
}
on_every_store!(broadcasts_to_all_and_to_lists, to_all_and_to_lists, with_worker);

async fn content_checks_and_bad_input(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    c.upsert_users(&[json!({"id": "u1"})]).await.unwrap();
    let long = "x".repeat(13 * 1024);
    let too_many: Vec<String> = (0..10_001).map(|i| format!("u{i}")).collect();
    let cases = [
        (
            json!({"type": "system", "content": {"text": "x"}}),
            400,
            "invalid_argument",
        ),
        (json!({"type": "sticker", "content": {}}), 400, "invalid_argument"),
        (
            json!({"type": "text", "content": {"txt": "x"}}),
            400,
            "invalid_argument",
        ),
        (
            json!({"type": "text", "content": {"text": long}}),
            400,
            "content_too_large",
        ),
        (
            json!({"type": "text", "content": {"text": "x"}, "users": []}),
            400,
            "invalid_argument",
        ),
        (
            json!({"type": "text", "content": {"text": "x"}, "users": too_many}),
            400,
            "invalid_argument",
        ),
        (
            json!({"type": "text", "content": {"text": "x"}, "users": ["bad id"]}),
            400,
            "invalid_argument",
        ),
        (
            json!({"type": "text", "content": {"text": "x"}, "client_msg_id": ""}),
            400,
            "invalid_argument",
        ),
        (
            json!({"type": "text", "content": {"text": "x"}, "to": "all"}),
            400,
            "invalid_json",
        ),
        (json!({"content": {"text": "x"}}), 400, "invalid_json"),
    ];
    for (body, status, code) in cases {
        let got = fails(c, "POST", "/v1/broadcasts", Some(body.clone())).await;
        assert_eq!(got, (status, code.to_owned()), "{body}");
    }
    let none: Value = c.broadcasts(None).await.unwrap();
    assert!(none["broadcasts"].as_array().unwrap().is_empty(), "nothing was started");

    // Oversized body, unsigned caller.
    let big = format!(r#"{{"type":"text","content":{{"text":"{}"}}}}"#, "y".repeat(300 * 1024));
    let headers = sign_request(
        a.app.app_key.as_str(),
        &a.secret,
        "POST",
        "/v1/broadcasts",
        big.as_bytes(),
        unix_now(),
        &new_nonce(),
    );
    let mut req = s.http().post(format!("{}/v1/broadcasts", s.base));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let res = req.body(big).send().await.unwrap();
    assert_eq!(res.status(), 413);
    let res = s
        .http()
        .post(format!("{}/v1/broadcasts", s.base))
        .body(r#"{"type":"text","content":{"text":"x"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "missing_credentials");

    // The app's word lists apply, once, at the start.
    c.put_word_list("strict", "reject", &["forbidden"]).await.unwrap();
    c.put_word_list("mild", "replace", &["darn"]).await.unwrap();
    let (st, code) = fails(
        c,
        "POST",
        "/v1/broadcasts",
        Some(json!({"type": "text", "content": {"text": "a forbidden word"}})),
    )
    .await;
    assert_eq!((st, code.as_str()), (422, "content_rejected"));
    let job = c
        .broadcast("text", json!({"text": "darn it"}), None, None)
        .await
        .unwrap();
    assert_eq!(job.content["text"], "**** it");
    finished(c, &job.id).await;
    assert_eq!(inbox(c, "u1").await, vec!["**** it".to_owned()]);

    // Another app sees none of it.
    let b = s.app("b").await;
    assert_eq!(
        fails(&b.client, "GET", &format!("/v1/broadcasts/{}", job.id), None).await,
        (404, "not_found".into())
    );
    assert_eq!(
        fails(&b.client, "POST", &format!("/v1/broadcasts/{}/cancel", job.id), None).await,
        (404, "not_found".into())
    );
    let theirs: Value = b.client.broadcasts(None).await.unwrap();
    assert!(theirs["broadcasts"].as_array().unwrap().is_empty());
    assert_eq!(fails(c, "GET", "/v1/broadcasts/bc_nope", None).await.1, "not_found");
    assert_eq!(
        fails(c, "GET", "/v1/broadcasts?cursor=%21", None).await.1,
        "invalid_argument"
    );
}
on_every_store!(
    broadcast_content_checks_and_bad_input,
    content_checks_and_bad_input,
    with_worker
);

mod grpc {

    use tern_platform::proto::server_v1 as pb;
    use tern_tenant_api::grpc::error_code;

    use super::*;

    fn signed<T: prost::Message>(app: &TestApp, method: &str, msg: T) -> tonic::Request<T> {
        grpc_signed(app, &format!("/tern.server.v1.Broadcasts/{method}"), msg)
    }

    async fn broadcasts_over_grpc(s: TestServer) {
        let a = s.app("a").await;
        let b = s.app("b").await;
        a.client
            .upsert_users(&[json!({"id": "u1"}), json!({"id": "u2"}), json!({"id": "u3"})])
            .await
            .unwrap();
        let mut bc = pb::broadcasts_client::BroadcastsClient::new(grpc_channel(&s).await);
        let start = pb::StartBroadcastRequest {
            r#type: "text".into(),
            content: tern_tenant_api::grpc_struct(json!({"text": "over grpc"})),
            client_msg_id: "g-1".into(),
            users: vec!["u1".into(), "u3".into()],
        };
        let job = bc
            .start_broadcast(signed(&a, "StartBroadcast", start.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((job.audience.as_str(), job.total), ("list", Some(2)));
        // Progress reads the same over REST and gRPC.
        let rest = finished(&a.client, &job.id).await;
        let got = bc
            .get_broadcast(signed(
                &a,
                "GetBroadcast",
                pb::BroadcastRequest {
                    broadcast_id: job.id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (
                got.status.as_str(),
                got.users_seen,
                got.sent,
                got.failed,
                got.finished_at
            ),
            ("done", rest.users_seen, rest.sent, rest.failed, rest.finished_at)
        );
        assert_eq!((got.sent, got.failed), (2, 0));
        assert_eq!(inbox(&a.client, "u2").await, Vec::<String>::new());
        assert_eq!(inbox(&a.client, "u3").await, vec!["over grpc".to_owned()]);
        // Idempotent on the key.
        let again = bc
            .start_broadcast(signed(&a, "StartBroadcast", start))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.id, job.id);
        let list = bc
            .list_broadcasts(signed(
                &a,
                "ListBroadcasts",
                pb::ListBroadcastsRequest {
                    cursor: String::new(),
                    limit: 10,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(list.broadcasts.len(), 1);
        let cancelled = bc
            .cancel_broadcast(signed(
                &a,
                "CancelBroadcast",
                pb::BroadcastRequest {
                    broadcast_id: job.id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(cancelled.status, "done", "a finished job stays finished");

        let e = bc
            .get_broadcast(signed(
                &b,
                "GetBroadcast",
                pb::BroadcastRequest {
                    broadcast_id: job.id.clone(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("not_found"));
        let bad = pb::StartBroadcastRequest {
            r#type: "text".into(),
            content: tern_tenant_api::grpc_struct(json!({"text": "x"})),
            client_msg_id: String::new(),
            users: vec!["not valid!".into()],
        };
        let e = bc.start_broadcast(signed(&a, "StartBroadcast", bad)).await.unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("invalid_argument"));
    }
    on_every_store!(broadcasts_over_grpc_on_every_store, broadcasts_over_grpc, with_worker);
}
