//! Groups, for the server API (`Actor::Server`, which may do anything in its app) and for
//! users from the SDK (`Actor::User`, checked against their role): one set of operations so
//! every door gives the same answers and codes. docs/groups.md is the guide.
//!
//! Every change is one store transaction that also appends a `system` message to the group's
//! timeline (so members see "bob joined" in order, and a syncing device gets it like any
//! message), writes the webhook after-events, and for a member put out of the group
//! (removed, or the group dismissed) a `system` message to their own `s:<user>` conversation.
//! Only after the commit are the messages pushed.
//!
//! - `membership`: adding, removing, leaving, joining and join requests.
//! - `members`: listing members, roles, mutes, the ownership, a user's groups.
//! - `reading`: read receipts, read counts and readers.
//!
//! Who may do what (the permission matrix, the mention limit, the checks of a group send)
//! is `rules::groups`, re-exported here as `rules`; each node's member snapshots are
//! `context::group_cache`. Both sit below the pipeline, which asks them on every group send.

mod members;
mod membership;
mod reading;
pub use crate::rules::groups as rules;

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::bus::Push;
use crate::context::Ctx;
use crate::delivery::{Actor, DeliveryError};
use crate::domain::*;
use crate::ids::{ConversationId, GroupId, MsgId, UserId};
use crate::store::{GroupChange, GroupRecord, JoinAnswer, MemberChange, NewGroup, SeqRange, StoreError};
use crate::webhook;

pub use crate::context::group_cache::{GroupSnapshot, MemberState};
pub use members::*;
pub use membership::*;
pub(crate) use reading::tell_senders;
pub use reading::{check_read_count_batch, read_counts, readers};
pub use rules::{InviteEffect, Standing};

/// A group to create. From the SDK the owner is the creating user.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// `None`: Tern makes one (`grp_` + a ULID).
    pub id: Option<GroupId>,
    pub name: String,
    pub owner: UserId,
    /// Besides the owner.
    pub members: Vec<UserId>,
    pub metadata: Value,
    pub avatar_url: Option<String>,
    pub announcement: String,
    pub join_policy: JoinPolicy,
}

/// What an invitation did: who became a member, who got a join request instead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Invited {
    pub added: Vec<UserId>,
    pub requested: Vec<UserId>,
}

/// What asking to join did.
#[derive(Debug, Clone, PartialEq)]
pub enum Joined {
    /// In at once (a `free` group, or already a member).
    Member(GroupMember),
    /// A request waits for an admin (an `approval` group).
    Requested(GroupJoinRequest),
}

/// How many of the members who can see a message have read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCount {
    pub msg_id: MsgId,
    pub seq: i64,
    /// Members other than the sender, there when it was sent, whose read position is at or
    /// past it.
    pub read: i64,
    /// The other members who were there when it was sent.
    pub unread: i64,
}

/// Most messages one read-count query names.
pub const MAX_READ_COUNT_MESSAGES: usize = 100;
/// Most newly read messages whose senders get a `receipt` when a member reads.
pub const MAX_RECEIPT_MESSAGES: u32 = 100;

fn by(actor: &Actor) -> Option<&UserId> {
    match actor {
        Actor::Server => None,
        Actor::User(u) => Some(u),
    }
}

/// Content of a group notice: `{"event", "group_id", "by", ...fields}`.
fn notice(event: &str, group: &GroupId, actor: Option<&UserId>, fields: Value) -> Value {
    let mut out = json!({"event": event, "group_id": group, "by": actor});
    if let (Some(o), Value::Object(f)) = (out.as_object_mut(), fields) {
        o.extend(f);
    }
    out
}

fn event(app: &App, event_type: &str, data: Value) -> Vec<crate::store::NewOutboxEvent> {
    webhook::after_event(app, event_type, data, now_ms())
        .into_iter()
        .collect()
}

fn store_err(e: StoreError) -> DeliveryError {
    match e {
        StoreError::Conflict(m) => DeliveryError::Conflict(m),
        e => e.into(),
    }
}

/// A full group answers `group_full`, not `forbidden`.
fn full_err(e: StoreError) -> DeliveryError {
    match e {
        StoreError::Rejected(m) => DeliveryError::GroupFull(m),
        e => store_err(e),
    }
}

async fn require_users(p: &Ctx, app: &App, users: &[UserId]) -> Result<(), DeliveryError> {
    let existing = p.store().existing_users(&app.id, users).await?;
    let missing: Vec<String> = users
        .iter()
        .filter(|u| !existing.contains(u))
        .map(|u| u.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DeliveryError::UsersNotFound(missing))
    }
}

fn dedup(users: &[UserId]) -> Vec<UserId> {
    let mut seen = BTreeSet::new();
    users.iter().filter(|u| seen.insert(*u)).cloned().collect()
}

/// The group and how `actor` stands in it. `not_found` for no group (or another app's).
async fn standing(p: &Ctx, app: &App, id: &GroupId, actor: &Actor) -> Result<(Group, Standing), DeliveryError> {
    let store = p.store();
    let group = store
        .group(&app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("group"))?;
    let standing = match actor {
        Actor::Server => Standing::Server,
        Actor::User(u) => match store.group_member(&app.id, id, u).await? {
            Some(m) => Standing::Member(m.role),
            None => Standing::Outsider,
        },
    };
    Ok((group, standing))
}

/// The group, if the caller's standing in it lets them `what` (by `rule`); `forbidden`
/// otherwise.
async fn permitted(
    p: &Ctx,
    app: &App,
    id: &GroupId,
    actor: &Actor,
    rule: fn(Standing) -> bool,
    what: &str,
) -> Result<Group, DeliveryError> {
    let (group, s) = standing(p, app, id, actor).await?;
    if !rule(s) {
        return Err(refuse(s, what));
    }
    Ok(group)
}

fn refuse(s: Standing, what: &str) -> DeliveryError {
    match s {
        Standing::Outsider => DeliveryError::Forbidden(format!("only members of the group may {what}")),
        _ => DeliveryError::Forbidden(format!("your role in the group does not allow you to {what}")),
    }
}

/// Pushes what a change stored: the notice to the members as they are now, each personal
/// notice to its user.
async fn publish<T>(p: &Ctx, app: &App, id: &GroupId, change: &GroupChange<T>) {
    p.forget_group(app, id);
    if let Some(message) = &change.notice {
        match p.group_snapshot(app, id).await {
            Ok(s) => {
                let push = Push::Message {
                    message: message.clone(),
                };
                p.publish_to_users(app, s.ids(), push).await;
            }
            Err(e) => tracing::warn!(error = %e, "group members lookup failed; the notice is left to sync"),
        }
    }
    for message in &change.personal {
        if let ConversationId::System(user) = &message.conversation_id {
            // Like everything in a user's system conversation: a kept notification.
            let push = Push::KeptNotification {
                message: message.clone(),
            };
            p.publish_to_users(app, std::slice::from_ref(user), push).await;
        }
    }
}

fn notification(kind: &str, data: Value) -> Push {
    let mut content = json!({ "type": kind });
    if let (Some(c), Value::Object(d)) = (content.as_object_mut(), data) {
        c.extend(d);
    }
    Push::Notification {
        id: format!("n_{}", ulid::Ulid::new().to_string().to_ascii_lowercase()),
        content,
        created_at: now_ms(),
    }
}

/// Tells the owner and admins (on their connected devices) that a request waits.
async fn notify_admins(p: &Ctx, app: &App, request: &GroupJoinRequest) {
    match p.group_snapshot(app, &request.group_id).await {
        Ok(s) => {
            let push = notification(
                "group_join_request",
                json!({"group_id": request.group_id, "user_id": request.user_id,
                       "message": request.message, "inviter": request.inviter}),
            );
            p.publish_to_users(app, &s.admins(), push).await;
        }
        Err(e) => tracing::warn!(error = %e, "could not tell the admins of a join request"),
    }
}

// ---- create, read, update, dismiss -------------------------------------------------

/// Creates a group. Users may create groups when the app allows it, owning what they
/// create; the server API names any owner.
pub async fn create(p: &Ctx, app: &App, actor: &Actor, spec: GroupSpec) -> Result<Group, DeliveryError> {
    if let Actor::User(u) = actor {
        if !app.settings.users_may_create_groups {
            return Err(DeliveryError::Forbidden(
                "this app does not let users create groups".into(),
            ));
        }
        if spec.owner != *u {
            return Err(DeliveryError::Forbidden("a user creates groups they own".into()));
        }
    }
    validate_group_name(&spec.name).map_err(DeliveryError::InvalidArgument)?;
    if let Some(url) = &spec.avatar_url {
        validate_avatar_url(url).map_err(DeliveryError::InvalidArgument)?;
    }
    if spec.announcement.chars().count() > MAX_ANNOUNCEMENT_CHARS {
        return Err(DeliveryError::InvalidArgument(format!(
            "announcement must be at most {MAX_ANNOUNCEMENT_CHARS} characters"
        )));
    }
    validate_group_metadata(&spec.metadata).map_err(DeliveryError::InvalidArgument)?;
    if spec.members.len() > MAX_GROUP_MEMBER_LIMIT {
        return Err(DeliveryError::InvalidArgument(format!(
            "members must hold at most {MAX_GROUP_MEMBER_LIMIT} users"
        )));
    }
    let members: Vec<UserId> = dedup(&spec.members).into_iter().filter(|u| *u != spec.owner).collect();
    let mut everyone = members.clone();
    everyone.push(spec.owner.clone());
    require_users(p, app, &everyone).await?;
    let id = match spec.id {
        Some(id) => id,
        None => GroupId::parse(&format!("grp_{}", ulid::Ulid::new().to_string().to_ascii_lowercase()))?,
    };
    let by = by(actor);
    let group = NewGroup {
        notice: Some(notice(
            "group_created",
            &id,
            by,
            json!({"name": spec.name, "owner": spec.owner, "members": members}),
        )),
        events: event(
            app,
            "group.created",
            json!({"group_id": id, "name": spec.name, "owner": spec.owner, "members": members, "by": by}),
        ),
        id,
        name: spec.name,
        owner: spec.owner,
        members,
        metadata: spec.metadata,
        avatar_url: spec.avatar_url,
        announcement: spec.announcement,
        join_policy: spec.join_policy,
        member_limit: app.settings.group_member_limit,
    };
    let change = p
        .store()
        .create_group(&app.id, &group, now_ms())
        .await
        .map_err(full_err)?;
    p.outbox_written(!group.events.is_empty());
    publish(p, app, &group.id, &change).await;
    Ok(change.value)
}

/// Any user of the app may read a group's profile (to decide whether to join it).
pub async fn get(p: &Ctx, app: &App, id: &GroupId) -> Result<Group, DeliveryError> {
    p.store()
        .group(&app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("group"))
}

/// Changes the profile (the owner and admins; the server API). A patch that changes nothing
/// writes nothing.
pub async fn update(
    p: &Ctx,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    patch: GroupPatch,
) -> Result<Group, DeliveryError> {
    patch.validate().map_err(DeliveryError::InvalidArgument)?;
    let group = permitted(
        p,
        app,
        id,
        actor,
        rules::may_update_profile,
        "change the group's profile",
    )
    .await?;
    let changed = patch.changes(&group);
    if changed.is_empty() {
        return Ok(group);
    }
    let by = by(actor);
    let record = GroupRecord {
        notice: Some(notice("group_updated", id, by, json!({ "changed": changed }))),
        actor: by.cloned(),
        personal: Vec::new(),
        events: event(
            app,
            "group.updated",
            json!({"group_id": id, "changed": changed, "by": by}),
        ),
    };
    let change = p
        .store()
        .update_group(&app.id, id, &patch, &record, now_ms())
        .await
        .map_err(store_err)?;
    p.outbox_written(!record.events.is_empty());
    publish(p, app, id, &change).await;
    Ok(change.value)
}

/// Dismisses the group (its owner; the server API): the group, its timeline and every
/// member's entry go; each member gets a `group_dismissed` notice in their `s:<user>`
/// conversation.
pub async fn dismiss(p: &Ctx, app: &App, actor: &Actor, id: &GroupId) -> Result<(), DeliveryError> {
    let group = permitted(p, app, id, actor, rules::may_dismiss, "dismiss the group").await?;
    let by = by(actor);
    let events = event(
        app,
        "group.dismissed",
        json!({"group_id": id, "name": group.name, "by": by}),
    );
    let has_events = !events.is_empty();
    let content = notice("group_dismissed", id, by, json!({"name": group.name}));
    let change = p
        .store()
        .dismiss_group(&app.id, id, now_ms(), &|members: &[UserId]| GroupRecord {
            notice: None,
            actor: None,
            personal: members.iter().map(|m| (m.clone(), content.clone())).collect(),
            events: events.clone(),
        })
        .await
        .map_err(store_err)?;
    p.outbox_written(has_events);
    publish(p, app, id, &change).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_carry_the_event_the_group_and_who_did_it() {
        let g = GroupId::parse("team").unwrap_or_else(|e| panic!("{e}"));
        let alice = UserId::parse("alice").unwrap_or_else(|e| panic!("{e}"));
        let n = notice("member_removed", &g, Some(&alice), json!({"user": "bob"}));
        assert_eq!(
            n,
            json!({"event": "member_removed", "group_id": "team", "by": "alice", "user": "bob"})
        );
        let n = notice("member_left", &g, None, json!({}));
        assert_eq!(n, json!({"event": "member_left", "group_id": "team", "by": null}));
    }
}
