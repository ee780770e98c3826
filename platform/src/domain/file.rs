//! Files: what Tern knows about an uploaded file (its bytes live in the file store). A file
//! is announced with its name, size, type and SHA-256, receives its bytes in one or more
//! pieces, and becomes `Complete` only when the whole content hashed to the announced value.

use serde::Serialize;

use super::UnixMillis;
use crate::ids::{AppId, FileId, UserId};

/// Where an upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum FileState {
    /// Bytes are still arriving; nothing of it is served.
    Uploading,
    /// Every byte arrived and the SHA-256 matched: the file may be sent and downloaded.
    Complete,
    /// Every byte arrived but the SHA-256 did not match: refused for good.
    Failed,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploading => "uploading",
            Self::Complete => "complete",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// A file announced by `POST /v1/files` (or a tus creation request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    pub id: FileId,
    pub uploader: UserId,
    pub name: FileName,
    pub content_type: ContentType,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    pub created_at: UnixMillis,
    pub upload_expires_at: UnixMillis,
}

/// A stored file record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRecord {
    pub id: FileId,
    #[serde(skip)]
    pub app_id: AppId,
    pub uploader: UserId,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub state: FileState,
    /// Bytes received so far.
    pub received: u64,
    pub created_at: UnixMillis,
    pub upload_expires_at: UnixMillis,
    pub completed_at: Option<UnixMillis>,
}

/// How much an app keeps in the file store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StorageUsage {
    /// Complete files.
    pub files: u64,
    pub bytes: u64,
    /// Uploads still in progress, and the bytes they announced (counted against the quota).
    pub uploads_in_progress: u64,
    pub bytes_reserved: u64,
}

/// Why a file's name or type was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FileInputError(pub String);

/// A file's display name: 1–255 bytes of UTF-8 with no control characters, no path
/// separators and not `.` or `..`. It is only ever shown (and put in Content-Disposition,
/// encoded); storage keys never contain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    pub const MAX_BYTES: usize = 255;

    pub fn parse(s: &str) -> Result<Self, FileInputError> {
        if s.is_empty() || s.len() > Self::MAX_BYTES {
            return Err(FileInputError(format!(
                "name must be 1 to {} bytes long",
                Self::MAX_BYTES
            )));
        }
        if s.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
            return Err(FileInputError(
                "name must not contain control characters or path separators".into(),
            ));
        }
        if s == "." || s == ".." || s.trim().is_empty() {
            return Err(FileInputError("name must be a file name, not a path".into()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A MIME type as `type/subtype`, lowercased, parameters dropped
/// (`Image/PNG; charset=x` is `image/png`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType(String);

impl ContentType {
    pub fn parse(s: &str) -> Result<Self, FileInputError> {
        let essence = s.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let token = |t: &str| {
            !t.is_empty()
                && t.len() <= 127
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        };
        match essence.split_once('/') {
            Some((ty, sub)) if token(ty) && token(sub) => Ok(Self(essence)),
            _ => Err(FileInputError(format!(
                "content_type {s:?} is not a MIME type like image/png"
            ))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `pattern` (`image/png`, `image/*` or `*/*`) admits this type.
    pub fn matches(&self, pattern: &str) -> bool {
        let pattern = pattern.trim().to_ascii_lowercase();
        if pattern == "*/*" || pattern == "*" {
            return true;
        }
        match pattern.strip_suffix("/*") {
            Some(ty) => self.0.split('/').next() == Some(ty),
            None => self.0 == pattern,
        }
    }
}

/// Parses a SHA-256 given as 64 hex characters (any case); lowercase hex out.
pub fn parse_sha256_hex(s: &str) -> Result<String, FileInputError> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(FileInputError("sha256 must be 64 hexadecimal characters".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_paths_and_control_characters() {
        assert!(FileName::parse("photo 1.png").is_ok());
        assert!(FileName::parse("résumé — 日本.pdf").is_ok());
        for bad in ["", ".", "..", "../etc/passwd", "a/b", "a\\b", "a\nb", "a\u{0}b", "   "] {
            assert!(FileName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(FileName::parse(&"x".repeat(256)).is_err());
    }

    #[test]
    fn content_types_are_normalised_and_matched() {
        let t = ContentType::parse("Image/PNG; charset=binary").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.as_str(), "image/png");
        assert!(t.matches("image/*") && t.matches("image/png") && t.matches("*/*"));
        assert!(!t.matches("video/*") && !t.matches("image/jpeg"));
        for bad in ["", "image", "image/", "/png", "im age/png", "text/html\r\nx: y"] {
            assert!(ContentType::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sha256_must_be_64_hex() {
        assert_eq!(parse_sha256_hex(&"AB".repeat(32)).ok(), Some("ab".repeat(32)));
        assert!(parse_sha256_hex("abc").is_err());
        assert!(parse_sha256_hex(&"g".repeat(64)).is_err());
    }
}
