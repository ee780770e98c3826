//! Which adapter fills each port of this node, decided from the configuration before
//! anything starts. This build has only the in-process adapters (bus, presence and routing,
//! nonce record); a setting that asks for another one (`TERN_REDIS_URL`, `TERN_PULSAR_URL`)
//! stops `tern serve` at once instead of being silently ignored, because several nodes
//! that each believe they share a Redis would each deliver only their own users' messages.

use std::sync::Arc;

use tern_platform::ports::Ports;
use tern_platform::store::Store;

use crate::config::Config;

/// The adapters chosen for the ports other than the store (which the store URL picks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapters {
    /// Bus, presence and routing, and the nonce record in this process.
    InProcess,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdapterError {
    #[error(
        "TERN_REDIS_URL is set but this build has no Redis adapter yet; \
         unset it to run one node on the in-process bus, presence and nonce record"
    )]
    RedisNotBuilt,
    #[error(
        "TERN_PULSAR_URL is set but this build has no Pulsar adapter yet; \
         unset it to run one node on the in-process bus"
    )]
    PulsarNotBuilt,
}

impl Adapters {
    /// The adapters `config` asks for, or why this build cannot provide them.
    pub fn from_config(config: &Config) -> Result<Self, AdapterError> {
        if config.redis_url.is_some() {
            return Err(AdapterError::RedisNotBuilt);
        }
        if config.pulsar_url.is_some() {
            return Err(AdapterError::PulsarNotBuilt);
        }
        Ok(Self::InProcess)
    }

    /// The ports of this node on `store`.
    pub fn ports(self, store: Arc<dyn Store>) -> Ports {
        match self {
            Self::InProcess => Ports::in_process(store),
        }
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
    fn the_default_is_in_process() {
        assert_eq!(Adapters::from_config(&config(&[])), Ok(Adapters::InProcess));
    }

    #[test]
    fn redis_or_pulsar_is_refused_with_the_password_hidden() {
        let err = Adapters::from_config(&config(&[("TERN_REDIS_URL", "redis://:pw-123@cache:6379/0")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("TERN_REDIS_URL is set"), "{err}");
        assert!(!err.contains("pw-123"), "{err}");
        let err = Adapters::from_config(&config(&[("TERN_PULSAR_URL", "pulsar://broker:6650")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("TERN_PULSAR_URL is set"), "{err}");
    }
}
