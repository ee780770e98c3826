//! Files through the server API (docs/files.md): announce an upload and get its tus upload
//! URL, get an expiring download URL for a user (or the app itself), and the app's storage
//! use. The operations are `tern_platform::files`; the bytes go to the upload endpoint
//! (`rest::uploads`), never through these signed routes.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::{FileRecord, StorageUsage};
use tern_platform::files::{Downloader, UploadTicket};
use utoipa::{IntoParams, ToSchema};

use super::users::parse_user;
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::input;
use crate::state::ApiState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFile {
    /// The user the file is uploaded for: they may always download it.
    pub uploader: String,
    /// The file's name as shown to users: 1 to 255 bytes, no path separators or control characters.
    pub name: String,
    /// Bytes, 1 to the app's `files.max_file_bytes` (default 100 MB).
    pub size: u64,
    /// A MIME type such as `image/png`; the app's `files.allowed_content_types` must admit it.
    pub content_type: String,
    /// Lowercase or uppercase hex SHA-256 of the whole content: the file becomes usable only
    /// if what arrives hashes to it.
    pub sha256: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileView {
    pub id: String,
    pub uploader: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    /// `uploading`, `complete` or `failed` (its SHA-256 did not match).
    pub state: String,
    /// Bytes received so far.
    pub received: u64,
    pub created_at: i64,
    /// Unix ms after which an upload still incomplete is removed.
    pub upload_expires_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
}

impl From<FileRecord> for FileView {
    fn from(f: FileRecord) -> Self {
        Self {
            id: f.id.into_string(),
            uploader: f.uploader.into_string(),
            name: f.name,
            content_type: f.content_type,
            size: f.size,
            sha256: f.sha256,
            state: f.state.as_str().to_owned(),
            received: f.received,
            created_at: f.created_at,
            upload_expires_at: f.upload_expires_at,
            completed_at: f.completed_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadAnswer {
    pub file_id: String,
    /// A tus 1.0 upload URL (HEAD, PATCH, DELETE); it carries its own signature, so any tus
    /// client can resume with it until `upload_expires_at`.
    pub upload_url: String,
    /// Unix seconds.
    pub upload_expires_at: i64,
    pub file: FileView,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DownloadAnswer {
    /// An expiring URL of the content; supports `Range` requests.
    pub url: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// An expiring URL of a PNG thumbnail (at most 256 pixels on its longest edge), for an
    /// image Tern could decode; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    pub file: FileView,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// The user who wants the file: the uploader or a member of a conversation it was sent
    /// in. Absent: the app's backend itself.
    pub user: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StorageAnswer {
    /// Complete files and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Uploads in progress and the bytes they announced.
    pub uploads_in_progress: u64,
    pub bytes_reserved: u64,
    /// The app's quota (`files.storage_quota_bytes`), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_bytes: Option<u64>,
    /// The largest file the app may upload.
    pub max_file_bytes: u64,
}

/// `scheme://host` of this API for URLs Tern hands out: the configured public URL, or the
/// request's `Host`.
pub fn origin(st: &ApiState, headers: &HeaderMap) -> String {
    if let Some(url) = &st.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// A path of Tern's made absolute; an absolute URL (a store's presigned one) unchanged.
pub fn absolute(st: &ApiState, headers: &HeaderMap, url: &str) -> String {
    if url.starts_with('/') {
        format!("{}{url}", origin(st, headers))
    } else {
        url.to_owned()
    }
}

pub fn upload_answer(st: &ApiState, headers: &HeaderMap, t: UploadTicket) -> UploadAnswer {
    UploadAnswer {
        file_id: t.file.id.to_string(),
        upload_url: absolute(st, headers, &t.upload_path),
        upload_expires_at: t.upload_expires_at,
        file: t.file.into(),
    }
}

/// Announces a file: its name, size, type and SHA-256. The answer's `upload_url` is where
/// its bytes go (tus 1.0: `PATCH` with `Upload-Offset`); the file is usable once they all
/// arrived and hashed to `sha256`.
#[utoipa::path(post, path = "/v1/files", operation_id = "create_file", tag = "files", request_body = CreateFile,
    responses((status = 201, body = UploadAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn create(
    State(st): State<ApiState>,
    headers: HeaderMap,
    req: Signed<CreateFile>,
) -> Result<(StatusCode, Json<UploadAnswer>), ApiError> {
    let b = req.body;
    let upload = input::upload(&b.uploader, &b.name, b.size, &b.content_type, &b.sha256)?;
    let ticket = st.files.create_upload(&req.app, upload).await?;
    Ok((StatusCode::CREATED, Json(upload_answer(&st, &headers, ticket))))
}

/// An expiring download URL of a complete file, for `user` if they may see it (the
/// uploader, or a member of a conversation the file was sent in); `not_found` otherwise.
#[utoipa::path(get, path = "/v1/files/{file_id}", operation_id = "get_file", tag = "files",
    params(("file_id" = String, Path), DownloadQuery),
    responses((status = 200, body = DownloadAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get(
    State(st): State<ApiState>,
    ApiPath(file_id): ApiPath<String>,
    headers: HeaderMap,
    req: Signed<()>,
) -> Result<Json<DownloadAnswer>, ApiError> {
    let id = input::file_id(&file_id)?;
    let q: DownloadQuery = req.query()?;
    let who = match q.user {
        None => Downloader::App,
        Some(u) => Downloader::User(parse_user(&u)?),
    };
    let t = st.files.download(&req.app, &id, &who).await?;
    Ok(Json(DownloadAnswer {
        url: absolute(&st, &headers, &t.url),
        expires_at: t.expires_at,
        thumbnail_url: t.thumbnail_url.map(|u| absolute(&st, &headers, &u)),
        file: t.file.into(),
    }))
}

/// What the app keeps in the file store, for the console's usage page.
#[utoipa::path(get, path = "/v1/app/storage", operation_id = "get_storage", tag = "files",
    responses((status = 200, body = StorageAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn storage(State(st): State<ApiState>, req: Signed<()>) -> Result<Json<StorageAnswer>, ApiError> {
    let StorageUsage {
        files,
        bytes,
        uploads_in_progress,
        bytes_reserved,
    } = st.files.usage(&req.app).await?;
    Ok(Json(StorageAnswer {
        files,
        bytes,
        uploads_in_progress,
        bytes_reserved,
        quota_bytes: req.app.settings.files.storage_quota_bytes,
        max_file_bytes: st.files.max_file_bytes(&req.app),
    }))
}
