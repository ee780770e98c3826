//! Rooms on one gateway node: who among this node's sessions is in which room, the room
//! commands of a session (client.proto numbers 90-109, plus `join_room` and `leave_room`),
//! and the hand-off of room events from the bus.
//!
//! The pipeline publishes a room message once to each node holding members of the room
//! (`Presence::room_nodes`); here it is handed to every local member's queue. Membership
//! is this map and presence, nothing stored: it ends with the connection.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tern_platform::bus::Push;
use tern_platform::delivery::DeliveryError;
use tern_platform::domain::{App, Room};
use tern_platform::ids::{AppId, ConversationId, RoomId, UserId};
use tern_platform::proto::v1 as pb;
use tern_platform::rooms;

use crate::codec::SharedFrame;
use crate::convert;
use crate::gateway::{offer, Gateway};
use crate::outbound::Outbound;

use pb::server_frame::Body;

/// A session in a room: where its frames go.
pub(crate) struct Member {
    pub user: UserId,
    pub out: Arc<Outbound>,
}

#[derive(Default)]
struct Inner {
    rooms: HashMap<(AppId, RoomId), HashMap<u64, Member>>,
    /// session → the rooms it is in (for its close).
    by_session: HashMap<u64, (AppId, HashSet<RoomId>)>,
}

/// This node's room members.
#[derive(Default)]
pub(crate) struct LocalRooms {
    inner: Mutex<Inner>,
}

impl LocalRooms {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every operation leaves both maps consistent, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts the session in the room; false if it was in already.
    fn add(&self, app: &AppId, room: &RoomId, session: u64, member: Member) -> bool {
        let mut inner = self.lock();
        let added = inner
            .rooms
            .entry((app.clone(), room.clone()))
            .or_default()
            .insert(session, member)
            .is_none();
        inner
            .by_session
            .entry(session)
            .or_insert_with(|| (app.clone(), HashSet::new()))
            .1
            .insert(room.clone());
        added
    }

    /// Takes the session out of the room; false if it was not in it.
    fn remove(&self, app: &AppId, room: &RoomId, session: u64) -> bool {
        let mut inner = self.lock();
        remove_member(&mut inner, app, room, session).is_some()
    }

    /// Whether the session is in the room now.
    pub(crate) fn contains(&self, app: &AppId, room: &RoomId, session: u64) -> bool {
        self.lock()
            .rooms
            .get(&(app.clone(), room.clone()))
            .is_some_and(|m| m.contains_key(&session))
    }

    /// Takes the session out of every room (it is closing); returns those rooms.
    pub(crate) fn leave_all(&self, session: u64) -> Vec<RoomId> {
        let mut inner = self.lock();
        let Some((app, rooms)) = inner.by_session.remove(&session) else {
            return Vec::new();
        };
        for room in &rooms {
            let key = (app.clone(), room.clone());
            if let Some(members) = inner.rooms.get_mut(&key) {
                members.remove(&session);
                if members.is_empty() {
                    inner.rooms.remove(&key);
                }
            }
        }
        rooms.into_iter().collect()
    }

    /// Hands a room event from the bus to this node's members of the room: one frame,
    /// queued to each. `RoomLeft` first takes the sessions it names out of the room, then
    /// tells them.
    pub(crate) fn route(&self, app: &AppId, room: &RoomId, push: &Push, limit: usize) {
        let Some(frame) = convert::push_frame(push) else {
            return;
        };
        let frame = Arc::new(SharedFrame::new(frame));
        let mut inner = self.lock();
        if let Push::RoomLeft { user, .. } = push {
            let leaving: Vec<u64> = inner
                .rooms
                .get(&(app.clone(), room.clone()))
                .map(|m| {
                    m.iter()
                        .filter(|(_, member)| user.as_ref().is_none_or(|u| *u == member.user))
                        .map(|(id, _)| *id)
                        .collect()
                })
                .unwrap_or_default();
            for session in leaving {
                if let Some(member) = remove_member(&mut inner, app, room, session) {
                    offer(&member.out, &frame, limit);
                }
            }
            return;
        }
        if let Some(members) = inner.rooms.get(&(app.clone(), room.clone())) {
            metrics::counter!("tern_gateway_room_deliveries_total").increment(members.len() as u64);
            for member in members.values() {
                offer(&member.out, &frame, limit);
            }
        }
    }
}

fn remove_member(inner: &mut Inner, app: &AppId, room: &RoomId, session: u64) -> Option<Member> {
    let key = (app.clone(), room.clone());
    let members = inner.rooms.get_mut(&key)?;
    let member = members.remove(&session)?;
    if members.is_empty() {
        inner.rooms.remove(&key);
    }
    if let Some((_, rooms)) = inner.by_session.get_mut(&session) {
        rooms.remove(room);
        if rooms.is_empty() {
            inner.by_session.remove(&session);
        }
    }
    Some(member)
}

fn unavailable(e: tern_platform::presence::PresenceError) -> DeliveryError {
    DeliveryError::Unavailable(e.to_string())
}

pub(crate) fn room_info(room: &Room, member_count: u64) -> pb::RoomInfo {
    pb::RoomInfo {
        room_id: room.id.to_string(),
        name: room.name.clone(),
        metadata: convert::json_to_struct(&room.metadata),
        member_count: i64::try_from(member_count).unwrap_or(i64::MAX),
        created_at: room.created_at,
        updated_at: room.updated_at,
    }
}

/// `join_room`: the room (created now if the app wants that), this session in it from now
/// on, and the backlog. The session is registered before the backlog is read, so a message
/// sent meanwhile is in the backlog, or pushed, or both (the client shows it once by seq).
pub(crate) async fn join(
    gw: &Gateway,
    app: &App,
    user: &UserId,
    session: u64,
    j: pb::JoinRoom,
) -> Result<Body, DeliveryError> {
    let id = RoomId::parse(&j.room_id)?;
    let p = &gw.pipeline;
    let room = rooms::open_for_join(p, app, &id).await?;
    let Some(out) = gw.session_outbox(session) else {
        return Err(DeliveryError::Unavailable("the connection is closing".into()));
    };
    let member = Member {
        user: user.clone(),
        out,
    };
    if gw.rooms.add(&app.id, &id, session, member) {
        let presence = p.presence();
        if let Err(e) = presence
            .room_joined(&app.id, &id, user, &gw.config.node_id, session)
            .await
        {
            gw.rooms.remove(&app.id, &id, session);
            return Err(unavailable(e));
        }
    }
    let (recent, last_seq) = rooms::backlog(p, app, &id).await?;
    let member_count = p
        .presence()
        .room_member_count(&app.id, &id)
        .await
        .map_err(unavailable)?;
    Ok(Body::RoomJoined(pb::RoomJoined {
        room_id: id.to_string(),
        conversation_id: ConversationId::Room(id.clone()).to_string(),
        recent: recent.iter().map(convert::message).collect(),
        member_count: i64::try_from(member_count).unwrap_or(i64::MAX),
        room: Some(room_info(&room, member_count)),
        last_seq,
    }))
}

/// `leave_room`: nothing more from the room reaches this session, from now on.
pub(crate) async fn leave(gw: &Gateway, app: &App, session: u64, l: pb::LeaveRoom) -> Result<Body, DeliveryError> {
    let id = RoomId::parse(&l.room_id)?;
    if gw.rooms.remove(&app.id, &id, session) {
        gw.pipeline
            .presence()
            .room_left(&app.id, &id, &gw.config.node_id, session)
            .await
            .map_err(unavailable)?;
    }
    Ok(Body::Ok(pb::Ok {}))
}

/// `get_room`: a room's profile and member count (the caller need not be in it).
pub(crate) async fn get(gw: &Gateway, app: &App, g: pb::GetRoom) -> Result<Body, DeliveryError> {
    let id = RoomId::parse(&g.room_id)?;
    let d = rooms::info(&gw.pipeline, app, &id).await?;
    Ok(Body::Room(room_info(&d.room, d.member_count)))
}
