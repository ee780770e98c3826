//! The `idle`, `chat` and `group-fanout` scenarios against a peer XMPP server (ejabberd,
//! run by `bench/peers/ejabberd/run.sh`), with `--peer ejabberd`. The same fleets, pacing,
//! histograms and worker processes as for Tern; only the wire protocol differs (XMPP over
//! RFC 7395 WebSocket, `xmpp.rs`). The peer is not started here: the bench measures the
//! running node whose OS pid is in `--peer-pid-file`, and prints lines in the same shape
//! as Tern's, with `server=ejabberd`, so `bench/peers/compare.sh` reads both alike.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;

use crate::fleet::{cpu_ticks, Fleet, Server};
use crate::lean::{now_us, LeanFleet, LeanJob, XmppRoom};
use crate::server::rss_kib;

/// A running peer server.
pub struct Peer {
    pub name: String,
    /// Its RFC 7395 WebSocket, `ws://127.0.0.1:5480/ws`.
    pub url: String,
    /// The XMPP domain users log in to.
    pub domain: String,
    /// The OS pid of the server process (ejabberd's `beam.smp`).
    pub pid: u32,
}

impl Peer {
    pub fn new(name: &str, url: &str, domain: &str, pid_file: &PathBuf) -> Result<Self> {
        let pid = std::fs::read_to_string(pid_file)
            .with_context(|| {
                format!(
                    "reading {} (start the peer with bench/peers/ejabberd/run.sh start)",
                    pid_file.display()
                )
            })?
            .trim()
            .parse()
            .context("the pid file holds no pid")?;
        Ok(Self {
            name: name.to_owned(),
            url: url.to_owned(),
            domain: domain.to_owned(),
            pid,
        })
    }

    fn server(&self) -> Server<'_> {
        Server::Xmpp {
            ws_url: &self.url,
            domain: &self.domain,
        }
    }

    fn rss(&self) -> u64 {
        rss_kib(self.pid).unwrap_or(0)
    }

    fn ticks(&self) -> u64 {
        cpu_ticks(self.pid).unwrap_or(0)
    }
}

/// Server CPU seconds per 1,000 deliveries, from clock ticks (100 a second).
pub fn cpu_per_1000(ticks: u64, delivered: u64) -> f64 {
    ticks as f64 / 100.0 / delivered.max(1) as f64 * 1000.0
}

/// `idle`: memory per authenticated, idle connection.
pub async fn idle(p: &Peer, users: usize, processes: usize, seconds: u64) -> Result<()> {
    // A node just started is still settling (its RSS moves by MBs): wait until two
    // readings 2 s apart differ by less than 512 KiB, for at most 30 s.
    let mut before = p.rss();
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = p.rss();
        let settled = now.abs_diff(before) < 512;
        before = now;
        if settled {
            break;
        }
    }
    let (fleet, ready, failed) = Fleet::start(p.server(), users, processes, 0.0, seconds).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = p.rss();
    let t0 = p.ticks();
    let (r, t1) = fleet.run(|| p.ticks()).await?;
    let cpu = t1.saturating_sub(t0) as f64 / 100.0 / seconds as f64 * 100.0;
    println!(
        "idle server={} users={users} connected={ready} failed={failed} server_rss_before={before}KiB after={after}KiB per_connection={:.2}KiB idle_cpu={cpu:.1}% (over {seconds}s; {} clients kept)",
        p.name,
        after.saturating_sub(before) as f64 / ready.max(1) as f64,
        r.connected
    );
    Ok(())
}

/// `chat`: users exchanging 1:1 messages at `rate`; latency from send to receipt.
pub async fn chat(p: &Peer, users: usize, rate: f64, processes: usize, seconds: u64) -> Result<()> {
    let (fleet, ready, failed) = Fleet::start(p.server(), users, processes, rate, seconds).await?;
    let t0 = p.ticks();
    let (r, t1) = fleet.run(|| p.ticks()).await?;
    let ticks = t1.saturating_sub(t0);
    let h = &r.latency_us;
    println!(
        "chat server={} users={users} connected={ready} failed={failed} target_rate={rate:.0}/s sent={} send_errors={} delivered={} delivered/s={:.0} p50={:.2}ms p99={:.2}ms max={:.2}ms server_rss={}KiB server_cpu={:.2}s cpu_s_per_1000_delivered={:.3}",
        p.name,
        r.sent,
        r.send_errors,
        r.received,
        r.received as f64 / seconds as f64,
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
        p.rss(),
        ticks as f64 / 100.0,
        cpu_per_1000(ticks, r.received),
    );
    Ok(())
}

/// `group-fanout`: `members` clients in one MUC room; a separate sender, also an occupant,
/// sends `messages` groupchat messages at `rate`; per message, the time from the send to
/// the receipt by the last member.
pub async fn group(
    p: &Peer,
    members: usize,
    processes: usize,
    messages: usize,
    rate: f64,
    drain: Duration,
) -> Result<()> {
    let room = format!("bench{}@conference.{}", std::process::id(), p.domain);
    // The sender joins first: it creates the room and unlocks it as an instant room.
    let mut sender = crate::xmpp::login(&crate::xmpp::Login {
        url: &p.url,
        domain: &p.domain,
        user: "gsender",
    })
    .await
    .context("the group sender's login")?;
    crate::xmpp::join_room(&mut sender, &room, "gsender")
        .await
        .context("creating the room")?;
    let (writer, mut reader) = crate::xmpp::split(sender);
    // The sender's own copies are read and dropped (its socket must not back up).
    let drainer = tokio::spawn(async move { while let Some(Ok(_)) = futures::StreamExt::next(&mut reader).await {} });
    let fleet = LeanFleet::start(
        &LeanJob {
            ws_url: p.url.clone(),
            app_key: String::new(),
            app_secret: String::new(),
            prefix: "g".into(),
            first: 0,
            count: 0,
            room: None,
            per_seq: true,
            xmpp: Some(XmppRoom {
                domain: p.domain.clone(),
                room: room.clone(),
            }),
        },
        members,
        processes,
    )
    .await?;
    let (connected, failed) = (fleet.connected, fleet.failed);
    eprintln!("group-fanout: {connected} members joined {room} ({failed} failed); sending");

    let t0 = p.ticks();
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let start = Instant::now();
    let mut sent_at = Vec::with_capacity(messages);
    let mut send_errors = 0;
    for k in 0..messages {
        tokio::time::sleep_until((start + interval * k as u32).into()).await;
        let t = now_us();
        if crate::xmpp::send(&writer, crate::xmpp::group_message(&room, t, k)).await {
            sent_at.push((k as i64, t));
        } else {
            send_errors += 1;
        }
    }
    tokio::time::sleep(drain).await;
    let t1 = p.ticks();
    let report = fleet.report().await?;
    drainer.abort();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut first_hist = hist.clone();
    let (mut incomplete, mut deliveries) = (0, 0u64);
    for (k, t) in &sent_at {
        let a = report.per_seq.get(k).copied().unwrap_or_default();
        deliveries += a.count;
        if a.count < report.connected as u64 {
            incomplete += 1;
        }
        if a.count > 0 {
            hist.record(a.last_us.saturating_sub(*t).max(1))?;
            first_hist.record(a.first_us.saturating_sub(*t).max(1))?;
        }
    }
    let ticks = t1.saturating_sub(t0);
    println!(
        "group-fanout server={} members={members} connected={connected} failed={failed} rate={rate}/s sent={} send_errors={send_errors} deliveries={deliveries}/{} incomplete_messages={incomplete} closed_by_server={} last_member_p50={:.1}ms p99={:.1}ms max={:.1}ms first_member_p50={:.1}ms p99={:.1}ms server_rss={}KiB server_cpu_total={:.1}s cpu_s_per_1000_delivered={:.3}",
        p.name,
        sent_at.len(),
        sent_at.len() as u64 * report.connected as u64,
        report.closed,
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0,
        first_hist.value_at_quantile(0.5) as f64 / 1000.0,
        first_hist.value_at_quantile(0.99) as f64 / 1000.0,
        p.rss(),
        ticks as f64 / 100.0,
        cpu_per_1000(ticks, deliveries),
    );
    Ok(())
}
