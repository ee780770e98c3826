//! The files commands of a session (client.proto 120-129): announce an upload as the
//! connected user, and get a download URL of a file the user may see. The rules are
//! `tern_platform::files`, the same the server API applies.

use tern_platform::domain::{parse_sha256_hex, App, ContentType, FileName};
use tern_platform::files::{Downloader, Files, FilesError, UploadRequest};
use tern_platform::ids::{FileId, UserId};
use tern_platform::proto::v1 as pb;

use crate::gateway::Gateway;

use pb::server_frame::Body;

fn files(gw: &Gateway) -> Result<&Files, FilesError> {
    gw.files
        .get()
        .map(|f| f.as_ref())
        .ok_or_else(|| FilesError::Unavailable("files are not served by this node".into()))
}

/// A path of Tern's with the configured public URL before it; other URLs unchanged.
fn absolute(gw: &Gateway, url: String) -> String {
    match (&gw.config.public_url, url.starts_with('/')) {
        (Some(base), true) => format!("{}{url}", base.trim_end_matches('/')),
        _ => url,
    }
}

fn invalid(e: impl std::fmt::Display) -> FilesError {
    FilesError::InvalidArgument(e.to_string())
}

/// `create_upload`: a file of the connected user.
pub(crate) async fn create_upload(
    gw: &Gateway,
    app: &App,
    user: &UserId,
    c: pb::CreateUpload,
) -> Result<Body, FilesError> {
    let size = u64::try_from(c.size).map_err(|_| invalid("size must be at least 1 byte"))?;
    let req = UploadRequest {
        uploader: user.clone(),
        name: FileName::parse(&c.name).map_err(invalid)?,
        content_type: ContentType::parse(&c.content_type).map_err(invalid)?,
        size,
        sha256: parse_sha256_hex(&c.sha256).map_err(invalid)?,
    };
    let t = files(gw)?.create_upload(app, req).await?;
    Ok(Body::Upload(pb::UploadTicket {
        file_id: t.file.id.into_string(),
        upload_url: absolute(gw, t.upload_path),
        upload_expires_at: t.upload_expires_at,
    }))
}

/// `get_file_url`: for the uploader or a member of a conversation the file was sent in.
pub(crate) async fn file_url(gw: &Gateway, app: &App, user: &UserId, g: pb::GetFileUrl) -> Result<Body, FilesError> {
    let id = FileId::parse(&g.file_id).map_err(|_| FilesError::NotFound)?;
    let d = files(gw)?.download(app, &id, &Downloader::User(user.clone())).await?;
    Ok(Body::FileUrl(pb::FileUrl {
        file_id: d.file.id.into_string(),
        url: absolute(gw, d.url),
        expires_at: d.expires_at,
        name: d.file.name,
        content_type: d.file.content_type,
        size: i64::try_from(d.file.size).unwrap_or(i64::MAX),
        thumbnail_url: d.thumbnail_url.map(|u| absolute(gw, u)).unwrap_or_default(),
    }))
}
