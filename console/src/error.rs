//! `PageError`: the console's one error type. Each platform error becomes a status and a
//! page that says what to do next; internals go to the log, never to the browser.

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tern_platform::error::DeliveryError;
use tern_platform::service::console::ConsoleError;
use tern_platform::store::StoreError;

use crate::BASE;

#[derive(Debug)]
pub enum PageError {
    /// Not there, or not the viewer's to see: the two answer alike.
    NotFound,
    /// The viewer's role in this tenant does not allow the change.
    Forbidden(String),
    /// The input does not pass; the message says why.
    Invalid(String),
    /// A POST without this session's CSRF token, or from another site.
    Csrf,
    /// Not signed in (or the session ended): go to the sign-in page.
    SignIn,
    /// Too many sign-in attempts from this address.
    TooManyAttempts {
        retry_after_secs: u64,
    },
    /// A link that no longer works (used, expired, or never was).
    Gone(String),
    /// Something the answer needs is down for now (the mail server); try again later.
    Unavailable(String),
    Internal(String),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
    base: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or it is not yours to see.".to_owned(),
            ),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m.clone()),
            PageError::Invalid(m) => (StatusCode::BAD_REQUEST, "That did not work", m.clone()),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form did not come from your console session. Reload the page and try again.".to_owned(),
            ),
            PageError::SignIn => {
                return (StatusCode::SEE_OTHER, [(header::LOCATION, format!("{BASE}/login"))]).into_response()
            }
            PageError::TooManyAttempts { retry_after_secs } => {
                let page = ErrorPage {
                    status: 429,
                    title: "Too many attempts",
                    message: "Too many sign-in attempts from your address. Wait a minute and try again.",
                    base: BASE,
                };
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, retry_after_secs.to_string())],
                    html(page),
                )
                    .into_response();
            }
            PageError::Gone(m) => (StatusCode::GONE, "This link does not work", m.clone()),
            PageError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "Not just now", m.clone()),
            PageError::Internal(cause) => {
                tracing::error!(error = %cause, "console request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The console could not do that just now. Try again in a moment.".to_owned(),
                )
            }
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message: &message,
            base: BASE,
        };
        (status, html(page)).into_response()
    }
}

/// Renders a page; a template that fails to render is a 500, logged.
pub fn html<T: Template>(page: T) -> Response {
    match page.render() {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

pub async fn not_found() -> PageError {
    PageError::NotFound
}

/// A GET of a URL that only takes changes (a reload after a sign-out, say), or the reverse.
pub async fn method_not_allowed() -> Response {
    let page = ErrorPage {
        status: 405,
        title: "Nothing to show here",
        message: "This address only takes a form. Go back and use the page's buttons.",
        base: BASE,
    };
    (StatusCode::METHOD_NOT_ALLOWED, html(page)).into_response()
}

impl From<ConsoleError> for PageError {
    fn from(e: ConsoleError) -> Self {
        match e {
            ConsoleError::NotFound(_) => PageError::NotFound,
            ConsoleError::Invalid(m) | ConsoleError::Conflict(m) => PageError::Invalid(m),
            ConsoleError::MailFailed(m) => PageError::Unavailable(m),
            ConsoleError::Forbidden(m) => PageError::Forbidden(m),
            ConsoleError::WrongCredentials | ConsoleError::Locked { .. } => PageError::Invalid(e.to_string()),
            ConsoleError::Tenancy(t) => PageError::Internal(t.to_string()),
            ConsoleError::Store(s) => s.into(),
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => PageError::NotFound,
            StoreError::Conflict(m) | StoreError::Rejected(m) => PageError::Invalid(m),
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl From<DeliveryError> for PageError {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::NotFound(_) => PageError::NotFound,
            DeliveryError::Unavailable(m) | DeliveryError::Internal(m) => PageError::Internal(m),
            other => PageError::Invalid(other.to_string()),
        }
    }
}
