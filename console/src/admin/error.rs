//! `AdminError`: the operator API's one error type, in the server API's shape
//! `{"error": {"code", "message", "request_id"}}` with one stable snake_case `code` per
//! error (the list is `ERROR_CODES`); and `JsonBody`, whose malformed or oversized bodies
//! answer in that shape too. Internals go to the log, never to the caller.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tern_platform::error::DeliveryError;
use tern_platform::service::console::ConsoleError;
use tern_platform::store::StoreError;
use tern_platform::tenancy::TenancyError;

use crate::error::PageError;
use crate::state::ConsoleState;

/// Largest request body the operator API reads.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Every code the operator API answers with: code, HTTP status, meaning.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        "missing_credentials",
        401,
        "No `Authorization: Bearer` token and no console session cookie.",
    ),
    (
        "api_token_invalid",
        401,
        "The bearer token is malformed or was never issued (or the session cookie is unknown or expired).",
    ),
    (
        "api_token_revoked",
        401,
        "The token was revoked, or its owner lost the access it was made with (removed from the tenant, no longer an operator).",
    ),
    (
        "api_token_expired",
        401,
        "The token's end (`expires_at`, set with `expires_in_days` when it was made) has passed; make a new one.",
    ),
    (
        "csrf_token_invalid",
        403,
        "A change sent with the session cookie without the session's `X-CSRF-Token`, or from another site.",
    ),
    ("forbidden", 403, "The caller's role does not allow this change."),
    (
        "not_found",
        404,
        "No such tenant, app, user, message, secret, token, group, room, event, broadcast, member, invitation or alert rule visible to the caller.",
    ),
    ("method_not_allowed", 405, "The path exists but not with this method."),
    (
        "conflict",
        409,
        "A tenant or app of that name exists already, or the change clashes with what is there (the email is a member already).",
    ),
    (
        "invalid_json",
        400,
        "The body is not valid JSON, has a wrong type or an unknown field.",
    ),
    (
        "invalid_argument",
        400,
        "A value is out of range or malformed, or the change is not possible in this state; the message says which, and `field` names the field when one is at fault.",
    ),
    ("payload_too_large", 413, "The request body is larger than 64 KiB."),
    (
        "rate_limited",
        429,
        "Too many requests of this kind (a broadcast's sends, say); retry after `Retry-After` seconds.",
    ),
    (
        "unavailable",
        503,
        "A dependency (the database, the mail server) is unavailable; retry.",
    ),
    ("internal", 500, "An unexpected error; the request id identifies it in the logs."),
];

#[derive(Debug, Clone)]
pub struct AdminError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request's field at fault (`invalid_argument`), when one is.
    pub field: Option<&'static str>,
    /// `rate_limited`: when to retry, whole seconds.
    pub retry_after_secs: Option<u64>,
}

/// Put on an error answer for `render_errors`, which knows the request id.
#[derive(Debug, Clone)]
struct PendingError {
    code: &'static str,
    message: String,
    field: Option<&'static str>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    request_id: &'a str,
}

impl AdminError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        let status = ERROR_CODES
            .iter()
            .find(|(c, _, _)| *c == code)
            .and_then(|(_, s, _)| StatusCode::from_u16(*s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after_secs: None,
        }
    }
    /// `invalid_argument` naming the request's field at fault.
    pub fn invalid_field(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            ..Self::invalid(message)
        }
    }
    pub fn rate_limited(retry_after_ms: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_ms.div_ceil(1000).max(1)),
            ..Self::new("rate_limited", "too many requests; retry later")
        }
    }
    pub fn not_found() -> Self {
        Self::new("not_found", "not found")
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new("forbidden", message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("invalid_argument", message)
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "operator API request failed");
        Self::new("internal", "internal error")
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        if let Some(secs) = self.retry_after_secs {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res.extensions_mut().insert(PendingError {
            code: self.code,
            message: self.message,
            field: self.field,
        });
        res
    }
}

/// Renders `PendingError`s as the JSON envelope with the request's id (`X-Request-Id`).
pub async fn render_errors(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut res = next.run(req).await;
    let Some(p) = res.extensions_mut().remove::<PendingError>() else {
        return res;
    };
    let body = serde_json::to_vec(&Envelope {
        error: Body {
            code: p.code,
            message: &p.message,
            field: p.field,
            request_id: &request_id,
        },
    })
    .unwrap_or_default();
    let (mut parts, _) = res.into_parts();
    parts
        .headers
        .insert("content-type", HeaderValue::from_static("application/json"));
    parts.headers.remove("content-length");
    Response::from_parts(parts, axum::body::Body::from(body))
}

pub async fn not_found() -> AdminError {
    AdminError::not_found()
}

pub async fn method_not_allowed() -> AdminError {
    AdminError::new("method_not_allowed", "this path does not take this method")
}

impl From<PageError> for AdminError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::NotFound | PageError::Gone(_) => Self::not_found(),
            PageError::Forbidden(m) => Self::forbidden(m),
            PageError::Invalid(m) => Self::invalid(m),
            PageError::Csrf => Self::new("csrf_token_invalid", "the session's X-CSRF-Token is missing or wrong"),
            PageError::SignIn => Self::new("api_token_invalid", "the session is unknown or has expired"),
            PageError::TooManyAttempts { .. } | PageError::Unavailable(_) => {
                Self::new("unavailable", "not just now; retry later")
            }
            PageError::Internal(cause) => Self::internal(cause),
        }
    }
}

impl From<ConsoleError> for AdminError {
    fn from(e: ConsoleError) -> Self {
        match e {
            ConsoleError::Conflict(m) => Self::new("conflict", m),
            ConsoleError::NotFound(what) => Self::new("not_found", format!("{what} not found")),
            ConsoleError::Invalid(m) => Self::invalid(m),
            ConsoleError::Forbidden(m) => Self::forbidden(m),
            ConsoleError::WrongCredentials | ConsoleError::Locked { .. } => Self::invalid(e.to_string()),
            ConsoleError::MailFailed(m) => {
                tracing::warn!(cause = %m, "mail unavailable");
                Self::new("unavailable", "the mail server is unavailable; retry")
            }
            ConsoleError::Tenancy(TenancyError::NoActiveSecret) => Self::invalid(e.to_string()),
            ConsoleError::Tenancy(t) => Self::internal(t),
            ConsoleError::Store(s) => s.into(),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::new("not_found", format!("{what} not found")),
            StoreError::Conflict(m) => Self::new("conflict", m),
            StoreError::Rejected(m) => Self::invalid(m),
            StoreError::Unavailable(m) => {
                tracing::warn!(cause = %m, "database unavailable");
                Self::new("unavailable", "the database is unavailable; retry")
            }
            StoreError::Database(m) => Self::internal(m),
        }
    }
}

/// The platform's errors of a send, a read or a change: what the caller got wrong keeps its
/// meaning (not found, not allowed, a clash, too fast); the rest of a caller's mistakes
/// (content too large, refused by a word list, a push with no credentials…) are
/// `invalid_argument` with the platform's words. Only `Internal` is a 500.
impl From<DeliveryError> for AdminError {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::NotFound(what) => Self::new("not_found", format!("{what} not found")),
            DeliveryError::UsersNotFound(_) => Self::new("not_found", e.to_string()),
            DeliveryError::Forbidden(m) => Self::forbidden(m),
            DeliveryError::Conflict(m) | DeliveryError::VersionConflict(m) => Self::new("conflict", m),
            DeliveryError::RateLimited { retry_after_ms } => Self::rate_limited(retry_after_ms),
            DeliveryError::Unavailable(m) => {
                tracing::warn!(cause = %m, "dependency unavailable");
                Self::new("unavailable", "a dependency is unavailable; retry")
            }
            DeliveryError::Internal(m) => Self::internal(m),
            other => Self::invalid(other.to_string()),
        }
    }
}

/// A JSON body: over `BODY_LIMIT` is `payload_too_large` (413), anything that does not
/// parse as `T` is `invalid_json` (400). An empty body reads as `{}`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ConsoleState> for JsonBody<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, _: &ConsoleState) -> Result<Self, AdminError> {
        let bytes = axum::body::to_bytes(req.into_body(), BODY_LIMIT).await.map_err(|_| {
            AdminError::new(
                "payload_too_large",
                format!("the body is larger than {BODY_LIMIT} bytes"),
            )
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(JsonBody)
            .map_err(|e| AdminError::new("invalid_json", format!("the body does not parse: {e}")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_documented_with_its_status_and_maps_to_it() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/console.md")).unwrap();
        for (code, status, _) in ERROR_CODES {
            assert!(
                doc.contains(&format!("| `{code}` | {status} |")),
                "{code} missing from docs/console.md"
            );
            assert_eq!(AdminError::new(code, "").status.as_u16(), *status);
        }
    }

    #[test]
    fn a_callers_mistake_is_never_a_500_and_keeps_its_meaning() {
        let mistakes = [
            (DeliveryError::NotFound("group"), "not_found"),
            (DeliveryError::UsersNotFound(vec!["bob".into()]), "not_found"),
            (DeliveryError::Forbidden("no".into()), "forbidden"),
            (DeliveryError::Conflict("twice".into()), "conflict"),
            (DeliveryError::VersionConflict("v2".into()), "conflict"),
            (DeliveryError::RateLimited { retry_after_ms: 1500 }, "rate_limited"),
            (DeliveryError::InvalidArgument("bad".into()), "invalid_argument"),
            (DeliveryError::ContentTooLarge("big".into()), "invalid_argument"),
            (DeliveryError::ContentRejected, "invalid_argument"),
            (DeliveryError::PushNotConfigured("no apns".into()), "invalid_argument"),
            (DeliveryError::GroupFull("full".into()), "invalid_argument"),
            (DeliveryError::RecallWindowPassed, "invalid_argument"),
        ];
        for (e, want) in mistakes {
            let shown = e.to_string();
            let a = AdminError::from(e);
            assert_eq!(a.code, want, "{shown}");
        }
        let limited = AdminError::from(DeliveryError::RateLimited { retry_after_ms: 1500 });
        assert_eq!(limited.retry_after_secs, Some(2));
        let console = [
            (ConsoleError::NotFound("invitation"), "not_found"),
            (ConsoleError::Conflict("member".into()), "conflict"),
            (ConsoleError::Invalid("role".into()), "invalid_argument"),
            (ConsoleError::Forbidden("above".into()), "forbidden"),
            (ConsoleError::MailFailed("smtp".into()), "unavailable"),
            (ConsoleError::Tenancy(TenancyError::NoActiveSecret), "invalid_argument"),
            (
                ConsoleError::Store(StoreError::Rejected("state".into())),
                "invalid_argument",
            ),
        ];
        for (e, want) in console {
            let shown = e.to_string();
            assert_eq!(AdminError::from(e).code, want, "{shown}");
        }
        assert_eq!(AdminError::from(DeliveryError::Internal("x".into())).code, "internal");
        assert_eq!(AdminError::from(StoreError::Database("x".into())).code, "internal");
    }
}
