//! `/admin/v1/tenants/{tenant}/apps/{app}/…`: the users explorer (search, a user with
//! presence and conversations; ban, unban, mute, unmute, revoke tokens, kick) and the
//! messages explorer (a conversation's history paged by seq; recall), through the same
//! `tern_platform::service` operations as the console's pages and the server API.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use tern_platform::delivery::Actor;
use tern_platform::domain::{now_ms, ConsoleRole, FOREVER};
use tern_platform::ids::{ConversationId, MsgId, UserId};
use tern_platform::service::{console, conversations, messages, moderation, users};
use tern_platform::store::SeqRange;
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::{AdminError, JsonBody};
use super::views::*;
use crate::auth::app_scope;
use crate::state::ConsoleState;

/// Longest search text.
const MAX_QUERY_CHARS: usize = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// An id prefix or part of a name; absent: every user by id.
    q: Option<String>,
    /// The last id of the previous page.
    after: Option<String>,
    /// 1 to 200 (default 50).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/users", operation_id = "admin_search_users", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"), UserQuery),
    responses((status = 200, body = AdminUserList), (status = "4XX", body = ErrorEnvelope)))]
pub async fn search(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app)): Path<(String, String)>,
    Query(q): Query<UserQuery>,
) -> Result<Json<AdminUserList>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let text: String = q.q.unwrap_or_default().trim().chars().take(MAX_QUERY_CHARS).collect();
    let after = q.after.as_deref().and_then(|a| UserId::parse(a).ok());
    let found = console::search_users(&st.pipeline, &app, &text, after.as_ref(), limit).await?;
    let next_after = (found.len() as u32 == limit)
        .then(|| found.last().map(|u| u.id.to_string()))
        .flatten();
    Ok(Json(AdminUserList {
        users: found.into_iter().map(AdminUser::from).collect(),
        next_after,
    }))
}

#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/users/{user}", operation_id = "admin_get_user", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"),
        ("user" = String, Path, description = "The user's id")),
    responses((status = 200, body = AdminUserDetail), (status = "4XX", body = ErrorEnvelope)))]
pub async fn get(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, user)): Path<(String, String, String)>,
) -> Result<Json<AdminUserDetail>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let id = UserId::parse(&user).map_err(|_| AdminError::not_found())?;
    let detail = users::detail(&st.pipeline, &app, &id).await?;
    let page = conversations::list_page(&st.pipeline, &app, &id, None, 50).await?;
    let presence = detail.presence;
    Ok(Json(AdminUserDetail {
        user: detail.user.into(),
        online: presence.as_ref().is_some_and(|p| p.online),
        devices: presence.as_ref().map(|p| p.devices.clone()).unwrap_or_default(),
        last_seen: presence.and_then(|p| p.last_seen),
        conversations: page
            .items
            .into_iter()
            .map(|c| AdminConversation {
                id: c.conversation_id.to_string(),
                last_seq: c.last_seq,
                updated_at: c.updated_at,
            })
            .collect(),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminModeration {
    /// Ban or mute: how long, seconds; absent or 0 for no end.
    #[serde(default)]
    pub duration_seconds: Option<i64>,
    /// Ban: why (kept with the ban).
    #[serde(default)]
    pub reason: String,
}

/// Ban, unban, mute, unmute, revoke tokens or kick (developer and up); answers the user.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/apps/{app}/users/{user}/{action}", operation_id = "admin_moderate_user", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"),
        ("user" = String, Path, description = "The user's id"),
        ("action" = String, Path, description = "ban, unban, mute, unmute, revoke-tokens or kick")),
    request_body = AdminModeration,
    responses((status = 200, body = AdminUser), (status = "4XX", body = ErrorEnvelope)))]
pub async fn moderate(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, user, action)): Path<(String, String, String, String)>,
    JsonBody(body): JsonBody<AdminModeration>,
) -> Result<Json<AdminUser>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let id = UserId::parse(&user).map_err(|_| AdminError::not_found())?;
    if !matches!(
        action.as_str(),
        "ban" | "unban" | "mute" | "unmute" | "revoke-tokens" | "kick"
    ) {
        return Err(AdminError::not_found());
    }
    scope.require(ConsoleRole::Developer, "Moderating users")?;
    let now = now_ms();
    let until = || -> Result<i64, AdminError> {
        match body.duration_seconds {
            None | Some(0) => Ok(FOREVER),
            Some(s) if s < 0 => Err(AdminError::invalid("duration_seconds must be positive")),
            Some(s) => Ok(moderation::restriction_end(
                Some(now.saturating_add(s.saturating_mul(1000)).min(FOREVER)),
                now,
            )?),
        }
    };
    let ends = |end: i64| {
        if end >= FOREVER {
            "until no end".to_owned()
        } else {
            format!("until {}", crate::views::when(end))
        }
    };
    let (user, detail) = match action.as_str() {
        "ban" => {
            moderation::check_reason(&body.reason)?;
            let end = until()?;
            (
                moderation::ban(&st.pipeline, &app, &id, end, body.reason.trim()).await?,
                ends(end),
            )
        }
        "unban" => (moderation::unban(&st.pipeline, &app, &id).await?, String::new()),
        "mute" => {
            let end = until()?;
            (moderation::mute(&st.pipeline, &app, &id, end).await?, ends(end))
        }
        "unmute" => (moderation::unmute(&st.pipeline, &app, &id).await?, String::new()),
        "revoke-tokens" => {
            users::revoke_tokens(&st.pipeline, &app, &id).await?;
            (users::get(&st.pipeline, &app, &id).await?, String::new())
        }
        _ => {
            users::kick(&st.pipeline, &app, &id).await?;
            (users::get(&st.pipeline, &app, &id).await?, String::new())
        }
    };
    c.audit(
        &st,
        None,
        Some(&app),
        &format!("user.{}", action.replace('-', "_")),
        id.as_str(),
        detail,
    )
    .await?;
    Ok(Json(user.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Messages before this seq (older); absent: the newest.
    before: Option<i64>,
    /// Messages after this seq (newer), oldest first; wins over `before`.
    after: Option<i64>,
    /// 1 to 200 (default 50).
    limit: Option<u32>,
}

/// A conversation's history as the server sees it (recalled and edited messages marked,
/// reactions counted), paged by seq: `direct d:a:b`, group `g:id`, room `r:id`.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/apps/{app}/conversations/{conversation}/messages", operation_id = "admin_list_messages", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"),
        ("conversation" = String, Path, description = "d:USER:USER, g:GROUP or r:ROOM"), HistoryQuery),
    responses((status = 200, body = AdminMessagePage), (status = "4XX", body = ErrorEnvelope)))]
pub async fn history(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, conversation)): Path<(String, String, String)>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<AdminMessagePage>, AdminError> {
    let (_, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let id = ConversationId::parse(&conversation).map_err(|_| AdminError::not_found())?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let range = match (q.after, q.before) {
        (Some(a), _) => SeqRange::After(a.max(0)),
        (None, Some(b)) => SeqRange::Before(b.max(1)),
        (None, None) => SeqRange::Before(i64::MAX),
    };
    let found = messages::history_range(&st.pipeline, &app, &Actor::Server, &id, range, limit).await?;
    let next_before = found.first().filter(|m| m.seq > 1).map(|m| m.seq);
    Ok(Json(AdminMessagePage {
        messages: found.into_iter().map(AdminMessage::from).collect(),
        next_before,
    }))
}

/// Recalls a message as the app's backend may (developer and up): its content is gone for
/// everyone and devices are told.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/apps/{app}/messages/{msg}/recall", operation_id = "admin_recall_message", tag = "operator API",
    params(("tenant" = String, Path, description = "The tenant's id"), ("app" = String, Path, description = "The app's id"),
        ("msg" = String, Path, description = "The message's id")),
    responses((status = 200, body = AdminMessage), (status = "4XX", body = ErrorEnvelope)))]
pub async fn recall(
    State(st): State<ConsoleState>,
    c: Caller,
    Path((tenant, app, msg)): Path<(String, String, String)>,
) -> Result<Json<AdminMessage>, AdminError> {
    let (scope, app) = app_scope(&st, &c.viewer, &tenant, &app).await?;
    let id = MsgId::parse(&msg).map_err(|_| AdminError::not_found())?;
    scope.require(ConsoleRole::Developer, "Recalling messages")?;
    let m = messages::recall(&st.pipeline, &app, &Actor::Server, &id).await?;
    c.audit(
        &st,
        None,
        Some(&app),
        "app.message.recall",
        id.as_str(),
        format!("in {} (seq {})", m.conversation_id, m.seq),
    )
    .await?;
    Ok(Json(m.into()))
}
