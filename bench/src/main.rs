//! Tern's load generator. Each scenario starts a real `tern serve` (or targets one you run)
//! and reports what a user of the service would measure. Results and the commands that
//! reproduce them are recorded in docs/benchmarks.md.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tern_sdk::server::ServerClient;

mod api_send;
mod server;

#[derive(Parser)]
#[command(name = "tern-bench", about = "Benchmarks for Tern")]
struct Cli {
    /// The tern binary to start (build it first: cargo build --release).
    #[arg(long, global = true, default_value = "target/release/tern")]
    tern: PathBuf,
    /// Database for the started server; default the embedded SQLite in a temp dir.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Signed direct messages through the REST API from N keep-alive clients.
    ApiSend {
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Paced total rate (sends/s); omit for maximum throughput.
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long, default_value_t = 500)]
        pairs: usize,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.scenario {
        Scenario::ApiSend { clients, seconds, rate, pairs } => {
            let s = server::spawn(&cli.tern, cli.database_url.as_deref(), &[]).await?;
            let client = ServerClient::new(&s.http, &s.app_key, &s.app_secret);
            let store = cli.database_url.as_deref().map_or("sqlite", |u| u.split(':').next().unwrap_or("?"));
            let r = api_send::run(client, api_send::Options { clients, duration: Duration::from_secs(seconds), rate, pairs }).await?;
            println!(
                "api-send store={store} clients={clients} rate={} sent={} errors={} elapsed={:.1}s sends/s={:.0} p50={:.2}ms p99={:.2}ms max={:.2}ms server_rss={}KiB",
                rate.map_or("max".to_string(), |r| format!("{r:.0}")),
                r.sent,
                r.errors,
                r.elapsed.as_secs_f64(),
                r.sent as f64 / r.elapsed.as_secs_f64(),
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                server::rss_kib(s.pid()).unwrap_or(0)
            );
        }
    }
    Ok(())
}
