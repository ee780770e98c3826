//! Moderation end to end, as `tern serve` wires it: the server API and the WebSocket
//! gateway on one listener over one engine, driven with the Rust SDK (server and client),
//! on SQLite and (with TERN_TEST_DATABASE_URL) PostgreSQL.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tern_platform::domain::*;
use tern_platform::engine::{Engine, EngineConfig};
use tern_platform::ids::*;
use tern_platform::secret_box::SecretBox;
use tern_platform::store::{testing, NewApp, Store};
use tern_push_gateway::{Gateway, GatewayConfig};
use tern_sdk::server::ServerClient;
use tern_sdk::{Client, ClientOptions, ConnectionState, Event, Events, Platform, Target};
use tokio_util::sync::CancellationToken;

const PATIENCE: Duration = Duration::from_secs(20);

struct Stack {
    base: String,
    ws: String,
    store: Arc<dyn Store>,
    secrets: SecretBox,
    tenant: TenantId,
    stop: CancellationToken,
    _engine: Engine,
}

impl Stack {
    async fn start(store: Arc<dyn Store>) -> Self {
        let secrets = SecretBox::from_key([9; 32]);
        let config = EngineConfig::default();
        let node_id = config.node_id.clone();
        let engine = Engine::start(store.clone(), secrets.clone(), config);
        let stop = CancellationToken::new();
        let gateway = Gateway::start(
            GatewayConfig {
                node_id,
                ..GatewayConfig::default()
            },
            engine.pipeline.clone(),
            engine.user_tokens.clone(),
            stop.clone(),
        )
        .await
        .unwrap();
        let api = tern_tenant_api::ApiState::from_engine(&engine);
        let router = tern_tenant_api::router(api).merge(tern_push_gateway::router(gateway));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let tenant = Tenant {
            id: TenantId::generate(),
            name: format!("tenant-{}", AppKey::generate()),
            status: TenantStatus::Active,
            created_at: now_ms(),
        };
        store.create_tenant(&tenant).await.unwrap();
        Self {
            base: format!("http://{addr}"),
            ws: format!("ws://{addr}/v1/connect"),
            store,
            secrets,
            tenant: tenant.id,
            stop,
            _engine: engine,
        }
    }

    /// A new app and its signed server client.
    async fn app(&self) -> ServerClient {
        self.app_and_record().await.0
    }

    async fn app_and_record(&self) -> (ServerClient, App) {
        let id = AppId::generate();
        let secret = format!("sk_{}", AppKey::generate().as_str());
        let key = AppKey::generate();
        let new = NewApp {
            id: id.clone(),
            tenant_id: self.tenant.clone(),
            name: format!("app-{key}"),
            app_key: key.clone(),
            settings: AppSettings::default(),
            first_secret: AppSecretRecord {
                id: SecretId::generate(),
                app_id: id.clone(),
                ciphertext: self.secrets.seal(id.as_str(), secret.as_bytes()),
                created_at: now_ms(),
                expires_at: None,
            },
            webhook_secret_ciphertext: self.secrets.seal(id.as_str(), b"whsec_test"),
        };
        let app = self.store.create_app(&new).await.unwrap();
        (ServerClient::new(&self.base, key.as_str(), &secret), app)
    }

    async fn login(&self, server: &ServerClient, user: &str) -> Result<(Client, Events), tern_sdk::ClientError> {
        let token = server.user_token(user, Some(600)).await.unwrap().token;
        let options = ClientOptions {
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            request_timeout: Duration::from_secs(10),
            ..Default::default()
        };
        Client::connect_with(&self.ws, &token, &format!("{user}-phone"), Platform::Ios, options).await
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn next_matching<T>(events: &mut Events, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let ev = events.next().await.expect("the event stream ended");
            if let Some(t) = pick(ev) {
                return t;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

async fn next_text(events: &mut Events) -> String {
    next_matching(events, |e| match e {
        Event::Message(m) => Some(m.content["text"].as_str().unwrap_or_default().to_owned()),
        _ => None,
    })
    .await
}

async fn stores() -> Vec<(&'static str, Arc<dyn Store>, Option<tempfile::TempDir>)> {
    let (sqlite, dir) = testing::sqlite_temp().await;
    let mut out = vec![("sqlite", sqlite, Some(dir))];
    if let Some(pg) = testing::postgres_fresh().await {
        out.push(("postgres", pg, None));
    }
    out
}

fn text(s: &str) -> serde_json::Value {
    json!({ "text": s })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_lists_filter_sdk_sends() {
    for (backend, store, _dir) in stores().await {
        eprintln!("on {backend}");
        let stack = Stack::start(store).await;
        let server = stack.app().await;
        server
            .upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
            .await
            .unwrap();
        server
            .put_word_list("mild", "replace", &["darn", "坏蛋"])
            .await
            .unwrap();
        server.put_word_list("hard", "reject", &["forbidden"]).await.unwrap();
        let (alice, _alice_ev) = stack.login(&server, "alice").await.unwrap();
        let (_bob, mut bob_ev) = stack.login(&server, "bob").await.unwrap();

        alice
            .send(Target::User("bob".into()), "text", text("DaRn, 你这个坏蛋"))
            .await
            .unwrap();
        assert_eq!(next_text(&mut bob_ev).await, "****, 你这个**");

        let err = alice
            .send(Target::User("bob".into()), "text", text("a Forbidden word"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("content_rejected"));
        // Nothing was stored: history holds only the masked message.
        let history = alice.history("d:alice:bob", 0, 50).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].content["text"], "****, 你这个**");

        // Lifting the list lets the word through on the next send.
        server.delete_word_list("hard").await.unwrap();
        alice
            .send(Target::User("bob".into()), "text", text("forbidden fruit"))
            .await
            .unwrap();
        assert_eq!(next_text(&mut bob_ev).await, "forbidden fruit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_user_reads_but_cannot_send() {
    for (backend, store, _dir) in stores().await {
        eprintln!("on {backend}");
        let stack = Stack::start(store).await;
        let server = stack.app().await;
        server
            .upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
            .await
            .unwrap();
        let (alice, mut alice_ev) = stack.login(&server, "alice").await.unwrap();
        let (bob, _bob_ev) = stack.login(&server, "bob").await.unwrap();

        server.mute_user("alice", Some(now_ms() + 3_600_000)).await.unwrap();
        let err = alice
            .send(Target::User("bob".into()), "text", text("hello?"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("user_muted"));
        // Still connected: messages arrive, history and read work.
        bob.send(Target::User("alice".into()), "text", text("you are muted"))
            .await
            .unwrap();
        assert_eq!(next_text(&mut alice_ev).await, "you are muted");
        let history = alice.history("d:alice:bob", 0, 50).await.unwrap();
        assert_eq!(history.len(), 1);
        alice.read("d:alice:bob", 1).await.unwrap();
        // A fresh login is allowed while muted.
        let (again, _) = stack.login(&server, "alice").await.unwrap();
        again.close();

        server.unmute_user("alice").await.unwrap();
        alice
            .send(Target::User("bob".into()), "text", text("thanks"))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_closes_sessions_and_refuses_logins_until_lifted() {
    for (backend, store, _dir) in stores().await {
        eprintln!("on {backend}");
        let stack = Stack::start(store).await;
        let server = stack.app().await;
        server
            .upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
            .await
            .unwrap();
        let (alice, mut alice_ev) = stack.login(&server, "alice").await.unwrap();
        let (_bob, mut bob_ev) = stack.login(&server, "bob").await.unwrap();

        server.ban_user("alice", None, "spamming").await.unwrap();
        let (code, reason) = next_matching(&mut alice_ev, |e| match e {
            Event::Kicked { code, reason } => Some((code, reason)),
            _ => None,
        })
        .await;
        assert_eq!((code.as_str(), reason.as_str()), ("user_banned", "spamming"));
        let state = next_matching(&mut alice_ev, |e| match e {
            Event::Connection(s @ ConnectionState::Closed { .. }) => Some(s),
            _ => None,
        })
        .await;
        assert!(matches!(state, ConnectionState::Closed { code, .. } if code == "user_banned"));
        assert!(alice
            .send(Target::User("bob".into()), "text", text("still here?"))
            .await
            .is_err());

        // A new login is refused while the ban lasts.
        let err = stack.login(&server, "alice").await.err().unwrap();
        assert_eq!(err.code(), Some("user_banned"));

        // Lifted: alice logs in and talks again.
        server.unban_user("alice").await.unwrap();
        let (alice, _) = stack.login(&server, "alice").await.unwrap();
        alice
            .send(Target::User("bob".into()), "text", text("I'm back"))
            .await
            .unwrap();
        assert_eq!(next_text(&mut bob_ev).await, "I'm back");
    }
}

/// A second node (its own pipeline and matcher cache over the same database) notices a
/// list changed through the first node without being told, on a later send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_picks_up_list_changes() {
    use tern_platform::bus::memory::MemoryBus;
    use tern_platform::delivery::{Pipeline, PipelineConfig, Recipient, SendRequest};
    use tern_platform::presence::MemoryPresence;

    for (backend, store, _dir) in stores().await {
        eprintln!("on {backend}");
        let stack = Stack::start(store.clone()).await;
        let (server, app) = stack.app_and_record().await;
        server
            .upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
            .await
            .unwrap();
        let other = Pipeline::new(
            store.clone(),
            Arc::new(MemoryBus::new()),
            Arc::new(MemoryPresence::new()),
            PipelineConfig::default(),
        );
        let send = |s: &str| SendRequest {
            sender: Sender::User(UserId::parse("alice").unwrap()),
            to: Recipient::User(UserId::parse("bob").unwrap()),
            client_msg_id: None,
            msg_type: MessageType::Text,
            content: text(s),
            source: Source::ServerApi,
            options: Default::default(),
        };
        // The other node has compiled (empty) lists for the app.
        other.send(&app, send("darn")).await.unwrap();
        server.put_word_list("mild", "replace", &["darn"]).await.unwrap();
        // Its cached matcher is rechecked within a second; keep sending until it is.
        let masked = tokio::time::timeout(PATIENCE, async {
            loop {
                let receipt = other.send(&app, send("darn")).await.unwrap();
                let stored = store.message(&app.id, &receipt.msg_id).await.unwrap().unwrap();
                if stored.content["text"] == "****" {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(masked.is_ok(), "the other node never applied the new list");
    }
}
