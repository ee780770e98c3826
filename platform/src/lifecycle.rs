//! The message lifecycle: recall, edit, delete for one user, extensions, reactions and
//! replies, for every door (the server API acting as the app or for a user, the gateway for
//! the connected user). docs/messages.md is the guide; this is the one implementation.
//!
//! Each change is one store transaction that takes the app's next change version, stamps
//! the message with it, records the change and bumps the conversation's version (only the
//! user's entry, for a delete for one user), with its webhook event. Only then is it pushed:
//! to the conversation's online members, or, for a delete for one user, to that user's
//! devices. A device that was offline sees the conversation in `sync` and pulls its changes
//! (`changes`) after the version it last synced, each once.
//!
//! Who may do what:
//! - recall: the sender within `recall_window_seconds`, a group's owner and admins at any
//!   time, the server API at any time;
//! - edit: the sender within `edit_window_seconds` (not while muted or banned), the server
//!   API at any time; never a recalled message. The new content passes validation, the word
//!   lists and the before-send hook (with `edit_of` set) as a send would;
//! - delete for one user, extensions, reactions, replies: whoever can see the message (a
//!   participant of a direct chat; a group member, for messages after they joined).
//!
//! A message someone cannot see is `not_found` to them, whatever the reason (another app,
//! another conversation, before they joined, deleted for them).

use std::collections::{HashMap, HashSet};

use serde_json::json;

use crate::bus::Push;
use crate::context::Ctx;
use crate::delivery::{clamp_limit, Actor, DeliveryError, HookDecision, HookDraft, Pipeline};
use crate::domain::*;
use crate::ids::{ConversationId, MsgId, UserId};
use crate::store::{EditOutcome, ExtensionsOutcome, ReactionOutcome, RecallOutcome, StoreError};
use crate::webhook;

pub use crate::rules::messages::{can_see, reply_target};

/// The message `actor` names, if they may see it; `not_found` otherwise.
pub async fn load_for(p: &Ctx, app: &App, actor: &Actor, id: &MsgId) -> Result<Message, DeliveryError> {
    let msg = p
        .store()
        .message(&app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("message"))?;
    if let Actor::User(u) = actor {
        if !can_see(p.store().as_ref(), app, u, &msg).await? {
            return Err(DeliveryError::NotFound("message"));
        }
    }
    Ok(msg)
}

/// One message with its quote, extensions and reactions, as `actor` sees it.
pub async fn message_for(p: &Ctx, app: &App, actor: &Actor, id: &MsgId) -> Result<Message, DeliveryError> {
    let mut msg = load_for(p, app, actor, id).await?;
    decorate(p, app, reader(actor), std::slice::from_mut(&mut msg)).await?;
    Ok(msg)
}

fn reader(actor: &Actor) -> Option<&UserId> {
    match actor {
        Actor::Server => None,
        Actor::User(u) => Some(u),
    }
}

fn by(actor: &Actor) -> Option<&UserId> {
    reader(actor)
}

/// Fills in what a reader sees besides the stored message: the quoted message as it is now,
/// the extensions, and the reactions (`reacted` from `reader`'s point of view).
pub async fn decorate(p: &Ctx, app: &App, reader: Option<&UserId>, msgs: &mut [Message]) -> Result<(), DeliveryError> {
    let store = p.store();
    let mut quoted: Vec<MsgId> = msgs.iter().filter_map(|m| m.reply_to.clone()).collect();
    quoted.sort();
    quoted.dedup();
    if !quoted.is_empty() {
        let found: HashMap<MsgId, QuotedMessage> = store
            .messages_by_ids(&app.id, &quoted)
            .await?
            .iter()
            .map(|q| (q.msg_id.clone(), QuotedMessage::from(q)))
            .collect();
        for m in msgs.iter_mut() {
            if let Some(q) = m.reply_to.as_ref().and_then(|id| found.get(id)) {
                m.quoted = Some(Box::new(q.clone()));
            }
        }
    }
    // Only a message that ever changed can carry extensions or reactions.
    let changed: Vec<MsgId> = msgs
        .iter()
        .filter(|m| m.version > 0)
        .map(|m| m.msg_id.clone())
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let mut extensions: HashMap<MsgId, Vec<Extension>> = HashMap::new();
    for (id, e) in store.message_extensions(&app.id, &changed).await? {
        extensions.entry(id).or_default().push(e);
    }
    let mut reactions: HashMap<MsgId, Vec<ReactionSummary>> = HashMap::new();
    for (id, r) in store
        .reaction_summaries(&app.id, &changed, reader, REACTION_USERS_SHOWN)
        .await?
    {
        reactions.entry(id).or_default().push(r);
    }
    for m in msgs.iter_mut() {
        m.extensions = extensions.remove(&m.msg_id).unwrap_or_default();
        m.reactions = reactions.remove(&m.msg_id).unwrap_or_default();
    }
    Ok(())
}

/// Recalls a message: by the server API at any time, by its sender within the app's recall
/// window, by a group's owner or admins at any time. Everyone then sees it recalled, with
/// its content, extensions and reactions gone. Recalling it again changes nothing.
pub async fn recall(p: &Ctx, app: &App, actor: &Actor, msg_id: &MsgId) -> Result<Message, DeliveryError> {
    let msg = load_for(p, app, actor, msg_id).await?;
    if let Actor::User(u) = actor {
        if msg.sender.user() == Some(u) {
            let closed = now_ms() >= msg.created_at + app.settings.recall_window_seconds * 1000;
            if closed && !is_group_admin(p, app, u, &msg).await? {
                return Err(DeliveryError::RecallWindowPassed);
            }
        } else if !is_group_admin(p, app, u, &msg).await? {
            return Err(DeliveryError::Forbidden(
                "only the sender or a group's owner or admins may recall this message".into(),
            ));
        }
    }
    if msg.recalled {
        return Ok(msg);
    }
    let now = now_ms();
    let event = webhook::after_event(
        app,
        "message.recalled",
        json!({"msg_id": msg.msg_id, "conversation_id": msg.conversation_id, "seq": msg.seq, "by": by(actor)}),
        now,
    );
    let has_event = event.is_some();
    let outcome = p
        .store()
        .recall_message(&app.id, msg_id, by(actor), now, &event.into_iter().collect::<Vec<_>>())
        .await?;
    let recalled = match outcome {
        RecallOutcome::AlreadyRecalled(m) => return Ok(m),
        RecallOutcome::Recalled(m) => m,
    };
    // Its file goes after the grace period, unless another message still names it
    // (`Files::sweep_released`).
    if let Some(file) = crate::domain::content_file_id(msg.msg_type, &msg.content) {
        p.store().release_file(&app.id, &file, now).await?;
    }
    p.outbox_written(has_event);
    let change = MessageChange {
        conversation_id: recalled.conversation_id.clone(),
        msg_id: recalled.msg_id.clone(),
        seq: recalled.seq,
        version: recalled.version,
        by: by(actor).cloned(),
        changed_at: now,
        kind: ChangeKind::Recalled {
            message: Box::new(recalled.clone()),
        },
    };
    p.publish_to_conversation(app, &recalled.conversation_id, Push::MessageChanged { change })
        .await;
    Ok(recalled)
}

/// Whether `user` is an owner or admin of the group `msg` was sent to.
async fn is_group_admin(p: &Ctx, app: &App, user: &UserId, msg: &Message) -> Result<bool, DeliveryError> {
    let ConversationId::Group(g) = &msg.conversation_id else {
        return Ok(false);
    };
    Ok(p.store()
        .group_member(&app.id, g, user)
        .await?
        .is_some_and(|m| matches!(m.role, GroupRole::Owner | GroupRole::Admin)))
}

/// Replaces a message's content: by its sender within the app's edit window, by the server
/// API at any time. The content is checked and filtered as a send's would be, and the
/// before-send hook (if it selects the message's type and door) sees it with `edit_of`.
pub async fn edit(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    msg_id: &MsgId,
    content: serde_json::Value,
) -> Result<Message, DeliveryError> {
    let msg = load_for(p, app, actor, msg_id).await?;
    let now = now_ms();
    if let Actor::User(u) = actor {
        if msg.sender.user() != Some(u) {
            return Err(DeliveryError::Forbidden("only the sender may edit this message".into()));
        }
        p.check_sender(app, u, now).await?;
    }
    if msg.recalled {
        return Err(DeliveryError::MessageRecalled);
    }
    // A window of 0 turns sender edits off.
    if matches!(actor, Actor::User(_)) && now >= msg.created_at + app.settings.edit_window_seconds * 1000 {
        return Err(DeliveryError::EditWindowPassed);
    }
    validate_content(
        msg.msg_type,
        &content,
        ContentLimits {
            max_text_bytes: app.settings.max_text_bytes,
            max_content_bytes: app.settings.max_content_bytes,
        },
    )?;
    let mut content = content;
    p.word_filter().apply(&app.id, msg.msg_type, &mut content).await?;
    let source = match actor {
        Actor::Server => Source::ServerApi,
        Actor::User(_) => Source::Sdk,
    };
    if let Some(hook) = p.before_send_for(app, source, msg.msg_type) {
        let draft = HookDraft {
            conversation_id: msg.conversation_id.clone(),
            sender: msg.sender.clone(),
            client_msg_id: msg.client_msg_id.clone(),
            msg_type: msg.msg_type,
            content: content.clone(),
            source,
            edit_of: Some(msg.msg_id.clone()),
        };
        match hook.check(app, &draft).await {
            HookDecision::Allow => {}
            HookDecision::Reject { reason } => return Err(DeliveryError::MessageRejected(reason)),
            HookDecision::Replace { content: c } => content = c,
            HookDecision::Unavailable => return Err(DeliveryError::WebhookUnavailable),
        }
    }
    let event = webhook::after_event(
        app,
        "message.edited",
        json!({"msg_id": msg.msg_id, "conversation_id": msg.conversation_id, "seq": msg.seq,
               "by": by(actor), "type": msg.msg_type, "content": content, "edited_at": now}),
        now,
    );
    let has_event = event.is_some();
    let edit = MessageEdit {
        content: content.clone(),
        edited_at: now,
        by: by(actor).cloned(),
    };
    let edited = match p
        .store()
        .edit_message(&app.id, msg_id, &edit, &event.into_iter().collect::<Vec<_>>())
        .await?
    {
        EditOutcome::Edited(m) => *m,
        EditOutcome::Recalled => return Err(DeliveryError::MessageRecalled),
    };
    let before = crate::domain::content_file_id(msg.msg_type, &msg.content);
    if let Some(file) = before.filter(|f| crate::domain::content_file_id(msg.msg_type, &content).as_ref() != Some(f)) {
        p.store().release_file(&app.id, &file, now).await?;
    }
    p.outbox_written(has_event);
    let change = MessageChange {
        conversation_id: edited.conversation_id.clone(),
        msg_id: edited.msg_id.clone(),
        seq: edited.seq,
        version: edited.version,
        by: by(actor).cloned(),
        changed_at: now,
        kind: ChangeKind::Edited {
            content,
            edited_at: now,
        },
    };
    p.publish_to_conversation(app, &edited.conversation_id, Push::MessageChanged { change })
        .await;
    let mut edited = edited;
    decorate(p, app, reader(actor), std::slice::from_mut(&mut edited)).await?;
    Ok(edited)
}

/// `user` deletes messages for themselves: they leave the user's history and conversation
/// list on every device; everyone else still sees them. Deleting again changes nothing.
/// Returns the changes made (one per message newly deleted).
pub async fn delete_for_user(
    p: &Ctx,
    app: &App,
    user: &UserId,
    msg_ids: &[MsgId],
) -> Result<Vec<MessageChange>, DeliveryError> {
    if msg_ids.is_empty() || msg_ids.len() > MAX_DELETE_BATCH {
        return Err(DeliveryError::InvalidArgument(format!(
            "delete 1 to {MAX_DELETE_BATCH} messages at a time"
        )));
    }
    require_user(p, app, user).await?;
    let mut ids = msg_ids.to_vec();
    ids.sort();
    ids.dedup();
    let found = p.store().messages_by_ids(&app.id, &ids).await?;
    if found.len() != ids.len() {
        return Err(DeliveryError::NotFound("message"));
    }
    let already: HashSet<MsgId> = p
        .store()
        .deleted_for_user(&app.id, user, &ids)
        .await?
        .into_iter()
        .collect();
    let mut to_delete = Vec::with_capacity(found.len());
    for m in found {
        if matches!(m.conversation_id, ConversationId::Room(_)) {
            return Err(DeliveryError::InvalidArgument(
                "room messages cannot be deleted for one user".into(),
            ));
        }
        if already.contains(&m.msg_id) {
            continue; // deleted before: nothing to do, and no longer "visible"
        }
        if !can_see(p.store().as_ref(), app, user, &m).await? {
            return Err(DeliveryError::NotFound("message"));
        }
        to_delete.push(m);
    }
    let changes = p.store().delete_for_user(&app.id, user, &to_delete, now_ms()).await?;
    for change in &changes {
        let push = Push::MessageChanged { change: change.clone() };
        p.publish_to_users(app, std::slice::from_ref(user), push).await;
    }
    Ok(changes)
}

async fn require_user(p: &Ctx, app: &App, user: &UserId) -> Result<(), DeliveryError> {
    p.store()
        .user(&app.id, user)
        .await?
        .map(|_| ())
        .ok_or(DeliveryError::NotFound("user"))
}

/// A message's extensions now, and the message's version.
pub async fn extensions(
    p: &Ctx,
    app: &App,
    actor: &Actor,
    msg_id: &MsgId,
) -> Result<(Vec<Extension>, i64), DeliveryError> {
    let msg = load_for(p, app, actor, msg_id).await?;
    let list = p
        .store()
        .message_extensions(&app.id, std::slice::from_ref(msg_id))
        .await?
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    Ok((list, msg.version))
}

/// Sets and deletes extension keys of a message, all or none; a key whose version is not
/// the one expected is a `version_conflict`. Returns every key set now and the message's
/// version.
pub async fn update_extensions(
    p: &Ctx,
    app: &App,
    actor: &Actor,
    msg_id: &MsgId,
    updates: &[ExtensionUpdate],
) -> Result<(Vec<Extension>, i64), DeliveryError> {
    validate_extension_updates(updates).map_err(DeliveryError::InvalidArgument)?;
    if let Actor::User(u) = actor {
        require_user(p, app, u).await?;
    }
    let msg = load_for(p, app, actor, msg_id).await?;
    let outcome = p
        .store()
        .update_extensions(&app.id, msg_id, by(actor), updates, now_ms())
        .await?;
    match outcome {
        ExtensionsOutcome::Applied {
            message,
            change,
            extensions,
        } => {
            let push = Push::MessageChanged { change: *change };
            p.publish_to_conversation(app, &message.conversation_id, push).await;
            Ok((extensions, message.version))
        }
        ExtensionsOutcome::Unchanged { extensions } => Ok((extensions, msg.version)),
        ExtensionsOutcome::Conflict { key, version } => Err(DeliveryError::VersionConflict(format!(
            "extension {key:?} is at version {version}"
        ))),
        ExtensionsOutcome::TooMany => Err(DeliveryError::LimitExceeded(format!(
            "a message may hold at most {MAX_EXTENSIONS_PER_MESSAGE} extension keys"
        ))),
        ExtensionsOutcome::Recalled => Err(DeliveryError::MessageRecalled),
    }
}

/// `user` adds (`add`) or removes a reaction on a message they can see. Doing what is done
/// already changes nothing. Returns the reaction as `user` sees it afterwards.
pub async fn react(
    p: &Ctx,
    app: &App,
    user: &UserId,
    msg_id: &MsgId,
    reaction: &str,
    add: bool,
) -> Result<ReactionSummary, DeliveryError> {
    validate_reaction(reaction).map_err(DeliveryError::InvalidArgument)?;
    require_user(p, app, user).await?;
    load_for(p, app, &Actor::User(user.clone()), msg_id).await?;
    let outcome = p
        .store()
        .set_reaction(&app.id, msg_id, user, reaction, add, now_ms())
        .await?;
    match outcome {
        ReactionOutcome::Applied {
            message,
            change,
            summary,
        } => {
            let push = Push::MessageChanged { change: *change };
            p.publish_to_conversation(app, &message.conversation_id, push).await;
            Ok(summary)
        }
        ReactionOutcome::Unchanged { summary } => Ok(summary),
        ReactionOutcome::TooMany(why) => Err(DeliveryError::LimitExceeded(why)),
        ReactionOutcome::Recalled => Err(DeliveryError::MessageRecalled),
    }
}

/// A page of who reacted with one reaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionUsersPage {
    /// Earliest first, with when they reacted.
    pub users: Vec<(UserId, UnixMillis)>,
    /// Present when the page is full: pass it back for the next one.
    pub next_cursor: Option<String>,
}

/// Who reacted with `reaction`, earliest first, from `cursor` (a `next_cursor`) on.
pub async fn reaction_users(
    p: &Ctx,
    app: &App,
    actor: &Actor,
    msg_id: &MsgId,
    reaction: &str,
    cursor: Option<&str>,
    limit: u32,
) -> Result<ReactionUsersPage, DeliveryError> {
    validate_reaction(reaction).map_err(DeliveryError::InvalidArgument)?;
    let after = cursor.map(parse_reaction_cursor).transpose()?;
    load_for(p, app, actor, msg_id).await?;
    let limit = clamp_limit(limit);
    let users = p
        .store()
        .reaction_users(&app.id, msg_id, reaction, after, limit)
        .await?;
    let next_cursor = (users.len() == limit as usize)
        .then(|| users.last().map(|(u, t)| reaction_cursor(*t, u)))
        .flatten();
    Ok(ReactionUsersPage { users, next_cursor })
}

/// Cursors are opaque to callers: base64url of `<reacted_at>:<user>`.
fn reaction_cursor(at: UnixMillis, user: &UserId) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{at}:{user}"))
}

fn parse_reaction_cursor(cursor: &str) -> Result<(UnixMillis, UserId), DeliveryError> {
    use base64::Engine;
    let bad = || DeliveryError::InvalidArgument("cursor is malformed".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (at, user) = raw.split_once(':').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, UserId::parse(user).map_err(|_| bad())?))
}

/// A page of a conversation's changes after `since`, as `user` sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangesPage {
    pub changes: Vec<MessageChange>,
    /// Pass as `since` next time: every change up to it has been given.
    pub version: i64,
    /// More changes wait after `version`.
    pub has_more: bool,
}

/// The changes of `conversation` after version `since` that `user` should see, lowest
/// version first: edits, recalls, extensions and reactions of messages they can see, and
/// their own deletes for themselves.
pub async fn changes(
    p: &Ctx,
    app: &App,
    user: &UserId,
    conversation: &ConversationId,
    since: i64,
    limit: u32,
) -> Result<ChangesPage, DeliveryError> {
    if since < 0 {
        return Err(DeliveryError::InvalidArgument("since_version must be 0 or more".into()));
    }
    let joined_seq = match conversation {
        ConversationId::Group(g) => {
            p.store()
                .group_member(&app.id, g, user)
                .await?
                .ok_or(DeliveryError::NotFound("conversation"))?
                .joined_seq
        }
        _ if !p.can_read(app, user, conversation).await? => return Err(DeliveryError::NotFound("conversation")),
        _ => 0,
    };
    let limit = clamp_limit(limit);
    let mut found = p
        .store()
        .message_changes(&app.id, conversation, user, since, limit + 1)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => DeliveryError::NotFound("conversation"),
            e => e.into(),
        })?;
    let has_more = found.len() > limit as usize;
    found.truncate(limit as usize);
    let version = found.last().map_or(since, |c| c.version);
    // A member sees the changes of what was sent after they joined.
    found.retain(|c| c.seq > joined_seq);
    Ok(ChangesPage {
        changes: found,
        version,
        has_more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaction_cursors_round_trip_and_refuse_garbage() {
        let u = UserId::parse("a.b@c").unwrap_or_else(|e| panic!("{e}"));
        let c = reaction_cursor(1_767_225_600_123, &u);
        assert_eq!(parse_reaction_cursor(&c).ok(), Some((1_767_225_600_123, u)));
        for bad in ["", "!!", "bm9jb2xvbg", "eDp5"] {
            assert!(parse_reaction_cursor(bad).is_err(), "{bad}");
        }
    }
}
