//! Signing in and out. The form carries a token of its own (the same value in a cookie and
//! in the form: another site can set neither), attempts are limited per address, and the
//! platform counts wrong passwords per account and locks it after `MAX_FAILED_LOGINS`.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use serde::Deserialize;
use tern_platform::domain::{now_ms, NewAuditEntry};
use tern_platform::service::console::{self as console, ConsoleError, SignedIn};

use super::see_other;
use crate::auth::{
    client_ip, cookie, refuse_cross_site, same_token, secure, session_cookie, set_cookie, Auth, NoFields, Posted,
    LOGIN_COOKIE, SESSION_COOKIE,
};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::BASE;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    base: &'a str,
    token: &'a str,
    email: &'a str,
    error: Option<String>,
    /// Link to the sign-up page.
    signup: bool,
}

/// The client's address (for handlers that take the body themselves).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

fn login_page(
    st: &ConsoleState,
    headers: &HeaderMap,
    status: StatusCode,
    email: &str,
    error: Option<String>,
) -> Response {
    let token = console::token_hash(&format!("{}{}", rand::random::<u128>(), now_ms()));
    let page = LoginPage {
        base: BASE,
        token: &token,
        email,
        error,
        signup: st.signup != tern_platform::service::signup::SignupPolicy::Off,
    };
    let cookie = set_cookie(LOGIN_COOKIE, &token, 3600, secure(headers, st));
    (status, [(header::SET_COOKIE, cookie)], html(page)).into_response()
}

pub async fn form(State(st): State<ConsoleState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Ok(Some(_)) = console::viewer(&st.pipeline, &token, now_ms()).await {
            return see_other(BASE);
        }
    }
    login_page(&st, &headers, StatusCode::OK, "", None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub async fn submit(
    State(st): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    refuse_cross_site(&headers)?;
    let form: LoginForm = serde_urlencoded::from_bytes(&body)
        .map_err(|_| PageError::Invalid("the sign-in form does not parse".into()))?;
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_token(&form.csrf, &expected) {
        return Err(PageError::Csrf);
    }
    st.login_limiter
        .attempt(&ip)
        .map_err(|retry_after_secs| PageError::TooManyAttempts { retry_after_secs })?;
    let email = form.email.trim().to_lowercase();
    match console::sign_in(&st.pipeline, &email, &form.password, &ip, now_ms()).await {
        Ok(SignedIn { token, account, .. }) => {
            console::audit(
                &st.pipeline,
                NewAuditEntry {
                    actor: account.email.clone(),
                    ip,
                    tenant_id: None,
                    app_id: None,
                    action: "account.sign_in".into(),
                    target: account.email,
                    detail: String::new(),
                },
            )
            .await?;
            let secure = secure(&headers, &st);
            Ok((
                StatusCode::SEE_OTHER,
                [(header::LOCATION, BASE.to_owned())],
                AppendHeaders([
                    (header::SET_COOKIE, session_cookie(&token, secure)),
                    (header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0, secure)),
                ]),
            )
                .into_response())
        }
        Err(ConsoleError::WrongCredentials) => Ok(login_page(
            &st,
            &headers,
            StatusCode::UNAUTHORIZED,
            &email,
            Some("Wrong email or password.".into()),
        )),
        Err(ConsoleError::Locked { until }) => Ok(login_page(
            &st,
            &headers,
            StatusCode::FORBIDDEN,
            &email,
            Some(format!(
                "Too many wrong passwords: this account is locked until {}.",
                crate::views::when(until)
            )),
        )),
        Err(e) => Err(e.into()),
    }
}

fn signed_out(headers: &HeaderMap, st: &ConsoleState) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, format!("{BASE}/login")),
            (
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, "", 0, secure(headers, st)),
            ),
        ],
    )
        .into_response()
}

pub async fn sign_out(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    console::sign_out(&st.pipeline, &posted.auth.viewer).await?;
    Ok(signed_out(&headers, &st))
}

/// Ends every session of the account, this one included (a lost laptop, a shared browser).
pub async fn sign_out_everywhere(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let auth: &Auth = &posted.auth;
    let ended = console::sign_out_everywhere(&st.pipeline, &auth.viewer).await?;
    super::audit(
        &st,
        auth,
        None,
        None,
        "account.sign_out_everywhere",
        &auth.viewer.account.email,
        format!("{ended} sessions ended"),
    )
    .await?;
    Ok(signed_out(&headers, &st))
}
