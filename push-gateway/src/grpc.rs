//! The gRPC door of the client protocol: `tern.client.v1.Gateway/Connect`, one
//! bidirectional stream of the WebSocket's frames (`ClientFrame` in, `ServerFrame` out).
//!
//! Each call is a session like a WebSocket's (`crate::session::run`): it takes a place
//! under the same connection cap, registers in presence and routing, and is kicked,
//! replaced, timed out and synced the same way. What differs is only the carriage: frames
//! go out through a small bounded channel that tonic drains into the response stream, and
//! a close is the explaining frame followed by a gRPC status whose details carry the
//! stable code (`google.rpc.ErrorInfo`, reason = the code, metadata `close_code` = the
//! WebSocket close code of the same reason).
//!
//! The login may come in the call's metadata (`authorization: Bearer <token>` with
//! `tern-device-id`, optionally `tern-platform` and `tern-sync-version`): the session then
//! opens at once. With only `authorization`, the first frame is an `auth` whose empty
//! token stands for it.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tern_platform::proto::client_v1::gateway_server::{self, GatewayServer};
use tern_platform::proto::v1 as pb;
use tokio::sync::mpsc;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_types::{ErrorDetails, StatusExt};

use crate::close::{codes, Closing};
use crate::codec::SharedFrame;
use crate::gateway::Gateway;
use crate::session::{self, Preset};
use crate::transport::{closing_frame, too_large, Received, Transport};

/// Frames waiting between a session and tonic's writer; a session that fills it waits
/// (up to its write timeout) like a WebSocket whose socket buffer is full.
const CHANNEL_FRAMES: usize = 16;

/// How long a closed stream waits for tonic to take its status before the request side
/// is dropped.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

type Item = Result<pb::ServerFrame, Status>;

/// The service behind `tern.client.v1.Gateway`, for the node's gRPC port.
#[derive(Clone)]
pub struct GrpcDoor {
    gw: Arc<Gateway>,
}

/// The gRPC door of `gw`, ready to add to a tonic router: frames up to the gateway's frame
/// limit, gzip and zstd accepted and offered.
pub fn grpc_service(gw: Arc<Gateway>) -> GatewayServer<GrpcDoor> {
    let max = gw.config.max_frame_bytes;
    GatewayServer::new(GrpcDoor { gw })
        .max_decoding_message_size(max)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd)
}

/// A status with Tern's error details: the stable code and the close code of the reason.
pub(crate) fn status(code: Code, reason: &str, message: &str, close_code: u16) -> Status {
    let metadata = HashMap::from([("close_code".to_owned(), close_code.to_string())]);
    let details = ErrorDetails::with_error_info(reason, "tern", metadata);
    Status::with_error_details(code, message, details)
}

/// The gRPC status that ends a stream for `c`.
fn closing_status(c: &Closing) -> Status {
    let code = match c.close_code {
        codes::NOT_AUTHENTICATED => Code::Unauthenticated,
        codes::AUTH_FAILED if c.code == "invalid_argument" => Code::InvalidArgument,
        codes::AUTH_FAILED => Code::Unauthenticated,
        codes::KICKED => Code::Aborted,
        codes::BAD_FRAME => Code::InvalidArgument,
        codes::TOO_BIG | codes::SLOW_CONSUMER => Code::ResourceExhausted,
        codes::HEARTBEAT_TIMEOUT => Code::DeadlineExceeded,
        codes::NORMAL => Code::Ok,
        _ => Code::Unavailable,
    };
    status(code, &c.code, &c.reason, c.close_code)
}

/// The login the call's metadata carries, if any. A malformed value is the caller's
/// mistake and refuses the call.
fn preset(md: &MetadataMap) -> Result<Preset, Status> {
    let text = |name: &str| -> Result<Option<String>, Status> {
        match md.get(name) {
            None => Ok(None),
            Some(v) => v.to_str().map(|s| Some(s.trim().to_owned())).map_err(|_| {
                status(
                    Code::InvalidArgument,
                    "invalid_argument",
                    &format!("the {name} metadata is not text"),
                    codes::AUTH_FAILED,
                )
            }),
        }
    };
    let invalid = |message: &str| status(Code::InvalidArgument, "invalid_argument", message, codes::AUTH_FAILED);
    let token = match text("authorization")? {
        None => None,
        Some(v) => match v.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                Some(t.trim().to_owned())
            }
            _ => return Err(invalid("authorization must be `Bearer <user token>`")),
        },
    };
    let Some(device_id) = text("tern-device-id")? else {
        return Ok(Preset { auth: None, token });
    };
    let Some(token) = token else {
        return Err(invalid("tern-device-id needs authorization: Bearer <user token>"));
    };
    let platform = match text("tern-platform")?.as_deref() {
        None | Some("") => pb::Platform::Unspecified,
        Some("ios") => pb::Platform::Ios,
        Some("android") => pb::Platform::Android,
        Some("web") => pb::Platform::Web,
        Some("desktop") => pb::Platform::Desktop,
        Some("other") => pb::Platform::Other,
        Some(_) => return Err(invalid("tern-platform must be ios, android, web, desktop or other")),
    };
    let sync_version = match text("tern-sync-version")? {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| invalid("tern-sync-version must be an integer"))?,
        ),
    };
    Ok(Preset {
        auth: Some(pb::Auth {
            token,
            device_id,
            platform: platform as i32,
            sync_version,
        }),
        token: None,
    })
}

#[tonic::async_trait]
impl gateway_server::Gateway for GrpcDoor {
    type ConnectStream = Outgoing;

    async fn connect(&self, request: Request<Streaming<pb::ClientFrame>>) -> Result<Response<Outgoing>, Status> {
        let gw = &self.gw;
        if gw.shutdown.is_cancelled() {
            return Err(status(
                Code::Unavailable,
                "going_away",
                "the server is shutting down",
                codes::SERVICE_RESTART,
            ));
        }
        let preset = preset(request.metadata())?;
        let Ok(permit) = gw.connections.clone().try_acquire_owned() else {
            return Err(status(
                Code::Unavailable,
                "too_many_connections",
                "this node is at its connection limit; retry with backoff",
                codes::SERVICE_RESTART,
            ));
        };
        let (tx, rx) = mpsc::channel(CHANNEL_FRAMES);
        let transport = GrpcTransport {
            inbound: request.into_inner(),
            tx,
            write_timeout: gw.config.write_timeout(),
            closed: false,
        };
        tokio::spawn(session::run(gw.clone(), transport, preset, permit));
        Ok(Response::new(Outgoing { rx }))
    }
}

/// The response stream: what the session hands to the channel.
pub struct Outgoing {
    rx: mpsc::Receiver<Item>,
}

impl futures::Stream for Outgoing {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.rx.poll_recv(cx)
    }
}

/// One `Connect` call as a session's transport.
struct GrpcTransport {
    inbound: Streaming<pb::ClientFrame>,
    tx: mpsc::Sender<Item>,
    write_timeout: Duration,
    /// The closing status is queued; `finish` waits for tonic to take it.
    closed: bool,
}

impl GrpcTransport {
    async fn put(&mut self, item: Item) -> bool {
        matches!(
            tokio::time::timeout(self.write_timeout, self.tx.send(item)).await,
            Ok(Ok(()))
        )
    }
}

/// What a failed read of the request stream means.
fn read_error(s: &Status) -> Received {
    match s.code() {
        // tonic's "decoded message length too large" (the frame limit).
        Code::OutOfRange | Code::ResourceExhausted => Received::Refuse(too_large()),
        // A message that is not a ClientFrame, a bad compression flag or encoding.
        Code::Internal => Received::Refuse(Closing::error(
            codes::BAD_FRAME,
            "bad_frame",
            format!("malformed frame: {}", s.message()),
        )),
        // A reset stream, a broken connection: nobody to tell.
        _ => Received::Gone,
    }
}

impl Transport for GrpcTransport {
    async fn receive(&mut self) -> Received {
        tokio::select! {
            m = self.inbound.message() => match m {
                Ok(Some(f)) => {
                    metrics::counter!("tern_gateway_frames_in_total").increment(1);
                    Received::Frame(f)
                }
                // The client ended its side of the call.
                Ok(None) => Received::Gone,
                Err(s) => read_error(&s),
            },
            // tonic dropped the response: the call was reset or its connection closed.
            _ = self.tx.closed() => Received::Gone,
        }
    }

    async fn send(&mut self, f: &pb::ServerFrame) -> bool {
        metrics::counter!("tern_gateway_frames_out_total").increment(1);
        self.put(Ok(f.clone())).await
    }

    /// Each frame is its own gRPC message; tonic gathers what the channel holds into one
    /// write. (A shared frame is copied per gRPC session: the WebSocket's encode-once
    /// sharing has no counterpart in tonic's codec.)
    async fn write_batch(&mut self, batch: &[Arc<SharedFrame>]) -> bool {
        metrics::counter!("tern_gateway_frames_out_total").increment(batch.len() as u64);
        for f in batch {
            if !self.put(Ok(f.frame().clone())).await {
                return false;
            }
        }
        true
    }

    async fn close(&mut self, c: &Closing) {
        if self.send(&closing_frame(c)).await {
            self.closed = self.put(Err(closing_status(c))).await;
        }
    }

    /// After a close, waits (briefly) until tonic has written the last frames and the
    /// status, so that the request side is not dropped while they are still queued.
    /// Otherwise dropping the channel ends the call with OK.
    async fn finish(self) {
        let GrpcTransport {
            inbound, tx, closed, ..
        } = self;
        if closed {
            let _ = tokio::time::timeout(CLOSE_LINGER, tx.closed()).await;
        }
        drop(inbound);
    }
}
