//! Secrets at rest: AppSecrets and webhook secrets are stored only as AES-256-GCM
//! ciphertexts under the master key.
//!
//! Layout of a sealed value: `[key version: 1 byte][nonce: 12 bytes][ciphertext + tag]`.
//! The owning app's id is the associated data, so a ciphertext copied into another app's
//! row fails to open. The version byte lets a later key rotation keep old rows readable.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

/// The version byte written by this key. Rotation will introduce 2, 3, ...
const KEY_VERSION: u8 = 1;
/// Name of the key file on the embedded default, inside the data dir.
pub const KEY_FILE_NAME: &str = "master.key";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretBoxError {
    #[error("TERN_MASTER_KEY must be 64 hexadecimal characters (32 bytes); got {0} characters")]
    BadKeyLength(usize),
    #[error("TERN_MASTER_KEY is not valid hexadecimal")]
    BadKeyHex,
    #[error("the key file {0} is malformed: it must hold 64 hexadecimal characters")]
    BadKeyFile(String),
    #[error("could not read or create the key file {path}: {reason}")]
    KeyFileIo { path: String, reason: String },
    #[error("stored secret was sealed with key version {0}, which this key cannot open")]
    UnknownKeyVersion(u8),
    #[error("stored secret does not open with this master key (wrong key, or the row was tampered with)")]
    Undecryptable,
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac = crate::auth::credentials::keyed_hmac(key);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The master key. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
    /// The root of keys derived for other uses (`derive_key`): HMAC-SHA256 of a fixed label
    /// under the master key, so a derived key never reveals the master key.
    derive_root: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<redacted>)")
    }
}

impl SecretBox {
    pub fn from_key(key: [u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(&key.into()),
            derive_root: hmac_sha256(&key, b"tern derived keys v1"),
        }
    }

    /// A 32-byte key for `purpose` (e.g. signing file URLs), the same on every node that
    /// has this master key and different for every purpose.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(&self.derive_root, purpose.as_bytes())
    }

    /// Parses `TERN_MASTER_KEY`: exactly 64 hex characters.
    pub fn from_hex(hex_key: &str) -> Result<Self, SecretBoxError> {
        let hex_key = hex_key.trim();
        if hex_key.len() != 64 {
            return Err(SecretBoxError::BadKeyLength(hex_key.len()));
        }
        let bytes = hex::decode(hex_key).map_err(|_| SecretBoxError::BadKeyHex)?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Ok(Self::from_key(key))
    }

    /// Loads the key file in `data_dir`, or creates it (mode 0600) when `create` is true
    /// and it does not exist. Returns the box and whether the key was created now.
    pub fn load_or_create_key_file(data_dir: &Path, create: bool) -> Result<(Self, bool), SecretBoxError> {
        let path = data_dir.join(KEY_FILE_NAME);
        let io_err = |e: std::io::Error| SecretBoxError::KeyFileIo {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let b =
                    Self::from_hex(text.trim()).map_err(|_| SecretBoxError::BadKeyFile(path.display().to_string()))?;
                Ok((b, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                std::fs::create_dir_all(data_dir).map_err(io_err)?;
                let mut key = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                write_private(&path, &hex::encode(key)).map_err(io_err)?;
                Ok((Self::from_key(key), true))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Encrypts `plaintext` bound to `owner` (the app id).
    pub fn seal(&self, owner: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: owner.as_bytes(),
                },
            )
            // AES-GCM encryption fails only for inputs over 64 GiB.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + 12 + ct.len());
        out.push(KEY_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, owner: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretBoxError> {
        let (&version, rest) = sealed.split_first().ok_or(SecretBoxError::Undecryptable)?;
        if version != KEY_VERSION {
            return Err(SecretBoxError::UnknownKeyVersion(version));
        }
        if rest.len() < 12 + 16 {
            return Err(SecretBoxError::Undecryptable);
        }
        let (nonce, ct) = rest.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SecretBoxError::Undecryptable)
    }

    /// `open` for secrets that are UTF-8 strings.
    pub fn open_string(&self, owner: &str, sealed: &[u8]) -> Result<String, SecretBoxError> {
        String::from_utf8(self.open(owner, sealed)?).map_err(|_| SecretBoxError::Undecryptable)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_owner_and_key() {
        let b = SecretBox::from_key([7; 32]);
        let sealed = b.seal("app_a", b"sk_secret");
        assert_eq!(b.open("app_a", &sealed).unwrap(), b"sk_secret");
        assert_eq!(b.open("app_b", &sealed), Err(SecretBoxError::Undecryptable));
        assert_eq!(
            SecretBox::from_key([8; 32]).open("app_a", &sealed),
            Err(SecretBoxError::Undecryptable)
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(b.open("app_a", &tampered), Err(SecretBoxError::Undecryptable));
        let mut wrong_version = sealed;
        wrong_version[0] = 9;
        assert_eq!(
            b.open("app_a", &wrong_version),
            Err(SecretBoxError::UnknownKeyVersion(9))
        );
        assert_eq!(b.open("app_a", &[]), Err(SecretBoxError::Undecryptable));
    }

    #[test]
    fn master_key_from_the_environment_must_be_64_hex() {
        assert_eq!(
            SecretBox::from_hex("abcd").unwrap_err(),
            SecretBoxError::BadKeyLength(4)
        );
        assert_eq!(
            SecretBox::from_hex(&"zz".repeat(32)).unwrap_err(),
            SecretBoxError::BadKeyHex
        );
        assert!(SecretBox::from_hex(&"0a".repeat(32)).is_ok());
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (b1, created) = SecretBox::load_or_create_key_file(dir.path(), true).unwrap();
        assert!(created);
        let (b2, created) = SecretBox::load_or_create_key_file(dir.path(), true).unwrap();
        assert!(!created);
        let sealed = b1.seal("o", b"x");
        assert_eq!(b2.open("o", &sealed).unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            SecretBox::load_or_create_key_file(empty.path(), false),
            Err(SecretBoxError::KeyFileIo { .. })
        ));
    }
}
