//! The `FileStore` port: where the bytes of files live. One implementation over the
//! `object_store` crate serves every adapter (`local`, `s3`, `memory` build it); what differs
//! between them is whether the store can hand out presigned URLs of its own (S3) or Tern
//! serves the bytes through its own signed URLs (a local directory, memory), and whether it
//! keeps response headers with an object.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, GetResultPayload, ObjectStore, PutMultipartOptions, WriteMultipart,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Which adapter a file store is (for logs, `/readyz` and the choice of download URLs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStoreKind {
    Local,
    S3,
    Memory,
}

impl FileStoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::S3 => "s3",
            Self::Memory => "memory",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileStoreError {
    #[error("no object at {0}")]
    NotFound(String),
    /// The store could not be reached or refused the request; the cause is for the logs.
    #[error("file store error: {0}")]
    Unavailable(String),
    #[error("invalid file store configuration: {0}")]
    Config(String),
}

impl From<object_store::Error> for FileStoreError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => Self::NotFound(path),
            e => Self::Unavailable(e.to_string()),
        }
    }
}

/// Reading a local file the store handed over (`ObjectFileStore::get`).
impl From<std::io::Error> for FileStoreError {
    fn from(e: std::io::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

pub type FileStoreResult<T> = Result<T, FileStoreError>;

/// Response headers stored with an object, for stores that serve it themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHeaders {
    pub content_type: String,
    pub content_disposition: String,
}

/// A stream of an object's bytes.
pub type ByteStream = BoxStream<'static, FileStoreResult<Bytes>>;

/// Where files' bytes live. Keys are `/`-separated and made only of parsed ids, never of
/// names a user chose.
#[async_trait]
pub trait FileStore: Send + Sync + 'static {
    fn kind(&self) -> FileStoreKind;
    /// Writes one object whole (upload pieces).
    async fn put(&self, key: &str, bytes: Bytes) -> FileStoreResult<()>;
    /// Writes one object from a stream of pieces, in parts (S3 multipart upload underneath),
    /// with `headers` kept where the store serves the object itself. Nothing is visible at
    /// `key` unless the whole stream was written.
    async fn write_stream(&self, key: &str, headers: &ObjectHeaders, parts: ByteStream) -> FileStoreResult<u64>;
    /// The object's bytes, or those of `range` of it.
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> FileStoreResult<ByteStream>;
    /// The object's size, `None` when there is none.
    async fn size(&self, key: &str) -> FileStoreResult<Option<u64>>;
    /// The keys under `prefix` with their sizes.
    async fn list(&self, prefix: &str) -> FileStoreResult<Vec<(String, u64)>>;
    /// Removes an object; no error when it does not exist.
    async fn delete(&self, key: &str) -> FileStoreResult<()>;
    /// A URL that downloads the object without credentials until `expires_in` has passed,
    /// when the store can make one (S3); `None` when Tern must serve the bytes itself.
    async fn presigned_get(&self, key: &str, expires_in: Duration) -> FileStoreResult<Option<String>>;
}

/// The size of each part written to the store by `write_stream` (S3's minimum is 5 MiB).
const PART_BYTES: usize = 8 * 1024 * 1024;

/// Bytes read from a local file at a time when serving it.
const READ_PIECE: usize = 256 * 1024;

/// A `FileStore` over any `object_store` backend.
pub struct ObjectFileStore {
    kind: FileStoreKind,
    inner: Arc<dyn ObjectStore>,
    /// Present when the backend signs URLs itself (S3).
    signer: Option<Arc<dyn Signer>>,
    /// Whether the backend keeps Content-Type and Content-Disposition with an object (the
    /// local filesystem cannot; Tern sets them when it serves the bytes).
    keeps_headers: bool,
}

impl ObjectFileStore {
    pub fn new(
        kind: FileStoreKind,
        inner: Arc<dyn ObjectStore>,
        signer: Option<Arc<dyn Signer>>,
        keeps_headers: bool,
    ) -> Self {
        Self {
            kind,
            inner,
            signer,
            keeps_headers,
        }
    }
}

fn path(key: &str) -> FileStoreResult<Path> {
    Path::parse(key).map_err(|e| FileStoreError::Unavailable(format!("invalid object key {key:?}: {e}")))
}

#[async_trait]
impl FileStore for ObjectFileStore {
    fn kind(&self) -> FileStoreKind {
        self.kind
    }

    async fn put(&self, key: &str, bytes: Bytes) -> FileStoreResult<()> {
        self.inner.put(&path(key)?, bytes.into()).await?;
        Ok(())
    }

    async fn write_stream(&self, key: &str, headers: &ObjectHeaders, mut parts: ByteStream) -> FileStoreResult<u64> {
        let mut attributes = Attributes::new();
        if self.keeps_headers {
            attributes.insert(Attribute::ContentType, headers.content_type.clone().into());
            attributes.insert(
                Attribute::ContentDisposition,
                headers.content_disposition.clone().into(),
            );
        }
        let upload = self
            .inner
            .put_multipart_opts(
                &path(key)?,
                PutMultipartOptions {
                    attributes,
                    ..Default::default()
                },
            )
            .await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut written = 0u64;
        while let Some(piece) = parts.next().await {
            let piece = match piece {
                Ok(p) => p,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            };
            if let Err(e) = writer.wait_for_capacity(4).await {
                return Err(e.into());
            }
            writer.write(&piece);
            written += piece.len() as u64;
        }
        writer.finish().await?;
        Ok(written)
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> FileStoreResult<ByteStream> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let result = self.inner.get_opts(&path(key)?, options).await?;
        // A local file: read it in large pieces. object_store's own stream reads a local
        // file 8 KiB at a time on the blocking pool, which held downloads to ~195 MB/s.
        if let GetResultPayload::File(file, _) = result.payload {
            let range = result.range;
            let mut file = tokio::fs::File::from_std(file);
            file.seek(std::io::SeekFrom::Start(range.start)).await?;
            let piece = file.take(range.end - range.start);
            let stream = tokio_util::io::ReaderStream::with_capacity(piece, READ_PIECE).map_err(FileStoreError::from);
            return Ok(stream.boxed());
        }
        Ok(result.into_stream().map_err(FileStoreError::from).boxed())
    }

    async fn size(&self, key: &str) -> FileStoreResult<Option<u64>> {
        match self.inner.head(&path(key)?).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, prefix: &str) -> FileStoreResult<Vec<(String, u64)>> {
        let prefix = path(prefix)?;
        let metas: Vec<_> = self.inner.list(Some(&prefix)).try_collect().await?;
        Ok(metas.into_iter().map(|m| (m.location.to_string(), m.size)).collect())
    }

    async fn delete(&self, key: &str) -> FileStoreResult<()> {
        match self.inner.delete(&path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn presigned_get(&self, key: &str, expires_in: Duration) -> FileStoreResult<Option<String>> {
        match &self.signer {
            None => Ok(None),
            Some(signer) => {
                let url = signer.signed_url(reqwest::Method::GET, &path(key)?, expires_in).await?;
                Ok(Some(url.to_string()))
            }
        }
    }
}
