//! The SDK WebSocket with `permessage-deflate` (RFC 7692), when the node allows it
//! (`GatewayConfig::deflate`, `TERN_WS_DEFLATE`) and the client offers it.
//!
//! tungstenite, under axum's WebSocket, has no `permessage-deflate`; `yawc` (a maintained
//! WebSocket crate with RFC 7692 and zlib window bits) serves the connections that ask for
//! it, and only those: a client that offers nothing keeps the plain `transport::WsTransport`
//! and its few KiB per connection. The session behind either is the same.
//!
//! What a compressed connection holds while idle is bounded: the server imposes no context
//! takeover in both directions (RFC 7692 lets a server require it even when the client did
//! not offer it), so no connection keeps a deflate window between messages; the deflate and
//! inflate state for one message is borrowed from one pool per node, sized for messages in
//! flight, not for connections. Frames under `COMPRESS_FROM` bytes go uncompressed (a
//! receipt or a typing event does not shrink), so a connection that only chats small never
//! builds a compressor at all. The read limit covers the inflated size too: a small frame
//! that inflates past `max_frame_bytes` (a deflate bomb) closes the connection with 1009
//! after inflating at most that much.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::Message as WsMessage;
use axum::extract::FromRequestParts;
use axum::http::header::{HeaderMap, HeaderValue, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL};
use axum::http::request::Parts;
use axum::response::Response;
use bytes::Bytes;
use futures::SinkExt;
use tern_platform::proto::v1 as pb;
use tokio::sync::OwnedSemaphorePermit;
use yawc::close::CloseCode;
use yawc::{
    CompressionLevel, DeflateOptions, DeflatePool, Frame, HttpStream, OpCode, Options, WebSocket, WebSocketError,
};

use crate::close::{codes, Closing};
use crate::codec::{self, Encoding, Incoming, SharedFrame};
use crate::config::GatewayConfig;
use crate::gateway::Gateway;
use crate::transport::{closing_frame, decoded, protocol_error, too_large, Received, Transport, CLOSE_LINGER};
use crate::{session, JSON_SUBPROTOCOL, PROTO_SUBPROTOCOL};

/// Frames smaller than this are sent uncompressed: deflate's own header and the block
/// end cost more than a short frame saves.
const COMPRESS_FROM: usize = 256;

/// The read buffer an idle compressed connection keeps: yawc grows it for a larger frame
/// and shrinks it back after (`options`).
const READ_BUFFER: usize = 1024;

/// The write buffer an idle compressed connection keeps (`options`).
const WRITE_BUFFER: usize = 512;

/// Deflate and inflate states kept between messages, per window size, for the whole
/// node: enough for the messages being compressed at one moment on a few worker threads.
const POOL: usize = 64;

/// Whether the client offered `permessage-deflate` in any of its extension headers.
pub(crate) fn offered(headers: &HeaderMap) -> bool {
    headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|ext| ext.split(';').next().map(str::trim) == Some("permessage-deflate"))
}

/// The options every compressed connection of a node shares (one pool among them).
pub(crate) fn options(config: &GatewayConfig) -> Options {
    // yawc's limits are exclusive; Tern's `max_frame_bytes` is the largest frame accepted.
    let limit = config.max_frame_bytes + 1;
    let compression = DeflateOptions {
        level: CompressionLevel::fast(),
        server_max_window_bits: None,
        client_max_window_bits: None,
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        compression_threshold: COMPRESS_FROM,
        pool: Some(DeflatePool::new(POOL)),
    };
    Options {
        max_payload_read: Some(limit),
        max_read_buffer: Some(limit),
        read_buffer_capacity: Some(READ_BUFFER.min(config.read_buffer_bytes)),
        // yawc allocates its write buffer up front and returns to this size after a flush
        // (tungstenite's grows on the first write): small, so an idle connection holds little.
        write_buffer_capacity: Some(WRITE_BUFFER),
        compression: Some(compression),
        check_utf8: true,
        ..Options::default()
    }
}

/// The subprotocol to answer with, by the same rule as the plain WebSocket: the first of
/// Tern's two that the client lists, in Tern's order of preference (JSON, then proto).
fn subprotocol(headers: &HeaderMap) -> Option<&'static str> {
    let listed: Vec<&str> = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    [JSON_SUBPROTOCOL, PROTO_SUBPROTOCOL]
        .into_iter()
        .find(|p| listed.contains(p))
}

/// Answers the upgrade with the agreed extension and runs the session on the compressed
/// socket once the client switches protocols. A malformed handshake gets 400, as on the
/// plain path.
pub(crate) async fn upgrade(
    gw: Arc<Gateway>,
    options: Options,
    mut parts: Parts,
    permit: OwnedSemaphorePermit,
) -> Response {
    let protocol = subprotocol(&parts.headers);
    let incoming = match yawc::IncomingUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(status) => return crate::refuse(status, "bad_handshake", "not a valid WebSocket upgrade"),
    };
    let (response, socket) = match incoming.upgrade(options) {
        Ok(r) => r,
        Err(e) => return crate::refuse(axum::http::StatusCode::BAD_REQUEST, "bad_handshake", &e.to_string()),
    };
    let enc = Encoding::from_subprotocol(protocol);
    tokio::spawn(async move {
        let Ok(socket) = socket.await else { return };
        let write_timeout = gw.config.write_timeout();
        session::run(
            gw,
            DeflateTransport {
                socket,
                enc,
                write_timeout,
                closed: false,
            },
            session::Preset::default(),
            permit,
        )
        .await;
    });
    let mut response = response.map(|_| Body::empty());
    if let Some(p) = protocol {
        response
            .headers_mut()
            .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    response
}

/// A session's connection when `permessage-deflate` was agreed.
struct DeflateTransport {
    socket: WebSocket<HttpStream>,
    enc: Encoding,
    /// A write that takes longer than this means the peer stopped reading: give up.
    write_timeout: Duration,
    /// Our close frame was sent; `finish` waits for the client's.
    closed: bool,
}

/// Tern's frames as yawc's (the codec speaks axum's message type). No copy: a pushed frame's
/// encoding is shared by every session it goes to.
fn to_frame(msg: WsMessage) -> Frame {
    match msg {
        WsMessage::Text(t) => Frame::text(Bytes::from(t)),
        WsMessage::Binary(b) => Frame::binary(b),
        WsMessage::Ping(b) => Frame::ping(b),
        WsMessage::Pong(b) => Frame::pong(b),
        WsMessage::Close(_) => Frame::close(CloseCode::Normal, b""),
    }
}

/// Why reading ended the connection. yawc has already queued its own close (1009 for an
/// oversized or over-inflating frame, 1002/1007 for a protocol or UTF-8 fault).
fn read_error(e: WebSocketError) -> Received {
    match e {
        WebSocketError::FrameTooLarge => Received::Refuse(too_large()),
        WebSocketError::InvalidUTF8 => {
            Received::Refuse(Closing::error(codes::BAD_FRAME, "bad_frame", "text frame is not UTF-8"))
        }
        e if e.is_protocol_error() => Received::Refuse(protocol_error(e)),
        // What yawc says of a compressed frame that is not deflate data (a socket's own
        // errors are never `InvalidInput`).
        WebSocketError::IoError(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            Received::Refuse(protocol_error(format!("compressed frame: {e}")))
        }
        // The peer went away: nobody to tell.
        _ => Received::Gone,
    }
}

impl DeflateTransport {
    async fn write(&mut self, frames: impl IntoIterator<Item = Frame> + Send) -> bool {
        let socket = &mut self.socket;
        let all = async move {
            for f in frames {
                socket.feed(f).await?;
            }
            socket.flush().await
        };
        matches!(tokio::time::timeout(self.write_timeout, all).await, Ok(Ok(())))
    }
}

impl Transport for DeflateTransport {
    async fn receive(&mut self) -> Received {
        let frame = match self.socket.next_frame().await {
            Ok(f) => f,
            Err(e) => return read_error(e),
        };
        let (opcode, _, payload) = frame.into_parts();
        let data = match opcode {
            OpCode::Text => match std::str::from_utf8(&payload) {
                Ok(t) => Incoming::Text(t),
                Err(_) => return read_error(WebSocketError::InvalidUTF8),
            },
            OpCode::Binary => Incoming::Binary(&payload),
            // yawc answers pings itself; both count as signs of life.
            OpCode::Ping | OpCode::Pong => return Received::Alive,
            OpCode::Close => return Received::Gone,
            // Reassembled by yawc before they reach here.
            OpCode::Continuation => return Received::Alive,
        };
        decoded(self.enc, data)
    }

    async fn send(&mut self, f: &pb::ServerFrame) -> bool {
        metrics::counter!("tern_gateway_frames_out_total").increment(1);
        let frame = to_frame(codec::encode(self.enc, f));
        self.write([frame]).await
    }

    async fn write_batch(&mut self, batch: &[Arc<SharedFrame>]) -> bool {
        metrics::counter!("tern_gateway_frames_out_total").increment(batch.len() as u64);
        let enc = self.enc;
        let frames: Vec<Frame> = batch.iter().map(|f| to_frame(f.message(enc))).collect();
        self.write(frames).await
    }

    async fn close(&mut self, c: &Closing) {
        if self.send(&closing_frame(c)).await {
            // The close reason is limited to 123 bytes; the code always fits.
            let close = Frame::close(CloseCode::from(c.close_code), c.code.as_bytes());
            self.closed = self.write([close]).await;
        }
    }

    /// After our close, waits briefly for the client's, reading and dropping what it
    /// still sends (closing with unread input resets the connection, which can destroy
    /// our last frames before the client has read them).
    async fn finish(mut self) {
        if !self.closed {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            loop {
                match self.socket.next_frame().await {
                    Ok(f) if f.opcode() == OpCode::Close => break,
                    Ok(_) => {}
                    Err(_) => std::future::pending::<()>().await,
                }
            }
        })
        .await;
    }
}
