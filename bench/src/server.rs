//! Runs a real `tern serve` as a child process for a scenario: its own data dir, ports and
//! database, and an app created with the CLI. The benchmark then talks to it over sockets
//! like any client would.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub struct Spawned {
    child: Child,
    pub http: String,
    pub app_key: String,
    pub app_secret: String,
    _dir: tempfile::TempDir,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `tern serve` with `database_url` (None: the embedded SQLite default).
pub async fn spawn(tern: &PathBuf, database_url: Option<&str>, extra_env: &[(&str, String)]) -> Result<Spawned> {
    let dir = tempfile::tempdir()?;
    let http = format!("127.0.0.1:{}", free_port()?);
    let grpc = format!("127.0.0.1:{}", free_port()?);
    let env = |c: &mut Command| {
        c.env("TERN_DATA_DIR", dir.path())
            .env("TERN_HTTP_ADDR", &http)
            .env("TERN_GRPC_ADDR", &grpc)
            .env("TERN_ADMIN_PASSWORD", "bench-admin-password")
            // The server's log filter: warnings unless the bench runs with TERN_LOG set.
            .env("TERN_LOG", std::env::var("TERN_LOG").unwrap_or_else(|_| "warn".into()));
        if let Some(url) = database_url {
            c.env("TERN_DATABASE_URL", url);
        }
        for (k, v) in extra_env {
            c.env(k, v);
        }
    };
    let mut migrate = Command::new(tern);
    migrate.arg("migrate");
    env(&mut migrate);
    let out = migrate
        .output()
        .with_context(|| format!("running {}", tern.display()))?;
    if !out.status.success() {
        bail!("tern migrate failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let tenant = format!("bench-{}", std::process::id());
    let mut t = Command::new(tern);
    t.args(["tenant", "create", &tenant, "--json"]);
    env(&mut t);
    let out = t.output()?;
    if !out.status.success() {
        bail!("tern tenant create failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut a = Command::new(tern);
    a.args(["app", "create", "--tenant", &tenant, "--name", "bench", "--json"]);
    env(&mut a);
    let out = a.output()?;
    if !out.status.success() {
        bail!("tern app create failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("app create --json output")?;
    let app_key = v["app_key"].as_str().context("app_key")?.to_owned();
    let app_secret = v["app_secret"].as_str().context("app_secret")?.to_owned();

    let mut serve = Command::new(tern);
    serve.arg("serve").stdout(Stdio::null()).stderr(Stdio::inherit());
    env(&mut serve);
    let child = serve.spawn()?;
    let spawned = Spawned {
        child,
        http: format!("http://{http}"),
        app_key,
        app_secret,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/readyz", spawned.http)).await {
            if r.status().is_success() {
                return Ok(spawned);
            }
        }
        if Instant::now() > deadline {
            bail!("tern serve did not become ready in 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resident set size of a process, from /proc, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}
