//! Rooms from the `Client` (docs/rooms.md): `join_room` and `leave_room` are on the client
//! itself; this adds the room's profile and member count. Being sent out of a room (it was
//! dismissed, or the app removed the user) arrives as `Event::RoomLeft`, after which the
//! client no longer re-joins it on reconnect.

use crate::client::{unexpected, Client};
use crate::content::struct_to_json;
use crate::proto as pb;
use crate::types::ClientError;

use pb::client_frame::Command;
use pb::server_frame::Body;

/// A room's profile and how many are in it now.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomInfo {
    pub room_id: String,
    pub name: String,
    pub metadata: serde_json::Value,
    /// Users in the room now (each once, whatever their number of connections).
    pub member_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&pb::RoomInfo> for RoomInfo {
    fn from(r: &pb::RoomInfo) -> Self {
        Self {
            room_id: r.room_id.clone(),
            name: r.name.clone(),
            metadata: r
                .metadata
                .as_ref()
                .map_or_else(|| serde_json::json!({}), struct_to_json),
            member_count: r.member_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl Client {
    /// A room's name, metadata and member count. The user need not be in the room;
    /// `not_found` if the app has no such room.
    pub async fn room_info(&self, room_id: &str) -> Result<RoomInfo, ClientError> {
        let cmd = Command::GetRoom(pb::GetRoom {
            room_id: room_id.to_owned(),
        });
        match self.request(cmd).await? {
            Body::Room(r) => Ok(RoomInfo::from(&r)),
            _ => Err(unexpected()),
        }
    }
}
