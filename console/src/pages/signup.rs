//! Public tenant sign-up: the form (its own double-submit token, like sign-in, and a limit
//! per client address), the verification link from the mail (a GET shows a button, so a
//! mail scanner that opens links does not use it up; the POST verifies, once).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tern_platform::domain::{now_ms, NewAuditEntry, TenantStatus};
use tern_platform::service::console::{self as console, ConsoleError};
use tern_platform::service::signup::{self, SignupPolicy, SignupRequest};

use super::sign_in::ClientIp;
use crate::auth::{cookie, refuse_cross_site, same_token, secure, set_cookie};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::BASE;

/// The sign-up form's own token cookie (the form has no session yet).
pub const SIGNUP_COOKIE: &str = "tern_console_signup";
/// Largest sign-up or verification form read.
const FORM_LIMIT: usize = 16 * 1024;

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage<'a> {
    base: &'a str,
    token: &'a str,
    tenant: &'a str,
    email: &'a str,
    approval: bool,
    error: Option<String>,
}

pub struct Confirm {
    pub action: &'static str,
    pub token: String,
    pub button: &'static str,
    /// Ask for a new password with it.
    pub password: bool,
}

/// A page for someone not signed in: a title, a message, perhaps one button.
#[derive(Template)]
#[template(path = "public.html")]
pub struct PublicPage {
    pub base: &'static str,
    pub title: String,
    pub message: String,
    pub confirm: Option<Confirm>,
}

fn open(st: &ConsoleState) -> Result<(), PageError> {
    if st.signup == SignupPolicy::Off {
        return Err(PageError::NotFound);
    }
    Ok(())
}

fn form_page(
    st: &ConsoleState,
    headers: &HeaderMap,
    status: StatusCode,
    tenant: &str,
    email: &str,
    error: Option<String>,
) -> Response {
    let token = console::token_hash(&format!("{}{}", rand::random::<u128>(), now_ms()));
    let page = SignupPage {
        base: BASE,
        token: &token,
        tenant,
        email,
        approval: st.signup == SignupPolicy::Approval,
        error,
    };
    let cookie = set_cookie(SIGNUP_COOKIE, &token, 3600, secure(headers, st));
    (status, [(header::SET_COOKIE, cookie)], html(page)).into_response()
}

pub async fn form(State(st): State<ConsoleState>, headers: HeaderMap) -> Result<Response, PageError> {
    open(&st)?;
    Ok(form_page(&st, &headers, StatusCode::OK, "", "", None))
}

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    tenant: String,
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
    open(&st)?;
    refuse_cross_site(&headers)?;
    if body.len() > FORM_LIMIT {
        return Err(PageError::Invalid("the form is too large".into()));
    }
    let form: SignupForm = serde_urlencoded::from_bytes(&body)
        .map_err(|_| PageError::Invalid("the sign-up form does not parse".into()))?;
    if !same_token(&form.csrf, &cookie(&headers, SIGNUP_COOKIE).unwrap_or_default()) {
        return Err(PageError::Csrf);
    }
    st.signup_limiter
        .attempt(&ip)
        .map_err(|retry_after_secs| PageError::TooManyAttempts { retry_after_secs })?;
    let req = SignupRequest {
        tenant_name: &form.tenant,
        email: &form.email,
        password: &form.password,
        ip: &ip,
    };
    match signup::sign_up(st.pipeline.store().as_ref(), &st.mailer, st.signup, req, now_ms()).await {
        Ok(email) => Ok(html(PublicPage {
            base: BASE,
            title: "Check your inbox".into(),
            message: format!(
                "We sent a link to {email}. Open it within 24 hours to confirm your address and create your tenant."
            ),
            confirm: None,
        })),
        Err(ConsoleError::Invalid(m)) => Ok(form_page(
            &st,
            &headers,
            StatusCode::BAD_REQUEST,
            &form.tenant,
            &form.email,
            Some(m),
        )),
        Err(ConsoleError::Conflict(m)) => Ok(form_page(
            &st,
            &headers,
            StatusCode::CONFLICT,
            &form.tenant,
            &form.email,
            Some(m),
        )),
        Err(e) => Err(e.into()),
    }
}

const LINK_GONE: &str =
    "This confirmation link was used already, has expired (links work for 24 hours), or never existed. Sign up again to get a new one.";

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The link from the mail: says what it will create and shows the button that does it.
pub async fn show(State(st): State<ConsoleState>, Query(q): Query<TokenQuery>) -> Result<Response, PageError> {
    let pending = match signup::pending(st.pipeline.store().as_ref(), &q.token, now_ms()).await {
        Ok(p) => p,
        Err(ConsoleError::NotFound(_)) => return Err(PageError::Gone(LINK_GONE.into())),
        Err(e) => return Err(e.into()),
    };
    Ok(html(PublicPage {
        base: BASE,
        title: "Confirm your email".into(),
        message: format!(
            "Confirm {} to create the tenant {} with you as its owner.",
            pending.email, pending.tenant_name
        ),
        confirm: Some(Confirm {
            action: "verify",
            token: q.token,
            button: "Confirm and create my tenant",
            password: false,
        }),
    }))
}

pub async fn verify(
    State(st): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    refuse_cross_site(&headers)?;
    if body.len() > FORM_LIMIT {
        return Err(PageError::Invalid("the form is too large".into()));
    }
    let form: TokenQuery =
        serde_urlencoded::from_bytes(&body).map_err(|_| PageError::Invalid("the form does not parse".into()))?;
    let store = st.pipeline.store();
    let (tenant, account) = match signup::verify(store.as_ref(), &st.mailer, st.signup, &form.token, now_ms()).await {
        Ok(done) => done,
        Err(ConsoleError::NotFound(_)) => return Err(PageError::Gone(LINK_GONE.into())),
        Err(e) => return Err(e.into()),
    };
    console::audit(
        &st.pipeline,
        NewAuditEntry {
            actor: account.email.clone(),
            ip,
            tenant_id: Some(tenant.id.clone()),
            app_id: None,
            action: "tenant.signup".into(),
            target: tenant.name.clone(),
            detail: format!("email verified; {}", tenant.status.as_str()),
        },
    )
    .await?;
    let message = if tenant.status == TenantStatus::Active {
        format!(
            "Your email is confirmed and {} is ready. Sign in to create your first app.",
            tenant.name
        )
    } else {
        format!(
            "Your email is confirmed. {} now waits for a platform operator's approval; we will email you when it is decided. You can sign in meanwhile.",
            tenant.name
        )
    };
    Ok(html(PublicPage {
        base: BASE,
        title: "Email confirmed".into(),
        message,
        confirm: None,
    }))
}
