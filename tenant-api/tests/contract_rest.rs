//! The REST contract as snapshots: the body of every error code the server API answers, each
//! provoked by a real request to a live server. A change shows up as a snapshot diff to review
//! (`cargo insta review`). The OpenAPI document as the binary serves it (server API and
//! operator API) is pinned by the `tern` package's `tests/openapi.rs`.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use support::*;
use tern_platform::domain::AppStatus;

/// Codes no request from outside can provoke on demand: a database outage, a bug, and the
/// user-token checks that only the WebSocket login runs (the gateway's snapshots and tests
/// cover those), and the sender's own recall and edit windows, which bind users only.
const NOT_PROVOKED_OVER_REST: &[&str] = &[
    "unavailable",
    "internal",
    "token_revoked",
    "user_not_found",
    "recall_window_passed",
    "edit_window_passed",
    // Answered by a test push to a device whose provider has no credentials (tests/push.rs).
    "push_not_configured",
];

/// An `until` far in the future and fixed, so messages that name it stay the same.
const FIXED_UNTIL: i64 = 4_102_444_800_000;

/// A signed raw request, with every part of the signature in the test's hands.
struct Call<'a> {
    base: &'a str,
    key: String,
    secret: String,
    timestamp: i64,
}

impl<'a> Call<'a> {
    fn as_app(s: &'a TestServer, app: &TestApp) -> Self {
        Self {
            base: &s.base,
            key: app.app.app_key.as_str().to_owned(),
            secret: app.secret.clone(),
            timestamp: tern_sdk::signing::unix_now(),
        }
    }

    fn headers(&self, method: &str, path: &str, body: &[u8], nonce: &str) -> reqwest::header::HeaderMap {
        let mut map = reqwest::header::HeaderMap::new();
        for (k, v) in
            tern_sdk::signing::sign_request(&self.key, &self.secret, method, path, body, self.timestamp, nonce)
        {
            map.insert(k, v.parse().unwrap());
        }
        map
    }

    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.raw(method, path, body).await
    }

    async fn raw(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
        let headers = self.headers(method, path, &body, &tern_sdk::signing::new_nonce());
        answer(
            reqwest::Client::new()
                .request(method.parse().unwrap(), format!("{}{path}", self.base))
                .headers(headers)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

/// The status and JSON body of an answer; an error's `request_id` must be the one in the
/// `X-Request-Id` header (the snapshot redacts it, so it is checked here).
async fn answer(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let header_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if let Some(id) = body["error"]["request_id"].as_str() {
        assert_eq!(Some(id), header_id.as_deref(), "request_id matches X-Request-Id");
    }
    (status, body)
}

/// What a before-send webhook receiver answers: a rejection, always.
async fn rejecting_receiver() -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { axum::Json(json!({"action": "reject", "reason": "not today"})) }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

/// A URL where nothing listens (a port bound and released again).
async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    drop(l);
    url
}

fn text(from: &str, to: Value, t: &str) -> Value {
    json!({"from": from, "to": to, "type": "text", "content": {"text": t}})
}

/// Collects (case, status, body) and checks the code each case expects.
#[derive(Default)]
struct Cases {
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Cases {
    fn record(&self, case: &str, want: &str, (status, body): (u16, Value)) {
        assert_eq!(
            body["error"]["code"].as_str(),
            Some(want),
            "{case}: expected {want}, got {status} {body}"
        );
        self.seen
            .lock()
            .unwrap()
            .push(json!({"case": case, "status": status, "body": body}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_body() {
    for (backend, store, dir) in stores().await {
        eprintln!("on {backend}");
        let config = EngineConfig {
            webhook_allow_private: true,
            ..Default::default()
        };
        let s = TestServer::start_with(store, dir, config).await;
        let cases = Cases::default();
        let a = s.app("a").await;
        let c = &a.client;
        c.upsert_users(&["alice", "bob", "carol", "dave", "erin"].map(|u| json!({"id": u})))
            .await
            .unwrap();
        let call = Call::as_app(&s, &a);
        let http = reqwest::Client::new();

        // ---- authentication, in the order the server checks ----
        let unsigned = http.get(format!("{}/v1/users/alice", s.base)).send().await.unwrap();
        cases.record("unsigned request", "missing_credentials", answer(unsigned).await);
        let stranger = Call {
            key: "ak_unknownunknown".into(),
            ..Call::as_app(&s, &a)
        };
        cases.record(
            "unknown app key",
            "unknown_app_key",
            stranger.send("GET", "/v1/users/alice", None).await,
        );
        let stale = Call {
            timestamp: tern_sdk::signing::unix_now() - 3600,
            ..Call::as_app(&s, &a)
        };
        cases.record(
            "timestamp an hour old",
            "timestamp_out_of_window",
            stale.send("GET", "/v1/users/alice", None).await,
        );
        let forger = Call {
            secret: "sk_not_the_secret".into(),
            ..Call::as_app(&s, &a)
        };
        cases.record(
            "wrong secret",
            "bad_signature",
            forger.send("GET", "/v1/users/alice", None).await,
        );
        let headers = call.headers("GET", "/v1/users/alice", b"", &tern_sdk::signing::new_nonce());
        let url = format!("{}/v1/users/alice", s.base);
        let first = http.get(&url).headers(headers.clone()).send().await.unwrap();
        assert_eq!(first.status(), 200);
        let replay = http.get(&url).headers(headers).send().await.unwrap();
        cases.record("replayed request", "nonce_reused", answer(replay).await);

        let now = tern_sdk::signing::unix_now();
        let key = a.app.app_key.as_str();
        for (case, code, token) in [
            ("bearer token that is no JWT", "token_invalid", "not-a-token".to_owned()),
            (
                "bearer token expired an hour ago",
                "token_expired",
                tern_sdk::signing::mint_server_token(key, &a.secret, now - 7200, now - 3600),
            ),
            (
                "bearer token valid for two hours",
                "token_lifetime_too_long",
                tern_sdk::signing::mint_server_token(key, &a.secret, now, now + 7200),
            ),
            (
                "bearer token issued in ten minutes",
                "token_not_yet_valid",
                tern_sdk::signing::mint_server_token(key, &a.secret, now + 600, now + 900),
            ),
        ] {
            let resp = http.get(&url).bearer_auth(token).send().await.unwrap();
            cases.record(case, code, answer(resp).await);
        }
        let suspended = s.app("suspended").await;
        s.store
            .set_app_status(&suspended.app.id, AppStatus::Suspended)
            .await
            .unwrap();
        s.forget_credentials(&suspended.app.app_key);
        cases.record(
            "suspended app",
            "app_suspended",
            Call::as_app(&s, &suspended).send("GET", "/v1/users/alice", None).await,
        );

        // ---- malformed requests and missing things ----
        cases.record(
            "body is not JSON",
            "invalid_json",
            call.raw("POST", "/v1/users", b"{\"users\": [".to_vec()).await,
        );
        cases.record(
            "unknown field",
            "invalid_json",
            call.send("POST", "/v1/users", Some(&json!({"users": [], "extra": 1})))
                .await,
        );
        cases.record(
            "malformed user id",
            "invalid_argument",
            call.send("GET", "/v1/users/bad%20id", None).await,
        );
        cases.record(
            "body over 256 KiB",
            "payload_too_large",
            call.raw("POST", "/v1/users", vec![b' '; 300 * 1024]).await,
        );
        cases.record(
            "unknown user",
            "not_found",
            call.send("GET", "/v1/users/nobody", None).await,
        );
        let nowhere = http.get(format!("{}/v1/nowhere", s.base)).send().await.unwrap();
        cases.record("unknown path", "not_found", answer(nowhere).await);
        let wrong_method = http.put(format!("{}/v1/users", s.base)).send().await.unwrap();
        cases.record("wrong method", "method_not_allowed", answer(wrong_method).await);
        let group = json!({"id": "team", "name": "Team", "owner": "alice", "members": ["bob", "erin"]});
        assert_eq!(call.send("POST", "/v1/groups", Some(&group)).await.0, 200);
        cases.record(
            "group id taken",
            "conflict",
            call.send("POST", "/v1/groups", Some(&group)).await,
        );
        let vip = json!({"id": "vip", "name": "VIP", "owner": "alice", "join_policy": "invite_only"});
        assert_eq!(call.send("POST", "/v1/groups", Some(&vip)).await.0, 200);
        cases.record(
            "joining an invite-only group",
            "forbidden",
            call.send("POST", "/v1/groups/vip/join", Some(&json!({"user_id": "bob"})))
                .await,
        );

        // ---- sends the pipeline refuses ----
        let too_long = "x".repeat(12 * 1024 + 1);
        cases.record(
            "text over max_text_bytes",
            "content_too_large",
            call.send(
                "POST",
                "/v1/messages",
                Some(&text("alice", json!({"user": "bob"}), &too_long)),
            )
            .await,
        );
        c.ban_user("carol", None, "spam").await.unwrap();
        cases.record(
            "banned sender",
            "user_banned",
            call.send(
                "POST",
                "/v1/messages",
                Some(&text("carol", json!({"user": "bob"}), "hi")),
            )
            .await,
        );
        c.mute_user("dave", None).await.unwrap();
        cases.record(
            "muted sender",
            "user_muted",
            call.send(
                "POST",
                "/v1/messages",
                Some(&text("dave", json!({"user": "bob"}), "hi")),
            )
            .await,
        );
        assert_eq!(call.send("PUT", "/v1/users/bob/blocks/erin", None).await.0, 200);
        cases.record(
            "recipient blocked the sender",
            "blocked",
            call.send(
                "POST",
                "/v1/messages",
                Some(&text("erin", json!({"user": "bob"}), "hi")),
            )
            .await,
        );
        c.put_word_list("strict", "reject", &["darn"]).await.unwrap();
        cases.record(
            "a word of a reject list",
            "content_rejected",
            call.send(
                "POST",
                "/v1/messages",
                Some(&text("alice", json!({"user": "bob"}), "darn it")),
            )
            .await,
        );
        c.mute_group_member("team", "bob", Some(FIXED_UNTIL)).await.unwrap();
        cases.record(
            "member muted in the group",
            "member_muted",
            call.send(
                "POST",
                "/v1/messages",
                Some(&text("bob", json!({"group": "team"}), "hi")),
            )
            .await,
        );
        c.update_group("team", &json!({"mute_all": true})).await.unwrap();
        cases.record(
            "group muted for members",
            "group_muted",
            call.send(
                "POST",
                "/v1/messages",
                Some(&text("erin", json!({"group": "team"}), "hi")),
            )
            .await,
        );

        // ---- per-app settings that refuse ----
        let strict = s.app("strict").await;
        strict
            .client
            .upsert_users(&["alice", "bob", "carol"].map(|u| json!({"id": u})))
            .await
            .unwrap();
        strict
            .client
            .update_app_settings(&json!({"friendship_required_for_direct": true}))
            .await
            .unwrap();
        let strict_call = Call::as_app(&s, &strict);
        cases.record(
            "direct message between strangers",
            "not_friends",
            strict_call
                .send(
                    "POST",
                    "/v1/messages",
                    Some(&text("alice", json!({"user": "bob"}), "hi")),
                )
                .await,
        );
        let throttled = s.app("throttled").await;
        throttled
            .client
            .update_app_settings(&json!({"write_rate_per_second": 1}))
            .await
            .unwrap();
        let throttled_call = Call::as_app(&s, &throttled);
        let mut limited = None;
        for _ in 0..50 {
            let r = throttled_call
                .send("POST", "/v1/users", Some(&json!({"users": [{"id": "alice"}]})))
                .await;
            if r.0 == 429 {
                limited = Some(r);
                break;
            }
        }
        cases.record(
            "over write_rate_per_second",
            "rate_limited",
            limited.expect("no request was rate limited"),
        );

        let roomy = s.app("roomy").await;
        let roomy_call = Call::as_app(&s, &roomy);
        roomy
            .client
            .upsert_users(&["alice", "bob", "carol"].map(|u| json!({"id": u})))
            .await
            .unwrap();
        roomy
            .client
            .update_app_settings(&json!({"group_member_limit": 2, "group_read_receipt_limit": 1}))
            .await
            .unwrap();
        roomy
            .client
            .create_group("pair", "Pair", "alice", &["bob"])
            .await
            .unwrap();
        cases.record(
            "adding past group_member_limit",
            "group_full",
            roomy_call
                .send("POST", "/v1/groups/pair/members", Some(&json!({"members": ["carol"]})))
                .await,
        );
        let said = roomy_call
            .send(
                "POST",
                "/v1/messages",
                Some(&text("alice", json!({"group": "pair"}), "hi")),
            )
            .await;
        let said_id = said.1["msg_id"].as_str().unwrap().to_owned();
        cases.record(
            "read counts of a group over group_read_receipt_limit",
            "receipts_unavailable",
            roomy_call
                .send(
                    "POST",
                    "/v1/groups/pair/read-counts",
                    Some(&json!({"msg_ids": [said_id]})),
                )
                .await,
        );

        // ---- the before-send webhook ----
        let hooked = s.app("hooked").await;
        hooked
            .client
            .upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
            .await
            .unwrap();
        let hook = |url: String| json!({"url": url, "before_send": {"enabled": true, "timeout_ms": 1000, "policy": "fail_closed"}});
        hooked
            .client
            .set_webhook(&hook(rejecting_receiver().await))
            .await
            .unwrap();
        let hooked_call = Call::as_app(&s, &hooked);
        cases.record(
            "before-send webhook rejects",
            "message_rejected",
            hooked_call
                .send(
                    "POST",
                    "/v1/messages",
                    Some(&text("alice", json!({"user": "bob"}), "hi")),
                )
                .await,
        );
        hooked.client.set_webhook(&hook(dead_url().await)).await.unwrap();
        cases.record(
            "before-send webhook unreachable, fail_closed",
            "webhook_unavailable",
            hooked_call
                .send(
                    "POST",
                    "/v1/messages",
                    Some(&text("alice", json!({"user": "bob"}), "hi")),
                )
                .await,
        );

        // ---- message lifecycle ----
        let m = c.send_text("alice", "bob", "m1", "hello").await.unwrap();
        let ext = format!("/v1/messages/{}/extensions", m.msg_id);
        let set = json!({"set": [{"key": "vote", "value": "yes", "expected_version": 0}]});
        assert_eq!(call.send("POST", &ext, Some(&set)).await.0, 200);
        cases.record(
            "extension changed since it was read",
            "version_conflict",
            call.send("POST", &ext, Some(&set)).await,
        );
        for i in 0..20 {
            c.add_reaction(&m.msg_id, &format!("r{i}"), "bob").await.unwrap();
        }
        cases.record(
            "a 21st reaction of one user",
            "limit_exceeded",
            call.send(
                "PUT",
                &format!("/v1/messages/{}/reactions/r20/users/bob", m.msg_id),
                None,
            )
            .await,
        );
        c.recall(&m.msg_id).await.unwrap();
        cases.record(
            "editing a recalled message",
            "message_recalled",
            call.send(
                "PATCH",
                &format!("/v1/messages/{}", m.msg_id),
                Some(&json!({"content": {"text": "again"}})),
            )
            .await,
        );

        // ---- files ----
        let file = |size: u64, content_type: &str| {
            json!({"uploader": "alice", "name": "a.png", "size": size, "content_type": content_type,
                "sha256": "00".repeat(32)})
        };
        cases.record(
            "a file over 100 MB",
            "file_too_large",
            call.send("POST", "/v1/files", Some(&file(100 * 1024 * 1024 + 1, "image/png")))
                .await,
        );
        let limited = s.app("limited").await;
        limited.client.upsert_users(&[json!({"id": "alice"})]).await.unwrap();
        let limited_call = Call::as_app(&s, &limited);
        let limits = json!({"files": {"allowed_content_types": ["image/*"], "storage_quota_bytes": 100}});
        assert_eq!(
            limited_call.send("PATCH", "/v1/app/settings", Some(&limits)).await.0,
            200
        );
        cases.record(
            "a PDF where only images are allowed",
            "content_type_not_allowed",
            limited_call
                .send("POST", "/v1/files", Some(&file(10, "application/pdf")))
                .await,
        );
        cases.record(
            "a file past the storage quota",
            "storage_quota_exceeded",
            limited_call
                .send("POST", "/v1/files", Some(&file(101, "image/png")))
                .await,
        );
        let data = b"0123456789".to_vec();
        let up = c.create_file("alice", "digits.txt", "text/plain", &data).await.unwrap();
        let tus = |offset: u64, body: Vec<u8>| {
            http.patch(&up.upload_url)
                .header("tus-resumable", "1.0.0")
                .header("content-type", "application/offset+octet-stream")
                .header("upload-offset", offset.to_string())
                .body(body)
        };
        let no_version = http
            .patch(&up.upload_url)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", "0")
            .body(data.clone());
        cases.record(
            "PATCH without Tus-Resumable",
            "tus_version_unsupported",
            answer(no_version.send().await.unwrap()).await,
        );
        let json_patch = http
            .patch(&up.upload_url)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/json")
            .header("upload-offset", "0")
            .body(data.clone());
        cases.record(
            "PATCH of JSON",
            "unsupported_media_type",
            answer(json_patch.send().await.unwrap()).await,
        );
        cases.record(
            "PATCH at the wrong offset",
            "upload_offset_mismatch",
            answer(tus(3, data.clone()).send().await.unwrap()).await,
        );
        cases.record(
            "PATCH past the announced length",
            "upload_exceeds_length",
            answer(tus(0, b"0123456789X".to_vec()).send().await.unwrap()).await,
        );
        cases.record(
            "Upload-Checksum with md5",
            "checksum_unsupported",
            answer(
                tus(0, data.clone())
                    .header("upload-checksum", "md5 AAAA")
                    .send()
                    .await
                    .unwrap(),
            )
            .await,
        );
        cases.record(
            "Upload-Checksum that does not match",
            "checksum_mismatch",
            answer(
                tus(0, data.clone())
                    .header("upload-checksum", "sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
                    .send()
                    .await
                    .unwrap(),
            )
            .await,
        );
        let tampered = up.upload_url.replace("&sig=", "&sig=ff");
        cases.record(
            "an upload URL with a wrong signature",
            "url_invalid",
            answer(
                http.patch(&tampered)
                    .header("tus-resumable", "1.0.0")
                    .header("content-type", "application/offset+octet-stream")
                    .header("upload-offset", "0")
                    .body(data.clone())
                    .send()
                    .await
                    .unwrap(),
            )
            .await,
        );
        // A PATCH whose body is still arriving holds the upload.
        let (host, path) = up.upload_url.trim_start_matches("http://").split_once('/').unwrap();
        let mut slow = tokio::net::TcpStream::connect(host).await.unwrap();
        let head = format!(
            "PATCH /{path} HTTP/1.1\r\nHost: {host}\r\nTus-Resumable: 1.0.0\r\n\
             Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: 10\r\n\r\n01234"
        );
        tokio::io::AsyncWriteExt::write_all(&mut slow, head.as_bytes())
            .await
            .unwrap();
        // Let the slow PATCH take the upload first: a competitor that came first would make it
        // answer upload_busy itself and leave nobody holding the upload.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let mut busy = (0, Value::Null);
        // Up to ~10 s for the slow PATCH to take the upload's lease (a store write, slow on
        // a loaded machine); the loop ends at the first upload_busy.
        for _ in 0..500 {
            // A wrong piece checksum, so that this PATCH never completes the upload itself
            // if it comes before the slow one.
            busy = answer(
                tus(0, data.clone())
                    .header("upload-checksum", "sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            if busy.1["error"]["code"] == "upload_busy" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        cases.record("a second PATCH while one is running", "upload_busy", busy);
        drop(slow);
        let msg = json!({"from": "alice", "to": {"user": "bob"}, "type": "file", "content": {"file_id": up.file_id}});
        cases.record(
            "sending a file still uploading",
            "file_not_ready",
            call.send("POST", "/v1/messages", Some(&msg)).await,
        );
        // The cut PATCH lets go of the upload once the server notices the connection closed.
        let mut deleted = 0;
        for _ in 0..200 {
            deleted = http
                .delete(&up.upload_url)
                .header("tus-resumable", "1.0.0")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            if deleted != 423 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(deleted, 204);
        cases.record(
            "an upload that was terminated",
            "upload_expired",
            answer(tus(0, data.clone()).send().await.unwrap()).await,
        );
        let done = c.upload_file("alice", "digits.txt", "text/plain", &data).await.unwrap();
        let url = c.file_url(&done.file_id, Some("alice")).await.unwrap().url;
        let past = tern_platform::files::UrlSigner::new(s.secrets.derive_key("file urls")).query(
            tern_platform::files::UrlPurpose::Download,
            &a.app.id,
            &tern_platform::ids::FileId::parse(&done.file_id).unwrap(),
            1_000,
        );
        let expired = format!("{}/v1/files/{}/content?{past}", s.base, done.file_id);
        cases.record(
            "a download URL past its time",
            "url_expired",
            answer(http.get(&expired).send().await.unwrap()).await,
        );
        cases.record(
            "a range past the end of the file",
            "range_not_satisfiable",
            answer(http.get(&url).header("range", "bytes=10-").send().await.unwrap()).await,
        );
        // ---- offline push ----
        cases.record(
            "APNs credentials whose key is not a .p8",
            "invalid_push_credentials",
            call.send(
                "PUT",
                "/v1/push/credentials/apns",
                Some(
                    &json!({"key_id": "ABC123DEFG", "team_id": "TEAM123456", "bundle_id": "com.example.chat",
                    "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}),
                ),
            )
            .await,
        );

        let seen = cases.seen.lock().unwrap().clone();
        let covered: BTreeSet<&str> = seen
            .iter()
            .filter_map(|c| c["body"]["error"]["code"].as_str())
            .chain(NOT_PROVOKED_OVER_REST.iter().copied())
            .collect();
        let all: BTreeSet<&str> = tern_tenant_api::error::ERROR_CODES.iter().map(|(c, _, _)| *c).collect();
        assert_eq!(
            covered, all,
            "every error code has a case here (or is listed as not provoked)"
        );
        for case in &seen {
            let code = case["body"]["error"]["code"].as_str().unwrap();
            let (_, status, _) = tern_tenant_api::error::ERROR_CODES
                .iter()
                .find(|(c, _, _)| *c == code)
                .unwrap();
            assert_eq!(case["status"], *status, "{case}: the status documented for {code}");
        }
        insta::assert_json_snapshot!("rest_error_bodies", seen, {
            "[].body.error.request_id" => "[request_id]",
        });
    }
}
