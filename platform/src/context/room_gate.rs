//! `RoomGate`: what the pipeline asks before a message is stored in a room, from any door —
//! the room exists, the sender is not muted in it, and the room is under its send rate —
//! with what it read cached for `ROOM_CACHE_TTL`, so a busy room costs no store read per
//! message.
//!
//! The caches are size-bounded `quick_cache`s holding the time each entry was read: an entry
//! older than the TTL reads as absent and is replaced by the next read from the store, and
//! the bound keeps memory in check, so nothing sweeps.

use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

use super::Ctx;
use crate::domain::{App, Room, Sender, UnixMillis};
use crate::error::DeliveryError;
use crate::ids::{AppId, RoomId, UserId};
use crate::rate_limits::check_room_send_rate;

/// How long the gate trusts what it read about a room or a mute. Changes made through this
/// node drop the entry at once; other nodes see them within this time.
pub const ROOM_CACHE_TTL: Duration = Duration::from_secs(2);
/// Most rooms, and most (room, user) mutes, remembered at once.
const CAPACITY: usize = 100_000;

/// What was read, and when.
type Cached<T> = (T, Instant);
type RoomKey = (AppId, RoomId);
/// A user's mute in a room.
type MuteKey = (AppId, RoomId, UserId);

/// The checks a room send passes, with what they need cached for a moment.
pub struct RoomGate {
    rooms: Cache<RoomKey, Cached<Option<Room>>>,
    mutes: Cache<MuteKey, Cached<Option<UnixMillis>>>,
}

impl Default for RoomGate {
    fn default() -> Self {
        Self {
            rooms: Cache::new(CAPACITY),
            mutes: Cache::new(CAPACITY),
        }
    }
}

impl RoomGate {
    /// The room, from the cache when fresh.
    pub async fn room(&self, cx: &Ctx, app: &AppId, id: &RoomId) -> Result<Option<Room>, DeliveryError> {
        let key = (app.clone(), id.clone());
        if let Some((room, at)) = self.rooms.get(&key) {
            if at.elapsed() < ROOM_CACHE_TTL {
                return Ok(room);
            }
        }
        let room = cx.store().room(app, id).await?;
        self.rooms.insert(key, (room.clone(), Instant::now()));
        Ok(room)
    }

    /// Until when `user` is muted in the room (a past time means not muted), cached.
    async fn muted_until(
        &self,
        cx: &Ctx,
        app: &AppId,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Option<UnixMillis>, DeliveryError> {
        let key = (app.clone(), room.clone(), user.clone());
        if let Some((until, at)) = self.mutes.get(&key) {
            if at.elapsed() < ROOM_CACHE_TTL {
                return Ok(until);
            }
        }
        let until = cx.store().room_mute(app, room, user).await?;
        self.mutes.insert(key, (until, Instant::now()));
        Ok(until)
    }

    /// What the pipeline asks before storing a message from `sender` in the room: the room
    /// exists (`not_found`), the sender is not muted in it (`user_muted`), and the room is
    /// under its send rate (`rate_limited`).
    pub async fn admit(
        &self,
        cx: &Ctx,
        app: &App,
        room: &RoomId,
        sender: &Sender,
        now: UnixMillis,
    ) -> Result<(), DeliveryError> {
        if self.room(cx, &app.id, room).await?.is_none() {
            return Err(DeliveryError::NotFound("room"));
        }
        if let Sender::User(u) = sender {
            if self.muted_until(cx, &app.id, room, u).await?.is_some_and(|t| t > now) {
                return Err(DeliveryError::SenderMuted);
            }
        }
        // The room's budget of `room_send_rate_per_second`, across the nodes that share
        // the rate-limit port.
        check_room_send_rate(cx.rate_limits().as_ref(), app, room).await?;
        Ok(())
    }

    /// Drops what this node remembers of a room (after it changed or was deleted); its send
    /// budget is dropped by the caller.
    pub fn forget(&self, app: &AppId, room: &RoomId) {
        self.rooms.remove(&(app.clone(), room.clone()));
        self.mutes.retain(|(a, r, _), _| !(a == app && r == room));
    }

    /// Drops what this node remembers of one user's mute in a room.
    pub fn forget_mute(&self, app: &AppId, room: &RoomId, user: &UserId) {
        self.mutes.remove(&(app.clone(), room.clone(), user.clone()));
    }
}
