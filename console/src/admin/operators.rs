//! `/admin/v1/operator-invitations…`: the operators page as JSON (operators only; anyone
//! else gets `forbidden`, as for the platform's other operator-only routes). Invite an
//! email to become an operator (the platform mails a link that works once, for 24 hours),
//! list the open invitations, revoke one. Accepting is the link's page in the console:
//! the invitee has no credentials yet. Audited as on the page.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::{now_ms, OperatorInvitation};
use tern_platform::service::console::ConsoleError;
use tern_platform::service::operators;
use utoipa::ToSchema;

use super::caller::Caller;
use super::error::{AdminError, JsonBody};
use super::views::ErrorEnvelope;
use crate::state::ConsoleState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminOperatorInvitation {
    /// Names the invitation in `…/operator-invitations/{id}/revoke` (the SHA-256 of its link's token).
    pub id: String,
    pub email: String,
    /// The operator who sent it.
    pub invited_by: String,
    pub created_at: i64,
    /// Its link works until then (24 hours after it was sent).
    pub expires_at: i64,
}

impl From<OperatorInvitation> for AdminOperatorInvitation {
    fn from(i: OperatorInvitation) -> Self {
        Self {
            id: i.token_hash,
            email: i.email,
            invited_by: i.invited_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminOperatorInvitations {
    /// Newest first.
    pub invitations: Vec<AdminOperatorInvitation>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminOperatorInvite {
    pub email: String,
}

/// The operator invitations whose links still work.
#[utoipa::path(get, path = "/admin/v1/operator-invitations", operation_id = "admin_operator_invitations", tag = "operator API",
    responses((status = 200, body = AdminOperatorInvitations), (status = "4XX", body = ErrorEnvelope)))]
pub async fn list(State(st): State<ConsoleState>, c: Caller) -> Result<Json<AdminOperatorInvitations>, AdminError> {
    c.require_operator("see operator invitations")?;
    let store = st.pipeline.store();
    let open = operators::open_invitations(store.as_ref(), &c.viewer.account, now_ms()).await?;
    Ok(Json(AdminOperatorInvitations {
        invitations: open.into_iter().map(AdminOperatorInvitation::from).collect(),
    }))
}

/// Invites an email to become an operator: the platform mails a link that works once, for
/// 24 hours, where they choose a password. 409 when that account is an operator already.
#[utoipa::path(post, path = "/admin/v1/operator-invitations", operation_id = "admin_invite_operator", tag = "operator API",
    request_body = AdminOperatorInvite,
    responses((status = 201, body = AdminOperatorInvitation), (status = "4XX", body = ErrorEnvelope)))]
pub async fn invite(
    State(st): State<ConsoleState>,
    c: Caller,
    JsonBody(body): JsonBody<AdminOperatorInvite>,
) -> Result<(StatusCode, Json<AdminOperatorInvitation>), AdminError> {
    c.require_operator("invite operators")?;
    let store = st.pipeline.store();
    let inv = operators::invite(store.as_ref(), &st.mailer, &c.viewer.account, &body.email, now_ms())
        .await
        .map_err(|e| match e {
            ConsoleError::Invalid(m) if m.contains("email") => AdminError::invalid_field("email", m),
            other => other.into(),
        })?;
    c.audit(&st, None, None, "operator.invite", &inv.email, "link valid 24 h".into())
        .await?;
    Ok((StatusCode::CREATED, Json(inv.into())))
}

/// Ends an open operator invitation's link now.
#[utoipa::path(post, path = "/admin/v1/operator-invitations/{invitation}/revoke", operation_id = "admin_revoke_operator_invitation", tag = "operator API",
    params(("invitation" = String, Path, description = "The invitation's id")),
    responses((status = 200, body = AdminOperatorInvitation), (status = "4XX", body = ErrorEnvelope)))]
pub async fn revoke(
    State(st): State<ConsoleState>,
    c: Caller,
    Path(id): Path<String>,
) -> Result<Json<AdminOperatorInvitation>, AdminError> {
    c.require_operator("revoke operator invitations")?;
    let store = st.pipeline.store();
    let inv = operators::revoke(store.as_ref(), &c.viewer.account, &id, now_ms()).await?;
    c.audit(&st, None, None, "operator.invitation.revoke", &inv.email, String::new())
        .await?;
    Ok(Json(inv.into()))
}
