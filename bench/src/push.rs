//! The push benchmark: pushes per second from Tern's APNs and FCM adapters to the local
//! provider double (`tern_platform::push::double`), an HTTP/2-over-TLS server that checks
//! every request as Apple and Google would (the APNs provider JWT's ES256 signature, the
//! headers, the payload; FCM's OAuth2 bearer and v1 message). Each provider's pushes go
//! over its adapter's one HTTP/2 connection, `--concurrency` streams in flight; the double
//! counts the TLS connections it accepted, so the report says how many were used.
//!
//! Client and double share this process and the machine's cores: the figure is a lower
//! bound of what the adapter does against a remote provider.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use tern_platform::domain::{PushDevice, PushEnvironment, PushNotification, PushProvider, PushToken};
use tern_platform::ids::{DeviceId, UserId};
use tern_platform::push::credentials::{ApnsCredentials, FcmCredentials, ProviderCredentials};
use tern_platform::push::double::ProviderDouble;
use tern_platform::push::provider::{push_uuid, PushChannel, Verdict};
use tern_platform::push::{apns::Apns, fcm::Fcm, test_keys};

pub struct Options {
    pub pushes: usize,
    pub concurrency: usize,
}

pub struct Report {
    pub provider: &'static str,
    pub sent: usize,
    pub failed: usize,
    pub elapsed: Duration,
    pub connections: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn device(provider: PushProvider, i: usize) -> Result<PushDevice> {
    let token = match provider {
        PushProvider::Apns => format!("{i:064x}"),
        PushProvider::Fcm => format!("fcm-token-{i}"),
    };
    Ok(PushDevice {
        id: DeviceId::generate(),
        user_id: UserId::parse(&format!("u{}", i % 1000)).map_err(|e| anyhow!("{e}"))?,
        provider,
        token: PushToken::parse(provider, &token).map_err(|e| anyhow!("{}", e.0))?,
        topic: String::new(),
        environment: PushEnvironment::Production,
        locale: None,
        created_at: 0,
        updated_at: 0,
    })
}

fn notification(i: usize) -> PushNotification {
    let mut data = std::collections::BTreeMap::new();
    data.insert(
        "conversation_id".to_owned(),
        format!("d:u{}:u{}", i % 1000, (i + 1) % 1000),
    );
    data.insert("msg_id".to_owned(), format!("m_{i:026}"));
    data.insert("seq".to_owned(), i.to_string());
    PushNotification {
        title: "Alice".into(),
        body: "Are we still on for the climb on Saturday?".into(),
        badge: Some(3),
        collapse_id: data.get("conversation_id").cloned(),
        data,
    }
}

/// Sends `o.pushes` pushes through one provider's adapter, `o.concurrency` at a time.
async fn drive(
    provider: PushProvider,
    double: &ProviderDouble,
    channel: Arc<dyn PushChannel>,
    credentials: Arc<ProviderCredentials>,
    o: &Options,
) -> Result<Report> {
    let before = double.connections();
    // One push first: the connection, the TLS handshake and (FCM) the token exchange
    // happen once, outside the timed run, as in a worker that has been running.
    let warm = channel
        .send(
            &credentials,
            &device(provider, 0)?,
            &notification(0),
            &push_uuid("bench/warm-up"),
        )
        .await;
    if warm.verdict != Verdict::Sent {
        return Err(anyhow!("the warm-up push failed: {warm:?}"));
    }
    let started = Instant::now();
    let results: Vec<(bool, u64)> = futures::stream::iter(0..o.pushes)
        .map(|i| {
            let (channel, credentials) = (channel.clone(), credentials.clone());
            async move {
                let Ok(d) = device(provider, i + 1) else {
                    return (false, 0);
                };
                let n = notification(i + 1);
                let t = Instant::now();
                let answer = channel
                    .send(&credentials, &d, &n, &push_uuid(&format!("bench/{i}")))
                    .await;
                (
                    answer.verdict == Verdict::Sent,
                    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX),
                )
            }
        })
        .buffer_unordered(o.concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut h = Histogram::<u64>::new(3)?;
    let mut sent = 0;
    for (ok, us) in &results {
        if *ok {
            sent += 1;
            h.record((*us).max(1))?;
        }
    }
    Ok(Report {
        provider: provider.as_str(),
        sent,
        failed: results.len() - sent,
        elapsed,
        connections: double.connections() - before,
        p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
    })
}

/// APNs, then FCM, each against a fresh double.
pub async fn run(o: Options) -> Result<Vec<Report>> {
    let mut reports = Vec::new();

    let double = ProviderDouble::start().await?;
    let (p8, public) = test_keys::p256();
    double.trust_apns_key("BENCHKEY01", "BENCHTEAM1", &public);
    let creds = Arc::new(ProviderCredentials::Apns(ApnsCredentials {
        key_id: "BENCHKEY01".into(),
        team_id: "BENCHTEAM1".into(),
        bundle_id: "com.example.chat".into(),
        private_key: p8,
    }));
    let apns: Arc<dyn PushChannel> = Arc::new(Apns::new(double.push_config()));
    reports.push(drive(PushProvider::Apns, &double, apns, creds, &o).await?);
    drop(double);

    let double = ProviderDouble::start().await?;
    let sa = test_keys::service_account("bench-project", "push@bench-project.iam.gserviceaccount.com");
    let creds = Arc::new(ProviderCredentials::Fcm(
        FcmCredentials::parse(&sa.to_string()).map_err(|e| anyhow!("{}", e.0))?,
    ));
    let fcm: Arc<dyn PushChannel> = Arc::new(Fcm::new(double.push_config()));
    reports.push(drive(PushProvider::Fcm, &double, fcm, creds, &o).await?);
    Ok(reports)
}
