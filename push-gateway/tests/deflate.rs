//! `permessage-deflate` on the SDK WebSocket (`TERN_WS_DEFLATE`): agreed only when the node
//! allows it and the client offers it, always without context takeover; a compressed client
//! chats with a plain one and reads far fewer bytes for a long message; a deflate bomb and
//! a frame that is not deflate data close that connection and leave the node serving.
#![allow(clippy::unwrap_used)]

mod support;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use serde_json::{json, Value};
use support::*;
use tern_sdk::Target;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use yawc::{CompressionLevel, DeflateOptions, Frame, HttpRequest, OpCode, Options, WebSocket};

fn config(deflate: bool) -> tern_push_gateway::GatewayConfig {
    tern_push_gateway::GatewayConfig {
        deflate,
        ..Env::config()
    }
}

/// The server's answer to an upgrade with these extension and protocol headers: status
/// line and headers, lower-cased names.
async fn handshake(server: &TestServer, extensions: Option<&str>) -> (String, Vec<(String, String)>, TcpStream) {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut req = format!(
        "GET /v1/connect HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: tern.v1.json\r\n",
        server.addr
    );
    if let Some(e) = extensions {
        req.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tokio::time::timeout(PATIENCE, tcp.read_exact(&mut b))
            .await
            .unwrap()
            .unwrap();
        head.push(b[0]);
    }
    let text = String::from_utf8(head).unwrap();
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let status = lines.next().unwrap().to_owned();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    (status, headers, tcp)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn deflate_is_agreed_only_when_allowed_and_offered_and_never_keeps_context() {
    let env = Env::new().await;
    let on = env.start_with(None, config(true)).await;
    let off = env.start_with(None, config(false)).await;

    // What Chromium offers.
    let offer = "permessage-deflate; client_max_window_bits";
    let (status, headers, _) = handshake(&on, Some(offer)).await;
    assert!(status.contains("101"), "{status}");
    let agreed = header(&headers, "sec-websocket-extensions").expect("extension agreed");
    assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
    assert!(agreed.contains("server_no_context_takeover"), "{agreed}");
    assert!(agreed.contains("client_no_context_takeover"), "{agreed}");
    assert_eq!(header(&headers, "sec-websocket-protocol"), Some("tern.v1.json"));

    // No offer: a plain WebSocket, on the same node.
    let (status, headers, _) = handshake(&on, None).await;
    assert!(status.contains("101"), "{status}");
    assert_eq!(header(&headers, "sec-websocket-extensions"), None);
    assert_eq!(header(&headers, "sec-websocket-protocol"), Some("tern.v1.json"));

    // An offer to a node that does not compress: refused by leaving it out.
    let (status, headers, _) = handshake(&off, Some(offer)).await;
    assert!(status.contains("101"), "{status}");
    assert_eq!(header(&headers, "sec-websocket-extensions"), None);
    on.stop().await;
    off.stop().await;
}

/// A TCP stream that counts the bytes read from the server.
struct Counting {
    inner: TcpStream,
    read: Arc<AtomicUsize>,
}

impl AsyncRead for Counting {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.read.fetch_add(buf.filled().len() - before, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counting {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A compressing client (yawc, as a browser would negotiate), authenticated, with a count
/// of the bytes it has read.
async fn compressed(server: &TestServer, app: &TestApp, user: &str) -> (WebSocket<Counting>, Arc<AtomicUsize>) {
    let read = Arc::new(AtomicUsize::new(0));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let io = Counting {
        inner: tcp,
        read: read.clone(),
    };
    let options = Options {
        compression: Some(DeflateOptions {
            level: CompressionLevel::fast(),
            ..Default::default()
        }),
        max_payload_read: Some(8 << 20),
        max_read_buffer: Some(8 << 20),
        ..Options::default()
    };
    let url = url::Url::parse(&server.url).unwrap();
    let request = HttpRequest::builder().header("Sec-WebSocket-Protocol", "tern.v1.json");
    let mut ws = WebSocket::handshake_with_request(url, io, options, request)
        .await
        .unwrap();
    let auth = json!({"id": "a1", "auth": {"token": app.token(user), "device_id": "zip", "platform": "PLATFORM_WEB"}});
    ws.send_frame(Frame::text(auth.to_string())).await.unwrap();
    let ok = next_json(&mut ws).await;
    assert!(ok.get("auth_ok").is_some(), "{ok}");
    (ws, read)
}

trait SendFrame {
    async fn send_frame(&mut self, f: Frame) -> yawc::Result<()>;
}

impl SendFrame for WebSocket<Counting> {
    async fn send_frame(&mut self, f: Frame) -> yawc::Result<()> {
        use futures::SinkExt;
        self.send(f).await
    }
}

async fn next_json(ws: &mut WebSocket<Counting>) -> Value {
    loop {
        let f = tokio::time::timeout(PATIENCE, ws.next_frame()).await.unwrap().unwrap();
        match f.opcode() {
            OpCode::Text => return serde_json::from_slice(f.payload()).unwrap(),
            OpCode::Close => panic!("closed: {:?}", f.close_code()),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_compressed_client_chats_with_a_plain_one_and_reads_a_fraction_of_the_bytes() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "bob"]).await;
    let server = env.start_with(None, config(true)).await;
    let (alice, mut alice_ev) = connect(&server.url, &app, "alice", "a-phone").await;
    let (mut bob, bob_read) = compressed(&server, &app, "bob").await;

    // A long, ordinary message (a pasted log, a long reply): the text repeats itself.
    let text = "The build on main passed; the deploy to staging waits for review. ".repeat(150);
    let ack = alice
        .send(Target::User("bob".into()), "text", json!({"text": text}))
        .await
        .unwrap();
    let before = bob_read.load(Ordering::Relaxed);
    let push = loop {
        let f = next_json(&mut bob).await;
        if f.get("message").is_some() {
            break f;
        }
    };
    let on_wire = bob_read.load(Ordering::Relaxed) - before;
    assert_eq!(push["message"]["msg_id"], ack.msg_id.as_str());
    assert_eq!(push["message"]["content"]["text"], text.as_str());
    let plain = push.to_string().len();
    println!("a {plain}-byte push frame took {on_wire} bytes on the wire");
    assert!(on_wire * 3 < plain, "{on_wire} bytes read for a {plain}-byte frame");

    // Bob answers over his compressed socket; Alice's plain client reads it.
    let answer = json!({"id": "s1", "send": {"client_msg_id": "c1", "user": "alice", "type": "text", "content": {"text": "ok, thanks"}}});
    bob.send_frame(Frame::text(answer.to_string())).await.unwrap();
    // Her own copy of the long message comes first, then his answer.
    assert_eq!(texts(&mut alice_ev, 2).await[1].2, "ok, thanks");
    server.stop().await;
}

#[tokio::test]
async fn a_deflate_bomb_or_garbage_closes_that_connection_and_the_node_serves_on() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "bob"]).await;
    let server = env.start_with(None, config(true)).await;
    let (alice, mut alice_ev) = connect(&server.url, &app, "alice", "a-phone").await;

    // 4 MiB of one letter deflates to a few KiB, under every wire limit; inflated it is far
    // over the 64 KiB a frame may hold.
    let (mut bomb, _) = compressed(&server, &app, "bob").await;
    let huge = json!({"id": "big", "ping": {}, "pad": "x".repeat(4 << 20)}).to_string();
    bomb.send_frame(Frame::text(huge)).await.unwrap();
    let code = tokio::time::timeout(PATIENCE, async {
        loop {
            match bomb.next_frame().await {
                Ok(f) if f.opcode() == OpCode::Close => return f.close_code().map(u16::from),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1009));

    // A frame that claims to be compressed (RSV1) but is not deflate data.
    let (status, _, mut tcp) = handshake(&server, Some("permessage-deflate")).await;
    assert!(status.contains("101"));
    let garbage = [0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff, 0x00, 0x01];
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0xC1, 0x80 | garbage.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(garbage.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    tcp.write_all(&frame).await.unwrap();
    let mut first = [0u8; 1];
    tokio::time::timeout(PATIENCE, tcp.read_exact(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first[0], 0x88, "a close frame");

    // Alice, on the same node, never noticed.
    still_serves(&alice, "alice", &mut alice_ev).await;
    server.stop().await;
}

#[tokio::test]
async fn a_history_page_over_a_compressed_socket_takes_a_fraction_of_the_bytes() {
    let env = Env::new().await;
    let app = env.app(|_| {}).await;
    app.users(&env, &["alice", "bob"]).await;
    let server = env.start_with(None, config(true)).await;
    // The chat of tenant-api/tests/compression.rs: short replies and one- or two-sentence
    // messages, taking turns.
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
        server
            .send_direct(&app, from, to, &format!("{} ({i})", lines[i % lines.len()]))
            .await;
    }
    let (mut bob, bob_read) = compressed(&server, &app, "bob").await;
    // Let the login sync's frames go by before counting.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ask = json!({"id": "h1", "history": {"conversation_id": "d:alice:bob", "limit": 50}});
    let before = bob_read.load(Ordering::Relaxed);
    bob.send_frame(Frame::text(ask.to_string())).await.unwrap();
    let page = loop {
        let f = next_json(&mut bob).await;
        if f["id"] == "h1" {
            break f;
        }
    };
    let on_wire = bob_read.load(Ordering::Relaxed) - before;
    let plain = page.to_string().len();
    let messages = page["history_result"]["messages"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(messages, 50, "{page}");
    println!("a 50-message history page: {plain} bytes as JSON, {on_wire} bytes on the wire");
    assert!(on_wire * 3 < plain, "{on_wire} bytes read for a {plain}-byte page");
    server.stop().await;
}
