//! What a session needs of the connection it runs on, and the WebSocket's answer to it.
//!
//! A session (`crate::session`) is the same whichever door the client came through: it
//! authenticates, registers with the node, answers commands and writes what routing
//! queues for it. The door only carries frames: `Transport` reads the client's next frame,
//! writes the session's frames, and closes with a reason in the door's own way (a
//! WebSocket close code here, a gRPC status in `crate::grpc`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures::SinkExt;
use tern_platform::proto::v1 as pb;

use crate::close::{codes, Closing};
use crate::codec::{self, Encoding, Incoming, SharedFrame};

/// How long a closing WebSocket waits for the client's close frame.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// What the client sent next.
pub(crate) enum Received {
    Frame(pb::ClientFrame),
    /// A sign of life without a frame (a WebSocket ping or pong).
    Alive,
    /// The client went away or ended its side: nobody to tell anything.
    Gone,
    /// What arrived cannot be served (undecodable, oversized): close with this reason.
    Refuse(Closing),
}

/// One client connection as a session sees it.
pub(crate) trait Transport: Send + 'static {
    /// The client's next frame. Cancel-safe: the session waits on it beside its queue.
    fn receive(&mut self) -> impl Future<Output = Received> + Send;

    /// Writes one frame of the session's own (an answer, `auth_ok`). False once the
    /// connection is over.
    fn send(&mut self, frame: &pb::ServerFrame) -> impl Future<Output = bool> + Send;

    /// Writes frames routing queued for the session (pushes), together where it can.
    fn write_batch(&mut self, batch: &[Arc<SharedFrame>]) -> impl Future<Output = bool> + Send;

    /// Sends the frame that explains the close (`closing_frame`), then ends the connection
    /// with the door's own signal.
    fn close(&mut self, closing: &Closing) -> impl Future<Output = ()> + Send;

    /// The connection's last moments after the session is gone (it no longer counts
    /// against the connection cap).
    fn finish(self) -> impl Future<Output = ()> + Send;
}

/// The last frame before a close: `kicked` when the client should not simply retry,
/// `error` otherwise, both with the stable code.
pub(crate) fn closing_frame(c: &Closing) -> pb::ServerFrame {
    use pb::server_frame::Body;
    let body = if c.kicked {
        Body::Kicked(pb::Kicked {
            code: c.code.clone(),
            reason: c.reason.clone(),
        })
    } else {
        Body::Error(pb::Error {
            code: c.code.clone(),
            message: c.reason.clone(),
            retry_after_ms: 0,
        })
    };
    pb::ServerFrame {
        id: String::new(),
        body: Some(body),
    }
}

/// The SDK WebSocket (`GET /v1/connect`) in its negotiated encoding.
pub(crate) struct WsTransport {
    socket: WebSocket,
    enc: Encoding,
    /// A write that takes longer than this means the peer stopped reading: give up.
    write_timeout: Duration,
    /// Our close frame was sent; `finish` waits for the client's.
    closed: bool,
}

impl WsTransport {
    pub(crate) fn new(socket: WebSocket, enc: Encoding, write_timeout: Duration) -> Self {
        Self {
            socket,
            enc,
            write_timeout,
            closed: false,
        }
    }
}

/// Why reading a WebSocket message ended the connection.
fn read_error(e: axum::Error) -> Received {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => Received::Refuse(too_large()),
        Some(tungstenite::Error::Protocol(p)) => Received::Refuse(protocol_error(p)),
        // The peer went away: nobody to tell.
        _ => Received::Gone,
    }
}

/// A client's WebSocket message as a frame, counted; what does not decode is a `bad_frame`.
/// (Both WebSocket transports read through this.)
pub(crate) fn decoded(enc: Encoding, data: Incoming<'_>) -> Received {
    metrics::counter!("tern_gateway_frames_in_total").increment(1);
    match codec::decode(enc, data) {
        Ok(f) => Received::Frame(f),
        Err(e) => Received::Refuse(Closing::error(codes::BAD_FRAME, "bad_frame", e.to_string())),
    }
}

/// The close of a connection whose client broke the WebSocket protocol (both WebSocket
/// transports).
pub(crate) fn protocol_error(what: impl std::fmt::Display) -> Closing {
    Closing::error(
        codes::BAD_FRAME,
        "bad_frame",
        format!("WebSocket protocol error: {what}"),
    )
}

/// The close of a frame over the size limit, the same on every door.
pub(crate) fn too_large() -> Closing {
    Closing::error(
        codes::TOO_BIG,
        "frame_too_large",
        "frames and messages are limited to 64 KiB",
    )
}

impl Transport for WsTransport {
    async fn receive(&mut self) -> Received {
        let msg = match self.socket.recv().await {
            None => return Received::Gone,
            Some(Err(e)) => return read_error(e),
            Some(Ok(m)) => m,
        };
        let data = match &msg {
            WsMessage::Text(t) => Incoming::Text(t.as_str()),
            WsMessage::Binary(b) => Incoming::Binary(b),
            // tungstenite answers pings itself; both count as signs of life.
            WsMessage::Ping(_) | WsMessage::Pong(_) => return Received::Alive,
            WsMessage::Close(_) => return Received::Gone,
        };
        decoded(self.enc, data)
    }

    async fn send(&mut self, f: &pb::ServerFrame) -> bool {
        metrics::counter!("tern_gateway_frames_out_total").increment(1);
        let msg = codec::encode(self.enc, f);
        matches!(
            tokio::time::timeout(self.write_timeout, self.socket.send(msg)).await,
            Ok(Ok(()))
        )
    }

    /// Each frame goes into the socket's write buffer (which writes to the socket whenever
    /// it holds more than `write_buffer_bytes`), then one flush, so a burst costs a few
    /// system calls instead of one per frame.
    async fn write_batch(&mut self, batch: &[Arc<SharedFrame>]) -> bool {
        metrics::counter!("tern_gateway_frames_out_total").increment(batch.len() as u64);
        let enc = self.enc;
        let socket = &mut self.socket;
        let all = async move {
            for f in batch {
                socket.feed(f.message(enc)).await?;
            }
            socket.flush().await
        };
        matches!(tokio::time::timeout(self.write_timeout, all).await, Ok(Ok(())))
    }

    async fn close(&mut self, c: &Closing) {
        if self.send(&closing_frame(c)).await {
            let close = WsMessage::Close(Some(CloseFrame {
                code: c.close_code,
                // The close reason is limited to 123 bytes; the code always fits.
                reason: c.code.clone().into(),
            }));
            let _ = tokio::time::timeout(self.write_timeout, self.socket.send(close)).await;
            self.closed = true;
        }
    }

    /// After our close, waits briefly for the client's (the closing handshake), reading
    /// and dropping whatever it still sends: closing a socket with unread input resets the
    /// connection, which can destroy our last frames before the client has read them.
    async fn finish(mut self) {
        if !self.closed {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            loop {
                match self.socket.recv().await {
                    Some(Ok(WsMessage::Close(_))) => break,
                    Some(Ok(_)) => {}
                    // The stream ended on an error (say, the rest of an oversized frame
                    // is still unread): wait out the linger so the client can read our
                    // close before the socket goes.
                    None | Some(Err(_)) => std::future::pending::<()>().await,
                }
            }
        })
        .await;
    }
}
