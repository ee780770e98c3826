//! Idle clients that agree to `permessage-deflate` (`tern-bench idle --deflate`), to measure
//! what a compressed connection costs the server. The SDK's WebSocket (tungstenite) cannot
//! offer the extension, so these connect with yawc, the crate the server compresses with:
//! authenticate with the JSON subprotocol, then send a ping every 20 s (a sign of life within
//! the server's 30 s heartbeat) until cancelled.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures::SinkExt;
use tokio_util::sync::CancellationToken;
use yawc::{CompressionLevel, DeflateOptions, Frame, HttpRequest, OpCode, Options, WebSocket};

/// Connects and authenticates user `user` with `token`; the returned token ends the
/// connection. Every frame it reads stamps `last_event` (µs).
pub async fn connect(ws_url: &str, token: &str, user: &str, last_event: Arc<AtomicU64>) -> Result<CancellationToken> {
    let url = url::Url::parse(ws_url)?;
    let addr = format!(
        "{}:{}",
        url.host_str().context("no host")?,
        url.port_or_known_default().context("no port")?
    );
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let options = Options {
        compression: Some(DeflateOptions {
            level: CompressionLevel::fast(),
            ..Default::default()
        }),
        read_buffer_capacity: Some(2048),
        write_buffer_capacity: Some(2048),
        ..Options::default()
    };
    let request = HttpRequest::builder().header("Sec-WebSocket-Protocol", "tern.v1.json");
    let mut ws = WebSocket::handshake_with_request(url, tcp, options, request).await?;
    let auth = serde_json::json!({"id": "a", "auth": {"token": token, "device_id": format!("bench-{user}"), "platform": "PLATFORM_OTHER"}});
    ws.send(Frame::text(auth.to_string())).await?;
    loop {
        let f = tokio::time::timeout(Duration::from_secs(60), ws.next_frame()).await??;
        match f.opcode() {
            OpCode::Text => {
                let v: serde_json::Value = serde_json::from_slice(f.payload())?;
                if v.get("auth_ok").is_some() {
                    break;
                }
                if v.get("error").is_some() {
                    bail!("auth refused: {v}");
                }
            }
            OpCode::Close => bail!("closed during auth"),
            _ => {}
        }
    }
    last_event.store(crate::fleet::now_us(), Ordering::Relaxed);
    let stop = CancellationToken::new();
    let cancelled = stop.clone();
    tokio::spawn(async move {
        let mut beat = tokio::time::interval(Duration::from_secs(20));
        beat.tick().await;
        loop {
            tokio::select! {
                _ = cancelled.cancelled() => break,
                _ = beat.tick() => {
                    if ws.send(Frame::ping("")).await.is_err() {
                        break;
                    }
                }
                f = ws.next_frame() => match f {
                    Ok(_) => last_event.store(crate::fleet::now_us(), Ordering::Relaxed),
                    Err(_) => break,
                },
            }
        }
        let _ = ws.send(Frame::close(yawc::close::CloseCode::Normal, b"")).await;
    });
    Ok(stop)
}
