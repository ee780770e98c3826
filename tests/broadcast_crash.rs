//! A broadcast across a crash, with the real binary: `tern serve` is killed with SIGKILL in
//! the middle of a broadcast to every user and started again on the same database. The
//! job resumes by itself and ends with every user holding the notification exactly once
//! and the progress counting each user once. On SQLite, and on PostgreSQL when
//! `TERN_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{cli_json, eventually, status_of, Server};
use serde_json::{json, Value};
use tern_platform::domain::BroadcastState;
use tern_platform::ids::{AppKey, ConversationId, UserId};
use tern_platform::store::{self, SeqRange};
use tern_sdk::server::ServerClient;

const USERS: usize = 1200;

async fn start_ready(dir: &Path, env: &[(&str, &str)]) -> Server {
    let server = Server::start(dir, env);
    let http = reqwest::Client::new();
    let url = format!("{}/readyz", server.base);
    eventually("tern serve is ready", || async {
        status_of(&http, &url).await == Some(200)
    })
    .await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broadcast_survives_kill_9_with_nothing_lost_or_doubled() {
    let mut databases = vec![("sqlite", None)];
    if let Some(url) = store::testing::postgres_fresh_url().await {
        databases.push(("postgres", Some(url)));
    }
    for (backend, pg) in databases {
        eprintln!("on {backend}");
        let run = tempfile::tempdir().unwrap();
        let d = run.path();
        // SQLite: the default file under the data directory.
        let db_url = pg
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/tern.db", d.join("data").display()));
        let env: Vec<(&str, &str)> = pg.iter().map(|u| ("TERN_DATABASE_URL", u.as_str())).collect();
        cli_json(d, &env, &["tenant", "create", "Acme", "--json"]);
        let app = cli_json(
            d,
            &env,
            &["app", "create", "--tenant", "Acme", "--name", "chat", "--json"],
        );
        let (key, secret) = (
            app["app_key"].as_str().unwrap().to_owned(),
            app["app_secret"].as_str().unwrap().to_owned(),
        );
        // 400 users a second: a job of three seconds, so the kill lands in the middle.
        cli_json(
            d,
            &env,
            &[
                "app",
                "settings",
                "--app",
                &key,
                "--set",
                "broadcast_rate_per_second=400",
                "--json",
            ],
        );

        let server = start_ready(d, &env).await;
        let client = ServerClient::new(&server.base, &key, &secret);
        let ids: Vec<String> = (0..USERS).map(|i| format!("user{i:05}")).collect();
        for chunk in ids.chunks(100) {
            let users: Vec<Value> = chunk.iter().map(|u| json!({"id": u})).collect();
            client.upsert_users(&users).await.unwrap();
        }
        let job = client
            .broadcast("text", json!({"text": "we are back"}), None, Some("outage-notice"))
            .await
            .unwrap();
        let progress = client.clone();
        let id = job.id.clone();
        eventually("the broadcast is under way", || {
            let (c, id) = (progress.clone(), id.clone());
            async move { c.get_broadcast(&id).await.unwrap().users_seen >= 200 }
        })
        .await;
        drop(server); // SIGKILL in the middle of the job.

        let db = store::connect(&db_url).await.unwrap();
        let app_id = db.app_by_key(&AppKey::parse(&key).unwrap()).await.unwrap().unwrap().id;
        let at_kill = db.broadcast(&app_id, &job.id).await.unwrap().unwrap();
        assert_eq!(at_kill.state, BroadcastState::Running);
        assert!(
            at_kill.users_seen < USERS as i64,
            "killed mid-job ({} of {USERS} done)",
            at_kill.users_seen
        );

        let server = start_ready(d, &env).await;
        let client = ServerClient::new(&server.base, &key, &secret);
        eventually("the broadcast finished after the restart", || {
            let (c, id) = (client.clone(), job.id.clone());
            async move { c.get_broadcast(&id).await.unwrap().status == "done" }
        })
        .await;
        let done = client.get_broadcast(&job.id).await.unwrap();
        assert_eq!(
            (done.users_seen, done.sent, done.failed),
            (USERS as u64, USERS as u64, 0),
            "each user counted once"
        );
        for u in &ids {
            let inbox = db
                .messages(
                    &app_id,
                    &ConversationId::System(UserId::parse(u).unwrap()),
                    SeqRange::After(0),
                    10,
                )
                .await
                .unwrap();
            assert_eq!(inbox.len(), 1, "{u} holds the notification exactly once");
            assert_eq!(inbox[0].content["text"], "we are back");
        }
        drop(server);
    }
}
