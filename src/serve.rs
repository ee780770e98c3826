//! `tern serve`: binds the HTTP listener at once (so `/healthz` answers from the first
//! second), then reaches the database with backoff, migrates, checks the master key, makes
//! the first admin, and only then swaps the front doors in behind the operational routes.
//! SIGTERM or Ctrl-C stops accepting, drains open requests, flushes traces and exits 0.

use std::collections::HashSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;
use tern_platform::admins::{ensure_first_admin, FirstAdmin, FirstAdminPassword};
use tern_platform::bootstrap::MasterKey;
use tern_platform::store::Store;
use tern_tenant_api::ops::{self, DatabaseReadiness, OpsState, RequestId};
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::cli::{Role, ServeArgs};
use crate::commands::{master_key, open_store, CommandError};
use crate::config::Config;
use crate::telemetry::Telemetry;

/// First and largest wait between attempts to reach the database.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(15);
/// How long open requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The router the fallback forwards to: the "starting" 503 router until the database is
/// ready, the front doors after.
type Slot = Arc<RwLock<Router>>;

/// Everything the front doors are built from once the database is ready.
pub struct Started {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub master_key: MasterKey,
    pub roles: HashSet<Role>,
}

pub async fn run(config: Config, args: ServeArgs, telemetry: Telemetry) -> Result<(), CommandError> {
    let roles: HashSet<Role> = args.roles.iter().copied().collect();
    let metrics = ops::install_metrics().map_err(|e| CommandError::Serve(e.to_string()))?;
    let readiness = DatabaseReadiness::default();
    let slot: Slot = Arc::new(RwLock::new(ops::starting_router()));

    let forward_to = slot.clone();
    let router = ops::ops_router(OpsState {
        readiness: Arc::new(readiness.clone()),
        metrics,
    })
    .fallback(move |request: Request| forward(forward_to.clone(), request));

    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|e| CommandError::Serve(format!("cannot listen on {}: {e}", config.http_addr)))?;
    let http_addr = listener.local_addr().map_err(|e| CommandError::Serve(e.to_string()))?;
    print_listening(http_addr, &config);
    tracing::info!(%http_addr, node_id = %config.node_id, roles = ?args.roles, "listening");

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received: draining");
        let _ = shutdown_tx.send(true);
    });

    let mut server_shutdown = shutdown_rx.clone();
    let mut server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });

    let startup = start(config, roles, args.no_migrate, readiness, slot, shutdown_rx.clone());
    let outcome = tokio::select! {
        r = startup => r,
        r = &mut server => {
            // The server ended before startup finished: a signal during startup, or an error.
            finish(r, telemetry).await?;
            return Ok(());
        }
    };
    if let Err(e) = outcome {
        server.abort();
        telemetry.shutdown().await;
        return Err(e);
    }

    let mut stop = shutdown_rx;
    let _ = stop.wait_for(|s| *s).await;
    match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
        Ok(r) => finish(r, telemetry).await,
        Err(_) => {
            tracing::warn!("open connections did not finish within {DRAIN_TIMEOUT:?}: closing them");
            server.abort();
            telemetry.shutdown().await;
            Ok(())
        }
    }
}

async fn finish(
    r: Result<std::io::Result<()>, tokio::task::JoinError>,
    telemetry: Telemetry,
) -> Result<(), CommandError> {
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
/// the master key and the first admin, then mounts the front doors. `Ok` also when a
/// shutdown interrupted it.
async fn start(
    config: Config,
    roles: HashSet<Role>,
    no_migrate: bool,
    readiness: DatabaseReadiness,
    slot: Slot,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), CommandError> {
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
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
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
    let started = Started {
        config,
        store,
        master_key,
        roles,
    };
    let doors = front_doors(&started);
    if let Ok(mut s) = slot.write() {
        *s = doors;
    }
    tracing::info!("ready");
    println!("tern: ready");
    let _ = std::io::stdout().flush();
    Ok(())
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
/// The lead wires them here as their crates expose routers:
/// - `Role::Api`: `tern_tenant_api::router(state)` (REST `/v1`, operator API `/admin/v1`,
///   console `/console`) and the gRPC server on `config.grpc_addr`;
/// - `Role::Gateway`: `tern_push_gateway::router(...)` (WebSocket `/v1/connect`);
/// - `Role::Worker`: the webhook outbox and push workers, spawned as tasks.
///
/// Until then only the operational routes answer and everything else is a JSON 404.
fn front_doors(started: &Started) -> Router {
    tracing::debug!(
        roles = ?started.roles,
        backend = ?started.store.backend(),
        key = %started.master_key.source,
        node_id = %started.config.node_id,
        "mounting front doors"
    );
    ops::with_observability(Router::new().fallback(not_found))
}

async fn not_found(request: Request) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let body = json!({"error": {
        "code": "not_found",
        "message": format!("no route for {} {}", request.method(), request.uri().path()),
        "request_id": request_id,
    }});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
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

fn print_listening(http_addr: SocketAddr, config: &Config) {
    println!("tern: listening");
    println!("  http:     http://{http_addr}");
    println!("  console:  http://{http_addr}/console");
    println!(
        "  grpc:     {} (gRPC server not mounted in this build yet)",
        config.grpc_addr
    );
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
