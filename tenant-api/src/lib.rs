//! Tern's server API: REST under `/v1` (axum) and gRPC `tern.server.v1` (tonic), the
//! operational endpoints (`/healthz`, `/readyz`, `/metrics`), and request signing.
//! Handlers parse input into platform types and call `tern_platform`; nothing here knows SQL.

use axum::routing::get;
use axum::Router;

pub mod close_after_error;
pub mod connections;
pub mod error;
pub mod error_count;
pub mod extract;
pub mod grpc;
pub mod input;
pub mod openapi;
pub mod ops;
pub mod push_ops;
pub mod rest;
pub mod state;
pub mod tls;

pub use state::ApiState;

/// REST responses at least this large are gzip-compressed for clients that accept gzip.
pub const COMPRESS_MIN_BYTES: u16 = 1024;

/// The REST server API with its error rendering, ready to merge into the node's router.
pub fn router(state: ApiState) -> Router {
    rest::routes()
        .route("/v1/openapi.json", get(serve_openapi))
        .fallback(rest::not_found)
        .method_not_allowed_fallback(rest::method_not_allowed)
        .layer(axum::middleware::from_fn(error::render_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            error_count::count_errors,
        ))
        .layer(axum::middleware::from_fn(close_after_error::close_after_error))
        .layer(compression())
        .with_state(state)
}

/// gzip for large responses (list and history pages, the OpenAPI document) when the request
/// says `Accept-Encoding: gzip`; small answers go as they are, where gzip would save little
/// and cost CPU.
fn compression() -> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::predicate::{NotForContentType, Predicate as _, SizeAbove};
    tower_http::compression::CompressionLayer::new()
        .gzip(true)
        .compress_when(SizeAbove::new(COMPRESS_MIN_BYTES).and(NotForContentType::GRPC))
}

/// The document the state holds (`ApiState::openapi_json`), rendered once when the state was
/// built.
async fn serve_openapi(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> impl axum::response::IntoResponse {
    ([("content-type", "application/json")], state.openapi_json.to_string())
}

/// A JSON object as a `google.protobuf.Struct`, for building gRPC requests.
pub fn grpc_struct(v: serde_json::Value) -> Option<prost_types::Struct> {
    grpc::json_struct(v)
}
