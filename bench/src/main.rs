//! Tern's load generator. Each scenario starts a real `tern serve` (or targets one you run)
//! and reports what a user of the service would measure. Results and the commands that
//! reproduce them are recorded in docs/benchmarks.md.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tern_sdk::server::ServerClient;

mod api_send;
mod chaos_run;
mod deflate;
mod fanout;
mod files;
mod fleet;
mod grow;
mod lean;
mod peer;
mod push;
mod server;
mod soak;
mod webhooks;
mod xmpp;

#[derive(Parser)]
#[command(name = "tern-bench", about = "Benchmarks for Tern")]
struct Cli {
    /// The tern binary to start (build it first: cargo build --release).
    #[arg(long, global = true, default_value = "target/release/tern")]
    tern: PathBuf,
    /// Database for the started server; default the embedded SQLite in a temp dir.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Nodes started as one Tern (chat, idle, room-broadcast); above 1 needs a PostgreSQL
    /// `--database-url` and `--redis-url`. Client processes spread over the nodes round-robin.
    #[arg(long, global = true, default_value_t = 1)]
    nodes: usize,
    /// Redis for `--nodes` above 1; each run uses a key prefix of its own.
    #[arg(long, global = true)]
    redis_url: Option<String>,
    /// With `--nodes` above 1: the bus between the nodes on Pulsar at this URL (a `tern`
    /// built with `--features pulsar`; e.g. the test broker, `cargo run --release -p
    /// tern-platform --features pulsar --example pulsar_test_broker`); each run uses a topic
    /// prefix of its own. Redis still keeps presence and routing.
    #[arg(long, global = true)]
    pulsar_url: Option<String>,
    /// Drive a peer server instead of Tern (`idle`, `chat`, `group-fanout` only): `ejabberd`,
    /// already running (bench/peers/ejabberd/run.sh start). See bench/peers/README.md.
    #[arg(long, global = true, value_parser = ["ejabberd"])]
    peer: Option<String>,
    /// The peer's XMPP WebSocket (RFC 7395).
    #[arg(long, global = true, default_value = "ws://127.0.0.1:5480/ws")]
    peer_url: String,
    /// The peer's XMPP domain.
    #[arg(long, global = true, default_value = "localhost")]
    peer_domain: String,
    /// File holding the peer server's OS pid (its memory and CPU are read from /proc).
    #[arg(long, global = true, default_value = "/tmp/tern-peer-ejabberd/ejabberd.pid")]
    peer_pid_file: PathBuf,
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
    /// N authenticated, heartbeating WebSocket connections: server memory and CPU per connection.
    Idle {
        #[arg(long, default_value_t = 15_000)]
        users: usize,
        /// Client processes (each may hold at most ~19,000 sockets).
        #[arg(long, default_value_t = 3)]
        processes: usize,
        /// How long to stay idle while measuring CPU.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Start the server with `TERN_WS_DEFLATE=on` and connect clients that agree to
        /// `permessage-deflate`: what a compressed idle connection costs.
        #[arg(long)]
        deflate: bool,
    },
    /// N online users exchanging direct messages at R/s over WebSockets: delivered/s and
    /// end-to-end latency from send to receipt by the other client.
    Chat {
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        #[arg(long, default_value_t = 2_000.0)]
        rate: f64,
        #[arg(long, default_value_t = 3)]
        processes: usize,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// Fills a kept data dir (or PostgreSQL database) with `--messages` stored direct
    /// messages over `--fill-users` users, then runs `chat` against it: is a send slower
    /// on a grown store? The fill is resumed, never repeated: run again with a higher
    /// `--messages` to grow further.
    StoreGrow {
        /// Directory kept between runs: the SQLite file (unless --database-url) and the
        /// bench app's key.
        #[arg(long)]
        data_dir: PathBuf,
        /// Messages the app holds before the chat starts (up to 10,000,000 and more).
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        /// Users the stored messages are spread over; the chat's users are the first ones.
        #[arg(long, default_value_t = 10_000)]
        fill_users: usize,
        /// Direct conversations per user, on average.
        #[arg(long, default_value_t = 20)]
        conversations_per_user: usize,
        /// Only fill; no chat.
        #[arg(long)]
        fill_only: bool,
        #[arg(long, default_value_t = 2_000)]
        users: usize,
        #[arg(long, default_value_t = 2_000.0)]
        rate: f64,
        #[arg(long, default_value_t = 3)]
        processes: usize,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// After-event delivery: signed sends through REST while the worker POSTs each
    /// `message.sent` to a local receiver; events/s and the time to drain the outbox.
    WebhookEvents {
        #[arg(long, default_value_t = 32)]
        clients: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Paced total send rate (sends/s); omit for maximum throughput.
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long, default_value_t = 500)]
        pairs: usize,
        /// Longest wait for the last event after sending stops.
        #[arg(long, default_value_t = 120)]
        drain_seconds: u64,
    },
    /// Send latency p50/p99 with a before-send hook answering in 1 ms, against the same
    /// server without the hook (paced, below saturation).
    BeforeSend {
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Seconds for each of the two runs.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        #[arg(long, default_value_t = 500)]
        pairs: usize,
        /// How long the hook takes to answer, in ms.
        #[arg(long, default_value_t = 1)]
        hook_ms: u64,
    },
    /// A group of N online members: latency from a send to the group until its receipt by
    /// the last member (p50/p99/max over the messages), and whether every copy arrived.
    GroupFanout {
        #[arg(long, default_value_t = 10_000)]
        members: usize,
        /// Members online (the first ones; default all): with 1, what is left is the
        /// cost of the store write and of reading and routing the member list.
        #[arg(long)]
        online: Option<usize>,
        /// Client processes (each may hold at most ~19,000 sockets).
        #[arg(long, default_value_t = 3)]
        processes: usize,
        #[arg(long, default_value_t = 60)]
        messages: usize,
        /// Messages per second sent to the group.
        #[arg(long, default_value_t = 2.0)]
        rate: f64,
        /// Wait after the last send before collecting the counts.
        #[arg(long, default_value_t = 5)]
        drain_seconds: u64,
    },
    /// N members of one room connected over several processes; senders send to the room
    /// at R messages/s: deliveries per second and deliveries lost.
    RoomBroadcast {
        #[arg(long, default_value_t = 15_000)]
        members: usize,
        #[arg(long, default_value_t = 3)]
        processes: usize,
        #[arg(long, default_value_t = 4)]
        senders: usize,
        /// Messages per second sent to the room, all senders together.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 5)]
        drain_seconds: u64,
    },
    /// Mixed load (direct, group and room messages, receipts, reconnects) while the run
    /// SIGKILLs the server (or, with `--store cluster`, one of 3 nodes, and cuts the
    /// nodes' path to PostgreSQL and to Redis through a proxy) and cuts a connection
    /// mid-frame; then every device syncs and the checker counts acknowledged messages
    /// lost, duplicates shown and seq order broken.
    /// Exits non-zero if any is above zero.
    Chaos {
        /// `sqlite` (one server) or `cluster` (3 nodes over `--database-url` and `--redis-url`).
        #[arg(long, default_value = "sqlite")]
        store: String,
        #[arg(long, default_value_t = 12)]
        users: usize,
        #[arg(long, default_value_t = 120)]
        seconds: u64,
        /// Seconds between two faults.
        #[arg(long, default_value_t = 6)]
        fault_every: u64,
        /// Milliseconds between two sends of one sender.
        #[arg(long, default_value_t = 50)]
        send_every_ms: u64,
    },
    /// Internal: one client process of a fleet (started by `idle` and `chat`).
    #[command(hide = true)]
    Worker { job: String },
    /// Upload and download throughput through the embedded endpoint (files in the data
    /// dir), as ratios of a plain file copy of the same size on the same file system.
    Files {
        /// Size of the file, MiB (at most the 100 MB default limit: 95).
        #[arg(long, default_value_t = 64)]
        mib: usize,
        /// Runs; the best of each is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Pushes per second from the APNs and FCM adapters to the local provider double (each
    /// over one HTTP/2 connection): no server, no store, the send path alone.
    Push {
        /// Pushes per provider.
        #[arg(long, default_value_t = 50_000)]
        pushes: usize,
        /// HTTP/2 streams in flight on the connection.
        #[arg(long, default_value_t = 500)]
        concurrency: usize,
    },
    /// Steady chat for a long time while the server's RSS, open files and CPU are sampled:
    /// writes `<out>/soak.csv` and `<out>/soak.png` and says whether memory and files stayed
    /// flat after the warm-up.
    Soak {
        #[arg(long, default_value_t = 2_000)]
        users: usize,
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        #[arg(long, default_value_t = 2)]
        processes: usize,
        #[arg(long, default_value_t = 60)]
        minutes: u64,
        /// Seconds between two looks at the server.
        #[arg(long, default_value_t = 10)]
        sample_seconds: u64,
        /// Samples before this many minutes are drawn but left out of the trend.
        #[arg(long, default_value_t = 5.0)]
        warm_up_minutes: f64,
        #[arg(long, default_value = "soak-out")]
        out: PathBuf,
    },
    /// Internal: one process of lean clients (started by `group-fanout` and `room-broadcast`).
    #[command(hide = true)]
    LeanWorker { job: String },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Scenario::LeanWorker { job } = &cli.scenario {
        // One thread per lean worker process: its clients only read and count, and a
        // single thread never wakes another, so the workers leave more of the cores to
        // the server under test.
        let job = serde_json::from_str(job)?;
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(lean::worker(job));
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    if let Scenario::Worker { job } = &cli.scenario {
        return fleet::worker(serde_json::from_str(job)?).await;
    }
    if let Some(name) = &cli.peer {
        let p = peer::Peer::new(name, &cli.peer_url, &cli.peer_domain, &cli.peer_pid_file)?;
        return match cli.scenario {
            Scenario::Idle {
                users,
                processes,
                seconds,
                ..
            } => peer::idle(&p, users, processes, seconds).await,
            Scenario::Chat {
                users,
                rate,
                processes,
                seconds,
            } => peer::chat(&p, users, rate, processes, seconds).await,
            Scenario::GroupFanout {
                members,
                processes,
                messages,
                rate,
                drain_seconds,
                ..
            } => {
                peer::group(
                    &p,
                    members,
                    processes,
                    messages,
                    rate,
                    Duration::from_secs(drain_seconds),
                )
                .await
            }
            _ => anyhow::bail!("--peer drives only idle, chat and group-fanout"),
        };
    }
    // The scenarios that run against one Tern or several nodes as one (`--nodes`).
    let start_servers = || {
        server::Servers::start(
            &cli.tern,
            cli.database_url.as_deref(),
            cli.redis_url.as_deref(),
            cli.pulsar_url.as_deref(),
            cli.nodes,
        )
    };
    match cli.scenario {
        Scenario::Worker { .. } | Scenario::LeanWorker { .. } => {}
        Scenario::Chaos {
            store,
            users,
            seconds,
            fault_every,
            send_every_ms,
        } => {
            let cluster = match store.as_str() {
                "sqlite" => false,
                "cluster" => true,
                other => anyhow::bail!("--store is sqlite or cluster, not {other:?}"),
            };
            let report = chaos_run::run(chaos_run::Options {
                tern: cli.tern.clone(),
                database_url: cli.database_url.clone(),
                redis_url: cli.redis_url.clone(),
                cluster,
                users,
                seconds,
                fault_every: Duration::from_secs(fault_every),
                send_every: Duration::from_millis(send_every_ms),
            })
            .await?;
            if !report.clean() {
                anyhow::bail!("the checker found acknowledged messages lost, duplicated or out of order");
            }
        }
        Scenario::GroupFanout {
            members,
            online,
            processes,
            messages,
            rate,
            drain_seconds,
        } => {
            let s = server::spawn(&cli.tern, cli.database_url.as_deref(), &[]).await?;
            let client = ServerClient::new(&s.http, &s.app_key, &s.app_secret);
            let options = fanout::GroupOptions {
                ws_url: s.http.replace("http://", "ws://") + "/v1/connect",
                members,
                online: online.unwrap_or(members),
                processes,
                messages,
                rate,
                drain: Duration::from_secs(drain_seconds),
            };
            let t0 = fleet::cpu_ticks(s.pid()).unwrap_or(0);
            let r = fanout::group(&client, &s.app_key, &s.app_secret, options).await?;
            let t1 = fleet::cpu_ticks(s.pid()).unwrap_or(0);
            let h = &r.last_member_us;
            println!(
                "group-fanout server=tern store={} members={members} online={} connected={} failed={} rate={rate}/s sent={} send_errors={} deliveries={}/{} incomplete_messages={} closed_by_server={} last_member_p50={:.1}ms p99={:.1}ms max={:.1}ms first_member_p50={:.1}ms p99={:.1}ms server_rss={}KiB server_cpu_total={:.1}s cpu_s_per_1000_delivered={:.3}",
                store_name(cli.database_url.as_deref()),
                online.unwrap_or(members),
                r.connected,
                r.failed,
                r.sent,
                r.send_errors,
                r.deliveries,
                r.expected,
                r.incomplete,
                r.closed,
                h.value_at_quantile(0.5) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.max() as f64 / 1000.0,
                r.first_member_us.value_at_quantile(0.5) as f64 / 1000.0,
                r.first_member_us.value_at_quantile(0.99) as f64 / 1000.0,
                server::rss_kib(s.pid()).unwrap_or(0),
                (t1 - t0) as f64 / 100.0,
                peer::cpu_per_1000(t1.saturating_sub(t0), r.deliveries),
            );
        }
        Scenario::RoomBroadcast {
            members,
            processes,
            senders,
            rate,
            seconds,
            drain_seconds,
        } => {
            let s = start_servers().await?;
            let client = ServerClient::new(s.http(), s.app_key(), s.app_secret());
            let options = fanout::RoomOptions {
                ws_url: s.ws_urls(),
                members,
                processes,
                senders,
                rate,
                seconds,
                drain: Duration::from_secs(drain_seconds),
            };
            let redis_before = s.redis_commands();
            let r = fanout::room(&client, s.app_key(), s.app_secret(), options).await?;
            println!("{}", redis_line(redis_before, s.redis_commands(), r.sent, s.nodes()));
            println!(
                "room-broadcast store={} nodes={} members={members} connected={} failed={} rate={rate}/s sent={} send_errors={} delivered={}/{} lost={} closed_by_server={} span={:.2}s deliveries/s={:.0} latency_ms_p50={} p99={} max={} server_rss={}KiB",
                store_name(cli.database_url.as_deref()),
                s.nodes(),
                r.connected,
                r.failed,
                r.sent,
                r.send_errors,
                r.delivered,
                r.expected,
                r.expected.saturating_sub(r.delivered),
                r.closed,
                r.span.as_secs_f64(),
                r.delivered as f64 / r.span.as_secs_f64().max(0.001),
                fmt_ms(r.latency_ms.0),
                fmt_ms(r.latency_ms.1),
                fmt_ms(r.latency_ms.2),
                s.rss_kib(),
            );
        }
        Scenario::Idle {
            users,
            processes,
            seconds,
            deflate,
        } => {
            let env = [("TERN_WS_DEFLATE", if deflate { "on" } else { "off" }.to_owned())];
            let s = server::spawn(&cli.tern, cli.database_url.as_deref(), &env).await?;
            let ws = s.http.replace("http://", "ws://") + "/v1/connect";
            tokio::time::sleep(Duration::from_secs(1)).await;
            let before = server::rss_kib(s.pid()).unwrap_or(0);
            let (fleet, ready, failed) = fleet::Fleet::start(
                fleet::Server::Tern {
                    ws_url: &ws,
                    app_key: &s.app_key,
                    app_secret: &s.app_secret,
                    deflate,
                },
                users,
                processes,
                0.0,
                seconds,
            )
            .await?;
            tokio::time::sleep(Duration::from_secs(3)).await;
            let after = server::rss_kib(s.pid()).unwrap_or(0);
            let t0 = fleet::cpu_ticks(s.pid()).unwrap_or(0);
            let (r, t1) = fleet.run(|| fleet::cpu_ticks(s.pid()).unwrap_or(0)).await?;
            let cpu = (t1 - t0) as f64 / 100.0 / seconds as f64 * 100.0;
            println!(
                "idle server=tern deflate={deflate} users={users} connected={ready} failed={failed} server_rss_before={before}KiB after={after}KiB per_connection={:.2}KiB idle_cpu={cpu:.1}% (over {seconds}s incl. heartbeats; {} clients kept)",
                (after.saturating_sub(before)) as f64 / ready.max(1) as f64,
                r.connected
            );
        }
        Scenario::Chat {
            users,
            rate,
            processes,
            seconds,
        } => {
            let s = start_servers().await?;
            chat(&s, users, rate, processes, seconds).await?;
        }
        Scenario::Soak {
            users,
            rate,
            processes,
            minutes,
            sample_seconds,
            warm_up_minutes,
            out,
        } => {
            let s = start_servers().await?;
            std::fs::create_dir_all(&out)?;
            let sampler = soak::Sampler::start(s.pids(), Duration::from_secs(sample_seconds.max(1)));
            chat(&s, users, rate, processes, minutes * 60).await?;
            let samples = sampler.finish().await;
            let (csv, png) = soak::paths(&out);
            soak::write_csv(&csv, &samples)?;
            let title = format!(
                "tern soak: {users} users, {rate:.0} msg/s, {minutes} min, {}",
                store_name(cli.database_url.as_deref())
            );
            let drawn = soak::write_png(&png, &samples, &title)?;
            let warm = warm_up_minutes * 60.0;
            let line = |name: &str, t: Option<soak::Trend>| match t {
                Some(t) => format!(
                    "{name}_first={:.0} {name}_last={:.0} {name}_max={:.0} {name}_per_hour={:+.1}",
                    t.first, t.last, t.max, t.per_hour
                ),
                None => format!("{name}=too_few_samples"),
            };
            println!(
                "soak samples={} after_warm_up={warm_up_minutes}min {} {} csv={} png={}",
                samples.len(),
                line("rss_kib", soak::trend(&samples, warm, |x| x.rss_kib as f64)),
                line("open_files", soak::trend(&samples, warm, |x| x.open_files as f64)),
                csv.display(),
                if drawn {
                    png.display().to_string()
                } else {
                    "skipped (no font)".into()
                },
            );
        }
        Scenario::StoreGrow {
            data_dir,
            messages,
            fill_users,
            conversations_per_user,
            fill_only,
            users,
            rate,
            processes,
            seconds,
        } => {
            let db = cli.database_url.as_deref();
            // Made (migrated, app created) by a short-lived server, then filled while no
            // server runs, then served for the chat.
            let app_key = {
                let s = server::spawn_kept(&cli.tern, &data_dir, db).await?;
                s.app_key.clone()
            };
            let options = grow::FillOptions {
                messages,
                users: fill_users.max(users),
                conversations_per_user,
            };
            grow::fill(&data_dir, db, &app_key, &options).await?;
            if !fill_only {
                let s = server::Servers::One(server::spawn_kept(&cli.tern, &data_dir, db).await?);
                println!("store-grow messages={messages} fill_users={}", options.users);
                chat(&s, users, rate, processes, seconds).await?;
            }
        }
        Scenario::ApiSend {
            clients,
            seconds,
            rate,
            pairs,
        } => {
            let s = server::spawn(&cli.tern, cli.database_url.as_deref(), &[]).await?;
            let client = ServerClient::new(&s.http, &s.app_key, &s.app_secret);
            let store = cli
                .database_url
                .as_deref()
                .map_or("sqlite", |u| u.split(':').next().unwrap_or("?"));
            let r = api_send::run(
                client,
                api_send::Options {
                    clients,
                    duration: Duration::from_secs(seconds),
                    rate,
                    pairs,
                    tag: String::new(),
                },
            )
            .await?;
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
        Scenario::Files { mib, runs } => {
            let s = server::spawn(&cli.tern, cli.database_url.as_deref(), &[]).await?;
            let client = ServerClient::new(&s.http, &s.app_key, &s.app_secret);
            let r = files::run(client, files::Options { mib, runs }).await?;
            println!(
                "files store={} size={}MiB runs={runs} copy={:.0}MB/s upload_one_patch={:.0}MB/s ({:.2} of copy) upload_sdk_4MiB_pieces={:.0}MB/s ({:.2} of copy) download={:.0}MB/s ({:.2} of copy)",
                store_name(cli.database_url.as_deref()),
                r.bytes / (1024 * 1024),
                r.copy,
                r.upload_one_patch,
                r.upload_one_patch / r.copy,
                r.upload_sdk,
                r.upload_sdk / r.copy,
                r.download,
                r.download / r.copy,
            );
        }
        Scenario::Push { pushes, concurrency } => {
            for r in push::run(push::Options { pushes, concurrency }).await? {
                println!(
                    "push provider={} pushes={} sent={} failed={} concurrency={concurrency} connections={} elapsed={:.2}s pushes/s={:.0} p50={:.2}ms p99={:.2}ms",
                    r.provider,
                    pushes,
                    r.sent,
                    r.failed,
                    r.connections,
                    r.elapsed.as_secs_f64(),
                    r.sent as f64 / r.elapsed.as_secs_f64(),
                    r.p50_ms,
                    r.p99_ms,
                );
            }
        }
        Scenario::WebhookEvents {
            clients,
            seconds,
            rate,
            pairs,
            drain_seconds,
        } => {
            let env = [("TERN_WEBHOOK_ALLOW_PRIVATE", "1".to_owned())];
            let s = server::spawn(&cli.tern, cli.database_url.as_deref(), &env).await?;
            let client = ServerClient::new(&s.http, &s.app_key, &s.app_secret);
            let options = api_send::Options {
                clients,
                duration: Duration::from_secs(seconds),
                rate,
                pairs,
                tag: String::new(),
            };
            let r = webhooks::events(client, options, Duration::from_secs(drain_seconds)).await?;
            println!(
                "webhook-events store={} clients={clients} rate={} sent={} delivered={} events/s={:.0} drain_after_sending={:.2}s server_rss={}KiB",
                store_name(cli.database_url.as_deref()),
                rate.map_or("max".to_string(), |r| format!("{r:.0}")),
                r.sent,
                r.delivered,
                r.events_per_s,
                r.drain.as_secs_f64(),
                server::rss_kib(s.pid()).unwrap_or(0)
            );
        }
        Scenario::BeforeSend {
            clients,
            seconds,
            rate,
            pairs,
            hook_ms,
        } => {
            let env = [("TERN_WEBHOOK_ALLOW_PRIVATE", "1".to_owned())];
            let s = server::spawn(&cli.tern, cli.database_url.as_deref(), &env).await?;
            let client = ServerClient::new(&s.http, &s.app_key, &s.app_secret);
            let options = |tag: &str| api_send::Options {
                clients,
                duration: Duration::from_secs(seconds),
                rate: Some(rate),
                pairs,
                tag: tag.to_owned(),
            };
            let (without, with) = webhooks::before_send(client, options, Duration::from_millis(hook_ms)).await?;
            for (name, r) in [("without_hook", &without), ("with_hook", &with)] {
                println!(
                    "before-send store={} {name} hook_answers_in={hook_ms}ms clients={clients} rate={rate:.0} sent={} errors={} p50={:.2}ms p99={:.2}ms max={:.2}ms",
                    store_name(cli.database_url.as_deref()),
                    r.sent,
                    r.errors,
                    r.p50_ms,
                    r.p99_ms,
                    r.max_ms
                );
            }
            println!(
                "before-send cost: p50 +{:.2}ms p99 +{:.2}ms",
                with.p50_ms - without.p50_ms,
                with.p99_ms - without.p99_ms
            );
        }
    }
    Ok(())
}

fn store_name(database_url: Option<&str>) -> &str {
    database_url.map_or("sqlite", |u| u.split(':').next().unwrap_or("?"))
}

/// A latency in whole milliseconds, or `-` when nothing was measured.
fn fmt_ms(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".to_owned(), |m| m.to_string())
}

/// Redis commands during the measured part of a multi-node run, per message sent.
fn redis_line(before: Option<(u64, u64)>, after: Option<(u64, u64)>, sent: u64, nodes: usize) -> String {
    match (before, after) {
        (Some((a0, p0)), Some((a1, p1))) => {
            // The INFO call that read `before` is itself counted: one per reading.
            let all = a1.saturating_sub(a0).saturating_sub(1);
            let publish = p1.saturating_sub(p0);
            format!(
                "redis nodes={nodes} commands={all} publish={publish} messages={sent} commands/message={:.2} publish/message={:.2}",
                all as f64 / sent.max(1) as f64,
                publish as f64 / sent.max(1) as f64
            )
        }
        _ => format!("redis nodes={nodes}: not counted (one node, no Redis)"),
    }
}

/// The `chat` scenario against servers already started.
async fn chat(s: &server::Servers, users: usize, rate: f64, processes: usize, seconds: u64) -> Result<()> {
    let ws_urls = s.ws_urls();
    let server = fleet::Server::Tern {
        ws_url: &ws_urls,
        app_key: s.app_key(),
        app_secret: s.app_secret(),
        deflate: false,
    };
    let (fleet, ready, failed) = fleet::Fleet::start(server, users, processes, rate, seconds).await?;
    let monitor = s.redis_monitor();
    let redis_before = s.redis_commands();
    let t0 = s.cpu_ticks();
    let batches_before = s.pulsar_batches().await;
    let (r, (redis_after, counts, t1)) = fleet
        .run(|| (s.redis_commands(), monitor.map(server::Monitor::finish), s.cpu_ticks()))
        .await?;
    let ticks = t1.saturating_sub(t0);
    println!("{}", redis_line(redis_before, redis_after, r.sent, s.nodes()));
    if let (Some(b0), Some(b1)) = (batches_before, s.pulsar_batches().await) {
        let batches = b1.saturating_sub(b0);
        println!(
            "pulsar nodes={} batches={batches} messages={} batches/message={:.3} (the nodes' tern_bus_pulsar_batches_total; probes included)",
            s.nodes(),
            r.sent,
            batches as f64 / r.sent.max(1) as f64
        );
    }
    if let Some(counts) = counts {
        println!("{}", server::monitor_line(&counts, r.sent));
    }
    for line in r.per_second_lines("chat") {
        println!("{line}");
    }
    let h = &r.latency_us;
    println!(
        "chat server=tern nodes={} users={users} connected={ready} failed={failed} target_rate={rate:.0}/s sent={} send_errors={} delivered={} delivered/s={:.0} p50={:.2}ms p99={:.2}ms max={:.2}ms server_rss={}KiB server_cpu={:.2}s cpu_s_per_1000_delivered={:.3}",
        s.nodes(),
        r.sent,
        r.send_errors,
        r.received,
        r.received as f64 / seconds as f64,
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
        s.rss_kib(),
        ticks as f64 / 100.0,
        peer::cpu_per_1000(ticks, r.received),
    );
    Ok(())
}
