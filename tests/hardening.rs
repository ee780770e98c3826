//! `tern serve` against an attacker's habits: idle sockets under a small file-handle limit,
//! more connections than the cap, invented HTTP methods, and a permissive umask. Each test
//! runs the real binary; none asserts how long anything took, only what the client sees.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{eventually, status_of, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An upper bound only so a regression fails instead of hanging the suite; with the
/// timeouts these tests set (1 s), sockets close long before it.
const HANG_GUARD: Duration = Duration::from_secs(90);

fn addr_of(line: &str, label: &str) -> String {
    line.trim()
        .trim_start_matches(label)
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned()
}

/// Reads until the server closes the socket (EOF or reset); what was read before.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_are_closed_and_healthz_answers_under_a_small_file_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_after(
        dir.path(),
        &[
            ("TERN_HTTP_HEADER_TIMEOUT_SECONDS", "1"),
            ("TERN_HTTP_IDLE_TIMEOUT_SECONDS", "1"),
        ],
        "ulimit -n 64",
    );
    server.wait_for_line("tern: ready");
    let http = addr_of(&server.base, "");
    let grpc = addr_of(&server.wait_for_line("  grpc:"), "grpc:");

    // Far more idle sockets than the process has file handles: the server runs out, must
    // not spin, and must close the idle ones to serve anyone again.
    let mut idle = Vec::new();
    for _ in 0..150 {
        if let Ok(s) = TcpStream::connect(&http).await {
            idle.push(s);
        }
    }
    for _ in 0..10 {
        if let Ok(s) = TcpStream::connect(&grpc).await {
            idle.push(s);
        }
    }
    let client = reqwest::Client::new();
    let healthz = format!("{}/healthz", server.base);
    eventually("healthz answers while idle sockets are held", || {
        let (client, healthz) = (client.clone(), healthz.clone());
        async move { status_of(&client, &healthz).await == Some(200) }
    })
    .await;
    let closed = tokio::time::timeout(HANG_GUARD, async {
        for s in &mut idle {
            read_until_closed(s).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "idle sockets were left open");

    // A keep-alive connection is answered, then closed once idle.
    let mut keep = TcpStream::connect(&http).await.unwrap();
    keep.write_all(b"GET /healthz HTTP/1.1\r\nHost: tern\r\n\r\n")
        .await
        .unwrap();
    let answer = tokio::time::timeout(HANG_GUARD, read_until_closed(&mut keep))
        .await
        .expect("an idle keep-alive connection is closed");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{answer:?}"
    );
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_closed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        dir.path(),
        &[
            ("TERN_MAX_HTTP_CONNECTIONS", "3"),
            ("TERN_HTTP_HEADER_TIMEOUT_SECONDS", "600"),
        ],
    );
    server.wait_for_line("tern: ready");
    let http = addr_of(&server.base, "");
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(&http).await.unwrap();
        // A request in progress (headers not finished) keeps its slot taken.
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    // The fourth is accepted and closed without an answer (not left waiting, not spun on).
    let client = reqwest::Client::new();
    let healthz = format!("{}/healthz", server.base);
    eventually("a connection over the cap is refused", || {
        let http = http.clone();
        async move {
            let Ok(mut s) = TcpStream::connect(&http).await else {
                return false;
            };
            let request = b"GET /healthz HTTP/1.1\r\nHost: tern\r\nConnection: close\r\n\r\n";
            let _ = s.write_all(request).await;
            read_until_closed(&mut s).await.is_empty()
        }
    })
    .await;
    drop(held);
    eventually("served again once the slots are free", || {
        let (client, healthz) = (client.clone(), healthz.clone());
        async move { status_of(&client, &healthz).await == Some(200) }
    })
    .await;
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_have_their_own_listener_and_invented_methods_do_not_grow_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[("TERN_METRICS_ADDR", "127.0.0.1:0")]);
    let metrics_url = format!(
        "http://{}/metrics",
        addr_of(&server.wait_for_line("  metrics:"), "metrics:")
    );
    server.wait_for_line("tern: ready");
    let client = reqwest::Client::new();
    let public = client.get(format!("{}/metrics", server.base)).send().await.unwrap();
    assert_eq!(public.status(), 404, "/metrics left the public port");

    let invent = |i: usize| {
        let name = format!("XJ3K{i}{}", "Z".repeat(i % 300));
        let client = client.clone();
        let url = format!("{}/v1/users/alice", server.base);
        async move {
            let method = reqwest::Method::from_bytes(name.as_bytes()).unwrap();
            let res = client.request(method, url).send().await.unwrap();
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap();
            (status, body)
        }
    };
    let (status, body) = invent(0).await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    let series = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();
    let before = client.get(&metrics_url).send().await.unwrap().text().await.unwrap();
    for i in 1..300 {
        assert_eq!(invent(i).await.0, 405);
    }
    let after = client.get(&metrics_url).send().await.unwrap().text().await.unwrap();
    assert!(!after.contains("XJ3K"), "an invented method became a label");
    // Only counts changed: the same series, give or take the metrics requests themselves.
    let grown = series(&after).saturating_sub(series(&before));
    assert!(grown <= 20, "{grown} new series after 300 invented methods");
    assert!(server.terminate().success());
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_data_dir_and_its_files_are_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_after(dir.path(), &[], "umask 000");
    server.wait_for_line("tern: ready");
    let data = dir.path().join("data");
    assert_eq!(mode(&data), 0o700);
    for file in ["tern.db", "tern.db-wal", "tern.db-shm", "master.key"] {
        let path = data.join(file);
        assert!(path.exists(), "{file} missing");
        assert_eq!(mode(&path), 0o600, "{file}");
    }
    assert!(server.terminate().success());
}

#[test]
fn an_existing_data_dir_open_to_others_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = common::tern_command(dir.path()).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("can be read by other users"), "{stderr}");
    // The operator's choice is left alone; the database inside is private all the same.
    assert_eq!(mode(&data), 0o755);
    assert_eq!(mode(&data.join("tern.db")), 0o600);
}
