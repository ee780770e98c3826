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
    _dir: Option<tempfile::TempDir>,
    /// How it was started, so `kill_and_restart` starts it again the same way (same ports).
    start: Start,
    restarts: usize,
}

/// The command line of one `tern serve`: kept so the same server can be started again.
struct Start {
    tern: PathBuf,
    dir: PathBuf,
    database_url: Option<String>,
    env: Vec<(String, String)>,
    http: String,
    grpc: String,
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
    // It holds every message: only its owner reads it (the server warns otherwise).
    #[cfg(unix)]
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let app = prepare(tern, dir.path(), database_url, extra_env)?;
    serve(tern, Dir::Temp(dir), database_url, extra_env, app).await
}

/// Starts `tern serve` on a data dir that outlives the run (`store-grow`): the first run
/// migrates it and creates the app, whose key is saved in the dir for the next runs.
/// Returns the server and the app's key.
pub async fn spawn_kept(tern: &PathBuf, dir: &std::path::Path, database_url: Option<&str>) -> Result<Spawned> {
    std::fs::create_dir_all(dir)?;
    // It holds every message: only its owner reads it (the server warns otherwise).
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let app = match crate::grow::saved_app(dir) {
        Some((key, secret)) => {
            // A newer build may bring migrations.
            run_cli(tern, dir, database_url, &[], &["migrate"])?;
            App { key, secret }
        }
        None => {
            let app = prepare(tern, dir, database_url, &[])?;
            crate::grow::save_app(dir, &app.key, &app.secret)?;
            app
        }
    };
    serve(tern, Dir::Kept(dir.to_path_buf()), database_url, &[], app).await
}

enum Dir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

/// `nodes` servers as one Tern: one PostgreSQL database, one Redis (under a prefix of this
/// run's own), one master key, a node id each; the app is created once.
pub struct Cluster {
    pub nodes: Vec<Spawned>,
    pub redis_url: String,
    /// Whether the bus between the nodes runs on Pulsar.
    pub pulsar: bool,
}

impl Cluster {
    /// With `pulsar_url`, the bus runs on Pulsar under a topic prefix of this run's own.
    pub async fn spawn(
        tern: &PathBuf,
        database_url: &str,
        redis_url: &str,
        pulsar_url: Option<&str>,
        nodes: usize,
    ) -> Result<Cluster> {
        let prefix = format!("bench{}", std::process::id());
        let mut shared = vec![
            ("TERN_REDIS_URL", redis_url.to_owned()),
            ("TERN_REDIS_PREFIX", prefix.clone()),
            ("TERN_MASTER_KEY", "5e".repeat(32)),
        ];
        if let Some(url) = pulsar_url {
            shared.push(("TERN_PULSAR_URL", url.to_owned()));
            shared.push((
                "TERN_PULSAR_TOPIC_PREFIX",
                format!("persistent://public/default/{prefix}"),
            ));
        }
        let first_dir = tempfile::tempdir()?;
        let app = prepare(tern, first_dir.path(), Some(database_url), &shared)?;
        let mut spawned = Vec::new();
        for i in 0..nodes {
            let dir = tempfile::tempdir()?;
            let mut env = shared.to_vec();
            env.push(("TERN_NODE_ID", format!("bench-node-{i}")));
            spawned.push(serve(tern, Dir::Temp(dir), Some(database_url), &env, app.clone()).await?);
        }
        drop(first_dir);
        Ok(Cluster {
            nodes: spawned,
            redis_url: redis_url.to_owned(),
            pulsar: pulsar_url.is_some(),
        })
    }

    /// Every node's WebSocket address, comma-separated (fleets spread their processes over them).
    pub fn ws_urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.http.replace("http://", "ws://") + "/v1/connect")
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Resident memory of every node together, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.nodes.iter().filter_map(|n| rss_kib(n.pid())).sum()
    }

    /// Redis's count of each command since its start (INFO commandstats), summed over all
    /// commands and for PUBLISH alone.
    pub fn redis_commands(&self) -> Result<(u64, u64)> {
        let host = self
            .redis_url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        let (h, p) = host.rsplit_once(':').unwrap_or((host.as_str(), "6379"));
        let out = Command::new("redis-cli")
            .args(["-h", h, "-p", p, "INFO", "commandstats"])
            .output()
            .context("running redis-cli (Debian package redis-tools)")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let (mut all, mut publish) = (0, 0);
        for line in text.lines() {
            // cmdstat_publish:calls=12,usec=...
            let Some((name, rest)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else {
                continue;
            };
            if name == "info" {
                continue;
            }
            let calls: u64 = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            all += calls;
            if std::env::var_os("TERN_BENCH_REDIS_DETAIL").is_some() {
                eprintln!("redis {name} {calls}");
            }
            if name == "publish" || name == "spublish" {
                publish += calls;
            }
        }
        Ok((all, publish))
    }
}

#[derive(Clone)]
struct App {
    key: String,
    secret: String,
}

fn with_env(c: &mut Command, dir: &std::path::Path, database_url: Option<&str>, extra_env: &[(&str, String)]) {
    c.env("TERN_DATA_DIR", dir)
        .env("TERN_ADMIN_PASSWORD", "bench-admin-password")
        // The server's log filter: warnings unless the bench runs with TERN_LOG set.
        .env("TERN_LOG", std::env::var("TERN_LOG").unwrap_or_else(|_| "warn".into()));
    if let Some(url) = database_url {
        c.env("TERN_DATABASE_URL", url);
    }
    for (k, v) in extra_env {
        c.env(k, v);
    }
}

fn run_cli(
    tern: &PathBuf,
    dir: &std::path::Path,
    database_url: Option<&str>,
    extra_env: &[(&str, String)],
    args: &[&str],
) -> Result<Vec<u8>> {
    let mut c = Command::new(tern);
    c.args(args);
    with_env(&mut c, dir, database_url, extra_env);
    let out = c.output().with_context(|| format!("running {}", tern.display()))?;
    if !out.status.success() {
        bail!(
            "tern {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// Migrates the database and creates a tenant and an app with the CLI.
fn prepare(
    tern: &PathBuf,
    dir: &std::path::Path,
    database_url: Option<&str>,
    extra_env: &[(&str, String)],
) -> Result<App> {
    let run = |args: &[&str]| run_cli(tern, dir, database_url, extra_env, args);
    run(&["migrate"])?;
    let tenant = format!("bench-{}", std::process::id());
    run(&["tenant", "create", &tenant, "--json"])?;
    let out = run(&["app", "create", "--tenant", &tenant, "--name", "bench", "--json"])?;
    let v: serde_json::Value = serde_json::from_slice(&out).context("app create --json output")?;
    Ok(App {
        key: v["app_key"].as_str().context("app_key")?.to_owned(),
        secret: v["app_secret"].as_str().context("app_secret")?.to_owned(),
    })
}

async fn serve(
    tern: &std::path::Path,
    dir: Dir,
    database_url: Option<&str>,
    extra_env: &[(&str, String)],
    app: App,
) -> Result<Spawned> {
    let (path, dir) = match dir {
        Dir::Temp(t) => (t.path().to_path_buf(), Some(t)),
        Dir::Kept(p) => (p, None),
    };
    let start = Start {
        tern: tern.to_path_buf(),
        dir: path,
        database_url: database_url.map(str::to_owned),
        env: extra_env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
        http: format!("127.0.0.1:{}", free_port()?),
        grpc: format!("127.0.0.1:{}", free_port()?),
    };
    let child = start.spawn()?;
    let spawned = Spawned {
        child,
        http: format!("http://{}", start.http),
        app_key: app.key,
        app_secret: app.secret,
        _dir: dir,
        start,
        restarts: 0,
    };
    spawned.wait_ready(Duration::from_secs(30)).await?;
    Ok(spawned)
}

impl Start {
    fn spawn(&self) -> Result<Child> {
        let mut serve = Command::new(&self.tern);
        serve.arg("serve").stdout(Stdio::null()).stderr(Stdio::inherit());
        let env: Vec<(&str, String)> = self.env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        with_env(&mut serve, &self.dir, self.database_url.as_deref(), &env);
        serve
            .env("TERN_HTTP_ADDR", &self.http)
            .env("TERN_GRPC_ADDR", &self.grpc);
        Ok(serve.spawn()?)
    }
}

impl Spawned {
    async fn wait_ready(&self, patience: Duration) -> Result<()> {
        let deadline = Instant::now() + patience;
        loop {
            if let Ok(r) = reqwest::get(format!("{}/readyz", self.http)).await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("tern serve did not become ready in {} s", patience.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL (no drain, nothing flushed), then the same server again on the same ports,
    /// data directory and database; returns once it is ready. A cluster node comes back
    /// under a new node id (`<id>-r<n>`): the killed process's id stays leased in Redis for
    /// up to 10 s, and a node id belongs to one process at a time.
    pub async fn kill_and_restart(&mut self) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.restarts += 1;
        let restarts = self.restarts;
        for (k, v) in &mut self.start.env {
            if k == "TERN_NODE_ID" {
                let base = match v.rsplit_once("-r") {
                    Some((b, n)) if n.parse::<usize>().is_ok() => b.to_owned(),
                    _ => v.clone(),
                };
                *v = format!("{base}-r{restarts}");
            }
        }
        // The ports are free once the process is gone; a bind may still race for a moment.
        let mut tries = 0;
        loop {
            self.child = self.start.spawn()?;
            match self.wait_ready(Duration::from_secs(60)).await {
                Ok(()) => return Ok(()),
                Err(e) if tries >= 2 => return Err(e),
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    tries += 1;
                }
            }
        }
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

/// What a scenario runs against: one server, or several nodes as one Tern (`--nodes`).
#[allow(clippy::large_enum_variant)] // one value per run
pub enum Servers {
    One(Spawned),
    Many(Cluster),
}

impl Servers {
    pub async fn start(
        tern: &PathBuf,
        database_url: Option<&str>,
        redis_url: Option<&str>,
        pulsar_url: Option<&str>,
        nodes: usize,
    ) -> Result<Servers> {
        if nodes <= 1 {
            if pulsar_url.is_some() {
                bail!("--pulsar-url carries the bus between nodes: it needs --nodes above 1");
            }
            return Ok(Servers::One(spawn(tern, database_url, &[]).await?));
        }
        let (Some(db), Some(redis)) = (database_url, redis_url) else {
            bail!("--nodes above 1 needs --database-url (PostgreSQL) and --redis-url");
        };
        Ok(Servers::Many(Cluster::spawn(tern, db, redis, pulsar_url, nodes).await?))
    }

    fn first(&self) -> &Spawned {
        match self {
            Servers::One(s) => s,
            Servers::Many(c) => &c.nodes[0],
        }
    }

    /// The first node's HTTP address (the server API; any node would do).
    pub fn http(&self) -> &str {
        &self.first().http
    }

    pub fn app_key(&self) -> &str {
        &self.first().app_key
    }

    pub fn app_secret(&self) -> &str {
        &self.first().app_secret
    }

    pub fn ws_urls(&self) -> String {
        match self {
            Servers::One(s) => s.http.replace("http://", "ws://") + "/v1/connect",
            Servers::Many(c) => c.ws_urls(),
        }
    }

    pub fn rss_kib(&self) -> u64 {
        match self {
            Servers::One(s) => rss_kib(s.pid()).unwrap_or(0),
            Servers::Many(c) => c.rss_kib(),
        }
    }

    /// The OS pid of every node.
    pub fn pids(&self) -> Vec<u32> {
        match self {
            Servers::One(s) => vec![s.pid()],
            Servers::Many(c) => c.nodes.iter().map(Spawned::pid).collect(),
        }
    }

    /// CPU time (user + system) of every node together, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        match self {
            Servers::One(s) => crate::fleet::cpu_ticks(s.pid()).unwrap_or(0),
            Servers::Many(c) => c.nodes.iter().filter_map(|n| crate::fleet::cpu_ticks(n.pid())).sum(),
        }
    }

    pub fn nodes(&self) -> usize {
        match self {
            Servers::One(_) => 1,
            Servers::Many(c) => c.nodes.len(),
        }
    }

    /// With `TERN_BENCH_REDIS_MONITOR=1` and several nodes: Redis's `MONITOR` stream, counted
    /// until `finish`. Unlike `INFO commandstats` it tells the commands the nodes send from
    /// those that run inside their scripts. MONITOR slows Redis: count at a low rate.
    pub fn redis_monitor(&self) -> Option<Monitor> {
        match self {
            Servers::Many(c) if std::env::var("TERN_BENCH_REDIS_MONITOR").as_deref() == Ok("1") => {
                Monitor::start(&c.redis_url).ok()
            }
            _ => None,
        }
    }

    /// Batches the nodes' Pulsar producers have sent so far (`tern_bus_pulsar_batches_total`
    /// summed over every node's `/metrics`); None unless the bus runs on Pulsar.
    pub async fn pulsar_batches(&self) -> Option<u64> {
        let Servers::Many(c) = self else { return None };
        if !c.pulsar {
            return None;
        }
        let client = reqwest::Client::new();
        let mut total = 0;
        for n in &c.nodes {
            let text = client
                .get(format!("{}/metrics", n.http))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            total += text
                .lines()
                .filter(|l| l.starts_with("tern_bus_pulsar_batches_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64;
        }
        Some(total)
    }

    /// (all commands, PUBLISH) counted by Redis so far; None with one node (no Redis).
    pub fn redis_commands(&self) -> Option<(u64, u64)> {
        match self {
            Servers::One(_) => None,
            Servers::Many(c) => c.redis_commands().ok(),
        }
    }
}

/// `redis-cli MONITOR`, counting each command the nodes send (commands run by a script are
/// shown by MONITOR as from `lua` and left out).
pub struct Monitor {
    child: Child,
    counts: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>,
}

impl Monitor {
    fn start(redis_url: &str) -> Result<Self> {
        let host = redis_url.trim_start_matches("redis://").trim_end_matches('/');
        let (h, p) = host.rsplit_once(':').unwrap_or((host, "6379"));
        let mut child = Command::new("redis-cli")
            .args(["-h", h, "-p", p, "MONITOR"])
            .stdout(Stdio::piped())
            .spawn()
            .context("running redis-cli MONITOR")?;
        let out = child.stdout.take().context("monitor stdout")?;
        let counts = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
        let c = counts.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                // 1796547009.095458 [0 127.0.0.1:42674] "EVALSHA" "…" …
                let Some((client, rest)) = line.split_once("] ") else {
                    continue;
                };
                if client.ends_with(" lua") {
                    continue;
                }
                let name = rest.split('"').nth(1).unwrap_or("").to_ascii_uppercase();
                if name.is_empty() || name == "INFO" {
                    continue;
                }
                *c.lock().unwrap_or_else(|p| p.into_inner()).entry(name).or_insert(0) += 1;
            }
        });
        // Give MONITOR a moment to attach before the measured part starts.
        std::thread::sleep(Duration::from_millis(200));
        Ok(Self { child, counts })
    }

    /// Stops counting; each command's count.
    pub fn finish(mut self) -> std::collections::BTreeMap<String, u64> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader thread may still hold lines read before the kill; they are few.
        std::thread::sleep(Duration::from_millis(100));
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One line: the commands the nodes sent per message, by command.
pub fn monitor_line(counts: &std::collections::BTreeMap<String, u64>, sent: u64) -> String {
    let all: u64 = counts.values().sum();
    let per = |n: u64| n as f64 / sent.max(1) as f64;
    let by: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={:.2}", per(*v))).collect();
    format!(
        "redis-monitor sent_by_nodes={all} messages={sent} per_message={:.2} ({})",
        per(all),
        by.join(" ")
    )
}
