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
//! - `rules`: who may do what (the permission matrix).
//! - `cache`: each node's member snapshots, which make fan-out to big groups cheap.

pub mod cache;
pub mod rules;

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::bus::Push;
use crate::delivery::{Actor, DeliveryError, Pipeline, SendOptions};
use crate::domain::*;
use crate::ids::{ConversationId, GroupId, MsgId, UserId};
use crate::store::{GroupChange, GroupRecord, JoinAnswer, MemberChange, NewGroup, SeqRange, StoreError};
use crate::webhook;

pub use cache::{GroupSnapshot, MemberState};
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

async fn require_users(p: &Pipeline, app: &App, users: &[UserId]) -> Result<(), DeliveryError> {
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
async fn standing(p: &Pipeline, app: &App, id: &GroupId, actor: &Actor) -> Result<(Group, Standing), DeliveryError> {
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
    p: &Pipeline,
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
async fn publish<T>(p: &Pipeline, app: &App, id: &GroupId, change: &GroupChange<T>) {
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
async fn notify_admins(p: &Pipeline, app: &App, request: &GroupJoinRequest) {
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
pub async fn create(p: &Pipeline, app: &App, actor: &Actor, spec: GroupSpec) -> Result<Group, DeliveryError> {
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
pub async fn get(p: &Pipeline, app: &App, id: &GroupId) -> Result<Group, DeliveryError> {
    p.store()
        .group(&app.id, id)
        .await?
        .ok_or(DeliveryError::NotFound("group"))
}

/// Changes the profile (the owner and admins; the server API). A patch that changes nothing
/// writes nothing.
pub async fn update(
    p: &Pipeline,
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
pub async fn dismiss(p: &Pipeline, app: &App, actor: &Actor, id: &GroupId) -> Result<(), DeliveryError> {
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

// ---- membership --------------------------------------------------------------------

fn check_batch(users: &[UserId]) -> Result<(), DeliveryError> {
    if !(1..=MAX_MEMBERS_PER_CALL).contains(&users.len()) {
        return Err(DeliveryError::InvalidArgument(format!(
            "members must hold 1 to {MAX_MEMBERS_PER_CALL} users"
        )));
    }
    Ok(())
}

/// Adds members (the server API, the owner and admins) or invites them (members: the join
/// policy decides, see `rules::invite_effect`). Members already in are skipped.
pub async fn add_members(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    users: &[UserId],
) -> Result<Invited, DeliveryError> {
    check_batch(users)?;
    let users = dedup(users);
    let (group, s) = standing(p, app, id, actor).await?;
    let effect = rules::invite_effect(s, group.join_policy);
    if effect == InviteEffect::Refuse {
        return Err(refuse(s, "invite"));
    }
    require_users(p, app, &users).await?;
    let by = by(actor);
    if effect == InviteEffect::Request {
        let mut requested = Vec::new();
        for u in &users {
            if p.store().group_member(&app.id, id, u).await?.is_some() {
                continue;
            }
            let request = ask(p, app, id, u, "", by).await?;
            requested.push(request.user_id);
        }
        return Ok(Invited {
            added: Vec::new(),
            requested,
        });
    }
    let change = p
        .store()
        .add_group_members(
            &app.id,
            id,
            &users,
            app.settings.group_member_limit,
            now_ms(),
            &|added: &[UserId]| GroupRecord {
                notice: Some(notice("members_added", id, by, json!({ "users": added }))),
                actor: by.cloned(),
                personal: Vec::new(),
                events: event(
                    app,
                    "group.member_added",
                    json!({"group_id": id, "members": added, "by": by}),
                ),
            },
        )
        .await
        .map_err(full_err)?;
    p.outbox_written(!change.value.is_empty() && app.settings.webhook.wants("group.member_added"));
    publish(p, app, id, &change).await;
    Ok(Invited {
        added: change.value,
        requested: Vec::new(),
    })
}

/// Stores a pending join request and tells the admins.
async fn ask(
    p: &Pipeline,
    app: &App,
    id: &GroupId,
    user: &UserId,
    message: &str,
    inviter: Option<&UserId>,
) -> Result<GroupJoinRequest, DeliveryError> {
    let now = now_ms();
    let request = GroupJoinRequest {
        group_id: id.clone(),
        user_id: user.clone(),
        message: message.to_owned(),
        inviter: inviter.cloned(),
        state: JoinRequestState::Pending,
        created_at: now,
        updated_at: now,
    };
    let events = event(
        app,
        "group.join_requested",
        json!({"group_id": id, "user_id": user, "message": message, "inviter": inviter}),
    );
    let stored = p
        .store()
        .put_group_join_request(&app.id, &request, &events)
        .await
        .map_err(store_err)?;
    p.outbox_written(!events.is_empty());
    notify_admins(p, app, &stored).await;
    Ok(stored)
}

/// Removes a member: admins remove members, the owner removes admins too, the server API
/// anyone; nobody removes the owner. The removed user gets a `removed_from_group` notice in
/// their `s:<user>` conversation and stops receiving the group's messages at once.
pub async fn remove_member(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    user: &UserId,
) -> Result<(), DeliveryError> {
    if by(actor) == Some(user) {
        return Err(DeliveryError::InvalidArgument("to leave a group, use leave".into()));
    }
    let (group, s) = standing(p, app, id, actor).await?;
    let target = p
        .store()
        .group_member(&app.id, id, user)
        .await?
        .ok_or(DeliveryError::NotFound("group member"))?;
    if !rules::may_manage(s, target.role) {
        return Err(refuse(s, &format!("remove this {}", target.role.as_str())));
    }
    let by = by(actor);
    let record = GroupRecord {
        notice: Some(notice("member_removed", id, by, json!({ "user": user }))),
        actor: by.cloned(),
        personal: vec![(
            user.clone(),
            notice("removed_from_group", id, by, json!({"name": group.name})),
        )],
        events: event(
            app,
            "group.member_removed",
            json!({"group_id": id, "user_id": user, "by": by}),
        ),
    };
    let change = p
        .store()
        .remove_group_member(&app.id, id, user, &record, now_ms())
        .await
        .map_err(store_err)?;
    p.outbox_written(!record.events.is_empty());
    publish(p, app, id, &change).await;
    Ok(())
}

/// `user` leaves the group. The owner must transfer the ownership first.
pub async fn leave(p: &Pipeline, app: &App, user: &UserId, id: &GroupId) -> Result<(), DeliveryError> {
    let (_, s) = standing(p, app, id, &Actor::User(user.clone())).await?;
    match s {
        Standing::Outsider => return Err(DeliveryError::NotFound("group member")),
        Standing::Member(GroupRole::Owner) => {
            return Err(DeliveryError::Forbidden(
                "the owner must transfer the ownership before leaving".into(),
            ))
        }
        _ => {}
    }
    let record = GroupRecord {
        notice: Some(notice("member_left", id, Some(user), json!({ "user": user }))),
        actor: None,
        personal: Vec::new(),
        events: event(app, "group.member_left", json!({"group_id": id, "user_id": user})),
    };
    let change = p
        .store()
        .remove_group_member(&app.id, id, user, &record, now_ms())
        .await
        .map_err(store_err)?;
    p.outbox_written(!record.events.is_empty());
    publish(p, app, id, &change).await;
    Ok(())
}

/// `user` asks to join: a `free` group takes them at once, an `approval` group stores a
/// request for the admins (who are told), an `invite_only` group refuses. A member asking
/// again is answered with their membership.
pub async fn join(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    id: &GroupId,
    message: &str,
) -> Result<Joined, DeliveryError> {
    if message.chars().count() > MAX_JOIN_MESSAGE_CHARS {
        return Err(DeliveryError::InvalidArgument(format!(
            "message must be at most {MAX_JOIN_MESSAGE_CHARS} characters"
        )));
    }
    require_users(p, app, std::slice::from_ref(user)).await?;
    let store = p.store();
    let group = get(p, app, id).await?;
    if let Some(m) = store.group_member(&app.id, id, user).await? {
        return Ok(Joined::Member(m));
    }
    match group.join_policy {
        JoinPolicy::InviteOnly => Err(DeliveryError::Forbidden(
            "this group is invite-only: a member must invite you".into(),
        )),
        JoinPolicy::Approval => Ok(Joined::Requested(ask(p, app, id, user, message, None).await?)),
        JoinPolicy::Free => {
            let change = store
                .add_group_members(
                    &app.id,
                    id,
                    std::slice::from_ref(user),
                    app.settings.group_member_limit,
                    now_ms(),
                    &|_: &[UserId]| GroupRecord {
                        notice: Some(notice("member_joined", id, None, json!({ "user": user }))),
                        actor: None,
                        personal: Vec::new(),
                        events: event(
                            app,
                            "group.member_joined",
                            json!({"group_id": id, "user_id": user, "by": null}),
                        ),
                    },
                )
                .await
                .map_err(full_err)?;
            p.outbox_written(!change.value.is_empty() && app.settings.webhook.wants("group.member_joined"));
            publish(p, app, id, &change).await;
            store
                .group_member(&app.id, id, user)
                .await?
                .map(Joined::Member)
                .ok_or(DeliveryError::NotFound("group member"))
        }
    }
}

/// Pending join requests, by user id (the owner and admins; the server API).
pub async fn join_requests(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    after: Option<&UserId>,
    limit: u32,
) -> Result<Vec<GroupJoinRequest>, DeliveryError> {
    permitted(p, app, id, actor, rules::may_answer_requests, "see join requests").await?;
    Ok(p.store().group_join_requests(&app.id, id, after, limit).await?)
}

/// Accepts (the user becomes a member) or declines a pending request; the asker gets a
/// `join_request_accepted` or `join_request_declined` notice in their own system
/// conversation, kept for them if they are offline.
pub async fn answer_join_request(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    user: &UserId,
    accept: bool,
) -> Result<GroupJoinRequest, DeliveryError> {
    permitted(p, app, id, actor, rules::may_answer_requests, "answer join requests").await?;
    let by = by(actor);
    let answer = notice(
        if accept {
            "join_request_accepted"
        } else {
            "join_request_declined"
        },
        id,
        by,
        json!({}),
    );
    let change = p
        .store()
        .answer_group_join_request(
            &app.id,
            id,
            user,
            if accept {
                JoinAnswer::Accept {
                    member_limit: app.settings.group_member_limit,
                }
            } else {
                JoinAnswer::Decline
            },
            now_ms(),
            &|joined: &[UserId]| {
                let personal = vec![(user.clone(), answer.clone())];
                match joined.first() {
                    Some(u) => GroupRecord {
                        notice: Some(notice("member_joined", id, by, json!({ "user": u }))),
                        actor: by.cloned(),
                        personal,
                        events: event(
                            app,
                            "group.member_joined",
                            json!({"group_id": id, "user_id": u, "by": by}),
                        ),
                    },
                    None => GroupRecord {
                        personal,
                        ..GroupRecord::default()
                    },
                }
            },
        )
        .await
        .map_err(full_err)?;
    p.outbox_written(change.notice.is_some() && app.settings.webhook.wants("group.member_joined"));
    publish(p, app, id, &change).await;
    Ok(change.value)
}

// ---- members -----------------------------------------------------------------------

/// Members by user id with role, joined_at and muted_until (members; the server API).
pub async fn members(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    after: Option<&UserId>,
    limit: u32,
) -> Result<Vec<GroupMember>, DeliveryError> {
    permitted(p, app, id, actor, rules::may_see_members, "see the member list").await?;
    Ok(p.store().group_members(&app.id, id, after, limit).await?)
}

pub async fn member(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    user: &UserId,
) -> Result<GroupMember, DeliveryError> {
    permitted(p, app, id, actor, rules::may_see_members, "see the member list").await?;
    p.store()
        .group_member(&app.id, id, user)
        .await?
        .ok_or(DeliveryError::NotFound("group member"))
}

/// Makes a member an admin or an admin a member (the owner; the server API).
pub async fn set_role(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    user: &UserId,
    role: GroupRole,
) -> Result<GroupMember, DeliveryError> {
    if role == GroupRole::Owner {
        return Err(DeliveryError::InvalidArgument(
            "role must be admin or member; ownership moves by a transfer".into(),
        ));
    }
    permitted(p, app, id, actor, rules::may_set_roles, "change roles").await?;
    let target = p
        .store()
        .group_member(&app.id, id, user)
        .await?
        .ok_or(DeliveryError::NotFound("group member"))?;
    if target.role == GroupRole::Owner {
        return Err(DeliveryError::Forbidden(
            "the owner's role changes only by a transfer".into(),
        ));
    }
    if target.role == role {
        return Ok(target);
    }
    let by = by(actor);
    let record = GroupRecord {
        notice: Some(notice("role_changed", id, by, json!({"user": user, "role": role}))),
        actor: by.cloned(),
        personal: Vec::new(),
        events: event(
            app,
            "group.role_changed",
            json!({"group_id": id, "user_id": user, "role": role, "by": by}),
        ),
    };
    change_member(p, app, id, user, MemberChange::Role(role), &record).await
}

/// Writes one member's role or mute change with its notice and events, then tells the group.
async fn change_member(
    p: &Pipeline,
    app: &App,
    id: &GroupId,
    user: &UserId,
    what: MemberChange,
    record: &GroupRecord,
) -> Result<GroupMember, DeliveryError> {
    let change = p
        .store()
        .change_group_member(&app.id, id, user, what, record, now_ms())
        .await
        .map_err(store_err)?;
    p.outbox_written(!record.events.is_empty());
    publish(p, app, id, &change).await;
    Ok(change.value)
}

/// Mutes a member until a time (`Some`), or lifts their mute (`None`): admins mute members,
/// the owner admins too, the server API anyone but the owner.
pub async fn mute_member(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    user: &UserId,
    until: Option<UnixMillis>,
) -> Result<GroupMember, DeliveryError> {
    if until.is_some_and(|t| t <= now_ms() || t > FOREVER) {
        return Err(DeliveryError::InvalidArgument(format!(
            "until must be in the future and at most {FOREVER}"
        )));
    }
    let (_, s) = standing(p, app, id, actor).await?;
    let target = p
        .store()
        .group_member(&app.id, id, user)
        .await?
        .ok_or(DeliveryError::NotFound("group member"))?;
    if !rules::may_manage(s, target.role) {
        return Err(refuse(s, &format!("mute this {}", target.role.as_str())));
    }
    let by = by(actor);
    let (kind, fields) = match until {
        Some(t) => ("member_muted", json!({"user": user, "until": t})),
        None => ("member_unmuted", json!({ "user": user })),
    };
    let record = GroupRecord {
        notice: Some(notice(kind, id, by, fields)),
        actor: by.cloned(),
        personal: Vec::new(),
        events: event(
            app,
            "group.member_muted",
            json!({"group_id": id, "user_id": user, "until": until, "by": by}),
        ),
    };
    change_member(p, app, id, user, MemberChange::Mute(until), &record).await
}

/// Hands the ownership to another member (the owner; the server API); the old owner
/// becomes a member.
pub async fn transfer(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    to: &UserId,
) -> Result<Group, DeliveryError> {
    let group = permitted(p, app, id, actor, rules::may_transfer, "transfer the ownership").await?;
    if group.owner == *to {
        return Err(DeliveryError::InvalidArgument(format!("{to} owns the group already")));
    }
    let by = by(actor);
    let from = group.owner.clone();
    let record = GroupRecord {
        notice: Some(notice("owner_transferred", id, by, json!({"from": from, "to": to}))),
        actor: by.cloned(),
        personal: Vec::new(),
        events: event(
            app,
            "group.owner_transferred",
            json!({"group_id": id, "from": from, "to": to, "by": by}),
        ),
    };
    let change = p
        .store()
        .transfer_group_owner(&app.id, id, &from, to, &record, now_ms())
        .await
        .map_err(|e| match e {
            // The owner changed in between: as if the caller no longer owned it.
            StoreError::Rejected(m) => DeliveryError::Conflict(m),
            e => store_err(e),
        })?;
    p.outbox_written(!record.events.is_empty());
    publish(p, app, id, &change).await;
    Ok(change.value)
}

/// The groups `user` is in, by group id.
pub async fn user_groups(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    after: Option<&GroupId>,
    limit: u32,
) -> Result<Vec<Group>, DeliveryError> {
    require_users(p, app, std::slice::from_ref(user)).await?;
    Ok(p.store().user_groups(&app.id, user, after, limit).await?)
}

// ---- sending and reading -----------------------------------------------------------

/// Whether `sender` may send to the group with these options: a member, not muted there,
/// not silenced by `mute_all`; @all from the SDK by the owner and admins only; mentions
/// only of members.
pub(crate) fn check_send(
    snapshot: &GroupSnapshot,
    sender: &Sender,
    options: &SendOptions,
    source: Source,
    now: UnixMillis,
) -> Result<(), DeliveryError> {
    if let Sender::User(u) = sender {
        let m = snapshot
            .member(u)
            .ok_or_else(|| DeliveryError::Forbidden("the sender is not a member of the group".into()))?;
        if let Some(until) = m.muted_until.filter(|t| *t > now) {
            return Err(DeliveryError::MemberMuted { until });
        }
        if snapshot.group.mute_all && !rules::may_speak_when_muted(m.role) {
            return Err(DeliveryError::GroupMuted);
        }
        if options.mention_all && source == Source::Sdk && !rules::may_mention_all(m.role) {
            return Err(DeliveryError::Forbidden(
                "only the owner and admins may mention everyone".into(),
            ));
        }
    }
    if options.mentions.len() > MAX_MENTIONS {
        return Err(DeliveryError::InvalidArgument(format!(
            "a message may mention at most {MAX_MENTIONS} users"
        )));
    }
    let strangers: Vec<&str> = options
        .mentions
        .iter()
        .filter(|u| snapshot.member(u).is_none())
        .map(UserId::as_str)
        .collect();
    if !strangers.is_empty() {
        return Err(DeliveryError::InvalidArgument(format!(
            "only members can be mentioned; not members: {}",
            strangers.join(", ")
        )));
    }
    Ok(())
}

/// After `reader` read the group from `before` up to `read_seq`: the senders of the newly
/// read messages (of the last `MAX_RECEIPT_MESSAGES` of them) get a `receipt`, in groups
/// small enough to keep read receipts. Failures are logged: the read itself is stored.
pub(crate) async fn tell_senders(p: &Pipeline, app: &App, reader: &UserId, id: &GroupId, before: i64, read_seq: i64) {
    let snapshot = match p.group_snapshot(app, id).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "no group for a read receipt");
            return;
        }
    };
    if !receipts_kept(app, &snapshot.group) {
        return;
    }
    let span = u32::try_from(read_seq - before)
        .unwrap_or(u32::MAX)
        .min(MAX_RECEIPT_MESSAGES);
    let conversation = ConversationId::Group(id.clone());
    let messages = match p
        .store()
        .messages(&app.id, &conversation, SeqRange::Before(read_seq + 1), span)
        .await
    {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the messages of a read receipt");
            return;
        }
    };
    let senders: BTreeSet<UserId> = messages
        .into_iter()
        .filter(|m| m.seq > before)
        .filter_map(|m| m.sender.user().cloned())
        .filter(|u| u != reader && snapshot.member(u).is_some())
        .collect();
    if senders.is_empty() {
        return;
    }
    let senders: Vec<UserId> = senders.into_iter().collect();
    let push = Push::Receipt {
        conversation_id: conversation,
        user_id: reader.clone(),
        read_seq,
    };
    p.publish_to_users(app, &senders, push).await;
}

fn receipts_kept(app: &App, group: &Group) -> bool {
    let limit = app.settings.group_read_receipt_limit;
    limit > 0 && group.member_count as usize <= limit
}

/// The messages `msg_ids` of the group, as `actor` may see them.
async fn group_messages(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    msg_ids: &[MsgId],
) -> Result<(Group, Vec<Message>), DeliveryError> {
    let group = permitted(p, app, id, actor, rules::may_see_members, "see read receipts").await?;
    if !receipts_kept(app, &group) {
        return Err(DeliveryError::ReceiptsUnavailable(format!(
            "read receipts are kept for groups of at most {} members; this one has {}",
            app.settings.group_read_receipt_limit, group.member_count
        )));
    }
    let joined_seq = match actor {
        Actor::Server => 0,
        Actor::User(u) => p
            .store()
            .group_member(&app.id, id, u)
            .await?
            .map_or(i64::MAX, |m| m.joined_seq),
    };
    let conversation = ConversationId::Group(id.clone());
    let mut out = Vec::with_capacity(msg_ids.len());
    for msg_id in msg_ids {
        let m = p
            .store()
            .message(&app.id, msg_id)
            .await?
            .filter(|m| m.conversation_id == conversation && m.seq > joined_seq)
            .ok_or(DeliveryError::NotFound("message"))?;
        out.push(m);
    }
    Ok((group, out))
}

/// Whether `pos` counts for `m`: a member other than its sender, there when it was sent.
fn counts_for(pos: &ReadPosition, m: &Message) -> bool {
    m.sender.user() != Some(&pos.user_id) && pos.joined_seq < m.seq
}

/// Per-message read counts, in the order asked (members; the server API), for groups up
/// to the app's `group_read_receipt_limit`.
pub async fn read_counts(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    msg_ids: &[MsgId],
) -> Result<Vec<ReadCount>, DeliveryError> {
    if !(1..=MAX_READ_COUNT_MESSAGES).contains(&msg_ids.len()) {
        return Err(DeliveryError::InvalidArgument(format!(
            "msg_ids must hold 1 to {MAX_READ_COUNT_MESSAGES} messages"
        )));
    }
    let (_, messages) = group_messages(p, app, actor, id, msg_ids).await?;
    let positions = p.store().group_read_positions(&app.id, id).await?;
    Ok(messages
        .into_iter()
        .map(|m| {
            let (read, unread) = positions
                .iter()
                .filter(|pos| counts_for(pos, &m))
                .fold(
                    (0, 0),
                    |(r, u), pos| {
                        if pos.read_seq >= m.seq {
                            (r + 1, u)
                        } else {
                            (r, u + 1)
                        }
                    },
                );
            ReadCount {
                msg_id: m.msg_id,
                seq: m.seq,
                read,
                unread,
            }
        })
        .collect())
}

/// Who has read one message (or, with `unread`, who has not), by user id, paged.
#[allow(clippy::too_many_arguments)]
pub async fn readers(
    p: &Pipeline,
    app: &App,
    actor: &Actor,
    id: &GroupId,
    msg_id: &MsgId,
    unread: bool,
    after: Option<&UserId>,
    limit: u32,
) -> Result<Vec<UserId>, DeliveryError> {
    let (_, messages) = group_messages(p, app, actor, id, std::slice::from_ref(msg_id)).await?;
    let Some(m) = messages.first() else {
        return Err(DeliveryError::NotFound("message"));
    };
    let positions = p.store().group_read_positions(&app.id, id).await?;
    Ok(positions
        .into_iter()
        .filter(|pos| counts_for(pos, m) && (pos.read_seq >= m.seq) != unread)
        .filter(|pos| after.is_none_or(|a| pos.user_id > *a))
        .take(limit as usize)
        .map(|pos| pos.user_id)
        .collect())
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
