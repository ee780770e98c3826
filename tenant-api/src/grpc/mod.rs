//! The server API over gRPC (`tern.server.v1`), on its own listener: the services behind
//! the signature layer, plus server reflection and the standard health service; and
//! beside them whatever other door the node adds (`serve_with_doors`: the SDK's
//! `tern.client.v1.Gateway`, which authenticates its users itself).

use tern_platform::proto::server_v1 as pb;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::service::Routes;

use crate::connections::{self, ConnectionLimits};
use crate::state::ApiState;

mod auth;
mod convert;
mod files;
mod friends;
mod groups;
mod push;
mod rooms;
mod services;
mod settings;
pub mod status;

pub use status::error_code;

/// A JSON object as a Struct (for clients building requests).
pub fn json_struct(v: serde_json::Value) -> Option<prost_types::Struct> {
    convert::json_to_struct(v)
}

/// Serves gRPC on `listener` until `shutdown` is cancelled, with the default connection limits.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    serve_with_limits(listener, state, ConnectionLimits::default(), shutdown).await
}

/// Serves gRPC on `listener` within `limits` (HTTP/2 only) until `shutdown` is cancelled,
/// then lets the calls in flight finish.
pub async fn serve_with_limits(
    listener: TcpListener,
    state: ApiState,
    limits: ConnectionLimits,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    serve_with_tls(listener, state, limits, None, shutdown).await
}

/// `serve_with_limits`, over TLS when `tls` is given (an acceptor offering `h2` by ALPN,
/// `crate::tls::Tls::grpc_acceptor`).
pub async fn serve_with_tls(
    listener: TcpListener,
    state: ApiState,
    limits: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    serve_with_doors(listener, state, limits, tls, |routes| routes, shutdown).await
}

/// Where another door's services join the port: their calls skip the signature layer
/// (the SDK door checks user tokens itself).
const OPEN_PREFIXES: &[&str] = &["/grpc.reflection.", "/grpc.health.", "/tern.client.v1."];

/// `serve_with_tls` with `doors` adding more services to the port (the SDK door).
pub async fn serve_with_doors(
    listener: TcpListener,
    state: ApiState,
    limits: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    doors: impl FnOnce(Routes) -> Routes,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    // Reflection in both versions: grpcurl 1.8 and many other clients still ask only
    // v1alpha. The health service's descriptor is registered so tools can call it by name.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tern_platform::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_failed = |e: tonic_reflection::server::Error| {
        tracing::error!(error = %e, "gRPC reflection could not load the descriptor set");
        e
    };
    let reflection_v1 = reflection().build_v1().map_err(reflection_failed);
    let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_failed);
    let (health, health_service) = tonic_health::server::health_reporter();
    let server = services::Server { state: state.clone() };
    health
        .set_serving::<pb::users_server::UsersServer<services::Server>>()
        .await;
    health
        .set_serving::<pb::messages_server::MessagesServer<services::Server>>()
        .await;
    health
        .set_serving::<pb::conversations_server::ConversationsServer<services::Server>>()
        .await;
    health
        .set_serving::<pb::groups_server::GroupsServer<services::Server>>()
        .await;
    health
        .set_serving::<pb::presence_server::PresenceServer<services::Server>>()
        .await;
    health
        .set_serving::<pb::broadcasts_server::BroadcastsServer<services::Server>>()
        .await;
    health
        .set_serving::<pb::moderation_server::ModerationServer<services::Server>>()
        .await;
    health
        .set_serving::<pb::rooms_server::RoomsServer<services::Server>>()
        .await;
    health
        .set_serving::<pb::friends_server::FriendsServer<services::Server>>()
        .await;
    health
        .set_serving::<pb::apps_server::AppsServer<services::Server>>()
        .await;
    health
        .set_serving::<pb::webhooks_server::WebhooksServer<services::Server>>()
        .await;
    health
        .set_serving::<pb::push_server::PushServer<services::Server>>()
        .await;
    health
        .set_serving::<pb::files_server::FilesServer<services::Server>>()
        .await;
    // gzip and zstd both ways: requests compressed with either are accepted, and answers
    // are compressed with the first of them the client's `grpc-accept-encoding` lists
    // (else they go uncompressed).
    macro_rules! gzip {
        ($service:expr) => {
            $service
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .send_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Zstd)
        };
    }
    let mut routes = Routes::new(health_service)
        .add_service(gzip!(pb::users_server::UsersServer::new(server.clone())))
        .add_service(gzip!(pb::messages_server::MessagesServer::new(server.clone())))
        .add_service(gzip!(pb::conversations_server::ConversationsServer::new(
            server.clone()
        )))
        .add_service(gzip!(pb::groups_server::GroupsServer::new(server.clone())))
        .add_service(gzip!(pb::presence_server::PresenceServer::new(server.clone())))
        .add_service(gzip!(pb::broadcasts_server::BroadcastsServer::new(server.clone())))
        .add_service(gzip!(pb::moderation_server::ModerationServer::new(server.clone())))
        .add_service(gzip!(pb::rooms_server::RoomsServer::new(server.clone())))
        .add_service(gzip!(pb::friends_server::FriendsServer::new(server.clone())))
        .add_service(gzip!(pb::apps_server::AppsServer::new(server.clone())))
        .add_service(gzip!(pb::webhooks_server::WebhooksServer::new(server.clone())))
        .add_service(gzip!(pb::push_server::PushServer::new(server.clone())))
        .add_service(gzip!(pb::files_server::FilesServer::new(server)));
    if let Ok(r) = reflection_v1 {
        routes = routes.add_service(r);
    }
    if let Ok(r) = reflection_v1alpha {
        routes = routes.add_service(r);
    }
    let routes = doors(routes);
    // The connections are served by `connections::serve` (bounded, with timeouts) rather
    // than tonic's own server, so the signature layer is put in front of the routes here.
    let service = tower::ServiceBuilder::new()
        .map_request(|request: http::Request<hyper::body::Incoming>| request.map(tonic::body::Body::new))
        .layer(auth::SignedLayer::new(state))
        .service(routes.prepare());
    let limits = ConnectionLimits {
        http2_only: true,
        ..limits
    };
    connections::serve_tls(listener, service, limits, tls, shutdown).await
}

/// Serves only `routes` (plus health and reflection) on a gRPC port, for a node that runs
/// the SDK gateway without the server API.
pub async fn serve_doors_only(
    listener: TcpListener,
    limits: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    doors: impl FnOnce(Routes) -> Routes,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let (_health, health_service) = tonic_health::server::health_reporter();
    let mut routes = Routes::new(health_service);
    if let Ok(r) = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tern_platform::proto::FILE_DESCRIPTOR_SET)
        .build_v1()
    {
        routes = routes.add_service(r);
    }
    let service = tower::ServiceBuilder::new()
        .map_request(|request: http::Request<hyper::body::Incoming>| request.map(tonic::body::Body::new))
        .service(doors(routes).prepare());
    let limits = ConnectionLimits {
        http2_only: true,
        ..limits
    };
    connections::serve_tls(listener, service, limits, tls, shutdown).await
}
