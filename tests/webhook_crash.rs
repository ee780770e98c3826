//! After-events across a crash, with the real binary: `tern serve` is killed with SIGKILL
//! and started again on the same data directory. Every acknowledged message is in history
//! once, and the app's receiver gets exactly one `message.sent` webhook id per stored
//! message: none lost, none for a send that did not commit.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::{cli_json, eventually, status_of, Server};
use tern_sdk::server::ServerClient;

const ALLOW_PRIVATE: (&str, &str) = ("TERN_WEBHOOK_ALLOW_PRIVATE", "1");

/// One webhook request as the receiver saw it.
#[derive(Debug, Clone)]
struct Hit {
    webhook_id: String,
    event: String,
    msg_id: String,
    answered: u16,
}

struct Receiver {
    addr: SocketAddr,
    status: AtomicU16,
    hits: Mutex<Vec<Hit>>,
}

impl Receiver {
    async fn start(status: u16) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Arc::new(Self {
            addr: listener.local_addr().unwrap(),
            status: AtomicU16::new(status),
            hits: Mutex::new(Vec::new()),
        });
        let app = Router::new().route("/hook", post(handle)).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        r
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Distinct webhook ids seen, whatever the answer.
    fn ids(&self) -> HashSet<String> {
        self.hits().into_iter().map(|h| h.webhook_id).collect()
    }

    /// Webhook id → msg_id of those answered with 200.
    fn delivered(&self) -> HashMap<String, String> {
        self.hits()
            .into_iter()
            .filter(|h| h.answered == 200)
            .map(|h| (h.webhook_id, h.msg_id))
            .collect()
    }
}

async fn handle(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = r.status.load(Ordering::SeqCst);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    r.hits.lock().unwrap().push(Hit {
        webhook_id: header("x-tern-webhook-id"),
        event: header("x-tern-event"),
        msg_id: body["data"]["msg_id"].as_str().unwrap_or("").to_owned(),
        answered: status,
    });
    StatusCode::from_u16(status).unwrap()
}

/// Starts `tern serve` on the data dir and waits until it is ready (migrated, store open).
async fn start_ready(dir: &Path) -> Server {
    let server = Server::start(dir, &[ALLOW_PRIVATE]);
    let http = reqwest::Client::new();
    let url = format!("{}/readyz", server.base);
    eventually("tern serve is ready", || async {
        status_of(&http, &url).await == Some(200)
    })
    .await;
    server
}

/// A tenant and an app made with the CLI, its webhook pointed at `url`; (AppKey, AppSecret).
fn app_with_webhook(dir: &Path, url: &str) -> (String, String) {
    cli_json(dir, &[ALLOW_PRIVATE], &["tenant", "create", "Acme", "--json"]);
    let app = cli_json(
        dir,
        &[ALLOW_PRIVATE],
        &["app", "create", "--tenant", "Acme", "--name", "chat", "--json"],
    );
    let key = app["app_key"].as_str().unwrap().to_owned();
    cli_json(
        dir,
        &[ALLOW_PRIVATE],
        &[
            "webhook",
            "set",
            "--app",
            &key,
            "--url",
            url,
            "--events",
            "message.sent",
            "--json",
        ],
    );
    (key, app["app_secret"].as_str().unwrap().to_owned())
}

/// Nothing left in the outbox to deliver: no more webhooks can arrive.
async fn outbox_is_empty(dir: &Path) -> bool {
    let url = format!("sqlite://{}/tern.db", dir.join("data").display());
    let store = tern_platform::store::connect(&url).await.unwrap();
    store.due_events(i64::MAX, 10).await.unwrap().is_empty()
}

async fn history(client: &ServerClient, conversation: &str) -> Vec<tern_sdk::server::HistoryMessage> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |m: &tern_sdk::server::HistoryMessage| m.seq);
        let page = client.history(conversation, after, 100).await.unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pending_webhooks_survive_kill_9_exactly_once_per_message() {
    const N: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let receiver = Receiver::start(500).await;
    let (key, secret) = app_with_webhook(d, &receiver.url());

    let server = start_ready(d).await;
    let client = ServerClient::new(&server.base, &key, &secret);
    client.create_user("alice", "Alice").await.unwrap();
    client.create_user("bob", "Bob").await.unwrap();
    let mut acked = Vec::new();
    let mut conversation = String::new();
    for i in 0..N {
        let a = client
            .send_text("alice", "bob", &format!("c{i}"), &format!("hello {i}"))
            .await
            .unwrap();
        conversation = a.conversation_id.clone();
        acked.push(a.msg_id);
    }
    // Every event was tried and refused at least once, so all of them are pending retries.
    eventually("each event attempted against the failing receiver", || async {
        receiver.ids().len() == N
    })
    .await;
    assert!(receiver.delivered().is_empty());
    drop(server); // SIGKILL: no graceful shutdown, no draining.

    receiver.status.store(200, Ordering::SeqCst);
    let server = start_ready(d).await;
    let client = ServerClient::new(&server.base, &key, &secret);
    eventually("every event delivered after the restart", || async {
        receiver.delivered().len() == N
    })
    .await;
    eventually("the outbox drained", || outbox_is_empty(d)).await;

    let hits = receiver.hits();
    assert!(hits.iter().all(|h| h.event == "message.sent"));
    assert_eq!(receiver.ids().len(), N, "exactly N distinct webhook ids: {hits:?}");
    let delivered_msgs: HashSet<String> = receiver.delivered().into_values().collect();
    assert_eq!(delivered_msgs, acked.iter().cloned().collect::<HashSet<_>>());

    let stored = history(&client, &conversation).await;
    assert_eq!(
        stored.iter().map(|m| m.msg_id.clone()).collect::<Vec<_>>(),
        acked,
        "history holds exactly the acknowledged messages, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_during_a_burst_loses_no_acknowledged_message_and_doubles_none() {
    const SENDERS: usize = 8;
    const KILL_AFTER: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let receiver = Receiver::start(200).await;
    let (key, secret) = app_with_webhook(d, &receiver.url());

    let server = start_ready(d).await;
    let client = ServerClient::new(&server.base, &key, &secret);
    client.create_user("alice", "Alice").await.unwrap();
    client.create_user("bob", "Bob").await.unwrap();

    let acked_count = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let client = client.clone();
            let acked_count = acked_count.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0.. {
                    match client.send_text("alice", "bob", &format!("s{s}-{i}"), "burst").await {
                        Ok(a) => {
                            acked.push((a.conversation_id, a.msg_id));
                            acked_count.fetch_add(1, Ordering::SeqCst);
                        }
                        // The server is gone: what was not acknowledged may or may not be stored.
                        Err(_) => return acked,
                    }
                }
                acked
            })
        })
        .collect();
    eventually("the burst is under way", || {
        let n = acked_count.load(Ordering::SeqCst);
        async move { n >= KILL_AFTER }
    })
    .await;
    drop(server); // SIGKILL in the middle of the burst.
    let mut acked = Vec::new();
    for s in senders {
        acked.extend(s.await.unwrap());
    }
    assert!(acked.len() >= KILL_AFTER);
    let conversation = acked[0].0.clone();

    let server = start_ready(d).await;
    let client = ServerClient::new(&server.base, &key, &secret);
    let stored = history(&client, &conversation).await;
    let stored_ids: Vec<String> = stored.iter().map(|m| m.msg_id.clone()).collect();
    let unique: HashSet<&String> = stored_ids.iter().collect();
    assert_eq!(unique.len(), stored_ids.len(), "no message stored twice");
    let client_ids: HashSet<&String> = stored.iter().map(|m| &m.client_msg_id).collect();
    assert_eq!(client_ids.len(), stored.len(), "no send stored twice");
    for (_, msg_id) in &acked {
        assert!(unique.contains(msg_id), "acknowledged {msg_id} is in history");
    }
    let seqs: Vec<i64> = stored.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=stored.len() as i64).collect::<Vec<_>>(), "gapless seqs");

    // One webhook per stored message (sends cut short either committed with their event
    // or not at all), delivered after the restart where the crash interrupted it.
    eventually("a webhook for every stored message", || async {
        receiver.delivered().len() >= stored.len()
    })
    .await;
    eventually("the outbox drained", || outbox_is_empty(d)).await;
    let delivered = receiver.delivered();
    assert_eq!(receiver.ids().len(), stored.len(), "one webhook id per stored message");
    assert_eq!(
        delivered.into_values().collect::<HashSet<_>>(),
        stored_ids.iter().cloned().collect::<HashSet<_>>()
    );
    drop(server);
}
