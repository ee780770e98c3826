//! What the REST API shows and accepts. Views are built from domain types so the wire
//! format is decided here, in one place, and the OpenAPI schemas come from these types.

use serde::{Deserialize, Serialize};
use tern_platform::domain::{ConversationEntry, Group, GroupMember, Message, SendReceipt, User};
use tern_platform::ids::UserId;
use tern_platform::presence::UserPresence;
use utoipa::ToSchema;

use crate::error::ApiError;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub avatar_url: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Unix ms until which the user is banned.
    pub banned_until: Option<i64>,
    /// Unix ms until which the user may not send (an app-wide mute).
    pub muted_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id.into_string(),
            name: u.name,
            avatar_url: u.avatar_url,
            metadata: u.metadata,
            banned_until: u.banned_until,
            muted_until: u.muted_until,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A user with what is live about them now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserView,
    pub online: bool,
    /// Device ids of the sessions open now.
    pub devices: Vec<String>,
    /// Unix ms when the last session closed (absent while online or never seen).
    pub last_seen: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsersAnswer {
    pub users: Vec<UserView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    pub msg_id: String,
    pub conversation_id: String,
    pub seq: i64,
    /// The sending user; absent for system messages.
    pub from: Option<String>,
    pub client_msg_id: String,
    #[serde(rename = "type")]
    pub msg_type: String,
    /// `null` once recalled.
    #[schema(value_type = Option<Object>)]
    pub content: serde_json::Value,
    pub created_at: i64,
    pub recalled: bool,
    pub edited_at: Option<i64>,
    // ---- message lifecycle ----
    /// The message this one replies to.
    pub reply_to: Option<String>,
    /// That message as it is now (absent when not a reply, and in `last_message`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted: Option<super::lifecycle::QuotedView>,
    /// The version of the message's last change (edit, recall, extensions, reaction); 0 when
    /// it never changed.
    pub version: i64,
    /// Its extensions, by key.
    pub extensions: Vec<super::lifecycle::ExtensionView>,
    /// Its reactions, in the order they were first used.
    pub reactions: Vec<super::lifecycle::ReactionView>,
    /// Group members this message mentions by name.
    pub mentions: Vec<String>,
    /// It mentions every member of the group (@all).
    pub mention_all: bool,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        Self {
            msg_id: m.msg_id.into_string(),
            conversation_id: m.conversation_id.to_string(),
            seq: m.seq,
            from: m.sender.user().map(|u| u.to_string()),
            client_msg_id: m.client_msg_id.into_string(),
            msg_type: m.msg_type.as_str().to_owned(),
            content: m.content,
            created_at: m.created_at,
            recalled: m.recalled,
            edited_at: m.edited_at,
            reply_to: m.reply_to.map(|r| r.into_string()),
            quoted: m.quoted.map(|q| (*q).into()),
            version: m.version,
            extensions: m.extensions.into_iter().map(Into::into).collect(),
            reactions: m.reactions.into_iter().map(Into::into).collect(),
            mentions: m.mentions.into_iter().map(UserId::into_string).collect(),
            mention_all: m.mention_all,
        }
    }
}

/// The answer to a send: once you have it, the message is durable.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SendAnswer {
    pub msg_id: String,
    pub conversation_id: String,
    pub seq: i64,
    /// Unix ms, server time.
    pub created_at: i64,
}

impl From<SendReceipt> for SendAnswer {
    fn from(r: SendReceipt) -> Self {
        Self {
            msg_id: r.msg_id.into_string(),
            conversation_id: r.conversation_id.to_string(),
            seq: r.seq,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessagesAnswer {
    /// In ascending seq order.
    pub messages: Vec<MessageView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationView {
    pub conversation_id: String,
    /// `direct`, `group`, `room` or `system`.
    pub kind: String,
    pub last_seq: i64,
    pub read_seq: i64,
    pub unread: i64,
    pub version: i64,
    pub last_message: Option<MessageView>,
    pub updated_at: i64,
    /// A message after `read_seq` mentions the user by name or @all (groups).
    pub mentioned: bool,
}

impl From<ConversationEntry> for ConversationView {
    fn from(c: ConversationEntry) -> Self {
        let kind = serde_json::to_value(c.conversation_id.kind())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Self {
            conversation_id: c.conversation_id.to_string(),
            kind,
            last_seq: c.last_seq,
            read_seq: c.read_seq,
            unread: c.unread,
            version: c.version,
            last_message: c.last_message.map(Into::into),
            updated_at: c.updated_at,
            mentioned: c.mentioned,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationsAnswer {
    pub conversations: Vec<ConversationView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub member_count: i64,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub avatar_url: Option<String>,
    pub announcement: String,
    /// `free`, `approval` or `invite_only`.
    pub join_policy: String,
    /// Only the owner and admins may send.
    pub mute_all: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Group> for GroupView {
    fn from(g: Group) -> Self {
        Self {
            id: g.id.into_string(),
            name: g.name,
            owner: g.owner.into_string(),
            member_count: g.member_count,
            metadata: g.metadata,
            avatar_url: g.avatar_url,
            announcement: g.announcement,
            join_policy: g.join_policy.as_str().to_owned(),
            mute_all: g.mute_all,
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    pub joined_at: i64,
    /// Unix ms until which they may not send in the group; `null` when not muted.
    pub muted_until: Option<i64>,
}

impl From<GroupMember> for MemberView {
    fn from(m: GroupMember) -> Self {
        Self {
            user_id: m.user_id.into_string(),
            role: m.role.as_str().to_owned(),
            joined_at: m.joined_at,
            muted_until: m.muted_until,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MembersAnswer {
    pub members: Vec<MemberView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PresenceView {
    pub user_id: String,
    pub online: bool,
    pub last_seen: Option<i64>,
    pub devices: Vec<String>,
}

impl From<UserPresence> for PresenceView {
    fn from(p: UserPresence) -> Self {
        Self {
            user_id: p.user_id.into_string(),
            online: p.online,
            last_seen: p.last_seen,
            devices: p.devices,
        }
    }
}

/// Query of list endpoints.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 100 (larger values are clamped); default 50.
    pub limit: Option<u32>,
}

/// Cursors are opaque to callers: base64url of the last key of the page.
pub fn encode_cursor(key: &str) -> String {
    tern_platform::service::paging::encode_cursor(key)
}

pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    Ok(tern_platform::service::paging::decode_cursor(cursor)?)
}
