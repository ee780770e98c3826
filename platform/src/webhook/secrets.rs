//! Where the webhook signers get an app's webhook secrets in plaintext: from the store's
//! ciphertext, opened with the master key at the moment of sending and never kept or logged.
//! A trait so a rotation with two active secrets can be added behind it without touching
//! the senders.

use std::sync::Arc;

use async_trait::async_trait;

use crate::ids::AppId;
use crate::secret_box::{SecretBox, SecretBoxError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the app has no webhook secret")]
    Missing,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    SecretBox(#[from] SecretBoxError),
}

#[async_trait]
pub trait WebhookSecrets: Send + Sync + 'static {
    /// Every active webhook secret of the app, newest first; never empty on `Ok`.
    async fn secrets(&self, app: &AppId) -> Result<Vec<String>, SecretsError>;
}

/// Secrets from the store, opened with the master key.
#[derive(Clone)]
pub struct StoreSecrets {
    store: Arc<dyn Store>,
    secret_box: SecretBox,
}

impl StoreSecrets {
    pub fn new(store: Arc<dyn Store>, secret_box: SecretBox) -> Self {
        Self { store, secret_box }
    }
}

#[async_trait]
impl WebhookSecrets for StoreSecrets {
    async fn secrets(&self, app: &AppId) -> Result<Vec<String>, SecretsError> {
        let sealed = self
            .store
            .webhook_secret_ciphertexts(app, crate::domain::now_ms())
            .await?;
        if sealed.is_empty() {
            return Err(SecretsError::Missing);
        }
        let mut out = Vec::with_capacity(sealed.len());
        for s in &sealed {
            out.push(self.secret_box.open_string(app.as_str(), s)?);
        }
        Ok(out)
    }
}

/// Fixed secrets for every app: for tests and tools.
#[derive(Debug, Clone)]
pub struct StaticSecrets(pub Vec<String>);

#[async_trait]
impl WebhookSecrets for StaticSecrets {
    async fn secrets(&self, _app: &AppId) -> Result<Vec<String>, SecretsError> {
        if self.0.is_empty() {
            return Err(SecretsError::Missing);
        }
        Ok(self.0.clone())
    }
}
