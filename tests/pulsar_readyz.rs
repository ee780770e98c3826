//! `tern serve` with the bus on Pulsar, as a real process against the Pulsar test broker
//! (`platform/tests/support/pulsar_broker`, a double speaking Pulsar's binary protocol, run
//! in this test's process; not Pulsar): `/readyz` answers 503 naming pulsar while the
//! broker is down and 200 again once it is back, without a restart of the node. Needs
//! `TERN_TEST_REDIS_URL` (Redis keeps presence and routing; skipped without it, a failure
//! with `TERN_TEST_REQUIRE_SERVICES=1`) and the `pulsar` feature.
#![cfg(feature = "pulsar")]
#![allow(clippy::unwrap_used)]

mod common;

#[path = "../platform/tests/support/pulsar_broker/mod.rs"]
mod pulsar_broker;

use std::time::Duration;

use common::{eventually, Server};
use serde_json::Value;

/// `/readyz`'s status and its `checks.pulsar` line.
async fn readyz(client: &reqwest::Client, base: &str) -> Option<(u16, String)> {
    let res = client.get(format!("{base}/readyz")).send().await.ok()?;
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    Some((status, body["checks"]["pulsar"].as_str().unwrap_or_default().to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_pulsar_while_the_broker_is_down_and_recovers_without_a_restart() {
    let redis = match std::env::var("TERN_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var("TERN_TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "TERN_TEST_REDIS_URL is not set (and TERN_TEST_REQUIRE_SERVICES=1)"
            );
            println!("skipped: TERN_TEST_REDIS_URL not set");
            return;
        }
    };
    let broker = pulsar_broker::TestBroker::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let unique = format!("{:016x}", rand::random::<u64>());
    let (url, redis_prefix) = (broker.url(), format!("r{unique}"));
    let topic_prefix = format!("persistent://public/default/t{unique}");
    let mut server = Server::start(
        dir.path(),
        &[
            ("TERN_REDIS_URL", redis.as_str()),
            ("TERN_REDIS_PREFIX", redis_prefix.as_str()),
            ("TERN_PULSAR_URL", url.as_str()),
            ("TERN_PULSAR_TOPIC_PREFIX", topic_prefix.as_str()),
            ("TERN_NODE_ID", "pulsar-ready-1"),
        ],
    );
    server.wait_for_line("tern: ready");
    let client = reqwest::Client::new();
    let base = server.base.clone();
    eventually("readyz is 200 with the bus on the broker", || {
        let (client, base) = (client.clone(), base.clone());
        async move { readyz(&client, &base).await.is_some_and(|(s, _)| s == 200) }
    })
    .await;
    assert!(
        broker.has_consumer(&format!("{topic_prefix}-node-pulsar-ready-1"), "tern-node"),
        "the node reads its inbox from the broker: {:?}",
        broker.topics()
    );

    // Down for 8 s: every connection dropped, new ones closed on arrival.
    broker.restart(Duration::from_secs(8));
    let down_at = tokio::time::Instant::now();
    eventually("readyz answers 503 naming pulsar while the broker is down", || {
        let (client, base) = (client.clone(), base.clone());
        async move {
            readyz(&client, &base)
                .await
                .is_some_and(|(s, why)| s == 503 && why.contains("pulsar"))
        }
    })
    .await;
    assert!(
        down_at.elapsed() < Duration::from_secs(8),
        "503 came only after the broker was back: {:?}",
        down_at.elapsed()
    );
    eventually("readyz answers 200 again once the broker is back", || {
        let (client, base) = (client.clone(), base.clone());
        async move { readyz(&client, &base).await.is_some_and(|(s, _)| s == 200) }
    })
    .await;
    assert!(
        down_at.elapsed() >= Duration::from_secs(8),
        "ready while the broker was still down"
    );
    assert!(broker.has_consumer(&format!("{topic_prefix}-node-pulsar-ready-1"), "tern-node"));
    assert!(server.terminate().success());
}
