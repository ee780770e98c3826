//! What both server API doors (REST and gRPC) read from a request the same way: ids, names
//! and small enums parsed into platform types, with the one error each answers, and the
//! few requests assembled from them (a send, a new group, a broadcast). A door maps its
//! wire format onto these; `platform` decides the rest.

use tern_platform::broadcasts::StartBroadcast;
use tern_platform::delivery::{Recipient, SendOptions, SendRequest};
use tern_platform::domain::{parse_sha256_hex, ContentType, FileName};
use tern_platform::domain::{GroupRole, JoinPolicy, MessageType, Sender, Source};
use tern_platform::files::UploadRequest;
use tern_platform::groups::GroupSpec;
use tern_platform::ids::{ClientMsgId, FileId, GroupId, MsgId, RoomId, UserId};

use crate::error::ApiError;

/// A file id naming the file an operation is on: a malformed one names nothing (`not_found`).
pub fn file_id(s: &str) -> Result<FileId, ApiError> {
    FileId::parse(s).map_err(|_| ApiError::not_found("file"))
}

/// An upload's announcement (`POST /v1/files`, gRPC `Files/CreateFile`), checked and parsed.
pub fn upload(
    uploader: &str,
    name: &str,
    size: u64,
    content_type: &str,
    sha256: &str,
) -> Result<UploadRequest, ApiError> {
    Ok(UploadRequest {
        uploader: user(uploader)?,
        name: FileName::parse(name).map_err(|e| ApiError::invalid(e.to_string()))?,
        content_type: ContentType::parse(content_type).map_err(|e| ApiError::invalid(e.to_string()))?,
        size,
        sha256: parse_sha256_hex(sha256).map_err(|e| ApiError::invalid(e.to_string()))?,
    })
}

pub fn user(id: &str) -> Result<UserId, ApiError> {
    Ok(UserId::parse(id)?)
}

pub fn group(id: &str) -> Result<GroupId, ApiError> {
    Ok(GroupId::parse(id)?)
}

pub fn room(id: &str) -> Result<RoomId, ApiError> {
    Ok(RoomId::parse(id)?)
}

/// A message id naming the message an operation is on: a malformed one names nothing
/// (`not_found`).
pub fn msg_id(id: &str) -> Result<MsgId, ApiError> {
    MsgId::parse(id).map_err(|_| ApiError::not_found("message"))
}

/// Users, each once, in the order first named.
pub fn distinct_users(ids: &[String]) -> Result<Vec<UserId>, ApiError> {
    let mut out: Vec<UserId> = Vec::with_capacity(ids.len());
    for id in ids {
        let u = user(id)?;
        if !out.contains(&u) {
            out.push(u);
        }
    }
    Ok(out)
}

/// A type a message may be sent with.
pub fn message_type(t: &str) -> Result<MessageType, ApiError> {
    MessageType::parse_sendable(t)
        .ok_or_else(|| ApiError::invalid("type must be one of text, image, file, audio, video, location, custom"))
}

/// The users a message mentions; a list longer than a message may mention is refused
/// before any id is parsed.
pub fn mentions(ids: &[String]) -> Result<Vec<UserId>, ApiError> {
    tern_platform::groups::rules::check_mention_count(ids.len())?;
    ids.iter().map(|u| user(u)).collect()
}

/// Whom a message goes to: exactly one of a user, a group or a room.
pub fn recipient(user_id: Option<&str>, group_id: Option<&str>, room_id: Option<&str>) -> Result<Recipient, ApiError> {
    match (user_id, group_id, room_id) {
        (Some(u), None, None) => Ok(Recipient::User(user(u)?)),
        (None, Some(g), None) => Ok(Recipient::Group(group(g)?)),
        (None, None, Some(r)) => Ok(Recipient::Room(room(r)?)),
        _ => Err(ApiError::invalid("to must name exactly one of user, group or room")),
    }
}

/// A message the server API sends, as a door read it.
pub struct MessageInput<'a> {
    /// The sending user; `None` sends as the system.
    pub from: Option<&'a str>,
    pub to_user: Option<&'a str>,
    pub to_group: Option<&'a str>,
    pub to_room: Option<&'a str>,
    pub client_msg_id: Option<&'a str>,
    pub msg_type: &'a str,
    pub content: serde_json::Value,
    pub reply_to: Option<&'a str>,
    pub mentions: &'a [String],
    pub mention_all: bool,
}

/// The send the pipeline takes for a message of the server API.
pub fn send_request(m: MessageInput<'_>) -> Result<SendRequest, ApiError> {
    let sender = match m.from {
        Some(u) => Sender::User(user(u)?),
        None => Sender::System,
    };
    let to = recipient(m.to_user, m.to_group, m.to_room)?;
    let client_msg_id = m.client_msg_id.map(ClientMsgId::parse).transpose()?;
    let msg_type = message_type(m.msg_type)?;
    let mentions = mentions(m.mentions)?;
    let reply_to = m.reply_to.map(MsgId::parse).transpose()?;
    Ok(SendRequest {
        sender,
        to,
        client_msg_id,
        msg_type,
        content: m.content,
        source: Source::ServerApi,
        options: SendOptions {
            mentions,
            mention_all: m.mention_all,
            reply_to,
        },
    })
}

pub fn join_policy(p: &str) -> Result<JoinPolicy, ApiError> {
    JoinPolicy::parse(p).ok_or_else(|| ApiError::invalid("join_policy must be free, approval or invite_only"))
}

/// A role the server API may give: `admin` or `member` (ownership is transferred).
pub fn member_role(r: &str) -> Result<GroupRole, ApiError> {
    match GroupRole::parse(r) {
        Some(role @ (GroupRole::Admin | GroupRole::Member)) => Ok(role),
        _ => Err(ApiError::invalid("role must be admin or member")),
    }
}

/// A new group as a door read it.
pub struct GroupInput<'a> {
    pub id: Option<&'a str>,
    pub name: String,
    pub owner: &'a str,
    pub members: &'a [String],
    pub metadata: Option<serde_json::Value>,
    pub avatar_url: Option<String>,
    pub announcement: Option<String>,
    pub join_policy: Option<&'a str>,
}

/// The group to create: metadata `{}`, no announcement and the `approval` policy unless
/// given.
pub fn group_spec(g: GroupInput<'_>) -> Result<GroupSpec, ApiError> {
    Ok(GroupSpec {
        id: g.id.map(group).transpose()?,
        name: g.name,
        owner: user(g.owner)?,
        members: distinct_users(g.members)?,
        metadata: g.metadata.unwrap_or_else(|| serde_json::json!({})),
        avatar_url: g.avatar_url,
        announcement: g.announcement.unwrap_or_default(),
        join_policy: g
            .join_policy
            .map(join_policy)
            .transpose()?
            .unwrap_or(JoinPolicy::Approval),
    })
}

/// The broadcast to start: its type, content, key and audience (`None`: every user); a list
/// of the wrong size is refused before its ids are parsed.
pub fn broadcast_request(
    msg_type: &str,
    content: serde_json::Value,
    client_msg_id: Option<&str>,
    users: Option<&[String]>,
) -> Result<StartBroadcast, ApiError> {
    let msg_type = message_type(msg_type)?;
    let client_msg_id = client_msg_id.map(ClientMsgId::parse).transpose()?;
    let users = match users {
        None => None,
        Some(list) => {
            tern_platform::broadcasts::check_audience_size(list.len())?;
            Some(list.iter().map(|u| user(u)).collect::<Result<Vec<_>, _>>()?)
        }
    };
    Ok(StartBroadcast {
        msg_type,
        content,
        client_msg_id,
        users,
    })
}

/// A JSON field that tells "absent" (keep what is set: `None`) from `null` (clear it:
/// `Some(None)`), for `#[serde(default, with = "crate::input::double_option")]`.
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Ok(Some(Option::deserialize(d)?))
    }
}
