//! Operators inviting operators (operators only; anyone else gets the 404 of a page that is
//! not there): an invitation by email, mailed as a link that works once, for 24 hours; the
//! open invitations with revoke; and the public page of the link, where the invitee chooses
//! a password (a new account) or just accepts (an existing one), then signs in as an
//! operator. The platform decides and writes (`service::operators`); every step is audited.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use tern_platform::domain::{now_ms, NewAuditEntry};
use tern_platform::service::console::{self as console, ConsoleError};
use tern_platform::service::operators;

use super::sign_in::ClientIp;
use super::signup::{Confirm, PublicPage};
use super::{audit, notice, see_other};
use crate::auth::{refuse_cross_site, Auth, NoFields, Posted};
use crate::error::{html, PageError};
use crate::state::ConsoleState;
use crate::views::{when, Chrome};
use crate::BASE;

/// Largest accept form read.
const FORM_LIMIT: usize = 16 * 1024;

pub struct InvitationRow {
    pub email: String,
    pub invited_by: String,
    pub sent: String,
    pub until: String,
    /// Names the invitation in the revoke URL (never the link's token).
    pub hash: String,
}

#[derive(Template)]
#[template(path = "operators.html")]
struct OperatorsPage {
    chrome: Chrome,
    invitations: Vec<InvitationRow>,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn operator_only(auth: &Auth) -> Result<(), PageError> {
    if auth.viewer.account.operator {
        Ok(())
    } else {
        Err(PageError::NotFound)
    }
}

pub async fn show(
    State(st): State<ConsoleState>,
    auth: Auth,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PageError> {
    operator_only(&auth)?;
    let store = st.pipeline.store();
    let open = operators::open_invitations(store.as_ref(), &auth.viewer.account, now_ms()).await?;
    Ok(html(OperatorsPage {
        chrome: Chrome::new(&auth.viewer, "Operators").notice(notice(q.done.as_deref())),
        invitations: open
            .into_iter()
            .map(|i| InvitationRow {
                email: i.email,
                invited_by: i.invited_by,
                sent: when(i.created_at),
                until: when(i.expires_at),
                hash: i.token_hash,
            })
            .collect(),
    }))
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
}

pub async fn invite(State(st): State<ConsoleState>, posted: Posted<InviteForm>) -> Result<Response, PageError> {
    let auth = &posted.auth;
    operator_only(auth)?;
    let store = st.pipeline.store();
    let inv = operators::invite(
        store.as_ref(),
        &st.mailer,
        &auth.viewer.account,
        &posted.form.email,
        now_ms(),
    )
    .await?;
    audit(
        &st,
        auth,
        None,
        None,
        "operator.invite",
        &inv.email,
        "link valid 24 h".into(),
    )
    .await?;
    Ok(see_other(&format!("{BASE}/operators?done=operator-invited")))
}

pub async fn revoke(
    State(st): State<ConsoleState>,
    Path(hash): Path<String>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let auth = &posted.auth;
    operator_only(auth)?;
    let store = st.pipeline.store();
    let inv = operators::revoke(store.as_ref(), &auth.viewer.account, &hash, now_ms()).await?;
    audit(
        &st,
        auth,
        None,
        None,
        "operator.invitation.revoke",
        &inv.email,
        String::new(),
    )
    .await?;
    Ok(see_other(&format!("{BASE}/operators?done=invitation-revoked")))
}

const LINK_GONE: &str = "This operator invitation was accepted already, revoked, has expired (operator invitations work for 24 hours), or never existed. Ask an operator for a new one.";

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The link from the mail: what it is, and the button (with a password field when the
/// email has no account yet). Opening it uses nothing up (a mail scanner may open links).
pub async fn show_link(State(st): State<ConsoleState>, Query(q): Query<TokenQuery>) -> Result<Response, PageError> {
    let store = st.pipeline.store();
    let (inv, has_account) = match operators::pending(store.as_ref(), &q.token, now_ms()).await {
        Ok(found) => found,
        Err(ConsoleError::NotFound(_)) => return Err(PageError::Gone(LINK_GONE.into())),
        Err(e) => return Err(e.into()),
    };
    let message = if has_account {
        format!(
            "{} invites {} to become a platform operator: you will see and manage every tenant. Accept, then sign in with your password.",
            inv.invited_by, inv.email
        )
    } else {
        format!(
            "{} invites {} to become a platform operator: you will see and manage every tenant. Choose a password (8 characters or more) for your console account.",
            inv.invited_by, inv.email
        )
    };
    Ok(html(PublicPage {
        base: BASE,
        title: "Become an operator".into(),
        message,
        confirm: Some(Confirm {
            action: "operator-invite",
            token: q.token,
            button: "Accept the invitation",
            password: !has_account,
        }),
    }))
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

pub async fn accept(
    State(st): State<ConsoleState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    refuse_cross_site(&headers)?;
    if body.len() > FORM_LIMIT {
        return Err(PageError::Invalid("the form is too large".into()));
    }
    let form: AcceptForm =
        serde_urlencoded::from_bytes(&body).map_err(|_| PageError::Invalid("the form does not parse".into()))?;
    st.signup_limiter
        .attempt(&ip)
        .map_err(|retry_after_secs| PageError::TooManyAttempts { retry_after_secs })?;
    let store = st.pipeline.store();
    let (inv, account) = match operators::accept(store.as_ref(), &form.token, &form.password, now_ms()).await {
        Ok(done) => done,
        Err(ConsoleError::NotFound(_)) => return Err(PageError::Gone(LINK_GONE.into())),
        Err(e) => return Err(e.into()),
    };
    console::audit(
        &st.pipeline,
        NewAuditEntry {
            actor: account.email.clone(),
            ip,
            tenant_id: None,
            app_id: None,
            action: "operator.join".into(),
            target: account.email.clone(),
            detail: format!("invited by {}", inv.invited_by),
        },
    )
    .await?;
    Ok(html(PublicPage {
        base: BASE,
        title: "Invitation accepted".into(),
        message: format!("You are a platform operator now. Sign in as {}.", account.email),
        confirm: None,
    }))
}
