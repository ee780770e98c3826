//! Closes an HTTP/1 connection whose request body was answered without being read.
//!
//! An early refusal (missing signature, unknown route, wrong method) answers before the
//! handler reads the body. hyper then drains what has already arrived and, if the rest is
//! still on the wire, closes the connection after the response, without telling the
//! client. A client with a connection pool sees a keep-alive response, reuses the
//! connection, and its next request fails with "connection closed before message
//! completed". Here such a response says `Connection: close`, so the client opens a new
//! connection instead. A request whose body was read to the end (every accepted request)
//! keeps its connection.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION};
use http::Version;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

/// The middleware: wraps a request body that has something to read, and marks the
/// response `Connection: close` if the body was not read to its end.
pub async fn close_if_unread(request: Request, next: Next) -> Response {
    let http1 = request.version() <= Version::HTTP_11;
    if !http1 || request.body().is_end_stream() {
        return next.run(request).await;
    }
    let read = Arc::new(AtomicBool::new(false));
    let request = request.map(|inner| {
        Body::new(Watched {
            inner,
            read: read.clone(),
        })
    });
    let mut response = next.run(request).await;
    if !read.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that records when it has been read to its end.
struct Watched {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.read.store(true, Ordering::Release),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.read.store(true, Ordering::Release),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
