//! The upload endpoint, tus 1.0 (core, creation, checksum, expiration, termination), and the
//! content of files served by Tern itself (a local directory or memory; S3 serves its own).
//!
//! Upload URLs carry their own signature (`?app=…&exp=…&sig=…`, `files::url_signing`), so a
//! plain tus client (tus-js-client, TUSKit, tus-android-client) can resume with one after a
//! dropped connection without knowing the app's secret. Creation (`POST /v1/uploads`) is a
//! server API call, signed like any other (or with the server bearer token), with the tus
//! headers `Upload-Length` and `Upload-Metadata` (`filename`, `filetype`, `sha256` in hex,
//! `uploader`). Every answer carries `Tus-Resumable: 1.0.0`; errors have the usual JSON
//! shape with tus's status codes (409 offset, 460 checksum, 410 expired).

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::TryStreamExt;
use tern_platform::domain::{parse_sha256_hex, ContentType, FileName, FileRecord};
use tern_platform::files::{PieceChecksum, UploadRequest, UrlGrant, CHECKSUM_ALGORITHMS};

use super::files::absolute;
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::input::file_id as parse_file_id;
use crate::state::ApiState;

const TUS_VERSION: &str = "1.0.0";
const TUS_EXTENSIONS: &str = "creation,checksum,expiration,termination";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Adds `Tus-Resumable` to every answer of the upload endpoint, errors included.
pub async fn tus_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut res = next.run(req).await;
    res.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    res
}

/// Requests other than OPTIONS must say which tus version they speak.
fn check_version(headers: &HeaderMap) -> Result<(), ApiError> {
    match header(headers, "tus-resumable") {
        Some(TUS_VERSION) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "tus_version_unsupported",
            format!("send Tus-Resumable: {TUS_VERSION}"),
        )),
    }
}

/// An HTTP-date (RFC 9110 IMF-fixdate), for `Upload-Expires`.
fn http_date_secs(unix_secs: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix_secs) else {
        return String::new();
    };
    let short = |s: String| s.chars().take(3).collect::<String>();
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        short(t.weekday().to_string()),
        t.day(),
        short(t.month().to_string()),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn set(res: &mut Response, name: &'static str, value: impl AsRef<str>) {
    if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
        res.headers_mut().insert(name, v);
    }
}

fn offset_answer(status: StatusCode, file: &FileRecord) -> Response {
    let mut res = status.into_response();
    set(&mut res, "upload-offset", file.received.to_string());
    set(&mut res, "upload-length", file.size.to_string());
    set(&mut res, "cache-control", "no-store");
    if file.received < file.size {
        set(
            &mut res,
            "upload-expires",
            http_date_secs(file.upload_expires_at.div_euclid(1000)),
        );
    }
    res
}

/// `OPTIONS`: what this server supports.
pub async fn options() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    set(&mut res, "tus-version", TUS_VERSION);
    set(&mut res, "tus-extension", TUS_EXTENSIONS);
    set(&mut res, "tus-checksum-algorithm", CHECKSUM_ALGORITHMS);
    res
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs.
fn metadata(headers: &HeaderMap) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let mut out = std::collections::HashMap::new();
    let Some(raw) = header(headers, "upload-metadata") else {
        return Ok(out);
    };
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|_| ApiError::invalid(format!("Upload-Metadata: {key} is not base64")))?;
        let value =
            String::from_utf8(bytes).map_err(|_| ApiError::invalid(format!("Upload-Metadata: {key} is not UTF-8")))?;
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

/// `POST /v1/uploads` (tus creation): a signed server API request with `Upload-Length` and
/// `Upload-Metadata` (`filename`, `filetype`, `sha256` hex, `uploader`). Answers 201 with the
/// upload URL in `Location`.
pub async fn create(State(st): State<ApiState>, headers: HeaderMap, req: Signed<()>) -> Result<Response, ApiError> {
    check_version(&headers)?;
    if header(&headers, "upload-defer-length").is_some() {
        return Err(ApiError::invalid(
            "Upload-Defer-Length is not supported: send Upload-Length",
        ));
    }
    let size: u64 = header(&headers, "upload-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::invalid("Upload-Length must be a whole number of bytes"))?;
    let meta = metadata(&headers)?;
    let field = |k: &str| {
        meta.get(k)
            .map(String::as_str)
            .ok_or_else(|| ApiError::invalid(format!("Upload-Metadata must carry {k}")))
    };
    let upload = UploadRequest {
        uploader: super::users::parse_user(field("uploader")?)?,
        name: FileName::parse(field("filename")?).map_err(|e| ApiError::invalid(e.to_string()))?,
        content_type: ContentType::parse(field("filetype")?).map_err(|e| ApiError::invalid(e.to_string()))?,
        size,
        sha256: parse_sha256_hex(field("sha256")?).map_err(|e| ApiError::invalid(e.to_string()))?,
    };
    let ticket = st.files.create_upload(&req.app, upload).await?;
    let mut res = offset_answer(StatusCode::CREATED, &ticket.file);
    set(&mut res, "location", absolute(&st, &headers, &ticket.upload_path));
    Ok(res)
}

/// `HEAD`: how many bytes arrived.
pub async fn head(
    State(st): State<ApiState>,
    ApiPath(file_id): ApiPath<String>,
    Query(grant): Query<UrlGrant>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    let id = parse_file_id(&file_id)?;
    let file = st.files.upload(&id, &grant).await?;
    Ok(offset_answer(StatusCode::OK, &file))
}

/// `Upload-Checksum: <algorithm> <base64 digest>`.
fn piece_checksum(headers: &HeaderMap) -> Result<Option<PieceChecksum>, ApiError> {
    let Some(raw) = header(headers, "upload-checksum") else {
        return Ok(None);
    };
    let (algorithm, digest) = raw
        .trim()
        .split_once(' ')
        .ok_or_else(|| ApiError::invalid("Upload-Checksum must be `<algorithm> <base64 digest>`"))?;
    let digest = base64::engine::general_purpose::STANDARD
        .decode(digest.trim())
        .map_err(|_| ApiError::invalid("Upload-Checksum: the digest is not base64"))?;
    Ok(Some(PieceChecksum {
        algorithm: algorithm.to_ascii_lowercase(),
        digest,
    }))
}

/// `PATCH`: bytes at `Upload-Offset`. The last piece completes the file, after its SHA-256
/// checked out.
pub async fn patch(
    State(st): State<ApiState>,
    ApiPath(file_id): ApiPath<String>,
    Query(grant): Query<UrlGrant>,
    req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    check_version(&headers)?;
    if header(&headers, "content-type") != Some("application/offset+octet-stream") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a PATCH must have Content-Type: application/offset+octet-stream",
        ));
    }
    let offset: u64 = header(&headers, "upload-offset")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::invalid("Upload-Offset must be a whole number of bytes"))?;
    let checksum = piece_checksum(&headers)?;
    let id = parse_file_id(&file_id)?;
    let body = req
        .into_body()
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.to_string()));
    let file = st.files.append(&id, &grant, offset, checksum, Box::pin(body)).await?;
    Ok(offset_answer(StatusCode::NO_CONTENT, &file))
}

/// `DELETE` (tus termination): the upload and what arrived of it are removed.
pub async fn delete(
    State(st): State<ApiState>,
    ApiPath(file_id): ApiPath<String>,
    Query(grant): Query<UrlGrant>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    let id = parse_file_id(&file_id)?;
    st.files.terminate(&id, &grant).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A `Range` that no part of the file satisfies (416).
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// One `bytes=` range of a file of `size` bytes: `Ok(None)` for no (or an ignorable)
/// Range header, `Err` when it cannot be satisfied.
pub fn parse_range(raw: Option<&str>, size: u64) -> Result<Option<std::ops::Range<u64>>, Unsatisfiable> {
    let Some(spec) = raw.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    // Several ranges would need a multipart answer: serve the whole file instead (allowed).
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(Unsatisfiable)?;
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let n: u64 = end.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 {
            return Err(Unsatisfiable);
        }
        size.saturating_sub(n)..size
    } else {
        let s: u64 = start.parse().map_err(|_| Unsatisfiable)?;
        let e: u64 = if end.is_empty() {
            size.saturating_sub(1)
        } else {
            end.parse::<u64>()
                .map_err(|_| Unsatisfiable)?
                .min(size.saturating_sub(1))
        };
        if s >= size || e < s {
            return Err(Unsatisfiable);
        }
        s..e + 1
    };
    Ok(Some(range))
}

/// The content of a complete file, by a signed download URL, with `Range` support and
/// headers that keep a browser from rendering it as the site's own page.
pub async fn content(
    State(st): State<ApiState>,
    ApiPath(file_id): ApiPath<String>,
    Query(grant): Query<UrlGrant>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_file_id(&file_id)?;
    let file = st.files.content_file(&id, &grant).await?;
    let range = match parse_range(header(&headers, "range"), file.size) {
        Ok(r) => r,
        Err(Unsatisfiable) => {
            let mut res = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {} bytes", file.size),
            )
            .into_response();
            set(&mut res, "content-range", format!("bytes */{}", file.size));
            return Ok(res);
        }
    };
    let stream = st.files.read(&file, range.clone()).await?;
    let mut res = Response::new(Body::from_stream(stream));
    match &range {
        Some(r) => {
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            set(
                &mut res,
                "content-range",
                format!("bytes {}-{}/{}", r.start, r.end - 1, file.size),
            );
            set(&mut res, "content-length", (r.end - r.start).to_string());
        }
        None => set(&mut res, "content-length", file.size.to_string()),
    }
    set(&mut res, "accept-ranges", "bytes");
    set(&mut res, "content-type", &file.content_type);
    set(
        &mut res,
        "content-disposition",
        tern_platform::files::disposition::content_disposition(&file.name),
    );
    set(&mut res, "x-content-type-options", "nosniff");
    set(&mut res, "content-security-policy", "sandbox; default-src 'none'");
    set(&mut res, "cache-control", "private, max-age=3600");
    set(&mut res, "etag", format!("\"{}\"", file.sha256));
    Ok(res)
}

/// The thumbnail of an image file, by a signed thumbnail URL (a PNG, shown inline).
pub async fn thumbnail(
    State(st): State<ApiState>,
    ApiPath(file_id): ApiPath<String>,
    Query(grant): Query<UrlGrant>,
) -> Result<Response, ApiError> {
    let id = parse_file_id(&file_id)?;
    let png = st.files.thumbnail(&id, &grant).await?;
    let len = png.len();
    let mut res = Response::new(Body::from(png));
    set(&mut res, "content-length", len.to_string());
    set(
        &mut res,
        "content-type",
        tern_platform::files::thumbnail::THUMBNAIL_CONTENT_TYPE,
    );
    set(&mut res, "content-disposition", "inline; filename=\"thumbnail.png\"");
    set(&mut res, "x-content-type-options", "nosniff");
    set(&mut res, "content-security-policy", "sandbox; default-src 'none'");
    set(&mut res, "cache-control", "private, max-age=3600");
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::{parse_range, Unsatisfiable};

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-4"), 10), Ok(Some(0..5)));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Ok(Some(5..10)));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some(7..10)));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Ok(Some(8..10)));
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=x-2"), 10), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=-0"), 10), Err(Unsatisfiable));
    }
}
