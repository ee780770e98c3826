//! `tern serve` as a real process: it answers `/healthz` from the start, holds `/readyz` at
//! 503 while the database is away, tags every response with a request id, exposes metrics,
//! and exits 0 on SIGTERM.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{eventually, status_of, Server, UNREACHABLE_PG};

#[tokio::test]
async fn without_a_database_it_is_alive_but_not_ready_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TERN_DATABASE_URL", UNREACHABLE_PG)]);
    assert!(server
        .seen
        .iter()
        .any(|l| l.contains("console:") && l.ends_with("/console")));
    let client = reqwest::Client::new();

    let res = client.get(format!("{}/healthz", server.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("x-request-id").is_some());

    let res = client.get(format!("{}/readyz", server.base)).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert!(
        body["checks"]["database"].as_str().unwrap().contains("not connected"),
        "{body}"
    );

    // The API is not mounted yet: a JSON error, with the caller's request id.
    let res = client
        .post(format!("{}/v1/messages", server.base))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_ready");
    assert_eq!(body["error"]["request_id"], "trace-me-42");

    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains("route=\"/readyz\"")
            && l.contains("status=\"503\"")),
        "{metrics}"
    );

    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn the_embedded_default_becomes_ready_and_creates_the_admin_once() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut server = Server::start(dir.path(), &[]);
    let password = server.wait_for_line("  password:");
    assert!(password.contains("generated now"), "{password}");
    assert!(server.wait_for_line("  admin:").contains("admin@localhost"));
    server.wait_for_line("tern: ready");
    let base = server.base.clone();
    let readyz = format!("{base}/readyz");
    eventually("readyz is 200", || {
        let (client, readyz) = (client.clone(), readyz.clone());
        async move { status_of(&client, &readyz).await == Some(200) }
    })
    .await;
    let res = client.get(format!("{base}/no/such/route")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    // The server API is mounted: an unsigned call is refused the documented way, and the
    // request id reaches its error body.
    let res = client
        .get(format!("{base}/v1/users/alice"))
        .header("x-request-id", "api-call-7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-request-id"], "api-call-7");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_credentials", "{body}");
    assert_eq!(body["error"]["request_id"], "api-call-7", "{body}");
    let grpc = server.wait_for_line("  grpc:");
    assert!(
        grpc.trim()
            .trim_start_matches("grpc:")
            .trim()
            .parse::<std::net::SocketAddr>()
            .is_ok(),
        "{grpc}"
    );
    assert!(server.terminate().success());

    let mut again = Server::start(dir.path(), &[("TERN_ADMIN_PASSWORD", "ignored-now-123")]);
    assert!(again.wait_for_line("  password:").contains("already created"));
    assert!(again.terminate().success());
}

/// A TCP forwarder to PostgreSQL that the test can cut and restore, standing in for a
/// database that goes away (the shared one cannot be stopped).
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    break;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Proxy { port, up, conns }
    }
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }
    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

// Several workers: the proxy's tasks must keep running while this test blocks on the
// server's stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_going_away_turns_readyz_503_and_back() {
    let Some(url) = tern_platform::store::testing::postgres_url() else {
        return;
    };
    // A database of our own on that server (named like the store suites' so their stale
    // cleanup drops it), reached through the proxy.
    let db = format!(
        "tern_test_{}_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        rand::random::<u32>()
    );
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {db}").as_str())
        .await
        .unwrap();
    // postgres://user@host:port/db → forward host:port, point tern at the proxy.
    let after_scheme = url.split_once("://").unwrap().1;
    let (userinfo, rest) = after_scheme.rsplit_once('@').unwrap();
    let hostport = rest.split(['/', '?']).next().unwrap();
    let proxy = Proxy::start(hostport.to_owned()).await;
    let proxied = format!("postgres://{userinfo}@127.0.0.1:{}/{db}", proxy.port);

    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let key = "4d".repeat(32);
    let mut server = Server::start(
        dir.path(),
        &[
            ("TERN_DATABASE_URL", proxied.as_str()),
            ("TERN_MASTER_KEY", key.as_str()),
        ],
    );
    server.wait_for_line("tern: ready");
    let readyz = format!("{}/readyz", server.base);
    let is = |want: u16| {
        let (client, readyz) = (client.clone(), readyz.clone());
        move || {
            let (client, readyz) = (client.clone(), readyz.clone());
            async move { status_of(&client, &readyz).await == Some(want) }
        }
    };
    eventually("ready with the database up", is(200)).await;
    proxy.cut();
    eventually("not ready once the database is gone", is(503)).await;
    assert_eq!(status_of(&client, &format!("{}/healthz", server.base)).await, Some(200));
    proxy.restore();
    eventually("ready again once the database is back", is(200)).await;
    assert!(server.terminate().success());
    let _ = sqlx::Executor::execute(
        &mut admin,
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str(),
    )
    .await;
}

#[test]
fn a_master_key_that_does_not_open_the_stored_secrets_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let out = common::tern_command(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    cli(&["tenant", "create", "Acme"]);
    cli(&["app", "create", "--tenant", "Acme", "--name", "chat"]);
    let out = common::tern_command(dir.path())
        .env("TERN_HTTP_ADDR", "127.0.0.1:0")
        .env("TERN_GRPC_ADDR", "127.0.0.1:0")
        .env("TERN_MASTER_KEY", "7e".repeat(32))
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap();
    assert!(last.starts_with("error: refusing to start"), "{stderr}");
    assert!(last.contains("TERN_MASTER_KEY"), "{last}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("tern: ready"));
}

/// A Pulsar URL that this binary cannot honour stops the start (one `error:` line, non-zero
/// exit, nothing listening) rather than run as if the setting were not there: a build
/// without the `pulsar` feature says how to build one; a build with it asks for Redis too
/// (presence and routing stay there).
#[test]
fn a_pulsar_url_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = common::tern_command(dir.path());
    cmd.arg("serve")
        .env("TERN_HTTP_ADDR", "127.0.0.1:0")
        .env("TERN_GRPC_ADDR", "127.0.0.1:0")
        .env("TERN_PULSAR_URL", "pulsar://127.0.0.1:6650");
    let out = assert_cmd::Command::from_std(cmd)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert!(out.status.code().is_some(), "it exits, it is not killed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {stderr:?}"));
    if cfg!(feature = "pulsar") {
        assert!(error.contains("TERN_PULSAR_URL needs TERN_REDIS_URL"), "{error}");
    } else {
        assert!(error.contains("built without Pulsar"), "{error}");
        assert!(error.contains("--features pulsar"), "{error}");
        assert!(error.contains("unset TERN_PULSAR_URL"), "{error}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("tern: listening"), "{stdout}");
}
