//! The engine of one node, assembled on the ports it is given (`Ports`): the delivery
//! pipeline with the before-send hook, the webhook, broadcast and push workers, the files feature, and the verifiers
//! of requests and user tokens. `tern serve` and every test suite build it the same way, so
//! what the tests drive is what runs; only the adapters behind the ports differ.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::credentials::CredentialCache;
use crate::auth::request::RequestVerifier;
use crate::auth::token::UserTokenVerifier;
use crate::bus::{Bus, Invalidation};
use crate::clock::Clock;
use crate::delivery::{Pipeline, PipelineConfig};
use crate::files::{Files, UrlSigner};
use crate::nonce::NonceStore;
use crate::ports::Ports;
use crate::presence::Presence;
use crate::secret_box::SecretBox;
use crate::store::{Backend, Store};
use crate::webhook::worker::{self, WorkerConfig};
use crate::webhook::{HttpBeforeSendHook, StoreSecrets, WebhookClient};

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
    /// Upload and download lifetimes, the node's largest file.
    pub files: crate::files::FilesConfig,
    /// Where APNs and FCM are (tests: the provider double).
    pub push: crate::push::provider::PushConfig,
    /// How the push worker runs.
    pub push_worker: crate::push::worker::PushWorkerConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            node_id: "node-1".into(),
            webhook_allow_private: false,
            run_worker: true,
            broadcasts: crate::broadcasts::WorkerConfig::default(),
            files: crate::files::FilesConfig::default(),
            push: crate::push::provider::PushConfig::default(),
            push_worker: crate::push::worker::PushWorkerConfig::default(),
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
    /// The time the verifiers, the before-send breaker and the webhook worker read.
    pub clock: Arc<dyn Clock>,
    pub pipeline: Arc<Pipeline>,
    pub before_send: Arc<HttpBeforeSendHook>,
    /// Sends "test events" to an app's webhook endpoint (the console's button).
    pub webhook_test: Arc<crate::webhook::TestSender>,
    pub outbox_wake: Arc<Notify>,
    /// Notified when a broadcast starts, so the worker takes it at once.
    pub broadcast_wake: Arc<Notify>,
    /// Sends pushes: the push worker's, and test pushes from the server API.
    pub pusher: Arc<crate::push::worker::Pusher>,
    pub request_verifier: Arc<RequestVerifier>,
    pub user_tokens: Arc<UserTokenVerifier>,
    /// Uploads, downloads and the sweep of abandoned uploads.
    pub files: Arc<Files>,
    shutdown: CancellationToken,
    /// The webhook and broadcast workers, waited for at shutdown.
    tasks: TaskTracker,
}

impl Engine {
    /// Assembles the engine on `store` and the in-process bus, presence and nonce record
    /// (`Ports::in_process`). Must run inside Tokio.
    pub fn start(store: Arc<dyn Store>, secrets: SecretBox, config: EngineConfig) -> Self {
        Self::with_ports(Ports::in_process(store), secrets, config)
    }

    /// Assembles the engine on the ports chosen by the caller. Must run inside Tokio.
    pub fn with_ports(ports: Ports, secrets: SecretBox, config: EngineConfig) -> Self {
        let Ports {
            store,
            bus,
            presence,
            nonces,
            rate_limits,
            clock,
            files,
        } = ports;
        let client = Arc::new(WebhookClient::new(config.webhook_allow_private));
        let webhook_secrets = Arc::new(StoreSecrets::new(store.clone(), secrets.clone()));
        let before_send = Arc::new(HttpBeforeSendHook::with_clock(
            client.clone(),
            webhook_secrets.clone(),
            clock.clone(),
        ));
        let webhook_test = Arc::new(crate::webhook::TestSender::new(
            store.clone(),
            client.clone(),
            webhook_secrets.clone(),
            clock.clone(),
        ));
        let outbox_wake = Arc::new(Notify::new());
        let push_wake = Arc::new(Notify::new());
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
                .with_outbox_wake(outbox_wake.clone())
                .with_push_wake(push_wake.clone())
                .with_rate_limits(rate_limits),
        );
        let credentials = Arc::new(CredentialCache::new(store.clone(), secrets.clone()));
        let verifier_clock = clock.clone();
        let request_verifier = Arc::new(
            RequestVerifier::with_cache(credentials.clone(), nonces.clone())
                .with_clock(move || verifier_clock.now_ms()),
        );
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(listen_for_invalidations(
            bus.clone(),
            pipeline.clone(),
            credentials.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(
            pipeline
                .usage()
                .clone()
                .run(store.clone(), crate::usage::FLUSH_EVERY, shutdown.clone()),
        );
        let user_tokens = Arc::new(UserTokenVerifier::with_cache(credentials));
        if config.run_worker {
            tasks.spawn(worker::task(
                store.clone(),
                webhook_secrets,
                client,
                clock.clone(),
                WorkerConfig::default(),
                outbox_wake.clone(),
                shutdown.clone(),
            ));
        }
        let broadcast_wake = Arc::new(Notify::new());
        if config.run_worker {
            tasks.spawn(crate::broadcasts::task(
                pipeline.clone(),
                config.broadcasts.clone(),
                broadcast_wake.clone(),
                shutdown.clone(),
                &config.node_id,
            ));
        }
        let files = Arc::new(Files::new(
            store.clone(),
            files,
            UrlSigner::new(secrets.derive_key("file urls")),
            config.files.clone(),
        ));
        if config.run_worker {
            tasks.spawn(crate::files::sweep_task(files.clone(), shutdown.clone()));
        }
        let pusher = Arc::new(crate::push::worker::Pusher::new(
            pipeline.clone(),
            secrets.clone(),
            clock.clone(),
            &config.push,
        ));
        if config.run_worker {
            tasks.spawn(crate::push::worker::task(
                pusher.clone(),
                config.push_worker.clone(),
                push_wake,
                shutdown.clone(),
            ));
        }
        tasks.close();
        Self {
            config,
            store,
            secrets,
            bus,
            presence,
            nonces,
            clock,
            pipeline,
            before_send,
            webhook_test,
            outbox_wake,
            broadcast_wake,
            pusher,
            request_verifier,
            user_tokens,
            files,
            shutdown,
            tasks,
        }
    }

    /// Stops the background work (the webhook worker finishes the deliveries in flight).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tasks.wait().await;
    }
}

/// Drops what a node (this one or another) said is stale: an app's credentials and
/// settings here, the rest in the pipeline's caches. While the bus cannot be listened to,
/// tries again every second; the caches' own expiry covers the gap.
async fn listen_for_invalidations(
    bus: Arc<dyn Bus>,
    pipeline: Arc<Pipeline>,
    credentials: Arc<CredentialCache>,
    stop: CancellationToken,
) {
    let mut heard = loop {
        match bus.invalidations().await {
            Ok(rx) => break rx,
            Err(e) => tracing::warn!(error = %e, "cannot listen for cache invalidations yet; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            () = stop.cancelled() => return,
        }
    };
    loop {
        let invalidation = tokio::select! {
            i = heard.recv() => i,
            () = stop.cancelled() => return,
        };
        match invalidation {
            Some(Invalidation::App { app_key }) => {
                credentials.invalidate(&app_key);
                pipeline.drop_cached(&Invalidation::App { app_key });
            }
            Some(other) => pipeline.drop_cached(&other),
            None => return,
        }
    }
}
