//! Files from the `ServerClient` (docs/files.md): `upload_file` announces a file with its
//! SHA-256 and sends its bytes to the tus 1.0 upload URL in pieces, each with an
//! `Upload-Checksum`; after a failed piece it asks the server where the upload stands (HEAD)
//! and resumes from there. `file_url` gets an expiring download URL.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::client::{unexpected, Client};
use crate::proto as pb;
use crate::server::{encode_segment, ServerClient, ServerError};
use crate::types::ClientError;

/// Bytes sent per PATCH by `upload_file`.
pub const DEFAULT_PIECE_BYTES: usize = 4 * 1024 * 1024;

/// An announced upload: the file's id and its tus upload URL.
#[derive(Debug, Clone, Deserialize)]
pub struct Upload {
    pub file_id: String,
    pub upload_url: String,
    /// Unix seconds.
    pub upload_expires_at: i64,
    pub file: Value,
}

/// An expiring download URL.
#[derive(Debug, Clone, Deserialize)]
pub struct Download {
    pub url: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// A PNG thumbnail (at most 256 pixels on its longest edge) of an image Tern could
    /// decode; `None` for other files.
    #[serde(default)]
    pub thumbnail_url: Option<String>,
    pub file: Value,
}

/// Where an upload stands, from the server (tus HEAD or PATCH answer).
fn offset_of(res: &reqwest::Response) -> Option<u64> {
    res.headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

async fn api_error(res: reqwest::Response) -> ServerError {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    let field = |k: &str| parsed.as_ref().and_then(|v| v["error"][k].as_str()).map(str::to_owned);
    match field("code") {
        Some(code) => ServerError::Api {
            status,
            code,
            message: field("message").unwrap_or_default(),
            request_id: field("request_id").unwrap_or_default(),
        },
        None => ServerError::Decode(format!("status {status}: {text}")),
    }
}

impl ServerClient {
    /// Announces a file of `data.len()` bytes for `uploader` (`POST /v1/files`).
    pub async fn create_file(
        &self,
        uploader: &str,
        name: &str,
        content_type: &str,
        data: &[u8],
    ) -> Result<Upload, ServerError> {
        let body = json!({
            "uploader": uploader,
            "name": name,
            "size": data.len(),
            "content_type": content_type,
            "sha256": hex::encode(Sha256::digest(data)),
        });
        self.request("POST", "/v1/files", Some(&body)).await
    }

    /// Where an upload stands: the bytes the server has (tus HEAD).
    pub async fn upload_offset(&self, upload_url: &str) -> Result<u64, ServerError> {
        upload_offset(&self.http, upload_url).await
    }

    /// Sends `data` to an upload URL: see [`send_upload`].
    pub async fn send_upload(
        &self,
        upload_url: &str,
        data: &[u8],
        piece: usize,
        retries: u32,
    ) -> Result<(), ServerError> {
        send_upload(&self.http, upload_url, data, piece, retries).await
    }

    /// Uploads `data` as a file of `uploader` and returns the announced upload once every
    /// byte arrived and the server found the SHA-256 right.
    pub async fn upload_file(
        &self,
        uploader: &str,
        name: &str,
        content_type: &str,
        data: &[u8],
    ) -> Result<Upload, ServerError> {
        let upload = self.create_file(uploader, name, content_type, data).await?;
        self.send_upload(&upload.upload_url, data, DEFAULT_PIECE_BYTES, 5)
            .await?;
        Ok(upload)
    }

    /// An expiring download URL of a complete file, for `user` (the uploader or a member of
    /// a conversation it was sent in) or, with `None`, for the app's backend.
    pub async fn file_url(&self, file_id: &str, user: Option<&str>) -> Result<Download, ServerError> {
        let mut path = format!("/v1/files/{}", encode_segment(file_id));
        if let Some(u) = user {
            path.push_str(&format!("?user={}", encode_segment(u)));
        }
        self.request("GET", &path, None).await
    }

    /// What the app keeps in the file store (`GET /v1/app/storage`).
    pub async fn storage(&self) -> Result<Value, ServerError> {
        self.request("GET", "/v1/app/storage", None).await
    }
}

/// Where an upload stands: the bytes the server has (tus HEAD).
pub async fn upload_offset(http: &reqwest::Client, upload_url: &str) -> Result<u64, ServerError> {
    let res = http.head(upload_url).header("tus-resumable", "1.0.0").send().await?;
    if !res.status().is_success() {
        return Err(ServerError::Decode(format!(
            "HEAD {upload_url}: status {}",
            res.status()
        )));
    }
    offset_of(&res).ok_or_else(|| ServerError::Decode("no Upload-Offset in the answer".into()))
}

/// Sends `data[offset..]` to an upload in pieces of `piece` bytes, each with its SHA-256
/// as `Upload-Checksum`. A piece that fails for the network is retried (up to `retries`
/// times in all) from where the server says the upload stands. Returns the file when
/// the last piece was taken (the server checked the whole SHA-256 by then).
pub async fn send_upload(
    http: &reqwest::Client,
    upload_url: &str,
    data: &[u8],
    piece: usize,
    mut retries: u32,
) -> Result<(), ServerError> {
    let mut offset = upload_offset(http, upload_url).await? as usize;
    while offset < data.len() {
        let end = (offset + piece.max(1)).min(data.len());
        let chunk = &data[offset..end];
        let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(chunk));
        let sent = http
            .patch(upload_url)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .header("upload-checksum", format!("sha256 {checksum}"))
            .body(chunk.to_vec())
            .send()
            .await;
        match sent {
            Ok(res) if res.status().is_success() => {
                offset = offset_of(&res).map(|o| o as usize).unwrap_or(end);
            }
            Ok(res) if res.status().as_u16() == 409 && retries > 0 => {
                // The server has another offset (an earlier piece landed after all).
                retries -= 1;
                offset = upload_offset(http, upload_url).await? as usize;
            }
            Ok(res) => return Err(api_error(res).await),
            Err(e) if retries > 0 => {
                retries -= 1;
                let _ = e;
                offset = upload_offset(http, upload_url).await? as usize;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Client {
    /// Announces a file of the connected user (`create_upload`); its bytes go to the
    /// answer's `upload_url` (resolve a path against the server's HTTP address).
    pub async fn create_upload(
        &self,
        name: &str,
        content_type: &str,
        data: &[u8],
    ) -> Result<pb::UploadTicket, ClientError> {
        let cmd = pb::client_frame::Command::CreateUpload(pb::CreateUpload {
            name: name.to_owned(),
            size: i64::try_from(data.len()).unwrap_or(i64::MAX),
            content_type: content_type.to_owned(),
            sha256: hex::encode(Sha256::digest(data)),
        });
        match self.request(cmd).await? {
            pb::server_frame::Body::Upload(t) => Ok(t),
            _ => Err(unexpected()),
        }
    }

    /// An expiring download URL of a complete file this user uploaded or that was sent in a
    /// conversation they are in; `not_found` otherwise.
    pub async fn file_url(&self, file_id: &str) -> Result<pb::FileUrl, ClientError> {
        let cmd = pb::client_frame::Command::GetFileUrl(pb::GetFileUrl {
            file_id: file_id.to_owned(),
        });
        match self.request(cmd).await? {
            pb::server_frame::Body::FileUrl(u) => Ok(u),
            _ => Err(unexpected()),
        }
    }
}
