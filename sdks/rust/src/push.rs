//! Offline push (docs/push.md). On the real-time `Client`, the phone registers, rotates and
//! removes its own push token and the user sets their mute and do-not-disturb hours
//! (client.proto 130-139). On the `ServerClient`, the same for any user plus the delivery
//! log and test pushes, over REST.

use serde_json::{json, Value};

use crate::client::{unexpected, Client};
use crate::proto as pb;
use crate::server::{encode_segment, ServerClient, ServerError};
use crate::types::ClientError;

/// A device to register for pushes: `provider` is `apns` or `fcm`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushToken {
    pub provider: String,
    /// APNs: the device token in hex. FCM: the registration token.
    pub token: String,
    /// APNs only: the app's bundle id, when it differs from the credentials'.
    pub bundle_id: Option<String>,
    /// `sandbox` or `production` (the default).
    pub environment: Option<String>,
    pub locale: Option<String>,
}

/// Do-not-disturb hours: local times of day (`"22:00"`, `"07:00"`) and the user's offset
/// from UTC in minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DndHours {
    pub start: String,
    pub end: String,
    pub utc_offset_minutes: i32,
}

/// A change of the connected user's push settings; empty parts change nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushSettingsChange {
    /// New do-not-disturb hours.
    pub dnd: Option<DndHours>,
    /// Removes the do-not-disturb hours.
    pub clear_dnd: bool,
    pub mute: Vec<String>,
    /// Applied after `mute`.
    pub unmute: Vec<String>,
}

impl Client {
    /// Registers this phone's push token for the connected user (`register_push_token`); the
    /// same token again keeps its device id.
    pub async fn register_push_token(&self, t: &PushToken) -> Result<pb::PushDeviceInfo, ClientError> {
        let cmd = pb::client_frame::Command::RegisterPushToken(pb::RegisterPushToken {
            provider: t.provider.clone(),
            token: t.token.clone(),
            bundle_id: t.bundle_id.clone(),
            environment: t.environment.clone(),
            locale: t.locale.clone(),
        });
        match self.request(cmd).await? {
            pb::server_frame::Body::PushDevice(d) => Ok(d),
            _ => Err(unexpected()),
        }
    }

    /// A rotated token, or a new environment or locale (`Some("")` clears the locale), for a
    /// device of the connected user.
    pub async fn update_push_token(
        &self,
        device_id: &str,
        token: Option<&str>,
        environment: Option<&str>,
        locale: Option<&str>,
    ) -> Result<pb::PushDeviceInfo, ClientError> {
        let cmd = pb::client_frame::Command::UpdatePushToken(pb::UpdatePushToken {
            device_id: device_id.to_owned(),
            token: token.map(str::to_owned),
            environment: environment.map(str::to_owned),
            locale: locale.map(str::to_owned),
        });
        match self.request(cmd).await? {
            pb::server_frame::Body::PushDevice(d) => Ok(d),
            _ => Err(unexpected()),
        }
    }

    /// Removes a device of the connected user (on logout): no more pushes reach it.
    pub async fn remove_push_token(&self, device_id: &str) -> Result<(), ClientError> {
        let cmd = pb::client_frame::Command::RemovePushToken(pb::RemovePushToken {
            device_id: device_id.to_owned(),
        });
        match self.request(cmd).await? {
            pb::server_frame::Body::Ok(_) => Ok(()),
            _ => Err(unexpected()),
        }
    }

    /// The connected user's do-not-disturb hours and muted conversations.
    pub async fn push_settings(&self) -> Result<pb::PushSettingsInfo, ClientError> {
        let cmd = pb::client_frame::Command::GetPushSettings(pb::GetPushSettings {});
        match self.request(cmd).await? {
            pb::server_frame::Body::PushSettings(s) => Ok(s),
            _ => Err(unexpected()),
        }
    }

    /// Changes the connected user's push settings, all or nothing, and answers them as
    /// they now are.
    pub async fn update_push_settings(&self, c: &PushSettingsChange) -> Result<pb::PushSettingsInfo, ClientError> {
        let cmd = pb::client_frame::Command::UpdatePushSettings(pb::UpdatePushSettings {
            dnd: c.dnd.as_ref().map(|d| pb::DoNotDisturbHours {
                start: d.start.clone(),
                end: d.end.clone(),
                utc_offset_minutes: d.utc_offset_minutes,
            }),
            clear_dnd: c.clear_dnd,
            mute: c.mute.clone(),
            unmute: c.unmute.clone(),
        });
        match self.request(cmd).await? {
            pb::server_frame::Body::PushSettings(s) => Ok(s),
            _ => Err(unexpected()),
        }
    }
}

impl ServerClient {
    /// Registers a device of `user` (`POST /v1/users/{user}/devices`).
    pub async fn register_device(&self, user: &str, t: &PushToken) -> Result<Value, ServerError> {
        let mut body = json!({"provider": t.provider, "token": t.token});
        for (k, v) in [
            ("bundle_id", &t.bundle_id),
            ("environment", &t.environment),
            ("locale", &t.locale),
        ] {
            if let Some(v) = v {
                body[k] = json!(v);
            }
        }
        let path = format!("/v1/users/{}/devices", encode_segment(user));
        self.request("POST", &path, Some(&body)).await
    }

    /// `user`'s devices (`{"devices": [...]}`).
    pub async fn devices(&self, user: &str) -> Result<Value, ServerError> {
        let path = format!("/v1/users/{}/devices", encode_segment(user));
        self.request("GET", &path, None).await
    }

    /// Removes a device of `user`.
    pub async fn remove_device(&self, user: &str, device_id: &str) -> Result<Value, ServerError> {
        let path = format!(
            "/v1/users/{}/devices/{}",
            encode_segment(user),
            encode_segment(device_id)
        );
        self.request("DELETE", &path, None).await
    }

    /// Sends a test notification to one device and answers with its log line.
    pub async fn test_push(&self, user: &str, device_id: &str) -> Result<Value, ServerError> {
        let path = format!(
            "/v1/users/{}/devices/{}/test-push",
            encode_segment(user),
            encode_segment(device_id)
        );
        self.request("POST", &path, None).await
    }

    /// `user`'s do-not-disturb hours and muted conversations.
    pub async fn push_settings(&self, user: &str) -> Result<Value, ServerError> {
        let path = format!("/v1/users/{}/push-settings", encode_segment(user));
        self.request("GET", &path, None).await
    }

    /// Changes `user`'s push settings: a JSON object with any of `dnd` (`null` clears),
    /// `mute` and `unmute`.
    pub async fn update_push_settings(&self, user: &str, change: &Value) -> Result<Value, ServerError> {
        let path = format!("/v1/users/{}/push-settings", encode_segment(user));
        self.request("PATCH", &path, Some(change)).await
    }

    /// The delivery log, newest first, filtered by any of `user_id`, `device_id`, `msg_id`.
    pub async fn push_log(
        &self,
        user_id: Option<&str>,
        device_id: Option<&str>,
        msg_id: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Value, ServerError> {
        let mut query = Vec::new();
        for (k, v) in [
            ("user_id", user_id),
            ("device_id", device_id),
            ("msg_id", msg_id),
            ("cursor", cursor),
        ] {
            if let Some(v) = v {
                query.push(format!("{k}={}", encode_segment(v)));
            }
        }
        let path = if query.is_empty() {
            "/v1/push/log".to_owned()
        } else {
            format!("/v1/push/log?{}", query.join("&"))
        };
        self.request("GET", &path, None).await
    }
}
