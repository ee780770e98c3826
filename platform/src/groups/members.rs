//! The members of a group as the group sees them: listing, roles, mutes, the ownership,
//! and the groups a user is in.

use super::*;

/// Members by user id with role, joined_at and muted_until (members; the server API).
pub async fn members(
    p: &Ctx,
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
    p: &Ctx,
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
    p: &Ctx,
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
    p: &Ctx,
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
    p: &Ctx,
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
pub async fn transfer(p: &Ctx, app: &App, actor: &Actor, id: &GroupId, to: &UserId) -> Result<Group, DeliveryError> {
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
    p: &Ctx,
    app: &App,
    user: &UserId,
    after: Option<&GroupId>,
    limit: u32,
) -> Result<Vec<Group>, DeliveryError> {
    require_users(p, app, std::slice::from_ref(user)).await?;
    Ok(p.store().user_groups(&app.id, user, after, limit).await?)
}
