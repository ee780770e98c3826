//! Closes an HTTP/1 connection after an error answer to a request that came with a body.
//!
//! An early refusal (a declared size over the limit, a path that names nothing, a wrong
//! method) answers before the handler reads the body. hyper then drains what has already
//! arrived and, if the rest is still on the wire, closes the connection after the response,
//! without telling the client. A client with a connection pool sees a keep-alive response,
//! reuses the connection, and its next request fails with "connection closed before
//! message completed". So an error answer to a request with a body says `Connection:
//! close`, and the client opens a new connection instead. Whether the body was read is not
//! tracked (that would wrap every request body on the hot path); an accepted request keeps
//! its connection, and errors are rare enough that a new connection costs nothing.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::header::{HeaderValue, CONNECTION};
use http::Version;
use hyper::body::Body as _;

/// The middleware.
pub async fn close_after_error(request: Request, next: Next) -> Response {
    let had_body = request.version() <= Version::HTTP_11 && !request.body().is_end_stream();
    let mut response = next.run(request).await;
    if had_body && (response.status().is_client_error() || response.status().is_server_error()) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
