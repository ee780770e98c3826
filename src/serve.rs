//! `tern serve`: binds the HTTP listener at once (so `/healthz` answers from the first
//! second), then reaches the database with backoff, migrates, checks the master key, makes
//! the first admin, and only then swaps the front doors in behind the operational routes.
//! SIGTERM or Ctrl-C stops accepting, drains open requests, flushes traces and exits 0.
//!
//! One shutdown mechanism: a root `CancellationToken`, cancelled by the signal, whose child
//! tokens every listener and the gateway watch; every task serve starts is spawned on one
//! `TaskTracker`, so the end of `run` knows when all of them have finished.

use std::collections::HashSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;
use tern_platform::admins::{ensure_first_admin, FirstAdmin, FirstAdminPassword};
use tern_platform::engine::{Engine, EngineConfig};
use tern_platform::service::signup::SignupPolicy;
use tern_platform::store::Store;
use tern_push_gateway::{Gateway, GatewayConfig};
use tern_tenant_api::connections::{self, ConnectionLimits};
use tern_tenant_api::ops::{self, NodeReadiness, OpsState};
use tern_tenant_api::tls::{Tls, TlsFiles};
use tern_tenant_api::ApiState;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::adapters::{Adapters, PortsError, PulsarCheck};
use crate::cli::{Role, ServeArgs};
use crate::commands::{master_key, open_store, CommandError};
use crate::config::Config;
use crate::telemetry::Telemetry;
use tern_platform::redis_adapters::RedisHealth;

/// First and largest wait between attempts to reach the database.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(15);
/// How long open requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The router the fallback forwards to: the "starting" 503 router until the database is
/// ready, the front doors after.
type Slot = Arc<RwLock<Router>>;

/// The root of shutdown: cancelled once, by the signal (or by a failed start); every task
/// that serve starts is tracked here.
#[derive(Clone)]
struct Lifetime {
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Lifetime {
    /// Cancels everything and waits (bounded) for the tracked tasks to end.
    async fn end(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, self.tasks.wait()).await.is_err() {
            tracing::warn!("background tasks did not finish within {DRAIN_TIMEOUT:?}");
        }
    }
}

/// What this node is to run, settled before anything listens.
struct Plan {
    config: Config,
    adapters: Adapters,
    roles: HashSet<Role>,
    no_migrate: bool,
}

/// What runs once the database is ready; stopped in order at shutdown.
struct Running {
    engine: Engine,
    grpc: Option<tokio::task::JoinHandle<()>>,
    /// The WebSocket gateway: told to send clients away when the shutdown signal comes,
    /// then drained.
    gateway: Option<Arc<Gateway>>,
}

pub async fn run(config: Config, args: ServeArgs, telemetry: Telemetry) -> Result<(), CommandError> {
    let roles: HashSet<Role> = args.roles.iter().copied().collect();
    // Before anything listens: a port asked of an adapter this build lacks stops the start.
    let adapters = match Adapters::from_config(&config) {
        Ok(adapters) => adapters,
        Err(e) => {
            telemetry.shutdown().await;
            return Err(e.into());
        }
    };
    let metrics = ops::install_metrics().map_err(|e| CommandError::Serve(e.to_string()))?;
    let readiness = NodeReadiness::default();
    let slot: Slot = Arc::new(RwLock::new(ops::starting_router()));

    let forward_to = slot.clone();
    let ops_state = OpsState {
        readiness: Arc::new(readiness.clone()),
        metrics,
    };
    // With a metrics address, `/metrics` leaves the public port for a listener of its own.
    let public_ops = match config.metrics_addr {
        Some(_) => ops::health_router(ops_state.clone()),
        None => ops::ops_router(ops_state.clone()),
    };
    let router = public_ops.fallback(move |request: Request| forward(forward_to.clone(), request));
    let limits = connection_limits(&config);
    // TLS is checked before anything listens: a key that does not match its certificate
    // stops the start with a message naming the variables.
    let tls = match load_tls(&config) {
        Ok(tls) => tls,
        Err(e) => {
            telemetry.shutdown().await;
            return Err(e);
        }
    };

    // Both listeners are bound before anything else, so a taken port fails the start at once.
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|e| CommandError::Serve(format!("cannot listen on {}: {e}", config.http_addr)))?;
    let http_addr = listener.local_addr().map_err(|e| CommandError::Serve(e.to_string()))?;
    let grpc_listener = if roles.contains(&Role::Api) || roles.contains(&Role::Gateway) {
        Some(
            tokio::net::TcpListener::bind(config.grpc_addr)
                .await
                .map_err(|e| CommandError::Serve(format!("cannot listen on {} (gRPC): {e}", config.grpc_addr)))?,
        )
    } else {
        None
    };
    let grpc_addr = grpc_listener.as_ref().and_then(|l| l.local_addr().ok());
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| CommandError::Serve(format!("cannot listen on {addr} (metrics): {e}")))?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    print_listening(http_addr, grpc_addr, metrics_addr, tls.is_some());
    tracing::info!(%http_addr, ?grpc_addr, node_id = %config.node_id, roles = ?args.roles, "listening");

    let lifetime = Lifetime {
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
    };
    let root = lifetime.shutdown.clone();
    lifetime.tasks.spawn(async move {
        tokio::select! {
            () = wait_for_signal() => {
                tracing::info!("shutdown signal received: draining");
                root.cancel();
            }
            () = root.cancelled() => {}
        }
    });

    if let Some(metrics_listener) = metrics_listener {
        let stop = lifetime.shutdown.child_token();
        let router = ops::metrics_router(ops_state).fallback(not_found);
        lifetime.tasks.spawn(async move {
            if let Err(e) = connections::serve(metrics_listener, router, limits, stop).await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        });
    }
    if let Some(tls) = &tls {
        lifetime.tasks.spawn(tls.tls.clone().watch(
            tern_tenant_api::tls::DEFAULT_RELOAD_INTERVAL,
            lifetime.shutdown.child_token(),
        ));
    }
    let mut server = lifetime.tasks.spawn(connections::serve_tls(
        listener,
        router,
        limits,
        tls.as_ref().map(|t| t.http.clone()),
        lifetime.shutdown.child_token(),
    ));

    // Links in mails name the address actually bound unless TERN_PUBLIC_URL says otherwise.
    let mut config = config;
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{http_addr}"));
    }
    let plan = Plan {
        config,
        adapters,
        roles,
        no_migrate: args.no_migrate,
    };
    let grpc_tls = tls.map(|t| t.grpc);
    let startup = start(plan, (grpc_listener, grpc_tls), readiness, slot, &lifetime);
    let running = tokio::select! {
        r = startup => r,
        r = &mut server => {
            // The server ended before startup finished: a signal during startup, or an error.
            return finish(r, None, &lifetime, telemetry).await;
        }
    };
    let running = match running {
        Ok(running) => running,
        Err(e) => {
            server.abort();
            lifetime.shutdown.cancel();
            telemetry.shutdown().await;
            return Err(e);
        }
    };

    lifetime.shutdown.cancelled().await;
    match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
        Ok(r) => finish(r, running, &lifetime, telemetry).await,
        Err(_) => {
            tracing::warn!("open connections did not finish within {DRAIN_TIMEOUT:?}: closing them");
            server.abort();
            finish(Ok(Ok(())), running, &lifetime, telemetry).await
        }
    }
}

/// Stops what runs behind the HTTP server (gRPC, then the engine's workers) and flushes traces.
async fn finish(
    r: Result<std::io::Result<()>, tokio::task::JoinError>,
    running: Option<Running>,
    lifetime: &Lifetime,
    telemetry: Telemetry,
) -> Result<(), CommandError> {
    if let Some(running) = running {
        if let Some(grpc) = running.grpc {
            if tokio::time::timeout(DRAIN_TIMEOUT, grpc).await.is_err() {
                tracing::warn!("gRPC calls did not finish within {DRAIN_TIMEOUT:?}");
            }
        }
        if let Some(gw) = running.gateway {
            if tokio::time::timeout(DRAIN_TIMEOUT, gw.drain()).await.is_err() {
                tracing::warn!("WebSocket sessions did not drain within {DRAIN_TIMEOUT:?}");
            }
        }
        running.engine.shutdown().await;
    }
    lifetime.end().await;
    telemetry.shutdown().await;
    match r {
        Ok(Ok(())) => {
            tracing::info!("stopped");
            Ok(())
        }
        Ok(Err(e)) => Err(CommandError::Serve(format!("HTTP server failed: {e}"))),
        Err(e) => Err(CommandError::Serve(format!("HTTP server task failed: {e}"))),
    }
}

/// Connects (retrying with backoff until it works or a shutdown is asked), migrates, checks
/// the master key and the first admin, then starts the engine and mounts the front doors.
/// `Ok(None)` when a shutdown interrupted it.
async fn start(
    plan: Plan,
    grpc_listener: GrpcListener,
    readiness: NodeReadiness,
    slot: Slot,
    lifetime: &Lifetime,
) -> Result<Option<Running>, CommandError> {
    let Plan {
        config,
        adapters,
        roles,
        no_migrate,
    } = plan;
    let mut delay = RETRY_FIRST;
    let mut attempt = 1u32;
    let store = loop {
        match connect_and_migrate(&config, no_migrate).await {
            Ok(store) => break store,
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(attempt, retry_in_ms = delay.as_millis() as u64, error = %reason, "database not ready");
                readiness.set_connecting(reason);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            () = lifetime.shutdown.cancelled() => return Ok(None),
        }
        delay = (delay * 2).min(RETRY_MAX);
        attempt += 1;
    };
    tracing::info!(database = %config.database_url, "database connected and migrated");

    let master_key = master_key(store.as_ref(), &config).await?;
    tracing::info!(source = %master_key.source, "master key loaded");
    let admin = ensure_first_admin(
        store.as_ref(),
        &config.admin_email,
        config.admin_password.as_ref().map(|p| p.expose()),
    )
    .await?;
    print_admin(&admin);

    readiness.set_connected(store.clone());
    let Some(chosen) = choose_ports(&adapters, store, &config, &readiness, lifetime).await? else {
        return Ok(None);
    };
    let files = crate::adapters::file_store(&config).map_err(|e| CommandError::Serve(e.to_string()))?;
    tracing::info!(files = files.kind().as_str(), "file store chosen");
    let push = config.push.push_config()?;
    let engine = Engine::with_ports(
        chosen.ports.with_files(files),
        master_key.secrets,
        EngineConfig {
            push,
            node_id: config.node_id.clone(),
            webhook_allow_private: config.webhook_allow_private,
            run_worker: roles.contains(&Role::Worker),
            files: tern_platform::files::FilesConfig {
                release_grace: std::time::Duration::from_secs(config.files_release_grace_seconds),
                ..Default::default()
            },
            ..EngineConfig::default()
        },
    );
    let mailer = Arc::new(crate::commands::mailer(&config)?);
    if roles.contains(&Role::Worker) {
        // The alert evaluator: every worker node runs one; a database lease lets one check.
        lifetime.tasks.spawn(tern_platform::alerts::evaluator::run(
            engine.store.clone(),
            Some(mailer.clone()),
            tern_platform::alerts::evaluator::EvaluatorConfig {
                every: Duration::from_secs(config.alert_interval_seconds),
                node_id: config.node_id.clone(),
            },
            lifetime.shutdown.child_token(),
        ));
    }
    let (doors, grpc, gateway) = front_doors(&engine, &config, &roles, grpc_listener, mailer, lifetime).await?;
    if let Ok(mut s) = slot.write() {
        *s = doors;
    }
    readiness.set_serving();
    tracing::info!(key = %master_key.source, "ready");
    println!("tern: ready");
    let _ = std::io::stdout().flush();
    Ok(Some(Running { engine, grpc, gateway }))
}

/// The ports of this node. Redis is retried with backoff while it cannot be reached (as
/// the database is; `/readyz` says why meanwhile); a node id held by another running node,
/// or a URL or prefix Redis cannot use, stops the start. `Ok(None)` when a shutdown
/// interrupted it.
async fn choose_ports(
    adapters: &Adapters,
    store: Arc<dyn tern_platform::store::Store>,
    config: &Config,
    readiness: &NodeReadiness,
    lifetime: &Lifetime,
) -> Result<Option<crate::adapters::Chosen>, CommandError> {
    let mut delay = RETRY_FIRST;
    let mut attempt = 1u32;
    loop {
        let tried = adapters
            .ports(
                store.clone(),
                &config.node_id,
                &lifetime.tasks,
                lifetime.shutdown.child_token(),
            )
            .await;
        match tried {
            Ok(chosen) => {
                if let (Some(health), Adapters::Redis { redacted, prefix, .. }) = (&chosen.redis, adapters) {
                    readiness.set_dependency_connected("redis", Arc::new(RedisCheck(health.clone())));
                    tracing::info!(redis = %redacted, %prefix, node_id = %config.node_id, "redis connected; node lease taken");
                }
                if let (Some(check), Adapters::Redis { pulsar: Some(p), .. }) = (&chosen.pulsar, adapters) {
                    readiness.set_dependency_connected("pulsar", Arc::new(PulsarReady(check.clone())));
                    tracing::info!(pulsar = %p.redacted, topic_prefix = %p.topic_prefix, "pulsar connected; the bus runs on it");
                }
                return Ok(Some(chosen));
            }
            Err(PortsError::Unreachable { service, reason }) => {
                tracing::warn!(attempt, retry_in_ms = delay.as_millis() as u64, error = %reason, "{service} not ready");
                readiness.set_dependency_connecting(service, reason);
            }
            Err(e) => return Err(CommandError::Serve(e.to_string())),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            () = lifetime.shutdown.cancelled() => return Ok(None),
        }
        delay = (delay * 2).min(RETRY_MAX);
        attempt += 1;
    }
}

/// The Pulsar bus as `/readyz` sees it: down while a consumer is re-created or silent.
struct PulsarReady(PulsarCheck);

#[async_trait::async_trait]
impl ops::Dependency for PulsarReady {
    async fn check(&self) -> Result<(), String> {
        self.0.check()
    }
}

/// Redis as `/readyz` sees it.
struct RedisCheck(RedisHealth);

#[async_trait::async_trait]
impl ops::Dependency for RedisCheck {
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await
    }
}

async fn connect_and_migrate(config: &Config, no_migrate: bool) -> Result<Arc<dyn Store>, CommandError> {
    let store = open_store(config).await?;
    if no_migrate {
        if !store.ready().await? {
            return Err(CommandError::Serve(
                "migrations are not applied and --no-migrate was given: run `tern migrate`".into(),
            ));
        }
    } else {
        store.migrate().await?;
    }
    Ok(store)
}

/// COMPOSITION POINT: the front doors of each role, mounted once the database is ready.
/// - `Role::Api`: the REST server API (`tern_tenant_api::router`, serving the OpenAPI
///   document of [`openapi_document`]) on the HTTP listener and
///   the gRPC server API on its own listener, and the operations console
///   (`tern_console::router`, HTML under `/console`) beside them;
/// - `Role::Worker`: the webhook outbox worker, run by the engine (`EngineConfig::run_worker`);
/// - `Role::Gateway`: the SDK WebSocket (`/v1/connect`) on the HTTP listener and its gRPC
///   twin (`tern.client.v1.Gateway/Connect`) on the gRPC port, sharing the engine's
///   pipeline, so a message sent through any door reaches the sessions here.
///
/// Paths no front door claims answer a JSON 404.
async fn front_doors(
    engine: &Engine,
    config: &Config,
    roles: &HashSet<Role>,
    (grpc_listener, grpc_tls): GrpcListener,
    mailer: Arc<tern_platform::mail::Mailer>,
    lifetime: &Lifetime,
) -> Result<(Router, Option<tokio::task::JoinHandle<()>>, Option<Arc<Gateway>>), CommandError> {
    let mut router = Router::new();
    let mut gateway = None;
    if roles.contains(&Role::Gateway) {
        // Upgraded connections are not part of the HTTP server's own graceful drain: the
        // gateway watches the shutdown itself and tells clients to reconnect elsewhere.
        let stop = lifetime.shutdown.child_token();
        let gw_config = GatewayConfig {
            node_id: config.node_id.clone(),
            max_connections: config.max_connections as usize,
            heartbeat_interval: std::time::Duration::from_secs(config.heartbeat_seconds),
            room_flush_interval: std::time::Duration::from_millis(config.room_flush_ms),
            public_url: config.public_url.clone(),
            deflate: config.ws_deflate,
            ..GatewayConfig::default()
        };
        let gw = Gateway::start(gw_config, engine.pipeline.clone(), engine.user_tokens.clone(), stop)
            .await
            .map_err(|e| CommandError::Serve(format!("gateway: {e}")))?;
        gw.use_files(engine.files.clone());
        router = router.merge(tern_push_gateway::router(gw.clone()));
        gateway = Some(gw);
    }
    let limits = connection_limits(config);
    // The SDK's gRPC door (`tern.client.v1.Gateway`) on the gRPC port, beside the server API.
    let door = gateway.clone();
    let add_door = move |routes: tonic::service::Routes| match door {
        Some(gw) => routes.add_service(tern_push_gateway::grpc_service(gw)),
        None => routes,
    };
    if !roles.contains(&Role::Api) {
        let grpc = grpc_listener.map(|listener| {
            let stop = lifetime.shutdown.child_token();
            lifetime.tasks.spawn(async move {
                if let Err(e) =
                    tern_tenant_api::grpc::serve_doors_only(listener, limits, grpc_tls, add_door, stop).await
                {
                    tracing::error!(error = %e, "gRPC server failed");
                }
            })
        });
        return Ok((ops::with_observability(router.fallback(not_found)), grpc, gateway));
    }
    let state = ApiState::from_engine(engine).with(|s| {
        s.max_app_rate_per_second = config.max_app_rate_limit;
        s.public_url = config.public_url.clone();
        s.openapi_json = openapi_document().into();
    });
    let grpc = grpc_listener.map(|listener| {
        let state = state.clone();
        let stop = lifetime.shutdown.child_token();
        lifetime.tasks.spawn(async move {
            if let Err(e) =
                tern_tenant_api::grpc::serve_with_doors(listener, state, limits, grpc_tls, add_door, stop).await
            {
                tracing::error!(error = %e, "gRPC server failed");
            }
        })
    });
    println!("  mail:     {}", mailer.describe());
    println!(
        "  sign-up:  {}",
        match config.signup {
            SignupPolicy::Off => "off (operators create tenants)",
            SignupPolicy::Approval => "open, an operator approves each new tenant",
            SignupPolicy::Open => "open, new tenants are active once their email is confirmed",
        }
    );
    let _ = std::io::stdout().flush();
    let console = tern_console::ConsoleState::from_engine(engine, mailer).with(|c| {
        c.max_app_rate_per_second = config.max_app_rate_limit;
        c.signup = config.signup;
    });
    Ok((
        ops::with_observability(
            router
                .merge(tern_tenant_api::router(state))
                .merge(tern_console::router(console)),
        ),
        grpc,
        gateway,
    ))
}

/// COMPOSITION POINT: the OpenAPI document served at `GET /v1/openapi.json` and committed as
/// `docs/openapi.json`: the server API's (`tern_tenant_api::openapi`) with the operator API's
/// part (`/admin/v1`, `tern_console::admin::AdminDoc`) merged in, so neither door imports the
/// other.
fn openapi_document() -> String {
    use utoipa::OpenApi as _;
    tern_tenant_api::openapi::document_json_with(vec![tern_console::admin::AdminDoc::openapi()])
}

async fn not_found(request: Request) -> Response {
    let message = format!("no route for {} {}", request.method(), request.uri().path());
    ops::json_error(&request, StatusCode::NOT_FOUND, "not_found", &message)
}

async fn forward(slot: Slot, request: Request) -> Response {
    let router = match slot.read() {
        Ok(r) => r.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The gRPC listener (when this node runs the api role) and its TLS acceptor (when TLS is on).
type GrpcListener = (Option<tokio::net::TcpListener>, Option<TlsAcceptor>);

/// The node's certificate (reloaded on change) and an acceptor per port.
struct NodeTls {
    tls: Tls,
    http: TlsAcceptor,
    grpc: TlsAcceptor,
}

/// Reads `TERN_TLS_CERT` and `TERN_TLS_KEY` when set; fails on unreadable files or a key
/// that is not the certificate's.
fn load_tls(config: &Config) -> Result<Option<NodeTls>, CommandError> {
    let Some(paths) = &config.tls else {
        return Ok(None);
    };
    let tls = Tls::load(TlsFiles {
        cert: paths.cert.clone(),
        key: paths.key.clone(),
    })
    .map_err(|e| CommandError::Serve(e.to_string()))?;
    let http = tls.http_acceptor().map_err(|e| CommandError::Serve(e.to_string()))?;
    let grpc = tls.grpc_acceptor().map_err(|e| CommandError::Serve(e.to_string()))?;
    tracing::info!(cert = %paths.cert.display(), "TLS on the HTTP and gRPC ports");
    Ok(Some(NodeTls { tls, http, grpc }))
}

/// The bounds of every port's connections, from the settings.
fn connection_limits(config: &Config) -> ConnectionLimits {
    let keepalive = Duration::from_secs(config.http2_keepalive_seconds);
    ConnectionLimits {
        max_connections: config.max_http_connections as usize,
        header_timeout: Duration::from_secs(config.http_header_timeout_seconds),
        idle_timeout: Duration::from_secs(config.http_idle_timeout_seconds),
        keepalive_interval: keepalive,
        keepalive_timeout: keepalive,
        http2_only: false,
    }
}

fn print_listening(http_addr: SocketAddr, grpc_addr: Option<SocketAddr>, metrics_addr: Option<SocketAddr>, tls: bool) {
    let scheme = if tls { "https" } else { "http" };
    println!("tern: listening");
    println!("  http:     {scheme}://{http_addr}");
    println!("  console:  {scheme}://{http_addr}/console");
    if let Some(addr) = metrics_addr {
        println!("  metrics:  http://{addr}/metrics");
    }
    match grpc_addr {
        Some(addr) if tls => println!("  grpc:     {addr} (TLS)"),
        Some(addr) => println!("  grpc:     {addr}"),
        None => println!("  grpc:     off (neither the api nor the gateway role is run here)"),
    }
    let _ = std::io::stdout().flush();
}

fn print_admin(admin: &FirstAdmin) {
    println!("  admin:    {}", admin.email);
    match &admin.password {
        FirstAdminPassword::Generated(p) => {
            println!("  password: {p}  (generated now and shown only once)")
        }
        FirstAdminPassword::FromEnvironment => println!("  password: as set by TERN_ADMIN_PASSWORD"),
        FirstAdminPassword::AlreadyCreated => println!("  password: already created"),
    }
    let _ = std::io::stdout().flush();
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
