//! Startup checks that must pass before Tern touches tenant data. The master key that seals
//! AppSecrets and webhook secrets comes from `TERN_MASTER_KEY` or the key file in the data
//! dir. A new key file is made only while the database holds no encrypted data; once it
//! does, a missing key or one that does not open the stored secrets stops the start with a
//! reason, because silently making a new key would lock every app out of its secrets.

use std::path::{Path, PathBuf};

use crate::secret_box::{SecretBox, SecretBoxError, KEY_FILE_NAME};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("TERN_MASTER_KEY is invalid: {0}")]
    BadEnvironmentKey(SecretBoxError),
    #[error(
        "the database holds encrypted secrets but there is no master key: set TERN_MASTER_KEY \
         or restore the key file {0} (a new key would not open them, so none was created)"
    )]
    MissingKey(PathBuf),
    #[error(
        "the master key from {0} does not open the secrets stored in the database: \
         it is not the key they were sealed with, or the key other nodes of this database use \
         (check TERN_MASTER_KEY or the key file)"
    )]
    WrongKey(String),
    #[error("{0}")]
    KeyFile(SecretBoxError),
    #[error("could not check for stored secrets: {0}")]
    Store(#[from] StoreError),
}

/// Where the master key came from; shown in logs (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    KeyFile { path: PathBuf, created: bool },
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Environment => f.write_str("TERN_MASTER_KEY"),
            Self::KeyFile { path, created: true } => write!(f, "the key file {} (created now)", path.display()),
            Self::KeyFile { path, .. } => write!(f, "the key file {}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MasterKey {
    pub secrets: SecretBox,
    pub source: KeySource,
}

/// Finds the master key (environment first, then the key file in `data_dir`) and proves it
/// opens a stored ciphertext, if there is one. Creates the key file (mode 0600) only when
/// neither exists and the database holds no encrypted data.
pub async fn load_master_key(
    store: &dyn Store,
    env_key: Option<&str>,
    data_dir: &Path,
) -> Result<MasterKey, BootstrapError> {
    let sample = store.sample_ciphertext().await?;
    let check = store.key_check().await?;
    let holds_secrets = sample.is_some() || check.is_some();
    let key = match env_key {
        Some(hex) => MasterKey {
            secrets: SecretBox::from_hex(hex).map_err(BootstrapError::BadEnvironmentKey)?,
            source: KeySource::Environment,
        },
        None => {
            let path = data_dir.join(KEY_FILE_NAME);
            if holds_secrets && !path.exists() {
                return Err(BootstrapError::MissingKey(path));
            }
            let (secrets, created) =
                SecretBox::load_or_create_key_file(data_dir, !holds_secrets).map_err(BootstrapError::KeyFile)?;
            MasterKey {
                secrets,
                source: KeySource::KeyFile { path, created },
            }
        }
    };
    if let Some((owner, ciphertext)) = sample {
        if key.secrets.open(owner.as_str(), &ciphertext).is_err() {
            return Err(BootstrapError::WrongKey(key.source.to_string()));
        }
    }
    // The proof sealed at the first start: a node with another key is refused even while
    // the database holds no app secret yet (several nodes starting at once on different
    // keys: the first proof stored wins, the others cannot open it).
    let check = match check {
        Some(c) => c,
        None => {
            let sealed = key.secrets.seal(KEY_CHECK_OWNER, KEY_CHECK_TEXT);
            store.put_key_check(&sealed, crate::domain::now_ms()).await?;
            store.key_check().await?.unwrap_or(sealed)
        }
    };
    match key.secrets.open(KEY_CHECK_OWNER, &check) {
        Ok(text) if text == KEY_CHECK_TEXT => Ok(key),
        _ => Err(BootstrapError::WrongKey(key.source.to_string())),
    }
}

/// The owner and text of the master key's proof (`key_check`).
const KEY_CHECK_OWNER: &str = "tern:key-check";
const KEY_CHECK_TEXT: &[u8] = b"tern master key check v1";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tenancy::{create_app, create_tenant};

    const ENV_KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";

    async fn store_with_secret(secrets: &SecretBox) -> (std::sync::Arc<dyn crate::store::Store>, tempfile::TempDir) {
        let (store, db) = crate::store::testing::sqlite_temp().await;
        create_tenant(&*store, "Acme").await.unwrap();
        create_app(&*store, secrets, "Acme", "chat").await.unwrap();
        (store, db)
    }

    #[tokio::test]
    async fn empty_database_creates_the_key_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _db) = crate::store::testing::sqlite_temp().await;
        let first = load_master_key(&*store, None, dir.path()).await.unwrap();
        assert!(matches!(first.source, KeySource::KeyFile { created: true, .. }));
        assert!(dir.path().join(KEY_FILE_NAME).exists());
        create_tenant(&*store, "Acme").await.unwrap();
        create_app(&*store, &first.secrets, "Acme", "chat").await.unwrap();
        let second = load_master_key(&*store, None, dir.path()).await.unwrap();
        assert!(matches!(second.source, KeySource::KeyFile { created: false, .. }));
    }

    #[tokio::test]
    async fn the_environment_key_wins_and_must_open_stored_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let env_box = SecretBox::from_hex(ENV_KEY).unwrap();
        let (store, _db) = store_with_secret(&env_box).await;
        let key = load_master_key(&*store, Some(ENV_KEY), dir.path()).await.unwrap();
        assert_eq!(key.source, KeySource::Environment);
        assert!(
            !dir.path().join(KEY_FILE_NAME).exists(),
            "no key file when the env has one"
        );

        let other = "02".repeat(32);
        let err = load_master_key(&*store, Some(&other), dir.path()).await.unwrap_err();
        assert!(matches!(err, BootstrapError::WrongKey(_)));
        assert!(err.to_string().contains("TERN_MASTER_KEY"), "{err}");

        let err = load_master_key(&*store, Some("abc"), dir.path()).await.unwrap_err();
        assert!(matches!(err, BootstrapError::BadEnvironmentKey(_)));
        assert!(err.to_string().contains("64"), "{err}");
    }

    #[tokio::test]
    async fn a_second_key_is_refused_even_before_any_secret_is_stored() {
        // Two nodes over one empty database, started with different keys: the first key
        // wins; the second is refused, where it used to start and fail every request.
        let dir = tempfile::tempdir().unwrap();
        let (store, _db) = crate::store::testing::sqlite_temp().await;
        assert!(store.sample_ciphertext().await.unwrap().is_none());
        load_master_key(&*store, Some(ENV_KEY), dir.path()).await.unwrap();
        let other = "03".repeat(32);
        let err = load_master_key(&*store, Some(&other), dir.path()).await.unwrap_err();
        assert!(matches!(err, BootstrapError::WrongKey(_)), "{err}");
        assert!(err.to_string().contains("other nodes"), "{err}");
        // The first key still starts, and a key file is not made up without one.
        load_master_key(&*store, Some(ENV_KEY), dir.path()).await.unwrap();
        let err = load_master_key(&*store, None, dir.path()).await.unwrap_err();
        assert!(matches!(err, BootstrapError::MissingKey(_)), "{err}");
    }

    #[tokio::test]
    async fn encrypted_data_without_a_key_refuses_to_start_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _db) = store_with_secret(&SecretBox::from_key([5; 32])).await;
        let err = load_master_key(&*store, None, dir.path()).await.unwrap_err();
        assert!(matches!(err, BootstrapError::MissingKey(_)));
        assert!(err.to_string().contains("no master key"), "{err}");
        assert!(
            !dir.path().join(KEY_FILE_NAME).exists(),
            "must not silently make a new key"
        );
    }

    #[tokio::test]
    async fn a_key_file_that_does_not_open_the_data_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let (file_box, _) = SecretBox::load_or_create_key_file(dir.path(), true).unwrap();
        let (store, _db) = store_with_secret(&SecretBox::from_key([5; 32])).await;
        let err = load_master_key(&*store, None, dir.path()).await.unwrap_err();
        assert!(matches!(err, BootstrapError::WrongKey(_)));
        assert!(err.to_string().contains("key file"), "{err}");
        // The file's own data opens fine.
        let (store, _db) = store_with_secret(&file_box).await;
        load_master_key(&*store, None, dir.path()).await.unwrap();
    }
}
