//! Rooms (chatrooms and live rooms), for the server API and the gateway: one set of
//! operations so both doors give the same answers and codes.
//!
//! A room is a registry row (`Store::create_room` and friends); who is in it is kept by
//! `Presence` only while their connection lives; its messages are the conversation
//! `r:<id>`, stored with a seq like any other but delivered only to connected members, with
//! one bus event per node holding members (`Ctx::publish_to_room`), never one per member.
//!
//! What the pipeline asks before a message is stored in a room (`RoomGate`) is in
//! `context::room_gate`, below the pipeline; the operations here take the narrow `Ctx`.

use serde_json::json;

use crate::bus::{BusEvent, Push, Target};
use crate::context::Ctx;
use crate::delivery::DeliveryError;
use crate::domain::*;
use crate::ids::{AppId, ConversationId, RoomId, UserId};
use crate::rate_limits::RateKey;
use crate::store::{NewOutboxEvent, SeqRange, StoreError};
use crate::webhook;

pub use crate::context::room_gate::{RoomGate, ROOM_CACHE_TTL};

/// A room with how many are in it now.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomDetail {
    pub room: Room,
    /// Users in the room now, each counted once.
    pub member_count: u64,
}

/// Drops what this node remembers of a room, its send budget included, and tells the
/// other nodes to drop theirs.
fn forget_room(p: &Ctx, app: &AppId, room: &RoomId) {
    p.room_gate().forget(app, room);
    p.rate_limits().forget(&RateKey::RoomSends(app.clone(), room.clone()));
    p.announce(crate::bus::Invalidation::Room {
        app_id: app.clone(),
        room: room.clone(),
    });
}

async fn detail(p: &Ctx, app: &AppId, room: Room) -> Result<RoomDetail, DeliveryError> {
    let member_count = p
        .presence()
        .room_member_count(app, &room.id)
        .await
        .map_err(|e| DeliveryError::Unavailable(e.to_string()))?;
    Ok(RoomDetail { room, member_count })
}

fn room_event(app: &App, kind: &str, room: &Room, now: UnixMillis) -> Vec<NewOutboxEvent> {
    let data = json!({
        "room_id": room.id,
        "name": room.name,
        "metadata": room.metadata,
        "created_by": room.created_by.as_str(),
    });
    webhook::after_event(app, kind, data, now).into_iter().collect()
}

/// `room.created` for a room about to be stored.
fn created_event(app: &App, room: &NewRoom, now: UnixMillis) -> Vec<NewOutboxEvent> {
    let as_stored = Room {
        id: room.id.clone(),
        name: room.name.clone(),
        metadata: room.metadata.clone(),
        created_by: room.created_by,
        created_at: now,
        updated_at: now,
        last_seq: 0,
    };
    room_event(app, "room.created", &as_stored, now)
}

/// Creates a room from the server API. `name` defaults to the id, `metadata` to `{}`.
/// `conflict` if the app has a room with this id.
pub async fn create(
    p: &Ctx,
    app: &App,
    id: RoomId,
    name: Option<String>,
    metadata: Option<serde_json::Value>,
) -> Result<RoomDetail, DeliveryError> {
    let room = NewRoom {
        name: name.unwrap_or_else(|| id.to_string()),
        metadata: metadata.unwrap_or_else(|| json!({})),
        id,
        created_by: RoomOrigin::ServerApi,
    };
    validate_room_profile(&room.name, &room.metadata).map_err(DeliveryError::InvalidArgument)?;
    let now = now_ms();
    let events = created_event(app, &room, now);
    let stored = p
        .store()
        .create_room(&app.id, &room, now, &events)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => DeliveryError::Conflict(m),
            e => e.into(),
        })?;
    p.outbox_written(!events.is_empty());
    forget_room(p, &app.id, &stored.id);
    detail(p, &app.id, stored).await
}

/// One room with its member count, read fresh.
pub async fn get(p: &Ctx, app: &App, id: &RoomId) -> Result<RoomDetail, DeliveryError> {
    let room = p
        .store()
        .room(&app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("room"))?;
    detail(p, &app.id, room).await
}

/// The app's rooms by id, after `after`.
pub async fn list(p: &Ctx, app: &App, after: Option<&RoomId>, limit: u32) -> Result<Vec<RoomDetail>, DeliveryError> {
    let rooms = p.store().rooms(&app.id, after, limit).await?;
    let mut out = Vec::with_capacity(rooms.len());
    for r in rooms {
        out.push(detail(p, &app.id, r).await?);
    }
    Ok(out)
}

/// Changes a room's name and/or metadata (`None` keeps them).
pub async fn update(
    p: &Ctx,
    app: &App,
    id: &RoomId,
    name: Option<String>,
    metadata: Option<serde_json::Value>,
) -> Result<RoomDetail, DeliveryError> {
    let current = p
        .store()
        .room(&app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("room"))?;
    let next_name = name.as_deref().unwrap_or(&current.name);
    let next_metadata = metadata.as_ref().unwrap_or(&current.metadata);
    validate_room_profile(next_name, next_metadata).map_err(DeliveryError::InvalidArgument)?;
    let now = now_ms();
    let after = Room {
        name: next_name.to_owned(),
        metadata: next_metadata.clone(),
        updated_at: now,
        ..current
    };
    let events = room_event(app, "room.updated", &after, now);
    let stored = p
        .store()
        .update_room(&app.id, id, name.as_deref(), metadata.as_ref(), now, &events)
        .await?;
    p.outbox_written(!events.is_empty());
    forget_room(p, &app.id, id);
    detail(p, &app.id, stored).await
}

/// Tells the nodes holding the room's sessions that `user`'s sessions (or everyone's) leave
/// it, after presence forgot them, so a count read after this call is already right.
async fn send_away(p: &Ctx, app: &App, room: &RoomId, user: Option<&UserId>, reason: &str) -> u64 {
    let presence = p.presence();
    let nodes = match presence.room_nodes(&app.id, room).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "room lookup failed; members leave when they reconnect");
            return 0;
        }
    };
    let forgotten = match user {
        None => presence.room_closed(&app.id, room).await,
        Some(u) => presence.room_user_removed(&app.id, room, u).await,
    };
    let sessions = forgotten.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "presence unavailable while sending members away");
        0
    });
    for node in nodes {
        let ev = BusEvent {
            app_id: app.id.clone(),
            target: Target::Room { room: room.clone() },
            push: Push::RoomLeft {
                room: room.clone(),
                user: user.cloned(),
                reason: reason.to_owned(),
            },
        };
        if let Err(e) = p.bus().publish(&node, ev).await {
            tracing::warn!(error = %e, node, "bus publish failed; members leave when they reconnect");
        }
    }
    sessions
}

/// Dismisses a room: deletes it with its history and mutes, then every connected member is
/// told (`room_left`, reason `dismissed`) and leaves. Returns how many sessions were in it.
pub async fn dismiss(p: &Ctx, app: &App, id: &RoomId) -> Result<u64, DeliveryError> {
    let room = p
        .store()
        .room(&app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("room"))?;
    let now = now_ms();
    let events = room_event(app, "room.dismissed", &room, now);
    p.store().delete_room(&app.id, id, &events).await?;
    p.outbox_written(!events.is_empty());
    forget_room(p, &app.id, id);
    Ok(send_away(p, app, id, None, "dismissed").await)
}

/// Takes `user` out of the room now: each of their connections in it is told
/// (`room_left`, reason `removed`) and gets nothing more from it. They may join again.
/// Returns how many sessions left.
pub async fn remove_user(p: &Ctx, app: &App, id: &RoomId, user: &UserId) -> Result<u64, DeliveryError> {
    p.store()
        .room(&app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("room"))?;
    Ok(send_away(p, app, id, Some(user), "removed").await)
}

/// Mutes a user of the app in the room until `until`: they stay in it and read, and their
/// sends to it fail with `user_muted`.
pub async fn mute(
    p: &Ctx,
    app: &App,
    id: &RoomId,
    user: &UserId,
    until: UnixMillis,
) -> Result<RoomMute, DeliveryError> {
    p.store()
        .user(&app.id, user)
        .await?
        .ok_or(DeliveryError::NotFound("user"))?;
    let m = p.store().mute_in_room(&app.id, id, user, until, now_ms()).await?;
    p.room_gate().forget_mute(&app.id, id, user);
    p.announce(crate::bus::Invalidation::Room {
        app_id: app.id.clone(),
        room: id.clone(),
    });
    Ok(m)
}

/// Lifts a mute in the room. `not_found` if the user is not muted there.
pub async fn unmute(p: &Ctx, app: &App, id: &RoomId, user: &UserId) -> Result<(), DeliveryError> {
    p.store()
        .room(&app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("room"))?;
    p.store().unmute_in_room(&app.id, id, user).await?;
    p.room_gate().forget_mute(&app.id, id, user);
    p.announce(crate::bus::Invalidation::Room {
        app_id: app.id.clone(),
        room: id.clone(),
    });
    Ok(())
}

/// The mutes in force in the room, by user id.
pub async fn mutes(
    p: &Ctx,
    app: &App,
    id: &RoomId,
    after: Option<&UserId>,
    limit: u32,
) -> Result<Vec<RoomMute>, DeliveryError> {
    p.store()
        .room(&app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("room"))?;
    Ok(p.store().room_mutes(&app.id, id, now_ms(), after, limit).await?)
}

/// The room a user is about to join: as it is, or created now if it does not exist and the
/// app has `rooms_created_on_join` (else `not_found`).
pub async fn open_for_join(p: &Ctx, app: &App, id: &RoomId) -> Result<Room, DeliveryError> {
    if let Some(room) = p.room_gate().room(p, &app.id, id).await? {
        return Ok(room);
    }
    if !app.settings.rooms_created_on_join {
        return Err(DeliveryError::NotFound("room"));
    }
    let now = now_ms();
    let new = NewRoom {
        id: id.clone(),
        name: id.to_string(),
        metadata: json!({}),
        created_by: RoomOrigin::Join,
    };
    let events = created_event(app, &new, now);
    let (room, created) = p.store().room_or_create(&app.id, &new, now, &events).await?;
    p.outbox_written(created && !events.is_empty());
    forget_room(p, &app.id, id);
    Ok(room)
}

/// What a new member gets: the room's last `room_backlog` messages, oldest first, and the
/// seq of its newest message (0 when it has none).
pub async fn backlog(p: &Ctx, app: &App, id: &RoomId) -> Result<(Vec<Message>, i64), DeliveryError> {
    let conversation = ConversationId::Room(id.clone());
    let want = app.settings.room_backlog;
    // At least one, so the last seq is known even when the app wants no backlog.
    let mut recent = p
        .store()
        .messages(&app.id, &conversation, SeqRange::Before(i64::MAX), want.max(1))
        .await?;
    let last_seq = recent.last().map_or(0, |m| m.seq);
    if want == 0 {
        recent.clear();
    }
    Ok((recent, last_seq))
}

/// A room's profile and member count for a user of the app (the SDK's `get_room`).
pub async fn info(p: &Ctx, app: &App, id: &RoomId) -> Result<RoomDetail, DeliveryError> {
    let room = p
        .room_gate()
        .room(p, &app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("room"))?;
    detail(p, &app.id, room).await
}
