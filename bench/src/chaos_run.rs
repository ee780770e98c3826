//! The `chaos` scenario: the chaos workload (`tern_bench::chaos`) against servers this run
//! starts, while it breaks them on a schedule, then the checker's counts.
//!
//! - `--store sqlite`: one `tern serve` on SQLite, SIGKILLed and restarted;
//! - `--store cluster`: three nodes (every role each, so each is a gateway node) over the
//!   PostgreSQL of `--database-url` (in a database this run creates and drops) and the
//!   Redis of `--redis-url` (under a key prefix of the run's own): one node SIGKILLed and
//!   restarted at a time, and PostgreSQL and Redis "restarted" by cutting the nodes' path
//!   to them for 2 s through a TCP proxy (`LinkProxy`): every connection to the service is
//!   closed at once and new ones are refused, which is what the nodes see when it restarts.
//!   The services themselves are not restarted: they are shared with other work on the
//!   machine. What this does not produce: a service that comes back having lost what it
//!   held (an empty Redis, a PostgreSQL rolled back to its last WAL flush).
//!
//! Both also cut one device's connection in the middle of a frame and make devices drop
//! their connection and reconnect.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tern_bench::chaos::{LinkProxy, Load, LoadConfig, Report};

use crate::server;

pub struct Options {
    pub tern: PathBuf,
    /// PostgreSQL and Redis for `cluster` (the run makes a database of its own there).
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub cluster: bool,
    pub users: usize,
    pub seconds: u64,
    pub fault_every: Duration,
    pub send_every: Duration,
}

/// A database of this run's own on the given PostgreSQL server, dropped at the end.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    async fn create(admin_url: &str) -> Result<Database> {
        use sqlx::Connection;
        let name = format!("tern_chaos_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .context("connecting to --database-url")?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut admin)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let (base, _) = admin_url.rsplit_once('/').context("--database-url ends in /DATABASE")?;
        Ok(Database {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    async fn drop_it(self) {
        use sqlx::Connection;
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .execute(&mut admin)
                .await;
        }
    }
}

/// Runs the scenario; prints one line per fault and the report.
pub async fn run(o: Options) -> Result<Report> {
    let run_id = format!("chaos{}", std::process::id());
    let mut db = None;
    let mut links = None;
    let mut servers = if o.cluster {
        let (Some(database_url), Some(redis_url)) = (o.database_url.as_deref(), o.redis_url.as_deref()) else {
            bail!("--store cluster needs --database-url (PostgreSQL) and --redis-url");
        };
        let d = Database::create(database_url).await?;
        // Every node reaches PostgreSQL and Redis through a proxy this run can cut.
        let (pg, pg_url) = LinkProxy::for_url(&d.url).await?;
        let (redis, redis_url) = LinkProxy::for_url(redis_url).await?;
        let c = server::Cluster::spawn(&o.tern, &pg_url, &redis_url, None, 3).await?;
        db = Some(d);
        links = Some((pg, redis));
        c.nodes
    } else {
        vec![server::spawn(&o.tern, None, &[]).await?]
    };
    let config = LoadConfig {
        http: servers[0].http.clone(),
        ws_urls: servers
            .iter()
            .map(|s| s.http.replace("http://", "ws://") + "/v1/connect")
            .collect(),
        app_key: servers[0].app_key.clone(),
        app_secret: servers[0].app_secret.clone(),
        users: o.users,
        send_every: o.send_every,
        run_id,
        cut_proxy: true,
    };
    let load = Load::start(config).await?;
    let start = Instant::now();
    let end = start + Duration::from_secs(o.seconds);
    let mut faults = Vec::<String>::new();
    let mut k = 0usize;
    while Instant::now() + o.fault_every < end {
        tokio::time::sleep(o.fault_every).await;
        let t = start.elapsed().as_secs_f64();
        let what = if o.cluster {
            match k % 5 {
                0 => {
                    let n = (k / 5) % servers.len();
                    servers[n].kill_and_restart().await?;
                    format!("SIGKILL node {n}, restarted")
                }
                1 => {
                    if let Some((pg, _)) = &links {
                        pg.set_cut(true);
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        pg.set_cut(false);
                    }
                    "PostgreSQL link cut for 2 s (every node's connections closed)".into()
                }
                2 => {
                    load.cut_mid_frame();
                    "cut a connection mid-frame".into()
                }
                3 => {
                    if let Some((_, redis)) = &links {
                        redis.set_cut(true);
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        redis.set_cut(false);
                    }
                    "Redis link cut for 2 s (every node's connections closed)".into()
                }
                _ => {
                    for d in 0..o.users {
                        load.reconnect_device(d * 3);
                    }
                    format!("{} devices reconnected", o.users)
                }
            }
        } else {
            match k % 3 {
                0 => {
                    servers[0].kill_and_restart().await?;
                    "SIGKILL the server, restarted".into()
                }
                1 => {
                    load.cut_mid_frame();
                    "cut a connection mid-frame".into()
                }
                _ => {
                    for d in 0..o.users {
                        load.reconnect_device(d * 3);
                    }
                    format!("{} devices reconnected", o.users)
                }
            }
        };
        eprintln!("chaos t={t:.1}s acked_so_far={} {what}", load.acked_so_far());
        faults.push(what);
        k += 1;
    }
    tokio::time::sleep_until(end.into()).await;
    let cuts = load.cuts_done();
    let report = load.finish(Duration::from_secs(90)).await?;
    println!(
        "chaos store={} users={} seconds={} faults={} (kills={} pg_cuts={} redis_cuts={} mid_frame_cuts={}) {}",
        if o.cluster { "postgres+redis, 3 nodes" } else { "sqlite" },
        o.users,
        o.seconds,
        faults.len(),
        faults.iter().filter(|f| f.starts_with("SIGKILL")).count(),
        links.as_ref().map_or(0, |(pg, _)| pg.cuts()),
        links.as_ref().map_or(0, |(_, redis)| redis.cuts()),
        cuts,
        report.line()
    );
    for e in &report.examples {
        println!("  {e}");
    }
    drop(servers);
    drop(links);
    if let Some(d) = db {
        d.drop_it().await;
    }
    Ok(report)
}
