//! Tern's own signed URLs, for the upload endpoint (every adapter) and for downloads served
//! by Tern (a local directory, memory): `?app=<app id>&exp=<unix s>&sig=<hex>`, where `sig`
//! is HMAC-SHA256, under a key derived from the master key, of the purpose, the app, the
//! file and the expiry. Whoever holds the URL may use it until it expires; it names one
//! file of one app for one purpose, so it cannot be turned into another.

use hmac::Mac;
use subtle::ConstantTimeEq;

use crate::auth::credentials::keyed_hmac;
use crate::ids::{AppId, FileId};

/// What a signed URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlPurpose {
    Upload,
    Download,
    /// The thumbnail of an image (downloads served by Tern).
    Thumbnail,
}

impl UrlPurpose {
    fn label(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Download => "download",
            Self::Thumbnail => "thumbnail",
        }
    }
}

/// The query parameters of a signed URL, as received (parsed by the door).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct UrlGrant {
    #[serde(default)]
    pub app: String,
    #[serde(default)]
    pub exp: i64,
    #[serde(default)]
    pub sig: String,
}

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlRefusal {
    /// Missing, malformed or wrong signature (or app).
    Invalid,
    /// Signed correctly but `exp` has passed.
    Expired,
}

#[derive(Clone)]
pub struct UrlSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(<redacted>)")
    }
}

impl UrlSigner {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, purpose: UrlPurpose, app: &str, file: &FileId, exp: i64) -> Vec<u8> {
        let mut mac = keyed_hmac(&self.key);
        mac.update(format!("tern-file-url-v1\n{}\n{app}\n{file}\n{exp}", purpose.label()).as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// The query string (without `?`) that grants `purpose` on `file` until `exp` (unix s).
    pub fn query(&self, purpose: UrlPurpose, app: &AppId, file: &FileId, exp: i64) -> String {
        let sig = hex::encode(self.mac(purpose, app.as_str(), file, exp));
        format!("app={app}&exp={exp}&sig={sig}")
    }

    /// The app the grant is for, when its signature is right and it has not expired at
    /// `now` (unix s). The signature is checked first, in constant time.
    pub fn verify(&self, purpose: UrlPurpose, file: &FileId, grant: &UrlGrant, now: i64) -> Result<AppId, UrlRefusal> {
        let app = AppId::parse(&grant.app).map_err(|_| UrlRefusal::Invalid)?;
        let given = hex::decode(&grant.sig).map_err(|_| UrlRefusal::Invalid)?;
        let expected = self.mac(purpose, app.as_str(), file, grant.exp);
        if given.len() != expected.len() || !bool::from(given.ct_eq(&expected)) {
            return Err(UrlRefusal::Invalid);
        }
        if grant.exp < now {
            return Err(UrlRefusal::Expired);
        }
        Ok(app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(q: &str) -> UrlGrant {
        serde_urlencoded::from_str(q).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_grant_names_one_purpose_one_file_and_expires() {
        let s = UrlSigner::new([7; 32]);
        let app = AppId::generate();
        let file = FileId::generate();
        let q = s.query(UrlPurpose::Upload, &app, &file, 1000);
        assert_eq!(s.verify(UrlPurpose::Upload, &file, &grant(&q), 999), Ok(app.clone()));
        assert_eq!(
            s.verify(UrlPurpose::Upload, &file, &grant(&q), 1001),
            Err(UrlRefusal::Expired)
        );
        assert_eq!(
            s.verify(UrlPurpose::Download, &file, &grant(&q), 999),
            Err(UrlRefusal::Invalid)
        );
        assert_eq!(
            s.verify(UrlPurpose::Upload, &FileId::generate(), &grant(&q), 999),
            Err(UrlRefusal::Invalid)
        );
        let longer = q.replace("exp=1000", "exp=2000");
        assert_eq!(
            s.verify(UrlPurpose::Upload, &file, &grant(&longer), 999),
            Err(UrlRefusal::Invalid)
        );
        let other = UrlSigner::new([8; 32]);
        assert_eq!(
            other.verify(UrlPurpose::Upload, &file, &grant(&q), 999),
            Err(UrlRefusal::Invalid)
        );
    }
}
