//! Nothing acknowledged is lost, nothing is shown twice, seq order holds, while the real
//! binary is broken under load: the chaos workload of the bench (`tern_bench::chaos`:
//! users with two devices each sending direct, group and room messages and read receipts,
//! one device behind a proxy that cuts its connection mid-frame) runs for a few seconds
//! while the server (SQLite) is SIGKILLed and started again, or, on PostgreSQL + Redis, one
//! node of two is SIGKILLed and the nodes' path to PostgreSQL and then to Redis is cut
//! through a TCP proxy (`tern_bench::chaos::LinkProxy`). Then every device reconnects,
//! syncs, and the checker counts.
//!
//! The shared PostgreSQL and Redis are never restarted (other tests use them at the same
//! time): cutting every connection to them is what the nodes see of a restart.
//!
//! The second test needs `TERN_TEST_DATABASE_URL` and `TERN_TEST_REDIS_URL` (skipped
//! without them, a failure with `TERN_TEST_REQUIRE_SERVICES=1`).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{cli_json, Server};
use tern_bench::chaos::{LinkProxy, Load, LoadConfig, Report};

const MASTER_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn app(dir: &Path, env: &[(&str, &str)]) -> (String, String) {
    cli_json(dir, env, &["tenant", "create", "Acme", "--json"]);
    let app = cli_json(
        dir,
        env,
        &["app", "create", "--tenant", "Acme", "--name", "chat", "--json"],
    );
    (
        app["app_key"].as_str().unwrap().to_owned(),
        app["app_secret"].as_str().unwrap().to_owned(),
    )
}

fn config(http: &str, ws: Vec<String>, key: &str, secret: &str) -> LoadConfig {
    LoadConfig {
        http: http.to_owned(),
        ws_urls: ws,
        app_key: key.to_owned(),
        app_secret: secret.to_owned(),
        users: 5,
        send_every: Duration::from_millis(40),
        run_id: "chaos".into(),
        cut_proxy: true,
    }
}

fn assert_clean(report: &Report, cuts: u64) {
    eprintln!("chaos: {} mid_frame_cuts={cuts}", report.line());
    assert!(report.clean(), "{}\n{:#?}", report.line(), report.examples);
    // The run did what it says: every kind of message was accepted across the faults,
    // devices lost their connections and came back, and a cut landed mid-frame.
    assert!(
        report.acked_direct > 20 && report.acked_group > 20 && report.acked_room > 5,
        "{}",
        report.line()
    );
    assert!(report.reconnects >= report.devices as u64, "{}", report.line());
    assert!(report.receipts_seen > 0, "{}", report.line());
    assert!(cuts >= 1, "no connection was cut mid-frame");
}

fn ws(base: &str) -> String {
    format!("{}/v1/connect", base.replace("http://", "ws://"))
}

/// `tern serve` at `addr` (so it can come back at the same address after a kill), quiet
/// but for warnings, once it is ready.
fn serve(dir: &Path, addr: &str, env: &[(&str, &str)]) -> Server {
    let mut env = env.to_vec();
    env.push(("TERN_HTTP_ADDR", addr));
    env.push(("TERN_LOG", "warn"));
    let mut s = Server::start(dir, &env);
    s.wait_for_line("tern: ready");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_server_killed_twice_under_load_loses_nothing() {
    let run = tempfile::tempdir().unwrap();
    let d = run.path();
    let (key, secret) = app(d, &[]);
    let addr = free_addr();
    let mut server = serve(d, &addr, &[]);
    let load = Load::start(config(&server.base, vec![ws(&server.base)], &key, &secret))
        .await
        .unwrap();
    for round in 0..2 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        load.cut_mid_frame();
        tokio::time::sleep(Duration::from_secs(1)).await;
        eprintln!("round {round}: SIGKILL after {} acked sends", load.acked_so_far());
        server.kill();
        tokio::time::sleep(Duration::from_millis(500)).await;
        server = serve(d, &addr, &[]);
        load.reconnect_device(round * 3 + 2);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cuts = load.cuts_done();
    let report = load.finish(Duration::from_secs(30)).await.unwrap();
    assert_clean(&report, cuts);
    drop(server);
}

fn redis_url() -> Option<String> {
    match std::env::var("TERN_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let message = "skipped: TERN_TEST_REDIS_URL not set";
            if std::env::var("TERN_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{message} (and TERN_TEST_REQUIRE_SERVICES=1)");
            }
            println!("{message}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_killed_and_postgres_and_redis_cut_under_load_lose_nothing() {
    let Some(database_url) = tern_platform::store::testing::postgres_fresh_url().await else {
        return;
    };
    let Some(redis_url) = redis_url() else {
        return;
    };
    // The nodes reach PostgreSQL and Redis only through proxies this test cuts.
    let (pg, pg_url) = LinkProxy::for_url(&database_url).await.unwrap();
    let (redis, redis_url) = LinkProxy::for_url(&redis_url).await.unwrap();
    let prefix = format!("chaos{}_{}", std::process::id(), rand::random::<u32>());
    let run = tempfile::tempdir().unwrap();
    let env = |node: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("TERN_DATABASE_URL", pg_url.clone()),
            ("TERN_REDIS_URL", redis_url.clone()),
            ("TERN_REDIS_PREFIX", prefix.clone()),
            ("TERN_MASTER_KEY", MASTER_KEY.to_owned()),
            ("TERN_NODE_ID", node.to_owned()),
        ]
    };
    let node = |name: &'static str, id: &'static str, addr: &str| {
        let dir = run.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let owned = env(id);
        let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        serve(&dir, addr, &pairs)
    };
    let addrs = [free_addr(), free_addr()];
    let mut a = node("a", "node-a", &addrs[0]);
    let b = node("b", "node-b", &addrs[1]);
    let (key, secret) = {
        let owned = env("cli");
        let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app(run.path(), &pairs)
    };
    // Node B keeps the server API; devices spread over both (the proxied one on node A).
    let load = Load::start(config(&b.base, vec![ws(&a.base), ws(&b.base)], &key, &secret))
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_secs(3)).await;
    load.cut_mid_frame();
    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!("SIGKILL node A after {} acked sends", load.acked_so_far());
    a.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Back at the same address under a new node id: the killed process's id stays leased
    // in Redis for up to 10 s, and an id belongs to one process at a time.
    a = node("a", "node-a2", &addrs[0]);

    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("PostgreSQL cut for 2 s after {} acked sends", load.acked_so_far());
    pg.set_cut(true);
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.set_cut(false);

    tokio::time::sleep(Duration::from_secs(2)).await;
    load.cut_mid_frame();
    eprintln!("Redis cut for 2 s after {} acked sends", load.acked_so_far());
    redis.set_cut(true);
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.set_cut(false);

    tokio::time::sleep(Duration::from_secs(3)).await;
    let cuts = load.cuts_done();
    let report = load.finish(Duration::from_secs(30)).await.unwrap();
    assert_clean(&report, cuts);
    drop((a, b));
}
