//! A short-lived cache of what authenticating an app needs: the app, whether its tenant
//! is active, and its active AppSecrets already decrypted and keyed into HMAC state.
//! Both verifiers share it, so a hot app costs neither a store round trip nor an AES-GCM
//! open per request.
//!
//! Freshness: an entry is reloaded once it is older than the TTL (5 s by default), so a
//! secret revoked or an app suspended in the store stops working within the TTL. A
//! secret whose grace period ends (`expires_at`) stops at that instant, because each
//! cached secret keeps its expiry and is checked against the clock on every use.
//! A secret just added must work at once (a tenant rotates, then switches), so a signature
//! that matches no cached secret makes the verifiers reload the app (`refresh`), at most
//! once per second per app so that forged requests cannot turn into a query each.
//! Unknown app keys are not cached, so random keys cannot push out hot apps.
//!
//! The entries live in a `quick_cache` bounded by `capacity` (past it the least used app
//! goes first); whether an entry may be used is decided on the verifier's clock
//! (`loaded_at` against `now`), so tests that move that clock by hand see exactly the TTL
//! they set, and a stale entry is simply replaced by the next load. Nothing sweeps: the
//! cache is read once per request, and a read costs a read lock and a reference bit.

use std::sync::Arc;

use hmac::Hmac;
use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use crate::domain::{App, AppStatus, TenantStatus, UnixMillis};
use crate::ids::{AppKey, SecretId};
use crate::secret_box::SecretBox;
use crate::store::Store;

use super::AuthError;

pub type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `key` of any length, without a fallible constructor: the key
/// is brought to one 64-byte block exactly as RFC 2104 does (hashed if longer, padded
/// with zeros), which gives the same MAC as keying with `key` itself.
pub fn keyed_hmac(key: &[u8]) -> HmacSha256 {
    let mut block = hmac::digest::Key::<HmacSha256>::default();
    if key.len() > block.len() {
        let digest = Sha256::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    <HmacSha256 as hmac::digest::KeyInit>::new(&block)
}

/// How long an entry is trusted before it is reloaded from the store.
pub const DEFAULT_TTL_MS: i64 = 5_000;
/// An entry younger than this is not reloaded by `refresh`.
pub const MIN_REFRESH_INTERVAL_MS: i64 = 1_000;
/// Most apps kept at once; past it, the cache drops the least used, so memory stays
/// bounded whatever keys callers send.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One active AppSecret, kept only as HMAC state with the key absorbed (the plaintext is
/// dropped after keying). Never printed.
#[derive(Clone)]
pub struct ActiveSecret {
    pub id: SecretId,
    /// Cloned per signature check.
    mac: HmacSha256,
    pub expires_at: Option<UnixMillis>,
}

impl std::fmt::Debug for ActiveSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveSecret")
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl ActiveSecret {
    /// `secret` is the AppSecret as SIGNING.md uses it: its UTF-8 bytes are the HMAC key.
    pub fn new(id: SecretId, secret: &str, expires_at: Option<UnixMillis>) -> Self {
        Self {
            id,
            mac: keyed_hmac(secret.as_bytes()),
            expires_at,
        }
    }

    /// A fresh HMAC-SHA256 keyed with this secret.
    pub fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    pub fn is_active_at(&self, now: UnixMillis) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// An app as authentication sees it.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub app: App,
    /// When this was read from the store (the verifier's clock).
    pub loaded_at: UnixMillis,
    pub tenant_active: bool,
    /// Newest first, as the store lists them.
    pub secrets: Vec<ActiveSecret>,
}

impl AppCredentials {
    /// The app and its tenant are both active.
    pub fn is_active(&self) -> bool {
        self.app.status == AppStatus::Active && self.tenant_active
    }

    /// The secrets still active at `now`.
    pub fn secrets_at(&self, now: UnixMillis) -> impl Iterator<Item = &ActiveSecret> {
        self.secrets.iter().filter(move |s| s.is_active_at(now))
    }
}

pub struct CredentialCache {
    store: Arc<dyn Store>,
    secret_box: SecretBox,
    ttl_ms: i64,
    entries: Cache<AppKey, Arc<AppCredentials>>,
}

impl CredentialCache {
    pub fn new(store: Arc<dyn Store>, secret_box: SecretBox) -> Self {
        Self::with_limits(store, secret_box, DEFAULT_TTL_MS, DEFAULT_CAPACITY)
    }

    /// `ttl_ms` 0 disables caching (every lookup goes to the store).
    pub fn with_limits(store: Arc<dyn Store>, secret_box: SecretBox, ttl_ms: i64, capacity: usize) -> Self {
        Self {
            store,
            secret_box,
            ttl_ms,
            entries: Cache::new(capacity.max(1)),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The app with this key, from the cache if loaded within the TTL before `now`.
    /// `UnknownAppKey` if there is no such app.
    pub async fn get(&self, key: &AppKey, now: UnixMillis) -> Result<Arc<AppCredentials>, AuthError> {
        if let Some(hit) = self.cached(key, now) {
            return Ok(hit);
        }
        let credentials = Arc::new(self.load(key, now).await?);
        if self.ttl_ms > 0 {
            self.insert(key, credentials.clone());
        }
        Ok(credentials)
    }

    /// A newer copy of `seen` when a signature matched none of its secrets: the entry
    /// another caller reloaded since, or a reload from the store if `seen` is at least
    /// `MIN_REFRESH_INTERVAL_MS` old. `None` when `seen` is as fresh as it gets for now.
    pub async fn refresh(
        &self,
        seen: &AppCredentials,
        now: UnixMillis,
    ) -> Result<Option<Arc<AppCredentials>>, AuthError> {
        let key = &seen.app.app_key;
        if let Some(current) = self.entries.get(key) {
            if current.loaded_at > seen.loaded_at && self.is_fresh(current.loaded_at, now) {
                return Ok(Some(current));
            }
        }
        if now.saturating_sub(seen.loaded_at) < MIN_REFRESH_INTERVAL_MS {
            return Ok(None);
        }
        let credentials = Arc::new(self.load(key, now).await?);
        if self.ttl_ms > 0 {
            self.insert(key, credentials.clone());
        }
        Ok(Some(credentials))
    }

    /// Drops the entry of one app, e.g. right after its secrets or status changed here.
    pub fn invalidate(&self, key: &AppKey) {
        self.entries.remove(key);
    }

    fn is_fresh(&self, loaded_at: UnixMillis, now: UnixMillis) -> bool {
        let age = now.saturating_sub(loaded_at);
        (0..self.ttl_ms).contains(&age)
    }

    fn cached(&self, key: &AppKey, now: UnixMillis) -> Option<Arc<AppCredentials>> {
        let entry = self.entries.get(key)?;
        self.is_fresh(entry.loaded_at, now).then_some(entry)
    }

    /// `credentials` were loaded at `now` (their `loaded_at`).
    fn insert(&self, key: &AppKey, credentials: Arc<AppCredentials>) {
        self.entries.insert(key.clone(), credentials);
    }

    async fn load(&self, key: &AppKey, now: UnixMillis) -> Result<AppCredentials, AuthError> {
        let app = self.store.app_by_key(key).await?.ok_or(AuthError::UnknownAppKey)?;
        let tenant_active = self
            .store
            .tenant(&app.tenant_id)
            .await?
            .is_some_and(|t| t.status == TenantStatus::Active);
        let records = self.store.active_app_secrets(&app.id, now).await?;
        let mut secrets = Vec::with_capacity(records.len());
        for record in records.into_iter().filter(|r| r.is_active_at(now)) {
            let secret = self.secret_box.open_string(app.id.as_str(), &record.ciphertext)?;
            secrets.push(ActiveSecret::new(record.id, &secret, record.expires_at));
        }
        Ok(AppCredentials {
            app,
            loaded_at: now,
            tenant_active,
            secrets,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use hmac::Mac;

    use super::*;

    #[test]
    fn keyed_hmac_matches_hmac_with_the_raw_key_for_every_key_length() {
        for len in [0usize, 1, 32, 63, 64, 65, 200] {
            let key = vec![0x5a; len];
            let mut ours = keyed_hmac(&key);
            ours.update(b"message");
            let mut reference = <HmacSha256 as Mac>::new_from_slice(&key).unwrap();
            reference.update(b"message");
            assert_eq!(
                ours.finalize().into_bytes(),
                reference.finalize().into_bytes(),
                "key length {len}"
            );
        }
    }
}
