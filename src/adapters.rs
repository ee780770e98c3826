//! Which adapter fills each port of this node, decided from the configuration before
//! anything starts: the in-process bus, presence and routing, nonce record and rate limits
//! by default; with `TERN_REDIS_URL`, the Redis adapters, so several nodes over one
//! PostgreSQL and one Redis behave as one; with `TERN_PULSAR_URL` as well (a build with
//! `--features pulsar`), the bus runs on Pulsar while Redis keeps presence and routing. A
//! build without the feature refuses `TERN_PULSAR_URL` at once instead of ignoring it.

use std::sync::Arc;

use tern_platform::bus::Bus;
use tern_platform::clock::SystemClock;
use tern_platform::files::{self, FileStore, FileStoreError};
use tern_platform::ports::Ports;
use tern_platform::redis_adapters::{RedisAdapters, RedisConfig, RedisHealth, RedisSetupError};
use tern_platform::store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;

pub use tern_platform::bus::DEFAULT_PULSAR_TOPIC_PREFIX;

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
        /// The bus on Pulsar instead of Redis pub/sub.
        pulsar: Option<PulsarSettings>,
    },
}

/// `TERN_PULSAR_URL`, `TERN_PULSAR_TOPIC_PREFIX` and `TERN_PULSAR_TOKEN`.
#[derive(Clone, PartialEq, Eq)]
pub struct PulsarSettings {
    pub url: String,
    /// The URL with its password hidden, for logs and errors.
    pub redacted: String,
    pub topic_prefix: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for PulsarSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarSettings")
            .field("url", &self.redacted)
            .field("topic_prefix", &self.topic_prefix)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdapterError {
    #[error(
        "TERN_PULSAR_URL is set but this binary was built without Pulsar: build it with \
         `cargo build --release --features pulsar` (needs protoc), or unset TERN_PULSAR_URL \
         to run the bus on Redis (TERN_REDIS_URL) or in process"
    )]
    PulsarNotBuilt,
    #[error(
        "TERN_PULSAR_URL needs TERN_REDIS_URL too: Pulsar carries the bus, Redis keeps \
         presence and routing (which node holds which user)"
    )]
    PulsarNeedsRedis,
}

/// Why the ports could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PortsError {
    /// Worth retrying: the service may come up.
    #[error("cannot reach {service}: {reason}")]
    Unreachable { service: &'static str, reason: String },
    /// A setting the service cannot use, or a node id in use: stops the start.
    #[error("{0}")]
    Fatal(String),
}

impl From<RedisSetupError> for PortsError {
    fn from(e: RedisSetupError) -> Self {
        match e {
            RedisSetupError::Unreachable(reason) => Self::Unreachable {
                service: "redis",
                reason,
            },
            other => Self::Fatal(other.to_string()),
        }
    }
}

/// What `/readyz` asks of the Pulsar bus.
#[derive(Clone)]
pub struct PulsarCheck(Arc<dyn Fn() -> Result<(), String> + Send + Sync>);

impl PulsarCheck {
    pub fn check(&self) -> Result<(), String> {
        (self.0)()
    }
}

/// The ports of a node, and what `/readyz` asks of them.
pub struct Chosen {
    pub ports: Ports,
    /// Redis, when the ports live there.
    pub redis: Option<RedisHealth>,
    /// Pulsar, when the bus lives there.
    pub pulsar: Option<PulsarCheck>,
}

impl Adapters {
    /// The adapters `config` asks for, or why this build cannot provide them.
    pub fn from_config(config: &Config) -> Result<Self, AdapterError> {
        let pulsar = match &config.pulsar_url {
            None => None,
            Some(_) if !cfg!(feature = "pulsar") => return Err(AdapterError::PulsarNotBuilt),
            Some(_) if config.redis_url.is_none() => return Err(AdapterError::PulsarNeedsRedis),
            Some(url) => Some(PulsarSettings {
                url: url.expose().to_owned(),
                redacted: url.redacted(),
                topic_prefix: config
                    .pulsar_topic_prefix
                    .clone()
                    .unwrap_or_else(|| DEFAULT_PULSAR_TOPIC_PREFIX.to_owned()),
                token: config.pulsar_token.as_ref().map(|t| t.expose().to_owned()),
            }),
        };
        Ok(match &config.redis_url {
            None => Self::InProcess,
            Some(url) => Self::Redis {
                url: url.expose().to_owned(),
                redacted: url.redacted(),
                prefix: config.redis_prefix.clone(),
                pulsar,
            },
        })
    }

    /// The ports of node `node` on `store`. For Redis this connects, takes the node's lease
    /// and starts its renewal on `tasks` until `stop`; an unreachable Redis is an error the
    /// caller may retry (`PortsError::Unreachable`, Redis or Pulsar), the others are not.
    pub async fn ports(
        &self,
        store: Arc<dyn Store>,
        node: &str,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> Result<Chosen, PortsError> {
        match self {
            Self::InProcess => Ok(Chosen {
                ports: Ports::in_process(store),
                redis: None,
                pulsar: None,
            }),
            Self::Redis {
                url, prefix, pulsar, ..
            } => {
                let config = RedisConfig {
                    url: url.clone(),
                    prefix: prefix.clone(),
                };
                // Pulsar first: a failure there must not leave this node's Redis lease taken.
                let on_pulsar = match pulsar {
                    None => None,
                    Some(settings) => Some(pulsar_bus(settings, node, stop.clone()).await?),
                };
                let r = RedisAdapters::connect(&config, node, tasks, stop).await?;
                let (bus, pulsar): (Arc<dyn Bus>, _) = match on_pulsar {
                    Some((bus, check)) => (bus, Some(check)),
                    None => (r.bus, None),
                };
                Ok(Chosen {
                    pulsar,
                    ports: Ports {
                        store,
                        bus,
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

/// The Pulsar bus of node `node`, and its readiness check.
#[cfg(feature = "pulsar")]
async fn pulsar_bus(
    settings: &PulsarSettings,
    node: &str,
    stop: CancellationToken,
) -> Result<(Arc<dyn Bus>, PulsarCheck), PortsError> {
    use tern_platform::pulsar_bus::{PulsarBus, PulsarConfig, PulsarSetupError, Tuning};
    let config = PulsarConfig {
        url: settings.url.clone(),
        topic_prefix: settings.topic_prefix.clone(),
        token: settings.token.clone(),
        tuning: Tuning::default(),
    };
    let bus = PulsarBus::connect(config, node, stop).await.map_err(|e| match e {
        PulsarSetupError::Unreachable(reason) => PortsError::Unreachable {
            service: "pulsar",
            reason,
        },
        other => PortsError::Fatal(other.to_string()),
    })?;
    let health = bus.health();
    Ok((Arc::new(bus), PulsarCheck(Arc::new(move || health.check()))))
}

#[cfg(not(feature = "pulsar"))]
async fn pulsar_bus(
    _: &PulsarSettings,
    _: &str,
    _: CancellationToken,
) -> Result<(Arc<dyn Bus>, PulsarCheck), PortsError> {
    Err(PortsError::Fatal(AdapterError::PulsarNotBuilt.to_string()))
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
    fn pulsar_needs_the_feature_and_redis() {
        let alone = Adapters::from_config(&config(&[("TERN_PULSAR_URL", "pulsar://broker:6650")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let with_redis = Adapters::from_config(&config(&[
            ("TERN_PULSAR_URL", "pulsar://broker:6650"),
            ("TERN_REDIS_URL", "redis://cache:6379"),
            ("TERN_PULSAR_TOKEN", "jwt-secret-1"),
        ]));
        if cfg!(feature = "pulsar") {
            assert!(alone.starts_with("TERN_PULSAR_URL needs TERN_REDIS_URL"), "{alone}");
            let Ok(Adapters::Redis { pulsar: Some(p), .. }) = &with_redis else {
                panic!("{with_redis:?}");
            };
            assert_eq!(p.topic_prefix, DEFAULT_PULSAR_TOPIC_PREFIX);
            assert!(!format!("{p:?}").contains("jwt-secret-1"));
        } else {
            assert!(
                alone.contains("built without Pulsar") && alone.contains("--features pulsar"),
                "{alone}"
            );
            assert_eq!(with_redis, Err(AdapterError::PulsarNotBuilt));
        }
    }
}
