//! Helpers shared by the binary's integration tests: run `tern` with a clean environment in
//! a temporary directory, and start `tern serve` as a real process on a random port.
#![allow(dead_code, clippy::unwrap_used)]

pub mod browser;
pub mod smtp;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Every setting, so a developer's own `TERN_*` variables do not leak into a test.
pub const SETTINGS: &[&str] = &[
    "TERN_HTTP_ADDR",
    "TERN_GRPC_ADDR",
    "TERN_DATA_DIR",
    "TERN_DATABASE_URL",
    "TERN_REDIS_URL",
    "TERN_REDIS_PREFIX",
    "TERN_PULSAR_URL",
    "TERN_ADMIN_EMAIL",
    "TERN_ADMIN_PASSWORD",
    "TERN_MASTER_KEY",
    "TERN_LOG_FORMAT",
    "TERN_LOG",
    "TERN_NODE_ID",
    "TERN_WEBHOOK_ALLOW_PRIVATE",
    "TERN_HEARTBEAT_SECONDS",
    "TERN_MAX_CONNECTIONS",
    "TERN_ROOM_FLUSH_MS",
    "TERN_MAX_HTTP_CONNECTIONS",
    "TERN_HTTP_HEADER_TIMEOUT_SECONDS",
    "TERN_HTTP_IDLE_TIMEOUT_SECONDS",
    "TERN_HTTP2_KEEPALIVE_SECONDS",
    "TERN_METRICS_ADDR",
    "TERN_MAX_APP_RATE_LIMIT",
    "TERN_FILES_URL",
    "TERN_TLS_CERT",
    "TERN_TLS_KEY",
    "TERN_SMTP_URL",
    "TERN_SMTP_FROM",
    "TERN_PUBLIC_URL",
    "TERN_SIGNUP",
    "TERN_ALERT_INTERVAL_SECONDS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// A database nobody listens on: connecting fails at once.
pub const UNREACHABLE_PG: &str = "postgres://postgres@127.0.0.1:1/none";

pub fn tern_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    for s in SETTINGS {
        cmd.env_remove(s);
    }
    cmd.current_dir(dir).env("TERN_DATA_DIR", dir.join("data"));
    cmd
}

/// Runs `tern ARGS… --json` (a CLI command) with these extra variables and parses what it
/// prints; fails the test with its stderr if it fails.
/// A tenant `acme` and an app `demo` made with the CLI; the app's key and secret.
pub fn cli_app(dir: &Path) -> (String, String) {
    cli_json(dir, &[], &["tenant", "create", "acme", "--json"]);
    let app = cli_json(
        dir,
        &[],
        &["app", "create", "--tenant", "acme", "--name", "demo", "--json"],
    );
    (
        app["app_key"].as_str().unwrap().to_owned(),
        app["app_secret"].as_str().unwrap().to_owned(),
    )
}

/// The gRPC address (`host:port`) `tern serve` printed in its banner.
pub fn printed_grpc_addr(server: &mut Server) -> String {
    let line = server.wait_for_line("  grpc:");
    let addr = line.trim().trim_start_matches("grpc:").trim();
    addr.split_whitespace().next().unwrap().to_owned()
}

pub fn cli_json(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> serde_json::Value {
    let mut cmd = tern_command(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `tern serve` running as a child process; killed when dropped.
pub struct Server {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    pub base: String,
    /// Stdout lines seen so far.
    pub seen: Vec<String>,
}

impl Server {
    /// Starts `tern serve` on a random port with these extra variables and waits for the
    /// address line of the banner.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = tern_command(dir);
        cmd.arg("serve");
        Self::spawn(cmd, env)
    }

    /// `tern serve ARGS…` (e.g. `--roles gateway`) on a random port with these variables.
    pub fn start_with_args(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = tern_command(dir);
        cmd.arg("serve").args(args);
        Self::spawn(cmd, env)
    }

    /// `start`, with `prelude` run by `sh` first in the same process (`ulimit -n 64`,
    /// `umask 000`): the limits a real deployment may have.
    pub fn start_after(dir: &Path, env: &[(&str, &str)], prelude: &str) -> Server {
        let mut cmd = Command::new("sh");
        for s in SETTINGS {
            cmd.env_remove(s);
        }
        cmd.current_dir(dir)
            .env("TERN_DATA_DIR", dir.join("data"))
            .arg("-c")
            .arg(format!("{prelude}; exec \"$0\" serve"))
            .arg(env!("CARGO_BIN_EXE_tern"));
        Self::spawn(cmd, env)
    }

    fn spawn(mut cmd: Command, env: &[(&str, &str)]) -> Server {
        cmd.env("TERN_HTTP_ADDR", "127.0.0.1:0")
            .env("TERN_GRPC_ADDR", "127.0.0.1:0")
            .env("TERN_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child: Some(child),
            lines,
            base: String::new(),
            seen: Vec::new(),
        };
        server.wait_for_line("  grpc:");
        let http = server.wait_for_line("  http:");
        server.base = http.trim().trim_start_matches("http:").trim().to_owned();
        server
    }

    /// The next stdout line starting with `prefix` (earlier lines are kept in `seen`).
    pub fn wait_for_line(&mut self, prefix: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.starts_with(prefix)) {
            return l.clone();
        }
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("tern serve never printed {prefix:?}; saw {:?}", self.seen));
            self.seen.push(line.clone());
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL: the process dies at once, as a crashed node does (no drain, no lease
    /// given up).
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        let _ = child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut child = self.child.take().unwrap();
        child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `check` until it returns true or the (generous) deadline passes. Only reaching
/// the state is asserted; how long it took is not.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if check().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn status_of(client: &reqwest::Client, url: &str) -> Option<u16> {
    client.get(url).send().await.ok().map(|r| r.status().as_u16())
}
