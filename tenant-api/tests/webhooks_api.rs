//! Webhooks through the server API: configuration with the SSRF guard, the before-send hook
//! deciding what is stored and delivered, and after-events reaching a real receiver, signed.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{json, Value};
use support::*;

#[derive(Clone, Default)]
struct Receiver {
    /// (event type, body, signature header) of every call.
    calls: Arc<Mutex<Vec<(String, String, String)>>>,
    /// What the before-send answer is.
    answer: Arc<Mutex<Value>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> axum::Json<Value> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let event = h("x-tern-event");
    r.calls
        .lock()
        .unwrap()
        .push((event.clone(), body, h("x-tern-signature")));
    if event == "message.before_send" {
        axum::Json(r.answer.lock().unwrap().clone())
    } else {
        axum::Json(json!({}))
    }
}

async fn receiver() -> (String, Receiver) {
    let r = Receiver::default();
    *r.answer.lock().unwrap() = json!({"action": "allow"});
    let app = axum::Router::new().route("/hook", post(receive)).with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_webhook_urls_are_refused_by_default() {
    let (_, store, dir) = stores().await.into_iter().next().unwrap();
    let s = TestServer::start(store, dir).await;
    let a = s.app("a").await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.1/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest",
    ] {
        let e = a
            .client
            .request::<Value>("PUT", "/v1/webhook", Some(&json!({"url": url})))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("invalid_argument"), "{url}");
        assert!(e.to_string().contains("TERN_WEBHOOK_ALLOW_PRIVATE"), "{e}");
    }
    for (body, what) in [
        (json!({"url": "ftp://example.com/x"}), "scheme"),
        (json!({"url": null, "events": ["no.such"]}), "event"),
        (json!({"url": null, "before_send": {"enabled": true}}), "needs a url"),
    ] {
        let e = a
            .client
            .request::<Value>("PUT", "/v1/webhook", Some(&body))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("invalid_argument"), "{what}");
    }
    let v: Value = a.client.request("GET", "/v1/webhook", None).await.unwrap();
    assert!(v["config"]["url"].is_null(), "nothing was saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_send_decides_and_after_events_arrive_signed() {
    for (backend, store, dir) in stores().await {
        eprintln!("on {backend}");
        let config = EngineConfig {
            webhook_allow_private: true,
            ..Default::default()
        };
        let s = TestServer::start_with(store, dir, config).await;
        let a = s.app("a").await;
        let (url, r) = receiver().await;
        let cfg = json!({"url": url, "events": ["message.sent"], "before_send": {"enabled": true, "timeout_ms": 1000, "policy": "fail_closed"}});
        let v = a.client.set_webhook(&cfg).await.unwrap();
        assert_eq!(v["config"]["before_send"]["policy"], "fail_closed");
        assert_eq!(a.client.webhook().await.unwrap()["config"], v["config"]);
        a.client
            .upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
            .await
            .unwrap();

        // Allow: stored as sent, and message.sent arrives signed with the webhook secret.
        let sent = a.client.send_text("alice", "bob", "c1", "hello").await.unwrap();
        // Reject: the sender gets message_rejected and nothing is stored.
        *r.answer.lock().unwrap() = json!({"action": "reject", "reason": "no swearing"});
        let e = a.client.send_text("alice", "bob", "c2", "darn").await.unwrap_err();
        assert_eq!(e.code(), Some("message_rejected"));
        assert!(e.to_string().contains("no swearing"));
        // Replace: history holds the new content.
        *r.answer.lock().unwrap() = json!({"action": "replace", "content": {"text": "h***o"}});
        let replaced = a.client.send_text("alice", "bob", "c3", "hello").await.unwrap();
        assert_eq!(replaced.seq, 2, "the rejected message took no seq");
        let h = a.client.history("d:alice:bob", 0, 10).await.unwrap();
        assert_eq!(
            h.iter()
                .map(|m| m.content["text"].as_str().unwrap())
                .collect::<Vec<_>>(),
            vec!["hello", "h***o"]
        );
        // Garbage answer with fail_closed: webhook_unavailable.
        *r.answer.lock().unwrap() = json!({"verdict": "maybe"});
        let e = a.client.send_text("alice", "bob", "c4", "x").await.unwrap_err();
        assert_eq!(e.code(), Some("webhook_unavailable"));

        // The two stored messages produce exactly two message.sent events, signed.
        let mut sent_events = Vec::new();
        for _ in 0..100 {
            sent_events = r
                .calls
                .lock()
                .unwrap()
                .iter()
                .filter(|c| c.0 == "message.sent")
                .cloned()
                .collect::<Vec<_>>();
            if sent_events.len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(sent_events.len(), 2);
        // The worker delivers events concurrently and promises no order (docs/webhooks.md):
        // each stored message has its event, whichever arrived first.
        let bodies: Vec<Value> = sent_events
            .iter()
            .map(|e| serde_json::from_str(&e.1).unwrap())
            .collect();
        let mut ids: Vec<&str> = bodies.iter().map(|b| b["data"]["msg_id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        let mut want = vec![sent.msg_id.as_str(), replaced.msg_id.as_str()];
        want.sort_unstable();
        assert_eq!(ids, want);
        assert!(bodies.iter().all(|b| b["type"] == "message.sent"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        for (_, body, signature) in &sent_events {
            tern_sdk::webhook::verify_webhook(signature, body.as_bytes(), "whsec_test", now).unwrap();
            assert!(tern_sdk::webhook::verify_webhook(signature, body.as_bytes(), "whsec_wrong", now).is_err());
        }

        // Dead events: none yet; redelivering an unknown one is not_found.
        let d = a.client.dead_webhook_events(None).await.unwrap();
        assert_eq!(d["events"], json!([]));
        let e = a.client.redeliver_webhook_event("wh_nope").await.unwrap_err();
        assert_eq!(e.code(), Some("not_found"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_and_user_events_arrive_and_failed_changes_send_none() {
    for (backend, store, dir) in stores().await {
        eprintln!("on {backend}");
        let config = EngineConfig {
            webhook_allow_private: true,
            ..Default::default()
        };
        let s = TestServer::start_with(store, dir, config).await;
        let a = s.app("a").await;
        let (url, r) = receiver().await;
        a.client
            .request::<Value>("PUT", "/v1/webhook", Some(&json!({"url": url})))
            .await
            .unwrap();
        let users: Vec<Value> = ["ann", "ben", "cat"].iter().map(|u| json!({"id": u})).collect();
        a.client.upsert_users(&users).await.unwrap();
        a.client.create_group("g1", "G", "ann", &["ben"]).await.unwrap();
        a.client.add_group_members("g1", &["cat", "ben"]).await.unwrap();
        a.client.remove_group_member("g1", "ben").await.unwrap();
        // Changes that fail write no event.
        assert!(a.client.remove_group_member("g1", "ben").await.is_err());
        assert!(a.client.create_group("g1", "again", "ann", &[]).await.is_err());
        a.client.kick("cat").await.unwrap();

        let want = [
            "group.created",
            "group.member_added",
            "group.member_removed",
            "user.kicked",
        ];
        // Delivery is at least once: a retry repeats an event under the same id, so events
        // are counted by id.
        let calls = || -> Vec<(String, Value)> {
            let calls = r.calls.lock().unwrap();
            let mut seen = std::collections::HashSet::new();
            calls
                .iter()
                .map(|c| (c.0.clone(), serde_json::from_str::<Value>(&c.1).unwrap()))
                .filter(|(_, body)| seen.insert(body["id"].as_str().unwrap().to_owned()))
                .collect()
        };
        for _ in 0..400 {
            if calls().len() >= want.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await; // anything extra would show up now
        let got = calls();
        let mut types: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
        types.sort_unstable();
        assert_eq!(types, want, "exactly one event per successful change");
        let added = got.iter().find(|(t, _)| t == "group.member_added").unwrap();
        assert_eq!(
            added.1["data"]["members"],
            json!(["cat"]),
            "only the users actually added"
        );
        let removed = got.iter().find(|(t, _)| t == "group.member_removed").unwrap();
        assert_eq!(removed.1["data"]["user_id"], "ben");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_webhook_secret_rotation_both_secrets_sign() {
    let (_, store, dir) = stores().await.into_iter().next().unwrap();
    let config = EngineConfig {
        webhook_allow_private: true,
        ..Default::default()
    };
    let s = TestServer::start_with(store, dir, config).await;
    let a = s.app("a").await;
    let (url, r) = receiver().await;
    a.client
        .request::<Value>("PUT", "/v1/webhook", Some(&json!({"url": url})))
        .await
        .unwrap();
    let rotated = tern_platform::tenancy::rotate_webhook_secret(&*s.store, &s.secrets, a.app.app_key.as_str())
        .await
        .unwrap();
    a.client.create_user("alice", "Alice").await.unwrap();
    a.client.create_user("bob", "Bob").await.unwrap();
    a.client.send_text("alice", "bob", "c1", "hi").await.unwrap();
    let mut call = None;
    for _ in 0..200 {
        call = r.calls.lock().unwrap().iter().find(|c| c.0 == "message.sent").cloned();
        if call.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (_, body, header) = call.expect("message.sent arrives");
    assert_eq!(header.matches("v1=").count(), 2, "{header}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // A receiver still on the old secret and one already on the new one both accept it.
    tern_sdk::webhook::verify_webhook(&header, body.as_bytes(), "whsec_test", now).unwrap();
    tern_sdk::webhook::verify_webhook(&header, body.as_bytes(), &rotated.webhook_secret, now).unwrap();
    assert!(tern_sdk::webhook::verify_webhook(&header, body.as_bytes(), "whsec_other", now).is_err());
}
