//! The message lifecycle commands of a session (client.proto numbers 70-89): edits,
//! deletes for the user, extensions, reactions and the change pull that sync uses. Each
//! calls `tern_platform::lifecycle`, the operations the server API uses too.
//!
//! Room messages are visible only to connections in the room: a command naming one from
//! outside the room gets `not_found`, as any message the user cannot see does.

use tern_platform::delivery::{Actor, DeliveryError, Pipeline};
use tern_platform::domain::{App, ExtensionUpdate};
use tern_platform::ids::{ConversationId, MsgId, RoomId, UserId};
use tern_platform::lifecycle;
use tern_platform::proto::v1 as pb;

use pb::client_frame::Command;
use pb::server_frame::Body;

use crate::convert;

/// The `reply_to` of a `send`: empty is no reply.
pub(crate) fn reply_to(id: &str) -> Result<Option<MsgId>, DeliveryError> {
    if id.is_empty() {
        return Ok(None);
    }
    Ok(Some(MsgId::parse(id)?))
}

/// A message id the user names; a malformed one cannot name anything they can see.
fn msg_id(id: &str) -> Result<MsgId, DeliveryError> {
    MsgId::parse(id).map_err(|_| DeliveryError::NotFound("message"))
}

/// Whether this connection is in a room (the gateway's room registry answers).
pub(crate) type InRoom<'a> = &'a (dyn Fn(&RoomId) -> bool + Sync);

/// Refuses a room message to a connection outside its room.
async fn check_room(p: &Pipeline, app: &App, rooms: InRoom<'_>, id: &MsgId) -> Result<(), DeliveryError> {
    let msg = tern_platform::service::messages::get(p, app, id).await?;
    match &msg.conversation_id {
        ConversationId::Room(r) if !rooms(r) => Err(DeliveryError::NotFound("message")),
        _ => Ok(()),
    }
}

/// Runs one lifecycle command for `me`; session.rs sends only those here.
pub(crate) async fn command(
    p: &Pipeline,
    app: &App,
    me: &UserId,
    rooms: InRoom<'_>,
    cmd: Command,
) -> Result<Body, DeliveryError> {
    let actor = Actor::User(me.clone());
    match cmd {
        Command::EditMessage(c) => {
            let id = msg_id(&c.msg_id)?;
            check_room(p, app, rooms, &id).await?;
            let content = c
                .content
                .as_ref()
                .map_or(serde_json::Value::Object(Default::default()), convert::struct_to_json);
            let m = lifecycle::edit(p, app, &actor, &id, content).await?;
            Ok(Body::EditResult(convert::message(&m)))
        }
        Command::DeleteMessages(c) => {
            let ids = c.msg_ids.iter().map(|i| msg_id(i)).collect::<Result<Vec<_>, _>>()?;
            lifecycle::delete_for_user(p, app, me, &ids).await?;
            Ok(Body::Ok(pb::Ok {}))
        }
        Command::UpdateExtensions(c) => {
            let id = msg_id(&c.msg_id)?;
            check_room(p, app, rooms, &id).await?;
            let updates: Vec<ExtensionUpdate> = c
                .updates
                .into_iter()
                .map(|u| ExtensionUpdate {
                    key: u.key,
                    value: u.value,
                    expected_version: u.expected_version,
                })
                .collect();
            let (extensions, version) = lifecycle::update_extensions(p, app, &actor, &id, &updates).await?;
            Ok(Body::ExtensionsResult(pb::ExtensionsResult {
                msg_id: id.to_string(),
                extensions: extensions.iter().map(convert::extension).collect(),
                version,
            }))
        }
        Command::AddReaction(c) => react(p, app, me, rooms, &c.msg_id, &c.reaction, true).await,
        Command::RemoveReaction(c) => react(p, app, me, rooms, &c.msg_id, &c.reaction, false).await,
        Command::ListReactionUsers(c) => {
            let id = msg_id(&c.msg_id)?;
            check_room(p, app, rooms, &id).await?;
            let cursor = (!c.cursor.is_empty()).then_some(c.cursor.as_str());
            let page = lifecycle::reaction_users(p, app, &actor, &id, &c.reaction, cursor, c.limit).await?;
            Ok(Body::ReactionUsers(pb::ReactionUserList {
                users: page
                    .users
                    .into_iter()
                    .map(|(u, at)| pb::ReactionUser {
                        user_id: u.into_string(),
                        reacted_at: at,
                    })
                    .collect(),
                next_cursor: page.next_cursor.unwrap_or_default(),
            }))
        }
        Command::GetChanges(c) => {
            let conversation = ConversationId::parse(&c.conversation_id)?;
            if let ConversationId::Room(r) = &conversation {
                if !rooms(r) {
                    return Err(DeliveryError::NotFound("conversation"));
                }
            }
            let page = lifecycle::changes(p, app, me, &conversation, c.since_version, c.limit).await?;
            Ok(Body::ChangesResult(pb::ChangesResult {
                conversation_id: conversation.to_string(),
                changes: page.changes.iter().map(convert::change).collect(),
                version: page.version,
                has_more: page.has_more,
            }))
        }
        _ => Err(DeliveryError::InvalidArgument("not a message lifecycle command".into())),
    }
}

async fn react(
    p: &Pipeline,
    app: &App,
    me: &UserId,
    rooms: InRoom<'_>,
    id: &str,
    reaction: &str,
    add: bool,
) -> Result<Body, DeliveryError> {
    let id = msg_id(id)?;
    check_room(p, app, rooms, &id).await?;
    let summary = lifecycle::react(p, app, me, &id, reaction, add).await?;
    Ok(Body::ReactionResult(convert::reaction_summary(&summary)))
}
