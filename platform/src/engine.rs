//! The engine of one node, assembled: the store and the in-process ports, the delivery
//! pipeline with the before-send hook, the webhook and broadcast workers, and the verifiers of requests and
//! user tokens. `tern serve` and every test suite build it the same way, so what the tests
//! drive is what runs.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::credentials::CredentialCache;
use crate::auth::request::RequestVerifier;
use crate::auth::token::UserTokenVerifier;
use crate::bus::memory::MemoryBus;
use crate::bus::Bus;
use crate::delivery::{Pipeline, PipelineConfig};
use crate::nonce::{MemoryNonceStore, NonceStore};
use crate::presence::{MemoryPresence, Presence};
use crate::secret_box::SecretBox;
use crate::store::{Backend, Store};
use crate::webhook::worker::{self, WorkerConfig};
use crate::webhook::{HttpBeforeSendHook, StoreSecrets, SystemClock, WebhookClient};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's id on the bus and in presence.
    pub node_id: String,
    /// Let webhooks reach loopback and private addresses (development and tests only).
    pub webhook_allow_private: bool,
    /// Run the webhook worker and the broadcast worker in this process (the `worker` role).
    pub run_worker: bool,
    /// How the broadcast worker runs its jobs.
    pub broadcasts: crate::broadcasts::WorkerConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            node_id: "node-1".into(),
            webhook_allow_private: false,
            run_worker: true,
            broadcasts: crate::broadcasts::WorkerConfig::default(),
        }
    }
}

pub struct Engine {
    pub config: EngineConfig,
    pub store: Arc<dyn Store>,
    pub secrets: SecretBox,
    pub bus: Arc<dyn Bus>,
    pub presence: Arc<dyn Presence>,
    pub nonces: Arc<dyn NonceStore>,
    pub pipeline: Arc<Pipeline>,
    pub before_send: Arc<HttpBeforeSendHook>,
    pub outbox_wake: Arc<Notify>,
    /// Notified when a broadcast starts, so the worker takes it at once.
    pub broadcast_wake: Arc<Notify>,
    pub request_verifier: Arc<RequestVerifier>,
    pub user_tokens: Arc<UserTokenVerifier>,
    pub rate_limits: Arc<dyn crate::rate_limits::RateLimits>,
    shutdown: CancellationToken,
    worker: Option<JoinHandle<()>>,
    broadcast_worker: Option<JoinHandle<()>>,
}

impl Engine {
    /// Assembles the engine on the in-process bus and presence. Must run inside Tokio.
    pub fn start(store: Arc<dyn Store>, secrets: SecretBox, config: EngineConfig) -> Self {
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let presence: Arc<dyn Presence> = Arc::new(MemoryPresence::new());
        let nonces: Arc<dyn NonceStore> = Arc::new(MemoryNonceStore::new());
        let client = Arc::new(WebhookClient::new(config.webhook_allow_private));
        let webhook_secrets = Arc::new(StoreSecrets::new(store.clone(), secrets.clone()));
        let before_send = Arc::new(HttpBeforeSendHook::new(client.clone(), webhook_secrets.clone()));
        let outbox_wake = Arc::new(Notify::new());
        let pipeline_config = match store.backend() {
            Backend::Sqlite => PipelineConfig {
                writer_tasks: 1,
                max_batch: 256,
            },
            Backend::Postgres => PipelineConfig {
                writer_tasks: 2,
                max_batch: 512,
            },
        };
        let pipeline = Arc::new(
            Pipeline::new(store.clone(), bus.clone(), presence.clone(), pipeline_config)
                .with_before_send(before_send.clone())
                .with_outbox_wake(outbox_wake.clone()),
        );
        let credentials = Arc::new(CredentialCache::new(store.clone(), secrets.clone()));
        let request_verifier = Arc::new(RequestVerifier::with_cache(credentials.clone(), nonces.clone()));
        let user_tokens = Arc::new(UserTokenVerifier::with_cache(credentials));
        let shutdown = CancellationToken::new();
        let worker = config.run_worker.then(|| {
            worker::spawn(
                store.clone(),
                webhook_secrets,
                client,
                Arc::new(SystemClock),
                WorkerConfig::default(),
                outbox_wake.clone(),
                shutdown.clone(),
            )
        });
        let broadcast_wake = Arc::new(Notify::new());
        let broadcast_worker = config.run_worker.then(|| {
            crate::broadcasts::spawn(
                pipeline.clone(),
                config.broadcasts.clone(),
                broadcast_wake.clone(),
                shutdown.clone(),
                &config.node_id,
            )
        });
        Self {
            config,
            store,
            secrets,
            bus,
            presence,
            nonces,
            rate_limits: pipeline.rate_limits().clone(),
            pipeline,
            before_send,
            outbox_wake,
            broadcast_wake,
            request_verifier,
            user_tokens,
            shutdown,
            worker,
            broadcast_worker,
        }
    }

    /// Stops the background work (the webhook worker finishes the deliveries in flight).
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(w) = self.worker.take() {
            let _ = w.await;
        }
        if let Some(w) = self.broadcast_worker.take() {
            let _ = w.await;
        }
    }
}
