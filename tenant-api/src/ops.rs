//! Operational endpoints: liveness, readiness, Prometheus metrics, request ids.
//!
//! `/healthz` answers 200 for as long as the process can answer at all (a load balancer or
//! kubelet restarts us when it stops). `/readyz` answers 200 only while every dependency is
//! usable, so traffic is held back while the database is away. `/metrics` is the Prometheus
//! text of everything recorded through the `metrics` facade. The `observe` middleware gives
//! every request an `X-Request-Id`, a tracing span, and the request counter and latency
//! histogram labelled by route and status; the binary wraps every router it serves in it.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tern_platform::store::Store;
use tracing::Instrument;

/// The header that carries a request's id in and out.
pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// How long `/readyz` waits for the database before calling it unreachable.
const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often recorded histogram samples are folded into their buckets and summaries, so
/// that what is held does not grow between scrapes (the exporter's own default period).
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// Latency buckets, seconds: chat requests are fast, so the resolution is at the low end.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("could not install the metrics recorder: {0}")]
    Metrics(String),
}

/// The id of the request being handled, in the request's extensions for handlers (error
/// bodies carry it as `request_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Installs the process-wide Prometheus recorder on first call; later calls return the same
/// handle, so tests and several routers can share it.
pub fn install_metrics() -> Result<PrometheusHandle, OpsError> {
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut slot = HANDLE.lock().map_err(|e| OpsError::Metrics(e.to_string()))?;
    if let Some(h) = slot.as_ref() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("http_request_duration_seconds".into()), LATENCY_BUCKETS)
        .map_err(|e| OpsError::Metrics(e.to_string()))?
        .install_recorder()
        .map_err(|e| OpsError::Metrics(e.to_string()))?;
    // `install_recorder` leaves upkeep to its caller: until upkeep (or a scrape) drains
    // them, every histogram sample is kept, so a node nobody scrapes grew by ~20 bytes per
    // message for as long as it ran (docs/reliability.md, the soak). The recorder lives as
    // long as the process, and so does this thread.
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(METRICS_UPKEEP_EVERY);
            upkeep.run_upkeep();
        })
        .map_err(|e| OpsError::Metrics(format!("could not start the metrics upkeep thread: {e}")))?;
    *slot = Some(handle.clone());
    Ok(handle)
}

/// One named dependency check and why it fails, if it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub result: Result<(), String>,
}

/// What `/readyz` asks. The binary implements it over its ports; tests can fake it.
#[async_trait]
pub trait ReadinessProbe: Send + Sync + 'static {
    async fn checks(&self) -> Vec<Check>;
}

/// A dependency besides the database that `/readyz` asks (Redis).
#[async_trait]
pub trait Dependency: Send + Sync + 'static {
    /// `Ok` if it answers now, else why not.
    async fn check(&self) -> Result<(), String>;
}

/// Readiness of the node's dependencies, which may not be connected yet: serve starts
/// listening before the store (and Redis, when configured) is reached, then swaps each in
/// here once it is connected. `/readyz` names every one that fails, and stays 503 (check
/// `doors`) until the front doors are mounted: between the store connecting and the API being
/// swapped in, every other path still answers 503 `not_ready`, so a balancer or a
/// Kubernetes readiness probe must not send traffic yet.
#[derive(Clone, Default)]
pub struct NodeReadiness {
    state: Arc<RwLock<DatabaseState>>,
    others: Arc<RwLock<Vec<(&'static str, DependencyState)>>>,
    /// Set once the front doors (REST, gRPC, WebSocket, console) answer.
    serving: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Clone, Default)]
enum DatabaseState {
    #[default]
    Starting,
    Connecting(String),
    Connected(Arc<dyn Store>),
}

#[derive(Clone)]
enum DependencyState {
    Connecting(String),
    Connected(Arc<dyn Dependency>),
}

impl NodeReadiness {
    /// Records why the latest connection attempt failed.
    pub fn set_connecting(&self, reason: impl Into<String>) {
        if let Ok(mut s) = self.state.write() {
            *s = DatabaseState::Connecting(reason.into());
        }
    }
    /// The store is connected and migrated; from now on `/readyz` asks it.
    pub fn set_connected(&self, store: Arc<dyn Store>) {
        if let Ok(mut s) = self.state.write() {
            *s = DatabaseState::Connected(store);
        }
    }
    /// The front doors are mounted: from now on every path answers.
    pub fn set_serving(&self) {
        self.serving.store(true, std::sync::atomic::Ordering::Release);
    }
    /// Records why the latest attempt to reach dependency `name` failed.
    pub fn set_dependency_connecting(&self, name: &'static str, reason: impl Into<String>) {
        self.set_dependency(name, DependencyState::Connecting(reason.into()));
    }
    /// Dependency `name` is connected; from now on `/readyz` asks it.
    pub fn set_dependency_connected(&self, name: &'static str, dependency: Arc<dyn Dependency>) {
        self.set_dependency(name, DependencyState::Connected(dependency));
    }
    fn set_dependency(&self, name: &'static str, state: DependencyState) {
        let mut others = self.others.write().unwrap_or_else(|e| e.into_inner());
        match others.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = state,
            None => others.push((name, state)),
        }
    }
    fn snapshot(&self) -> (DatabaseState, Vec<(&'static str, DependencyState)>) {
        let db = self
            .state
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        let others = self
            .others
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        (db, others)
    }
}

#[async_trait]
impl ReadinessProbe for NodeReadiness {
    async fn checks(&self) -> Vec<Check> {
        let (db, others) = self.snapshot();
        let result = match db {
            DatabaseState::Starting => Err("not connected yet".to_owned()),
            DatabaseState::Connecting(reason) => Err(format!("not connected yet: {reason}")),
            DatabaseState::Connected(store) => match tokio::time::timeout(READY_CHECK_TIMEOUT, store.ready()).await {
                Ok(Ok(true)) => Ok(()),
                Ok(Ok(false)) => Err("migrations are not applied".to_owned()),
                Ok(Err(e)) => Err(format!("unreachable: {e}")),
                Err(_) => Err(format!("no answer within {} s", READY_CHECK_TIMEOUT.as_secs())),
            },
        };
        let mut checks = vec![Check {
            name: "database",
            result,
        }];
        for (name, state) in others {
            let result = match state {
                DependencyState::Connecting(reason) => Err(format!("not connected yet: {reason}")),
                DependencyState::Connected(d) => match tokio::time::timeout(READY_CHECK_TIMEOUT, d.check()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(format!("unreachable: {e}")),
                    Err(_) => Err(format!("no answer within {} s", READY_CHECK_TIMEOUT.as_secs())),
                },
            };
            checks.push(Check { name, result });
        }
        let serving = self.serving.load(std::sync::atomic::Ordering::Acquire);
        checks.push(Check {
            name: "doors",
            result: if serving {
                Ok(())
            } else {
                Err("starting: the API is not mounted yet".to_owned())
            },
        });
        checks
    }
}

/// What the operational routes need.
#[derive(Clone)]
pub struct OpsState {
    pub readiness: Arc<dyn ReadinessProbe>,
    pub metrics: PrometheusHandle,
}

/// `/healthz`, `/readyz` and `/metrics`, wrapped in `observe`.
pub fn ops_router(state: OpsState) -> Router {
    health_router(state.clone()).merge(metrics_router(state))
}

/// `/healthz` and `/readyz`, wrapped in `observe`: for the public port when `/metrics` is
/// served on a listener of its own.
pub fn health_router(state: OpsState) -> Router {
    with_observability(
        Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(state),
    )
}

/// `/metrics` alone, wrapped in `observe`.
pub fn metrics_router(state: OpsState) -> Router {
    with_observability(Router::new().route("/metrics", get(metrics)).with_state(state))
}

/// A router that answers every path with 503 `not_ready`: mounted in place of the API while
/// the database is not reachable yet.
pub fn starting_router() -> Router {
    with_observability(Router::new().fallback(not_ready))
}

/// Wraps every route of `router` (present when this is called) in `observe`.
pub fn with_observability<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(axum::middleware::from_fn(observe))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<OpsState>) -> Response {
    let checks = state.readiness.checks().await;
    let ready = checks.iter().all(|c| c.result.is_ok());
    let detail: serde_json::Map<String, serde_json::Value> = checks
        .into_iter()
        .map(|c| {
            let v = match c.result {
                Ok(()) => json!("ok"),
                Err(reason) => json!(reason),
            };
            (c.name.to_owned(), v)
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"status": if ready { "ready" } else { "not_ready" }, "checks": detail});
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<OpsState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_ready(request: Request) -> Response {
    json_error(
        &request,
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "the service is starting: the database is not reachable yet",
    )
}

/// An error in the one JSON shape, for answers given outside the API's own error type
/// (before the API is mounted, or for paths no front door claims).
pub fn json_error(request: &Request, status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let body = json!({"error": {"code": code, "message": message, "request_id": request_id}});
    (status, Json(body)).into_response()
}

/// An incoming id is kept if it is 1–128 characters of `[A-Za-z0-9._:-]`; anything else
/// could be a log-injection attempt and is replaced.
fn valid_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'));
    ok.then(|| s.to_owned())
}

/// The `method` label of a request when it is one of the standard methods; `None` for an
/// invented one, which is refused and counted as `other`, so the label set cannot grow.
fn standard_method(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => return None,
    })
}

/// Request id, tracing span, and metrics for one request. A method Tern does not know is
/// refused here, before routing, with 405 `method_not_allowed`.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(valid_request_id)
        .unwrap_or_else(|| ulid::Ulid::new().to_string());
    let header_value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    // Forward the id so a router mounted behind this one (the API swapped in at start) keeps it.
    request
        .headers_mut()
        .insert(REQUEST_ID_HEADER.clone(), header_value.clone());
    request.extensions_mut().insert(RequestId(id.clone()));
    let standard = standard_method(request.method());
    let method = standard.unwrap_or("other");
    // The route template, not the raw path, so ids in paths do not explode the label set.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "http_request",
        http.method = %method,
        http.route = %route,
        request_id = %id,
        http.status = tracing::field::Empty,
    );
    let mut response = if standard.is_none() {
        json_error(
            &request,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "unknown HTTP method",
        )
    } else {
        next.run(request).instrument(span.clone()).await
    };
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    span.record("http.status", status);
    let quiet = matches!(route.as_str(), "/healthz" | "/readyz" | "/metrics");
    span.in_scope(|| {
        if quiet {
            tracing::debug!(status, latency_ms = elapsed.as_millis() as u64, "request served");
        } else {
            tracing::info!(status, latency_ms = elapsed.as_millis() as u64, "request served");
        }
    });
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    response.headers_mut().insert(REQUEST_ID_HEADER.clone(), header_value);
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    struct Fixed(Vec<Check>);

    #[async_trait]
    impl ReadinessProbe for Fixed {
        async fn checks(&self) -> Vec<Check> {
            self.0.clone()
        }
    }

    fn router(checks: Vec<Check>) -> Router {
        ops_router(OpsState {
            readiness: Arc::new(Fixed(checks)),
            metrics: install_metrics().unwrap(),
        })
    }

    async fn call(router: &Router, path: &str, request_id: Option<&str>) -> (StatusCode, Option<String>, String) {
        let mut req = axum::http::Request::get(path);
        if let Some(id) = request_id {
            req = req.header("x-request-id", id);
        }
        let res = router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        let id = res
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        (status, id, body)
    }

    #[tokio::test]
    async fn healthz_is_ok_and_readyz_names_the_failing_check() {
        let r = router(vec![Check {
            name: "database",
            result: Err("not connected yet: connection refused".into()),
        }]);
        let (status, _, _) = call(&r, "/healthz", None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, body) = call(&r, "/readyz", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "not_ready");
        assert!(v["checks"]["database"].as_str().unwrap().contains("connection refused"));

        let r = router(vec![Check {
            name: "database",
            result: Ok(()),
        }]);
        let (status, _, body) = call(&r, "/readyz", None).await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["checks"]["database"], "ok");
    }

    #[tokio::test]
    async fn database_readiness_reports_connecting_until_a_store_is_set() {
        let db = NodeReadiness::default();
        assert!(db.checks().await[0].result.is_err());
        db.set_connecting("connection refused");
        let c = db.checks().await;
        assert_eq!(c[0].name, "database");
        assert!(c[0].result.as_ref().unwrap_err().contains("connection refused"));
    }

    #[tokio::test]
    async fn readiness_waits_for_the_doors_after_the_database() {
        let node = NodeReadiness::default();
        let (store, _dir) = tern_platform::store::testing::sqlite_temp().await;
        node.set_connected(store);
        let doors = |c: &[Check]| c.iter().find(|c| c.name == "doors").unwrap().result.clone();
        let c = node.checks().await;
        assert!(c[0].result.is_ok(), "the database is connected");
        assert!(doors(&c).unwrap_err().contains("not mounted"));
        node.set_serving();
        assert!(node.checks().await.iter().all(|c| c.result.is_ok()));
    }

    #[tokio::test]
    async fn request_ids_are_kept_when_valid_and_generated_otherwise() {
        let r = router(vec![]);
        let (_, id, _) = call(&r, "/healthz", Some("abc-123.x")).await;
        assert_eq!(id.as_deref(), Some("abc-123.x"));
        let (_, id, _) = call(&r, "/healthz", Some("bad id with spaces")).await;
        let id = id.unwrap();
        assert_ne!(id, "bad id with spaces");
        assert_eq!(id.len(), 26, "a ULID: {id}");
        let (_, id2, _) = call(&r, "/healthz", None).await;
        assert_ne!(id2.unwrap(), id);
    }

    #[tokio::test]
    async fn metrics_count_requests_by_route_and_status() {
        let r = router(vec![]);
        call(&r, "/healthz", None).await;
        call(&r, "/no-such-path", None).await;
        let (status, _, body) = call(&r, "/metrics", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.lines().any(|l| l.starts_with("http_requests_total")
                && l.contains("route=\"/healthz\"")
                && l.contains("status=\"200\"")),
            "{body}"
        );
        assert!(body.contains("http_request_duration_seconds_bucket"), "{body}");
    }

    #[tokio::test]
    async fn invented_methods_are_refused_and_do_not_grow_the_metrics() {
        let r = router(vec![]);
        let invented = |i: usize| {
            let name = format!("XJ3K{i}{}", "Q".repeat(i % 200));
            axum::http::Request::builder()
                .method(Method::from_bytes(name.as_bytes()).unwrap())
                .uri("/v1/users/alice")
                .body(Body::empty())
                .unwrap()
        };
        let res = r.clone().oneshot(invented(0)).await.unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        let body: serde_json::Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
        let (_, _, before) = call(&r, "/metrics", None).await;
        for i in 1..500 {
            let res = r.clone().oneshot(invented(i)).await.unwrap();
            assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        }
        let (_, _, after) = call(&r, "/metrics", None).await;
        // Counter values change, the set of series does not: compare without the numbers.
        let series = |text: &str| -> std::collections::BTreeSet<String> {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.rsplit_once(' ').map(|(name, _)| name.to_owned()))
                .filter(|name| name.contains("method=\"other\""))
                .collect()
        };
        assert_eq!(series(&before), series(&after));
        assert!(!after.contains("XJ3K"), "an invented method reached the labels");
        assert!(after.contains("method=\"other\""), "{after}");
    }

    #[tokio::test]
    async fn the_starting_router_answers_503_with_the_error_shape() {
        let r = starting_router();
        let (status, id, body) = call(&r, "/v1/users", Some("req-1")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(id.as_deref(), Some("req-1"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "not_ready");
        assert_eq!(v["error"]["request_id"], "req-1");
    }
}
