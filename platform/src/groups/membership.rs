//! Who is in a group: adding and inviting, removing, leaving, joining and the join
//! requests an `approval` group keeps for its admins.

use super::*;

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
    p: &Ctx,
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
    p: &Ctx,
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
    p: &Ctx,
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
pub async fn leave(p: &Ctx, app: &App, user: &UserId, id: &GroupId) -> Result<(), DeliveryError> {
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
pub async fn join(p: &Ctx, app: &App, user: &UserId, id: &GroupId, message: &str) -> Result<Joined, DeliveryError> {
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
    p: &Ctx,
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
    p: &Ctx,
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
