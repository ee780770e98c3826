//! Files and media: announced uploads, resumable transfers into the file store (the
//! `FileStore` port: a local directory embedded, any S3-compatible store at scale), the
//! SHA-256 check that makes a file usable, downloads by expiring URL for the members of a
//! conversation the file was sent in, and the sweep of uploads never completed.
//!
//! An upload's bytes arrive in pieces (tus PATCH requests). Each piece is a staged object
//! `staging/<app>/<file>/<offset>`; the record's `received` moves past it only once it is
//! stored (compare-and-set, so two writers of one upload cannot both win). When the last
//! byte arrives the pieces are read back in order into the file's object (S3 multipart
//! upload underneath), hashed on the way, and the file becomes `complete` only if the hash
//! is the announced one. Nothing is ever served from an upload that is not complete.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use crate::domain::*;
use crate::ids::*;
use crate::store::{Store, StoreError};

pub mod disposition;
pub mod local;
pub mod memory;
pub mod port;
pub mod s3;
pub mod thumbnail;
pub mod url_signing;

pub use port::{ByteStream, FileStore, FileStoreError, FileStoreKind, ObjectHeaders};
pub use url_signing::{UrlGrant, UrlPurpose, UrlRefusal, UrlSigner};

/// What a file operation can fail with; `code()` is the stable code callers see.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{0}")]
    InvalidArgument(String),
    /// No such file in this app, or not visible to the caller (indistinguishable on purpose).
    #[error("file not found")]
    NotFound,
    #[error("the file is larger than the app allows ({max} bytes)")]
    FileTooLarge { max: u64 },
    #[error("content type {0} is not allowed by the app")]
    ContentTypeNotAllowed(String),
    #[error("the app's storage quota ({quota} bytes) would be exceeded")]
    QuotaExceeded { quota: u64 },
    /// The upload or download URL is malformed or its signature is wrong.
    #[error("the URL's signature is invalid")]
    UrlInvalid,
    #[error("the URL has expired")]
    UrlExpired,
    /// The upload was not completed in time and is gone (tus expiration).
    #[error("the upload has expired")]
    UploadExpired,
    #[error("Upload-Offset {given} does not match the {expected} bytes received")]
    OffsetMismatch { given: u64, expected: u64 },
    /// Another request is writing to this upload right now.
    #[error("another request is uploading to this file")]
    UploadBusy,
    #[error("the request carries more bytes than the upload's announced length")]
    ExceedsLength,
    #[error("unsupported checksum algorithm {0}: use sha256 or sha1")]
    ChecksumUnsupported(String),
    /// The piece's Upload-Checksum, or the whole file's SHA-256, did not match.
    #[error("{0}")]
    ChecksumMismatch(String),
    /// The file exists but is not complete (still uploading, or its checksum failed).
    #[error("the file is not complete")]
    NotReady,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl FilesError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "invalid_argument",
            Self::NotFound => "not_found",
            Self::FileTooLarge { .. } => "file_too_large",
            Self::ContentTypeNotAllowed(_) => "content_type_not_allowed",
            Self::QuotaExceeded { .. } => "storage_quota_exceeded",
            Self::UrlInvalid => "url_invalid",
            Self::UrlExpired => "url_expired",
            Self::UploadExpired => "upload_expired",
            Self::OffsetMismatch { .. } => "upload_offset_mismatch",
            Self::UploadBusy => "upload_busy",
            Self::ExceedsLength => "upload_exceeds_length",
            Self::ChecksumUnsupported(_) => "checksum_unsupported",
            Self::ChecksumMismatch(_) => "checksum_mismatch",
            Self::NotReady => "file_not_ready",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for FilesError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => Self::NotFound,
            StoreError::Conflict(m) | StoreError::Rejected(m) => Self::InvalidArgument(m),
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Database(m) => Self::Internal(m),
        }
    }
}

impl From<FileStoreError> for FilesError {
    fn from(e: FileStoreError) -> Self {
        match e {
            FileStoreError::NotFound(key) => Self::Internal(format!("object {key} is missing")),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<UrlRefusal> for FilesError {
    fn from(r: UrlRefusal) -> Self {
        match r {
            UrlRefusal::Invalid => Self::UrlInvalid,
            UrlRefusal::Expired => Self::UrlExpired,
        }
    }
}

/// Node-wide settings of the files feature (per-app limits live in the app's settings).
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// How long an announced upload may take before it is swept (default 24 h).
    pub upload_ttl: Duration,
    /// How long a download URL works (default 1 h).
    pub download_ttl: Duration,
    /// The largest file any app may announce, whatever its settings (default 100 MB).
    pub max_file_bytes: u64,
    /// How long a file is kept after the last message naming it was recalled or deleted
    /// (default 7 days: a recall can be regretted, and a download URL handed out just
    /// before it still works for an hour).
    pub release_grace: Duration,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            upload_ttl: Duration::from_secs(24 * 3600),
            download_ttl: Duration::from_secs(3600),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            release_grace: DEFAULT_RELEASE_GRACE,
        }
    }
}

/// How long a file outlives the messages that named it, by default: 7 days.
pub const DEFAULT_RELEASE_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The default per-app maximum file size: 100 MB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// Bytes of one staged piece: a PATCH body is stored in pieces of at most this size, each
/// counted as received once stored, so a connection cut mid-request loses at most one piece.
const PIECE_BYTES: usize = 4 * 1024 * 1024;

/// An upload announced by the server API (`POST /v1/files`) or a tus creation request.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    pub uploader: UserId,
    pub name: FileName,
    pub content_type: ContentType,
    pub size: u64,
    pub sha256: String,
}

/// The answer to an announced upload: the file and where to send its bytes.
#[derive(Debug, Clone)]
pub struct UploadTicket {
    pub file: FileRecord,
    /// `/v1/uploads/<file>?app=…&exp=…&sig=…`: a tus upload URL (the door makes it absolute).
    pub upload_path: String,
    /// Unix seconds.
    pub upload_expires_at: i64,
}

/// A download of a complete file.
#[derive(Debug, Clone)]
pub struct DownloadTicket {
    pub file: FileRecord,
    /// An absolute URL (the store's presigned URL) or a path on Tern (the door makes it absolute).
    pub url: String,
    pub expires_at: i64,
    /// The same, for the file's thumbnail, when it is an image that got one.
    pub thumbnail_url: Option<String>,
}

/// A per-piece checksum sent with a PATCH (tus checksum extension).
#[derive(Debug, Clone)]
pub struct PieceChecksum {
    pub algorithm: String,
    pub digest: Vec<u8>,
}

/// The algorithms the upload endpoint accepts in `Upload-Checksum` (`Tus-Checksum-Algorithm`).
pub const CHECKSUM_ALGORITHMS: &str = "sha256,sha1";

enum PieceHasher {
    Sha256(Sha256),
    Sha1(sha1::Sha1),
}

/// Who asks for a download: the app's backend itself, or a user of the app.
#[derive(Debug, Clone)]
pub enum Downloader {
    App,
    User(UserId),
}

/// The files feature of one node.
pub struct Files {
    store: Arc<dyn Store>,
    blobs: Arc<dyn FileStore>,
    signer: UrlSigner,
    config: FilesConfig,
    /// Uploads a request of this node is writing to; a second writer is refused at once
    /// (across nodes, the compare-and-set on `received` keeps the record right).
    writing: Mutex<HashSet<FileId>>,
}

/// How long a write lease holds without renewal: a node that died mid-request blocks its
/// upload for at most this long.
const LEASE: Duration = Duration::from_secs(30);

/// How often a request renews its lease while bytes keep arriving.
const LEASE_RENEW: Duration = Duration::from_secs(5);

/// One request's hold on an upload: in this node's `writing` set and as the write lease in
/// the store (so a request on another node is refused too). `finish` gives the lease back;
/// if the request is dropped instead, `Drop` does it in the background.
struct WritingGuard<'a> {
    files: &'a Files,
    app: AppId,
    id: FileId,
    token: String,
    renewed: std::time::Instant,
    ended: bool,
}

impl WritingGuard<'_> {
    /// Extends the lease when it is due; a lease lost meanwhile (this request stalled past
    /// it and another took over) is logged, the compare-and-set on `received` keeps the
    /// record right whichever request writes.
    async fn renew(&mut self) {
        if self.renewed.elapsed() < LEASE_RENEW {
            return;
        }
        self.renewed = std::time::Instant::now();
        let now = now_ms();
        match self
            .files
            .store
            .lease_upload(&self.app, &self.id, &self.token, now, now + LEASE.as_millis() as i64)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(file = %self.id, "the upload's write lease was taken over"),
            Err(e) => tracing::warn!(file = %self.id, error = %e, "could not renew an upload's write lease"),
        }
    }

    async fn finish(mut self) {
        self.ended = true;
        if let Err(e) = self
            .files
            .store
            .end_upload_lease(&self.app, &self.id, &self.token)
            .await
        {
            tracing::warn!(file = %self.id, error = %e, "could not end an upload's write lease; it lapses");
        }
    }
}

impl Drop for WritingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut w) = self.files.writing.lock() {
            w.remove(&self.id);
        }
        if !self.ended {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let store = self.files.store.clone();
                let (app, id, token) = (self.app.clone(), self.id.clone(), std::mem::take(&mut self.token));
                rt.spawn(async move {
                    let _ = store.end_upload_lease(&app, &id, &token).await;
                });
            }
        }
    }
}

fn now_secs() -> i64 {
    now_ms() / 1000
}

fn object_key(app: &AppId, id: &FileId) -> String {
    format!("files/{app}/{id}")
}

/// Where an image's thumbnail lives, beside the file (`thumbnail`).
fn thumbnail_key(app: &AppId, id: &FileId) -> String {
    format!("thumbs/{app}/{id}")
}

fn staging_prefix(app: &AppId, id: &FileId) -> String {
    format!("staging/{app}/{id}")
}

fn piece_key(app: &AppId, id: &FileId, offset: u64) -> String {
    format!("staging/{app}/{id}/{offset:020}")
}

impl Files {
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn FileStore>, signer: UrlSigner, config: FilesConfig) -> Self {
        Self {
            store,
            blobs,
            signer,
            config,
            writing: Mutex::new(HashSet::new()),
        }
    }

    pub fn kind(&self) -> FileStoreKind {
        self.blobs.kind()
    }

    pub fn config(&self) -> &FilesConfig {
        &self.config
    }

    /// The largest file `app` may announce.
    pub fn max_file_bytes(&self, app: &App) -> u64 {
        app.settings
            .files
            .max_file_bytes
            .unwrap_or(DEFAULT_MAX_FILE_BYTES)
            .min(self.config.max_file_bytes)
    }

    /// Announces an upload: checks the app's limits, stores the record and signs the URL
    /// its bytes go to.
    pub async fn create_upload(&self, app: &App, req: UploadRequest) -> Result<UploadTicket, FilesError> {
        let max = self.max_file_bytes(app);
        if req.size > max {
            return Err(FilesError::FileTooLarge { max });
        }
        if req.size == 0 {
            return Err(FilesError::InvalidArgument("size must be at least 1 byte".into()));
        }
        let allowed = &app.settings.files.allowed_content_types;
        if !allowed.is_empty() && !allowed.iter().any(|p| req.content_type.matches(p)) {
            return Err(FilesError::ContentTypeNotAllowed(req.content_type.as_str().to_owned()));
        }
        if self.store.user(&app.id, &req.uploader).await?.is_none() {
            return Err(FilesError::InvalidArgument(format!(
                "uploader {} does not exist in this app",
                req.uploader
            )));
        }
        if let Some(quota) = app.settings.files.storage_quota_bytes {
            let usage = self.store.storage_usage(&app.id).await?;
            if usage.bytes + usage.bytes_reserved + req.size > quota {
                return Err(FilesError::QuotaExceeded { quota });
            }
        }
        let now = now_ms();
        let expires_ms = now + self.config.upload_ttl.as_millis() as i64;
        let new = NewFile {
            id: FileId::generate(),
            uploader: req.uploader,
            name: req.name,
            content_type: req.content_type,
            size: req.size,
            sha256: req.sha256,
            created_at: now,
            upload_expires_at: expires_ms,
        };
        let file = self.store.create_file(&app.id, &new).await?;
        Ok(self.ticket(file))
    }

    fn ticket(&self, file: FileRecord) -> UploadTicket {
        let exp = file.upload_expires_at.div_euclid(1000);
        let query = self.signer.query(UrlPurpose::Upload, &file.app_id, &file.id, exp);
        UploadTicket {
            upload_path: format!("/v1/uploads/{}?{query}", file.id),
            upload_expires_at: exp,
            file,
        }
    }

    /// The upload a signed upload URL names, while it may still receive bytes or be asked
    /// about (tus HEAD). An upload whose time ran out is `UploadExpired`.
    pub async fn upload(&self, id: &FileId, grant: &UrlGrant) -> Result<FileRecord, FilesError> {
        let app = self.signer.verify(UrlPurpose::Upload, id, grant, now_secs())?;
        let file = self.store.file(&app, id).await?.ok_or(FilesError::UploadExpired)?;
        if file.state == FileState::Uploading && file.upload_expires_at < now_ms() {
            return Err(FilesError::UploadExpired);
        }
        Ok(file)
    }

    /// Appends `body` at `offset` (tus PATCH). Pieces are stored and counted one by one; with
    /// a `checksum` nothing of this request counts unless the whole body matches it. When
    /// the last byte arrives the file is assembled and its SHA-256 checked. Returns the
    /// record as it is afterwards.
    pub async fn append(
        &self,
        id: &FileId,
        grant: &UrlGrant,
        offset: u64,
        checksum: Option<PieceChecksum>,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
    ) -> Result<FileRecord, FilesError> {
        let file = self.upload(id, grant).await?;
        match file.state {
            FileState::Uploading => {}
            FileState::Complete | FileState::Failed => {
                return Err(FilesError::OffsetMismatch {
                    given: offset,
                    expected: file.received,
                })
            }
        }
        if offset != file.received {
            return Err(FilesError::OffsetMismatch {
                given: offset,
                expected: file.received,
            });
        }
        let hasher = match &checksum {
            None => None,
            Some(c) => Some(match c.algorithm.as_str() {
                "sha256" => PieceHasher::Sha256(Sha256::new()),
                "sha1" => PieceHasher::Sha1(sha1::Sha1::new()),
                other => return Err(FilesError::ChecksumUnsupported(other.to_owned())),
            }),
        };
        let mut guard = self.start_writing(&file.app_id, id).await?;
        let result = self
            .write_locked(file, offset, checksum, hasher, body, &mut guard)
            .await;
        guard.finish().await;
        result
    }

    /// `append` once the request holds the upload.
    async fn write_locked(
        &self,
        file: FileRecord,
        offset: u64,
        checksum: Option<PieceChecksum>,
        mut hasher: Option<PieceHasher>,
        mut body: BoxStream<'static, Result<Bytes, std::io::Error>>,
        guard: &mut WritingGuard<'_>,
    ) -> Result<FileRecord, FilesError> {
        let app = file.app_id.clone();
        let id = &file.id.clone();
        let room = file.size - file.received;
        // `stored`: where the record stands; `written`: the end of the pieces written by
        // this request (beyond `stored` only while a checksum holds them back).
        let mut stored = offset;
        let mut written = offset;
        let mut pending = BytesMut::new();
        let mut pieces: Vec<String> = Vec::new();
        let mut cut = None;
        loop {
            let chunk = match body.next().await {
                None => break,
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    cut = Some(e);
                    break;
                }
            };
            guard.renew().await;
            if (written - offset) + (pending.len() + chunk.len()) as u64 > room {
                self.drop_pieces(&pieces).await;
                return Err(FilesError::ExceedsLength);
            }
            if let Some(h) = hasher.as_mut() {
                match h {
                    PieceHasher::Sha256(s) => s.update(&chunk),
                    PieceHasher::Sha1(s) => s.update(&chunk),
                }
            }
            pending.extend_from_slice(&chunk);
            while pending.len() >= PIECE_BYTES {
                let piece = pending.split_to(PIECE_BYTES).freeze();
                written = self.store_piece(&app, id, written, piece, &mut pieces).await?;
                if hasher.is_none() {
                    stored = self.advance(&app, id, stored, written).await?;
                }
            }
        }
        if let Some(e) = cut {
            // tus: the bytes that arrived before a cut count, unless a checksum must cover
            // the whole request.
            if hasher.is_none() && !pending.is_empty() {
                written = self
                    .store_piece(&app, id, written, pending.freeze(), &mut pieces)
                    .await?;
                self.advance(&app, id, stored, written).await?;
            } else if hasher.is_some() {
                self.drop_pieces(&pieces).await;
            }
            return Err(FilesError::InvalidArgument(format!(
                "the request body was cut short: {e}"
            )));
        }
        if !pending.is_empty() {
            written = self
                .store_piece(&app, id, written, pending.freeze(), &mut pieces)
                .await?;
        }
        if let (Some(h), Some(c)) = (hasher, checksum) {
            let digest = match h {
                PieceHasher::Sha256(s) => s.finalize().to_vec(),
                PieceHasher::Sha1(s) => s.finalize().to_vec(),
            };
            if digest != c.digest {
                self.drop_pieces(&pieces).await;
                return Err(FilesError::ChecksumMismatch(
                    "the request body does not match its Upload-Checksum".into(),
                ));
            }
        }
        if written > stored {
            self.advance(&app, id, stored, written).await?;
        }
        let mut file = self.store.file(&app, id).await?.ok_or(FilesError::NotFound)?;
        if file.state == FileState::Uploading && file.received == file.size {
            file = self.assemble(file).await?;
        }
        Ok(file)
    }

    /// Takes the upload for this request, or `UploadBusy` when another request (on this
    /// node or another) writes to it.
    async fn start_writing(&self, app: &AppId, id: &FileId) -> Result<WritingGuard<'_>, FilesError> {
        {
            let mut writing = self
                .writing
                .lock()
                .map_err(|_| FilesError::Internal("upload lock poisoned".into()))?;
            if !writing.insert(id.clone()) {
                return Err(FilesError::UploadBusy);
            }
        }
        let mut guard = WritingGuard {
            files: self,
            app: app.clone(),
            id: id.clone(),
            token: ulid::Ulid::new().to_string(),
            renewed: std::time::Instant::now(),
            ended: false,
        };
        let now = now_ms();
        let leased = self
            .store
            .lease_upload(app, id, &guard.token, now, now + LEASE.as_millis() as i64)
            .await;
        match leased {
            Ok(true) => Ok(guard),
            Ok(false) => {
                guard.ended = true;
                Err(FilesError::UploadBusy)
            }
            Err(e) => {
                guard.ended = true;
                Err(e.into())
            }
        }
    }

    async fn store_piece(
        &self,
        app: &AppId,
        id: &FileId,
        at: u64,
        piece: Bytes,
        pieces: &mut Vec<String>,
    ) -> Result<u64, FilesError> {
        let key = piece_key(app, id, at);
        let len = piece.len() as u64;
        self.blobs.put(&key, piece).await?;
        pieces.push(key);
        Ok(at + len)
    }

    async fn advance(&self, app: &AppId, id: &FileId, from: u64, to: u64) -> Result<u64, FilesError> {
        if self.store.advance_upload(app, id, from, to).await? {
            Ok(to)
        } else {
            let now = self.store.file(app, id).await?.ok_or(FilesError::NotFound)?;
            Err(FilesError::OffsetMismatch {
                given: from,
                expected: now.received,
            })
        }
    }

    async fn drop_pieces(&self, pieces: &[String]) {
        for key in pieces {
            if let Err(e) = self.blobs.delete(key).await {
                tracing::warn!(error = %e, key, "could not delete a staged piece");
            }
        }
    }

    /// Reads the staged pieces back in order into the file's object, hashing them, and
    /// completes the file if the hash is the announced one; otherwise the file fails and
    /// its object is removed. The staged pieces are removed either way.
    async fn assemble(&self, file: FileRecord) -> Result<FileRecord, FilesError> {
        let app = file.app_id.clone();
        let staged: std::collections::BTreeMap<u64, (String, u64)> = self
            .blobs
            .list(&staging_prefix(&app, &file.id))
            .await?
            .into_iter()
            .filter_map(|(key, size)| {
                let offset = key.rsplit('/').next()?.parse::<u64>().ok()?;
                Some((offset, (key, size)))
            })
            .collect();
        // The pieces that tile 0..size; anything else is left over from a refused request.
        let mut chain = Vec::new();
        let mut at = 0;
        while at < file.size {
            let Some((key, size)) = staged.get(&at) else {
                return Err(FilesError::Internal(format!(
                    "upload {} has no staged piece at offset {at}",
                    file.id
                )));
            };
            chain.push(key.clone());
            at += size.max(&1);
        }
        let hasher = Arc::new(Mutex::new(Sha256::new()));
        let blobs = self.blobs.clone();
        let h = hasher.clone();
        let stream = futures::stream::iter(chain)
            .then(move |key| {
                let blobs = blobs.clone();
                async move { blobs.get(&key, None).await }
            })
            .try_flatten()
            .inspect_ok(move |b| {
                if let Ok(mut h) = h.lock() {
                    h.update(b);
                }
            })
            .boxed();
        let headers = ObjectHeaders {
            content_type: file.content_type.clone(),
            content_disposition: disposition::content_disposition(&file.name),
        };
        let key = object_key(&app, &file.id);
        let written = self.blobs.write_stream(&key, &headers, stream).await?;
        let digest = hasher
            .lock()
            .map(|h| hex::encode(h.clone().finalize()))
            .map_err(|_| FilesError::Internal("hasher poisoned".into()))?;
        let matches = written == file.size && digest == file.sha256;
        if !matches {
            self.blobs.delete(&key).await?;
        }
        let state = if matches {
            FileState::Complete
        } else {
            FileState::Failed
        };
        self.store.finish_upload(&app, &file.id, state, now_ms()).await?;
        self.delete_staged(&app, &file.id).await;
        if !matches {
            return Err(FilesError::ChecksumMismatch(
                "the file's SHA-256 is not the one announced; the upload is refused".into(),
            ));
        }
        self.make_thumbnail(&file).await;
        self.store.file(&app, &file.id).await?.ok_or(FilesError::NotFound)
    }

    /// Makes the thumbnail of a file that just completed, if it is an image of a format
    /// Tern decodes and of a size it will decode. Whatever goes wrong (a malformed image, a
    /// decompression bomb, the store) leaves the file as it is, without a thumbnail.
    async fn make_thumbnail(&self, file: &FileRecord) {
        if !thumbnail::applies_to(&file.content_type) || file.size > thumbnail::MAX_SOURCE_BYTES {
            return;
        }
        let made = async {
            let mut source = Vec::with_capacity(file.size as usize);
            let mut stream = self.blobs.get(&object_key(&file.app_id, &file.id), None).await?;
            while let Some(chunk) = stream.next().await {
                source.extend_from_slice(&chunk?);
                if source.len() as u64 > thumbnail::MAX_SOURCE_BYTES {
                    return Err(FilesError::Internal("the stored file is larger than announced".into()));
                }
            }
            let png = tokio::task::spawn_blocking(move || thumbnail::make(&source))
                .await
                .map_err(|e| FilesError::Internal(format!("thumbnail task failed: {e}")))?
                .map_err(|e| FilesError::InvalidArgument(e.to_string()))?;
            let headers = ObjectHeaders {
                content_type: thumbnail::THUMBNAIL_CONTENT_TYPE.to_owned(),
                content_disposition: "inline; filename=\"thumbnail.png\"".to_owned(),
            };
            let one = futures::stream::iter([Ok(Bytes::from(png))]).boxed();
            self.blobs
                .write_stream(&thumbnail_key(&file.app_id, &file.id), &headers, one)
                .await?;
            Ok::<_, FilesError>(())
        };
        if let Err(e) = made.await {
            tracing::info!(file = %file.id, reason = %e, "no thumbnail for this image");
        }
    }

    /// Removes a file's object, thumbnail and staged pieces (not its record).
    async fn delete_objects(&self, app: &AppId, id: &FileId) -> Result<(), FilesError> {
        self.delete_staged(app, id).await;
        self.blobs.delete(&thumbnail_key(app, id)).await?;
        self.blobs.delete(&object_key(app, id)).await?;
        Ok(())
    }

    async fn delete_staged(&self, app: &AppId, id: &FileId) {
        match self.blobs.list(&staging_prefix(app, id)).await {
            Ok(keys) => {
                for (key, _) in keys {
                    if let Err(e) = self.blobs.delete(&key).await {
                        tracing::warn!(error = %e, key, "could not delete a staged piece");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, file = %id, "could not list staged pieces"),
        }
    }

    /// Ends an upload early (tus termination): its staged bytes and record are removed.
    /// A complete file cannot be removed this way.
    pub async fn terminate(&self, id: &FileId, grant: &UrlGrant) -> Result<(), FilesError> {
        let file = self.upload(id, grant).await?;
        if file.state == FileState::Complete {
            return Err(FilesError::InvalidArgument(
                "the upload is complete; it cannot be terminated".into(),
            ));
        }
        let guard = self.start_writing(&file.app_id, id).await?;
        self.delete_staged(&file.app_id, id).await;
        let deleted = self.store.delete_file(&file.app_id, id).await;
        guard.finish().await;
        deleted?;
        Ok(())
    }

    /// A complete file of `app`, if `who` may see it: the app itself, the uploader, or a
    /// member of a conversation it was sent in. `NotFound` otherwise, whatever the reason.
    pub async fn visible_file(&self, app: &App, id: &FileId, who: &Downloader) -> Result<FileRecord, FilesError> {
        let file = self.store.file(&app.id, id).await?.ok_or(FilesError::NotFound)?;
        let allowed = match who {
            Downloader::App => true,
            Downloader::User(user) if *user == file.uploader => true,
            Downloader::User(user) => {
                let mut allowed = false;
                for conversation in self.store.file_refs(&app.id, id).await? {
                    if self.is_member(app, &conversation, user).await? {
                        allowed = true;
                        break;
                    }
                }
                allowed
            }
        };
        if !allowed {
            return Err(FilesError::NotFound);
        }
        if file.state != FileState::Complete {
            return Err(FilesError::NotReady);
        }
        Ok(file)
    }

    async fn is_member(&self, app: &App, conversation: &ConversationId, user: &UserId) -> Result<bool, FilesError> {
        Ok(match conversation {
            ConversationId::Direct(a, b) => a == user || b == user,
            ConversationId::System(u) => u == user,
            ConversationId::Group(g) => self.store.group_member(&app.id, g, user).await?.is_some(),
            // Rooms keep no membership: whoever may join may read what was sent there.
            ConversationId::Room(_) => true,
        })
    }

    /// An expiring download URL for a complete file `who` may see: the store's own
    /// presigned URL (S3), or Tern's signed content URL.
    pub async fn download(&self, app: &App, id: &FileId, who: &Downloader) -> Result<DownloadTicket, FilesError> {
        let file = self.visible_file(app, id, who).await?;
        let ttl = self.config.download_ttl;
        let expires_at = now_secs() + ttl.as_secs() as i64;
        let url = match self.blobs.presigned_get(&object_key(&app.id, id), ttl).await? {
            Some(url) => url,
            None => format!(
                "/v1/files/{id}/content?{}",
                self.signer.query(UrlPurpose::Download, &app.id, id, expires_at)
            ),
        };
        let thumb = thumbnail_key(&app.id, id);
        let thumbnail_url = match self.blobs.size(&thumb).await? {
            None => None,
            Some(_) => Some(match self.blobs.presigned_get(&thumb, ttl).await? {
                Some(url) => url,
                None => format!(
                    "/v1/files/{id}/thumbnail?{}",
                    self.signer.query(UrlPurpose::Thumbnail, &app.id, id, expires_at)
                ),
            }),
        };
        Ok(DownloadTicket {
            file,
            url,
            expires_at,
            thumbnail_url,
        })
    }

    /// The thumbnail a signed thumbnail URL names (served by Tern): its bytes (PNG), or
    /// `NotFound` when the file is gone or got none.
    pub async fn thumbnail(&self, id: &FileId, grant: &UrlGrant) -> Result<Bytes, FilesError> {
        let app = self.signer.verify(UrlPurpose::Thumbnail, id, grant, now_secs())?;
        let file = self.store.file(&app, id).await?.ok_or(FilesError::NotFound)?;
        if file.state != FileState::Complete {
            return Err(FilesError::NotFound);
        }
        let stream = match self.blobs.get(&thumbnail_key(&app, id), None).await {
            Ok(s) => s,
            Err(FileStoreError::NotFound(_)) => return Err(FilesError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let chunks: Vec<Bytes> = stream.try_collect().await?;
        Ok(chunks.concat().into())
    }

    /// The complete file a signed content URL names (downloads served by Tern).
    pub async fn content_file(&self, id: &FileId, grant: &UrlGrant) -> Result<FileRecord, FilesError> {
        let app = self.signer.verify(UrlPurpose::Download, id, grant, now_secs())?;
        let file = self.store.file(&app, id).await?.ok_or(FilesError::NotFound)?;
        if file.state != FileState::Complete {
            return Err(FilesError::NotFound);
        }
        Ok(file)
    }

    /// The bytes of a complete file, or of `range` of it.
    pub async fn read(&self, file: &FileRecord, range: Option<Range<u64>>) -> Result<ByteStream, FilesError> {
        Ok(self.blobs.get(&object_key(&file.app_id, &file.id), range).await?)
    }

    /// What `app` keeps in the file store.
    pub async fn usage(&self, app: &App) -> Result<StorageUsage, FilesError> {
        Ok(self.store.storage_usage(&app.id).await?)
    }

    /// Removes uploads never completed whose time ran out and uploads that failed their
    /// checksum, with their staged bytes; at most `limit` per call. Returns how many.
    pub async fn sweep(&self, now: UnixMillis, limit: u32) -> Result<usize, FilesError> {
        let stale = self.store.stale_uploads(now, limit).await?;
        let mut removed = 0;
        for file in stale {
            self.delete_objects(&file.app_id, &file.id).await?;
            if self.store.delete_file(&file.app_id, &file.id).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Deletes the files whose messages went away (recalled, edited to name another file,
    /// or their group or room deleted) at least `config.release_grace` before `now`, when no
    /// message that is not recalled still names them; a file in use again is kept and its
    /// release cleared. At most `limit` per call. Returns how many were deleted.
    pub async fn sweep_released(&self, now: UnixMillis, limit: u32) -> Result<usize, FilesError> {
        let before = now - self.config.release_grace.as_millis() as i64;
        let released = self.store.released_files(before, limit).await?;
        let mut removed = 0;
        for file in released {
            if self.store.file_in_use(&file.app_id, &file.id).await? {
                self.store.keep_file(&file.app_id, &file.id).await?;
                continue;
            }
            self.delete_objects(&file.app_id, &file.id).await?;
            if self.store.delete_file(&file.app_id, &file.id).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// How often the sweep of abandoned uploads runs on a worker node.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// The worker's sweep of uploads never completed (and failed ones), every ten minutes
/// until `stop`.
pub async fn sweep_task(files: Arc<Files>, stop: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(SWEEP_EVERY) => {}
            () = stop.cancelled() => return,
        }
        loop {
            match files.sweep(now_ms(), 500).await {
                Ok(500) => continue,
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(removed = n, "swept abandoned uploads");
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sweeping abandoned uploads failed; retrying later");
                    break;
                }
            }
        }
        loop {
            match files.sweep_released(now_ms(), 500).await {
                Ok(500) => continue,
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(removed = n, "deleted the files of recalled or deleted messages");
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "deleting released files failed; retrying later");
                    break;
                }
            }
        }
    }
}
