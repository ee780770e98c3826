//! gRPC `Push`: devices, credentials, the delivery log, test pushes and a user's mute and
//! do-not-disturb settings, the twins of the REST operations under `/v1/users/{user_id}/devices`,
//! `/v1/users/{user_id}/push-settings` and `/v1/push/...`. Each method builds the shared
//! request and calls the same operation the REST handler does (`crate::push_ops`), so both
//! doors check, store and answer alike without either calling the other.

use tern_platform::proto::server_v1 as pb;
use tonic::Request;

use super::convert;
use super::services::{app, ok, Answer, Server};
use crate::error::ApiError;
use crate::push_ops::{
    self as ops, CredentialView, DeviceView, DndView, PushLogQuery, PushLogView, PushSettingsView, RegisterDevice,
    SetApnsCredentials, UpdateDevice, UpdatePushSettings,
};

fn device(d: DeviceView) -> pb::PushDevice {
    pb::PushDevice {
        device_id: d.device_id,
        user_id: d.user_id,
        provider: d.provider,
        token: d.token,
        bundle_id: d.bundle_id,
        environment: d.environment,
        locale: d.locale,
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

fn credential(c: CredentialView) -> pb::PushCredential {
    pb::PushCredential {
        provider: c.provider,
        summary: convert::json_to_struct(c.summary),
        updated_at: c.updated_at,
    }
}

fn log_entry(l: PushLogView) -> pb::PushLogEntry {
    pb::PushLogEntry {
        id: l.id,
        at: l.at,
        user_id: l.user_id,
        device_id: l.device_id,
        msg_id: l.msg_id,
        provider: l.provider,
        outcome: l.outcome,
        http_status: u32::from(l.http_status),
        reason: l.reason,
        provider_id: l.provider_id,
        latency_ms: l.latency_ms,
        attempt: l.attempt,
    }
}

fn settings(s: PushSettingsView) -> pb::PushSettings {
    pb::PushSettings {
        dnd: s.dnd.map(|d| pb::DoNotDisturb {
            start: d.start,
            end: d.end,
            utc_offset_minutes: d.utc_offset_minutes,
        }),
        muted_conversations: s.muted_conversations,
    }
}

/// An empty filter field is no filter, as an absent query parameter is over REST.
fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[tonic::async_trait]
impl pb::push_server::Push for Server {
    async fn register_device(&self, req: Request<pb::RegisterDeviceRequest>) -> Answer<pb::PushDevice> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = RegisterDevice {
            provider: r.provider,
            token: r.token,
            bundle_id: r.bundle_id,
            environment: r.environment,
            locale: r.locale,
        };
        ok(ops::register_device(&self.state, &app, &r.user_id, body).await, device)
    }

    async fn list_devices(&self, req: Request<pb::UserRequest>) -> Answer<pb::DevicesResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(ops::list_devices(&self.state, &app, &r.user_id).await, |a| {
            pb::DevicesResponse {
                devices: a.devices.into_iter().map(device).collect(),
            }
        })
    }

    async fn update_device(&self, req: Request<pb::UpdateDeviceRequest>) -> Answer<pb::PushDevice> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = UpdateDevice {
            token: r.token,
            environment: r.environment,
            locale: r.locale,
        };
        ok(
            ops::update_device(&self.state, &app, &r.user_id, &r.device_id, body).await,
            device,
        )
    }

    async fn remove_device(&self, req: Request<pb::DeviceRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            ops::remove_device(&self.state, &app, &r.user_id, &r.device_id).await,
            |()| pb::Empty {},
        )
    }

    async fn test_push(&self, req: Request<pb::DeviceRequest>) -> Answer<pb::PushLogEntry> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            ops::send_test_push(&self.state, &app, &r.user_id, &r.device_id).await,
            log_entry,
        )
    }

    async fn list_credentials(&self, req: Request<pb::Empty>) -> Answer<pb::PushCredentialsResponse> {
        let app = app(&req)?;
        ok(ops::list_credentials(&self.state, &app).await, |a| {
            pb::PushCredentialsResponse {
                credentials: a.credentials.into_iter().map(credential).collect(),
            }
        })
    }

    async fn set_apns_credentials(&self, req: Request<pb::SetApnsCredentialsRequest>) -> Answer<pb::PushCredential> {
        let app = app(&req)?;
        let r = req.into_inner();
        let body = SetApnsCredentials {
            key_id: r.key_id,
            team_id: r.team_id,
            bundle_id: r.bundle_id,
            private_key: r.private_key,
        };
        ok(ops::set_apns_credentials(&self.state, &app, body).await, credential)
    }

    async fn set_fcm_credentials(&self, req: Request<pb::SetFcmCredentialsRequest>) -> Answer<pb::PushCredential> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(
            ops::set_fcm_credentials(&self.state, &app, &r.service_account_json).await,
            credential,
        )
    }

    async fn delete_credentials(&self, req: Request<pb::DeletePushCredentialsRequest>) -> Answer<pb::Empty> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(ops::remove_credentials(&self.state, &app, &r.provider).await, |()| {
            pb::Empty {}
        })
    }

    async fn log(&self, req: Request<pb::PushLogRequest>) -> Answer<pb::PushLogResponse> {
        let app = app(&req)?;
        let r = req.into_inner();
        let q = PushLogQuery {
            user_id: non_empty(r.user_id),
            device_id: non_empty(r.device_id),
            msg_id: non_empty(r.msg_id),
            cursor: non_empty(r.cursor),
            limit: (r.limit > 0).then_some(r.limit),
        };
        ok(ops::read_log(&self.state, &app, q).await, |a| pb::PushLogResponse {
            entries: a.entries.into_iter().map(log_entry).collect(),
            next_cursor: a.next_cursor.unwrap_or_default(),
        })
    }

    async fn get_settings(&self, req: Request<pb::UserRequest>) -> Answer<pb::PushSettings> {
        let app = app(&req)?;
        let r = req.into_inner();
        ok(ops::user_settings(&self.state, &app, &r.user_id).await, settings)
    }

    async fn update_settings(&self, req: Request<pb::UpdatePushSettingsRequest>) -> Answer<pb::PushSettings> {
        let app = app(&req)?;
        let r = req.into_inner();
        let dnd = match (r.dnd, r.clear_dnd) {
            (Some(_), true) => {
                return ok(
                    Err(ApiError::invalid("set either dnd or clear_dnd, not both")),
                    settings,
                )
            }
            (Some(d), false) => Some(Some(DndView {
                start: d.start,
                end: d.end,
                utc_offset_minutes: d.utc_offset_minutes,
            })),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let body = UpdatePushSettings {
            dnd,
            mute: r.mute,
            unmute: r.unmute,
        };
        ok(
            ops::change_user_settings(&self.state, &app, &r.user_id, body).await,
            settings,
        )
    }
}
