//! Tern's SDK front doors: WebSocket sessions at `GET /v1/connect` and the same sessions
//! over gRPC (`tern.client.v1.Gateway/Connect`, `grpc_service`), and the local fan-out
//! of deliveries from the bus to them. The protocol is `proto/tern/v1/client.proto`,
//! described in docs/protocol.md.
//!
//! Layout:
//! - `gateway`: the node — its sessions, the bus subscription and routing, the
//!   multi-device policy, presence watchers.
//! - `session`: one connection's task — authentication, commands, writing what is queued
//!   for it, whichever door it came through; `transport`: what a session needs of its
//!   door, and the WebSocket's side of it; `deflate`: the WebSocket with
//!   `permessage-deflate`, on another crate; `grpc`: the gRPC door's side; `outbound`:
//!   that bounded queue, shared with routing, with the close reason and the time the client
//!   was last heard from (the gateway's heartbeat sweep reads it).
//! - `apps`: the node's shared, periodically reloaded copy of each app (its settings).
//! - `friends`, `groups`, `lifecycle`: the commands of those areas, over the platform's
//!   operations.
//! - `rooms`: this node's room members, the room commands, and room fan-out.
//! - `codec`: the two subprotocols (`tern.v1.json`, `tern.v1.proto`); `convert`: engine
//!   types to frames; `close`: close reasons and codes; `auth`: the token check it relies on.

mod apps;
mod auth;
mod close;
mod codec;
mod config;
mod convert;
mod deflate;
mod files;
mod friends;
mod gateway;
mod groups;
mod grpc;
mod lifecycle;
mod outbound;
mod push;
mod rooms;
mod session;
mod transport;

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::{AuthRejection, SessionAuthenticator};
pub use close::codes as close_codes;
/// The frame codec on its own, for the fuzz targets (platform/fuzz): what a client's
/// WebSocket data message is parsed with, and what a server frame is written with.
pub use codec::{decode as decode_client_frame, encode as encode_server_frame, DecodeError, Encoding, Incoming};
pub use codec::{JSON_SUBPROTOCOL, PROTO_SUBPROTOCOL};
pub use config::GatewayConfig;
pub use gateway::{Gateway, GatewayError, GatewayState};
pub use grpc::{grpc_service, GrpcDoor};

/// The gateway's routes: `GET /v1/connect`.
pub fn router(state: GatewayState) -> axum::Router {
    axum::Router::new().route("/v1/connect", get(connect)).with_state(state)
}

/// Serves the gateway alone on `listener` until `shutdown` is cancelled, then tells every
/// client to reconnect and waits for the connections to drain. (`tern serve` merges
/// `router` into the one HTTP app instead.)
pub async fn serve(listener: TcpListener, state: GatewayState, shutdown: CancellationToken) -> std::io::Result<()> {
    let app = router(state.clone());
    let stop = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    state.drain().await;
    Ok(())
}

async fn connect(State(gw): State<GatewayState>, request: Request) -> Response {
    if gw.shutdown.is_cancelled() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "going_away",
            "the server is shutting down",
        );
    }
    let Ok(permit) = gw.connections.clone().try_acquire_owned() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "this node is at its connection limit; retry with backoff",
        );
    };
    let (mut parts, _body) = request.into_parts();
    if let Some(options) = gw.deflate.as_ref().filter(|_| deflate::offered(&parts.headers)) {
        return deflate::upgrade(gw.clone(), options.clone(), parts, permit).await;
    }
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let max = gw.config.max_frame_bytes;
    let ws = ws
        .protocols([JSON_SUBPROTOCOL, PROTO_SUBPROTOCOL])
        .read_buffer_size(gw.config.read_buffer_bytes)
        .write_buffer_size(gw.config.write_buffer_bytes)
        .max_frame_size(max)
        .max_message_size(max);
    let enc = codec::Encoding::from_subprotocol(ws.selected_protocol().and_then(|p| p.to_str().ok()));
    let gw: Arc<gateway::Gateway> = gw.clone();
    ws.on_upgrade(move |socket| {
        let write_timeout = gw.config.write_timeout();
        let connection = session::run(
            gw,
            transport::WsTransport::new(socket, enc, write_timeout),
            session::Preset::default(),
            permit,
        );
        // What every connection's task holds for its whole life (`TERN_LOG=tern_push_gateway=debug`).
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            tracing::debug!(
                bytes = std::mem::size_of_val(&connection),
                "size of a connection's future"
            )
        });
        connection
    })
}

pub(crate) fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, Json(body)).into_response()
}
