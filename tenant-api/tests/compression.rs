//! Compression as a client sees it: a 50-message history page comes gzip-compressed over
//! REST when the client accepts gzip (and decompresses to the same JSON), small answers and
//! clients that do not ask get plain bodies, and the gRPC server API takes gzip and zstd
//! requests and answers in either to clients that accept it. The byte counts are printed for
//! docs/benchmarks.md (`--no-capture`).
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read as _;

use support::*;
use tern_platform::proto::server_v1 as pb;
use tern_sdk::signing::{new_nonce, sign_request, unix_now};
use tonic::codec::CompressionEncoding;

/// Fifty messages between two users, of the lengths and kinds a chat has: short replies,
/// longer paragraphs, some with mentions and a reply reference in `ext`.
async fn fifty_messages(a: &TestApp) {
    a.client.create_user("alice", "Alice Martin").await.unwrap();
    a.client.create_user("bob", "Bob Okafor").await.unwrap();
    let lines = [
        "ok",
        "Are we still on for the design review tomorrow at 10?",
        "Yes, I moved it to the small room on the third floor because the big one is booked.",
        "I pushed the new onboarding screens, can you have a look before lunch? The empty states changed the most.",
        "haha",
        "Sending the numbers from last week: 1,204 sign-ups, 38% finished onboarding, 12% invited a friend.",
        "Thanks!",
        "Could you ask Priya whether the Android build picked up the fix for the keyboard overlap?",
        "On my way, 5 min",
        "Let's keep the old flow behind a flag until Thursday so support can compare both.",
    ];
    for i in 0..50 {
        let (from, to) = if i % 2 == 0 { ("alice", "bob") } else { ("bob", "alice") };
        let text = format!("{} ({i})", lines[i % lines.len()]);
        let mut body = serde_json::json!({
            "from": from,
            "to": {"user": to},
            "client_msg_id": format!("m-{i}"),
            "type": "text",
            "content": {"text": text},
        });
        if i % 7 == 3 {
            body["content"]["mentions"] = serde_json::json!([to]);
        }
        let _: serde_json::Value = a.client.request("POST", "/v1/messages", Some(&body)).await.unwrap();
    }
}

/// A signed GET with these extra headers: status, headers and the body as sent.
async fn get(s: &TestServer, a: &TestApp, path: &str, accept_gzip: bool) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let headers = sign_request(
        a.app.app_key.as_str(),
        &a.secret,
        "GET",
        path,
        b"",
        unix_now(),
        &new_nonce(),
    );
    let mut req = s.http().get(format!("{}{}", s.base, path));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    if accept_gzip {
        req = req.header("accept-encoding", "gzip");
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.unwrap().to_vec())
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

#[tokio::test]
async fn a_history_page_is_gzipped_for_clients_that_accept_gzip() {
    let (_, store, dir) = stores().await.into_iter().next().unwrap();
    let s = TestServer::start(store, dir).await;
    let a = s.app("a").await;
    fifty_messages(&a).await;
    let path = "/v1/conversations/d%3Aalice%3Abob/messages?limit=50";

    let (status, plain_headers, plain) = get(&s, &a, path, false).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&plain));
    assert!(plain_headers.get("content-encoding").is_none());
    let page: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(50), "{page}");

    let (status, headers, gz) = get(&s, &a, path, true).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("content-encoding").unwrap(), "gzip");
    let unpacked: serde_json::Value = serde_json::from_slice(&gunzip(&gz)).unwrap();
    assert_eq!(unpacked, page, "the gzipped page is the same page");
    assert!(gz.len() * 3 < plain.len(), "{} → {}", plain.len(), gz.len());
    eprintln!(
        "REST history page, 50 messages: {} bytes plain, {} bytes gzip ({:.0}% saved)",
        plain.len(),
        gz.len(),
        100.0 * (1.0 - gz.len() as f64 / plain.len() as f64)
    );

    // A small answer goes as it is, even to a client that accepts gzip.
    let (status, headers, body) = get(&s, &a, "/v1/users/alice", true).await;
    assert_eq!(status, 200);
    assert!(
        body.len() < usize::from(tern_tenant_api::COMPRESS_MIN_BYTES),
        "{}",
        body.len()
    );
    assert!(headers.get("content-encoding").is_none());

    // An error stays readable JSON with its code.
    let (status, _, body) = get(&s, &a, "/v1/users/nobody", true).await;
    assert_eq!(status, 404);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["error"]["code"].is_string(), "{v}");
}

#[tokio::test]
async fn grpc_takes_and_gives_gzip_and_zstd() {
    let (_, store, dir) = stores().await.into_iter().next().unwrap();
    let s = TestServer::start(store, dir).await;
    let channel = grpc_channel(&s).await;
    let a = s.app("a").await;
    fifty_messages(&a).await;
    let request = || {
        grpc_signed(
            &a,
            "/tern.server.v1.Messages/History",
            pb::HistoryRequest {
                conversation_id: "d:alice:bob".into(),
                limit: 50,
                ..Default::default()
            },
        )
    };

    // The request goes compressed and the answer comes compressed.
    let mut gzip_client = pb::messages_client::MessagesClient::new(channel.clone())
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    let answer = gzip_client.history(request()).await.unwrap();
    assert_eq!(
        answer.metadata().get("grpc-encoding").map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
    let page = answer.into_inner();
    assert_eq!(page.messages.len(), 50);

    // A client that does not accept gzip gets the same page uncompressed.
    let mut plain_client = pb::messages_client::MessagesClient::new(channel.clone());
    let answer = plain_client.history(request()).await.unwrap();
    assert!(answer.metadata().get("grpc-encoding").is_none());
    assert_eq!(answer.into_inner(), page);

    // zstd both ways too: the signed request is unpacked for its signature.
    let mut zstd_client = pb::messages_client::MessagesClient::new(channel.clone())
        .send_compressed(CompressionEncoding::Zstd)
        .accept_compressed(CompressionEncoding::Zstd);
    let answer = zstd_client.history(request()).await.unwrap();
    assert_eq!(
        answer.metadata().get("grpc-encoding").map(|v| v.to_str().unwrap()),
        Some("zstd")
    );
    assert_eq!(answer.into_inner(), page);

    let encoded = prost::Message::encode_to_vec(&page);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &encoded).unwrap();
    let gz = gz.finish().unwrap();
    // At zstd's default level, as tonic's codec compresses.
    let zs = zstd::stream::encode_all(encoded.as_slice(), zstd::DEFAULT_COMPRESSION_LEVEL).unwrap();
    eprintln!(
        "gRPC history page, 50 messages: {} bytes protobuf, {} bytes gzip ({:.0}% saved), {} bytes zstd ({:.0}% saved)",
        encoded.len(),
        gz.len(),
        100.0 * (1.0 - gz.len() as f64 / encoded.len() as f64),
        zs.len(),
        100.0 * (1.0 - zs.len() as f64 / encoded.len() as f64)
    );
}
