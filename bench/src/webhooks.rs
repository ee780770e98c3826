//! Webhook scenarios. `webhook-events`: messages sent through the REST API while the
//! server's worker delivers their `message.sent` after-events to a receiver here; reports
//! the delivery rate (events/s) and how long the outbox took to drain. `before-send`: send
//! latency with a before-send hook that answers `allow` after 1 ms, against the same
//! server without the hook.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tern_sdk::server::ServerClient;

/// A local webhook endpoint: counts distinct webhook ids and answers `allow` (after a
/// delay) to before-send calls.
pub struct Receiver {
    pub addr: SocketAddr,
    delay: Duration,
    ids: Mutex<HashSet<String>>,
    first_at: Mutex<Option<Instant>>,
    last_at: Mutex<Option<Instant>>,
}

impl Receiver {
    pub async fn start(delay: Duration) -> Result<Arc<Self>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let r = Arc::new(Self {
            addr: listener.local_addr()?,
            delay,
            ids: Mutex::new(HashSet::new()),
            first_at: Mutex::new(None),
            last_at: Mutex::new(None),
        });
        let app = Router::new().route("/hook", post(handle)).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(r)
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn delivered(&self) -> usize {
        lock(&self.ids).len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn handle(State(r): State<Arc<Receiver>>, headers: HeaderMap) -> axum::Json<Value> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if header("x-tern-event") == "message.before_send" {
        tokio::time::sleep(r.delay).await;
        return axum::Json(json!({"action": "allow"}));
    }
    let now = Instant::now();
    lock(&r.first_at).get_or_insert(now);
    *lock(&r.last_at) = Some(now);
    lock(&r.ids).insert(header("x-tern-webhook-id"));
    axum::Json(json!({}))
}

pub struct EventsReport {
    pub sent: u64,
    pub delivered: usize,
    /// Delivered events per second, from the first delivery to the last.
    pub events_per_s: f64,
    /// From the end of sending until the last event arrived.
    pub drain: Duration,
}

/// Sends for `o.duration` with the app's after-events going to a local receiver, then waits
/// (up to `drain_limit`) until every sent message's event has arrived.
pub async fn events(client: ServerClient, o: crate::api_send::Options, drain_limit: Duration) -> Result<EventsReport> {
    let receiver = Receiver::start(Duration::ZERO).await?;
    client
        .set_webhook(&json!({"url": receiver.url(), "events": ["message.sent"]}))
        .await?;
    let r = crate::api_send::run(client, o).await?;
    let sent_end = Instant::now();
    let deadline = sent_end + drain_limit;
    while (receiver.delivered() as u64) < r.sent {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} events arrived within {drain_limit:?} after sending",
                receiver.delivered(),
                r.sent
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = *lock(&receiver.first_at);
    let last = *lock(&receiver.last_at);
    let span = match (first, last) {
        (Some(f), Some(l)) => l.duration_since(f).as_secs_f64().max(1e-3),
        _ => 1e-3,
    };
    Ok(EventsReport {
        sent: r.sent,
        delivered: receiver.delivered(),
        events_per_s: receiver.delivered() as f64 / span,
        drain: last.map_or(Duration::ZERO, |l| l.saturating_duration_since(sent_end)),
    })
}

/// Runs the paced send load twice on one server: without a before-send hook, then with one
/// answering after `delay`. Returns both reports.
pub async fn before_send(
    client: ServerClient,
    o: impl Fn(&str) -> crate::api_send::Options,
    delay: Duration,
) -> Result<(crate::api_send::Report, crate::api_send::Report)> {
    let without = crate::api_send::run(client.clone(), o("plain-")).await?;
    let receiver = Receiver::start(delay).await?;
    // Subscribed to an event the load never produces, so only the hook is measured.
    client
        .set_webhook(&json!({
            "url": receiver.url(),
            "events": ["friend.removed"],
            "before_send": {"enabled": true, "timeout_ms": 1500, "policy": "fail_open"},
        }))
        .await?;
    let with = crate::api_send::run(client, o("hooked-")).await?;
    Ok((without, with))
}
