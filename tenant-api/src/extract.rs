//! Extractors whose signatures say who may call a handler and whose failures have the one
//! error shape.
//!
//! `Signed<T>` authenticates a server API request (SIGNING.md §1) over the exact bytes
//! received, applies the app's rate limit, and only then parses the body as `T`. Handlers
//! parse the query through `Signed::query` so that an unauthenticated caller learns nothing
//! from validation errors.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, OriginalUri, Path, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tern_platform::auth::request::SignedRequest;
use tern_platform::domain::App;

use crate::error::ApiError;
use crate::state::ApiState;

/// An authenticated server API request: the app it is for and its parsed JSON body.
/// An empty body parses as JSON `null`, so `Signed<()>` and `Signed<Option<T>>` accept none.
pub struct Signed<T> {
    pub app: App,
    pub body: T,
    raw_query: String,
}

impl<T> Signed<T> {
    /// Parses the query string as `Q`; a malformed one is `invalid_argument`.
    pub fn query<Q: DeserializeOwned>(&self) -> Result<Q, ApiError> {
        serde_urlencoded::from_str(&self.raw_query).map_err(|e| ApiError::invalid(format!("query: {e}")))
    }
}

/// The first credential header sent more than once: which copy to believe is ambiguous,
/// so such a request is refused rather than judged by the first (REST headers and gRPC
/// metadata alike).
pub(crate) fn repeated_credential(headers: &axum::http::HeaderMap) -> Option<&'static str> {
    // One pass over the headers (a request has a handful) instead of a lookup per name:
    // this runs before every signed request.
    const NAMES: [&str; 5] = tern_platform::auth::request::CREDENTIAL_HEADERS;
    let mut seen = [0u8; NAMES.len()];
    for name in headers.iter().map(|(name, _)| name.as_str()) {
        if let Some(i) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)) {
            seen[i] = seen[i].saturating_add(1);
        }
    }
    NAMES.iter().zip(seen).find(|(_, n)| *n > 1).map(|(name, _)| *name)
}

/// The credential headers as parsed names, so that reading them parses nothing per request.
mod names {
    use axum::http::HeaderName;
    pub static APP_KEY: HeaderName = HeaderName::from_static("x-tern-app-key");
    pub static TIMESTAMP: HeaderName = HeaderName::from_static("x-tern-timestamp");
    pub static NONCE: HeaderName = HeaderName::from_static("x-tern-nonce");
    pub static SIGNATURE: HeaderName = HeaderName::from_static("x-tern-signature");
}

fn header<'a>(parts: &'a Parts, name: &axum::http::HeaderName) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

impl<S, T> FromRequest<S> for Signed<T>
where
    S: Send + Sync,
    ApiState: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let st = ApiState::from_ref(state);
        let (parts, body) = req.into_parts();
        let declared = header(&parts, &axum::http::header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > st.body_limit) {
            return Err(ApiError::payload_too_large(st.body_limit));
        }
        let bytes = axum::body::to_bytes(body, st.body_limit).await.map_err(|e| {
            let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if too_large {
                ApiError::payload_too_large(st.body_limit)
            } else {
                ApiError::invalid(format!("could not read the request body: {e}"))
            }
        })?;
        // The path exactly as sent: if routers were nested, the original URI has it.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map(|o| o.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        let raw_query = uri.query().unwrap_or("").to_owned();
        if let Some(name) = repeated_credential(&parts.headers) {
            return Err(ApiError::invalid(format!("{name} is sent more than once")));
        }
        let app = st
            .verifier
            .verify(SignedRequest {
                app_key: header(&parts, &names::APP_KEY),
                timestamp: header(&parts, &names::TIMESTAMP),
                nonce: header(&parts, &names::NONCE),
                signature: header(&parts, &names::SIGNATURE),
                authorization: header(&parts, &axum::http::header::AUTHORIZATION),
                method: parts.method.as_str(),
                path: uri.path(),
                raw_query: &raw_query,
                body: &bytes,
            })
            .await?;
        st.pipeline.usage().api_call(&app.id);
        if let Some(slot) = parts.extensions.get::<crate::error_count::CallerSlot>() {
            slot.set(&app.id);
        }
        let write = !matches!(parts.method.as_str(), "GET" | "HEAD");
        tern_platform::rate_limits::check_api_rate(st.pipeline.rate_limits().as_ref(), &app, write)
            .await
            .map_err(|e| ApiError::rate_limited(e.retry_after_secs()))?;
        let json: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &bytes
        };
        let body = tern_platform::json_strict::from_slice(json)
            .map_err(|e| ApiError::invalid_json(format!("request body: {e}")))?;
        Ok(Self { app, body, raw_query })
    }
}

/// `Path` with the one error shape. Path segments are parsed into ids by the handler.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            .map_err(|e: PathRejection| ApiError::invalid(format!("path: {}", e.body_text())))
    }
}
