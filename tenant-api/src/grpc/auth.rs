//! Request signatures for gRPC (SIGNING.md §1): a tower layer in front of every service.
//!
//! It buffers the unary request, hashes the protobuf bytes of the message (after the 5-byte
//! gRPC prefix), verifies the headers (as lowercase metadata) with method `POST`, the gRPC
//! method path and an empty query, applies the app's rate limit, and hands the verified
//! `App` to the service in the request's extensions; counts the call, and an error answer (a
//! `grpc-status` other than 0) as an error of the app. Reflection, health and the SDK's
//! gRPC door (`super::OPEN_PREFIXES`) pass untouched.

use std::borrow::Cow;
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use tern_platform::auth::request::SignedRequest;
use tonic::body::Body;
use tower::{Layer, Service};

use super::status::to_status;
use crate::error::ApiError;
use crate::state::ApiState;

/// Largest gRPC request accepted (the same as the REST body limit).
fn limit(st: &ApiState) -> usize {
    st.body_limit + 5
}

#[derive(Clone)]
pub struct SignedLayer {
    state: ApiState,
}

impl SignedLayer {
    pub fn new(state: ApiState) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for SignedLayer {
    type Service = SignedService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        SignedService {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct SignedService<S> {
    inner: S,
    state: ApiState,
}

type BoxFuture<T, E> = Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

/// The message bytes of a unary gRPC body, after the 5-byte prefix: as they are, or
/// unpacked when the frame is compressed with `grpc-encoding: gzip` or `zstd` (the
/// signature covers the uncompressed message). What a compressed message unpacks to is
/// bounded by `max_len`, so a small bomb cannot grow past the body limit.
fn message_bytes<'a>(body: &'a [u8], encoding: Option<&str>, max_len: usize) -> Result<Cow<'a, [u8]>, ApiError> {
    if body.is_empty() {
        return Ok(Cow::Borrowed(body));
    }
    if body.len() < 5 {
        return Err(ApiError::invalid("truncated gRPC frame"));
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let msg = body
        .get(5..5 + len)
        .ok_or_else(|| ApiError::invalid("truncated gRPC frame"))?;
    let unpack = |reader: &mut dyn Read, name: &str| {
        let mut out = Vec::new();
        reader
            .take(max_len as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|_| ApiError::invalid(format!("the {name}-compressed gRPC message cannot be decompressed")))?;
        if out.len() > max_len {
            return Err(ApiError::payload_too_large(max_len));
        }
        Ok(Cow::Owned(out))
    };
    match (body[0], encoding) {
        (0, _) => Ok(Cow::Borrowed(msg)),
        (1, Some("gzip")) => unpack(&mut flate2::read::GzDecoder::new(msg), "gzip"),
        (1, Some("zstd")) => {
            let mut decoder = zstd::stream::read::Decoder::new(msg)
                .map_err(|_| ApiError::invalid("the zstd-compressed gRPC message cannot be decompressed"))?;
            unpack(&mut decoder, "zstd")
        }
        (1, Some(other)) => Err(ApiError::invalid(format!(
            "gRPC requests compressed with {other:?} are not accepted (use gzip or zstd)"
        ))),
        _ => Err(ApiError::invalid(
            "a compressed gRPC frame needs grpc-encoding: gzip or zstd",
        )),
    }
}

impl<S> Service<http::Request<Body>> for SignedService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let st = self.state.clone();
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            if super::OPEN_PREFIXES.iter().any(|p| path.starts_with(p)) {
                return inner.call(req).await;
            }
            let (mut parts, body) = req.into_parts();
            let bytes: Bytes = match Limited::new(body, limit(&st)).collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => return Ok(to_status(ApiError::payload_too_large(st.body_limit)).into_http()),
            };
            let verified = async {
                let encoding = parts.headers.get("grpc-encoding").and_then(|v| v.to_str().ok());
                let msg = message_bytes(&bytes, encoding, st.body_limit)?;
                // Two copies of a credential: which to believe is ambiguous, so refuse.
                if let Some(name) = crate::extract::repeated_credential(&parts.headers) {
                    return Err(ApiError::invalid(format!("{name} is sent more than once")));
                }
                let h = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
                let app = st
                    .verifier
                    .verify(SignedRequest {
                        app_key: h("x-tern-app-key"),
                        timestamp: h("x-tern-timestamp"),
                        nonce: h("x-tern-nonce"),
                        signature: h("x-tern-signature"),
                        authorization: h("authorization"),
                        method: "POST",
                        path: &path,
                        raw_query: "",
                        body: &msg,
                    })
                    .await?;
                st.pipeline.usage().api_call(&app.id);
                let write = !is_read(&path);
                tern_platform::rate_limits::check_api_rate(st.pipeline.rate_limits().as_ref(), &app, write)
                    .await
                    .map_err(|e| {
                        st.pipeline.usage().api_error(&app.id);
                        ApiError::rate_limited(e.retry_after_secs())
                    })?;
                Ok::<_, ApiError>(app)
            }
            .await;
            match verified {
                Ok(app) => {
                    let app_id = app.id.clone();
                    parts.extensions.insert(app);
                    let answered = inner
                        .call(http::Request::from_parts(parts, Body::new(Full::new(bytes))))
                        .await;
                    // A unary error answers trailers-only: its status is in the headers. An
                    // error a stream ends with after its first message is not seen here.
                    if let Ok(res) = &answered {
                        let status = res.headers().get("grpc-status").and_then(|v| v.to_str().ok());
                        if status.is_some_and(|s| s != "0") || !res.status().is_success() {
                            st.pipeline.usage().api_error(&app_id);
                        }
                    }
                    answered
                }
                Err(e) => Ok(to_status(e).into_http()),
            }
        })
    }
}

/// gRPC methods that only read, for the read rate limit.
fn is_read(path: &str) -> bool {
    let method = path.rsplit('/').next().unwrap_or("");
    method.starts_with("Get")
        || method.starts_with("List")
        || method.starts_with("Query")
        || method == "History"
        || method == "Log"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unary_frames_are_unwrapped_and_bad_ones_refused() {
        let mut frame = vec![0, 0, 0, 0, 3];
        frame.extend_from_slice(b"abc");
        assert_eq!(&*message_bytes(&frame, None, 100).unwrap(), b"abc");
        assert_eq!(&*message_bytes(b"", None, 100).unwrap(), b"");
        assert!(message_bytes(&[0, 0, 0], None, 100).is_err());
        assert!(message_bytes(&[1, 0, 0, 0, 0], None, 100).is_err());
        assert!(message_bytes(&[0, 0, 0, 0, 9, 1], None, 100).is_err());

        // gzip: unpacked for the signature, bounded, and only gzip.
        let gz = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            std::io::Write::write_all(&mut e, data).unwrap();
            let packed = e.finish().unwrap();
            let mut frame = vec![1];
            frame.extend_from_slice(&(packed.len() as u32).to_be_bytes());
            frame.extend_from_slice(&packed);
            frame
        };
        assert_eq!(&*message_bytes(&gz(b"hello"), Some("gzip"), 100).unwrap(), b"hello");
        let bomb = gz(&[0u8; 10_000]);
        assert!(bomb.len() < 100);
        assert_eq!(
            message_bytes(&bomb, Some("gzip"), 1000).unwrap_err().code,
            "payload_too_large"
        );
        assert!(message_bytes(&gz(b"hello"), Some("zstd"), 100).is_err());
        assert!(message_bytes(&gz(b"hello"), Some("br"), 100).is_err());

        // zstd: the same, bounded too.
        let zs = |data: &[u8]| {
            let packed = zstd::stream::encode_all(data, 3).unwrap();
            let mut frame = vec![1];
            frame.extend_from_slice(&(packed.len() as u32).to_be_bytes());
            frame.extend_from_slice(&packed);
            frame
        };
        assert_eq!(&*message_bytes(&zs(b"hello"), Some("zstd"), 100).unwrap(), b"hello");
        let bomb = zs(&[0u8; 10_000]);
        assert!(bomb.len() < 100);
        assert_eq!(
            message_bytes(&bomb, Some("zstd"), 1000).unwrap_err().code,
            "payload_too_large"
        );
        assert!(message_bytes(&zs(b"hello"), Some("gzip"), 100).is_err());
        assert!(message_bytes(&[1, 0, 0, 0, 2, 7, 7], Some("gzip"), 100).is_err());
        assert!(is_read("/tern.server.v1.Users/GetUser"));
        assert!(!is_read("/tern.server.v1.Messages/Send"));
    }
}
