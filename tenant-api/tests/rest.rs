//! The REST server API over real sockets, on SQLite and (when configured) PostgreSQL.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use support::*;
use tern_sdk::signing::sign_request;

fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A signed request built by hand, so tests can tamper with any part.
async fn raw(
    s: &TestServer,
    (key, secret): (&str, &str),
    method: &str,
    path: &str,
    body: &[u8],
    ts: i64,
    nonce: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let headers = sign_request(key, secret, method, path, body, ts, nonce);
    let mut req = s.http().request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{}{}", s.base, path),
    );
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let res = req.body(body.to_vec()).send().await.unwrap();
    let status = res.status().as_u16();
    let h = res.headers().clone();
    let text = res.bytes().await.unwrap();
    (status, serde_json::from_slice(&text).unwrap_or(Value::Null), h)
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

fn nonce() -> String {
    format!("n-{}", ulid::Ulid::new())
}

async fn authentication_failures_have_their_codes(s: TestServer) {
    let a = s.app("a").await;
    let b = s.app("b").await;
    let key = a.app.app_key.as_str();
    let p = "/v1/users/alice";

    // A header missing.
    let res = s.http().get(format!("{}{p}", s.base)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let v: Value = res.json().await.unwrap();
    assert_eq!(code(&v), "missing_credentials");
    assert!(
        !v["error"]["request_id"].as_str().unwrap().is_empty(),
        "errors carry the request id"
    );

    let (st, v, _) = raw(&s, ("ak_nosuchapp123", &a.secret), "GET", p, b"", now_s(), &nonce()).await;
    assert_eq!((st, code(&v)), (401, "unknown_app_key"));
    let (st, v, _) = raw(&s, (key, &a.secret), "GET", p, b"", now_s() - 301, &nonce()).await;
    assert_eq!((st, code(&v)), (401, "timestamp_out_of_window"));
    // Ahead by more than 301: the server reads its clock a moment later, and across a
    // second's boundary +301 would be only 300 ahead there (inside the window).
    let (st, v, _) = raw(&s, (key, &a.secret), "GET", p, b"", now_s() + 305, &nonce()).await;
    assert_eq!((st, code(&v)), (401, "timestamp_out_of_window"));
    // App A's key with app B's secret.
    let (st, v, _) = raw(&s, (key, &b.secret), "GET", p, b"", now_s(), &nonce()).await;
    assert_eq!((st, code(&v)), (401, "bad_signature"));
    // A replay: the same nonce twice.
    let n = nonce();
    let (st, _, _) = raw(&s, (key, &a.secret), "GET", p, b"", now_s(), &n).await;
    assert_eq!(st, 404, "alice does not exist yet");
    let (st, v, _) = raw(&s, (key, &a.secret), "GET", p, b"", now_s(), &n).await;
    assert_eq!((st, code(&v)), (401, "nonce_reused"));
    // A forged body: signed for one body, sent with another.
    let headers = sign_request(
        key,
        &a.secret,
        "POST",
        "/v1/users",
        br#"{"users":[{"id":"x"}]}"#,
        now_s(),
        &nonce(),
    );
    let mut req = s.http().post(format!("{}/v1/users", s.base));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let res = req.body(r#"{"users":[{"id":"mallory"}]}"#).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        s.store
            .user(&a.app.id, &"mallory".parse().unwrap())
            .await
            .unwrap()
            .is_none(),
        "nothing written"
    );
    // Suspended.
    s.store
        .set_app_status(&a.app.id, tern_platform::domain::AppStatus::Suspended)
        .await
        .unwrap();
    s.forget_credentials(&a.app.app_key);
    let (st, v, _) = raw(&s, (key, &a.secret), "GET", p, b"", now_s(), &nonce()).await;
    assert_eq!((st, code(&v)), (403, "app_suspended"));
}
on_every_store!(
    authentication_failures,
    authentication_failures_have_their_codes,
    with_worker
);

async fn users_lifecycle(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    let v = c
        .upsert_users(&[
            json!({"id": "alice", "name": "Alice", "metadata": {"tier": 1}}),
            json!({"id": "bob.b@x-1", "name": "Bob"}),
        ])
        .await
        .unwrap();
    assert_eq!(v["users"].as_array().unwrap().len(), 2);
    let u = c.get_user("bob.b@x-1").await.unwrap();
    assert_eq!(u["name"], "Bob");
    assert_eq!(u["online"], false);
    // Update keeps what is not given.
    let u: Value = c
        .request("PATCH", "/v1/users/alice", Some(&json!({"name": "Alice A"})))
        .await
        .unwrap();
    assert_eq!(u["name"], "Alice A");
    assert_eq!(u["metadata"]["tier"], 1);
    // Paging with an opaque cursor.
    let page: Value = c.request("GET", "/v1/users?limit=1", None).await.unwrap();
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap();
    let page2: Value = c
        .request("GET", &format!("/v1/users?limit=1&cursor={cursor}"), None)
        .await
        .unwrap();
    assert_ne!(page2["users"][0]["id"], page["users"][0]["id"]);
    // Bad input, each with its code and nothing written.
    for (body, want) in [
        (json!({"users": []}), "invalid_argument"),
        (json!({"users": [{"id": "a b"}]}), "invalid_argument"),
        (
            json!({"users": [{"id": "x", "metadata": {"k": "v".repeat(5000)}}]}),
            "invalid_argument",
        ),
        (json!({"users": [{"id": "x", "metadata": [1]}]}), "invalid_argument"),
        (json!({"users": [{"id": 5}]}), "invalid_json"),
        (json!({"users": [{"id": "x", "colour": "red"}]}), "invalid_json"),
        (json!({"people": []}), "invalid_json"),
    ] {
        let e = c.request::<Value>("POST", "/v1/users", Some(&body)).await.unwrap_err();
        assert_eq!(e.code(), Some(want), "{body}");
    }
    let too_many: Vec<Value> = (0..101).map(|i| json!({"id": format!("u{i}")})).collect();
    assert_eq!(
        c.upsert_users(&too_many).await.unwrap_err().code(),
        Some("invalid_argument")
    );
    assert!(c.get_user("x").await.is_err(), "no half-written state");
    // Delete.
    c.delete_user("alice").await.unwrap();
    assert_eq!(c.get_user("alice").await.unwrap_err().code(), Some("not_found"));
    assert_eq!(c.delete_user("alice").await.unwrap_err().code(), Some("not_found"));
}
on_every_store!(users, users_lifecycle, with_worker);

async fn malformed_and_oversized_bodies(s: TestServer) {
    let a = s.app("a").await;
    let key = a.app.app_key.as_str();
    let (st, v, _) = raw(
        &s,
        (key, &a.secret),
        "POST",
        "/v1/users",
        b"{not json",
        now_s(),
        &nonce(),
    )
    .await;
    assert_eq!((st, code(&v)), (400, "invalid_json"));
    let big = vec![b' '; 300 * 1024];
    let (st, v, _) = raw(&s, (key, &a.secret), "POST", "/v1/users", &big, now_s(), &nonce()).await;
    assert_eq!((st, code(&v)), (413, "payload_too_large"));
    let (st, v, _) = raw(&s, (key, &a.secret), "GET", "/v1/nowhere", b"", now_s(), &nonce()).await;
    assert_eq!((st, code(&v)), (404, "not_found"));
    let (st, v, _) = raw(&s, (key, &a.secret), "PUT", "/v1/messages", b"", now_s(), &nonce()).await;
    assert_eq!((st, code(&v)), (405, "method_not_allowed"));
}
on_every_store!(malformed_bodies, malformed_and_oversized_bodies, with_worker);

async fn direct_messages_history_and_recall(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    c.upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
        .await
        .unwrap();
    let first = c.send_text("alice", "bob", "c1", "hi").await.unwrap();
    assert_eq!(first.conversation_id, "d:alice:bob");
    assert_eq!(first.seq, 1);
    // Retry with the same client_msg_id (even different content): the first answer stands.
    let again = c.send_text("alice", "bob", "c1", "changed").await.unwrap();
    assert_eq!(again, first);
    let reply = c.send_text("bob", "alice", "c1", "hello").await.unwrap();
    assert_eq!(
        (reply.conversation_id.as_str(), reply.seq),
        ("d:alice:bob", 2),
        "one conversation whatever the direction"
    );
    for i in 3..=10 {
        c.send_text("alice", "bob", &format!("m{i}"), &format!("n{i}"))
            .await
            .unwrap();
    }
    let all = c.history("d:alice:bob", 0, 50).await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(all[0].content["text"], "hi");
    let after = c.history("d:alice:bob", 7, 2).await.unwrap();
    assert_eq!(after.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![8, 9]);
    let v: Value = c
        .request(
            "GET",
            "/v1/conversations/d%3Aalice%3Abob/messages?before_seq=5&limit=3",
            None,
        )
        .await
        .unwrap();
    let seqs: Vec<i64> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 3, 4]);
    // A limit of a million is clamped, not an error.
    let v: Value = c
        .request("GET", "/v1/conversations/d%3Aalice%3Abob/messages?limit=1000000", None)
        .await
        .unwrap();
    assert_eq!(v["messages"].as_array().unwrap().len(), 10);
    for q in [
        "after_seq=-1",
        "before_seq=0",
        "after_seq=abc",
        "after_seq=99999999999999999999999",
        "after_seq=1&before_seq=3",
        "bogus=1",
    ] {
        let e = c
            .request::<Value>("GET", &format!("/v1/conversations/d%3Aalice%3Abob/messages?{q}"), None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("invalid_argument"), "{q}");
    }
    // Conversation list: last message and unread.
    let list = c.conversations("bob").await.unwrap();
    let conv = &list["conversations"][0];
    assert_eq!(conv["conversation_id"], "d:alice:bob");
    assert_eq!(conv["last_seq"], 10);
    assert_eq!(conv["last_message"]["seq"], 10);
    let bob_unread = conv["unread"].as_i64().unwrap();
    assert_eq!(bob_unread, 8, "bob read up to his own message at seq 2");
    let read = c.mark_read("bob", "d:alice:bob", 9).await.unwrap();
    assert_eq!(read["unread"], 1);
    let read = c.mark_read("bob", "d:alice:bob", 3).await.unwrap();
    assert_eq!(read["read_seq"], 9, "read positions never move back");
    // Recall: everyone sees it recalled with its content gone.
    let recalled = c.recall(&all[9].msg_id).await.unwrap();
    assert!(recalled.recalled);
    assert!(recalled.content.is_null());
    let h = c.history("d:alice:bob", 9, 5).await.unwrap();
    assert!(h[0].recalled && h[0].content.is_null());
    let list = c.conversations("alice").await.unwrap();
    assert_eq!(list["conversations"][0]["last_message"]["recalled"], true);
    assert!(list["conversations"][0]["last_message"]["content"].is_null());
    // Unknown users and bad content.
    let e = c.send_text("alice", "nobody", "x1", "hi").await.unwrap_err();
    assert_eq!(e.code(), Some("not_found"));
    let e = c.send(&json!({"from": "alice", "to": {"user": "bob"}, "type": "text", "content": {"text": "x".repeat(13 * 1024)}})).await.unwrap_err();
    assert_eq!(e.code(), Some("content_too_large"));
    let e = c
        .send(&json!({"from": "alice", "to": {"user": "bob"}, "type": "system", "content": {}}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("invalid_argument"));
    let e = c
        .send(&json!({"from": "alice", "to": {"user": "bob", "group": "g"}, "type": "text", "content": {"text": "x"}}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("invalid_argument"));
    // Nothing of the failures was stored.
    assert_eq!(c.history("d:alice:bob", 0, 100).await.unwrap().len(), 10);
}
on_every_store!(direct_messages, direct_messages_history_and_recall, with_worker);

async fn one_app_never_sees_another(s: TestServer) {
    let a = s.app("a").await;
    let b = s.app("b").await;
    a.client
        .upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
        .await
        .unwrap();
    let sent = a.client.send_text("alice", "bob", "c1", "secret").await.unwrap();
    a.client.create_group("g1", "G", "alice", &["bob"]).await.unwrap();
    let bc = &b.client;
    assert_eq!(bc.get_user("alice").await.unwrap_err().code(), Some("not_found"));
    assert_eq!(
        bc.history("d:alice:bob", 0, 10).await.unwrap_err().code(),
        Some("not_found")
    );
    let e = bc
        .request::<Value>("GET", &format!("/v1/messages/{}", sent.msg_id), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("not_found"));
    assert_eq!(bc.recall(&sent.msg_id).await.unwrap_err().code(), Some("not_found"));
    assert_eq!(
        bc.request::<Value>("GET", "/v1/groups/g1", None)
            .await
            .unwrap_err()
            .code(),
        Some("not_found")
    );
    assert_eq!(
        bc.add_group_members("g1", &["x"]).await.unwrap_err().code(),
        Some("not_found")
    );
    assert_eq!(bc.delete_user("alice").await.unwrap_err().code(), Some("not_found"));
    assert_eq!(
        bc.send_text("alice", "bob", "c9", "x").await.unwrap_err().code(),
        Some("not_found")
    );
    assert_eq!(bc.conversations("alice").await.unwrap_err().code(), Some("not_found"));
    assert_eq!(
        bc.mark_read("alice", "d:alice:bob", 1).await.unwrap_err().code(),
        Some("not_found")
    );
    // And A's data is untouched.
    assert_eq!(
        a.client.history("d:alice:bob", 0, 10).await.unwrap()[0].content["text"],
        "secret"
    );
}
on_every_store!(cross_app_isolation, one_app_never_sees_another, with_worker);

async fn seqs_stay_gapless_under_concurrent_sends(s: TestServer) {
    let a = s.app("a").await;
    a.client
        .upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let c = a.client.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..20 {
                let (from, to) = if i % 2 == 0 { ("alice", "bob") } else { ("bob", "alice") };
                seqs.push(c.send_text(from, to, &format!("t{t}-{i}"), "x").await.unwrap().seq);
            }
            seqs
        }));
    }
    let mut all: Vec<i64> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=320).collect::<Vec<_>>());
}
on_every_store!(concurrent_sends, seqs_stay_gapless_under_concurrent_sends, with_worker);

async fn groups_batch_presence_and_broadcast(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    let users: Vec<Value> = (0..5).map(|i| json!({"id": format!("u{i}")})).collect();
    c.upsert_users(&users).await.unwrap();
    let g = c.create_group("team", "Team", "u0", &["u1", "u2"]).await.unwrap();
    assert_eq!(g["member_count"], 3);
    assert_eq!(
        c.create_group("team", "Again", "u0", &[]).await.unwrap_err().code(),
        Some("conflict")
    );
    assert_eq!(
        c.create_group("t2", "T", "u0", &["ghost"]).await.unwrap_err().code(),
        Some("not_found")
    );
    let added = c.add_group_members("team", &["u3", "u1"]).await.unwrap();
    assert_eq!(added["added"], json!(["u3"]));
    let sent = c
        .send(&json!({"from": "u1", "to": {"group": "team"}, "type": "text", "content": {"text": "hey"}}))
        .await
        .unwrap();
    // After the timeline's two notices: the group was created, u3 was added.
    assert_eq!((sent.conversation_id.as_str(), sent.seq), ("g:team", 3));
    let e = c
        .send(&json!({"from": "u4", "to": {"group": "team"}, "type": "text", "content": {"text": "let me in"}}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("forbidden"), "a non-member cannot send");
    c.remove_group_member("team", "u3").await.unwrap();
    assert_eq!(
        c.remove_group_member("team", "u3").await.unwrap_err().code(),
        Some("not_found")
    );
    let m: Value = c.request("GET", "/v1/groups/team/members?limit=2", None).await.unwrap();
    assert_eq!(m["members"].as_array().unwrap().len(), 2);
    assert!(m["next_cursor"].is_string());

    // Batch: one sender, each recipient their own direct message; unknown ones fail alone.
    let v: Value = c
        .request("POST", "/v1/messages/batch", Some(&json!({"from": "u0", "to": ["u1", "u2", "ghost"], "type": "text", "content": {"text": "hi"}, "client_msg_id": "b1"})))
        .await
        .unwrap();
    let r = v["results"].as_array().unwrap();
    assert_eq!(r[0]["message"]["conversation_id"], "d:u0:u1");
    assert_eq!(r[1]["message"]["conversation_id"], "d:u0:u2");
    assert_eq!(r[2]["error"], "not_found");
    let again: Value = c
        .request(
            "POST",
            "/v1/messages/batch",
            Some(
                &json!({"from": "u0", "to": ["u1"], "type": "text", "content": {"text": "hi"}, "client_msg_id": "b1"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        again["results"][0]["message"], r[0]["message"],
        "a retried batch doubles nothing"
    );
    let big: Vec<String> = (0..501).map(|i| format!("x{i}")).collect();
    let e = c
        .request::<Value>(
            "POST",
            "/v1/messages/batch",
            Some(&json!({"from": "u0", "to": big, "type": "text", "content": {"text": "hi"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("invalid_argument"));

    // Presence.
    let p = c.presence(&["u0", "u1"]).await.unwrap();
    assert_eq!(p["users"][0]["online"], false);
    let many: Vec<String> = (0..501).map(|i| format!("x{i}")).collect();
    let e = c
        .request::<Value>("POST", "/v1/presence/query", Some(&json!({"users": many})))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("invalid_argument"));

    // Broadcast: every user gets a system message; progress is queryable.
    let job: Value = c
        .request(
            "POST",
            "/v1/broadcasts",
            Some(&json!({"type": "text", "content": {"text": "maintenance"}})),
        )
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    let mut done = Value::Null;
    for _ in 0..100 {
        done = c.request("GET", &format!("/v1/broadcasts/{id}"), None).await.unwrap();
        if done["status"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(done["status"], "done");
    assert_eq!(done["sent"], 5);
    let h = c.history("s:u4", 0, 10).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].from, None);
    let other = s.app("other").await;
    let e = other
        .client
        .request::<Value>("GET", &format!("/v1/broadcasts/{id}"), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("not_found"));
}
on_every_store!(groups_and_more, groups_batch_presence_and_broadcast, with_worker);

async fn tokens_and_rate_limits(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    c.create_user("alice", "Alice").await.unwrap();
    let t = c.user_token("alice", Some(3600)).await.unwrap();
    assert_eq!(t.token.split('.').count(), 3);
    assert!(t.expires_at > now_s() + 3500);
    let e = c.user_token("alice", Some(0)).await.unwrap_err();
    assert_eq!(e.code(), Some("invalid_argument"));
    let e = c.user_token("alice", Some(365 * 24 * 3600)).await.unwrap_err();
    assert_eq!(e.code(), Some("invalid_argument"));
    c.revoke_tokens("alice").await.unwrap();
    c.kick("alice").await.unwrap();
    assert_eq!(c.kick("nobody").await.unwrap_err().code(), Some("not_found"));

    // A low write rate: some requests get 429 with Retry-After.
    let mut settings = a.app.settings.clone();
    settings.write_rate_per_second = 2;
    s.store.update_app_settings(&a.app.id, &settings).await.unwrap();
    s.forget_credentials(&a.app.app_key);
    let mut limited = None;
    for i in 0..10 {
        let (st, v, h) = raw(
            &s,
            (a.app.app_key.as_str(), &a.secret),
            "POST",
            "/v1/users",
            format!(r#"{{"users":[{{"id":"r{i}"}}]}}"#).as_bytes(),
            now_s(),
            &nonce(),
        )
        .await;
        if st == 429 {
            limited = Some((v, h));
            break;
        }
    }
    let (v, h) = limited.expect("the write rate is enforced");
    assert_eq!(code(&v), "rate_limited");
    assert!(h.get("retry-after").unwrap().to_str().unwrap().parse::<u64>().unwrap() >= 1);
    // Reads have their own budget.
    assert!(c.get_user("alice").await.is_ok());
}
on_every_store!(tokens_and_limits, tokens_and_rate_limits, with_worker);

async fn app_settings_change_what_the_api_enforces(s: TestServer) {
    let a = s.app("a").await;
    let b = s.app("b").await;
    let c = &a.client;
    let before = c.app_settings().await.unwrap();
    assert_eq!(before["group_member_limit"], 2000);
    assert!(
        before.get("webhook").is_none(),
        "webhook settings have their own endpoint"
    );

    // A bad patch changes nothing and names the setting.
    for (patch, needle) in [
        (json!({"group_member_limit": 1}), "group_member_limit"),
        (json!({"group_member_limit": 100_001}), "group_member_limit"),
        (json!({"no_such_setting": true}), "no_such_setting"),
        (json!({"room_backlog": "fifty"}), "room_backlog"),
        (json!({"webhook": {"url": null}}), "webhook"),
        (json!([1, 2]), "object"),
    ] {
        let e = c.update_app_settings(&patch).await.unwrap_err();
        assert_eq!(e.code(), Some("invalid_argument"), "{patch}");
        assert!(e.to_string().contains(needle), "{patch}: {e}");
    }
    assert_eq!(c.app_settings().await.unwrap(), before);

    // A good one takes effect at once, for this app only.
    let after = c
        .update_app_settings(&json!({"group_member_limit": 3, "recall_window_seconds": 5}))
        .await
        .unwrap();
    assert_eq!(
        (
            after["group_member_limit"].as_i64(),
            after["recall_window_seconds"].as_i64()
        ),
        (Some(3), Some(5))
    );
    assert_eq!(after["room_backlog"], before["room_backlog"]);
    assert_eq!(b.client.app_settings().await.unwrap(), before);

    c.upsert_users(&[
        json!({"id": "u1"}),
        json!({"id": "u2"}),
        json!({"id": "u3"}),
        json!({"id": "u4"}),
    ])
    .await
    .unwrap();
    c.create_group("g", "G", "u1", &["u2", "u3"]).await.unwrap();
    let full = c.add_group_members("g", &["u4"]).await.unwrap_err();
    assert_eq!(full.code(), Some("group_full"), "{full}");
    b.client
        .upsert_users(&[
            json!({"id": "u1"}),
            json!({"id": "u2"}),
            json!({"id": "u3"}),
            json!({"id": "u4"}),
        ])
        .await
        .unwrap();
    b.client
        .create_group("g", "G", "u1", &["u2", "u3", "u4"])
        .await
        .unwrap();
}
on_every_store!(app_settings, app_settings_change_what_the_api_enforces, with_worker);
