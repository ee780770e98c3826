//! Serving one listener's connections with bounds, for the HTTP port and the gRPC port alike.
//!
//! `axum::serve` and tonic's server keep a connection open for as long as its peer likes
//! and retry `accept` in a tight loop when the process is out of file handles. Here every
//! connection holds a permit of a fixed pool (over the cap, a new connection is closed at
//! once), must send its first request within the header timeout, and is closed once it
//! has had no request in flight for the idle timeout; HTTP/2 connections are pinged and
//! closed when the pings go unanswered. Failed `accept`s back off instead of spinning.
//! Shutdown is the caller's `CancellationToken`; every connection task is tracked, so
//! `serve` returns only once the last open request has finished.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::{Service, ServiceExt as _};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// First and longest pause after a failed `accept` (out of file handles, out of memory).
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The bounds of one port's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at most; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// A new connection must send its first request's headers within this (and every
    /// HTTP/1 request its headers).
    pub header_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// HTTP/2 connections are pinged this often; one that does not answer within
    /// `keepalive_timeout` is closed.
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    /// Speak only HTTP/2 (the gRPC port).
    pub http2_only: bool,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            http2_only: false,
        }
    }
}

/// When a connection last finished a request (or was opened), and how many it is serving.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
    served_any: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
            served_any: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.served_any.store(true, Ordering::SeqCst);
        InFlight(self.clone())
    }

    fn last(&self) -> Instant {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One request being served; dropped with its response body, so a long response (a gRPC
/// stream, a download) keeps its connection from counting as idle.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Resolves once the connection has had nothing in flight for its timeout: the header
/// timeout before its first request, the idle timeout after.
async fn idle(activity: Arc<Activity>, limits: ConnectionLimits) {
    loop {
        let timeout = if activity.served_any.load(Ordering::SeqCst) {
            limits.idle_timeout
        } else {
            limits.header_timeout
        };
        let deadline = activity.last() + timeout;
        if activity.in_flight.load(Ordering::SeqCst) == 0 && Instant::now() >= deadline {
            return;
        }
        let wake = if activity.in_flight.load(Ordering::SeqCst) == 0 {
            deadline
        } else {
            Instant::now() + timeout
        };
        tokio::time::sleep_until(wake).await;
    }
}

/// Serves `service` on `listener` within `limits` until `shutdown` is cancelled, then lets
/// open requests finish (the caller bounds how long it waits).
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()>
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    serve_tls(listener, service, limits, None, shutdown).await
}

/// `serve`, with TLS when `tls` is given: each connection's handshake must finish within
/// the header timeout (it holds a permit meanwhile); a failed handshake (garbage, a
/// client that does not trust the certificate, TLS 1.0) closes that connection only.
pub async fn serve_tls<S, B>(
    listener: TcpListener,
    service: S,
    limits: ConnectionLimits,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> std::io::Result<()>
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout);
    if limits.http2_only {
        builder = builder.http2_only();
    }
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut backoff = ACCEPT_BACKOFF_FIRST;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF_FIRST;
                (stream, peer)
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file handles or memory: retrying at once would spin. Wait, so
                // open connections can finish (or time out) and free what we lack.
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => break,
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("connections_refused_total").increment(1);
            tracing::debug!(
                max = limits.max_connections,
                "connection refused: at the connection cap"
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let counted = Counted {
            inner: service.clone(),
            activity: activity.clone(),
            peer,
        };
        let builder = builder.clone();
        let stop = shutdown.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(&builder, stream, counted, activity, limits, stop).await,
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        r = tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)) => r,
                        () = stop.cancelled() => return,
                    };
                    match handshake {
                        Ok(Ok(stream)) => serve_connection(&builder, stream, counted, activity, limits, stop).await,
                        Ok(Err(e)) => {
                            metrics::counter!("tls_handshake_failures_total").increment(1);
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            metrics::counter!("tls_handshake_failures_total").increment(1);
                            tracing::debug!(%peer, "TLS handshake timed out");
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Serves one accepted connection (plain or TLS) until it ends, idles out or shutdown.
async fn serve_connection<I, S, B>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    counted: Counted<S>,
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    stop: CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(counted));
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = idle(activity, limits) => return,
        () = stop.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

/// Errors of one connection that went away before it was accepted, not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Wraps a service so each request and its response body count as in flight.
#[derive(Clone)]
struct Counted<S> {
    inner: S,
    activity: Arc<Activity>,
    /// The client's address, handed to handlers as axum's `ConnectInfo` (the console's
    /// sign-in rate limit and audit log read it).
    peer: std::net::SocketAddr,
}

impl<S, B> Service<http::Request<Incoming>> for Counted<S>
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<UnsyncBoxBody<Bytes, BoxError>>;
    type Error = Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(axum::extract::ConnectInfo(self.peer));
        let in_flight = self.activity.begin();
        let inner = self.inner.clone();
        Box::pin(async move {
            let response = inner.oneshot(request).await?;
            Ok(response.map(move |body| {
                body.map_err(Into::into)
                    .map_frame(move |frame| {
                        let _ = &in_flight;
                        frame
                    })
                    .boxed_unsync()
            }))
        })
    }
}
