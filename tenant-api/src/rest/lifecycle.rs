//! The message lifecycle through the server API (`/v1/messages/{msg_id}/...`): edits,
//! deletes for one user, extensions and reactions. Replies are a `reply_to` on
//! `POST /v1/messages`; recalls are `POST /v1/messages/{msg_id}/recall`. The operations are
//! `tern_platform::lifecycle`, shared with the WebSocket gateway (docs/messages.md).
//!
//! The server API acts as the app (edits and recalls any message at any time, sets
//! extensions as the app) or, where the change belongs to a user (a reaction, a delete for
//! them, an extension set as them), for a user who must be able to see the message.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::delivery::Actor;
use tern_platform::domain::{App, Extension, ExtensionUpdate, QuotedMessage, ReactionSummary};
use tern_platform::lifecycle;
use utoipa::ToSchema;

use super::dto::*;
use super::users::parse_user;
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::input::msg_id;
use crate::state::ApiState;

/// The quoted message of a reply, as it is now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuotedView {
    pub msg_id: String,
    pub seq: i64,
    /// Absent for system messages.
    pub from: Option<String>,
    #[serde(rename = "type")]
    pub msg_type: String,
    /// `null` once recalled.
    #[schema(value_type = Option<Object>)]
    pub content: serde_json::Value,
    pub created_at: i64,
    pub recalled: bool,
    pub edited_at: Option<i64>,
}

impl From<QuotedMessage> for QuotedView {
    fn from(q: QuotedMessage) -> Self {
        Self {
            msg_id: q.msg_id.into_string(),
            seq: q.seq,
            from: q.sender.user().map(|u| u.to_string()),
            msg_type: q.msg_type.as_str().to_owned(),
            content: q.content,
            created_at: q.created_at,
            recalled: q.recalled,
            edited_at: q.edited_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExtensionView {
    pub key: String,
    pub value: String,
    /// Grows with every set or delete of the key; the `expected_version` of a
    /// compare-and-set.
    pub version: i64,
    /// The user who set it; absent when the server API did.
    pub updated_by: Option<String>,
    pub updated_at: i64,
}

impl From<Extension> for ExtensionView {
    fn from(e: Extension) -> Self {
        Self {
            key: e.key,
            value: e.value,
            version: e.version,
            updated_by: e.updated_by.map(|u| u.into_string()),
            updated_at: e.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReactionView {
    pub reaction: String,
    pub count: i64,
    /// Whether the user the request acts for holds it (always false when reading as the app).
    pub reacted: bool,
    /// The first users to react, earliest first (up to 3).
    pub users: Vec<String>,
}

impl From<ReactionSummary> for ReactionView {
    fn from(r: ReactionSummary) -> Self {
        Self {
            reaction: r.reaction,
            count: r.count,
            reacted: r.reacted,
            users: r.users.into_iter().map(|u| u.into_string()).collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessage {
    /// The new content, valid for the message's type (which does not change).
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteForUser {
    /// The user the message is deleted for; they must be able to see it.
    pub user_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeletedAnswer {
    pub msg_id: String,
    pub user_id: String,
    /// Whether this call deleted it (false: it was deleted for them before).
    pub deleted: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionSet {
    /// 1-64 characters of `A-Z a-z 0-9 _ . : / -`.
    pub key: String,
    /// Up to 1024 bytes.
    pub value: String,
    /// Apply only if the key is at this version now (0: never set).
    pub expected_version: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionDelete {
    pub key: String,
    pub expected_version: Option<i64>,
}

/// Keys to set and delete, 1 to 20 in all, applied all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateExtensions {
    /// Act as this user (who must be able to see the message); absent: as the app.
    pub user_id: Option<String>,
    #[serde(default)]
    pub set: Vec<ExtensionSet>,
    #[serde(default)]
    pub delete: Vec<ExtensionDelete>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExtensionsAnswer {
    /// Every key set on the message now, by key.
    pub extensions: Vec<ExtensionView>,
    /// The message's version (its last change's).
    pub version: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReactionUserView {
    pub user_id: String,
    pub reacted_at: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReactionUsersAnswer {
    /// Earliest first.
    pub users: Vec<ReactionUserView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Replaces the content of a message (the server API may edit any message, at any time;
/// never a recalled one). Everyone in the conversation gets a `change` push.
#[utoipa::path(patch, path = "/v1/messages/{msg_id}", operation_id = "edit_message", tag = "messages", params(("msg_id" = String, Path)),
    request_body = EditMessage,
    responses((status = 200, body = MessageView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn edit(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<EditMessage>,
) -> Result<Json<MessageView>, ApiError> {
    edit_message(&st, &req.app, &id, req.body).await.map(Json)
}

pub async fn edit_message(st: &ApiState, app: &App, id: &str, b: EditMessage) -> Result<MessageView, ApiError> {
    let id = msg_id(id)?;
    let m = lifecycle::edit(&st.pipeline, app, &Actor::Server, &id, b.content).await?;
    Ok(m.into())
}

/// Deletes a message for one user: it leaves their history and conversation list on all
/// their devices; everyone else still sees it.
#[utoipa::path(post, path = "/v1/messages/{msg_id}/delete-for-user", operation_id = "delete_message_for_user", tag = "messages",
    params(("msg_id" = String, Path)), request_body = DeleteForUser,
    responses((status = 200, body = DeletedAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn delete_for_user(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<DeleteForUser>,
) -> Result<Json<DeletedAnswer>, ApiError> {
    delete_message_for_user(&st, &req.app, &id, req.body).await.map(Json)
}

pub async fn delete_message_for_user(
    st: &ApiState,
    app: &App,
    id: &str,
    b: DeleteForUser,
) -> Result<DeletedAnswer, ApiError> {
    let id = msg_id(id)?;
    let user = parse_user(&b.user_id)?;
    let changes = lifecycle::delete_for_user(&st.pipeline, app, &user, std::slice::from_ref(&id)).await?;
    Ok(DeletedAnswer {
        msg_id: id.into_string(),
        user_id: user.into_string(),
        deleted: !changes.is_empty(),
    })
}

/// The extensions of a message.
#[utoipa::path(get, path = "/v1/messages/{msg_id}/extensions", operation_id = "get_extensions", tag = "messages", params(("msg_id" = String, Path)),
    responses((status = 200, body = ExtensionsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn extensions(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<ExtensionsAnswer>, ApiError> {
    message_extensions(&st, &req.app, &id).await.map(Json)
}

pub async fn message_extensions(st: &ApiState, app: &App, id: &str) -> Result<ExtensionsAnswer, ApiError> {
    let id = msg_id(id)?;
    let (list, version) = lifecycle::extensions(&st.pipeline, app, &Actor::Server, &id).await?;
    Ok(ExtensionsAnswer {
        extensions: list.into_iter().map(Into::into).collect(),
        version,
    })
}

/// Sets and deletes extension keys, all or none: a key not at its `expected_version` fails
/// the whole update with 409 `version_conflict`. Everyone in the conversation gets a
/// `change` push.
#[utoipa::path(post, path = "/v1/messages/{msg_id}/extensions", operation_id = "update_extensions", tag = "messages", params(("msg_id" = String, Path)),
    request_body = UpdateExtensions,
    responses((status = 200, body = ExtensionsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn update_extensions(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<UpdateExtensions>,
) -> Result<Json<ExtensionsAnswer>, ApiError> {
    update_message_extensions(&st, &req.app, &id, req.body).await.map(Json)
}

pub async fn update_message_extensions(
    st: &ApiState,
    app: &App,
    id: &str,
    b: UpdateExtensions,
) -> Result<ExtensionsAnswer, ApiError> {
    let id = msg_id(id)?;
    let actor = match &b.user_id {
        Some(u) => Actor::User(parse_user(u)?),
        None => Actor::Server,
    };
    let updates: Vec<ExtensionUpdate> = b
        .set
        .into_iter()
        .map(|s| ExtensionUpdate {
            key: s.key,
            value: Some(s.value),
            expected_version: s.expected_version,
        })
        .chain(b.delete.into_iter().map(|d| ExtensionUpdate {
            key: d.key,
            value: None,
            expected_version: d.expected_version,
        }))
        .collect();
    let (list, version) = lifecycle::update_extensions(&st.pipeline, app, &actor, &id, &updates).await?;
    Ok(ExtensionsAnswer {
        extensions: list.into_iter().map(Into::into).collect(),
        version,
    })
}

/// `user_id` reacts to a message with `reaction` (an emoji or a short string; percent-encode
/// it in the path). Reacting again changes nothing.
#[utoipa::path(put, path = "/v1/messages/{msg_id}/reactions/{reaction}/users/{user_id}", operation_id = "add_reaction", tag = "messages",
    params(("msg_id" = String, Path), ("reaction" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = ReactionView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn add_reaction(
    State(st): State<ApiState>,
    ApiPath((id, reaction, user)): ApiPath<(String, String, String)>,
    req: Signed<()>,
) -> Result<Json<ReactionView>, ApiError> {
    react(&st, &req.app, &id, &reaction, &user, true).await.map(Json)
}

/// Takes `user_id`'s reaction off a message. Removing one they do not hold changes nothing.
#[utoipa::path(delete, path = "/v1/messages/{msg_id}/reactions/{reaction}/users/{user_id}", operation_id = "remove_reaction", tag = "messages",
    params(("msg_id" = String, Path), ("reaction" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = ReactionView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn remove_reaction(
    State(st): State<ApiState>,
    ApiPath((id, reaction, user)): ApiPath<(String, String, String)>,
    req: Signed<()>,
) -> Result<Json<ReactionView>, ApiError> {
    react(&st, &req.app, &id, &reaction, &user, false).await.map(Json)
}

pub async fn react(
    st: &ApiState,
    app: &App,
    id: &str,
    reaction: &str,
    user: &str,
    add: bool,
) -> Result<ReactionView, ApiError> {
    let id = msg_id(id)?;
    let user = parse_user(user)?;
    Ok(lifecycle::react(&st.pipeline, app, &user, &id, reaction, add)
        .await?
        .into())
}

/// Who reacted with `reaction`, earliest first, paged.
#[utoipa::path(get, path = "/v1/messages/{msg_id}/reactions/{reaction}/users", operation_id = "list_reaction_users", tag = "messages",
    params(("msg_id" = String, Path), ("reaction" = String, Path), PageQuery),
    responses((status = 200, body = ReactionUsersAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn reaction_users(
    State(st): State<ApiState>,
    ApiPath((id, reaction)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<ReactionUsersAnswer>, ApiError> {
    list_reaction_users(&st, &req.app, &id, &reaction, req.query()?)
        .await
        .map(Json)
}

pub async fn list_reaction_users(
    st: &ApiState,
    app: &App,
    id: &str,
    reaction: &str,
    q: PageQuery,
) -> Result<ReactionUsersAnswer, ApiError> {
    let id = msg_id(id)?;
    let page = lifecycle::reaction_users(
        &st.pipeline,
        app,
        &Actor::Server,
        &id,
        reaction,
        q.cursor.as_deref(),
        q.limit.unwrap_or(0),
    )
    .await?;
    Ok(ReactionUsersAnswer {
        users: page
            .users
            .into_iter()
            .map(|(u, at)| ReactionUserView {
                user_id: u.into_string(),
                reacted_at: at,
            })
            .collect(),
        next_cursor: page.next_cursor,
    })
}
