//! Offline push (docs/push.md): the operations every door calls for devices, provider
//! credentials and the delivery log, and below them the pieces that send: the provider
//! port with its APNs and FCM adapters, the worker that turns the push outbox into
//! per-device jobs and sends them, and a local double of both providers for tests.
//!
//! A message to a user with no live session reaches their phones like this: the message's
//! transaction also writes a push outbox row (`store::messages`), the worker leases the row,
//! finds which recipients had no session and which devices they have, writes one job per
//! device (never two for one message and device) and deletes the row; then it sends each
//! job and records the provider's answer in the log, in the job's own transaction.

pub mod apns;
pub mod credentials;
pub mod double;
pub mod fcm;
pub mod provider;
pub mod test_keys;
pub mod worker;

use serde::Serialize;

use crate::delivery::{DeliveryError, Pipeline};
use crate::domain::*;
use crate::ids::{ConversationId, DeviceId, UserId};
use crate::secret_box::SecretBox;
use crate::store::Store;

pub use credentials::{ApnsCredentials, CredentialError, FcmCredentials, ProviderCredentials};

impl From<PushInputError> for DeliveryError {
    fn from(e: PushInputError) -> Self {
        Self::InvalidArgument(e.0)
    }
}

impl From<CredentialError> for DeliveryError {
    fn from(e: CredentialError) -> Self {
        Self::InvalidPushCredentials(e.0)
    }
}

/// What may be shown of an app's credentials for one provider (never the key).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CredentialSummary {
    pub provider: PushProvider,
    /// Key id, team id and bundle id (APNs); project id, client email and key id (FCM).
    pub summary: serde_json::Value,
    pub updated_at: UnixMillis,
}

/// The `SecretBox` owner of an app's credentials for a provider: a ciphertext copied to
/// another app, or to the other provider's row, does not open.
fn sealed_owner(app: &App, provider: PushProvider) -> String {
    format!("{}/push/{}", app.id, provider.as_str())
}

async fn require_user(p: &Pipeline, app: &App, user: &UserId) -> Result<(), DeliveryError> {
    match p.store().user(&app.id, user).await? {
        Some(_) => Ok(()),
        None => Err(DeliveryError::NotFound("user")),
    }
}

/// Registers a device for its user (who must exist). A token registered before keeps its
/// device id, and moves to this user if it was another's (the phone changed hands).
pub async fn register_device(p: &Pipeline, app: &App, device: &NewPushDevice) -> Result<PushDevice, DeliveryError> {
    require_user(p, app, &device.user_id).await?;
    Ok(p.store().register_device(&app.id, device, now_ms()).await?)
}

/// A device of `user`; `not_found` for another user's or another app's.
pub async fn device(p: &Pipeline, app: &App, user: &UserId, id: &DeviceId) -> Result<PushDevice, DeliveryError> {
    match p.store().device(&app.id, id).await? {
        Some(d) if &d.user_id == user => Ok(d),
        _ => Err(DeliveryError::NotFound("device")),
    }
}

/// The user's devices, oldest first.
pub async fn devices(p: &Pipeline, app: &App, user: &UserId) -> Result<Vec<PushDevice>, DeliveryError> {
    require_user(p, app, user).await?;
    Ok(p.store().devices_of(&app.id, std::slice::from_ref(user)).await?)
}

/// Changes a device of `user`: a new token (the provider rotated it), environment or locale.
pub async fn update_device(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    id: &DeviceId,
    patch: &PushDevicePatch,
) -> Result<PushDevice, DeliveryError> {
    let mut patch = patch.clone();
    if let Some(token) = &patch.token {
        let current = device(p, app, user, id).await?;
        // A token is checked against its own provider's shape (APNs' stored lowercase).
        patch.token = Some(PushToken::parse(current.provider, token.as_str())?);
    }
    match p.store().update_device(&app.id, user, id, &patch, now_ms()).await {
        Err(crate::store::StoreError::Conflict(m)) => Err(DeliveryError::Conflict(m)),
        other => Ok(other?),
    }
}

/// Removes a device of `user`: no more pushes reach it.
pub async fn remove_device(p: &Pipeline, app: &App, user: &UserId, id: &DeviceId) -> Result<(), DeliveryError> {
    device(p, app, user, id).await?;
    p.store().remove_device(&app.id, id).await?;
    Ok(())
}

/// Sets the app's credentials for one provider, after proving the key loads and signs;
/// they are stored sealed under the master key.
pub async fn set_credentials(
    p: &Pipeline,
    secrets: &SecretBox,
    app: &App,
    creds: &ProviderCredentials,
) -> Result<CredentialSummary, DeliveryError> {
    match creds {
        ProviderCredentials::Apns(c) => c.validate()?,
        ProviderCredentials::Fcm(c) => c.validate()?,
    }
    let provider = creds.provider();
    let plaintext = serde_json::to_vec(creds).map_err(|e| DeliveryError::Internal(e.to_string()))?;
    let record = PushCredentialRecord {
        provider,
        ciphertext: secrets.seal(&sealed_owner(app, provider), &plaintext),
        summary: creds.summary(),
        updated_at: now_ms(),
    };
    p.store().put_push_credential(&app.id, &record).await?;
    p.push_credentials_changed(app);
    Ok(CredentialSummary {
        provider,
        summary: record.summary,
        updated_at: record.updated_at,
    })
}

/// What the app has set, by provider (never the keys).
pub async fn credential_summaries(p: &Pipeline, app: &App) -> Result<Vec<CredentialSummary>, DeliveryError> {
    Ok(p.store()
        .push_credentials(&app.id)
        .await?
        .into_iter()
        .map(|r| CredentialSummary {
            provider: r.provider,
            summary: r.summary,
            updated_at: r.updated_at,
        })
        .collect())
}

/// Removes the app's credentials for a provider: its devices get no more pushes.
pub async fn delete_credentials(p: &Pipeline, app: &App, provider: PushProvider) -> Result<(), DeliveryError> {
    if p.store().delete_push_credential(&app.id, provider).await? {
        p.push_credentials_changed(app);
        Ok(())
    } else {
        Err(DeliveryError::NotFound("push credentials"))
    }
}

/// The app's credentials for a provider, opened; `None` if it has none.
pub async fn open_credentials(
    store: &dyn Store,
    secrets: &SecretBox,
    app: &App,
    provider: PushProvider,
) -> Result<Option<ProviderCredentials>, DeliveryError> {
    let Some(record) = store
        .push_credentials(&app.id)
        .await?
        .into_iter()
        .find(|r| r.provider == provider)
    else {
        return Ok(None);
    };
    let plain = secrets
        .open(&sealed_owner(app, provider), &record.ciphertext)
        .map_err(|e| DeliveryError::Internal(format!("push credentials of {}: {e}", app.id)))?;
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(|e| DeliveryError::Internal(format!("stored push credentials do not parse: {e}")))
}

/// A user's push settings: do-not-disturb hours and muted conversations.
pub async fn push_settings(p: &Pipeline, app: &App, user: &UserId) -> Result<UserPushSettings, DeliveryError> {
    require_user(p, app, user).await?;
    Ok(p.store().push_settings(&app.id, user).await?)
}

/// Changes a user's push settings (by the server API, or by the user over the WebSocket).
/// Muting a conversation silences its pushes to this user only; live delivery to their
/// connected devices is unchanged. A direct or system conversation must be the user's own;
/// rooms are never pushed, so they cannot be muted.
pub async fn update_push_settings(
    p: &Pipeline,
    app: &App,
    user: &UserId,
    patch: &UserPushSettingsPatch,
) -> Result<UserPushSettings, DeliveryError> {
    for (name, list) in [("mute", &patch.mute), ("unmute", &patch.unmute)] {
        if list.len() > MAX_MUTES_PER_CHANGE {
            return Err(DeliveryError::InvalidArgument(format!(
                "{name} may list at most {MAX_MUTES_PER_CHANGE} conversations"
            )));
        }
        for c in list {
            let own = match c {
                ConversationId::Direct(a, b) => a == user || b == user,
                ConversationId::System(u) => u == user,
                ConversationId::Group(_) => true,
                ConversationId::Room(_) => {
                    return Err(DeliveryError::InvalidArgument(format!(
                        "{c} is a room: rooms are never pushed, so there is nothing to mute"
                    )))
                }
            };
            if !own {
                return Err(DeliveryError::InvalidArgument(format!(
                    "{c} is not a conversation of {user}"
                )));
            }
        }
    }
    require_user(p, app, user).await?;
    match p.store().update_push_settings(&app.id, user, patch, now_ms()).await {
        Err(crate::store::StoreError::Rejected(m)) => Err(DeliveryError::InvalidArgument(m)),
        other => Ok(other?),
    }
}

/// The delivery log, newest first.
pub async fn log(
    p: &Pipeline,
    app: &App,
    filter: &PushLogFilter,
    limit: u32,
) -> Result<Vec<PushLogEntry>, DeliveryError> {
    Ok(p.store().push_log(&app.id, filter, limit).await?)
}

/// Sends a test notification to one device of `user` now, records it in the log like any
/// push, and answers with that log line: the provider's status and reason show at once
/// whether the token and the credentials work. A dead token is removed, as by the worker.
pub async fn test_push(
    pusher: &worker::Pusher,
    app: &App,
    user: &UserId,
    id: &DeviceId,
) -> Result<PushLogEntry, DeliveryError> {
    let p = pusher.pipeline();
    let d = device(p, app, user, id).await?;
    let mut data = std::collections::BTreeMap::new();
    data.insert("tern_test".to_owned(), "1".to_owned());
    let n = PushNotification {
        title: "Test push".into(),
        body: format!("A test notification from {}", app.name),
        badge: None,
        collapse_id: Some("tern-test-push".into()),
        data,
    };
    let push_id = provider::push_uuid(&format!("test/{}", ulid::Ulid::new()));
    let (answer, latency) = pusher.send_now(app, &d, &n, &push_id).await?;
    let outcome = match answer.verdict {
        provider::Verdict::Sent => PushOutcome::Sent,
        provider::Verdict::TokenDead => PushOutcome::TokenRemoved,
        // A test push is not retried: what went wrong is the answer.
        provider::Verdict::Retry | provider::Verdict::Failed => PushOutcome::Failed,
    };
    let entry = PushLogEntry {
        id: PushLogEntry::new_id(),
        at: now_ms(),
        user_id: d.user_id.clone(),
        device_id: d.id.clone(),
        msg_id: None,
        provider: d.provider,
        outcome,
        http_status: answer.status,
        reason: answer.reason,
        provider_id: answer.provider_id,
        latency_ms: latency,
        attempt: 1,
    };
    p.store()
        .append_push_log(&app.id, &entry, outcome == PushOutcome::TokenRemoved)
        .await?;
    Ok(entry)
}
