//! App-wide moderation: bans and mutes of users, and the sensitive-word lists.

use crate::delivery::{DeliveryError, Pipeline};
use crate::domain::{
    normalize_words, now_ms, validate_word_list_name, App, UnixMillis, User, WordList, WordPolicy, FOREVER,
    MAX_WORD_LISTS,
};
use crate::ids::UserId;
use crate::store::{StoreError, StoreResult};

use super::existing_user;

/// Longest `reason` of a ban, in characters.
pub const MAX_REASON_CHARS: usize = 256;

/// A ban's or mute's end: in the future, at most `FOREVER`; `None` is `FOREVER`.
pub fn restriction_end(until: Option<i64>, now: UnixMillis) -> Result<UnixMillis, DeliveryError> {
    match until {
        None => Ok(FOREVER),
        Some(t) if t <= now => Err(DeliveryError::InvalidArgument(
            "until must be in the future (unix ms)".into(),
        )),
        Some(t) if t > FOREVER => Err(DeliveryError::InvalidArgument(format!(
            "until must be at most {FOREVER}"
        ))),
        Some(t) => Ok(t),
    }
}

/// A ban's reason is at most `MAX_REASON_CHARS` characters.
pub fn check_reason(reason: &str) -> Result<(), DeliveryError> {
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(DeliveryError::InvalidArgument(format!(
            "reason must be at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(())
}

/// A word list's name: 1–64 characters of the allowed set.
pub fn check_list_name(name: &str) -> Result<(), DeliveryError> {
    validate_word_list_name(name).map_err(DeliveryError::InvalidArgument)
}

/// Creates or replaces the word list `name` with `words` (normalised: trimmed, without
/// duplicates); more lists than an app may have is `invalid_argument`, like the other
/// limits of the input.
pub async fn replace_word_list(
    p: &Pipeline,
    app: &App,
    name: &str,
    policy: WordPolicy,
    words: Vec<String>,
) -> Result<WordList, DeliveryError> {
    check_list_name(name)?;
    let words = normalize_words(words).map_err(DeliveryError::InvalidArgument)?;
    let now = now_ms();
    let list = WordList {
        name: name.to_owned(),
        policy,
        words,
        created_at: now,
        updated_at: now,
    };
    put_word_list(p, app, &list, MAX_WORD_LISTS).await.map_err(|e| match e {
        StoreError::Rejected(m) => DeliveryError::InvalidArgument(m),
        e => e.into(),
    })
}

/// Bans an existing user until `until` (`FOREVER` for ever): their cached state is dropped
/// and their sessions close at once with `user_banned` and `reason` (a default when empty).
/// Banning again replaces the end. Answers the user as now stored.
pub async fn ban(p: &Pipeline, app: &App, id: &UserId, until: UnixMillis, reason: &str) -> StoreResult<User> {
    existing_user(p, app, id).await?;
    p.store().set_user_ban(&app.id, id, Some(until)).await?;
    p.forget_user(app, id);
    let reason = if reason.is_empty() { "banned by the app" } else { reason };
    p.kick(app, id, "user_banned", reason).await;
    existing_user(p, app, id).await
}

/// Lifts a user's ban; they may log in again.
pub async fn unban(p: &Pipeline, app: &App, id: &UserId) -> StoreResult<User> {
    existing_user(p, app, id).await?;
    p.store().set_user_ban(&app.id, id, None).await?;
    p.forget_user(app, id);
    existing_user(p, app, id).await
}

/// Mutes an existing user app-wide until `until`: they stay connected, every send fails.
pub async fn mute(p: &Pipeline, app: &App, id: &UserId, until: UnixMillis) -> StoreResult<User> {
    existing_user(p, app, id).await?;
    p.store().set_user_mute(&app.id, id, Some(until)).await?;
    p.forget_user(app, id);
    existing_user(p, app, id).await
}

/// Lifts a user's app-wide mute.
pub async fn unmute(p: &Pipeline, app: &App, id: &UserId) -> StoreResult<User> {
    existing_user(p, app, id).await?;
    p.store().set_user_mute(&app.id, id, None).await?;
    p.forget_user(app, id);
    existing_user(p, app, id).await
}

/// The app's word lists, by name.
pub async fn word_lists(p: &Pipeline, app: &App) -> StoreResult<Vec<WordList>> {
    p.store().word_lists(&app.id).await
}

/// One word list; `not_found` ("word list not found") if there is none.
pub async fn word_list(p: &Pipeline, app: &App, name: &str) -> StoreResult<WordList> {
    p.store()
        .word_list(&app.id, name)
        .await?
        .ok_or(StoreError::NotFound("word list"))
}

/// Creates or replaces a word list (at most `max_lists` per app: `Rejected` past it); sends
/// are filtered by it at once on this node and within a second on the others.
pub async fn put_word_list(p: &Pipeline, app: &App, list: &WordList, max_lists: usize) -> StoreResult<WordList> {
    let stored = p.store().put_word_list(&app.id, list, max_lists).await?;
    p.forget_words(app);
    Ok(stored)
}

/// Deletes a word list.
pub async fn delete_word_list(p: &Pipeline, app: &App, name: &str) -> StoreResult<()> {
    p.store().delete_word_list(&app.id, name).await?;
    p.forget_words(app);
    Ok(())
}
