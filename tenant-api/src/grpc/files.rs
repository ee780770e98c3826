//! gRPC `Files`: announce an upload, get a download URL, and the app's storage use, the
//! twins of `POST /v1/files`, `GET /v1/files/{file_id}` and `GET /v1/app/storage`. The
//! request is parsed as the REST one is (`input::upload`) and the same
//! `tern_platform::files` operations decide; the bytes go to the tus upload URL on the REST
//! listener, never through gRPC.

use tern_platform::domain::{FileRecord, StorageUsage};
use tern_platform::files::Downloader;
use tern_platform::proto::server_v1 as pb;
use tonic::Request;

use super::services::{app, ok, Answer, Server};
use crate::error::ApiError;
use crate::input::user as parse_user;
use crate::input::{file_id as parse_file_id, upload as parse_upload};
use crate::state::ApiState;

/// A path of Tern's on `TERN_PUBLIC_URL` when it is set; unchanged otherwise (a gRPC call
/// has no REST `Host` to build on), as is an absolute URL (a store's presigned one).
fn absolute(st: &ApiState, url: String) -> String {
    match (&st.public_url, url.starts_with('/')) {
        (Some(base), true) => format!("{}{url}", base.trim_end_matches('/')),
        _ => url,
    }
}

fn file_info(f: FileRecord) -> pb::FileInfo {
    pb::FileInfo {
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

#[tonic::async_trait]
impl pb::files_server::Files for Server {
    async fn create_file(&self, req: Request<pb::CreateFileRequest>) -> Answer<pb::FileUpload> {
        let app = app(&req)?;
        let r = req.into_inner();
        let st = &self.state;
        let result = async {
            let upload = parse_upload(&r.uploader, &r.name, r.size, &r.content_type, &r.sha256)?;
            Ok::<_, ApiError>(st.files.create_upload(&app, upload).await?)
        }
        .await;
        ok(result, |t| pb::FileUpload {
            file_id: t.file.id.to_string(),
            upload_url: absolute(st, t.upload_path),
            upload_expires_at: t.upload_expires_at,
            file: Some(file_info(t.file)),
        })
    }

    async fn get_file(&self, req: Request<pb::GetFileRequest>) -> Answer<pb::FileDownload> {
        let app = app(&req)?;
        let r = req.into_inner();
        let st = &self.state;
        let result = async {
            let id = parse_file_id(&r.file_id)?;
            let who = match r.user {
                None => Downloader::App,
                Some(u) => Downloader::User(parse_user(&u)?),
            };
            Ok::<_, ApiError>(st.files.download(&app, &id, &who).await?)
        }
        .await;
        ok(result, |t| pb::FileDownload {
            url: absolute(st, t.url),
            expires_at: t.expires_at,
            thumbnail_url: t.thumbnail_url.map(|u| absolute(st, u)),
            file: Some(file_info(t.file)),
        })
    }

    async fn get_storage(&self, req: Request<pb::Empty>) -> Answer<pb::StorageUsage> {
        let app = app(&req)?;
        let st = &self.state;
        let usage = st.files.usage(&app).await.map_err(ApiError::from);
        ok(usage, |u: StorageUsage| pb::StorageUsage {
            files: u.files,
            bytes: u.bytes,
            uploads_in_progress: u.uploads_in_progress,
            bytes_reserved: u.bytes_reserved,
            quota_bytes: app.settings.files.storage_quota_bytes,
            max_file_bytes: st.files.max_file_bytes(&app),
        })
    }
}
