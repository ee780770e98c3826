//! The calling app's own settings: limits, windows and policies that every door applies.
//! Webhook settings have their own endpoint (`/v1/webhook`), which checks the URL.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::{App, AppSettings};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::Signed;
use crate::state::ApiState;

/// Every app setting but the webhook. `PATCH` takes any subset of these keys.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppSettingsView {
    /// Longest lifetime of a user token, seconds (60 to 31,622,400).
    pub max_token_ttl_seconds: i64,
    /// Users unknown to the app are created when they first log in with a valid token.
    pub auto_create_users: bool,
    /// Server API writes per second (1 to 1,000,000).
    pub write_rate_per_second: u32,
    /// Server API reads per second (1 to 1,000,000).
    pub read_rate_per_second: u32,
    /// Largest `content.text`, bytes (1 to 65,536).
    pub max_text_bytes: usize,
    /// Largest serialised content of other types, bytes (64 to 65,536).
    pub max_content_bytes: usize,
    /// How long a sender may recall their own message, seconds (0 to 604,800).
    pub recall_window_seconds: i64,
    /// Messages per second one user may send from the SDK (1 to 10,000).
    pub user_send_rate_per_second: u32,
    /// Sessions per user on each native platform before the oldest is closed (1 to 100).
    pub max_sessions_mobile: u32,
    /// Browser sessions per user before the oldest is closed (1 to 100).
    pub max_sessions_web: u32,
    /// How long a rotated-out AppSecret stays valid, seconds (0 to 2,592,000).
    pub secret_grace_seconds: i64,
    /// Direct messages need friendship on both sides.
    pub friendship_required_for_direct: bool,
    /// Most members of one group (2 to 100,000).
    pub group_member_limit: usize,
    /// App users may create groups from the SDK.
    pub users_may_create_groups: bool,
    /// Groups up to this size keep per-message read counts (0 to 10,000; 0 is off).
    pub group_read_receipt_limit: usize,
    /// How long a sender may edit their own message, seconds (0 to 2,592,000).
    pub edit_window_seconds: i64,
    /// Joining a room that does not exist creates it.
    pub rooms_created_on_join: bool,
    /// Messages per second one room accepts (1 to 100,000).
    pub room_send_rate_per_second: u32,
    /// Messages a new room member gets on joining (0 to 100).
    pub room_backlog: u32,
    /// Users each broadcast reaches per second (1 to 100,000).
    pub broadcast_rate_per_second: u32,
    /// Limits of uploaded files (docs/files.md); a PATCH replaces the whole object.
    pub files: FileSettingsView,
    /// What offline pushes show and when they are sent (docs/push.md); a PATCH replaces
    /// the whole object.
    pub push: AppPushSettingsView,
}

/// An app's offline push policy.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppPushSettingsView {
    /// Show the message's text; `false`: the body is "New message".
    pub show_preview: bool,
    /// The badge is the user's total unread count; `false`: no badge.
    pub badge: bool,
    /// Groups with more members than this are pushed only to the members a message
    /// @mentions (everyone for @all); 0 (default) pushes every group message.
    pub mention_only_group_size: usize,
    /// Per message type (`text`, `image`, `file`, `audio`, `video`, `location`, `custom`,
    /// `system`): a `title` and/or `body` with `{sender}`, `{group}` and `{preview}`.
    #[schema(value_type = Object)]
    pub templates: std::collections::BTreeMap<String, tern_platform::domain::PushTemplate>,
}

/// An app's limits on uploaded files.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct FileSettingsView {
    /// Largest file, bytes (1 to 5 GiB, and at most the node's limit); `null`: 100 MB.
    pub max_file_bytes: Option<u64>,
    /// Types an upload may have (`image/png`, `image/*`); empty allows every type.
    #[serde(default)]
    pub allowed_content_types: Vec<String>,
    /// Most bytes the app may keep, complete files and uploads in progress; `null`: no quota.
    pub storage_quota_bytes: Option<u64>,
}

impl From<&AppSettings> for AppSettingsView {
    fn from(s: &AppSettings) -> Self {
        Self {
            max_token_ttl_seconds: s.max_token_ttl_seconds,
            auto_create_users: s.auto_create_users,
            write_rate_per_second: s.write_rate_per_second,
            read_rate_per_second: s.read_rate_per_second,
            max_text_bytes: s.max_text_bytes,
            max_content_bytes: s.max_content_bytes,
            recall_window_seconds: s.recall_window_seconds,
            user_send_rate_per_second: s.user_send_rate_per_second,
            max_sessions_mobile: s.max_sessions_mobile,
            max_sessions_web: s.max_sessions_web,
            secret_grace_seconds: s.secret_grace_seconds,
            friendship_required_for_direct: s.friendship_required_for_direct,
            group_member_limit: s.group_member_limit,
            users_may_create_groups: s.users_may_create_groups,
            group_read_receipt_limit: s.group_read_receipt_limit,
            edit_window_seconds: s.edit_window_seconds,
            rooms_created_on_join: s.rooms_created_on_join,
            room_send_rate_per_second: s.room_send_rate_per_second,
            room_backlog: s.room_backlog,
            broadcast_rate_per_second: s.broadcast_rate_per_second,
            files: FileSettingsView {
                max_file_bytes: s.files.max_file_bytes,
                allowed_content_types: s.files.allowed_content_types.clone(),
                storage_quota_bytes: s.files.storage_quota_bytes,
            },
            push: AppPushSettingsView {
                show_preview: s.push.show_preview,
                badge: s.push.badge,
                mention_only_group_size: s.push.mention_only_group_size,
                templates: s.push.templates.clone(),
            },
        }
    }
}

/// The app's settings.
#[utoipa::path(get, path = "/v1/app/settings", operation_id = "get_app_settings", tag = "app",
    responses((status = 200, body = AppSettingsView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get_settings(req: Signed<()>) -> Result<Json<AppSettingsView>, ApiError> {
    Ok(Json(AppSettingsView::from(&req.app.settings)))
}

/// Changes the settings named in the body (any subset of the keys `GET` returns); the
/// others keep their values. An unknown key or a value out of range changes nothing.
#[utoipa::path(patch, path = "/v1/app/settings", operation_id = "update_app_settings", tag = "app", request_body = AppSettingsView,
    responses((status = 200, body = AppSettingsView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn patch_settings(
    State(st): State<ApiState>,
    req: Signed<serde_json::Value>,
) -> Result<Json<AppSettingsView>, ApiError> {
    Ok(Json(patch(&st, &req.app, &req.body).await?))
}

/// Applies a patch (a JSON object of setting → value) to the app's settings.
pub(crate) async fn patch(st: &ApiState, app: &App, body: &serde_json::Value) -> Result<AppSettingsView, ApiError> {
    let settings = tern_platform::service::settings::patch(
        &st.pipeline,
        st.verifier.credentials(),
        app,
        body,
        st.max_app_rate_per_second,
    )
    .await?;
    Ok(AppSettingsView::from(&settings))
}
