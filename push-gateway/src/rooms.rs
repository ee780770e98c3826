//! Rooms on one gateway node: who among this node's sessions is in which room, the room
//! commands of a session (client.proto numbers 90-109, plus `join_room` and `leave_room`),
//! and the hand-off of room events from the bus.
//!
//! The pipeline publishes a room message once to each node holding members of the room
//! (`Presence::room_nodes`); here it is handed to every local member's queue. Membership
//! is this map and presence, nothing stored: it ends with the connection.
//!
//! A big, busy room is paced: with at least `PACED_FROM` members on this node, its messages
//! reach them at most once per `flush_every` (`GatewayConfig::room_flush_interval`), several
//! at a time, so that each member's session writes them with one system call and its client
//! reads them with one, instead of one of each per message. A room quiet for `flush_every`
//! gets its next message at once; order is kept (what waits goes out before anything after
//! it, a `room_left` included). Smaller rooms are never paced.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tern_platform::bus::Push;
use tern_platform::delivery::DeliveryError;
use tern_platform::domain::{App, Room};
use tern_platform::ids::{AppId, ConversationId, RoomId, UserId};
use tern_platform::proto::v1 as pb;
use tern_platform::rooms;
use tokio::time::Instant;

use crate::codec::SharedFrame;
use crate::convert;
use crate::gateway::{offer, offer_all, Gateway};
use crate::outbound::Outbound;

use pb::server_frame::Body;

/// A session in a room: where its frames go.
pub(crate) struct Member {
    pub user: UserId,
    pub out: Arc<Outbound>,
}

type RoomKey = (AppId, RoomId);

#[derive(Default)]
struct Inner {
    rooms: HashMap<RoomKey, HashMap<u64, Member>>,
    /// session → the rooms it is in (for its close).
    by_session: HashMap<u64, (AppId, HashSet<RoomId>)>,
    /// Rooms that had a message within their last `flush_every`.
    pacing: HashMap<RoomKey, Pacing>,
}

/// A room's pacing on this node.
struct Pacing {
    /// When its members were last handed messages.
    last_flush: Instant,
    /// Messages waiting for the next flush, oldest first; a task is due to flush them.
    pending: Vec<Arc<SharedFrame>>,
}

/// Most messages a paced room holds back: past this it flushes at once (the size of one
/// session write batch).
const MAX_PENDING: usize = 64;

/// Members on this node from which a room is paced: below it, the system calls a message
/// costs are few enough to spend at once.
pub(crate) const PACED_FROM: usize = 500;

/// This node's room members.
#[derive(Default)]
pub(crate) struct LocalRooms {
    inner: Arc<Mutex<Inner>>,
}

impl LocalRooms {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every operation leaves both maps consistent, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every (app, room, user, session) of this node, to write to presence again.
    pub(crate) fn memberships(&self) -> Vec<(AppId, RoomId, UserId, u64)> {
        let inner = self.lock();
        inner
            .rooms
            .iter()
            .flat_map(|((app, room), members)| {
                members
                    .iter()
                    .map(move |(session, m)| (app.clone(), room.clone(), m.user.clone(), *session))
            })
            .collect()
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
                    inner.pacing.remove(&key);
                }
            }
        }
        rooms.into_iter().collect()
    }

    /// Hands a room event from the bus to this node's members of the room: one frame,
    /// queued to each, now or at the room's next flush (see the module docs; `flush_every`
    /// zero turns pacing off). `RoomLeft` first hands over what waits, then takes the
    /// sessions it names out of the room and tells them.
    pub(crate) fn route(&self, app: &AppId, room: &RoomId, push: &Push, limit: usize, flush_every: Duration) {
        let Some(frame) = convert::push_frame(push) else {
            return;
        };
        let frame = Arc::new(SharedFrame::new(frame));
        let key = (app.clone(), room.clone());
        let mut inner = self.lock();
        if let Push::RoomLeft { user, .. } = push {
            flush(&mut inner, &key, limit);
            let leaving: Vec<u64> = inner
                .rooms
                .get(&key)
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
        let members_here = inner.rooms.get(&key).map_or(0, HashMap::len);
        let waiting = inner.pacing.get(&key).is_some_and(|p| !p.pending.is_empty());
        if flush_every.is_zero() || (members_here < PACED_FROM && !waiting) {
            hand_over(&inner, &key, std::slice::from_ref(&frame), limit);
            return;
        }
        let now = Instant::now();
        let pacing = inner.pacing.entry(key.clone()).or_insert_with(|| Pacing {
            // A room seen for the first time is quiet: its first message goes out at once.
            last_flush: now.checked_sub(flush_every).unwrap_or(now),
            pending: Vec::new(),
        });
        if pacing.pending.is_empty() && now.duration_since(pacing.last_flush) >= flush_every {
            pacing.last_flush = now;
            hand_over(&inner, &key, std::slice::from_ref(&frame), limit);
            return;
        }
        pacing.pending.push(frame);
        match pacing.pending.len() {
            // The first to wait: a task hands them over when the room's interval is up.
            1 => {
                let due = pacing.last_flush + flush_every;
                let inner = self.inner.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(due).await;
                    let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
                    flush(&mut inner, &key, limit);
                });
            }
            n if n >= MAX_PENDING => flush(&mut inner, &key, limit),
            _ => {}
        }
    }
}

/// Queues `frames` to every local member of the room, in order.
fn hand_over(inner: &Inner, key: &RoomKey, frames: &[Arc<SharedFrame>], limit: usize) {
    if let Some(members) = inner.rooms.get(key) {
        metrics::counter!("tern_gateway_room_deliveries_total").increment((members.len() * frames.len()) as u64);
        for member in members.values() {
            offer_all(&member.out, frames, limit);
        }
    }
}

/// Hands over what waits in the room, if anything. (A due task finding nothing has been
/// overtaken by a `room_left` or a full batch: nothing to do.)
fn flush(inner: &mut Inner, key: &RoomKey, limit: usize) {
    let Some(pacing) = inner.pacing.get_mut(key) else {
        return;
    };
    if pacing.pending.is_empty() {
        return;
    }
    let frames = std::mem::take(&mut pacing.pending);
    pacing.last_flush = Instant::now();
    hand_over(inner, key, &frames, limit);
}

fn remove_member(inner: &mut Inner, app: &AppId, room: &RoomId, session: u64) -> Option<Member> {
    let key = (app.clone(), room.clone());
    let members = inner.rooms.get_mut(&key)?;
    let member = members.remove(&session)?;
    if members.is_empty() {
        inner.rooms.remove(&key);
        inner.pacing.remove(&key);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::outbound::Next;

    fn note(id: &str) -> Push {
        Push::Notification {
            id: id.into(),
            content: serde_json::json!({}),
            created_at: 0,
        }
    }

    /// What a session would write next: notification ids, and `left` for a `room_left`.
    fn taken(out: &Outbound) -> Vec<String> {
        let mut batch = Vec::new();
        assert!(matches!(out.take(&mut batch, 1000), Next::Write));
        batch
            .iter()
            .map(|f| match &f.frame().body {
                Some(Body::Notification(n)) => n.notification_id.clone(),
                Some(Body::RoomLeft(_)) => "left".into(),
                other => panic!("unexpected frame {other:?}"),
            })
            .collect()
    }

    /// A room with these members (their queues returned) and, when `big`, enough others
    /// for the node to pace it.
    fn room_with(members: &[&str], big: bool) -> (LocalRooms, AppId, RoomId, Vec<Arc<Outbound>>) {
        let rooms = LocalRooms::default();
        let (app, room) = (AppId::generate(), RoomId::parse("live").unwrap());
        if big {
            for i in 0..PACED_FROM {
                let member = Member {
                    user: UserId::parse(&format!("fan{i}")).unwrap(),
                    out: Arc::new(Outbound::new(0)),
                };
                rooms.add(&app, &room, 1_000_000 + i as u64, member);
            }
        }
        let outs: Vec<Arc<Outbound>> = members
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let out = Arc::new(Outbound::new(0));
                let member = Member {
                    user: UserId::parse(u).unwrap(),
                    out: out.clone(),
                };
                assert!(rooms.add(&app, &room, i as u64, member));
                out
            })
            .collect();
        (rooms, app, room, outs)
    }

    #[tokio::test]
    async fn a_busy_room_holds_messages_back_and_hands_them_over_in_order() {
        let (rooms, app, room, outs) = room_with(&["alice", "bob"], true);
        let every = Duration::from_secs(3600);
        // A quiet room's message goes at once; the next ones wait for the interval.
        rooms.route(&app, &room, &note("n1"), 256, every);
        assert_eq!(taken(&outs[0]), ["n1"]);
        rooms.route(&app, &room, &note("n2"), 256, every);
        rooms.route(&app, &room, &note("n3"), 256, every);
        assert!(taken(&outs[0]).is_empty(), "held back");
        // Bob is removed: what waited goes out first, to everyone, then his room_left.
        let left = Push::RoomLeft {
            room: room.clone(),
            user: Some(UserId::parse("bob").unwrap()),
            reason: "removed".into(),
        };
        rooms.route(&app, &room, &left, 256, every);
        assert_eq!(taken(&outs[0]), ["n2", "n3"]);
        assert_eq!(taken(&outs[1]), ["n1", "n2", "n3", "left"]);
        assert!(!rooms.contains(&app, &room, 1));
    }

    #[tokio::test]
    async fn what_waits_goes_out_when_the_interval_is_up_or_a_batch_is_full() {
        let (rooms, app, room, outs) = room_with(&["alice"], true);
        let every = Duration::from_millis(20);
        for n in 1..=3 {
            rooms.route(&app, &room, &note(&format!("n{n}")), 256, every);
        }
        let mut got = taken(&outs[0]);
        while got.len() < 3 {
            outs[0].woken().await;
            got.extend(taken(&outs[0]));
        }
        assert_eq!(got, ["n1", "n2", "n3"]);

        // However long the interval, a full batch goes at once.
        let (rooms, app, room, outs) = room_with(&["alice"], true);
        let every = Duration::from_secs(3600);
        for n in 0..=MAX_PENDING {
            rooms.route(&app, &room, &note(&format!("m{n}")), 1000, every);
        }
        let got = taken(&outs[0]);
        assert_eq!(got.len(), MAX_PENDING + 1);
        assert_eq!(got.first().map(String::as_str), Some("m0"));
        assert_eq!(got.last().map(|s| s.as_str()), Some(format!("m{MAX_PENDING}").as_str()));
    }

    #[tokio::test]
    async fn small_rooms_and_a_zero_interval_are_not_paced() {
        let (rooms, app, room, outs) = room_with(&["alice"], true);
        for n in 1..=3 {
            rooms.route(&app, &room, &note(&format!("n{n}")), 256, Duration::ZERO);
        }
        assert_eq!(taken(&outs[0]), ["n1", "n2", "n3"]);
        let (rooms, app, room, outs) = room_with(&["alice", "bob"], false);
        for n in 1..=3 {
            rooms.route(&app, &room, &note(&format!("n{n}")), 256, Duration::from_secs(3600));
        }
        assert_eq!(taken(&outs[1]), ["n1", "n2", "n3"]);
    }
}
