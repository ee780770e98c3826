//! Starts the real server API in-process on 127.0.0.1:0 over a fresh store, with apps
//! created directly in the store, and hands out signed clients.
#![allow(dead_code, unused_macros, clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::{json, Value};

use tern_platform::delivery::Pipeline;
use tern_platform::domain::*;
pub use tern_platform::engine::{Engine, EngineConfig};
use tern_platform::ids::*;
use tern_platform::secret_box::SecretBox;
use tern_platform::store::{testing, NewApp, Store};
use tern_sdk::server::ServerClient;
use tern_tenant_api::ApiState;

pub struct TestApp {
    pub app: App,
    pub secret: String,
    pub client: ServerClient,
}

pub struct TestServer {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub secrets: SecretBox,
    pub pipeline: Arc<Pipeline>,
    pub tenant: TenantId,
    state: ApiState,
    _engine: Engine,
    _dir: Option<tempfile::TempDir>,
}

/// The stores to run a test against: SQLite always, PostgreSQL when configured.
pub async fn stores() -> Vec<(&'static str, Arc<dyn Store>, Option<tempfile::TempDir>)> {
    let (sqlite, dir) = testing::sqlite_temp().await;
    let mut out = vec![("sqlite", sqlite, Some(dir))];
    if let Some(pg) = testing::postgres_fresh().await {
        out.push(("postgres", pg, None));
    }
    out
}

impl TestServer {
    pub async fn start(store: Arc<dyn Store>, dir: Option<tempfile::TempDir>) -> Self {
        Self::start_with(store, dir, EngineConfig::default()).await
    }

    pub async fn start_with(store: Arc<dyn Store>, dir: Option<tempfile::TempDir>, config: EngineConfig) -> Self {
        Self::start_on(tern_platform::ports::Ports::in_process(store), dir, config).await
    }

    /// On ports of the caller's (a file store of its own, ...).
    pub async fn start_on(
        ports: tern_platform::ports::Ports,
        dir: Option<tempfile::TempDir>,
        config: EngineConfig,
    ) -> Self {
        let store = ports.store.clone();
        let secrets = SecretBox::from_key([42; 32]);
        let engine = Engine::with_ports(ports, secrets.clone(), config);
        let state = ApiState::from_engine(&engine);
        let pipeline = engine.pipeline.clone();
        let router = tern_tenant_api::ops::with_observability(tern_tenant_api::router(state.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        let tenant = Tenant {
            id: TenantId::generate(),
            name: format!("tenant-{}", ulid::Ulid::new()),
            status: TenantStatus::Active,
            created_at: now_ms(),
        };
        store.create_tenant(&tenant).await.unwrap();
        Self {
            base: format!("http://{addr}"),
            store,
            secrets,
            pipeline,
            tenant: tenant.id,
            state,
            _engine: engine,
            _dir: dir,
        }
    }

    /// Drops the node's cached credentials of an app, as the API does after it changes
    /// them, so a change made directly in the store is seen by the next request.
    pub fn forget_credentials(&self, key: &AppKey) {
        self.state.verifier.credentials().invalidate(key);
    }

    pub fn api_state(&self) -> ApiState {
        self.state.clone()
    }

    /// A new app of the test tenant with a signed client.
    pub async fn app(&self, name: &str) -> TestApp {
        self.app_of(self.tenant.clone(), name).await
    }

    /// A new app of a new tenant (another customer) with a signed client.
    pub async fn app_in_new_tenant(&self, name: &str) -> TestApp {
        let tenant = Tenant {
            id: TenantId::generate(),
            name: format!("tenant-{}", ulid::Ulid::new()),
            status: TenantStatus::Active,
            created_at: now_ms(),
        };
        self.store.create_tenant(&tenant).await.unwrap();
        self.app_of(tenant.id, name).await
    }

    async fn app_of(&self, tenant_id: TenantId, name: &str) -> TestApp {
        let id = AppId::generate();
        let secret = format!("sk_{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
        let record = AppSecretRecord {
            id: SecretId::generate(),
            app_id: id.clone(),
            ciphertext: self.secrets.seal(id.as_str(), secret.as_bytes()),
            created_at: now_ms(),
            expires_at: None,
        };
        let new = NewApp {
            id: id.clone(),
            tenant_id,
            name: name.to_owned(),
            app_key: AppKey::generate(),
            settings: AppSettings::default(),
            first_secret: record,
            webhook_secret_ciphertext: self.secrets.seal(id.as_str(), b"whsec_test"),
        };
        let app = self.store.create_app(&new).await.unwrap();
        let client = ServerClient::new(&self.base, app.app_key.as_str(), &secret);
        TestApp { app, secret, client }
    }

    /// Raw HTTP, for requests a well-behaved client would never send.
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }
}

/// Signs a unary gRPC call the way SIGNING.md says: POST, the method path (e.g.
/// `/tern.server.v1.Users/GetUser`), an empty query, the protobuf bytes of the request.
pub fn grpc_signed<T: prost::Message>(app: &TestApp, path: &str, msg: T) -> tonic::Request<T> {
    let body = msg.encode_to_vec();
    let headers = tern_sdk::signing::sign_request(
        app.app.app_key.as_str(),
        &app.secret,
        "POST",
        path,
        &body,
        tern_sdk::signing::unix_now(),
        &tern_sdk::signing::new_nonce(),
    );
    let mut req = tonic::Request::new(msg);
    for (k, v) in headers {
        req.metadata_mut().insert(
            k.to_ascii_lowercase()
                .parse::<tonic::metadata::AsciiMetadataKey>()
                .unwrap(),
            v.parse().unwrap(),
        );
    }
    req
}

/// The gRPC server API of `s`, on a listener of its own, and a channel to it.
pub async fn grpc_channel(s: &TestServer) -> tonic::transport::Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tern_tenant_api::grpc::serve(
        listener,
        s.api_state(),
        tokio_util::sync::CancellationToken::new(),
    ));
    tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Runs `$body(server)` once per store (SQLite, and PostgreSQL when configured) on a server
/// without the worker role, so outboxes are left for the test to read; with `with_worker`,
/// on a server with every role, as `tern serve` runs (webhooks and broadcasts are sent).
macro_rules! on_every_store {
    ($name:ident, $body:ident) => {
        on_every_store!(@run $name, $body, EngineConfig {
            run_worker: false,
            ..EngineConfig::default()
        });
    };
    ($name:ident, $body:ident, with_worker) => {
        on_every_store!(@run $name, $body, EngineConfig::default());
    };
    (@run $name:ident, $body:ident, $config:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for (backend, store, dir) in stores().await {
                eprintln!("{} on {backend}", stringify!($name));
                let server = TestServer::start_with(store, dir, $config).await;
                $body(server).await;
            }
        }
    };
}

/// A server API call that must succeed, as JSON.
pub async fn call(c: &ServerClient, method: &str, path: &str, body: Option<Value>) -> Value {
    c.request::<Value>(method, path, body.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
}

/// A server API call that must fail; its error code.
pub async fn fails(c: &ServerClient, method: &str, path: &str, body: Option<Value>) -> String {
    let e = c
        .request::<Value>(method, path, body.as_ref())
        .await
        .expect_err(&format!("{method} {path} should fail"));
    e.code().unwrap_or("<none>").to_owned()
}

/// Creates users with just their ids.
pub async fn users(c: &ServerClient, ids: &[&str]) {
    let list: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
    c.upsert_users(&list).await.unwrap();
}
