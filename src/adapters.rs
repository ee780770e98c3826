//! Which adapter fills each port of this node, decided from the configuration before
//! anything starts: the in-process bus, presence and routing, nonce record and rate limits
//! by default; with `TERN_REDIS_URL`, the Redis adapters, so several nodes over one
//! PostgreSQL and one Redis behave as one. `TERN_PULSAR_URL` stops `tern serve` at once
//! (this build has no Pulsar adapter) instead of being silently ignored.

use std::sync::Arc;

use tern_platform::clock::SystemClock;
use tern_platform::files::{self, FileStore, FileStoreError};
use tern_platform::ports::Ports;
use tern_platform::redis_adapters::{RedisAdapters, RedisConfig, RedisHealth, RedisSetupError};
use tern_platform::store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;

/// The adapters chosen for the ports other than the store (which the store URL picks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adapters {
    /// Bus, presence and routing, nonce record and rate limits in this process.
    InProcess,
    /// The same ports in Redis, shared by every node of the deployment.
    Redis {
        url: String,
        /// The URL with its password hidden, for logs and errors.
        redacted: String,
        prefix: String,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdapterError {
    #[error(
        "TERN_PULSAR_URL is set but this build has no Pulsar adapter yet; \
         unset it to run on the in-process bus (or Redis with TERN_REDIS_URL)"
    )]
    PulsarNotBuilt,
}

/// The ports of a node, and what `/readyz` asks of them.
pub struct Chosen {
    pub ports: Ports,
    /// Redis, when the ports live there.
    pub redis: Option<RedisHealth>,
}

impl Adapters {
    /// The adapters `config` asks for, or why this build cannot provide them.
    pub fn from_config(config: &Config) -> Result<Self, AdapterError> {
        if config.pulsar_url.is_some() {
            return Err(AdapterError::PulsarNotBuilt);
        }
        Ok(match &config.redis_url {
            None => Self::InProcess,
            Some(url) => Self::Redis {
                url: url.expose().to_owned(),
                redacted: url.redacted(),
                prefix: config.redis_prefix.clone(),
            },
        })
    }

    /// The ports of node `node` on `store`. For Redis this connects, takes the node's lease
    /// and starts its renewal on `tasks` until `stop`; an unreachable Redis is an error the
    /// caller may retry (`RedisSetupError::Unreachable`), the others are not.
    pub async fn ports(
        &self,
        store: Arc<dyn Store>,
        node: &str,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> Result<Chosen, RedisSetupError> {
        match self {
            Self::InProcess => Ok(Chosen {
                ports: Ports::in_process(store),
                redis: None,
            }),
            Self::Redis { url, prefix, .. } => {
                let config = RedisConfig {
                    url: url.clone(),
                    prefix: prefix.clone(),
                };
                let r = RedisAdapters::connect(&config, node, tasks, stop).await?;
                Ok(Chosen {
                    ports: Ports {
                        store,
                        bus: r.bus,
                        presence: r.presence,
                        nonces: r.nonces,
                        rate_limits: r.rate_limits,
                        clock: Arc::new(SystemClock),
                        files: tern_platform::files::memory::open(),
                    },
                    redis: Some(r.health),
                })
            }
        }
    }
}

/// The file store `config` names (`TERN_FILES_URL`): a local directory (`file:///dir`, by
/// default `files/` in the data dir) or S3 (`s3://bucket?endpoint=…`).
pub fn file_store(config: &Config) -> Result<Arc<dyn FileStore>, FileStoreError> {
    match config.files_url.as_ref().map(|u| u.expose()) {
        None => files::local::open(&config.data_dir.join("files")),
        Some(url) if url.starts_with("s3://") => files::s3::open(url),
        Some(url) => match url.strip_prefix("file://") {
            Some(dir) if dir.starts_with('/') => files::local::open(std::path::Path::new(dir)),
            _ => Err(FileStoreError::Config(
                "TERN_FILES_URL must be file:///absolute/dir or s3://bucket?endpoint=…".into(),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(env: &[(&str, &str)]) -> Config {
        let vars = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_sources(None, &vars).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn files_go_to_the_data_dir_unless_a_url_says_otherwise() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let data = dir.path().display().to_string();
        let store = file_store(&config(&[("TERN_DATA_DIR", &data)])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.kind(), files::FileStoreKind::Local);
        assert!(dir.path().join("files").is_dir());
        let elsewhere = format!("file://{data}/elsewhere");
        let store = file_store(&config(&[("TERN_FILES_URL", &elsewhere)])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.kind(), files::FileStoreKind::Local);
        assert!(file_store(&config(&[("TERN_FILES_URL", "file://relative/dir")])).is_err());
        let s3 = file_store(&config(&[(
            "TERN_FILES_URL",
            "s3://media?endpoint=http://127.0.0.1:9&region=us-east-1&access_key_id=a&secret_access_key=b",
        )]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s3.kind(), files::FileStoreKind::S3);
        assert!(Config::from_sources(None, &[("TERN_FILES_URL".to_owned(), "ftp://x".to_owned())].into()).is_err());
        assert!(Config::from_sources(
            None,
            &[("TERN_PUBLIC_URL".to_owned(), "files.example".to_owned())].into()
        )
        .is_err());
    }

    #[test]
    fn the_default_is_in_process() {
        assert_eq!(Adapters::from_config(&config(&[])), Ok(Adapters::InProcess));
    }

    #[test]
    fn a_redis_url_picks_redis_with_the_password_hidden_in_what_is_shown() {
        let a = Adapters::from_config(&config(&[
            ("TERN_REDIS_URL", "redis://:pw-123@cache:6379/0"),
            ("TERN_REDIS_PREFIX", "prod-1"),
        ]));
        let Ok(Adapters::Redis { redacted, prefix, .. }) = a else {
            panic!("{a:?}");
        };
        assert!(!redacted.contains("pw-123"), "{redacted}");
        assert_eq!(prefix, "prod-1");
        assert!(matches!(
            Adapters::from_config(&config(&[("TERN_REDIS_URL", "redis://cache:6379")])),
            Ok(Adapters::Redis { prefix, .. }) if prefix == "tern"
        ));
    }

    #[test]
    fn pulsar_is_refused() {
        let err = Adapters::from_config(&config(&[("TERN_PULSAR_URL", "pulsar://broker:6650")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("TERN_PULSAR_URL is set"), "{err}");
    }
}
