//! Bad input at the server API's doors (REST and gRPC) that used to be accepted: repeated
//! credential headers, repeated JSON keys inside `content` and `metadata`, control and
//! bidirectional formatting characters in names and reactions, tokens whose times sit at
//! the integer extremes, rates above the operator's ceiling, credentials in webhook URLs.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use support::*;
use tern_platform::auth::token::mint_server_token;
use tern_platform::proto::server_v1 as pb;
use tern_sdk::signing::sign_request;

fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn nonce() -> String {
    format!("n-{}", ulid::Ulid::new())
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

/// A correctly signed request with `extra` headers added after the signing ones.
async fn signed(
    s: &TestServer,
    app: &TestApp,
    method: &str,
    path: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let headers = sign_request(
        app.app.app_key.as_str(),
        &app.secret,
        method,
        path,
        body,
        now_s(),
        &nonce(),
    );
    let mut req = s.http().request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{}{}", s.base, path),
    );
    for (k, v) in headers {
        req = req.header(k, v);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let res = req.body(body.to_vec()).send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.bytes().await.unwrap();
    (status, serde_json::from_slice(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn repeated_credential_headers_are_refused() {
    let (_, store, dir) = stores().await.remove(0);
    let s = TestServer::start(store, dir).await;
    let a = s.app("a").await;
    let other = s.app("other").await;
    let fake_signature = format!("v1={}", "0".repeat(64));
    // The genuine headers first, a second copy after: the old code judged by the first.
    for (name, value) in [
        ("X-Tern-Signature", fake_signature.as_str()),
        ("X-Tern-App-Key", other.app.app_key.as_str()),
        ("X-Tern-Nonce", "another-nonce-0123456789"),
    ] {
        let (st, v) = signed(&s, &a, "GET", "/v1/users", b"", &[(name, value)]).await;
        assert_eq!((st, code(&v)), (400, "invalid_argument"), "{name}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(name), "{v}");
    }
    // One copy of each is fine.
    let (st, _) = signed(&s, &a, "GET", "/v1/users", b"", &[]).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn repeated_json_keys_are_refused_at_any_depth() {
    let (_, store, dir) = stores().await.remove(0);
    let s = TestServer::start(store, dir).await;
    let a = s.app("a").await;
    a.client
        .upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
        .await
        .unwrap();
    for body in [
        r#"{"from":"alice","from":"bob","to":{"user":"bob"},"type":"text","content":{"text":"hi"}}"#,
        r#"{"from":"alice","to":{"user":"bob"},"type":"text","content":{"text":"hi","text":"pay mallory"}}"#,
        r#"{"from":"alice","to":{"user":"bob","user":"carol"},"type":"text","content":{"text":"hi"}}"#,
    ] {
        let (st, v) = signed(&s, &a, "POST", "/v1/messages", body.as_bytes(), &[]).await;
        assert_eq!((st, code(&v)), (400, "invalid_json"), "{body}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("duplicate key"), "{v}");
    }
    let body = r#"{"users":[{"id":"carol","metadata":{"tier":"free","tier":"gold"}}]}"#;
    let (st, v) = signed(&s, &a, "POST", "/v1/users", body.as_bytes(), &[]).await;
    assert_eq!((st, code(&v)), (400, "invalid_json"), "{v}");
    assert!(a.client.get_user("carol").await.is_err(), "nothing was written");
}

#[tokio::test]
async fn control_and_bidi_characters_are_refused_in_names_and_reactions() {
    let (_, store, dir) = stores().await.remove(0);
    let s = TestServer::start(store, dir).await;
    let a = s.app("a").await;
    for name in [
        "ali\u{0}ce",
        "ali\nce",
        "alice\u{202E}gnp.exe",
        "\u{2066}bob",
        "x\u{85}y",
    ] {
        let body = json!({"users": [{"id": "alice", "name": name}]}).to_string();
        let (st, v) = signed(&s, &a, "POST", "/v1/users", body.as_bytes(), &[]).await;
        assert_eq!((st, code(&v)), (400, "invalid_argument"), "{name:?}: {v}");
    }
    a.client
        .upsert_users(&[json!({"id": "alice", "name": "Alice"}), json!({"id": "bob"})])
        .await
        .unwrap();
    let sent = a
        .client
        .send_text("alice", "bob", "c-1", "line one\nline two")
        .await
        .unwrap();
    for reaction in ["%E2%80%AE", "%00", "a%0Ab", "%E2%81%A6x"] {
        let path = format!("/v1/messages/{}/reactions/{reaction}/users/bob", sent.msg_id);
        let (st, v) = signed(&s, &a, "PUT", &path, b"", &[]).await;
        assert_eq!((st, code(&v)), (400, "invalid_argument"), "{reaction}: {v}");
    }
    let path = format!("/v1/messages/{}/reactions/%F0%9F%91%8D/users/bob", sent.msg_id);
    let (st, v) = signed(&s, &a, "PUT", &path, b"", &[]).await;
    assert!(st < 300, "a plain emoji is a reaction: {v}");
}

#[tokio::test]
async fn bearer_tokens_with_extreme_times_are_refused_on_rest_and_grpc() {
    let (_, store, dir) = stores().await.remove(0);
    let s = TestServer::start(store, dir).await;
    let a = s.app("a").await;
    let now = now_s();
    let mut channel = grpc_channel(&s).await;
    for (iat, exp) in [(i64::MIN, i64::MAX), (now, i64::MAX), (i64::MIN, now + 60)] {
        let token = mint_server_token(&a.app.app_key, &a.secret, iat, exp);
        let res = s
            .http()
            .get(format!("{}/v1/users", s.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{iat}..{exp}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(code(&v), "token_invalid", "{iat}..{exp}: {v}");

        let mut req = tonic::Request::new(pb::GetUserRequest {
            user_id: "alice".into(),
        });
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let status = pb::users_client::UsersClient::new(&mut channel)
            .get_user(req)
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{iat}..{exp}");
        assert_eq!(tern_tenant_api::grpc::error_code(&status), Some("token_invalid".into()));
    }
}

#[tokio::test]
async fn repeated_credential_metadata_is_refused_on_grpc() {
    let (_, store, dir) = stores().await.remove(0);
    let s = TestServer::start(store, dir).await;
    let a = s.app("a").await;
    let other = s.app("other").await;
    let mut channel = grpc_channel(&s).await;
    let path = "/tern.server.v1.Users/GetUser";
    let msg = pb::GetUserRequest {
        user_id: "alice".into(),
    };
    for (name, value) in [
        ("x-tern-signature", format!("v1={}", "0".repeat(64))),
        ("x-tern-app-key", other.app.app_key.to_string()),
    ] {
        let mut req = grpc_signed(&a, path, msg.clone());
        req.metadata_mut().append(name, value.parse().unwrap());
        let status = pb::users_client::UsersClient::new(&mut channel)
            .get_user(req)
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{name}: {status:?}");
        assert!(status.message().contains("more than once"), "{status:?}");
    }
}

#[tokio::test]
async fn an_app_cannot_raise_its_rate_above_the_operator_ceiling() {
    let (_, store, dir) = stores().await.remove(0);
    let s = TestServer::start(store, dir).await;
    let a = s.app("a").await;
    let ceiling = tern_platform::domain::DEFAULT_MAX_APP_RATE_PER_SECOND;
    for patch in [
        json!({"write_rate_per_second": 1_000_000}),
        json!({"read_rate_per_second": ceiling + 1}),
    ] {
        let e = a.client.update_app_settings(&patch).await.unwrap_err();
        assert_eq!(e.code(), Some("invalid_argument"), "{patch}");
        assert!(e.to_string().contains("TERN_MAX_APP_RATE_LIMIT"), "{e}");
    }
    let ok = a
        .client
        .update_app_settings(&json!({"write_rate_per_second": ceiling}))
        .await
        .unwrap();
    assert_eq!(ok["write_rate_per_second"].as_u64(), Some(u64::from(ceiling)));
}

#[tokio::test]
async fn webhook_urls_with_credentials_are_refused_and_never_echoed() {
    let (_, store, dir) = stores().await.remove(0);
    let s = TestServer::start(store, dir).await;
    let a = s.app("a").await;
    let body = json!({"url": "https://hook-user:hunter2-secret@8.8.8.8/hook"}).to_string();
    let (st, v) = signed(&s, &a, "PUT", "/v1/webhook", body.as_bytes(), &[]).await;
    assert_eq!((st, code(&v)), (400, "invalid_argument"), "{v}");
    assert!(!v.to_string().contains("hunter2"), "{v}");

    // One stored before the rule (straight into the store) is shown redacted.
    let mut settings = a.app.settings.clone();
    settings.webhook.url = Some("https://hook-user:hunter2-secret@8.8.8.8/hook".into());
    s.store.update_app_settings(&a.app.id, &settings).await.unwrap();
    s.forget_credentials(&a.app.app_key);
    let shown = a.client.webhook().await.unwrap();
    assert!(!shown.to_string().contains("hunter2"), "{shown}");
    assert!(shown.to_string().contains("8.8.8.8/hook"), "{shown}");
}

/// One HTTP/1.1 exchange on `stream`: writes `head` (and nothing more), returns the response
/// head (status line and headers, lowercased) and the bytes read after it.
async fn exchange(stream: &mut tokio::net::TcpStream, head: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "connection closed before a response: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
    (head, got[end + 4..].to_vec())
}

#[tokio::test]
async fn a_refusal_before_the_body_is_read_closes_the_connection_and_says_so() {
    use tokio::io::AsyncReadExt;
    let (_, store, dir) = stores().await.remove(0);
    let s = TestServer::start(store, dir).await;
    let addr = s.base.trim_start_matches("http://").to_owned();

    // Refused before the body is read (a declared size over the limit, a path that names
    // nothing), with the body still on the wire: the response tells the client this
    // connection is finished, so a pooled client does not reuse a socket the server is
    // about to close and lose its next request.
    for (request, status) in [
        (
            "POST /v1/messages HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 999999999\r\n\r\n",
            "http/1.1 413",
        ),
        (
            "POST /v1/nothing-here HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n",
            "http/1.1 404",
        ),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (head, _) = exchange(&mut stream, request).await;
        assert!(head.starts_with(status), "{head}");
        assert!(head.contains("\r\nconnection: close"), "{head}");
        let mut rest = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut rest))
            .await
            .expect("the server closes the connection")
            .ok();
    }

    // Without a body, the refusal keeps the connection: a second request is answered on it.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    for _ in 0..2 {
        let (head, read) = exchange(&mut stream, "GET /v1/users HTTP/1.1\r\nhost: t\r\n\r\n").await;
        assert!(head.starts_with("http/1.1 401"), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
        // The error body: read what the content-length says before the next request.
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut body = vec![0u8; len - read.len()];
        stream.read_exact(&mut body).await.unwrap();
    }
}
