//! The push operations of the server API that both doors (REST and gRPC) share: a
//! request's parts parsed into platform types, one call into `tern_platform::push`, and the
//! views both doors render (REST as JSON, gRPC converted field by field). The REST handlers
//! are in `rest::push`, the gRPC twins in `grpc::push`; neither calls the other.

use serde::{Deserialize, Serialize};
use tern_platform::domain::App;
use tern_platform::domain::{
    DoNotDisturb, NewPushDevice, PushDevice, PushDevicePatch, PushLogEntry, PushLogFilter, PushProvider,
    UserPushSettings, UserPushSettingsPatch,
};
use tern_platform::ids::{ConversationId, DeviceId, MsgId};
use tern_platform::push::{self, ApnsCredentials, CredentialSummary, FcmCredentials, ProviderCredentials};
use tern_platform::service::paging::{decode_cursor, encode_cursor};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::input::user as parse_user;
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

pub(crate) fn parse_device(id: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(id).map_err(|e| ApiError::invalid(e.to_string()))
}

/// Registers a device.
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

/// A user's devices.
pub(crate) async fn list_devices(st: &ApiState, app: &App, user: &str) -> Result<DevicesAnswer, ApiError> {
    let user = parse_user(user)?;
    let devices = push::devices(&st.pipeline, app, &user).await?;
    Ok(DevicesAnswer {
        devices: devices.into_iter().map(Into::into).collect(),
    })
}

/// Changes a device.
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

/// Removes a device.
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

/// The app's credentials by provider.
pub(crate) async fn list_credentials(st: &ApiState, app: &App) -> Result<CredentialsAnswer, ApiError> {
    let list = push::credential_summaries(&st.pipeline, app).await?;
    Ok(CredentialsAnswer {
        credentials: list.into_iter().map(Into::into).collect(),
    })
}

/// Sets the APNs credentials.
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

/// Sets the FCM credentials from the service account's JSON text.
pub(crate) async fn set_fcm_credentials(st: &ApiState, app: &App, text: &str) -> Result<CredentialView, ApiError> {
    let creds =
        ProviderCredentials::Fcm(FcmCredentials::parse(text).map_err(tern_platform::delivery::DeliveryError::from)?);
    Ok(push::set_credentials(&st.pipeline, &st.secrets, app, &creds)
        .await?
        .into())
}

/// Removes the credentials of a provider.
pub(crate) async fn remove_credentials(st: &ApiState, app: &App, provider: &str) -> Result<(), ApiError> {
    let provider = PushProvider::parse(provider).map_err(|e| ApiError::invalid(e.0))?;
    Ok(push::delete_credentials(&st.pipeline, app, provider).await?)
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

/// A page of the push log.
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

/// Sends a test push.
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
    #[serde(default, with = "crate::input::double_option")]
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

/// A user's push settings.
pub(crate) async fn user_settings(st: &ApiState, app: &App, user: &str) -> Result<PushSettingsView, ApiError> {
    let user = parse_user(user)?;
    Ok(push::push_settings(&st.pipeline, app, &user).await?.into())
}

/// Changes a user's push settings.
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
