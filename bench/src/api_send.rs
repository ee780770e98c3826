//! `api-send`: N concurrent keep-alive clients sending signed direct messages through the
//! REST server API. Reports sends/s and latency percentiles. With `--rate`, sends are paced
//! to that total rate (to measure latency below saturation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;
use serde_json::json;
use tern_sdk::server::ServerClient;
use tokio::sync::Mutex;

pub struct Options {
    pub clients: usize,
    pub duration: Duration,
    /// Total sends per second across all clients; `None` = as fast as possible.
    pub rate: Option<f64>,
    /// Distinct sender/recipient pairs (conversations).
    pub pairs: usize,
    /// Prefix of every client_msg_id, so that runs on one server do not collide.
    pub tag: String,
}

pub struct Report {
    pub sent: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub async fn run(client: ServerClient, o: Options) -> Result<Report> {
    // Users: u0..u{2*pairs}.
    let ids: Vec<serde_json::Value> = (0..o.pairs * 2).map(|i| json!({"id": format!("u{i}")})).collect();
    for chunk in ids.chunks(100) {
        client.upsert_users(chunk).await?;
    }
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));
    let start = Instant::now();
    let end = start + o.duration;
    let per_client_interval = o.rate.map(|r| Duration::from_secs_f64(o.clients as f64 / r));
    let mut tasks = Vec::new();
    for c in 0..o.clients {
        let client = client.clone();
        let hist = hist.clone();
        let pairs = o.pairs;
        let tag = o.tag.clone();
        tasks.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(anyhow::Error::from)?;
            let (mut sent, mut errors) = (0u64, 0u64);
            let mut next = Instant::now() + Duration::from_millis((c as u64 * 7) % 50);
            let mut i = 0usize;
            while Instant::now() < end {
                if let Some(iv) = per_client_interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += iv;
                }
                let pair = (c + i * o_stride(pairs)) % pairs;
                let (from, to) = (format!("u{}", pair * 2), format!("u{}", pair * 2 + 1));
                let t0 = Instant::now();
                match client
                    .send_text(&from, &to, &format!("{tag}c{c}-{i}"), "benchmark message")
                    .await
                {
                    Ok(_) => {
                        sent += 1;
                        local.record(t0.elapsed().as_micros().max(1) as u64).ok();
                    }
                    Err(_) => errors += 1,
                }
                i += 1;
            }
            hist.lock().await.add(&local).ok();
            Ok::<_, anyhow::Error>((sent, errors))
        }));
    }
    let (mut sent, mut errors) = (0, 0);
    for t in tasks {
        let (s, e) = t.await??;
        sent += s;
        errors += e;
    }
    let elapsed = start.elapsed();
    let h = hist.lock().await;
    Ok(Report {
        sent,
        errors,
        elapsed,
        p50_ms: h.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: h.max() as f64 / 1000.0,
    })
}

/// Spreads clients over the pairs so concurrent sends hit different conversations.
fn o_stride(pairs: usize) -> usize {
    if pairs > 7 {
        7
    } else {
        1
    }
}
