//! TLS for the HTTP/WebSocket and gRPC ports, with rustls.
//!
//! A `TlsFiles` is a certificate chain and its private key, both PEM files. `Tls::load`
//! reads them once and checks that the key belongs to the certificate, so `tern serve`
//! stops with a clear message instead of failing every handshake later. Only TLS 1.2 and
//! 1.3 are offered; HTTP/2 is chosen by ALPN (`h2`, then `http/1.1` on the HTTP port,
//! `h2` alone on the gRPC port).
//!
//! Reloading: `Tls::watch` polls the two files' modification times and, when either
//! changed, reads them again. A good pair replaces the certificate new handshakes get;
//! open connections keep the session they have, so nothing is dropped. A bad pair (say,
//! the certificate written before its key) is logged and the previous pair stays in use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

/// How often `Tls::watch` looks at the files.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// Where the certificate chain and its key are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a certificate and key could not be used. The messages name the variables an
/// operator sets (`TERN_TLS_CERT`, `TERN_TLS_KEY`).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path} (TERN_TLS_CERT): {reason}")]
    ReadCert { path: String, reason: String },
    #[error("cannot read the TLS key {path} (TERN_TLS_KEY): {reason}")]
    ReadKey { path: String, reason: String },
    #[error("the TLS certificate file {path} (TERN_TLS_CERT) holds no PEM certificate")]
    NoCert { path: String },
    #[error("the TLS key file {path} (TERN_TLS_KEY) holds no PEM private key")]
    NoKey { path: String },
    #[error("the TLS key {path} (TERN_TLS_KEY) cannot be used: {reason}")]
    BadKey { path: String, reason: String },
    #[error("the TLS key {key} (TERN_TLS_KEY) does not match the certificate {cert} (TERN_TLS_CERT)")]
    Mismatch { cert: String, key: String },
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

/// The crypto this build uses (ring), whatever other crates in the process installed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks one certificate/key pair.
pub fn load_pair(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let cert_path = files.cert.display().to_string();
    let key_path = files.key.display().to_string();
    let cert_pem = std::fs::read(&files.cert).map_err(|e| TlsError::ReadCert {
        path: cert_path.clone(),
        reason: e.to_string(),
    })?;
    let key_pem = std::fs::read(&files.key).map_err(|e| TlsError::ReadKey {
        path: key_path.clone(),
        reason: e.to_string(),
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::ReadCert {
            path: cert_path.clone(),
            reason: format!("not PEM: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCert { path: cert_path });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey { path: key_path.clone() },
        other => TlsError::BadKey {
            path: key_path.clone(),
            reason: other.to_string(),
        },
    })?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::BadKey {
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        // The key type cannot tell its public half: nothing to compare, the handshake will.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(TlsError::Mismatch {
            cert: cert_path,
            key: key_path,
        }),
        Err(e) => Err(TlsError::ReadCert {
            path: cert_path,
            reason: e.to_string(),
        }),
    }
}

/// The certificate new handshakes get; swapped by a reload.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match self.0.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })
    }
}

/// One loaded certificate/key pair, reloadable, shared by every TLS port of the node.
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    current: Arc<Current>,
    stamps: Arc<std::sync::Mutex<Stamps>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// The files' modification times when last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Stamps {
    cert: Option<SystemTime>,
    key: Option<SystemTime>,
}

fn stamps(files: &TlsFiles) -> Stamps {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Stamps {
        cert: modified(&files.cert),
        key: modified(&files.key),
    }
}

impl Tls {
    /// Reads the pair; fails when a file is missing, is not PEM or the key does not
    /// belong to the certificate.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let seen = stamps(&files);
        let pair = load_pair(&files)?;
        Ok(Self {
            files,
            current: Arc::new(Current(RwLock::new(Arc::new(pair)))),
            stamps: Arc::new(std::sync::Mutex::new(seen)),
        })
    }

    /// Reads the files again if they changed since the last read. `Ok(true)`: a new pair is
    /// in use; `Ok(false)`: nothing changed; `Err`: the new files are not usable and the
    /// previous pair stays.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamps(&self.files);
        {
            let seen = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == now {
                return Ok(false);
            }
        }
        let pair = load_pair(&self.files);
        // Remember these times either way: a bad pair is reported once, not every poll.
        *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) = now;
        let pair = pair?;
        *self.current.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
        Ok(true)
    }

    /// Polls the files every `interval` until `stop`, reloading them when they change.
    pub async fn watch(self, interval: Duration, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stop.cancelled() => return,
            }
            match self.reload_if_changed() {
                Ok(true) => {
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                    metrics::counter!("tls_reloads_total", "result" => "ok").increment(1);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "TLS files changed but cannot be used: keeping the previous certificate");
                    metrics::counter!("tls_reloads_total", "result" => "error").increment(1);
                }
            }
        }
    }

    /// An acceptor offering these ALPN protocols (`h2`, `http/1.1`), TLS 1.2 and 1.3 only.
    pub fn acceptor(&self, alpn: &[&[u8]]) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.current.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    /// For the HTTP port: HTTP/2 when the client offers it, else HTTP/1.1 (WebSocket).
    pub fn http_acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        self.acceptor(&[b"h2", b"http/1.1"])
    }

    /// For the gRPC port: HTTP/2 only.
    pub fn grpc_acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        self.acceptor(&[b"h2"])
    }
}
