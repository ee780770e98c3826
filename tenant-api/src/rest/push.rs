//! Offline push through the server API (docs/push.md): a user's devices
//! (`/v1/users/{user_id}/devices`), the app's APNs and FCM credentials
//! (`/v1/push/credentials`), the delivery log and test pushes. The operations are
//! `tern_platform::push`, shared with the WebSocket gateway.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::{NewPushDevice, PushDevice, PushDevicePatch, PushProvider};
use tern_platform::ids::DeviceId;
use tern_platform::push::{self, ApnsCredentials, CredentialSummary, FcmCredentials, ProviderCredentials};
use utoipa::ToSchema;

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
    let b = req.body;
    let device = NewPushDevice::parse(
        parse_user(&user)?,
        &b.provider,
        &b.token,
        b.bundle_id.as_deref(),
        b.environment.as_deref(),
        b.locale.as_deref(),
    )
    .map_err(|e| ApiError::invalid(e.0))?;
    Ok(Json(
        push::register_device(&st.pipeline, &req.app, &device).await?.into(),
    ))
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
    let user = parse_user(&user)?;
    let devices = push::devices(&st.pipeline, &req.app, &user).await?;
    Ok(Json(DevicesAnswer {
        devices: devices.into_iter().map(Into::into).collect(),
    }))
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
    let user = parse_user(&user)?;
    let device = parse_device(&device)?;
    let b = req.body;
    let patch = PushDevicePatch::parse(b.token.as_deref(), b.environment.as_deref(), b.locale.as_deref())
        .map_err(|e| ApiError::invalid(e.0))?;
    Ok(Json(
        push::update_device(&st.pipeline, &req.app, &user, &device, &patch)
            .await?
            .into(),
    ))
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
    let user = parse_user(&user)?;
    let device = parse_device(&device)?;
    push::remove_device(&st.pipeline, &req.app, &user, &device).await?;
    Ok(Json(Done { ok: true }))
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
    let list = push::credential_summaries(&st.pipeline, &req.app).await?;
    Ok(Json(CredentialsAnswer {
        credentials: list.into_iter().map(Into::into).collect(),
    }))
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
    let b = req.body;
    let creds = ProviderCredentials::Apns(ApnsCredentials {
        key_id: b.key_id,
        team_id: b.team_id,
        bundle_id: b.bundle_id,
        private_key: b.private_key,
    });
    Ok(Json(
        push::set_credentials(&st.pipeline, &st.secrets, &req.app, &creds)
            .await?
            .into(),
    ))
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
    let creds =
        ProviderCredentials::Fcm(FcmCredentials::parse(&text).map_err(tern_platform::delivery::DeliveryError::from)?);
    Ok(Json(
        push::set_credentials(&st.pipeline, &st.secrets, &req.app, &creds)
            .await?
            .into(),
    ))
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
    let provider = PushProvider::parse(&provider).map_err(|e| ApiError::invalid(e.0))?;
    push::delete_credentials(&st.pipeline, &req.app, provider).await?;
    Ok(Json(Done { ok: true }))
}

/// `DELETE /v1/push/credentials/apns` (the path is also `PUT`'s, so it is routed on its own).
pub async fn delete_apns(st: State<ApiState>, req: Signed<()>) -> Result<Json<Done>, ApiError> {
    delete_credentials(st, ApiPath("apns".into()), req).await
}

/// `DELETE /v1/push/credentials/fcm`.
pub async fn delete_fcm(st: State<ApiState>, req: Signed<()>) -> Result<Json<Done>, ApiError> {
    delete_credentials(st, ApiPath("fcm".into()), req).await
}
