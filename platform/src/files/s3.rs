//! Any S3-compatible store: `s3://BUCKET?endpoint=https://…&region=…`. Credentials come from
//! the usual `AWS_*` environment variables (or `access_key_id`/`secret_access_key` in the
//! query, for tests); an `http://` endpoint is allowed for stores on a private network.
//! Downloads are S3's own presigned URLs (SigV4, expiring); objects carry their
//! Content-Type and Content-Disposition, so S3 serves them with safe headers.

use std::str::FromStr;
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

use super::port::{FileStore, FileStoreError, FileStoreKind, ObjectFileStore};

pub fn open(url: &str) -> Result<Arc<dyn FileStore>, FileStoreError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let bucket = base
        .strip_prefix("s3://")
        .filter(|b| !b.is_empty() && !b.contains('/'))
        .ok_or_else(|| FileStoreError::Config("TERN_FILES_URL must look like s3://BUCKET?endpoint=…".into()))?;
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(false);
    for (key, value) in url_pairs(query) {
        if key == "endpoint" && value.starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
        let config_key = AmazonS3ConfigKey::from_str(&key)
            .map_err(|_| FileStoreError::Config(format!("unknown S3 setting {key:?} in TERN_FILES_URL")))?;
        builder = builder.with_config(config_key, value);
    }
    let s3 = Arc::new(
        builder
            .build()
            .map_err(|e| FileStoreError::Config(format!("cannot use {bucket}: {e}")))?,
    );
    Ok(Arc::new(ObjectFileStore::new(
        FileStoreKind::S3,
        s3.clone(),
        Some(s3),
        true,
    )))
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}
