//! Webhooks end to end (SIGNING.md §3): a real HTTP receiver runs in each test, checks every
//! signature with the receiver-side `verify`, and answers from a script. After-events go
//! through the real SQLite outbox and the real worker; the before-send hook is driven the
//! way the pipeline calls it.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tern_platform::auth::webhook::{signature_header, verify, WebhookSignatureError};
use tern_platform::delivery::{BeforeSendHook, HookDecision, HookDraft};
use tern_platform::domain::*;
use tern_platform::ids::*;
use tern_platform::secret_box::SecretBox;
use tern_platform::store::{testing, AttemptFilter, AttemptOutcome, NewApp, OutboxEvent, Store};
use tern_platform::webhook::worker::{self, WorkerConfig, NO_URL_ERROR};
use tern_platform::webhook::{
    self as webhook, validate_webhook_url, Clock, HttpBeforeSendHook, ManualClock, StaticSecrets, StoreSecrets,
    SystemClock, TestSender, WebhookClient, WebhookError, TEST_EVENT_TYPE,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_test_0123456789";

// ---- the receiver ------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Reply {
    Status(u16),
    Json(&'static str),
    /// Answers only after this long, with this status.
    Slow(Duration, u16),
    /// This status with this body.
    Body(u16, &'static str),
}

#[derive(Debug, Clone)]
struct Seen {
    id: String,
    event: String,
    attempt: u32,
    verified: Result<(), WebhookSignatureError>,
    body: Value,
    raw_body: Bytes,
    /// What the receiver answered (before any delay); 2xx means the sender should stop.
    answered: u16,
}

struct Receiver {
    addr: SocketAddr,
    script: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Reply>,
    seen: Mutex<Vec<Seen>>,
    /// Requests being handled now, and the most there ever were at once.
    in_flight: Mutex<(usize, usize)>,
}

impl Receiver {
    async fn start(fallback: Reply) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Arc::new(Self {
            addr: listener.local_addr().unwrap(),
            script: Mutex::new(VecDeque::new()),
            fallback: Mutex::new(fallback),
            seen: Mutex::new(Vec::new()),
            in_flight: Mutex::new((0, 0)),
        });
        let app = Router::new().route("/hook", post(handle)).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn then(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    fn set_fallback(&self, reply: Reply) {
        *self.fallback.lock().unwrap() = reply;
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn most_at_once(&self) -> usize {
        self.in_flight.lock().unwrap().1
    }

    fn seen_for(&self, id: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.id == id).collect()
    }
}

async fn handle(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let reply = {
        let next = r.script.lock().unwrap().pop_front();
        next.unwrap_or_else(|| r.fallback.lock().unwrap().clone())
    };
    let (delay, status, answer) = match reply {
        Reply::Status(s) => (None, s, String::new()),
        Reply::Json(j) => (None, 200, j.to_owned()),
        Reply::Slow(d, s) => (Some(d), s, String::new()),
        Reply::Body(s, b) => (None, s, b.to_owned()),
    };
    let now = now_ms() / 1000;
    r.seen.lock().unwrap().push(Seen {
        id: header("x-tern-webhook-id"),
        event: header("x-tern-event"),
        attempt: header("x-tern-attempt").parse().unwrap_or(0),
        verified: verify(&header("x-tern-signature"), &body, SECRET, now, 300),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw_body: body,
        answered: status,
    });
    assert_eq!(header("content-type"), "application/json");
    if let Some(d) = delay {
        {
            let mut f = r.in_flight.lock().unwrap();
            f.0 += 1;
            f.1 = f.1.max(f.0);
        }
        tokio::time::sleep(d).await;
        r.in_flight.lock().unwrap().0 -= 1;
    }
    (StatusCode::from_u16(status).unwrap(), answer)
}

// ---- fixtures ----------------------------------------------------------------------------

fn secret_box() -> SecretBox {
    SecretBox::from_key([42; 32])
}

/// A tenant and an app whose webhooks go to `url`, in the store.
async fn app_with_url(store: &dyn Store, url: &str) -> App {
    let tenant = Tenant {
        id: TenantId::generate(),
        name: format!("tenant-{}", rand::random::<u64>()),
        status: TenantStatus::Active,
        created_at: now_ms(),
    };
    store.create_tenant(&tenant).await.unwrap();
    let id = AppId::generate();
    let mut settings = AppSettings::default();
    settings.webhook.url = Some(url.to_owned());
    let app = NewApp {
        first_secret: AppSecretRecord {
            id: SecretId::generate(),
            app_id: id.clone(),
            ciphertext: secret_box().seal(id.as_str(), b"sk_unused"),
            created_at: now_ms(),
            expires_at: None,
        },
        webhook_secret_ciphertext: secret_box().seal(id.as_str(), SECRET.as_bytes()),
        id,
        tenant_id: tenant.id,
        name: "app".into(),
        app_key: AppKey::generate(),
        settings,
    };
    store.create_app(&app).await.unwrap()
}

/// Writes a `message.sent` after-event to the outbox, as the pipeline does; returns its id.
async fn commit_event(store: &dyn Store, app: &App, msg: &str) -> String {
    let event = webhook::after_event(app, "message.sent", json!({"msg_id": msg}), now_ms()).unwrap();
    store.enqueue_events(std::slice::from_ref(&event)).await.unwrap();
    event.id
}

fn fast_config() -> WorkerConfig {
    WorkerConfig {
        poll_interval: Duration::from_millis(50),
        attempt_timeout: Duration::from_secs(3),
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(100),
        ..WorkerConfig::default()
    }
}

struct RunningWorker {
    handle: tokio::task::JoinHandle<()>,
    shutdown: CancellationToken,
    wake: Arc<Notify>,
}

impl RunningWorker {
    fn start(store: Arc<dyn Store>, allow_private: bool, clock: Arc<dyn Clock>, config: WorkerConfig) -> Self {
        let shutdown = CancellationToken::new();
        let wake = Arc::new(Notify::new());
        let handle = worker::spawn(
            store.clone(),
            Arc::new(StoreSecrets::new(store, secret_box())),
            Arc::new(WebhookClient::new(allow_private)),
            clock,
            config,
            wake.clone(),
            shutdown.clone(),
        );
        Self { handle, shutdown, wake }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.handle.await.unwrap();
    }
}

async fn pending(store: &dyn Store) -> Vec<OutboxEvent> {
    store.due_events(i64::MAX, 1000).await.unwrap()
}

/// Delivered = neither pending nor dead any more (the Store has no getter for one event).
async fn is_delivered(store: &dyn Store, app: &App, id: &str) -> bool {
    !pending(store).await.iter().any(|e| e.id == id)
        && !store
            .dead_events(&app.id, None, 1000)
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == id)
}

/// Polls `check` until it holds; fails the test with `what` if it never does.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}

// ---- signatures --------------------------------------------------------------------------

#[test]
fn the_shared_webhook_vector_is_reproduced() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/signing-vectors.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let w = &v["webhook"];
    let (secret, body, header) = (
        w["webhook_secret"].as_str().unwrap(),
        w["body"].as_str().unwrap(),
        w["header"].as_str().unwrap(),
    );
    let t: i64 = w["timestamp"].as_str().unwrap().parse().unwrap();
    assert_eq!(signature_header(&[secret], t, body.as_bytes()), header);
    assert_eq!(verify(header, body.as_bytes(), secret, t + 299, 300), Ok(()));
}

// ---- after-events ------------------------------------------------------------------------

#[tokio::test]
async fn after_events_arrive_signed_once_each_sqlite() {
    let (store, _dir) = testing::sqlite_temp().await;
    after_events_arrive_signed_once_each(store).await;
}

#[tokio::test]
async fn after_events_arrive_signed_once_each_postgres() {
    if let Some(store) = testing::postgres_fresh().await {
        after_events_arrive_signed_once_each(store).await;
    }
}

async fn after_events_arrive_signed_once_each(store: Arc<dyn Store>) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let app = app_with_url(&*store, &receiver.url()).await;
    let ids = [
        commit_event(&*store, &app, "m1").await,
        commit_event(&*store, &app, "m2").await,
        commit_event(&*store, &app, "m3").await,
    ];
    let worker = RunningWorker::start(store.clone(), true, Arc::new(SystemClock), fast_config());
    worker.wake.notify_one();
    for id in &ids {
        eventually("every event delivered", || is_delivered(&*store, &app, id)).await;
    }
    worker.stop().await;

    let seen = receiver.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (id, msg) in ids.iter().zip(["m1", "m2", "m3"]) {
        let s = receiver.seen_for(id);
        assert_eq!(s.len(), 1, "{id} arrived once");
        let s = &s[0];
        assert_eq!(s.verified, Ok(()), "the receiver's own check accepts the signature");
        assert_eq!((s.event.as_str(), s.attempt), ("message.sent", 1));
        assert_eq!(s.body["id"], json!(id));
        assert_eq!(s.body["type"], "message.sent");
        assert_eq!(s.body["app_key"], json!(app.app_key));
        assert_eq!(s.body["data"]["msg_id"], msg);
    }
}

#[tokio::test]
async fn a_poke_sends_new_events_without_waiting_for_the_poll() {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (store, _dir) = testing::sqlite_temp().await;
    let app = app_with_url(&*store, &receiver.url()).await;
    let config = WorkerConfig {
        poll_interval: Duration::from_secs(3600),
        ..fast_config()
    };
    let first = commit_event(&*store, &app, "m1").await;
    let worker = RunningWorker::start(store.clone(), true, Arc::new(SystemClock), config);
    eventually("the first poll delivers", || is_delivered(&*store, &app, &first)).await;
    // The worker now sleeps for an hour unless poked, as the pipeline does after a commit.
    let second = commit_event(&*store, &app, "m2").await;
    worker.wake.notify_one();
    eventually("the poke delivers", || is_delivered(&*store, &app, &second)).await;
    worker.stop().await;
    assert_eq!(receiver.seen().len(), 2);
}

#[tokio::test]
async fn one_endpoint_gets_at_most_its_concurrency_limit() {
    let receiver = Receiver::start(Reply::Slow(Duration::from_millis(150), 200)).await;
    let (store, _dir) = testing::sqlite_temp().await;
    let app = app_with_url(&*store, &receiver.url()).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(commit_event(&*store, &app, &format!("m{i}")).await);
    }
    let config = WorkerConfig {
        per_app_concurrency: 3,
        ..fast_config()
    };
    let worker = RunningWorker::start(store.clone(), true, Arc::new(SystemClock), config);
    for id in &ids {
        eventually("all delivered", || is_delivered(&*store, &app, id)).await;
    }
    worker.stop().await;
    assert_eq!(receiver.seen().len(), 12, "each once");
    assert!(
        receiver.most_at_once() <= 3,
        "at most 3 at once, saw {}",
        receiver.most_at_once()
    );
}

#[tokio::test]
async fn errors_and_timeouts_are_retried_with_the_same_id_and_body() {
    let receiver = Receiver::start(Reply::Status(204)).await;
    receiver.then([
        Reply::Body(500, "<h1>down</h1>\u{1b}[31m"),
        Reply::Slow(Duration::from_secs(3), 200),
        Reply::Status(404),
    ]);
    let (store, _dir) = testing::sqlite_temp().await;
    let app = app_with_url(&*store, &receiver.url()).await;
    let id = commit_event(&*store, &app, "m1").await;
    let config = WorkerConfig {
        attempt_timeout: Duration::from_millis(400),
        ..fast_config()
    };
    let worker = RunningWorker::start(store.clone(), true, Arc::new(SystemClock), config);
    eventually("delivered after retries", || is_delivered(&*store, &app, &id)).await;
    worker.stop().await;

    let seen = receiver.seen_for(&id);
    assert_eq!(
        seen.iter().map(|s| (s.attempt, s.answered)).collect::<Vec<_>>(),
        [(1, 500), (2, 200), (3, 404), (4, 204)],
        "500, a timeout (its late 200 does not count) and 404 are retried; 204 ends it"
    );
    assert!(seen.iter().all(|s| s.verified.is_ok()));
    assert!(
        seen.iter().all(|s| s.raw_body == seen[0].raw_body),
        "every retry sends the same bytes"
    );
    assert_eq!(receiver.seen().len(), 4);

    // The delivery log has each attempt, newest first: status, outcome, why, the answer.
    let log = store
        .webhook_attempts(&app.id, &AttemptFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(
        log.iter()
            .map(|l| (l.attempt, l.outcome, l.http_status, l.error.as_deref()))
            .collect::<Vec<_>>(),
        [
            (4, AttemptOutcome::Delivered, 204, None),
            (3, AttemptOutcome::Retrying, 404, Some("HTTP 404")),
            (
                2,
                AttemptOutcome::Retrying,
                0,
                Some("webhook endpoint did not answer within 400 ms")
            ),
            (1, AttemptOutcome::Retrying, 500, Some("HTTP 500")),
        ]
    );
    assert!(log.iter().all(|l| l.event_id == id && l.event_type == "message.sent"));
    assert_eq!(
        log[3].response_excerpt, "<h1>down</h1>[31m",
        "control characters dropped"
    );
    assert!(log[2].latency_ms >= 400, "the timeout's latency: {}", log[2].latency_ms);
}

#[tokio::test]
async fn a_test_event_is_sent_signed_once_and_logged() {
    let receiver = Receiver::start(Reply::Status(200)).await;
    receiver.then([Reply::Body(503, "maintenance until 10:00")]);
    let (store, _dir) = testing::sqlite_temp().await;
    let app = app_with_url(&*store, &receiver.url()).await;
    let sender = TestSender::new(
        store.clone(),
        Arc::new(WebhookClient::new(true)),
        Arc::new(StoreSecrets::new(store.clone(), secret_box())),
        Arc::new(SystemClock),
    );
    let failed = sender.send(&app).await.unwrap();
    assert_eq!(
        (failed.outcome, failed.http_status, failed.error.as_deref()),
        (AttemptOutcome::Failed, 503, Some("HTTP 503"))
    );
    assert_eq!(failed.response_excerpt, "maintenance until 10:00");
    let ok = sender.send(&app).await.unwrap();
    assert_eq!(
        (ok.outcome, ok.http_status, ok.attempt),
        (AttemptOutcome::Delivered, 200, 1)
    );
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2, "a test event is not retried");
    assert!(seen.iter().all(|s| s.verified.is_ok() && s.event == TEST_EVENT_TYPE));
    assert_eq!(seen[0].body["type"], TEST_EVENT_TYPE);
    assert_eq!(seen[0].body["app_key"], app.app_key.as_str());
    assert_ne!(seen[0].id, seen[1].id, "each test is its own event");
    let log = store
        .webhook_attempts(&app.id, &AttemptFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(log, vec![ok, failed]);
    assert!(pending(&*store).await.is_empty(), "nothing was put in the outbox");

    // An unreachable endpoint is a logged failure with the reason; no URL sends nothing.
    let mut closed = app.clone();
    closed.settings.webhook.url = Some("http://127.0.0.1:1/hook".into());
    let refused = sender.send(&closed).await.unwrap();
    assert_eq!((refused.outcome, refused.http_status), (AttemptOutcome::Failed, 0));
    assert!(
        refused.error.as_deref().unwrap().contains("request failed"),
        "{refused:?}"
    );
    let mut off = app.clone();
    off.settings.webhook.url = None;
    let none = sender.send(&off).await.unwrap_err();
    assert!(none.to_string().contains("no webhook URL"), "{none}");
    assert_eq!(
        store
            .webhook_attempts(&app.id, &AttemptFilter::default(), 10)
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn pending_events_survive_a_worker_restart() {
    let receiver = Receiver::start(Reply::Status(503)).await;
    let (store, dir) = testing::sqlite_temp().await;
    let app = app_with_url(&*store, &receiver.url()).await;
    let first = commit_event(&*store, &app, "before-restart").await;

    let worker = RunningWorker::start(store.clone(), true, Arc::new(SystemClock), fast_config());
    eventually("the first attempt failed", || async {
        !receiver.seen_for(&first).is_empty()
    })
    .await;
    worker.stop().await;
    let failed_attempts = receiver.seen_for(&first).len();

    // Committed while no worker runs; the receiver comes back.
    let second = commit_event(&*store, &app, "during-downtime").await;
    receiver.set_fallback(Reply::Status(200));
    drop(store);

    let url = format!("sqlite://{}", dir.path().join("tern.db").display());
    let reopened = tern_platform::store::sqlite::open(&url).await.unwrap();
    let worker = RunningWorker::start(reopened.clone(), true, Arc::new(SystemClock), fast_config());
    for id in [&first, &second] {
        eventually("delivered by the new worker", || is_delivered(&*reopened, &app, id)).await;
    }
    worker.stop().await;

    for id in [&first, &second] {
        let ok: Vec<_> = receiver
            .seen_for(id)
            .into_iter()
            .filter(|s| (200..300).contains(&s.answered))
            .collect();
        assert_eq!(ok.len(), 1, "{id} delivered exactly once");
    }
    let last = receiver.seen_for(&first).last().unwrap().attempt;
    assert_eq!(
        last as usize,
        failed_attempts + 1,
        "the attempt count carried over the restart"
    );
}

#[tokio::test]
async fn two_workers_on_one_database_deliver_each_event_once_sqlite() {
    let (store, dir) = testing::sqlite_temp().await;
    // The second worker opens the file itself, as a second `tern serve --roles worker` would.
    let url = format!("sqlite://{}", dir.path().join("tern.db").display());
    let other = tern_platform::store::sqlite::open(&url).await.unwrap();
    two_workers_deliver_each_event_once(store, other).await;
}

#[tokio::test]
async fn two_workers_on_one_database_deliver_each_event_once_postgres() {
    if let Some(store) = testing::postgres_fresh().await {
        two_workers_deliver_each_event_once(store.clone(), store).await;
    }
}

async fn two_workers_deliver_each_event_once(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    // Slow enough that both workers have deliveries in flight at the same time.
    let receiver = Receiver::start(Reply::Slow(Duration::from_millis(30), 200)).await;
    let app = app_with_url(&*a, &receiver.url()).await;
    let mut ids = Vec::new();
    for i in 0..60 {
        ids.push(commit_event(&*a, &app, &format!("m{i}")).await);
    }
    let config = WorkerConfig {
        batch: 5,
        ..fast_config()
    };
    let first = RunningWorker::start(a.clone(), true, Arc::new(SystemClock), config.clone());
    let second = RunningWorker::start(b.clone(), true, Arc::new(SystemClock), config);
    for id in &ids {
        eventually("every event delivered", || is_delivered(&*a, &app, id)).await;
    }
    first.stop().await;
    second.stop().await;
    let seen = receiver.seen();
    for id in &ids {
        assert_eq!(receiver.seen_for(id).len(), 1, "{id} was POSTed once");
    }
    assert_eq!(seen.len(), ids.len());
    assert!(seen.iter().all(|s| s.verified.is_ok() && s.attempt == 1));
}

#[tokio::test]
async fn an_event_whose_app_dropped_its_url_is_dead_with_that_reason() {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (store, _dir) = testing::sqlite_temp().await;
    let app = app_with_url(&*store, &receiver.url()).await;
    let id = commit_event(&*store, &app, "m1").await;
    let mut settings = app.settings.clone();
    settings.webhook.url = None;
    store.update_app_settings(&app.id, &settings).await.unwrap();

    let worker = RunningWorker::start(store.clone(), true, Arc::new(SystemClock), fast_config());
    eventually("the event is dead", || async {
        store
            .dead_events(&app.id, None, 10)
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == id)
    })
    .await;
    worker.stop().await;
    let dead = store.dead_events(&app.id, None, 10).await.unwrap();
    assert_eq!(dead[0].last_error.as_deref(), Some(NO_URL_ERROR));
    assert!(receiver.seen().is_empty());
    // And an app that turns webhooks off writes no new events at all.
    let off = App {
        settings,
        ..app.clone()
    };
    assert!(webhook::after_event(&off, "message.sent", json!({}), now_ms()).is_none());
}

#[tokio::test]
async fn a_day_old_event_dies_on_failure_and_can_be_redelivered() {
    let receiver = Receiver::start(Reply::Status(500)).await;
    let (store, _dir) = testing::sqlite_temp().await;
    let app = app_with_url(&*store, &receiver.url()).await;
    let id = commit_event(&*store, &app, "m1").await;
    let clock = Arc::new(ManualClock::new(now_ms() + 24 * 3600 * 1000 + 1000));

    let worker = RunningWorker::start(store.clone(), true, clock.clone(), fast_config());
    eventually("the event is dead", || async {
        store
            .dead_events(&app.id, None, 10)
            .await
            .unwrap()
            .iter()
            .any(|e| e.id == id)
    })
    .await;
    let dead = store.dead_events(&app.id, None, 10).await.unwrap();
    assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(receiver.seen_for(&id).len(), 1, "past its 24 h, one failure is final");

    receiver.set_fallback(Reply::Status(200));
    store.redeliver_event(&app.id, &id, clock.now_ms()).await.unwrap();
    worker.wake.notify_one();
    eventually("redelivered", || is_delivered(&*store, &app, &id)).await;
    worker.stop().await;
    let seen = receiver.seen_for(&id);
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[1].attempt, seen[1].answered),
        (1, 200),
        "a redelivery counts attempts afresh"
    );
    assert_eq!(
        seen[1].raw_body, seen[0].raw_body,
        "redelivery sends the original event"
    );
}

// ---- SSRF --------------------------------------------------------------------------------

#[tokio::test]
async fn internal_addresses_are_refused_unless_the_operator_allows_them() {
    for url in [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://192.168.1.20/hook",
        "http://100.64.1.1/hook",
    ] {
        let err = validate_webhook_url(url, false).await.unwrap_err();
        assert!(matches!(err, WebhookError::ForbiddenAddress { .. }), "{url}: {err}");
        assert!(err.to_string().contains("TERN_WEBHOOK_ALLOW_PRIVATE=1"), "{err}");
        validate_webhook_url(url, true).await.unwrap();
    }

    // The worker refuses too, without ever connecting, and keeps the reason on the event.
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (store, _dir) = testing::sqlite_temp().await;
    let app = app_with_url(&*store, &receiver.url()).await;
    let id = commit_event(&*store, &app, "m1").await;
    let worker = RunningWorker::start(store.clone(), false, Arc::new(SystemClock), fast_config());
    eventually("the attempt was refused", || async {
        pending(&*store).await.iter().any(|e| {
            e.id == id
                && e.last_error
                    .as_deref()
                    .is_some_and(|m| m.contains("TERN_WEBHOOK_ALLOW_PRIVATE"))
        })
    })
    .await;
    worker.stop().await;
    assert!(receiver.seen().is_empty(), "nothing reached the internal receiver");

    // So does the before-send hook, which then follows the policy.
    let hook = HttpBeforeSendHook::new(
        Arc::new(WebhookClient::new(false)),
        Arc::new(StaticSecrets(vec![SECRET.into()])),
    );
    let app = hook_app(&receiver, FailurePolicy::FailClosed, 1000);
    assert_eq!(hook.check(&app, &draft()).await, HookDecision::Unavailable);
    assert!(receiver.seen().is_empty());
}

// ---- before-send -------------------------------------------------------------------------

fn hook_app(receiver: &Receiver, policy: FailurePolicy, timeout_ms: u64) -> App {
    let mut settings = AppSettings::default();
    settings.webhook.url = Some(receiver.url());
    settings.webhook.before_send = BeforeSendSettings {
        enabled: true,
        sources: Vec::new(),
        types: Vec::new(),
        timeout_ms,
        policy,
    };
    App {
        id: AppId::generate(),
        tenant_id: TenantId::generate(),
        name: "app".into(),
        app_key: AppKey::generate(),
        status: AppStatus::Active,
        settings,
        created_at: now_ms(),
    }
}

fn draft() -> HookDraft {
    let (alice, bob) = (UserId::parse("alice").unwrap(), UserId::parse("bob").unwrap());
    HookDraft {
        conversation_id: ConversationId::direct(&alice, &bob),
        sender: Sender::User(alice),
        client_msg_id: ClientMsgId::parse("c1").unwrap(),
        msg_type: MessageType::Text,
        content: json!({"text": "hello"}),
        source: Source::Sdk,
        edit_of: None,
    }
}

fn before_send_hook(clock: Arc<dyn Clock>) -> HttpBeforeSendHook {
    HttpBeforeSendHook::with_clock(
        Arc::new(WebhookClient::new(true)),
        Arc::new(StaticSecrets(vec![SECRET.into()])),
        clock,
    )
}

/// Runs one check against a receiver that answers `reply`; returns the decision and what
/// the receiver saw.
async fn check_once(reply: Reply, policy: FailurePolicy, timeout_ms: u64) -> (HookDecision, Vec<Seen>) {
    let receiver = Receiver::start(reply).await;
    let hook = before_send_hook(Arc::new(SystemClock));
    let decision = hook.check(&hook_app(&receiver, policy, timeout_ms), &draft()).await;
    (decision, receiver.seen())
}

#[tokio::test]
async fn before_send_allow_reject_and_replace() {
    let (decision, seen) = check_once(Reply::Json(r#"{"action":"allow"}"#), FailurePolicy::FailClosed, 1500).await;
    assert_eq!(decision, HookDecision::Allow);
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.verified, Ok(()));
    assert_eq!((s.event.as_str(), s.attempt), ("message.before_send", 1));
    assert!(s.id.starts_with("wh_"));
    assert_eq!(s.body["id"], json!(s.id));
    assert_eq!(s.body["type"], "message.before_send");
    assert_eq!(s.body["data"]["content"], json!({"text": "hello"}));
    assert_eq!(s.body["data"]["client_msg_id"], "c1");
    assert_eq!(s.body["data"]["type"], "text");

    let (decision, _) = check_once(
        Reply::Json(r#"{"action":"reject","reason":"no links please"}"#),
        FailurePolicy::FailOpen,
        1500,
    )
    .await;
    assert_eq!(
        decision,
        HookDecision::Reject {
            reason: "no links please".into()
        }
    );

    let (decision, _) = check_once(
        Reply::Json(r#"{"action":"replace","content":{"text":"h***o"}}"#),
        FailurePolicy::FailOpen,
        1500,
    )
    .await;
    assert_eq!(
        decision,
        HookDecision::Replace {
            content: json!({"text": "h***o"})
        }
    );
}

#[tokio::test]
async fn before_send_failures_follow_the_policy() {
    for (reply, what) in [
        (Reply::Status(500), "HTTP 500"),
        (
            Reply::Json(r#"{"action":"allow"}"#.trim_end_matches('}')),
            "truncated JSON",
        ),
        (Reply::Json("OK"), "not JSON"),
        (Reply::Json(r#"{"action":"shrug"}"#), "unknown action"),
        (Reply::Slow(Duration::from_secs(3), 200), "no answer within the timeout"),
    ] {
        let (open, seen) = check_once(reply.clone(), FailurePolicy::FailOpen, 200).await;
        assert_eq!(open, HookDecision::Allow, "fail_open, {what}");
        assert_eq!(seen.len(), 1, "{what}: called once");
        let (closed, _) = check_once(reply, FailurePolicy::FailClosed, 200).await;
        assert_eq!(closed, HookDecision::Unavailable, "fail_closed, {what}");
    }
    // A 201 with a valid body is still not the 200 the contract asks for.
    let (decision, _) = check_once(Reply::Status(201), FailurePolicy::FailClosed, 200).await;
    assert_eq!(decision, HookDecision::Unavailable);
}

#[tokio::test]
async fn before_send_breaker_pauses_after_ten_failures_and_resumes_after_the_cooldown() {
    let receiver = Receiver::start(Reply::Status(502)).await;
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let hook = before_send_hook(clock.clone());
    let app = hook_app(&receiver, FailurePolicy::FailClosed, 1000);

    for _ in 0..10 {
        assert_eq!(hook.check(&app, &draft()).await, HookDecision::Unavailable);
    }
    assert_eq!(receiver.seen().len(), 10);
    let state = hook.breaker_state(&app.id);
    assert_eq!(state.paused_until, Some(1_800_000_060_000));
    assert_eq!((state.consecutive_failures, state.cooldown_ms), (10, 60_000));

    // Paused: the policy answers and the endpoint is left alone, even once it is healthy.
    receiver.set_fallback(Reply::Json(r#"{"action":"reject","reason":"checked"}"#));
    assert_eq!(hook.check(&app, &draft()).await, HookDecision::Unavailable);
    clock.advance_ms(59_999);
    assert_eq!(hook.check(&app, &draft()).await, HookDecision::Unavailable);
    assert_eq!(receiver.seen().len(), 10);

    // After the cool-down the endpoint is asked again; its answer closes the breaker.
    clock.advance_ms(1);
    assert_eq!(
        hook.check(&app, &draft()).await,
        HookDecision::Reject {
            reason: "checked".into()
        }
    );
    assert_eq!(receiver.seen().len(), 11);
    let state = hook.breaker_state(&app.id);
    assert_eq!((state.paused_until, state.consecutive_failures), (None, 0));

    // Another app's breaker is its own.
    let other = hook_app(&receiver, FailurePolicy::FailOpen, 1000);
    assert_eq!(hook.breaker_state(&other.id).consecutive_failures, 0);
}
