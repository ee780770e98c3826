//! Tenancy operations: creating tenants and apps, rotating and revoking AppSecrets, and
//! minting user tokens by hand. The CLI and (later) the operator API and console call these,
//! so the rules live in one place: names are validated, secrets are generated here, sealed
//! with the master key before they reach the store, and handed back in plaintext only once.

use rand::distributions::{Alphanumeric, DistString};
use serde::Serialize;

use crate::domain::{
    now_ms, validate_app_name, validate_tenant_name, App, AppSecretRecord, AppSettings, Tenant, TenantStatus,
    UnixMillis,
};
use crate::ids::{AppId, AppKey, SecretId, TenantId, UserId};
use crate::secret_box::{SecretBox, SecretBoxError};
use crate::store::{NewApp, Store, StoreError};

/// Default lifetime of a token minted by hand (`tern token` without `--ttl`).
pub const DEFAULT_TOKEN_TTL_SECONDS: i64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("{0}")]
    InvalidName(&'static str),
    #[error("a tenant named {0:?} already exists")]
    TenantExists(String),
    #[error("unknown tenant {0:?}")]
    UnknownTenant(String),
    #[error("the tenant already has an app named {0:?}")]
    AppNameTaken(String),
    #[error("unknown app {0:?}")]
    UnknownApp(String),
    #[error("unknown secret {0:?}")]
    UnknownSecret(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("the app has no active secret")]
    NoActiveSecret,
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Secret(#[from] SecretBoxError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for TenancyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(reason) => Self::Rejected(reason),
            other => Self::Store(other),
        }
    }
}

/// A freshly created app with its secrets in plaintext: the only time they are visible.
#[derive(Clone, Serialize)]
pub struct CreatedApp {
    pub app_id: AppId,
    pub tenant_id: TenantId,
    pub name: String,
    pub app_key: AppKey,
    pub app_secret: String,
    pub webhook_secret: String,
}

impl std::fmt::Debug for CreatedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApp")
            .field("app_id", &self.app_id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("app_key", &self.app_key)
            .finish_non_exhaustive()
    }
}

/// A new AppSecret after a rotation, with when the previous ones stop working.
#[derive(Clone, Serialize)]
pub struct RotatedSecret {
    pub app_key: AppKey,
    pub secret_id: SecretId,
    pub app_secret: String,
    /// Unix milliseconds at which the secrets that were active before expire.
    pub previous_expire_at: UnixMillis,
}

impl std::fmt::Debug for RotatedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedSecret")
            .field("app_key", &self.app_key)
            .field("secret_id", &self.secret_id)
            .field("previous_expire_at", &self.previous_expire_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MintedToken {
    pub token: String,
    /// Unix seconds, as in the token's `exp`.
    pub expires_at: i64,
}

/// `sk_` + 40 random alphanumerics.
pub fn generate_app_secret() -> String {
    format!("sk_{}", Alphanumeric.sample_string(&mut rand::thread_rng(), 40))
}

/// `whsec_` + 32 random alphanumerics.
pub fn generate_webhook_secret() -> String {
    format!("whsec_{}", Alphanumeric.sample_string(&mut rand::thread_rng(), 32))
}

/// Creates an active tenant. The name is validated and must be unique on the platform.
pub async fn create_tenant(store: &dyn Store, name: &str) -> Result<Tenant, TenancyError> {
    validate_tenant_name(name).map_err(TenancyError::InvalidName)?;
    if store.tenant_by_name(name).await?.is_some() {
        return Err(TenancyError::TenantExists(name.to_owned()));
    }
    let tenant = Tenant {
        id: TenantId::generate(),
        name: name.to_owned(),
        status: TenantStatus::Active,
        created_at: now_ms(),
    };
    match store.create_tenant(&tenant).await {
        Ok(()) => Ok(tenant),
        // Another writer took the name between our check and the insert.
        Err(StoreError::Conflict(_)) => Err(TenancyError::TenantExists(name.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// Finds a tenant by id (`tn_...`) or, failing that, by name.
pub async fn find_tenant(store: &dyn Store, id_or_name: &str) -> Result<Tenant, TenancyError> {
    if let Ok(id) = TenantId::parse(id_or_name) {
        if let Some(t) = store.tenant(&id).await? {
            return Ok(t);
        }
    }
    store
        .tenant_by_name(id_or_name)
        .await?
        .ok_or_else(|| TenancyError::UnknownTenant(id_or_name.to_owned()))
}

/// Finds an app by its AppKey.
pub async fn find_app(store: &dyn Store, app_key: &str) -> Result<App, TenancyError> {
    let key = AppKey::parse(app_key).map_err(|e| TenancyError::InvalidArgument(e.to_string()))?;
    store
        .app_by_key(&key)
        .await?
        .ok_or_else(|| TenancyError::UnknownApp(app_key.to_owned()))
}

/// Creates an app in a tenant (given by id or name) with a first AppSecret and a webhook
/// secret, both sealed under the master key with the app id as associated data.
pub async fn create_app(
    store: &dyn Store,
    secrets: &SecretBox,
    tenant: &str,
    name: &str,
) -> Result<CreatedApp, TenancyError> {
    validate_app_name(name).map_err(TenancyError::InvalidName)?;
    let tenant = find_tenant(store, tenant).await?;
    let app_id = AppId::generate();
    let app_secret = generate_app_secret();
    let webhook_secret = generate_webhook_secret();
    let now = now_ms();
    let new_app = NewApp {
        id: app_id.clone(),
        tenant_id: tenant.id.clone(),
        name: name.to_owned(),
        app_key: AppKey::generate(),
        settings: AppSettings::default(),
        first_secret: AppSecretRecord {
            id: SecretId::generate(),
            app_id: app_id.clone(),
            ciphertext: secrets.seal(app_id.as_str(), app_secret.as_bytes()),
            created_at: now,
            expires_at: None,
        },
        webhook_secret_ciphertext: secrets.seal(app_id.as_str(), webhook_secret.as_bytes()),
    };
    let app = match store.create_app(&new_app).await {
        Ok(app) => app,
        Err(StoreError::Conflict(_)) => return Err(TenancyError::AppNameTaken(name.to_owned())),
        Err(StoreError::NotFound(_)) => return Err(TenancyError::UnknownTenant(tenant.name)),
        Err(e) => return Err(e.into()),
    };
    Ok(CreatedApp {
        app_id: app.id,
        tenant_id: app.tenant_id,
        name: app.name,
        app_key: app.app_key,
        app_secret,
        webhook_secret,
    })
}

/// Adds a new AppSecret; the secrets active before it expire after the app's grace period.
pub async fn rotate_secret(
    store: &dyn Store,
    secrets: &SecretBox,
    app_key: &str,
) -> Result<RotatedSecret, TenancyError> {
    let app = find_app(store, app_key).await?;
    let now = now_ms();
    let app_secret = generate_app_secret();
    let record = AppSecretRecord {
        id: SecretId::generate(),
        app_id: app.id.clone(),
        ciphertext: secrets.seal(app.id.as_str(), app_secret.as_bytes()),
        created_at: now,
        expires_at: None,
    };
    let previous_expire_at = now.saturating_add(app.settings.secret_grace_seconds.saturating_mul(1000));
    store.add_app_secret(&record, previous_expire_at).await?;
    Ok(RotatedSecret {
        app_key: app.app_key,
        secret_id: record.id,
        app_secret,
        previous_expire_at,
    })
}

/// A new webhook secret, shown once; the old one keeps signing until `previous_expire_at`.
#[derive(Clone, PartialEq, Eq)]
pub struct RotatedWebhookSecret {
    pub app_key: AppKey,
    pub webhook_secret: String,
    pub previous_expire_at: UnixMillis,
}

impl std::fmt::Debug for RotatedWebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedWebhookSecret")
            .field("app_key", &self.app_key)
            .field("webhook_secret", &"<redacted>")
            .field("previous_expire_at", &self.previous_expire_at)
            .finish()
    }
}

/// Replaces the app's webhook secret. Until the app's grace period ends, webhooks carry one
/// `v1=` for each secret, so receivers can switch at their own pace (SIGNING.md §3).
pub async fn rotate_webhook_secret(
    store: &dyn Store,
    secrets: &SecretBox,
    app_key: &str,
) -> Result<RotatedWebhookSecret, TenancyError> {
    let app = find_app(store, app_key).await?;
    let webhook_secret = generate_webhook_secret();
    let previous_expire_at = now_ms().saturating_add(app.settings.secret_grace_seconds.saturating_mul(1000));
    store
        .rotate_webhook_secret(
            &app.id,
            &secrets.seal(app.id.as_str(), webhook_secret.as_bytes()),
            previous_expire_at,
        )
        .await?;
    Ok(RotatedWebhookSecret {
        app_key: app.app_key,
        webhook_secret,
        previous_expire_at,
    })
}

/// Ends one secret's validity now. The store refuses to revoke the last active one.
pub async fn revoke_secret(store: &dyn Store, app_key: &str, secret_id: &str) -> Result<(), TenancyError> {
    let app = find_app(store, app_key).await?;
    let id = SecretId::parse(secret_id).map_err(|e| TenancyError::InvalidArgument(e.to_string()))?;
    match store.revoke_app_secret(&app.id, &id, now_ms()).await {
        Err(StoreError::NotFound(_)) => Err(TenancyError::UnknownSecret(secret_id.to_owned())),
        other => Ok(other?),
    }
}

/// Mints a user token (SIGNING.md §2) with the app's newest active secret.
pub async fn mint_token(
    store: &dyn Store,
    secrets: &SecretBox,
    app_key: &str,
    user: &str,
    ttl_seconds: i64,
) -> Result<MintedToken, TenancyError> {
    let user = UserId::parse(user).map_err(|e| TenancyError::InvalidArgument(e.to_string()))?;
    let app = find_app(store, app_key).await?;
    let max = app.settings.max_token_ttl_seconds;
    if ttl_seconds < 1 || ttl_seconds > max {
        return Err(TenancyError::InvalidArgument(format!(
            "ttl must be between 1 and {max} seconds (the app's maximum token lifetime)"
        )));
    }
    let active = store.active_app_secrets(&app.id, now_ms()).await?;
    let newest = active.first().ok_or(TenancyError::NoActiveSecret)?;
    let secret = secrets.open_string(app.id.as_str(), &newest.ciphertext)?;
    let iat = now_ms() / 1000;
    let exp = iat + ttl_seconds;
    Ok(MintedToken {
        token: mint_user_token(&secret, &app.app_key, &user, iat, exp),
        expires_at: exp,
    })
}

/// HS256 user token (SIGNING.md §2): `{"iss":AppKey,"sub":user,"iat":..,"exp":..}`, signed
/// by the auth module so there is one implementation of the format.
pub fn mint_user_token(app_secret: &str, app_key: &AppKey, user: &UserId, iat: i64, exp: i64) -> String {
    crate::auth::token::mint_user_token(app_key, app_secret, user, iat, exp, None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn key() -> SecretBox {
        SecretBox::from_key([3; 32])
    }

    #[test]
    fn user_token_matches_the_independent_vector() {
        let token = mint_user_token(
            "sk_test_7f3a9c2e5b1d4f60a8e2c9b7d5f3a1e0",
            &AppKey::parse("ak_demo_4k2m9p7q").unwrap(),
            &UserId::parse("alice").unwrap(),
            1767225600,
            1767229200,
        );
        assert_eq!(
            token,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJha19kZW1vXzRrMm05cDdxIiwic3ViIjoiYWxpY2UiLCJpYXQiOjE3NjcyMjU2MDAsImV4cCI6MTc2NzIyOTIwMH0.5jPWJmJrtEasQ0Miu8T2C1ne6B4RnhiQa19KL_iCkJ0"
        );
    }

    #[test]
    fn generated_secrets_have_the_documented_shape() {
        let s = generate_app_secret();
        assert!(s.starts_with("sk_") && s.len() == 43 && s[3..].bytes().all(|c| c.is_ascii_alphanumeric()));
        let w = generate_webhook_secret();
        assert!(w.starts_with("whsec_") && w.len() == 38);
        assert_ne!(generate_app_secret(), s);
    }

    #[tokio::test]
    async fn tenant_names_are_validated_and_unique() {
        let (store, _db) = crate::store::testing::sqlite_temp().await;
        let t = create_tenant(&*store, "Acme").await.unwrap();
        assert_eq!(t.status, TenantStatus::Active);
        assert!(matches!(
            create_tenant(&*store, "Acme").await,
            Err(TenancyError::TenantExists(_))
        ));
        assert!(matches!(
            create_tenant(&*store, "  ").await,
            Err(TenancyError::InvalidName(_))
        ));
        assert!(matches!(
            create_tenant(&*store, &"x".repeat(101)).await,
            Err(TenancyError::InvalidName(_))
        ));
        assert_eq!(find_tenant(&*store, t.id.as_str()).await.unwrap().name, "Acme");
        assert_eq!(find_tenant(&*store, "Acme").await.unwrap().id, t.id);
        assert!(matches!(
            find_tenant(&*store, "nobody").await,
            Err(TenancyError::UnknownTenant(_))
        ));
    }

    #[tokio::test]
    async fn app_secrets_are_stored_sealed_and_returned_once_in_plaintext() {
        let (store, _db) = crate::store::testing::sqlite_temp().await;
        create_tenant(&*store, "Acme").await.unwrap();
        let created = create_app(&*store, &key(), "Acme", "chat").await.unwrap();
        assert!(created.app_secret.starts_with("sk_"));
        assert!(created.webhook_secret.starts_with("whsec_"));
        let debug = format!("{created:?}");
        assert!(!debug.contains(&created.app_secret) && !debug.contains(&created.webhook_secret));

        let stored = store.active_app_secrets(&created.app_id, now_ms()).await.unwrap();
        assert_eq!(stored.len(), 1);
        let raw = &stored[0].ciphertext;
        assert!(!raw
            .windows(created.app_secret.len())
            .any(|w| w == created.app_secret.as_bytes()));
        assert_eq!(
            key().open_string(created.app_id.as_str(), raw).unwrap(),
            created.app_secret
        );
        let wh = store.webhook_secret_ciphertext(&created.app_id).await.unwrap().unwrap();
        assert_eq!(
            key().open_string(created.app_id.as_str(), &wh).unwrap(),
            created.webhook_secret
        );

        assert!(matches!(
            create_app(&*store, &key(), "Acme", "chat").await,
            Err(TenancyError::AppNameTaken(_))
        ));
        assert!(matches!(
            create_app(&*store, &key(), "Nobody", "chat").await,
            Err(TenancyError::UnknownTenant(_))
        ));
        assert!(matches!(
            create_app(&*store, &key(), "Acme", "").await,
            Err(TenancyError::InvalidName(_))
        ));
    }

    #[tokio::test]
    async fn rotation_keeps_the_old_secret_for_the_grace_period_and_revoke_ends_it() {
        let (store, _db) = crate::store::testing::sqlite_temp().await;
        create_tenant(&*store, "Acme").await.unwrap();
        let created = create_app(&*store, &key(), "Acme", "chat").await.unwrap();
        let key_str = created.app_key.as_str();
        let before = now_ms();
        let rotated = rotate_secret(&*store, &key(), key_str).await.unwrap();
        assert_ne!(rotated.app_secret, created.app_secret);
        let grace = AppSettings::default().secret_grace_seconds * 1000;
        assert!(rotated.previous_expire_at >= before + grace);

        let active = store.active_app_secrets(&created.app_id, now_ms()).await.unwrap();
        assert_eq!(active.len(), 2);
        assert_eq!(active[0].id, rotated.secret_id, "newest first");
        let old_id = active[1].id.clone();
        assert_eq!(active[1].expires_at, Some(rotated.previous_expire_at));
        // After the grace period only the new one is left.
        let later = store
            .active_app_secrets(&created.app_id, rotated.previous_expire_at)
            .await
            .unwrap();
        assert_eq!(later.len(), 1);

        revoke_secret(&*store, key_str, old_id.as_str()).await.unwrap();
        let active = store.active_app_secrets(&created.app_id, now_ms()).await.unwrap();
        assert_eq!(active.len(), 1);
        assert!(matches!(
            revoke_secret(&*store, key_str, rotated.secret_id.as_str()).await,
            Err(TenancyError::Rejected(_))
        ));
        assert!(matches!(
            rotate_secret(&*store, &key(), "ak_doesnotexist1").await,
            Err(TenancyError::UnknownApp(_))
        ));
    }

    #[tokio::test]
    async fn minted_tokens_use_the_newest_secret_and_respect_the_ttl_limit() {
        let (store, _db) = crate::store::testing::sqlite_temp().await;
        create_tenant(&*store, "Acme").await.unwrap();
        let created = create_app(&*store, &key(), "Acme", "chat").await.unwrap();
        let minted = mint_token(&*store, &key(), created.app_key.as_str(), "alice", 600)
            .await
            .unwrap();
        let parts: Vec<&str> = minted.token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], created.app_key.as_str());
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600);
        assert_eq!(claims["exp"].as_i64().unwrap(), minted.expires_at);
        // Re-signing the same claims with the plaintext secret gives the same token.
        let again = mint_user_token(
            &created.app_secret,
            &created.app_key,
            &UserId::parse("alice").unwrap(),
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert_eq!(again, minted.token);

        let rotated = rotate_secret(&*store, &key(), created.app_key.as_str()).await.unwrap();
        let minted = mint_token(&*store, &key(), created.app_key.as_str(), "alice", 600)
            .await
            .unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(minted.token.split('.').nth(1).unwrap()).unwrap()).unwrap();
        let with_new = mint_user_token(
            &rotated.app_secret,
            &created.app_key,
            &UserId::parse("alice").unwrap(),
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert_eq!(with_new, minted.token);

        for bad_ttl in [0, -5, 31 * 24 * 3600] {
            assert!(matches!(
                mint_token(&*store, &key(), created.app_key.as_str(), "alice", bad_ttl).await,
                Err(TenancyError::InvalidArgument(_))
            ));
        }
        assert!(matches!(
            mint_token(&*store, &key(), created.app_key.as_str(), "bad user!", 60).await,
            Err(TenancyError::InvalidArgument(_))
        ));
        assert!(matches!(
            mint_token(
                &*store,
                &SecretBox::from_key([9; 32]),
                created.app_key.as_str(),
                "alice",
                60
            )
            .await,
            Err(TenancyError::Secret(SecretBoxError::Undecryptable))
        ));
    }
}
