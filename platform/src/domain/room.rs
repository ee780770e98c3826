//! Rooms (chatrooms and live rooms): a registry row each, and nothing per member. Who is in
//! a room is a fact about live connections, kept by `Presence`; what was said is the
//! conversation `r:<id>`, stored with a seq like every other timeline.

use serde::{Deserialize, Serialize};

use super::UnixMillis;
use crate::ids::{RoomId, UserId};

/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 100;
/// Largest serialised room metadata, in bytes.
pub const MAX_ROOM_METADATA_BYTES: usize = 4096;

/// How a room came to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RoomOrigin {
    /// Created by the app's backend through the server API.
    ServerApi,
    /// Created by a user's first join, in an app with `rooms_created_on_join`.
    Join,
}

impl RoomOrigin {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Room {
    pub id: RoomId,
    pub name: String,
    pub metadata: serde_json::Value,
    pub created_by: RoomOrigin,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    /// Seq of the room's newest message (0 when it has none).
    pub last_seq: i64,
}

/// A room to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRoom {
    pub id: RoomId,
    pub name: String,
    pub metadata: serde_json::Value,
    pub created_by: RoomOrigin,
}

/// A user who may read a room but not send to it until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMute {
    pub user_id: UserId,
    pub until: UnixMillis,
}

/// Checks a room's name and metadata against their limits; the message names the field.
pub fn validate_room_profile(name: &str, metadata: &serde_json::Value) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > MAX_ROOM_NAME_CHARS {
        return Err(format!("name must be 1 to {MAX_ROOM_NAME_CHARS} characters"));
    }
    if super::has_forbidden_chars(name) {
        return Err("name must not contain control or bidirectional formatting characters".into());
    }
    if !metadata.is_object() {
        return Err("metadata must be a JSON object".into());
    }
    let size = serde_json::to_string(metadata).map_or(usize::MAX, |s| s.len());
    if size > MAX_ROOM_METADATA_BYTES {
        return Err(format!(
            "metadata must be at most {MAX_ROOM_METADATA_BYTES} bytes serialised"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn profiles_are_checked_against_their_limits() {
        assert_eq!(validate_room_profile("Lobby", &json!({"topic": "x"})), Ok(()));
        assert!(validate_room_profile(" ", &json!({})).is_err());
        assert!(validate_room_profile(&"n".repeat(101), &json!({})).is_err());
        assert!(validate_room_profile("a\u{7}b", &json!({})).is_err());
        assert!(validate_room_profile("ok", &json!([1])).is_err());
        let big = json!({"blob": "x".repeat(MAX_ROOM_METADATA_BYTES)});
        assert!(validate_room_profile("ok", &big).unwrap_err().contains("metadata"));
    }

    #[test]
    fn origins_round_trip() {
        for o in [RoomOrigin::ServerApi, RoomOrigin::Join] {
            assert_eq!(RoomOrigin::parse(o.as_str()), Some(o));
        }
        assert_eq!(RoomOrigin::parse("other"), None);
    }
}
