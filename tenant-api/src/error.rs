//! The one error shape every caller sees:
//! `{"error": {"code": "snake_case_code", "message": "...", "request_id": "..."}}`.
//!
//! Handlers return `ApiError`; module errors (`DeliveryError`, `AuthError`, `StoreError`)
//! convert into it, which is where a cause is logged and internals are kept from callers.
//! `ApiError::into_response` leaves the body to `render_errors`, a middleware that knows the
//! request id, so every error (including extractor rejections) carries it.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tern_platform::auth::AuthError;
use tern_platform::delivery::DeliveryError;
use tern_platform::store::StoreError;

/// Every error code the server API can answer with, with its HTTP status and meaning.
/// docs/errors.md and the OpenAPI document are generated from this list and a test checks
/// that each code is documented.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    ("missing_credentials", 401, "A signing header is missing or malformed."),
    ("unknown_app_key", 401, "No app has this AppKey."),
    (
        "timestamp_out_of_window",
        401,
        "X-Tern-Timestamp is more than 300 s from the server's clock.",
    ),
    (
        "bad_signature",
        401,
        "No active AppSecret of the app gives this signature.",
    ),
    ("nonce_reused", 401, "This app used this nonce within the last 600 s."),
    (
        "token_invalid",
        401,
        "The bearer token is malformed, not HS256, or its claims are wrong (scope, lifetime over 3600 s).",
    ),
    ("token_expired", 401, "The bearer token's exp has passed."),
    (
        "token_lifetime_too_long",
        401,
        "A token's exp - iat is longer than allowed.",
    ),
    (
        "token_not_yet_valid",
        401,
        "A token's iat is more than 60 s in the future.",
    ),
    (
        "token_revoked",
        401,
        "The user's tokens issued before this one's iat were revoked.",
    ),
    (
        "user_not_found",
        403,
        "The token's user does not exist and the app does not create users on login.",
    ),
    ("app_suspended", 403, "The app or its tenant is suspended."),
    (
        "invalid_json",
        400,
        "The body is not valid JSON, has a wrong type or an unknown field.",
    ),
    (
        "invalid_argument",
        400,
        "A parameter is out of range or malformed; the message names it.",
    ),
    (
        "content_too_large",
        400,
        "The message content is larger than the app allows for its type.",
    ),
    ("payload_too_large", 413, "The request body is larger than 256 KiB."),
    (
        "not_found",
        404,
        "No such resource in this app (or not visible to the caller).",
    ),
    ("method_not_allowed", 405, "The path exists but not with this method."),
    ("conflict", 409, "The resource exists already."),
    ("forbidden", 403, "The operation is not allowed for this actor."),
    ("user_banned", 403, "The sender is banned."),
    ("user_muted", 403, "The sender is muted."),
    ("blocked", 403, "The recipient has blocked the sender."),
    (
        "not_friends",
        403,
        "The app requires friendship for direct messages and the two users are not friends.",
    ),
    (
        "recall_window_passed",
        403,
        "The sender's recall window for this message has passed.",
    ),
    (
        "content_rejected",
        422,
        "The message contains a word of one of the app's reject word lists.",
    ),
    (
        "message_rejected",
        422,
        "The app's before-send webhook rejected the message.",
    ),
    (
        "webhook_unavailable",
        503,
        "The before-send webhook did not answer and its policy is fail_closed.",
    ),
    (
        "group_full",
        422,
        "The group has as many members as the app allows (group_member_limit).",
    ),
    ("member_muted", 403, "The sender is muted in this group."),
    (
        "group_muted",
        403,
        "The group is muted (mute_all): only its owner and admins may send.",
    ),
    (
        "receipts_unavailable",
        422,
        "Read receipts are kept only for groups up to the app's group_read_receipt_limit members.",
    ),
    ("rate_limited", 429, "Too many requests; see Retry-After."),
    ("unavailable", 503, "A dependency (the database) is unavailable; retry."),
    (
        "internal",
        500,
        "An unexpected error; the request id identifies it in the logs.",
    ),
    // ---- message lifecycle ----
    (
        "edit_window_passed",
        403,
        "The sender's edit window for this message has passed.",
    ),
    (
        "message_recalled",
        422,
        "The message is recalled: it takes no edits, extensions, reactions or replies.",
    ),
    (
        "version_conflict",
        409,
        "A compare-and-set found another version (an extension key changed since it was read).",
    ),
    (
        "limit_exceeded",
        422,
        "A per-message limit would be passed (extension keys, distinct reactions, reactions of one user).",
    ),
    // ---- offline push ----
    (
        "invalid_push_credentials",
        400,
        "APNs or FCM credentials were refused: a field is malformed or the key does not load (the message names it).",
    ),
    (
        "push_not_configured",
        422,
        "The app has no credentials for the device's push provider.",
    ),
];

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For 429: seconds to wait.
    pub retry_after: Option<u64>,
}

/// Marker placed on an error response for `render_errors` to fill in.
#[derive(Debug, Clone)]
struct PendingError {
    code: &'static str,
    message: String,
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    request_id: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    }
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests; retry later",
            )
        }
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "service temporarily unavailable; retry",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert("retry-after", v);
            }
        }
        res.extensions_mut().insert(PendingError {
            code: self.code,
            message: self.message,
        });
        res
    }
}

/// Renders `PendingError`s as the JSON envelope with the request's id.
pub async fn render_errors(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut res = next.run(req).await;
    if let Some(p) = res.extensions_mut().remove::<PendingError>() {
        let body = serde_json::to_vec(&ErrorEnvelope {
            error: ErrorBody {
                code: p.code,
                message: &p.message,
                request_id: &request_id,
            },
        })
        .unwrap_or_default();
        let (mut parts, _) = res.into_parts();
        parts
            .headers
            .insert("content-type", HeaderValue::from_static("application/json"));
        parts.headers.remove("content-length");
        return Response::from_parts(parts, axum::body::Body::from(body));
    }
    res
}

fn status_of(code: &str) -> StatusCode {
    ERROR_CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .and_then(|(_, s, _)| StatusCode::from_u16(*s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl From<DeliveryError> for ApiError {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::Internal(cause) => Self::internal(cause),
            DeliveryError::Unavailable(cause) => Self::unavailable(cause),
            DeliveryError::RateLimited { retry_after_ms } => Self::rate_limited(retry_after_ms.div_ceil(1000)),
            e => {
                let code = e.code();
                Self::new(status_of(code), code, e.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(what),
            StoreError::Conflict(m) => Self::conflict(m),
            StoreError::Rejected(m) => Self::new(StatusCode::FORBIDDEN, "forbidden", m),
            StoreError::Unavailable(m) => Self::unavailable(m),
            StoreError::Database(m) => Self::internal(m),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        if matches!(e, AuthError::RateLimited) {
            return Self::rate_limited(1);
        }
        let code = e.code();
        match StatusCode::from_u16(e.http_status()) {
            Ok(status) if status.is_server_error() => Self::unavailable(e),
            Ok(status) => Self::new(status, code, e.to_string()),
            Err(_) => Self::internal(e),
        }
    }
}

impl From<tern_platform::ids::IdError> for ApiError {
    fn from(e: tern_platform::ids::IdError) -> Self {
        Self::invalid(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_snake_case_and_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for (code, status, meaning) in ERROR_CODES {
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
            assert!(seen.insert(*code), "{code} listed twice");
            assert!(StatusCode::from_u16(*status).is_ok());
            assert!(!meaning.is_empty());
        }
    }

    #[test]
    fn every_authentication_code_is_listed_with_its_status() {
        for code in AuthError::ALL_CODES {
            assert!(
                ERROR_CODES.iter().any(|(c, _, _)| *c == code),
                "{code} is not in ERROR_CODES"
            );
        }
    }

    #[test]
    fn every_delivery_error_maps_to_a_listed_code() {
        let all = [
            DeliveryError::InvalidArgument("x".into()),
            DeliveryError::ContentTooLarge("x".into()),
            DeliveryError::NotFound("x"),
            DeliveryError::Forbidden("x".into()),
            DeliveryError::SenderBanned,
            DeliveryError::SenderMuted,
            DeliveryError::Blocked,
            DeliveryError::NotFriends,
            DeliveryError::Conflict("x".into()),
            DeliveryError::RecallWindowPassed,
            DeliveryError::ContentRejected,
            DeliveryError::MessageRejected("x".into()),
            DeliveryError::WebhookUnavailable,
            DeliveryError::RateLimited { retry_after_ms: 10 },
            DeliveryError::Unavailable("x".into()),
            DeliveryError::Internal("x".into()),
            DeliveryError::EditWindowPassed,
            DeliveryError::MessageRecalled,
            DeliveryError::VersionConflict("x".into()),
            DeliveryError::LimitExceeded("x".into()),
            DeliveryError::UsersNotFound(vec!["x".into()]),
            DeliveryError::GroupFull("x".into()),
            DeliveryError::MemberMuted { until: 1 },
            DeliveryError::GroupMuted,
            DeliveryError::ReceiptsUnavailable("x".into()),
        ];
        for e in all {
            let code = e.code();
            let api = ApiError::from(e);
            assert_eq!(api.code, code);
            assert!(
                ERROR_CODES
                    .iter()
                    .any(|(c, s, _)| *c == code && *s == api.status.as_u16()),
                "{code}"
            );
        }
    }
}
