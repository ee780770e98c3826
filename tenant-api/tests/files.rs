//! Files through the real server on port 0, on a local directory and on S3 (a real
//! `s3s-fs` server in this process, which checks SigV4 signatures): announce, upload with
//! tus, send as a message, download as a member; refusals for non-members, other apps,
//! malformed, oversized and tampered input.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::*;
use tern_platform::files::{FileStore, FilesConfig};
use tern_platform::ports::Ports;
use tern_platform::store::testing;

const ACCESS_KEY: &str = "AKIATERNTEST0000";
const SECRET_KEY: &str = "tern-test-secret-key-0000000000000000000";
const BUCKET: &str = "tern-files";

async fn s3_files() -> (Arc<dyn FileStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(BUCKET)).unwrap();
    let fs = s3s_fs::FileSystem::new(dir.path()).unwrap();
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    let url = format!(
        "s3://{BUCKET}?endpoint=http://{addr}&region=us-east-1&access_key_id={ACCESS_KEY}&secret_access_key={SECRET_KEY}"
    );
    (tern_platform::files::s3::open(&url).unwrap(), dir)
}

/// A server on SQLite with files in a local directory or on S3, and what must outlive it.
async fn server(adapter: &str, files: FilesConfig) -> (TestServer, Vec<tempfile::TempDir>) {
    let (store, db_dir) = testing::sqlite_temp().await;
    let (blobs, dir) = match adapter {
        "local" => {
            let d = tempfile::tempdir().unwrap();
            (tern_platform::files::local::open(&d.path().join("files")).unwrap(), d)
        }
        _ => s3_files().await,
    };
    let config = EngineConfig {
        files,
        ..EngineConfig::default()
    };
    let s = TestServer::start_on(Ports::in_process(store).with_files(blobs), None, config).await;
    (s, vec![db_dir, dir])
}

async fn users(app: &TestApp) {
    let list: Vec<Value> = ["alice", "bob", "carol"].iter().map(|u| json!({ "id": u })).collect();
    app.client.upsert_users(&list).await.unwrap();
}

fn png(len: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend((0..len.saturating_sub(8)).map(|i| (i % 251) as u8));
    v
}

fn code(e: tern_sdk::server::ServerError) -> String {
    e.code().unwrap_or("none").to_owned()
}

async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    (status, v["error"]["code"].as_str().unwrap_or("").to_owned())
}

fn patch(url: &str, offset: u64, body: Vec<u8>) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .patch(url)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", offset.to_string())
        .body(body)
}

async fn upload_message_download(adapter: &str) {
    let (s, _keep) = server(adapter, FilesConfig::default()).await;
    let a = s.app("files").await;
    let other = s.app("other").await;
    users(&a).await;
    users(&other).await;
    let data = png(3 * 1024 * 1024 + 5);
    let up = a
        .client
        .create_file("alice", "beach \"sunset\".png", "image/png", &data)
        .await
        .unwrap();
    assert!(up
        .upload_url
        .starts_with(&format!("{}/v1/uploads/{}?", s.base, up.file_id)));
    assert_eq!(up.file["state"], "uploading");

    // Half, then HEAD, then the rest with a per-piece checksum.
    let half = data.len() / 2;
    let res = patch(&up.upload_url, 0, data[..half].to_vec()).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["tus-resumable"], "1.0.0");
    assert_eq!(res.headers()["upload-offset"], half.to_string().as_str());
    assert!(res.headers().contains_key("upload-expires"));
    assert_eq!(a.client.upload_offset(&up.upload_url).await.unwrap(), half as u64);
    let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&data[half..]));
    let res = patch(&up.upload_url, half as u64, data[half..].to_vec())
        .header("upload-checksum", format!("sha256 {sum}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["upload-offset"], data.len().to_string().as_str());

    // Send it from alice to bob as an image: the content is completed from the record.
    let sent = a
        .client
        .send(&json!({"from": "alice", "to": {"user": "bob"}, "type": "image",
            "content": {"file_id": up.file_id, "url": "https://elsewhere.example/x.png", "width": 10, "height": 20}}))
        .await
        .unwrap();
    let history: Value = a
        .client
        .request(
            "GET",
            &format!(
                "/v1/conversations/{}/messages?after_seq=0&limit=10",
                sent.conversation_id
            ),
            None,
        )
        .await
        .unwrap();
    let content = &history["messages"][0]["content"];
    assert_eq!(content["file_id"], up.file_id.as_str());
    assert_eq!(content["size"], data.len());
    assert_eq!(content["content_type"], "image/png");
    assert_eq!(content["width"], 10);
    assert!(content.get("url").is_none(), "{content}");

    // Bob (a member of the conversation) downloads it, whole and by range.
    let d = a.client.file_url(&up.file_id, Some("bob")).await.unwrap();
    assert_eq!(d.file["state"], "complete");
    let res = reqwest::get(&d.url).await.unwrap();
    assert_eq!(res.status(), 200, "{}", d.url);
    let disposition = res
        .headers()
        .get("content-disposition")
        .map(|v| v.to_str().unwrap().to_owned());
    if adapter == "local" {
        assert_eq!(res.headers()["content-type"], "image/png");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        assert_eq!(
            disposition.as_deref(),
            Some("attachment; filename=\"beach _sunset_.png\"; filename*=UTF-8''beach%20%22sunset%22.png")
        );
    }
    assert_eq!(res.bytes().await.unwrap().to_vec(), data);
    let res = reqwest::Client::new()
        .get(&d.url)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.unwrap().to_vec(), data[1000..2000].to_vec());

    // Alice (the uploader) may; carol (in no conversation with it) may not; another app
    // knows nothing of it, nor may it send it.
    a.client.file_url(&up.file_id, Some("alice")).await.unwrap();
    assert_eq!(
        code(a.client.file_url(&up.file_id, Some("carol")).await.unwrap_err()),
        "not_found"
    );
    assert_eq!(
        code(other.client.file_url(&up.file_id, None).await.unwrap_err()),
        "not_found"
    );
    assert_eq!(
        code(other.client.file_url(&up.file_id, Some("bob")).await.unwrap_err()),
        "not_found"
    );
    let e = other
        .client
        .send(&json!({"from": "alice", "to": {"user": "bob"}, "type": "image", "content": {"file_id": up.file_id}}))
        .await
        .unwrap_err();
    assert_eq!(code(e), "not_found");

    let storage = a.client.storage().await.unwrap();
    assert_eq!(storage["files"], 1);
    assert_eq!(storage["bytes"], data.len());
    assert_eq!(storage["max_file_bytes"], 100 * 1024 * 1024);
    assert_eq!(other.client.storage().await.unwrap()["files"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_message_download_on_a_local_directory() {
    upload_message_download("local").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_message_download_on_s3() {
    upload_message_download("s3").await;
}

async fn the_rust_sdk_uploads_and_group_members_download(adapter: &str) {
    let (s, _keep) = server(adapter, FilesConfig::default()).await;
    let a = s.app("files").await;
    users(&a).await;
    let data = png(9 * 1024 * 1024 + 1);
    let up = a
        .client
        .upload_file("alice", "scan.pdf", "application/pdf", &data)
        .await
        .unwrap();
    a.client.create_group("g1", "G1", "alice", &["bob"]).await.unwrap();
    a.client
        .send(&json!({"from": "alice", "to": {"group": "g1"}, "type": "file", "content": {"file_id": up.file_id}}))
        .await
        .unwrap();
    let d = a.client.file_url(&up.file_id, Some("bob")).await.unwrap();
    assert_eq!(d.file["name"], "scan.pdf");
    let got = reqwest::get(&d.url).await.unwrap().bytes().await.unwrap();
    assert_eq!(Sha256::digest(&got), Sha256::digest(&data));
    assert_eq!(
        code(a.client.file_url(&up.file_id, Some("carol")).await.unwrap_err()),
        "not_found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_uploads_and_group_members_download_on_a_local_directory() {
    the_rust_sdk_uploads_and_group_members_download("local").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_uploads_and_group_members_download_on_s3() {
    the_rust_sdk_uploads_and_group_members_download("s3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tus_endpoint_speaks_the_protocol_and_refuses_what_breaks_it() {
    let (s, _keep) = server("local", FilesConfig::default()).await;
    let a = s.app("files").await;
    users(&a).await;
    let http = reqwest::Client::new();

    let res = http
        .request(reqwest::Method::OPTIONS, format!("{}/v1/uploads", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["tus-version"], "1.0.0");
    assert_eq!(
        res.headers()["tus-extension"],
        "creation,checksum,expiration,termination"
    );
    assert_eq!(res.headers()["tus-checksum-algorithm"], "sha256,sha1");

    let data = png(10_000);
    let up = a
        .client
        .create_file("alice", "a.png", "image/png", &data)
        .await
        .unwrap();
    let url = up.upload_url.clone();

    // No Tus-Resumable; the wrong content type; the wrong offset; too many bytes.
    let res = http
        .patch(&url)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (412, "tus_version_unsupported".into()));
    let res = http
        .patch(&url)
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/json")
        .header("upload-offset", "0")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (415, "unsupported_media_type".into()));
    let res = patch(&url, 7, data.clone()).send().await.unwrap();
    assert_eq!(res.headers()["tus-resumable"], "1.0.0");
    assert_eq!(error_code(res).await, (409, "upload_offset_mismatch".into()));
    let res = patch(&url, 0, png(10_001)).send().await.unwrap();
    assert_eq!(error_code(res).await, (413, "upload_exceeds_length".into()));
    let res = patch(&url, 0, data.clone())
        .header("upload-checksum", "md5 AAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (400, "checksum_unsupported".into()));
    let wrong = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"x"));
    let res = patch(&url, 0, data.clone())
        .header("upload-checksum", format!("sha256 {wrong}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (460, "checksum_mismatch".into()));
    assert_eq!(a.client.upload_offset(&url).await.unwrap(), 0);

    // A tampered or foreign URL.
    let res = patch(&url.replace("&sig=", "&sig=00"), 0, data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (403, "url_invalid".into()));
    let res = patch(
        &url.replace(&up.file_id, "file_aaaaaaaaaaaaaaaaaaaaaaaa"),
        0,
        data.clone(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(error_code(res).await, (403, "url_invalid".into()));
    let res = patch(&url.replace(&up.file_id, "..%2F..%2Fetc"), 0, data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (404, "not_found".into()));

    // Termination, after which the upload is gone.
    let res = http.delete(&url).header("tus-resumable", "1.0.0").send().await.unwrap();
    assert_eq!(res.status(), 204);
    let res = http.head(&url).header("tus-resumable", "1.0.0").send().await.unwrap();
    assert_eq!(res.status(), 410);

    // Creation by a signed request with the tus headers.
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let meta = format!(
        "filename {},filetype {},sha256 {},uploader {}",
        b64("notes.txt"),
        b64("text/plain"),
        b64(&hex::encode(Sha256::digest(b"hello tus"))),
        b64("bob")
    );
    let headers = tern_sdk::signing::sign_request(
        a.app.app_key.as_str(),
        &a.secret,
        "POST",
        "/v1/uploads",
        b"",
        tern_sdk::signing::unix_now(),
        &tern_sdk::signing::new_nonce(),
    );
    let mut req = http
        .post(format!("{}/v1/uploads", s.base))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "9")
        .header("upload-metadata", meta);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{}/v1/uploads/file_", s.base)));
    let res = patch(&location, 0, b"hello tus".to_vec()).send().await.unwrap();
    assert_eq!(res.status(), 204);
    // Unsigned creation is refused like any server API call.
    let res = http
        .post(format!("{}/v1/uploads", s.base))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "9")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_unready_files_are_refused() {
    let (s, _keep) = server("local", FilesConfig::default()).await;
    let a = s.app("files").await;
    users(&a).await;
    let post = |body: Value| {
        let c = &a.client;
        async move { c.request::<Value>("POST", "/v1/files", Some(&body)).await.unwrap_err() }
    };
    let ok = json!({"uploader": "alice", "name": "a.png", "size": 10, "content_type": "image/png", "sha256": "00".repeat(32)});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let big = post(with("size", json!(100 * 1024 * 1024 + 1))).await;
    assert_eq!((big.code(), status(&big)), (Some("file_too_large"), 413));
    assert_eq!(code(post(with("size", json!(0))).await), "invalid_argument");
    assert_eq!(code(post(with("size", json!(-1))).await), "invalid_json");
    assert_eq!(code(post(with("sha256", json!("abc"))).await), "invalid_argument");
    for bad in ["../../etc/passwd", "a\u{0}b", "", "..", "x\\y"] {
        assert_eq!(
            code(post(with("name", json!(bad))).await),
            "invalid_argument",
            "{bad:?}"
        );
    }
    assert_eq!(
        code(post(with("content_type", json!("text/html\r\nx: y"))).await),
        "invalid_argument"
    );
    assert_eq!(code(post(with("uploader", json!("nobody"))).await), "invalid_argument");
    assert_eq!(code(post(with("extra", json!(1))).await), "invalid_json");
    // Odd but valid names are kept as given.
    let odd = a
        .client
        .create_file("alice", "日本 \"q\" ;.png", "image/png", b"12345")
        .await
        .unwrap();
    assert_eq!(odd.file["name"], "日本 \"q\" ;.png");

    // A message naming a file that is not complete, not there, or of another kind.
    let up = a
        .client
        .create_file("alice", "a.png", "image/png", &png(100))
        .await
        .unwrap();
    let send = |content: Value, t: &str| {
        let c = &a.client;
        let body = json!({"from": "alice", "to": {"user": "bob"}, "type": t, "content": content});
        async move { c.send(&body).await.unwrap_err() }
    };
    assert_eq!(
        code(send(json!({"file_id": up.file_id}), "image").await),
        "file_not_ready"
    );
    assert_eq!(
        code(send(json!({"file_id": "file_aaaaaaaaaaaaaaaaaaaaaaaa"}), "image").await),
        "not_found"
    );
    assert_eq!(
        code(send(json!({"file_id": "nope"}), "image").await),
        "invalid_argument"
    );
    let pdf = a
        .client
        .upload_file("alice", "x.pdf", "application/pdf", b"%PDF-1.4")
        .await
        .unwrap();
    assert_eq!(
        code(send(json!({"file_id": pdf.file_id}), "image").await),
        "invalid_argument"
    );
    assert_eq!(
        code(send(json!({"file_id": pdf.file_id, "duration_ms": 5}), "audio").await),
        "invalid_argument"
    );
    // A file message may name any type.
    a.client
        .send(&json!({"from": "alice", "to": {"user": "bob"}, "type": "file", "content": {"file_id": pdf.file_id}}))
        .await
        .unwrap();
    assert_eq!(code(a.client.file_url("file_zz", None).await.unwrap_err()), "not_found");
    assert_eq!(
        code(a.client.file_url(&up.file_id, None).await.unwrap_err()),
        "file_not_ready"
    );
    // Unsigned calls learn nothing.
    let res = reqwest::get(format!("{}/v1/files/{}", s.base, pdf.file_id))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

fn status(e: &tern_sdk::server::ServerError) -> u16 {
    match e {
        tern_sdk::server::ServerError::Api { status, .. } => *status,
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_url_stops_working_when_it_expires() {
    let files = FilesConfig {
        download_ttl: Duration::from_secs(1),
        ..FilesConfig::default()
    };
    let (s, _keep) = server("local", files).await;
    let a = s.app("files").await;
    users(&a).await;
    let up = a
        .client
        .upload_file("alice", "a.txt", "text/plain", b"short-lived")
        .await
        .unwrap();
    let d = a.client.file_url(&up.file_id, Some("alice")).await.unwrap();
    assert_eq!(reqwest::get(&d.url).await.unwrap().status(), 200);
    let res = reqwest::Client::new()
        .get(&d.url)
        .header("range", "bytes=50-")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 416);
    assert_eq!(res.headers()["content-range"], "bytes */11");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = reqwest::get(&d.url).await.unwrap();
    assert_eq!(error_code(res).await, (403, "url_expired".into()));
    let longer = d.url.replace("&exp=", "&exp=9");
    let res = reqwest::get(&longer).await.unwrap();
    assert_eq!(error_code(res).await, (403, "url_invalid".into()));
}

/// A real PNG of `w` x `h` pixels.
fn real_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A valid PNG of a few bytes whose header declares `edge` x `edge` pixels.
fn png_bomb(edge: u32) -> Vec<u8> {
    let mut p = real_png(1, 1);
    p[16..20].copy_from_slice(&edge.to_be_bytes());
    p[20..24].copy_from_slice(&edge.to_be_bytes());
    let crc = crc32fast::hash(&p[12..29]);
    p[29..33].copy_from_slice(&crc.to_be_bytes());
    p
}

async fn images_get_a_thumbnail_and_broken_ones_stay_usable(adapter: &str) {
    let (s, _keep) = server(adapter, FilesConfig::default()).await;
    let a = s.app("thumbs").await;
    users(&a).await;

    // A real image: a PNG of at most 256 pixels a side, beside the file, for a member too.
    let photo = real_png(1200, 800);
    let up = a
        .client
        .upload_file("alice", "photo.png", "image/png", &photo)
        .await
        .unwrap();
    a.client
        .send(&json!({"from": "alice", "to": {"user": "bob"}, "type": "image", "content": {"file_id": up.file_id}}))
        .await
        .unwrap();
    let d = a.client.file_url(&up.file_id, Some("bob")).await.unwrap();
    let thumb_url = d.thumbnail_url.clone().expect("an image gets a thumbnail");
    let res = reqwest::get(&thumb_url).await.unwrap();
    assert_eq!(res.status(), 200, "{thumb_url}");
    if adapter == "local" {
        assert_eq!(res.headers()["content-type"], "image/png");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    }
    let thumb = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(thumb.width(), 256);
    assert!((170..=171).contains(&thumb.height()), "{}", thumb.height());
    let got = reqwest::get(&d.url).await.unwrap().bytes().await.unwrap();
    assert_eq!(got.to_vec(), photo, "the file itself is unchanged");
    // The thumbnail URL is signed like the file's: changed, it is refused.
    if adapter == "local" {
        let tampered = thumb_url
            .replace("/thumbnail?", "/thumbnail?x=1&")
            .replace("sig=", "sig=00");
        let (status, code) = error_code(reqwest::get(&tampered).await.unwrap()).await;
        assert_eq!((status, code.as_str()), (403, "url_invalid"));
        let as_content = thumb_url.replace("/thumbnail?", "/content?");
        let (status, code) = error_code(reqwest::get(&as_content).await.unwrap()).await;
        assert_eq!((status, code.as_str()), (403, "url_invalid"));
    }

    // A malformed image, a decompression bomb and a non-image: no thumbnail, no harm; each
    // downloads as it was uploaded.
    let cases = [
        ("broken.png", "image/png", png(50_000)),
        ("bomb.png", "image/png", png_bomb(100_000)),
        ("truncated.png", "image/png", real_png(300, 300)[..2000].to_vec()),
        ("photo.txt", "text/plain", real_png(300, 300)),
    ];
    for (name, ty, bytes) in cases {
        let up = a.client.upload_file("alice", name, ty, &bytes).await.unwrap();
        assert_eq!(up.file["state"], "uploading");
        let d = a.client.file_url(&up.file_id, None).await.unwrap();
        assert_eq!(d.file["state"], "complete", "{name}");
        assert_eq!(d.thumbnail_url, None, "{name}");
        let got = reqwest::get(&d.url).await.unwrap().bytes().await.unwrap();
        assert_eq!(got.to_vec(), bytes, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_get_a_thumbnail_and_broken_ones_stay_usable_on_a_local_directory() {
    images_get_a_thumbnail_and_broken_ones_stay_usable("local").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_get_a_thumbnail_and_broken_ones_stay_usable_on_s3() {
    images_get_a_thumbnail_and_broken_ones_stay_usable("s3").await;
}

async fn files_of_recalled_and_deleted_messages_go_after_the_grace_period(adapter: &str) {
    let grace = Duration::from_secs(3600);
    let files = FilesConfig {
        release_grace: grace,
        ..FilesConfig::default()
    };
    let (s, _keep) = server(adapter, files).await;
    let a = s.app("grace").await;
    users(&a).await;
    let upload = |name: &'static str| {
        let c = a.client.clone();
        async move {
            c.upload_file("alice", name, "image/png", &real_png(64, 48))
                .await
                .unwrap()
        }
    };
    let send = |file_id: String, to: Value| {
        let c = a.client.clone();
        async move {
            c.send(&json!({"from": "alice", "to": to, "type": "image", "content": {"file_id": file_id}}))
                .await
                .unwrap()
        }
    };
    // Sent once, then recalled: goes.
    let once = upload("once.png").await;
    let m = send(once.file_id.clone(), json!({"user": "bob"})).await;
    // Sent twice, one of them recalled: stays.
    let twice = upload("twice.png").await;
    let m1 = send(twice.file_id.clone(), json!({"user": "bob"})).await;
    send(twice.file_id.clone(), json!({"user": "carol"})).await;
    // Sent in a group that is then dismissed: goes.
    let grouped = upload("group.png").await;
    a.client.create_group("g1", "G1", "alice", &["bob"]).await.unwrap();
    send(grouped.file_id.clone(), json!({"group": "g1"})).await;
    // Never sent: stays (it is the uploader's until a message names it).
    let kept = upload("unsent.png").await;

    let before = a.client.file_url(&once.file_id, Some("bob")).await.unwrap();
    a.client.recall(&m.msg_id).await.unwrap();
    a.client.recall(&m1.msg_id).await.unwrap();
    a.client.dismiss_group("g1").await.unwrap();

    let sweeper = s.api_state().files.clone();
    let now = tern_platform::domain::now_ms();
    // Within the grace period nothing goes, and the URL handed out before still works.
    assert_eq!(sweeper.sweep_released(now + 1000, 100).await.unwrap(), 0);
    let res = reqwest::get(&before.url).await.unwrap();
    assert_eq!(res.status(), 200);
    a.client.file_url(&once.file_id, None).await.unwrap();
    // After it, the files no live message names are deleted, bytes and all.
    let after = now + grace.as_millis() as i64 + 1000;
    assert_eq!(sweeper.sweep_released(after, 100).await.unwrap(), 2);
    for gone in [&once.file_id, &grouped.file_id] {
        assert_eq!(code(a.client.file_url(gone, None).await.unwrap_err()), "not_found");
    }
    assert_ne!(reqwest::get(&before.url).await.unwrap().status(), 200);
    for stays in [&twice.file_id, &kept.file_id] {
        let d = a.client.file_url(stays, None).await.unwrap();
        assert_eq!(reqwest::get(&d.url).await.unwrap().status(), 200);
    }
    a.client.file_url(&twice.file_id, Some("carol")).await.unwrap();
    assert_eq!(a.client.storage().await.unwrap()["files"], 2);
    // Nothing left to do on the next sweep.
    assert_eq!(sweeper.sweep_released(after, 100).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_recalled_and_deleted_messages_go_after_the_grace_period_on_a_local_directory() {
    files_of_recalled_and_deleted_messages_go_after_the_grace_period("local").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_recalled_and_deleted_messages_go_after_the_grace_period_on_s3() {
    files_of_recalled_and_deleted_messages_go_after_the_grace_period("s3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_files_twins_answer_as_rest_does() {
    use tern_platform::proto::server_v1 as pb;
    let method = |m: &str| format!("/tern.server.v1.Files/{m}");
    let (s, _keep) = server("local", FilesConfig::default()).await;
    let a = s.app("grpc").await;
    let other = s.app("other").await;
    users(&a).await;
    let ch = grpc_channel(&s).await;
    let mut files = pb::files_client::FilesClient::new(ch);
    let photo = real_png(400, 300);
    let announce = pb::CreateFileRequest {
        uploader: "alice".into(),
        name: "grpc.png".into(),
        size: photo.len() as u64,
        content_type: "image/png".into(),
        sha256: hex::encode(Sha256::digest(&photo)),
    };
    let up = files
        .create_file(grpc_signed(&a, &method("CreateFile"), announce.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        up.upload_url.starts_with(&format!("/v1/uploads/{}?", up.file_id)),
        "{}",
        up.upload_url
    );
    assert_eq!(up.file.as_ref().unwrap().state, "uploading");
    // The bytes go to the tus URL on the REST listener.
    let url = format!("{}{}", s.base, up.upload_url);
    assert_eq!(patch(&url, 0, photo.clone()).send().await.unwrap().status(), 204);
    let got = |user: Option<&str>| pb::GetFileRequest {
        file_id: up.file_id.clone(),
        user: user.map(str::to_owned),
    };
    let d = files
        .get_file(grpc_signed(&a, &method("GetFile"), got(Some("alice"))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.file.as_ref().unwrap().state, "complete");
    let bytes = reqwest::get(format!("{}{}", s.base, d.url))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.to_vec(), photo);
    assert!(d.thumbnail_url.is_some());
    // The same refusals and codes as over REST.
    let e = files
        .get_file(grpc_signed(&a, &method("GetFile"), got(Some("carol"))))
        .await
        .unwrap_err();
    assert_eq!(tern_tenant_api::grpc::error_code(&e).as_deref(), Some("not_found"));
    let e = files
        .get_file(grpc_signed(&other, &method("GetFile"), got(None)))
        .await
        .unwrap_err();
    assert_eq!(tern_tenant_api::grpc::error_code(&e).as_deref(), Some("not_found"));
    let e = files
        .create_file(grpc_signed(
            &a,
            &method("CreateFile"),
            pb::CreateFileRequest {
                size: 200 * 1024 * 1024,
                ..announce.clone()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(tern_tenant_api::grpc::error_code(&e).as_deref(), Some("file_too_large"));
    let e = files
        .create_file(grpc_signed(
            &a,
            &method("CreateFile"),
            pb::CreateFileRequest {
                name: "../etc/passwd".into(),
                ..announce
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        tern_tenant_api::grpc::error_code(&e).as_deref(),
        Some("invalid_argument")
    );
    let usage = files
        .get_storage(grpc_signed(&a, &method("GetStorage"), pb::Empty {}))
        .await
        .unwrap()
        .into_inner();
    let rest = a.client.storage().await.unwrap();
    assert_eq!((usage.files, usage.bytes), (1, photo.len() as u64));
    assert_eq!(rest["bytes"], usage.bytes);
    assert_eq!(usage.max_file_bytes, 100 * 1024 * 1024);
}
