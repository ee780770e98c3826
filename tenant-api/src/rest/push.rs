//! Offline push through the server API (docs/push.md): a user's devices
//! (`/v1/users/{user_id}/devices`), the app's APNs and FCM credentials
//! (`/v1/push/credentials`), the delivery log, test pushes and a user's push settings. The
//! handlers read the request and call the operations in `crate::push_ops`, which the gRPC
//! twins call too.

use axum::extract::State;
use axum::Json;

use super::users::Done;
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::push_ops::*;
use crate::state::ApiState;

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

/// The app's push credentials, by provider (never the keys).
#[utoipa::path(get, path = "/v1/push/credentials", operation_id = "list_push_credentials", tag = "push",
    responses((status = 200, body = CredentialsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn credentials(State(st): State<ApiState>, req: Signed<()>) -> Result<Json<CredentialsAnswer>, ApiError> {
    Ok(Json(list_credentials(&st, &req.app).await?))
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

/// `DELETE /v1/push/credentials/apns` (the path is also `PUT`'s, so it is routed on its own).
pub async fn delete_apns(st: State<ApiState>, req: Signed<()>) -> Result<Json<Done>, ApiError> {
    delete_credentials(st, ApiPath("apns".into()), req).await
}

/// `DELETE /v1/push/credentials/fcm`.
pub async fn delete_fcm(st: State<ApiState>, req: Signed<()>) -> Result<Json<Done>, ApiError> {
    delete_credentials(st, ApiPath("fcm".into()), req).await
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
