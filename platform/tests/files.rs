//! The files feature on every file store adapter: the in-memory one, a local directory, and
//! S3 as served by a real S3 server (`s3s-fs`, which checks SigV4 signatures, presigned URLs
//! included) started in this process on port 0. Each test runs once per adapter.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use sha2::{Digest, Sha256};
use tern_platform::domain::*;
use tern_platform::files::*;
use tern_platform::ids::*;
use tern_platform::store::{testing, NewApp, Store};

const ACCESS_KEY: &str = "AKIATERNTEST0000";
const SECRET_KEY: &str = "tern-test-secret-key-0000000000000000000";
const BUCKET: &str = "tern-files";

/// A real S3 server over a temporary directory, on 127.0.0.1:0; its endpoint.
pub async fn s3_server() -> (String, tempfile::TempDir) {
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
    (format!("http://{addr}"), dir)
}

/// The S3 adapter on a fresh `s3s-fs` server, configured the way `TERN_FILES_URL` is.
pub async fn s3_store() -> (Arc<dyn FileStore>, tempfile::TempDir) {
    let (endpoint, dir) = s3_server().await;
    let url = format!(
        "s3://{BUCKET}?endpoint={endpoint}&region=us-east-1&access_key_id={ACCESS_KEY}&secret_access_key={SECRET_KEY}"
    );
    (s3::open(&url).unwrap(), dir)
}

struct World {
    store: Arc<dyn Store>,
    blobs: Arc<dyn FileStore>,
    files: Files,
    app: App,
    _dirs: Vec<tempfile::TempDir>,
}

async fn world(adapter: &str, config: FilesConfig) -> World {
    let (store, db_dir) = testing::sqlite_temp().await;
    let mut dirs = vec![db_dir];
    let blobs = match adapter {
        "memory" => memory::open(),
        "local" => {
            let d = tempfile::tempdir().unwrap();
            let b = local::open(&d.path().join("files")).unwrap();
            dirs.push(d);
            b
        }
        "s3" => {
            let (b, d) = s3_store().await;
            dirs.push(d);
            b
        }
        other => panic!("no adapter {other}"),
    };
    let tenant = Tenant {
        id: TenantId::generate(),
        name: "t".into(),
        status: TenantStatus::Active,
        created_at: 1,
    };
    store.create_tenant(&tenant).await.unwrap();
    let id = AppId::generate();
    let app = store
        .create_app(&NewApp {
            first_secret: AppSecretRecord {
                id: SecretId::generate(),
                app_id: id.clone(),
                ciphertext: vec![1],
                created_at: 1,
                expires_at: None,
            },
            id,
            tenant_id: tenant.id,
            name: "a".into(),
            app_key: AppKey::generate(),
            settings: AppSettings::default(),
            webhook_secret_ciphertext: vec![1],
        })
        .await
        .unwrap();
    let users: Vec<_> = ["alice", "bob", "carol"]
        .iter()
        .map(|u| (UserId::parse(u).unwrap(), UserProfile::default()))
        .collect();
    store.upsert_users(&app.id, &users, 1).await.unwrap();
    let files = Files::new(store.clone(), blobs.clone(), UrlSigner::new([3; 32]), config);
    World {
        store,
        blobs,
        files,
        app,
        _dirs: dirs,
    }
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn request(len: usize, sha256: String) -> UploadRequest {
    UploadRequest {
        uploader: UserId::parse("alice").unwrap(),
        name: FileName::parse("holiday photo.png").unwrap(),
        content_type: ContentType::parse("image/png").unwrap(),
        size: len as u64,
        sha256,
    }
}

fn grant(t: &UploadTicket) -> UrlGrant {
    let query = t.upload_path.split_once('?').unwrap().1;
    serde_urlencoded::from_str(query).unwrap()
}

fn body(chunks: Vec<Vec<u8>>) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed()
}

/// A body whose connection is cut after `chunks`.
fn cut_body(chunks: Vec<Vec<u8>>) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))))
        .chain(stream::once(async {
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut"))
        }))
        .boxed()
}

async fn read_all(w: &World, f: &FileRecord, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    let mut s = w.files.read(f, range).await.unwrap();
    let mut out = Vec::new();
    while let Some(b) = s.next().await {
        out.extend_from_slice(&b.unwrap());
    }
    out
}

macro_rules! on_every_adapter {
    ($($name:ident),* $(,)?) => {
        mod memory_store { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name("memory").await } )* }
        mod local_store { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name("local").await } )* }
        mod s3_store { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name("s3").await } )* }
    };
}

on_every_adapter!(
    a_file_arrives_in_pieces_and_is_usable_only_once_complete,
    a_cut_connection_keeps_what_arrived_and_the_upload_resumes,
    a_wrong_sha256_refuses_the_file_and_serves_nothing,
    a_piece_checksum_mismatch_counts_nothing,
    offsets_lengths_and_signatures_are_checked,
    uploads_never_completed_expire_and_are_swept,
    terminated_uploads_are_gone,
    downloads_are_for_the_uploader_and_members_only,
    a_second_writer_on_another_node_is_refused_while_the_first_writes,
);

async fn a_file_arrives_in_pieces_and_is_usable_only_once_complete(adapter: &str) {
    let w = world(adapter, FilesConfig::default()).await;
    // Over two S3 parts (8 MiB each) and several staged pieces (4 MiB).
    let content = data(9 * 1024 * 1024 + 12_345);
    let t = w
        .files
        .create_upload(&w.app, request(content.len(), sha(&content)))
        .await
        .unwrap();
    assert!(t.upload_path.starts_with(&format!("/v1/uploads/{}?app=", t.file.id)));
    let g = grant(&t);
    let first = 5 * 1024 * 1024 + 3;
    let f = w
        .files
        .append(&t.file.id, &g, 0, None, body(vec![content[..first].to_vec()]))
        .await
        .unwrap();
    assert_eq!((f.state, f.received), (FileState::Uploading, first as u64));
    // Not downloadable while uploading.
    let who = Downloader::User(UserId::parse("alice").unwrap());
    assert!(matches!(
        w.files.download(&w.app, &t.file.id, &who).await,
        Err(FilesError::NotReady)
    ));
    let rest: Vec<Vec<u8>> = content[first..].chunks(1_000_000).map(<[u8]>::to_vec).collect();
    let f = w
        .files
        .append(&t.file.id, &g, first as u64, None, body(rest))
        .await
        .unwrap();
    assert_eq!((f.state, f.received), (FileState::Complete, content.len() as u64));
    assert_eq!(read_all(&w, &f, None).await, content);
    assert_eq!(read_all(&w, &f, Some(100..200)).await, content[100..200].to_vec());
    let usage = w.files.usage(&w.app).await.unwrap();
    assert_eq!((usage.files, usage.bytes), (1, content.len() as u64));
    // The upload URL now takes nothing more.
    assert!(matches!(
        w.files
            .append(&t.file.id, &g, f.received, None, body(vec![vec![1]]))
            .await,
        Err(FilesError::OffsetMismatch { .. })
    ));
}

async fn a_cut_connection_keeps_what_arrived_and_the_upload_resumes(adapter: &str) {
    let w = world(adapter, FilesConfig::default()).await;
    let content = data(6 * 1024 * 1024);
    let t = w
        .files
        .create_upload(&w.app, request(content.len(), sha(&content)))
        .await
        .unwrap();
    let g = grant(&t);
    let sent = 5 * 1024 * 1024 + 17;
    let cut = w
        .files
        .append(&t.file.id, &g, 0, None, cut_body(vec![content[..sent].to_vec()]))
        .await;
    assert!(cut.is_err());
    // What arrived before the cut counts (tus HEAD tells the client where to resume).
    let head = w.files.upload(&t.file.id, &g).await.unwrap();
    assert_eq!(head.received, sent as u64);
    let f = w
        .files
        .append(&t.file.id, &g, sent as u64, None, body(vec![content[sent..].to_vec()]))
        .await
        .unwrap();
    assert_eq!(f.state, FileState::Complete);
    assert_eq!(read_all(&w, &f, None).await, content);
}

async fn a_wrong_sha256_refuses_the_file_and_serves_nothing(adapter: &str) {
    let w = world(adapter, FilesConfig::default()).await;
    let content = data(300_000);
    let t = w
        .files
        .create_upload(&w.app, request(content.len(), sha(b"other")))
        .await
        .unwrap();
    let g = grant(&t);
    let r = w.files.append(&t.file.id, &g, 0, None, body(vec![content])).await;
    assert!(matches!(r, Err(FilesError::ChecksumMismatch(_))), "{r:?}");
    let f = w.store.file(&w.app.id, &t.file.id).await.unwrap().unwrap();
    assert_eq!(f.state, FileState::Failed);
    assert!(matches!(
        w.files.download(&w.app, &t.file.id, &Downloader::App).await,
        Err(FilesError::NotReady)
    ));
    assert!(w.files.read(&f, None).await.is_err(), "no object is left behind");
    // The sweep takes failed uploads away.
    assert_eq!(w.files.sweep(now_ms(), 100).await.unwrap(), 1);
    assert_eq!(w.store.file(&w.app.id, &t.file.id).await.unwrap(), None);
}

async fn a_piece_checksum_mismatch_counts_nothing(adapter: &str) {
    let w = world(adapter, FilesConfig::default()).await;
    let content = data(100_000);
    let t = w
        .files
        .create_upload(&w.app, request(content.len(), sha(&content)))
        .await
        .unwrap();
    let g = grant(&t);
    let wrong = PieceChecksum {
        algorithm: "sha256".into(),
        digest: Sha256::digest(b"nope").to_vec(),
    };
    let r = w
        .files
        .append(&t.file.id, &g, 0, Some(wrong), body(vec![content.clone()]))
        .await;
    assert!(matches!(r, Err(FilesError::ChecksumMismatch(_))), "{r:?}");
    assert_eq!(w.files.upload(&t.file.id, &g).await.unwrap().received, 0);
    let md5 = PieceChecksum {
        algorithm: "md5".into(),
        digest: vec![0; 16],
    };
    assert!(matches!(
        w.files
            .append(&t.file.id, &g, 0, Some(md5), body(vec![content.clone()]))
            .await,
        Err(FilesError::ChecksumUnsupported(_))
    ));
    let right = PieceChecksum {
        algorithm: "sha1".into(),
        digest: <sha1::Sha1 as Digest>::digest(&content).to_vec(),
    };
    let f = w
        .files
        .append(&t.file.id, &g, 0, Some(right), body(vec![content.clone()]))
        .await
        .unwrap();
    assert_eq!(f.state, FileState::Complete);
}

async fn offsets_lengths_and_signatures_are_checked(adapter: &str) {
    let w = world(adapter, FilesConfig::default()).await;
    let content = data(1000);
    let t = w
        .files
        .create_upload(&w.app, request(content.len(), sha(&content)))
        .await
        .unwrap();
    let g = grant(&t);
    assert!(matches!(
        w.files
            .append(&t.file.id, &g, 5, None, body(vec![content.clone()]))
            .await,
        Err(FilesError::OffsetMismatch { given: 5, expected: 0 })
    ));
    assert!(matches!(
        w.files.append(&t.file.id, &g, 0, None, body(vec![data(1001)])).await,
        Err(FilesError::ExceedsLength)
    ));
    let mut forged = g.clone();
    forged.exp += 3600;
    assert!(matches!(
        w.files.upload(&t.file.id, &forged).await,
        Err(FilesError::UrlInvalid)
    ));
    assert!(matches!(
        w.files.upload(&FileId::generate(), &g).await,
        Err(FilesError::UrlInvalid)
    ));
    // Limits of announcement.
    let mut big = request(DEFAULT_MAX_FILE_BYTES as usize + 1, sha(b""));
    assert!(matches!(
        w.files.create_upload(&w.app, big.clone()).await,
        Err(FilesError::FileTooLarge {
            max: DEFAULT_MAX_FILE_BYTES
        })
    ));
    big.size = 0;
    assert!(matches!(
        w.files.create_upload(&w.app, big).await,
        Err(FilesError::InvalidArgument(_))
    ));
    let mut ghost = request(10, sha(b""));
    ghost.uploader = UserId::parse("nobody").unwrap();
    assert!(matches!(
        w.files.create_upload(&w.app, ghost).await,
        Err(FilesError::InvalidArgument(_))
    ));
}

async fn uploads_never_completed_expire_and_are_swept(adapter: &str) {
    let w = world(
        adapter,
        FilesConfig {
            upload_ttl: Duration::from_millis(0),
            ..FilesConfig::default()
        },
    )
    .await;
    let content = data(1000);
    let t = w
        .files
        .create_upload(&w.app, request(content.len(), sha(&content)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let g = grant(&t);
    // The URL expired with the upload.
    assert!(matches!(
        w.files.upload(&t.file.id, &g).await,
        Err(FilesError::UrlExpired)
    ));
    assert_eq!(w.files.sweep(now_ms(), 100).await.unwrap(), 1);
    assert_eq!(w.store.file(&w.app.id, &t.file.id).await.unwrap(), None);
    assert_eq!(w.files.usage(&w.app).await.unwrap(), StorageUsage::default());
}

async fn terminated_uploads_are_gone(adapter: &str) {
    let w = world(adapter, FilesConfig::default()).await;
    let content = data(5 * 1024 * 1024);
    let t = w
        .files
        .create_upload(&w.app, request(content.len(), sha(&content)))
        .await
        .unwrap();
    let g = grant(&t);
    w.files
        .append(&t.file.id, &g, 0, None, body(vec![content[..4_200_000].to_vec()]))
        .await
        .unwrap();
    w.files.terminate(&t.file.id, &g).await.unwrap();
    assert!(matches!(
        w.files.upload(&t.file.id, &g).await,
        Err(FilesError::UploadExpired)
    ));
    assert_eq!(w.store.file(&w.app.id, &t.file.id).await.unwrap(), None);
}

async fn downloads_are_for_the_uploader_and_members_only(adapter: &str) {
    let w = world(adapter, FilesConfig::default()).await;
    let content = data(70_000);
    let t = w
        .files
        .create_upload(&w.app, request(content.len(), sha(&content)))
        .await
        .unwrap();
    let f = w
        .files
        .append(&t.file.id, &grant(&t), 0, None, body(vec![content.clone()]))
        .await
        .unwrap();
    let user = |u: &str| Downloader::User(UserId::parse(u).unwrap());
    let conv = ConversationId::direct(&UserId::parse("alice").unwrap(), &UserId::parse("bob").unwrap());
    assert!(matches!(
        w.files.download(&w.app, &f.id, &user("bob")).await,
        Err(FilesError::NotFound)
    ));
    w.store.add_file_ref(&w.app.id, &f.id, &conv).await.unwrap();
    for who in [user("alice"), user("bob"), Downloader::App] {
        let d = w.files.download(&w.app, &f.id, &who).await.unwrap();
        assert_eq!(d.file.id, f.id);
        if adapter == "s3" {
            // S3's own presigned URL, checked by the server's SigV4 verification.
            let res = reqwest::get(&d.url).await.unwrap();
            assert_eq!(res.status(), 200, "{}", d.url);
            assert_eq!(res.bytes().await.unwrap().to_vec(), content);
            let res = reqwest::Client::new()
                .get(&d.url)
                .header("range", "bytes=10-19")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 206);
            assert_eq!(res.bytes().await.unwrap().to_vec(), content[10..20].to_vec());
            let tampered = d.url.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200");
            assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);
        } else {
            assert!(
                d.url.starts_with(&format!("/v1/files/{}/content?app=", f.id)),
                "{}",
                d.url
            );
            let g: UrlGrant = serde_urlencoded::from_str(d.url.split_once('?').unwrap().1).unwrap();
            assert_eq!(w.files.content_file(&f.id, &g).await.unwrap().id, f.id);
            assert!(matches!(w.files.upload(&f.id, &g).await, Err(FilesError::UrlInvalid)));
        }
    }
    assert!(matches!(
        w.files.download(&w.app, &f.id, &user("carol")).await,
        Err(FilesError::NotFound)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_presigned_url_stops_working_when_it_expires() {
    let (store, _dir) = s3_store().await;
    store.put("files/x/y", Bytes::from_static(b"hello")).await.unwrap();
    let url = store
        .presigned_get("files/x/y", Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 403);
}

#[tokio::test]
async fn an_s3_url_with_wrong_credentials_is_refused_by_the_server() {
    let (endpoint, _dir) = s3_server().await;
    let url = format!(
        "s3://{BUCKET}?endpoint={endpoint}&region=us-east-1&access_key_id={ACCESS_KEY}&secret_access_key=wrong-secret"
    );
    let store = s3::open(&url).unwrap();
    assert!(store.put("files/x/y", Bytes::from_static(b"hello")).await.is_err());
    assert!(s3::open("s3://").is_err());
    assert!(s3::open("s3://b?no_such_setting=1").is_err());
}

async fn a_second_writer_on_another_node_is_refused_while_the_first_writes(adapter: &str) {
    let w = world(adapter, FilesConfig::default()).await;
    // Two nodes: the same store and file store, each with its own `Files`.
    let node = || {
        Arc::new(Files::new(
            w.store.clone(),
            w.blobs.clone(),
            UrlSigner::new([3; 32]),
            FilesConfig::default(),
        ))
    };
    let (a, b) = (node(), node());
    let content = data(1000);
    let t = a
        .create_upload(&w.app, request(content.len(), sha(&content)))
        .await
        .unwrap();
    let g = grant(&t);
    // Node A's request has sent 100 bytes and is still going.
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, std::io::Error>>();
    tx.unbounded_send(Ok(Bytes::from(content[..100].to_vec()))).unwrap();
    let first = {
        let (a, id, g) = (a.clone(), t.file.id.clone(), g.clone());
        tokio::spawn(async move { a.append(&id, &g, 0, None, rx.boxed()).await })
    };
    // Node A takes the upload as soon as its request starts; give it that moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    match b
        .append(&t.file.id, &g, 0, None, body(vec![content[..10].to_vec()]))
        .await
    {
        Err(FilesError::UploadBusy) => {}
        Err(FilesError::OffsetMismatch { .. }) => panic!("node B wrote while node A held the upload"),
        other => panic!("node B: {other:?}"),
    }
    // Node A's request ends: what it sent counts, and node B may go on from there.
    drop(tx);
    assert_eq!(first.await.unwrap().unwrap().received, 100);
    let f = b
        .append(&t.file.id, &g, 100, None, body(vec![content[100..500].to_vec()]))
        .await
        .unwrap();
    assert_eq!(f.received, 500);

    // A node that died holding the lease blocks the upload only until the lease lapses.
    let now = now_ms();
    assert!(w
        .store
        .lease_upload(&w.app.id, &t.file.id, "a-dead-node", now, now + 60_000)
        .await
        .unwrap());
    assert!(matches!(
        a.append(&t.file.id, &g, 500, None, body(vec![content[500..].to_vec()]))
            .await,
        Err(FilesError::UploadBusy)
    ));
    assert!(w
        .store
        .lease_upload(&w.app.id, &t.file.id, "a-dead-node", now, now - 1)
        .await
        .unwrap());
    let f = a
        .append(&t.file.id, &g, 500, None, body(vec![content[500..].to_vec()]))
        .await
        .unwrap();
    assert_eq!(f.state, FileState::Complete);
}
