//! The `files` scenario: upload and download throughput through the embedded tus endpoint
//! and content URLs of a real `tern serve` (files in its data dir), each as a ratio of a
//! plain file copy (`std::fs::copy`) of the same size in the same temporary directory's
//! file system. Neither side syncs to disk, so both are measured against the page cache as
//! a user's machine would see them.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures::StreamExt;
use serde_json::json;
use tern_sdk::server::ServerClient;

pub struct Options {
    pub mib: usize,
    pub runs: usize,
}

pub struct Report {
    pub bytes: u64,
    /// Best of the runs, MB/s (10^6 bytes per second).
    pub copy: f64,
    pub upload_one_patch: f64,
    pub upload_sdk: f64,
    pub download: f64,
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn best(runs: &[f64]) -> f64 {
    runs.iter().copied().fold(0.0, f64::max)
}

fn content(len: usize) -> Vec<u8> {
    // Not compressible, not all zeros: a xorshift stream.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn copy_once(dir: &Path, src: &Path, i: usize) -> Result<Duration> {
    let dst = dir.join(format!("copy-{i}"));
    let t = Instant::now();
    std::fs::copy(src, &dst)?;
    let d = t.elapsed();
    std::fs::remove_file(dst)?;
    Ok(d)
}

/// Uploads `data` in one PATCH request (as tus-js-client does by default): announce, then
/// the whole body. Only the PATCH is timed.
async fn upload_one_patch(
    client: &ServerClient,
    http: &reqwest::Client,
    data: &[u8],
    i: usize,
) -> Result<(String, Duration)> {
    let up = client
        .create_file("alice", &format!("one-{i}.bin"), "application/octet-stream", data)
        .await?;
    let body = data.to_vec();
    let t = Instant::now();
    let res = http
        .patch(&up.upload_url)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(body)
        .send()
        .await?;
    let d = t.elapsed();
    if res.status() != 204 {
        bail!(
            "PATCH answered {}: {}",
            res.status(),
            res.text().await.unwrap_or_default()
        );
    }
    Ok((up.file_id, d))
}

/// Downloads a file by its URL, counting the bytes; the whole GET is timed.
async fn download(client: &ServerClient, http: &reqwest::Client, file_id: &str, len: u64) -> Result<Duration> {
    let url = client.file_url(file_id, None).await?.url;
    let t = Instant::now();
    let res = http.get(&url).send().await?;
    if !res.status().is_success() {
        bail!("GET answered {}", res.status());
    }
    let mut got = 0u64;
    let mut stream = res.bytes_stream();
    while let Some(chunk) = stream.next().await {
        got += chunk?.len() as u64;
    }
    let d = t.elapsed();
    if got != len {
        bail!("downloaded {got} of {len} bytes");
    }
    Ok(d)
}

/// Runs the scenario against the started server's app.
pub async fn run(client: ServerClient, o: Options) -> Result<Report> {
    client.upsert_users(&[json!({"id": "alice"})]).await?;
    let len = o.mib * 1024 * 1024;
    let data = content(len);
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("source");
    std::fs::write(&src, &data)?;
    let http = reqwest::Client::new();
    let (mut copy, mut one, mut sdk, mut down) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..o.runs.max(1) {
        copy.push(mbps(len as u64, copy_once(dir.path(), &src, i)?));
        let (file_id, d) = upload_one_patch(&client, &http, &data, i).await?;
        one.push(mbps(len as u64, d));
        // The Rust SDK's helper: 4 MiB PATCHes, each with its SHA-256 (announcing included).
        let t = Instant::now();
        client
            .upload_file("alice", &format!("sdk-{i}.bin"), "application/octet-stream", &data)
            .await?;
        sdk.push(mbps(len as u64, t.elapsed()));
        down.push(mbps(len as u64, download(&client, &http, &file_id, len as u64).await?));
    }
    Ok(Report {
        bytes: len as u64,
        copy: best(&copy),
        upload_one_patch: best(&one),
        upload_sdk: best(&sdk),
        download: best(&down),
    })
}
