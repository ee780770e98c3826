//! Offline push through the server API (docs/push.md): a user's devices
//! (`/v1/users/{user_id}/devices`), the app's APNs and FCM credentials
//! (`/v1/push/credentials`), the delivery log and test pushes. The operations are
//! `tern_platform::push`, shared with the WebSocket gateway.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::App;
use tern_platform::domain::{
    DoNotDisturb, NewPushDevice, PushDevice, PushDevicePatch, PushLogEntry, PushLogFilter, PushProvider,
    UserPushSettings, UserPushSettingsPatch,
};
use tern_platform::ids::{ConversationId, DeviceId, MsgId};
use tern_platform::push::{self, ApnsCredentials, CredentialSummary, FcmCredentials, ProviderCredentials};
use utoipa::ToSchema;

use super::dto::{decode_cursor, encode_cursor};
use super::users::{parse_user, Done};
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::state::ApiState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    pub device_id: String,
    pub user_id: String,
    /// `apns` or `fcm`.
    pub provider: String,
    pub token: String,
    /// APNs: the app's bundle id (`apns-topic`); empty: the one in the APNs credentials.
    pub bundle_id: String,
    /// `sandbox` or `production`.
    pub environment: String,
    pub locale: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<PushDevice> for DeviceView {
    fn from(d: PushDevice) -> Self {
        Self {
            device_id: d.id.into_string(),
            user_id: d.user_id.into_string(),
            provider: d.provider.as_str().to_owned(),
            token: d.token.as_str().to_owned(),
            bundle_id: d.topic,
            environment: d.environment.as_str().to_owned(),
            locale: d.locale,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DevicesAnswer {
    pub devices: Vec<DeviceView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDevice {
    /// `apns` or `fcm`.
    pub provider: String,
    /// APNs: the device token in hex (64 to 200 characters). FCM: the registration token.
    pub token: String,
    /// APNs only: the app's bundle id; absent: the one in the app's APNs credentials.
    pub bundle_id: Option<String>,
    /// `sandbox` or `production` (default). APNs only; FCM is always production.
    pub environment: Option<String>,
    /// The device's locale (`en-US`), for localised notifications.
    pub locale: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDevice {
    /// A new token from the provider for the same device.
    pub token: Option<String>,
    pub environment: Option<String>,
    /// `""` clears it; absent keeps it.
    pub locale: Option<String>,
}

fn parse_device(id: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(id).map_err(|e| ApiError::invalid(e.to_string()))
}

/// Registers a device of `user_id` for offline pushes. The same token again keeps its
/// device id (and moves to this user if it was another's).
#[utoipa::path(post, path = "/v1/users/{user_id}/devices", operation_id = "register_device", tag = "push",
    params(("user_id" = String, Path)), request_body = RegisterDevice,
    responses((status = 200, body = DeviceView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn register(
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    req: Signed<RegisterDevice>,
) -> Result<Json<DeviceView>, ApiError> {
    Ok(Json(register_device(&st, &req.app, &user, req.body).await?))
}

/// Registers a device (REST and gRPC).
pub(crate) async fn register_device(
    st: &ApiState,
    app: &App,
    user: &str,
    b: RegisterDevice,
) -> Result<DeviceView, ApiError> {
    let device = NewPushDevice::parse(
        parse_user(user)?,
        &b.provider,
        &b.token,
        b.bundle_id.as_deref(),
        b.environment.as_deref(),
        b.locale.as_deref(),
    )
    .map_err(|e| ApiError::invalid(e.0))?;
    Ok(push::register_device(&st.pipeline, app, &device).await?.into())
}

/// The devices `user_id` registered, oldest first.
#[utoipa::path(get, path = "/v1/users/{user_id}/devices", operation_id = "list_devices", tag = "push",
    params(("user_id" = String, Path)),
    responses((status = 200, body = DevicesAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn list(
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<DevicesAnswer>, ApiError> {
    Ok(Json(list_devices(&st, &req.app, &user).await?))
}

/// A user's devices (REST and gRPC).
pub(crate) async fn list_devices(st: &ApiState, app: &App, user: &str) -> Result<DevicesAnswer, ApiError> {
    let user = parse_user(user)?;
    let devices = push::devices(&st.pipeline, app, &user).await?;
    Ok(DevicesAnswer {
        devices: devices.into_iter().map(Into::into).collect(),
    })
}

/// Changes a device of `user_id`: a rotated token, the environment or the locale.
#[utoipa::path(patch, path = "/v1/users/{user_id}/devices/{device_id}", operation_id = "update_device", tag = "push",
    params(("user_id" = String, Path), ("device_id" = String, Path)), request_body = UpdateDevice,
    responses((status = 200, body = DeviceView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn update(
    State(st): State<ApiState>,
    ApiPath((user, device)): ApiPath<(String, String)>,
    req: Signed<UpdateDevice>,
) -> Result<Json<DeviceView>, ApiError> {
    Ok(Json(update_device(&st, &req.app, &user, &device, req.body).await?))
}

/// Changes a device (REST and gRPC).
pub(crate) async fn update_device(
    st: &ApiState,
    app: &App,
    user: &str,
    device: &str,
    b: UpdateDevice,
) -> Result<DeviceView, ApiError> {
    let user = parse_user(user)?;
    let device = parse_device(device)?;
    let patch = PushDevicePatch::parse(b.token.as_deref(), b.environment.as_deref(), b.locale.as_deref())
        .map_err(|e| ApiError::invalid(e.0))?;
    Ok(push::update_device(&st.pipeline, app, &user, &device, &patch)
        .await?
        .into())
}

/// Removes a device of `user_id`: it gets no more pushes.
#[utoipa::path(delete, path = "/v1/users/{user_id}/devices/{device_id}", operation_id = "remove_device", tag = "push",
    params(("user_id" = String, Path), ("device_id" = String, Path)),
    responses((status = 200, body = Done), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn remove(
    State(st): State<ApiState>,
    ApiPath((user, device)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<Done>, ApiError> {
    remove_device(&st, &req.app, &user, &device).await?;
    Ok(Json(Done { ok: true }))
}

/// Removes a device (REST and gRPC).
pub(crate) async fn remove_device(st: &ApiState, app: &App, user: &str, device: &str) -> Result<(), ApiError> {
    let user = parse_user(user)?;
    let device = parse_device(device)?;
    Ok(push::remove_device(&st.pipeline, app, &user, &device).await?)
}

// ---- credentials ---------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialView {
    /// `apns` or `fcm`.
    pub provider: String,
    /// What may be shown: `key_id`, `team_id`, `bundle_id` (APNs); `project_id`,
    /// `client_email`, `private_key_id` (FCM). Never the key.
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
    pub updated_at: i64,
}

impl From<CredentialSummary> for CredentialView {
    fn from(c: CredentialSummary) -> Self {
        Self {
            provider: c.provider.as_str().to_owned(),
            summary: c.summary,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialsAnswer {
    pub credentials: Vec<CredentialView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetApnsCredentials {
    /// The 10-character key id of the .p8 key.
    pub key_id: String,
    /// The 10-character Apple team id.
    pub team_id: String,
    /// The app's bundle id, the default `apns-topic`.
    pub bundle_id: String,
    /// The text of the .p8 file (`-----BEGIN PRIVATE KEY-----` ...).
    pub private_key: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetFcmCredentials {
    /// The service-account JSON from the Firebase console, as an object or as its text.
    #[schema(value_type = Object)]
    pub service_account: serde_json::Value,
}

/// The app's push credentials, by provider (never the keys).
#[utoipa::path(get, path = "/v1/push/credentials", operation_id = "list_push_credentials", tag = "push",
    responses((status = 200, body = CredentialsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn credentials(State(st): State<ApiState>, req: Signed<()>) -> Result<Json<CredentialsAnswer>, ApiError> {
    Ok(Json(list_credentials(&st, &req.app).await?))
}

/// The app's credentials by provider (REST and gRPC).
pub(crate) async fn list_credentials(st: &ApiState, app: &App) -> Result<CredentialsAnswer, ApiError> {
    let list = push::credential_summaries(&st.pipeline, app).await?;
    Ok(CredentialsAnswer {
        credentials: list.into_iter().map(Into::into).collect(),
    })
}

/// Sets the app's APNs token-based credentials. The key must load as an ES256 key; it is
/// stored encrypted and never shown again.
#[utoipa::path(put, path = "/v1/push/credentials/apns", operation_id = "set_apns_credentials", tag = "push",
    request_body = SetApnsCredentials,
    responses((status = 200, body = CredentialView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn set_apns(
    State(st): State<ApiState>,
    req: Signed<SetApnsCredentials>,
) -> Result<Json<CredentialView>, ApiError> {
    Ok(Json(set_apns_credentials(&st, &req.app, req.body).await?))
}

/// Sets the APNs credentials (REST and gRPC).
pub(crate) async fn set_apns_credentials(
    st: &ApiState,
    app: &App,
    b: SetApnsCredentials,
) -> Result<CredentialView, ApiError> {
    let creds = ProviderCredentials::Apns(ApnsCredentials {
        key_id: b.key_id,
        team_id: b.team_id,
        bundle_id: b.bundle_id,
        private_key: b.private_key,
    });
    Ok(push::set_credentials(&st.pipeline, &st.secrets, app, &creds)
        .await?
        .into())
}

/// Sets the app's FCM HTTP v1 credentials: a service account of the Firebase project. The
/// key must load as an RS256 key; it is stored encrypted and never shown again.
#[utoipa::path(put, path = "/v1/push/credentials/fcm", operation_id = "set_fcm_credentials", tag = "push",
    request_body = SetFcmCredentials,
    responses((status = 200, body = CredentialView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn set_fcm(
    State(st): State<ApiState>,
    req: Signed<SetFcmCredentials>,
) -> Result<Json<CredentialView>, ApiError> {
    let text = match req.body.service_account {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    Ok(Json(set_fcm_credentials(&st, &req.app, &text).await?))
}

/// Sets the FCM credentials from the service account's JSON text (REST and gRPC).
pub(crate) async fn set_fcm_credentials(st: &ApiState, app: &App, text: &str) -> Result<CredentialView, ApiError> {
    let creds =
        ProviderCredentials::Fcm(FcmCredentials::parse(text).map_err(tern_platform::delivery::DeliveryError::from)?);
    Ok(push::set_credentials(&st.pipeline, &st.secrets, app, &creds)
        .await?
        .into())
}

/// Removes the app's credentials for `provider` (`apns` or `fcm`).
#[utoipa::path(delete, path = "/v1/push/credentials/{provider}", operation_id = "delete_push_credentials", tag = "push",
    params(("provider" = String, Path)),
    responses((status = 200, body = Done), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn delete_credentials(
    State(st): State<ApiState>,
    ApiPath(provider): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<Done>, ApiError> {
    remove_credentials(&st, &req.app, &provider).await?;
    Ok(Json(Done { ok: true }))
}

/// Removes the credentials of a provider (REST and gRPC).
pub(crate) async fn remove_credentials(st: &ApiState, app: &App, provider: &str) -> Result<(), ApiError> {
    let provider = PushProvider::parse(provider).map_err(|e| ApiError::invalid(e.0))?;
    Ok(push::delete_credentials(&st.pipeline, app, provider).await?)
}

/// `DELETE /v1/push/credentials/apns` (the path is also `PUT`'s, so it is routed on its own).
pub async fn delete_apns(st: State<ApiState>, req: Signed<()>) -> Result<Json<Done>, ApiError> {
    delete_credentials(st, ApiPath("apns".into()), req).await
}

/// `DELETE /v1/push/credentials/fcm`.
pub async fn delete_fcm(st: State<ApiState>, req: Signed<()>) -> Result<Json<Done>, ApiError> {
    delete_credentials(st, ApiPath("fcm".into()), req).await
}

// ---- the delivery log and test pushes -----------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PushLogView {
    pub id: String,
    /// When the attempt ended (Unix ms).
    pub at: i64,
    pub user_id: String,
    pub device_id: String,
    /// Absent for a test push.
    pub msg_id: Option<String>,
    /// `apns` or `fcm`.
    pub provider: String,
    /// `sent`, `retrying`, `failed` or `token_removed`.
    pub outcome: String,
    /// The provider's HTTP status; 0 when it was not reached.
    pub http_status: u16,
    /// The provider's reason (`BadDeviceToken`, `Unregistered`, `UNREGISTERED`, ...) or the
    /// local error.
    pub reason: Option<String>,
    /// The provider's id of the notification (`apns-id`, the FCM message name).
    pub provider_id: Option<String>,
    pub latency_ms: i64,
    /// 1 for the first attempt of a push.
    pub attempt: i32,
}

impl From<PushLogEntry> for PushLogView {
    fn from(l: PushLogEntry) -> Self {
        Self {
            id: l.id,
            at: l.at,
            user_id: l.user_id.into_string(),
            device_id: l.device_id.into_string(),
            msg_id: l.msg_id.map(MsgId::into_string),
            provider: l.provider.as_str().to_owned(),
            outcome: l.outcome.as_str().to_owned(),
            http_status: l.http_status,
            reason: l.reason,
            provider_id: l.provider_id,
            latency_ms: l.latency_ms,
            attempt: l.attempt,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PushLogAnswer {
    pub entries: Vec<PushLogView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Query of the push log: any of a user, a device, a message; paged newest first.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PushLogQuery {
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub msg_id: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 100 (larger values are clamped); default 50.
    pub limit: Option<u32>,
}

/// Every push attempt, newest first, with the provider's answer: why a notification did or
/// did not arrive.
#[utoipa::path(get, path = "/v1/push/log", operation_id = "push_log", tag = "push",
    params(PushLogQuery),
    responses((status = 200, body = PushLogAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn log(State(st): State<ApiState>, req: Signed<()>) -> Result<Json<PushLogAnswer>, ApiError> {
    let q: PushLogQuery = req.query()?;
    Ok(Json(read_log(&st, &req.app, q).await?))
}

/// A page of the push log (REST and gRPC).
pub(crate) async fn read_log(st: &ApiState, app: &App, q: PushLogQuery) -> Result<PushLogAnswer, ApiError> {
    let filter = PushLogFilter {
        user_id: q.user_id.as_deref().map(parse_user).transpose()?,
        device_id: q.device_id.as_deref().map(parse_device).transpose()?,
        msg_id: q
            .msg_id
            .as_deref()
            .map(|m| MsgId::parse(m).map_err(|e| ApiError::invalid(e.to_string())))
            .transpose()?,
        before: q.cursor.as_deref().map(decode_cursor).transpose()?,
    };
    let limit = tern_platform::delivery::clamp_limit(q.limit.unwrap_or(0));
    let entries = push::log(&st.pipeline, app, &filter, limit).await?;
    let next_cursor = if entries.len() == limit as usize {
        entries.last().map(|l| encode_cursor(&l.id))
    } else {
        None
    };
    Ok(PushLogAnswer {
        entries: entries.into_iter().map(Into::into).collect(),
        next_cursor,
    })
}

/// Sends a test notification to one device now and answers with its log line (the
/// provider's status and reason). A token the provider says is dead is removed.
#[utoipa::path(post, path = "/v1/users/{user_id}/devices/{device_id}/test-push", operation_id = "test_push", tag = "push",
    params(("user_id" = String, Path), ("device_id" = String, Path)),
    responses((status = 200, body = PushLogView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn test_push(
    State(st): State<ApiState>,
    ApiPath((user, device)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<PushLogView>, ApiError> {
    Ok(Json(send_test_push(&st, &req.app, &user, &device).await?))
}

/// Sends a test push (REST and gRPC).
pub(crate) async fn send_test_push(
    st: &ApiState,
    app: &App,
    user: &str,
    device: &str,
) -> Result<PushLogView, ApiError> {
    let user = parse_user(user)?;
    let device = parse_device(device)?;
    let Some(pusher) = st.pusher.as_ref() else {
        return Err(ApiError::unavailable("this node has no pusher"));
    };
    Ok(push::test_push(pusher, app, &user, &device).await?.into())
}

// ---- when to push: do-not-disturb hours and muted conversations ----------------------

/// No pushes between `start` and `end` (local times of day; `end` before `start` runs over
/// midnight), local time being UTC plus `utc_offset_minutes`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DndView {
    /// `"22:00"`.
    pub start: String,
    /// `"07:00"`.
    pub end: String,
    /// The user's offset from UTC in minutes (-840 to 840); default 0.
    #[serde(default)]
    pub utc_offset_minutes: i32,
}

/// What a user chose about offline pushes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PushSettingsView {
    pub dnd: Option<DndView>,
    /// Conversations whose messages are not pushed to this user (live delivery is unchanged).
    pub muted_conversations: Vec<String>,
}

impl From<UserPushSettings> for PushSettingsView {
    fn from(s: UserPushSettings) -> Self {
        Self {
            dnd: s.dnd.map(|d| DndView {
                start: DoNotDisturb::clock(d.start_minute),
                end: DoNotDisturb::clock(d.end_minute),
                utc_offset_minutes: i32::from(d.utc_offset_minutes),
            }),
            muted_conversations: s.muted.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A change of a user's push settings; each part absent keeps what is set.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePushSettings {
    /// New do-not-disturb hours; `null` clears them.
    #[serde(default, with = "super::users::double_option")]
    #[schema(value_type = Option<DndView>)]
    pub dnd: Option<Option<DndView>>,
    /// Conversations to mute (at most 100).
    #[serde(default)]
    pub mute: Vec<String>,
    /// Conversations to unmute (at most 100); applied after `mute`.
    #[serde(default)]
    pub unmute: Vec<String>,
}

impl UpdatePushSettings {
    /// The patch the platform applies (shared with the WebSocket and gRPC doors).
    pub fn parse(self) -> Result<UserPushSettingsPatch, ApiError> {
        let dnd = match self.dnd {
            None => None,
            Some(None) => Some(None),
            Some(Some(d)) => Some(Some(
                DoNotDisturb::parse(&d.start, &d.end, d.utc_offset_minutes).map_err(|e| ApiError::invalid(e.0))?,
            )),
        };
        let ids = |list: Vec<String>| -> Result<Vec<ConversationId>, ApiError> {
            list.iter()
                .map(|c| ConversationId::parse(c).map_err(|e| ApiError::invalid(e.to_string())))
                .collect()
        };
        Ok(UserPushSettingsPatch {
            dnd,
            mute: ids(self.mute)?,
            unmute: ids(self.unmute)?,
        })
    }
}

/// A user's do-not-disturb hours and muted conversations.
#[utoipa::path(get, path = "/v1/users/{user_id}/push-settings", operation_id = "get_push_settings", tag = "push",
    params(("user_id" = String, Path)),
    responses((status = 200, body = PushSettingsView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get_settings(
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<PushSettingsView>, ApiError> {
    Ok(Json(user_settings(&st, &req.app, &user).await?))
}

/// A user's push settings (REST and gRPC).
pub(crate) async fn user_settings(st: &ApiState, app: &App, user: &str) -> Result<PushSettingsView, ApiError> {
    let user = parse_user(user)?;
    Ok(push::push_settings(&st.pipeline, app, &user).await?.into())
}

/// Changes a user's do-not-disturb hours and mutes or unmutes conversations, all or nothing;
/// answers the settings as they now are.
#[utoipa::path(patch, path = "/v1/users/{user_id}/push-settings", operation_id = "update_push_settings", tag = "push",
    params(("user_id" = String, Path)), request_body = UpdatePushSettings,
    responses((status = 200, body = PushSettingsView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn update_settings(
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    req: Signed<UpdatePushSettings>,
) -> Result<Json<PushSettingsView>, ApiError> {
    Ok(Json(change_user_settings(&st, &req.app, &user, req.body).await?))
}

/// Changes a user's push settings (REST and gRPC).
pub(crate) async fn change_user_settings(
    st: &ApiState,
    app: &App,
    user: &str,
    body: UpdatePushSettings,
) -> Result<PushSettingsView, ApiError> {
    let user = parse_user(user)?;
    let patch = body.parse()?;
    Ok(push::update_push_settings(&st.pipeline, app, &user, &patch)
        .await?
        .into())
}
