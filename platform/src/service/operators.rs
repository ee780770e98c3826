//! Operator invitations: an operator invites another by email; the mailed link works once,
//! for 24 hours, and makes its email's account an operator (a new account with the password
//! chosen on the link's page, argon2id; an existing account keeps its password). Only
//! operators invite, list and revoke; the doors answer others as they answer any
//! operator-only request.

use crate::domain::{ConsoleAccount, OperatorInvitation, UnixMillis};
use crate::mail::{Mail, Mailer};
use crate::service::console::{
    check_new_password, hash_new_password, parse_email, random_token, token_hash, ConsoleError,
};
use crate::store::{Store, StoreError};

/// How long an operator invitation's link works.
pub const OPERATOR_INVITATION_TTL_MS: i64 = 24 * 3600 * 1000;

type Result<T> = std::result::Result<T, ConsoleError>;

fn operator_only(actor: &ConsoleAccount, what: &str) -> Result<()> {
    if actor.operator {
        Ok(())
    } else {
        Err(ConsoleError::Forbidden(format!("only platform operators may {what}")))
    }
}

/// Invites `email` to become an operator and mails the link. `Conflict` when that account
/// is an operator already; `MailFailed` (and no open link) when the mail could not go out.
pub async fn invite(
    store: &dyn Store,
    mailer: &Mailer,
    actor: &ConsoleAccount,
    email: &str,
    now: UnixMillis,
) -> Result<OperatorInvitation> {
    operator_only(actor, "invite operators")?;
    let email = parse_email(email)?;
    if let Some(account) = store.account_by_email(&email).await? {
        if account.operator {
            return Err(ConsoleError::Conflict(format!("{email} is an operator already")));
        }
    }
    let token = random_token();
    let invitation = OperatorInvitation {
        token_hash: token_hash(&token),
        email: email.clone(),
        invited_by: actor.email.clone(),
        created_at: now,
        expires_at: now + OPERATOR_INVITATION_TTL_MS,
        accepted_at: None,
    };
    store.create_operator_invitation(&invitation).await?;
    let link = mailer.link(&format!("/console/operator-invite?token={token}"));
    let sent = mailer
        .send(
            store,
            Mail {
                tenant_id: None,
                to: email.clone(),
                kind: "operator.invitation",
                subject: format!("{} invites you to operate Tern", actor.email),
                body: format!(
                    "{} invites you to become an operator of this Tern platform: you will see and \
                     manage every tenant in the console.\n\nOpen this link to accept:\n\n{link}\n\n\
                     The link works once, for 24 hours. If you did not expect it, ignore this mail.\n",
                    actor.email
                ),
            },
        )
        .await;
    if sent.is_err() {
        // A link nobody received must not stay open.
        store.revoke_operator_invitation(&invitation.token_hash, now).await?;
        return Err(ConsoleError::MailFailed(
            "the invitation could not be mailed just now; try again in a few minutes".into(),
        ));
    }
    Ok(invitation)
}

/// An open operator invitation, and whether its email has an account already.
pub async fn pending(store: &dyn Store, token: &str, now: UnixMillis) -> Result<(OperatorInvitation, bool)> {
    let invitation = store
        .pending_operator_invitation(&token_hash(token), now)
        .await?
        .ok_or(ConsoleError::NotFound("invitation"))?;
    let has_account = store.account_by_email(&invitation.email).await?.is_some();
    Ok((invitation, has_account))
}

/// Accepts: the email's account (made now with `password` when it has none) becomes an
/// operator. Once: a second use, or one after 24 hours, is `NotFound`.
pub async fn accept(
    store: &dyn Store,
    token: &str,
    password: &str,
    now: UnixMillis,
) -> Result<(OperatorInvitation, ConsoleAccount)> {
    let (_, has_account) = pending(store, token, now).await?;
    let hash = if has_account {
        None
    } else {
        check_new_password(password)?;
        Some(hash_new_password(password.to_owned()).await?)
    };
    store
        .accept_operator_invitation(&token_hash(token), hash.as_deref(), now)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ConsoleError::NotFound("invitation"),
            other => other.into(),
        })
}

/// The operator invitations still open, newest first.
pub async fn open_invitations(
    store: &dyn Store,
    actor: &ConsoleAccount,
    now: UnixMillis,
) -> Result<Vec<OperatorInvitation>> {
    operator_only(actor, "see operator invitations")?;
    Ok(store.operator_invitations(now).await?)
}

/// Ends an open operator invitation's link now.
pub async fn revoke(
    store: &dyn Store,
    actor: &ConsoleAccount,
    hash: &str,
    now: UnixMillis,
) -> Result<OperatorInvitation> {
    operator_only(actor, "revoke operator invitations")?;
    let invitation = store
        .operator_invitations(now)
        .await?
        .into_iter()
        .find(|i| i.token_hash == hash)
        .ok_or(ConsoleError::NotFound("invitation"))?;
    if !store.revoke_operator_invitation(hash, now).await? {
        return Err(ConsoleError::NotFound("invitation"));
    }
    Ok(invitation)
}
