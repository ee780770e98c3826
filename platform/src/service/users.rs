//! Users of an app: import, read, update, delete, tokens and kicks.

use crate::auth::token::mint_user_token;
use crate::delivery::{clamp_limit, DeliveryError, Pipeline};
use crate::domain::{now_ms, validate_profile, App, User, UserProfile};
use crate::ids::UserId;
use crate::presence::UserPresence;
use crate::secret_box::SecretBox;
use crate::store::{StoreError, StoreResult};

use super::existing_user;
use super::paging::{decode_cursor, Page};

/// Most users one upsert names.
pub const MAX_USERS_PER_CALL: usize = 100;

/// An upsert names 1 to `MAX_USERS_PER_CALL` users.
pub fn check_batch(users: usize) -> Result<(), DeliveryError> {
    if !(1..=MAX_USERS_PER_CALL).contains(&users) {
        return Err(DeliveryError::InvalidArgument(format!(
            "users must hold 1 to {MAX_USERS_PER_CALL} users"
        )));
    }
    Ok(())
}

/// An upsert names each user once: `id` is not among those `earlier` in the batch.
pub fn check_distinct(earlier: &[(UserId, UserProfile)], id: &UserId) -> Result<(), DeliveryError> {
    if earlier.iter().any(|(seen, _)| seen == id) {
        return Err(DeliveryError::InvalidArgument(format!("user {id} appears twice")));
    }
    Ok(())
}

/// A profile (or a patch of one: `None` keeps a field), validated.
pub fn profile(
    name: Option<String>,
    avatar_url: Option<Option<String>>,
    metadata: Option<serde_json::Value>,
) -> Result<UserProfile, DeliveryError> {
    let p = UserProfile {
        name,
        avatar_url,
        metadata,
    };
    validate_profile(&p).map_err(DeliveryError::InvalidArgument)?;
    Ok(p)
}

/// The lifetime of a token asked for `requested` seconds (default 7 days, at most the
/// app's `max_token_ttl_seconds`).
pub fn token_ttl(app: &App, requested: Option<i64>) -> Result<i64, DeliveryError> {
    let max = app.settings.max_token_ttl_seconds;
    let ttl = requested.unwrap_or((7 * 24 * 3600).min(max));
    if ttl < 1 || ttl > max {
        return Err(DeliveryError::InvalidArgument(format!(
            "ttl_seconds must be from 1 to {max}"
        )));
    }
    Ok(ttl)
}

/// A page of the app's users by id, after the user a `cursor` names (`limit` 0: the default).
pub async fn list_page(p: &Pipeline, app: &App, cursor: Option<&str>, limit: u32) -> Result<Page<User>, DeliveryError> {
    let limit = clamp_limit(limit);
    let after = cursor
        .map(decode_cursor)
        .transpose()?
        .map(|c| UserId::parse(&c))
        .transpose()?;
    let users = list(p, app, after.as_ref(), limit).await?;
    Ok(Page::of(users, limit, |u| u.id.as_str().to_owned()))
}

/// A user with what is live about them now.
#[derive(Debug, Clone)]
pub struct UserDetail {
    pub user: User,
    /// Whether they are online and on which devices (`None`: never seen).
    pub presence: Option<UserPresence>,
}

/// A user with their presence; `not_found` if there is none.
pub async fn detail(p: &Pipeline, app: &App, id: &UserId) -> StoreResult<UserDetail> {
    let user = existing_user(p, app, id).await?;
    let presence = p
        .presence()
        .presence(&app.id, std::slice::from_ref(id))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .into_iter()
        .next();
    Ok(UserDetail { user, presence })
}

/// Creates or updates users (validated profiles, distinct ids), in one write.
pub async fn upsert(p: &Pipeline, app: &App, users: &[(UserId, UserProfile)]) -> StoreResult<Vec<User>> {
    p.store().upsert_users(&app.id, users, now_ms()).await
}

/// The app's users by id, after `after`.
pub async fn list(p: &Pipeline, app: &App, after: Option<&UserId>, limit: u32) -> StoreResult<Vec<User>> {
    p.store().list_users(&app.id, after, limit).await
}

/// One user; `not_found` if there is none.
pub async fn get(p: &Pipeline, app: &App, id: &UserId) -> StoreResult<User> {
    existing_user(p, app, id).await
}

/// Changes an existing user's profile (absent fields keep their value).
pub async fn update(p: &Pipeline, app: &App, id: &UserId, profile: UserProfile) -> StoreResult<User> {
    existing_user(p, app, id).await?;
    let mut users = p
        .store()
        .upsert_users(&app.id, &[(id.clone(), profile)], now_ms())
        .await?;
    users
        .pop()
        .ok_or_else(|| StoreError::Database("upsert returned no user".into()))
}

/// Deletes a user and closes their sessions; their messages stay in history.
pub async fn delete(p: &Pipeline, app: &App, id: &UserId) -> StoreResult<()> {
    p.store().delete_user(&app.id, id).await?;
    p.forget_user(app, id);
    p.kick(app, id, "user_deleted", "the user was deleted").await;
    Ok(())
}

/// A user token minted for SDK login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedToken {
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Mints a token for `user` valid `ttl_seconds` (already checked against the app's
/// maximum), signed with the app's current secret.
pub async fn mint_token(
    p: &Pipeline,
    secrets: &SecretBox,
    app: &App,
    user: &UserId,
    ttl_seconds: i64,
) -> StoreResult<MintedToken> {
    let now = now_ms();
    let secret = p
        .store()
        .active_app_secrets(&app.id, now)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Database("app has no active secret".into()))?;
    let secret = secrets
        .open_string(app.id.as_str(), &secret.ciphertext)
        .map_err(|e| StoreError::Database(e.to_string()))?;
    let iat = now / 1000;
    Ok(MintedToken {
        token: mint_user_token(&app.app_key, &secret, user, iat, iat + ttl_seconds, None),
        expires_at: iat + ttl_seconds,
    })
}

/// Revokes every token issued to the user until now and closes their sessions.
pub async fn revoke_tokens(p: &Pipeline, app: &App, id: &UserId) -> StoreResult<()> {
    existing_user(p, app, id).await?;
    p.store().revoke_user_tokens(&app.id, id, now_ms()).await?;
    p.kick(app, id, "token_revoked", "the user's tokens were revoked").await;
    Ok(())
}

/// Closes the user's sessions now (they may log in again) and tells the app (`user.kicked`).
pub async fn kick(p: &Pipeline, app: &App, id: &UserId) -> StoreResult<()> {
    existing_user(p, app, id).await?;
    p.kick(app, id, "kicked", "kicked by the app's server").await;
    let data = serde_json::json!({"user_id": id, "reason": "kicked by the app's server"});
    p.emit(app, "user.kicked", data).await;
    Ok(())
}
