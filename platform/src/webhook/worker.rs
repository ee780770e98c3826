//! The after-event worker (the `worker` role; in-process under `tern serve`). After-events
//! are written to the outbox in the same transaction as the change that caused them; this
//! worker delivers them at least once: it claims due events (a lease in the outbox, so
//! several worker processes on one database share the work and each event goes to one of
//! them at a time), POSTs each with the app's
//! current URL and webhook secrets, and on failure reschedules with exponential backoff and
//! jitter until 24 h after the event was created, when the event is declared dead (listed in
//! the console, redeliverable by hand). Every attempt leaves a line in the delivery log
//! (status, latency, the start of the answer), kept `log_retention`. Nothing is kept in memory that the outbox does not
//! also hold, so a restart loses nothing; an event in flight during a crash is sent again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::client::{WebhookClient, WebhookRequest};
use super::secrets::WebhookSecrets;
use crate::auth::webhook::signature_header;
use crate::clock::Clock;
use crate::domain::UnixMillis;
use crate::ids::AppId;
use crate::store::{AttemptOutcome, OutboxEvent, Store, WebhookAttempt};

/// How often old lines of the delivery log are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The error recorded on an event whose app no longer has a webhook URL (or no longer exists).
pub const NO_URL_ERROR: &str = "the app has no webhook URL any more";

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How often the outbox is polled when nobody pokes the worker.
    pub poll_interval: Duration,
    /// Most events taken from the outbox per poll.
    pub batch: u32,
    /// Most deliveries in flight to one app's endpoint at once.
    pub per_app_concurrency: usize,
    /// Time allowed for one attempt, connect to last byte.
    pub attempt_timeout: Duration,
    /// Delay before the first retry; each later retry waits twice as long.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// After this long since the event was created, a failure makes it dead.
    pub max_age: Duration,
    /// How long a claimed event is reserved for this worker. Longer than an attempt (and
    /// the writing of its outcome); a worker that dies holding events leaves them to be
    /// claimed again after this.
    pub lease: Duration,
    /// How long the delivery log keeps a line; older ones are deleted about once an hour.
    pub log_retention: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            batch: 100,
            per_app_concurrency: 8,
            attempt_timeout: Duration::from_secs(5),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(3600),
            max_age: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(15),
            log_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Everything a delivery needs, shared by the worker's tasks.
struct Shared {
    store: Arc<dyn Store>,
    secrets: Arc<dyn WebhookSecrets>,
    client: Arc<WebhookClient>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    /// Events being delivered now: the next poll sees them still pending and must skip them.
    in_flight: Mutex<HashSet<String>>,
    per_app: Mutex<HashMap<AppId, Arc<Semaphore>>>,
}

/// Starts the worker. It runs until `shutdown` is cancelled, then waits for the deliveries
/// in flight (each bounded by `attempt_timeout`) and returns. `wake` lets the pipeline
/// signal that new events were committed, so they go out without waiting for the next poll.
pub fn spawn(
    store: Arc<dyn Store>,
    secrets: Arc<dyn WebhookSecrets>,
    client: Arc<WebhookClient>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(task(store, secrets, client, clock, config, wake, shutdown))
}

/// The worker as a future, for a caller that spawns it on a `TaskTracker` of its own (the
/// engine); `spawn` is this on a plain Tokio task.
pub fn task(
    store: Arc<dyn Store>,
    secrets: Arc<dyn WebhookSecrets>,
    client: Arc<WebhookClient>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let shared = Arc::new(Shared {
        store,
        secrets,
        client,
        clock,
        config,
        in_flight: Mutex::new(HashSet::new()),
        per_app: Mutex::new(HashMap::new()),
    });
    run(shared, wake, shutdown)
}

async fn run(shared: Arc<Shared>, wake: Arc<Notify>, shutdown: CancellationToken) {
    let mut tasks = JoinSet::new();
    let mut next_prune = tokio::time::Instant::now();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        if tokio::time::Instant::now() >= next_prune {
            next_prune += PRUNE_EVERY;
            let before = shared
                .clock
                .now_ms()
                .saturating_sub(millis(shared.config.log_retention));
            if let Err(e) = shared.store.prune_webhook_attempts(before).await {
                tracing::debug!(error = %e, "could not prune the webhook delivery log");
            }
        }
        poll_once(&shared, &mut tasks).await;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(shared.config.poll_interval) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

async fn poll_once(shared: &Arc<Shared>, tasks: &mut JoinSet<()>) {
    let now = shared.clock.now_ms();
    let lease = millis(shared.config.lease.max(shared.config.attempt_timeout));
    let due = match shared.store.claim_due_events(now, shared.config.batch, lease).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "webhook worker could not read the outbox");
            return;
        }
    };
    let mut give_back = Vec::new();
    for event in due {
        // Still being delivered here (its lease ran out first): the delivery in flight
        // records the outcome, and the new lease keeps the others away meanwhile.
        if !lock(&shared.in_flight).insert(event.id.clone()) {
            continue;
        }
        let semaphore = lock(&shared.per_app)
            .entry(event.app_id.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(shared.config.per_app_concurrency.max(1))))
            .clone();
        // An app already at its limit gives its events back to the outbox for a later poll
        // (by any worker), so one slow endpoint cannot fill the worker.
        let Ok(permit) = semaphore.try_acquire_owned() else {
            lock(&shared.in_flight).remove(&event.id);
            give_back.push(event.id);
            continue;
        };
        let shared = shared.clone();
        tasks.spawn(async move {
            let id = event.id.clone();
            deliver(&shared, event).await;
            lock(&shared.in_flight).remove(&id);
            drop(permit);
        });
    }
    if let Err(e) = shared.store.release_events(&give_back, now).await {
        tracing::debug!(error = %e, "could not give claimed events back; they wait for their lease");
    }
    // Forget idle apps so the map holds only endpoints with deliveries in flight. Permits
    // are taken only here, so an entry with all of them free is not in use.
    let limit = shared.config.per_app_concurrency.max(1);
    lock(&shared.per_app).retain(|_, s| s.available_permits() < limit);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One attempt, the outbox updated with its outcome, and a line in the delivery log.
async fn deliver(shared: &Shared, event: OutboxEvent) {
    let attempt = event.attempts.saturating_add(1);
    let started = std::time::Instant::now();
    let at = shared.clock.now_ms();
    let tried = attempt_once(shared, &event, attempt).await;
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let store = &shared.store;
    let now = shared.clock.now_ms();
    let (logged, result) = match tried.outcome {
        Outcome::Delivered => {
            metrics::counter!("tern_webhook_deliveries_total", "outcome" => "delivered").increment(1);
            (
                AttemptOutcome::Delivered,
                store.mark_event_delivered(&event.id, attempt).await,
            )
        }
        Outcome::Dead(ref error) => {
            metrics::counter!("tern_webhook_deliveries_total", "outcome" => "dead").increment(1);
            tracing::warn!(event = %event.id, app = %event.app_id, %error, "webhook event is dead");
            (
                AttemptOutcome::Dead,
                store.mark_event_dead(&event.id, attempt, error).await,
            )
        }
        Outcome::Failed(ref error) => {
            let deadline = event.created_at.saturating_add(millis(shared.config.max_age));
            if now >= deadline {
                metrics::counter!("tern_webhook_deliveries_total", "outcome" => "dead").increment(1);
                tracing::warn!(event = %event.id, app = %event.app_id, %error, attempt, "webhook event is dead after retrying");
                (
                    AttemptOutcome::Dead,
                    store.mark_event_dead(&event.id, attempt, error).await,
                )
            } else {
                metrics::counter!("tern_webhook_deliveries_total", "outcome" => "retry").increment(1);
                // The last retry happens at the deadline, not after it.
                let next = now
                    .saturating_add(millis(backoff(&shared.config, attempt)))
                    .min(deadline);
                (
                    AttemptOutcome::Retrying,
                    store.reschedule_event(&event.id, attempt, next, error).await,
                )
            }
        }
    };
    if let Err(e) = result {
        // The event stays pending as it was and is tried again: at least once, not at most.
        tracing::warn!(event = %event.id, error = %e, "webhook worker could not record a delivery outcome");
        return;
    }
    let line = WebhookAttempt {
        id: WebhookAttempt::new_id(),
        app_id: event.app_id.clone(),
        at,
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        attempt,
        outcome: logged,
        http_status: tried.http_status,
        error: match tried.outcome {
            Outcome::Delivered => None,
            Outcome::Failed(e) | Outcome::Dead(e) => Some(e),
        },
        latency_ms,
        response_excerpt: tried.excerpt,
    };
    if let Err(e) = store.record_webhook_attempt(&line).await {
        tracing::debug!(event = %event.id, error = %e, "could not write the webhook delivery log");
    }
}

enum Outcome {
    Delivered,
    Failed(String),
    Dead(String),
}

/// An attempt's outcome and what the endpoint answered, for the delivery log.
struct Tried {
    outcome: Outcome,
    /// 0 when the endpoint was not reached.
    http_status: u16,
    excerpt: String,
}

impl From<Outcome> for Tried {
    fn from(outcome: Outcome) -> Self {
        Self {
            outcome,
            http_status: 0,
            excerpt: String::new(),
        }
    }
}

async fn attempt_once(shared: &Shared, event: &OutboxEvent, attempt: i32) -> Tried {
    let app = match shared.store.app(&event.app_id).await {
        Ok(Some(app)) => app,
        Ok(None) => return Outcome::Dead(NO_URL_ERROR.into()).into(),
        Err(e) => return Outcome::Failed(format!("store: {e}")).into(),
    };
    let Some(url) = app.settings.webhook.url.as_deref() else {
        return Outcome::Dead(NO_URL_ERROR.into()).into();
    };
    let secrets = match shared.secrets.secrets(&app.id).await {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(e.to_string()).into(),
    };
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let t = shared.clock.now_ms().div_euclid(1000);
    let signature = signature_header(&secret_refs, t, event.body.as_bytes());
    let request = WebhookRequest {
        url,
        webhook_id: &event.id,
        event_type: &event.event_type,
        attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
        signature: &signature,
        body: &event.body,
        timeout: shared.config.attempt_timeout,
    };
    match shared.client.post(&request).await {
        Ok(r) => Tried {
            outcome: if r.is_success() {
                Outcome::Delivered
            } else {
                Outcome::Failed(format!("HTTP {}", r.status))
            },
            http_status: r.status,
            excerpt: WebhookAttempt::excerpt(&r.body),
        },
        Err(e) => Outcome::Failed(e.to_string()).into(),
    }
}

/// The wait before the retry that follows failed attempt `attempt` (1 for the first):
/// `base * 2^(attempt-1)` capped, then jittered down by up to half so that events that
/// failed together do not come back together.
pub fn backoff(config: &WorkerConfig, attempt: i32) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = config.backoff_base.saturating_mul(1u32 << exp).min(config.backoff_cap);
    let half = full / 2;
    let jitter_ms = rand::thread_rng().gen_range(0..=millis(half).max(0));
    half + Duration::from_millis(u64::try_from(jitter_ms).unwrap_or(0))
}

fn millis(d: Duration) -> UnixMillis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps_at_an_hour() {
        let c = WorkerConfig::default();
        for (attempt, full_s) in [(1, 1u64), (2, 2), (3, 4), (4, 8), (12, 2048), (13, 3600), (40, 3600)] {
            for _ in 0..50 {
                let d = backoff(&c, attempt);
                let full = Duration::from_secs(full_s);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
    }
}
