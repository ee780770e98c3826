//! The offline push commands of a session (client.proto 130-139): the phone registers,
//! rotates and removes its push token, and the user reads and changes their mute and
//! do-not-disturb settings, always as the connected user. The rules are
//! `tern_platform::push`, the same the server API applies.

use tern_platform::delivery::{DeliveryError, Pipeline};
use tern_platform::domain::{
    App, DoNotDisturb, NewPushDevice, PushDevice, PushDevicePatch, UserPushSettings, UserPushSettingsPatch,
};
use tern_platform::ids::{ConversationId, DeviceId, UserId};
use tern_platform::proto::v1 as pb;
use tern_platform::push;

use pb::server_frame::Body;

fn device(d: PushDevice) -> Body {
    Body::PushDevice(pb::PushDeviceInfo {
        device_id: d.id.into_string(),
        provider: d.provider.as_str().to_owned(),
        token: d.token.as_str().to_owned(),
        bundle_id: d.topic,
        environment: d.environment.as_str().to_owned(),
        locale: d.locale,
        created_at: d.created_at,
        updated_at: d.updated_at,
    })
}

fn settings(s: UserPushSettings) -> Body {
    Body::PushSettings(pb::PushSettingsInfo {
        dnd: s.dnd.map(|d| pb::DoNotDisturbHours {
            start: DoNotDisturb::clock(d.start_minute),
            end: DoNotDisturb::clock(d.end_minute),
            utc_offset_minutes: i32::from(d.utc_offset_minutes),
        }),
        muted_conversations: s.muted.iter().map(ToString::to_string).collect(),
    })
}

/// A device id that does not parse is no device of this user.
fn device_id(id: &str) -> Result<DeviceId, DeliveryError> {
    DeviceId::parse(id).map_err(|_| DeliveryError::NotFound("device"))
}

fn conversations(list: &[String]) -> Result<Vec<ConversationId>, DeliveryError> {
    list.iter()
        .map(|c| ConversationId::parse(c).map_err(|e| DeliveryError::InvalidArgument(e.to_string())))
        .collect()
}

pub(crate) async fn register(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    r: pb::RegisterPushToken,
) -> Result<Body, DeliveryError> {
    let new = NewPushDevice::parse(
        user.clone(),
        &r.provider,
        &r.token,
        r.bundle_id.as_deref(),
        r.environment.as_deref(),
        r.locale.as_deref(),
    )?;
    Ok(device(push::register_device(p, app, &new).await?))
}

pub(crate) async fn update(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    u: pb::UpdatePushToken,
) -> Result<Body, DeliveryError> {
    let id = device_id(&u.device_id)?;
    let patch = PushDevicePatch::parse(u.token.as_deref(), u.environment.as_deref(), u.locale.as_deref())?;
    Ok(device(push::update_device(p, app, user, &id, &patch).await?))
}

pub(crate) async fn remove(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    r: pb::RemovePushToken,
) -> Result<Body, DeliveryError> {
    let id = device_id(&r.device_id)?;
    push::remove_device(p, app, user, &id).await?;
    Ok(Body::Ok(pb::Ok {}))
}

pub(crate) async fn get_settings(p: &Pipeline, app: &App, user: &UserId) -> Result<Body, DeliveryError> {
    Ok(settings(push::push_settings(p, app, user).await?))
}

pub(crate) async fn update_settings(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    u: pb::UpdatePushSettings,
) -> Result<Body, DeliveryError> {
    let dnd = match (u.dnd, u.clear_dnd) {
        (Some(_), true) => {
            return Err(DeliveryError::InvalidArgument(
                "set either dnd or clear_dnd, not both".into(),
            ))
        }
        (Some(d), false) => Some(Some(DoNotDisturb::parse(&d.start, &d.end, d.utc_offset_minutes)?)),
        (None, true) => Some(None),
        (None, false) => None,
    };
    let patch = UserPushSettingsPatch {
        dnd,
        mute: conversations(&u.mute)?,
        unmute: conversations(&u.unmute)?,
    };
    Ok(settings(push::update_push_settings(p, app, user, &patch).await?))
}
