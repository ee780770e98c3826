//! The fan-out scenarios: one message to many connected receivers.
//!
//! - `group-fanout`: a group of N members, all online (lean clients over several
//!   processes); messages are sent to the group through the server API at a modest rate,
//!   and for each one the time from the send to its receipt by the *last* member is
//!   measured (every member's copy counts; the sender's own devices are members too).
//! - `room-broadcast`: N lean clients joined to one room; a few senders send to the room
//!   through the server API; reported as deliveries per second from the first send to
//!   the last receipt, and the deliveries that never arrived.
//!
//! Sends go through `POST /v1/messages` (signed, durable before the answer), so the
//! latency includes the write to the store.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tern_sdk::server::ServerClient;

use crate::lean::{now_us, LeanFleet, LeanJob};

/// Creates users `{prefix}0..{prefix}{n}`, 100 per request, a few requests at a time.
async fn create_users(client: &ServerClient, prefix: &str, n: usize) -> Result<()> {
    let ids: Vec<usize> = (0..n).collect();
    let mut pending = tokio::task::JoinSet::new();
    for chunk in ids.chunks(100) {
        let users: Vec<Value> = chunk.iter().map(|i| json!({"id": format!("{prefix}{i}")})).collect();
        let client = client.clone();
        pending.spawn(async move { client.upsert_users(&users).await });
        while pending.len() >= 8 {
            if let Some(r) = pending.join_next().await {
                r?.context("creating users")?;
            }
        }
    }
    while let Some(r) = pending.join_next().await {
        r?.context("creating users")?;
    }
    Ok(())
}

pub struct GroupOptions {
    pub ws_url: String,
    pub members: usize,
    /// Members connected (the first ones); the others are offline.
    pub online: usize,
    pub processes: usize,
    pub messages: usize,
    pub rate: f64,
    pub drain: Duration,
}

pub struct GroupResult {
    pub connected: usize,
    pub failed: usize,
    pub sent: usize,
    pub send_errors: usize,
    pub deliveries: u64,
    pub expected: u64,
    /// Send to the last member's receipt, per message, in microseconds.
    pub last_member_us: Histogram<u64>,
    /// Send to the first member's receipt (the store write and the routing, before the
    /// fan-out to the sessions), per message, in microseconds.
    pub first_member_us: Histogram<u64>,
    /// Messages not received by every connected member.
    pub incomplete: usize,
    pub closed: u64,
}

pub async fn group(client: &ServerClient, app_key: &str, app_secret: &str, o: GroupOptions) -> Result<GroupResult> {
    let limit = o.members.max(2_000);
    client
        .update_app_settings(&json!({"group_member_limit": limit}))
        .await
        .context("raising group_member_limit")?;
    create_users(client, "g", o.members).await?;
    let all: Vec<String> = (0..o.members).map(|i| format!("g{i}")).collect();
    let first: Vec<&str> = all.iter().skip(1).take(499).map(String::as_str).collect();
    client
        .create_group("bench", "bench group", "g0", &first)
        .await
        .context("creating the group")?;
    for chunk in all[first.len() + 1..].chunks(500) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        client
            .add_group_members("bench", &chunk)
            .await
            .context("adding members")?;
    }
    let fleet = LeanFleet::start(
        &LeanJob {
            ws_url: o.ws_url.clone(),
            app_key: app_key.to_owned(),
            app_secret: app_secret.to_owned(),
            prefix: "g".into(),
            first: 0,
            count: 0,
            room: None,
            per_seq: true,
            xmpp: None,
        },
        o.online.min(o.members),
        o.processes,
    )
    .await?;
    let (connected, failed) = (fleet.connected, fleet.failed);
    eprintln!("group-fanout: {connected} members connected ({failed} failed); sending");

    let interval = Duration::from_secs_f64(1.0 / o.rate.max(0.01));
    let start = Instant::now();
    let mut sending = tokio::task::JoinSet::new();
    for k in 0..o.messages {
        tokio::time::sleep_until((start + interval * k as u32).into()).await;
        let client = client.clone();
        sending.spawn(async move {
            let t = now_us();
            let body = json!({"from": "g0", "to": {"group": "bench"}, "client_msg_id": format!("fan-{k}"),
                              "type": "custom", "content": {"data": {"k": k}}});
            client.send(&body).await.map(|a| (a.seq, t))
        });
    }
    let mut sent_at = Vec::new();
    let mut send_errors = 0;
    while let Some(r) = sending.join_next().await {
        match r? {
            Ok(s) => sent_at.push(s),
            Err(e) => {
                if send_errors == 0 {
                    eprintln!("group-fanout: a send failed: {e}");
                }
                send_errors += 1;
            }
        }
    }
    tokio::time::sleep(o.drain).await;
    let report = fleet.report().await?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut first_hist = hist.clone();
    let mut incomplete = 0;
    for (seq, t) in &sent_at {
        let a = report.per_seq.get(seq).copied().unwrap_or_default();
        if a.count < report.connected as u64 {
            incomplete += 1;
        }
        if a.count > 0 {
            hist.record(a.last_us.saturating_sub(*t).max(1))?;
            first_hist.record(a.first_us.saturating_sub(*t).max(1))?;
        }
    }
    let deliveries = sent_at
        .iter()
        .map(|(seq, _)| report.per_seq.get(seq).map_or(0, |a| a.count))
        .sum();
    Ok(GroupResult {
        connected,
        failed,
        sent: sent_at.len(),
        send_errors,
        deliveries,
        expected: sent_at.len() as u64 * report.connected as u64,
        last_member_us: hist,
        first_member_us: first_hist,
        incomplete,
        closed: report.closed,
    })
}

pub struct RoomOptions {
    pub ws_url: String,
    pub members: usize,
    pub processes: usize,
    pub senders: usize,
    /// Messages per second, all senders together.
    pub rate: f64,
    pub seconds: u64,
    pub drain: Duration,
}

pub struct RoomResult {
    pub connected: usize,
    pub failed: usize,
    pub sent: u64,
    pub send_errors: u64,
    pub delivered: u64,
    pub expected: u64,
    /// From the first send to the last receipt.
    pub span: Duration,
    pub closed: u64,
    /// From the server's commit of a message to its receipt by a member (p50, p99, max).
    pub latency_ms: (Option<u64>, Option<u64>, Option<u64>),
}

pub async fn room(client: &ServerClient, app_key: &str, app_secret: &str, o: RoomOptions) -> Result<RoomResult> {
    if o.senders == 0 || o.senders > o.members {
        bail!("--senders must be 1 to --members");
    }
    let rate_limit = (o.rate.ceil() as u64).clamp(1, 100_000) * 2;
    client
        .update_app_settings(&json!({"room_send_rate_per_second": rate_limit, "room_backlog": 0}))
        .await
        .context("raising room_send_rate_per_second")?;
    let fleet = LeanFleet::start(
        &LeanJob {
            ws_url: o.ws_url.clone(),
            app_key: app_key.to_owned(),
            app_secret: app_secret.to_owned(),
            prefix: "r".into(),
            first: 0,
            count: 0,
            room: Some("bench".into()),
            per_seq: false,
            xmpp: None,
        },
        o.members,
        o.processes,
    )
    .await?;
    let (connected, failed) = (fleet.connected, fleet.failed);
    eprintln!("room-broadcast: {connected} members joined ({failed} failed); sending");

    let per_sender = o.rate / o.senders as f64;
    let first_send = now_us();
    let mut senders = tokio::task::JoinSet::new();
    for s in 0..o.senders {
        let client = client.clone();
        let seconds = o.seconds;
        senders.spawn(async move {
            let interval = Duration::from_secs_f64(1.0 / per_sender.max(0.01));
            let start = Instant::now();
            let end = start + Duration::from_secs(seconds);
            let (mut sent, mut errors) = (0u64, 0u64);
            let mut k = 0u32;
            loop {
                let at = start + interval * k;
                if at >= end {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                let body = json!({"from": format!("r{s}"), "to": {"room": "bench"},
                                  "client_msg_id": format!("room-{s}-{k}"), "type": "custom", "content": {"data": {"k": k}}});
                match client.send(&body).await {
                    Ok(_) => sent += 1,
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("room-broadcast: a send failed: {e}");
                        }
                        errors += 1;
                    }
                }
                k += 1;
            }
            (sent, errors)
        });
    }
    let (mut sent, mut send_errors) = (0, 0);
    while let Some(r) = senders.join_next().await {
        let (s, e) = r?;
        sent += s;
        send_errors += e;
    }
    tokio::time::sleep(o.drain).await;
    let report = fleet.report().await?;
    Ok(RoomResult {
        connected,
        failed,
        sent,
        send_errors,
        delivered: report.received,
        expected: sent * report.connected as u64,
        span: Duration::from_micros(report.last_us.saturating_sub(first_send)),
        closed: report.closed,
        latency_ms: (
            report.latency_quantile(0.5),
            report.latency_quantile(0.99),
            report.latency_quantile(1.0),
        ),
    })
}
