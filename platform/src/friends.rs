//! Friends and blocks, for the server API (acting for a user) and the gateway (the user
//! themselves): one set of operations so both doors give the same answers.
//!
//! A request or an acceptance reaches the other user at once as a `notification` push;
//! `friend.added` and `friend.removed` go to the webhook outbox in the same transaction as
//! the change. What the pipeline asks before a direct message is stored (blocks, friendship)
//! is in `rules::friends`.

use serde_json::json;

use crate::bus::Push;
use crate::context::Ctx;
use crate::delivery::DeliveryError;
use crate::domain::*;
use crate::ids::UserId;
use crate::store::{Store, StoreError};

pub use crate::rules::friends::{are_friends, check_direct};
use crate::webhook;

/// `friend` as `user` holds them (remark, tags); `not_found` ("friend not found") if `user`
/// does not hold them.
pub async fn get(p: &Ctx, app: &App, user: &UserId, friend: &UserId) -> Result<Friend, DeliveryError> {
    p.store()
        .friend(&app.id, user, friend)
        .await?
        .ok_or(DeliveryError::NotFound("friend"))
}

async fn require_user(store: &dyn Store, app: &App, id: &UserId) -> Result<(), DeliveryError> {
    store
        .user(&app.id, id)
        .await?
        .map(|_| ())
        .ok_or(DeliveryError::NotFound("user"))
}

fn notification(kind: &str, data: serde_json::Value, now: UnixMillis) -> Push {
    let mut content = json!({ "type": kind });
    if let (Some(c), Some(d)) = (content.as_object_mut(), data.as_object()) {
        c.extend(d.clone());
    }
    Push::Notification {
        id: format!("n_{}", ulid::Ulid::new().to_string().to_ascii_lowercase()),
        content,
        created_at: now,
    }
}

/// `from` asks `to` to be friends. `to` gets a `friend_request` notification.
pub async fn request(
    p: &Ctx,
    app: &App,
    from: &UserId,
    to: &UserId,
    message: &str,
) -> Result<FriendRequest, DeliveryError> {
    if from == to {
        return Err(DeliveryError::InvalidArgument(
            "a user cannot befriend themselves".into(),
        ));
    }
    if message.chars().count() > MAX_FRIEND_REQUEST_MESSAGE_CHARS {
        return Err(DeliveryError::InvalidArgument(format!(
            "message must be at most {MAX_FRIEND_REQUEST_MESSAGE_CHARS} characters"
        )));
    }
    let store = p.store().as_ref();
    require_user(store, app, from).await?;
    require_user(store, app, to).await?;
    if p.blocks_user(&app.id, to, from).await? {
        return Err(DeliveryError::Blocked);
    }
    let now = now_ms();
    let req = store
        .create_friend_request(&app.id, from, to, message, now)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => DeliveryError::Conflict(m),
            e => e.into(),
        })?;
    let push = notification("friend_request", json!({"from": from, "message": message}), now);
    p.publish_to_users(app, std::slice::from_ref(to), push).await;
    Ok(req)
}

/// `user` accepts or declines the pending request `from` sent them. On acceptance both
/// become friends, `friend.added` is written, and `from` gets a `friend_accepted`
/// notification.
pub async fn answer(
    p: &Ctx,
    app: &App,
    user: &UserId,
    from: &UserId,
    accept: bool,
) -> Result<FriendRequest, DeliveryError> {
    let store = p.store().as_ref();
    require_user(store, app, user).await?;
    let now = now_ms();
    let event = if accept {
        webhook::after_event(app, "friend.added", json!({"user_id": from, "friend_id": user}), now)
    } else {
        None
    };
    let has_event = event.is_some();
    let req = store
        .answer_friend_request(&app.id, from, user, accept, &event.into_iter().collect::<Vec<_>>(), now)
        .await?;
    p.outbox_written(has_event);
    if accept {
        let push = notification("friend_accepted", json!({"by": user}), now);
        p.publish_to_users(app, std::slice::from_ref(from), push).await;
    }
    Ok(req)
}

/// Takes `friend` off `user`'s list (and `user` off `friend`'s with `both`); writes
/// `friend.removed`.
pub async fn delete(p: &Ctx, app: &App, user: &UserId, friend: &UserId, both: bool) -> Result<(), DeliveryError> {
    let store = p.store().as_ref();
    require_user(store, app, user).await?;
    let now = now_ms();
    let event = webhook::after_event(
        app,
        "friend.removed",
        json!({"user_id": user, "friend_id": friend, "both": both}),
        now,
    );
    let has_event = event.is_some();
    store
        .delete_friend(&app.id, user, friend, both, &event.into_iter().collect::<Vec<_>>())
        .await?;
    p.outbox_written(has_event);
    Ok(())
}

/// Sets the remark and tags `user` keeps on `friend`.
pub async fn update(
    p: &Ctx,
    app: &App,
    user: &UserId,
    friend: &UserId,
    remark: Option<&str>,
    tags: &[String],
) -> Result<Friend, DeliveryError> {
    validate_friend_profile(remark, tags).map_err(DeliveryError::InvalidArgument)?;
    let store = p.store().as_ref();
    require_user(store, app, user).await?;
    Ok(store
        .update_friend(&app.id, user, friend, remark, tags, now_ms())
        .await?)
}

/// Changes what `user` keeps on `friend`: an absent `remark` or `tags` keeps the current
/// one, an empty `remark` clears it.
pub async fn patch(
    p: &Ctx,
    app: &App,
    user: &UserId,
    friend: &UserId,
    remark: Option<String>,
    tags: Option<Vec<String>>,
) -> Result<Friend, DeliveryError> {
    let current = get(p, app, user, friend).await?;
    let remark = match remark {
        None => current.remark,
        Some(r) if r.is_empty() => None,
        Some(r) => Some(r),
    };
    let tags = tags.unwrap_or(current.tags);
    update(p, app, user, friend, remark.as_deref(), &tags).await
}

/// `user` stops hearing from `blocked`: direct messages and friend requests fail with
/// `blocked`. Blocking again is harmless.
pub async fn block(p: &Ctx, app: &App, user: &UserId, blocked: &UserId) -> Result<Block, DeliveryError> {
    if user == blocked {
        return Err(DeliveryError::InvalidArgument("a user cannot block themselves".into()));
    }
    let store = p.store().as_ref();
    require_user(store, app, user).await?;
    require_user(store, app, blocked).await?;
    let block = store.block_user(&app.id, user, blocked, now_ms()).await?;
    p.forget_blocks(&app.id, user);
    Ok(block)
}

pub async fn unblock(p: &Ctx, app: &App, user: &UserId, blocked: &UserId) -> Result<(), DeliveryError> {
    let store = p.store().as_ref();
    require_user(store, app, user).await?;
    let unblocked = store.unblock_user(&app.id, user, blocked).await;
    // Forgotten also when there was no such block: the entry may be what was stale.
    p.forget_blocks(&app.id, user);
    Ok(unblocked?)
}

pub async fn friends(
    p: &Ctx,
    app: &App,
    user: &UserId,
    after: Option<&UserId>,
    limit: u32,
) -> Result<Vec<Friend>, DeliveryError> {
    let store = p.store().as_ref();
    require_user(store, app, user).await?;
    Ok(store.friends(&app.id, user, after, limit).await?)
}

pub async fn incoming_requests(
    p: &Ctx,
    app: &App,
    user: &UserId,
    after: Option<&UserId>,
    limit: u32,
) -> Result<Vec<FriendRequest>, DeliveryError> {
    let store = p.store().as_ref();
    require_user(store, app, user).await?;
    Ok(store.incoming_friend_requests(&app.id, user, after, limit).await?)
}

pub async fn blocks(
    p: &Ctx,
    app: &App,
    user: &UserId,
    after: Option<&UserId>,
    limit: u32,
) -> Result<Vec<Block>, DeliveryError> {
    let store = p.store().as_ref();
    require_user(store, app, user).await?;
    Ok(store.blocks(&app.id, user, after, limit).await?)
}
