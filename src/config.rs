//! Configuration: a TOML file (`--config PATH`, else `tern.toml` when present) overlaid by
//! `TERN_*` environment variables. Everything is checked here, at start, so a typo stops the
//! process with a message naming the setting instead of surfacing later as odd behaviour.
//! Secrets (admin password, master key, passwords inside URLs) never appear in `Debug`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tern_platform::admins::DEFAULT_ADMIN_EMAIL;

/// Default config file, read only if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "tern.toml";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("could not read the config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("the config file {path} is not valid TOML: {reason}")]
    Syntax { path: String, reason: String },
    #[error("unknown setting `{key}` in {path}")]
    UnknownKey { key: String, path: String },
    #[error("setting `{key}` in {path} must be {expected}")]
    WrongType {
        key: String,
        path: String,
        expected: &'static str,
    },
    #[error("invalid {setting}: {reason}")]
    Invalid { setting: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A string that must not be shown: `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A connection URL whose password (`scheme://user:PASSWORD@host`) is hidden in `Debug`
/// and `Display`; `expose` gives the real URL to the driver.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUrl(String);

impl ServiceUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The URL with its password replaced, for logs and messages.
    pub fn redacted(&self) -> String {
        redact_url_password(&self.0)
    }
}

impl std::fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl std::fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn redact_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    format!("{}{}:<redacted>{}", &url[..rest_start], &userinfo[..colon], &rest[at..])
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// REST, WebSocket, console and the operational endpoints.
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    /// The SQLite file and the master key file live here on the embedded default.
    pub data_dir: PathBuf,
    pub database_url: ServiceUrl,
    pub redis_url: Option<ServiceUrl>,
    /// Every Redis key and channel of this deployment starts with this and a colon, so
    /// several deployments (or test runs) can share one Redis.
    pub redis_prefix: String,
    /// The bus on Pulsar (a build with `--features pulsar`; needs `redis_url` too).
    pub pulsar_url: Option<ServiceUrl>,
    /// `persistent://tenant/namespace/name`: the bus's topics start with this.
    pub pulsar_topic_prefix: Option<String>,
    /// A token for Pulsar's token authentication.
    pub pulsar_token: Option<Secret>,
    pub admin_email: String,
    pub admin_password: Option<Secret>,
    /// Checked to be 64 hex characters.
    pub master_key: Option<Secret>,
    pub log_format: LogFormat,
    /// A tracing-subscriber `EnvFilter` directive, e.g. `info,tern=debug`.
    pub log: String,
    /// Names this process in routing (`user → node`) and logs.
    pub node_id: String,
    /// Lets webhooks target private and loopback addresses (off: SSRF protection).
    pub webhook_allow_private: bool,
    pub heartbeat_seconds: u64,
    pub max_connections: u32,
    /// A busy room's messages reach a node's members at most this often (0: at once).
    pub room_flush_ms: u64,
    /// SDK WebSockets agree to `permessage-deflate` when the client offers it (off by
    /// default: docs/compression.md has its cost per connection).
    pub ws_deflate: bool,
    /// Open connections per port (HTTP, gRPC, metrics) at most; more are closed at once.
    pub max_http_connections: u32,
    /// A request's headers (and a new connection's first request) must arrive within this.
    pub http_header_timeout_seconds: u64,
    /// A connection with no request in flight is closed after this.
    pub http_idle_timeout_seconds: u64,
    /// HTTP/2 connections (gRPC included) are pinged this often and closed when a ping
    /// goes unanswered as long.
    pub http2_keepalive_seconds: u64,
    /// When set, `/metrics` is served here and no longer on the public HTTP port.
    pub metrics_addr: Option<SocketAddr>,
    /// The highest server API rate (requests per second) an app may set for itself.
    pub max_app_rate_limit: u32,
    /// Where files' bytes live: `file:///dir` (a local directory; default `files/` in the
    /// data dir) or `s3://bucket?endpoint=…` (docs/files.md).
    pub files_url: Option<ServiceUrl>,
    /// How long a file outlives the last message that named it (recalled, or its group or
    /// room deleted) before the worker deletes it; default 7 days (docs/files.md).
    pub files_release_grace_seconds: u64,
    /// How often the alert evaluator checks every app's alert rules (docs/console.md,
    /// "Alerts"); default 60. Tests set 1.
    pub alert_interval_seconds: u64,
    /// TLS on the HTTP/WebSocket and gRPC ports: the certificate chain and its private
    /// key, PEM files; both or neither.
    pub tls: Option<TlsPaths>,
    /// The SMTP server the platform's mail goes through (`smtp://`, `smtps://`); without
    /// one, mails are written to `<data_dir>/mail/`.
    pub smtp_url: Option<Secret>,
    /// The sender of the platform's mail.
    pub smtp_from: String,
    /// Where the console is reached from outside, for links in mails; default
    /// `http://<http_addr>`.
    pub public_url: Option<String>,
    /// Public sign-up: `off`, `approval` (an operator approves each tenant; the default) or `open`.
    pub signup: tern_platform::service::signup::SignupPolicy,
    /// Where offline pushes are sent (docs/push.md); unset parts are Apple's and Google's.
    pub push: PushEndpoints,
}

/// The push providers' base URLs, for a regional endpoint, an egress proxy or a local mock:
/// `TERN_PUSH_APNS_URL`, `TERN_PUSH_APNS_SANDBOX_URL`, `TERN_PUSH_FCM_URL`,
/// `TERN_PUSH_FCM_TOKEN_URL`, and `TERN_PUSH_CA_FILE`, a PEM certificate trusted besides the
/// system's roots (a mock's own CA).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushEndpoints {
    pub apns_url: Option<String>,
    pub apns_sandbox_url: Option<String>,
    pub fcm_url: Option<String>,
    pub fcm_token_url: Option<String>,
    pub ca_file: Option<PathBuf>,
}

impl PushEndpoints {
    /// The platform's push settings: these URLs over the defaults, and the extra root
    /// certificate read from `ca_file`.
    pub fn push_config(&self) -> Result<tern_platform::push::provider::PushConfig, ConfigError> {
        let mut c = tern_platform::push::provider::PushConfig::default();
        let set = |slot: &mut String, v: &Option<String>| {
            if let Some(v) = v {
                *slot = v.clone();
            }
        };
        set(&mut c.apns_production_url, &self.apns_url);
        set(&mut c.apns_sandbox_url, &self.apns_sandbox_url);
        set(&mut c.fcm_url, &self.fcm_url);
        set(&mut c.oauth_token_url, &self.fcm_token_url);
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            use tokio_rustls::rustls::pki_types::{pem::PemObject as _, CertificateDer};
            let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
            if certs.is_empty() || certs.iter().any(Result::is_err) {
                return Err(invalid(
                    "TERN_PUSH_CA_FILE",
                    format!("{} is not a PEM certificate", path.display()),
                ));
            }
            c.extra_root_pem = Some(pem);
        }
        Ok(c)
    }
}

impl Config {
    /// The base of links in mails: `public_url`, or this node's HTTP address.
    pub fn public_base(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.http_addr))
    }
}

/// `TERN_TLS_CERT` and `TERN_TLS_KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Every setting: TOML key, its environment variable is `TERN_` + upper case.
const KEYS: &[&str] = &[
    "http_addr",
    "grpc_addr",
    "data_dir",
    "database_url",
    "redis_url",
    "redis_prefix",
    "pulsar_url",
    "pulsar_topic_prefix",
    "pulsar_token",
    "admin_email",
    "admin_password",
    "master_key",
    "log_format",
    "log",
    "node_id",
    "webhook_allow_private",
    "heartbeat_seconds",
    "max_connections",
    "room_flush_ms",
    "ws_deflate",
    "max_http_connections",
    "http_header_timeout_seconds",
    "http_idle_timeout_seconds",
    "http2_keepalive_seconds",
    "metrics_addr",
    "max_app_rate_limit",
    "files_url",
    "files_release_grace_seconds",
    "alert_interval_seconds",
    "tls_cert",
    "tls_key",
    "smtp_url",
    "smtp_from",
    "public_url",
    "signup",
    "push_apns_url",
    "push_apns_sandbox_url",
    "push_fcm_url",
    "push_fcm_token_url",
    "push_ca_file",
];

fn env_name(key: &str) -> String {
    format!("TERN_{}", key.to_ascii_uppercase())
}

/// A raw value and where it came from, for error messages.
#[derive(Debug, Clone)]
enum Raw {
    Str(String),
    Int(i64),
    Bool(bool),
}

struct Source {
    /// `TERN_HTTP_ADDR` or `http_addr in tern.toml`.
    setting: String,
    value: Raw,
}

impl Config {
    /// Reads the config file (the given one must exist; the default one may not) and the
    /// process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("TERN_")).collect();
        let (file_path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let text = match std::fs::read_to_string(&file_path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => None,
            Err(e) => {
                return Err(ConfigError::Read {
                    path: file_path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        let file = text.as_deref().map(|t| (file_path.display().to_string(), t));
        Self::from_sources(file.as_ref().map(|(p, t)| (p.as_str(), *t)), &env)
    }

    /// Builds the config from a file's text (with its name, for messages) and an environment.
    pub fn from_sources(file: Option<(&str, &str)>, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut values: HashMap<&'static str, Source> = HashMap::new();
        if let Some((path, text)) = file {
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: path.to_owned(),
                reason: e.message().to_owned(),
            })?;
            for (key, value) in table {
                let Some(&known) = KEYS.iter().find(|k| **k == key) else {
                    return Err(ConfigError::UnknownKey {
                        key,
                        path: path.to_owned(),
                    });
                };
                let raw = match value {
                    toml::Value::String(s) => Raw::Str(s),
                    toml::Value::Integer(i) => Raw::Int(i),
                    toml::Value::Boolean(b) => Raw::Bool(b),
                    _ => {
                        return Err(ConfigError::WrongType {
                            key,
                            path: path.to_owned(),
                            expected: expected_type(known),
                        })
                    }
                };
                if !type_fits(known, &raw) {
                    return Err(ConfigError::WrongType {
                        key,
                        path: path.to_owned(),
                        expected: expected_type(known),
                    });
                }
                values.insert(
                    known,
                    Source {
                        setting: format!("{key} in {path}"),
                        value: raw,
                    },
                );
            }
        }
        for key in KEYS {
            let name = env_name(key);
            if let Some(v) = env.get(&name) {
                values.insert(
                    key,
                    Source {
                        setting: name,
                        value: Raw::Str(v.clone()),
                    },
                );
            }
        }
        build(values)
    }
}

fn expected_type(key: &str) -> &'static str {
    match key {
        "webhook_allow_private" | "ws_deflate" => "a boolean",
        "heartbeat_seconds"
        | "max_connections"
        | "room_flush_ms"
        | "max_http_connections"
        | "http_header_timeout_seconds"
        | "http_idle_timeout_seconds"
        | "http2_keepalive_seconds"
        | "max_app_rate_limit"
        | "files_release_grace_seconds"
        | "alert_interval_seconds" => "an integer",
        _ => "a string",
    }
}

fn type_fits(key: &str, raw: &Raw) -> bool {
    matches!(
        (expected_type(key), raw),
        ("a boolean", Raw::Bool(_)) | ("an integer", Raw::Int(_)) | ("a string", Raw::Str(_))
    )
}

fn invalid(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_owned(),
        reason: reason.into(),
    }
}

fn as_string(src: &Source) -> String {
    match &src.value {
        Raw::Str(s) => s.clone(),
        Raw::Int(i) => i.to_string(),
        Raw::Bool(b) => b.to_string(),
    }
}

fn addr(values: &HashMap<&str, Source>, key: &str, default: &str) -> Result<SocketAddr, ConfigError> {
    match values.get(key) {
        None => default.parse().map_err(|_| invalid(key, "bad built-in default")),
        Some(src) => {
            let s = as_string(src);
            s.trim()
                .parse()
                .map_err(|_| invalid(&src.setting, format!("{s:?} is not an address like 127.0.0.1:8080")))
        }
    }
}

fn non_empty(values: &HashMap<&str, Source>, key: &str) -> Result<Option<String>, ConfigError> {
    match values.get(key) {
        None => Ok(None),
        Some(src) => {
            let s = as_string(src);
            if s.trim().is_empty() {
                Err(invalid(&src.setting, "must not be empty"))
            } else {
                Ok(Some(s))
            }
        }
    }
}

fn integer<T: TryFrom<i64>>(values: &HashMap<&str, Source>, key: &str, default: T, min: i64) -> Result<T, ConfigError> {
    let Some(src) = values.get(key) else {
        return Ok(default);
    };
    let n = match &src.value {
        Raw::Int(i) => *i,
        other => {
            let s = match other {
                Raw::Str(s) => s.trim().to_owned(),
                _ => String::new(),
            };
            s.parse::<i64>()
                .map_err(|_| invalid(&src.setting, format!("{s:?} is not a whole number")))?
        }
    };
    if n < min {
        return Err(invalid(&src.setting, format!("must be at least {min}")));
    }
    T::try_from(n).map_err(|_| invalid(&src.setting, format!("{n} is too large")))
}

fn boolean(values: &HashMap<&str, Source>, key: &str) -> Result<bool, ConfigError> {
    let Some(src) = values.get(key) else {
        return Ok(false);
    };
    match &src.value {
        Raw::Bool(b) => Ok(*b),
        Raw::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" | "" => Ok(false),
            _ => Err(invalid(&src.setting, format!("{s:?} is not true or false"))),
        },
        Raw::Int(_) => Err(invalid(&src.setting, "must be true or false")),
    }
}

fn service_url(values: &HashMap<&str, Source>, key: &str, schemes: &[&str]) -> Result<Option<ServiceUrl>, ConfigError> {
    let Some(s) = non_empty(values, key)? else {
        return Ok(None);
    };
    let url = ServiceUrl(s.trim().to_owned());
    let scheme = url.0.split("://").next().unwrap_or("");
    if !url.0.contains("://") || !schemes.contains(&scheme) {
        let setting = values.get(key).map(|s| s.setting.as_str()).unwrap_or(key);
        return Err(invalid(
            setting,
            format!(
                "unsupported URL {} (use {})",
                url.redacted(),
                schemes
                    .iter()
                    .map(|s| format!("{s}://"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ));
    }
    Ok(Some(url))
}

/// Letters, digits, `-`, `_` and `.`, 1 to 64 of them (a Redis key part that needs no
/// quoting and cannot collide with the `{hash tag}` braces); `tern` by default.
fn redis_prefix(values: &HashMap<&'static str, Source>) -> Result<String, ConfigError> {
    let Some(src) = values.get("redis_prefix") else {
        return Ok("tern".to_owned());
    };
    let p = as_string(src).trim().to_owned();
    let ok = !p.is_empty()
        && p.len() <= 64
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(invalid(
            &src.setting,
            "may hold letters, digits, '-', '_' and '.', 1 to 64 of them",
        ));
    }
    Ok(p)
}

/// An `https://` base URL (no trailing slash), or `http://` to a loopback mock.
fn push_url(values: &HashMap<&str, Source>, key: &str) -> Result<Option<String>, ConfigError> {
    let Some(src) = values.get(key) else {
        return Ok(None);
    };
    let u = as_string(src).trim().trim_end_matches('/').to_owned();
    let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !u.contains(char::is_whitespace) && !u.contains(['?', '#']) => Ok(Some(u)),
        _ => Err(invalid(
            &src.setting,
            format!("{u:?} is not a base URL like https://api.push.apple.com"),
        )),
    }
}

fn default_node_id() -> String {
    let from_env = std::env::var("HOSTNAME").ok();
    let from_kernel = || std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    from_env
        .or_else(from_kernel)
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("node-{:08x}", rand::random::<u32>()))
}

fn build(values: HashMap<&'static str, Source>) -> Result<Config, ConfigError> {
    let data_dir = PathBuf::from(non_empty(&values, "data_dir")?.unwrap_or_else(|| "./data".to_owned()));
    let database_url = match service_url(&values, "database_url", &["sqlite", "postgres", "postgresql"])? {
        Some(u) => u,
        None => ServiceUrl(format!("sqlite://{}/tern.db", data_dir.display())),
    };
    let master_key = match values.get("master_key") {
        None => None,
        Some(src) => {
            let k = as_string(src).trim().to_owned();
            if k.len() != 64 {
                return Err(invalid(
                    &src.setting,
                    format!("must be 64 hexadecimal characters (32 bytes), got {}", k.len()),
                ));
            }
            if !k.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(invalid(&src.setting, "must be hexadecimal"));
            }
            Some(Secret(k))
        }
    };
    let log_format = match values.get("log_format") {
        None => LogFormat::Text,
        Some(src) => match as_string(src).trim().to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(invalid(&src.setting, format!("{other:?} is not text or json"))),
        },
    };
    let log = non_empty(&values, "log")?.unwrap_or_else(|| "info".to_owned());
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log) {
        let setting = values.get("log").map(|s| s.setting.as_str()).unwrap_or("TERN_LOG");
        return Err(invalid(setting, format!("not a log filter: {e}")));
    }
    let tls = match (non_empty(&values, "tls_cert")?, non_empty(&values, "tls_key")?) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsPaths {
            cert: PathBuf::from(cert.trim()),
            key: PathBuf::from(key.trim()),
        }),
        (Some(_), None) => {
            return Err(invalid(
                "TERN_TLS_KEY",
                "must be set with TERN_TLS_CERT (the private key of that certificate, PEM)",
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "TERN_TLS_CERT",
                "must be set with TERN_TLS_KEY (the certificate chain of that key, PEM)",
            ))
        }
    };
    Ok(Config {
        files_url: service_url(&values, "files_url", &["file", "s3"])?,
        files_release_grace_seconds: integer(
            &values,
            "files_release_grace_seconds",
            tern_platform::files::DEFAULT_RELEASE_GRACE.as_secs(),
            0,
        )?,
        alert_interval_seconds: integer(&values, "alert_interval_seconds", 60, 1)?,
        http_addr: addr(&values, "http_addr", "127.0.0.1:8080")?,
        grpc_addr: addr(&values, "grpc_addr", "127.0.0.1:9090")?,
        data_dir,
        database_url,
        redis_url: service_url(&values, "redis_url", &["redis", "rediss"])?,
        redis_prefix: redis_prefix(&values)?,
        pulsar_url: service_url(&values, "pulsar_url", &["pulsar", "pulsar+ssl"])?,
        pulsar_topic_prefix: non_empty(&values, "pulsar_topic_prefix")?,
        pulsar_token: non_empty(&values, "pulsar_token")?.map(Secret),
        admin_email: non_empty(&values, "admin_email")?.unwrap_or_else(|| DEFAULT_ADMIN_EMAIL.to_owned()),
        admin_password: non_empty(&values, "admin_password")?.map(Secret),
        master_key,
        log_format,
        log,
        node_id: non_empty(&values, "node_id")?.unwrap_or_else(default_node_id),
        webhook_allow_private: boolean(&values, "webhook_allow_private")?,
        heartbeat_seconds: integer(&values, "heartbeat_seconds", 30u64, 1)?,
        max_connections: integer(&values, "max_connections", 50_000u32, 1)?,
        room_flush_ms: integer(&values, "room_flush_ms", 200u64, 0)?,
        ws_deflate: boolean(&values, "ws_deflate")?,
        max_http_connections: integer(&values, "max_http_connections", 10_000u32, 1)?,
        http_header_timeout_seconds: integer(&values, "http_header_timeout_seconds", 10u64, 1)?,
        http_idle_timeout_seconds: integer(&values, "http_idle_timeout_seconds", 60u64, 1)?,
        http2_keepalive_seconds: integer(&values, "http2_keepalive_seconds", 30u64, 1)?,
        metrics_addr: match values.get("metrics_addr") {
            None => None,
            Some(_) => Some(addr(&values, "metrics_addr", "127.0.0.1:9100")?),
        },
        max_app_rate_limit: integer(
            &values,
            "max_app_rate_limit",
            tern_platform::domain::DEFAULT_MAX_APP_RATE_PER_SECOND,
            1,
        )?,
        tls,
        smtp_url: match values.get("smtp_url") {
            None => None,
            Some(src) => {
                let u = as_string(src).trim().to_owned();
                if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
                    return Err(invalid(&src.setting, "must start with smtp:// or smtps://"));
                }
                Some(Secret(u))
            }
        },
        smtp_from: non_empty(&values, "smtp_from")?.unwrap_or_else(|| "Tern <tern@localhost>".to_owned()),
        public_url: match values.get("public_url") {
            None => None,
            Some(src) => {
                let u = as_string(src).trim().trim_end_matches('/').to_owned();
                if !(u.starts_with("http://") || u.starts_with("https://")) || u.contains(char::is_whitespace) {
                    return Err(invalid(&src.setting, "must be an http:// or https:// URL"));
                }
                Some(u)
            }
        },
        signup: match values.get("signup") {
            None => tern_platform::service::signup::SignupPolicy::default(),
            Some(src) => tern_platform::service::signup::SignupPolicy::parse(&as_string(src))
                .ok_or_else(|| invalid(&src.setting, "must be off, approval or open"))?,
        },
        push: PushEndpoints {
            apns_url: push_url(&values, "push_apns_url")?,
            apns_sandbox_url: push_url(&values, "push_apns_sandbox_url")?,
            fcm_url: push_url(&values, "push_fcm_url")?,
            fcm_token_url: push_url(&values, "push_fcm_token_url")?,
            ca_file: non_empty(&values, "push_ca_file")?.map(|p| PathBuf::from(p.trim())),
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_sources(Some(("tern.toml", text)), &HashMap::new())
    }

    #[test]
    fn defaults_need_no_file_and_no_environment() {
        let c = Config::from_sources(None, &HashMap::new()).unwrap();
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:9090");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.database_url.expose(), "sqlite://./data/tern.db");
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.log, "info");
        assert_eq!(c.heartbeat_seconds, 30);
        assert_eq!(c.max_connections, 50_000);
        assert_eq!(c.room_flush_ms, 200);
        assert!(!c.ws_deflate, "permessage-deflate is off unless asked for");
        assert_eq!(c.max_http_connections, 10_000);
        assert_eq!(c.http_header_timeout_seconds, 10);
        assert_eq!(c.http_idle_timeout_seconds, 60);
        assert_eq!(c.http2_keepalive_seconds, 30);
        assert_eq!(c.metrics_addr, None);
        assert_eq!(c.max_app_rate_limit, 10_000);
        assert!(!c.webhook_allow_private);
        assert_eq!(c.admin_email, "admin@localhost");
        assert!(c.admin_password.is_none() && c.master_key.is_none() && c.redis_url.is_none());
        assert!(!c.node_id.is_empty());
        assert_eq!(c.tls, None);
    }

    #[test]
    fn push_endpoints_override_the_providers_and_are_checked() {
        let c = Config::from_sources(None, &HashMap::new()).unwrap();
        let d = c.push.push_config().unwrap();
        assert_eq!(d.apns_production_url, "https://api.push.apple.com");
        assert_eq!(d.fcm_url, "https://fcm.googleapis.com");
        let e = env(&[
            ("TERN_PUSH_APNS_URL", "https://127.0.0.1:8443/"),
            ("TERN_PUSH_FCM_URL", "https://fcm.example.net"),
            ("TERN_PUSH_FCM_TOKEN_URL", "https://fcm.example.net/token"),
        ]);
        let p = Config::from_sources(None, &e).unwrap().push.push_config().unwrap();
        assert_eq!(p.apns_production_url, "https://127.0.0.1:8443");
        assert_eq!(p.apns_sandbox_url, "https://api.sandbox.push.apple.com");
        assert_eq!(p.fcm_url, "https://fcm.example.net");
        assert_eq!(p.oauth_token_url, "https://fcm.example.net/token");
        for bad in ["api.push.apple.com", "ftp://x", "https://", "https://a b"] {
            let err = Config::from_sources(None, &env(&[("TERN_PUSH_FCM_URL", bad)])).unwrap_err();
            assert!(err.to_string().contains("TERN_PUSH_FCM_URL"), "{bad}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let c = Config::from_sources(None, &env(&[("TERN_PUSH_CA_FILE", not_pem.to_str().unwrap())])).unwrap();
        assert!(c
            .push
            .push_config()
            .unwrap_err()
            .to_string()
            .contains("TERN_PUSH_CA_FILE"));
        let missing = env(&[("TERN_PUSH_CA_FILE", "/nonexistent/ca.pem")]);
        assert!(Config::from_sources(None, &missing)
            .unwrap()
            .push
            .push_config()
            .is_err());
    }

    #[test]
    fn tls_needs_both_the_certificate_and_the_key() {
        let both = env(&[
            ("TERN_TLS_CERT", "/etc/tern/cert.pem"),
            ("TERN_TLS_KEY", "/etc/tern/key.pem"),
        ]);
        let c = Config::from_sources(None, &both).unwrap();
        assert_eq!(
            c.tls,
            Some(TlsPaths {
                cert: PathBuf::from("/etc/tern/cert.pem"),
                key: PathBuf::from("/etc/tern/key.pem"),
            })
        );
        let e = Config::from_sources(None, &env(&[("TERN_TLS_CERT", "/etc/tern/cert.pem")])).unwrap_err();
        assert!(e.to_string().contains("TERN_TLS_KEY"), "{e}");
        let e = from_toml("tls_key = \"/etc/tern/key.pem\"").unwrap_err();
        assert!(e.to_string().contains("TERN_TLS_CERT"), "{e}");
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let file = "http_addr = \"0.0.0.0:80\"\ndata_dir = \"/var/lib/tern\"\nheartbeat_seconds = 10\n\
                    webhook_allow_private = true\nlog_format = \"json\"\nnode_id = \"from-file\"";
        let e = env(&[
            ("TERN_HTTP_ADDR", "127.0.0.1:9000"),
            ("TERN_MAX_CONNECTIONS", "10"),
            ("TERN_ROOM_FLUSH_MS", "0"),
            ("TERN_WS_DEFLATE", "on"),
            ("TERN_METRICS_ADDR", "127.0.0.1:9100"),
            ("TERN_MAX_APP_RATE_LIMIT", "50000"),
        ]);
        let c = Config::from_sources(Some(("tern.toml", file)), &e).unwrap();
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:9000");
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/tern"));
        assert_eq!(c.database_url.expose(), "sqlite:///var/lib/tern/tern.db");
        assert_eq!(c.heartbeat_seconds, 10);
        assert_eq!(c.max_connections, 10);
        assert_eq!(c.room_flush_ms, 0);
        assert!(c.ws_deflate);
        assert_eq!(c.metrics_addr.map(|a| a.to_string()).as_deref(), Some("127.0.0.1:9100"));
        assert_eq!(c.max_app_rate_limit, 50_000);
        assert!(c.webhook_allow_private);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.node_id, "from-file");
        let c = Config::from_sources(None, &env(&[("TERN_WEBHOOK_ALLOW_PRIVATE", "yes")])).unwrap();
        assert!(c.webhook_allow_private);
    }

    #[test]
    fn unknown_keys_and_wrong_types_in_the_file_name_the_key() {
        let err = from_toml("http_adr = \"127.0.0.1:1\"").unwrap_err();
        assert_eq!(err.to_string(), "unknown setting `http_adr` in tern.toml");
        let err = from_toml("heartbeat_seconds = \"ten\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting `heartbeat_seconds` in tern.toml must be an integer"
        );
        let err = from_toml("webhook_allow_private = 1").unwrap_err();
        assert!(err.to_string().contains("`webhook_allow_private`"), "{err}");
        let err = from_toml("http_addr = [1]").unwrap_err();
        assert!(err.to_string().contains("`http_addr`"), "{err}");
        assert!(matches!(from_toml("http_addr = "), Err(ConfigError::Syntax { .. })));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases: &[(&str, &str, &str)] = &[
            ("TERN_HTTP_ADDR", "localhost", "TERN_HTTP_ADDR"),
            ("TERN_GRPC_ADDR", "1.2.3.4", "TERN_GRPC_ADDR"),
            ("TERN_MASTER_KEY", "abcd", "64 hexadecimal"),
            ("TERN_MASTER_KEY", &"zz".repeat(32), "TERN_MASTER_KEY"),
            ("TERN_DATABASE_URL", "mysql://root@db/tern", "TERN_DATABASE_URL"),
            ("TERN_DATABASE_URL", "tern.db", "TERN_DATABASE_URL"),
            ("TERN_REDIS_URL", "http://x", "TERN_REDIS_URL"),
            ("TERN_LOG_FORMAT", "xml", "TERN_LOG_FORMAT"),
            ("TERN_HEARTBEAT_SECONDS", "0", "TERN_HEARTBEAT_SECONDS"),
            ("TERN_MAX_CONNECTIONS", "many", "TERN_MAX_CONNECTIONS"),
            ("TERN_MAX_CONNECTIONS", "99999999999", "TERN_MAX_CONNECTIONS"),
            ("TERN_WEBHOOK_ALLOW_PRIVATE", "maybe", "TERN_WEBHOOK_ALLOW_PRIVATE"),
            ("TERN_LOG", "info,[", "TERN_LOG"),
            ("TERN_ADMIN_EMAIL", " ", "TERN_ADMIN_EMAIL"),
            ("TERN_MAX_HTTP_CONNECTIONS", "0", "TERN_MAX_HTTP_CONNECTIONS"),
            (
                "TERN_HTTP_HEADER_TIMEOUT_SECONDS",
                "0",
                "TERN_HTTP_HEADER_TIMEOUT_SECONDS",
            ),
            (
                "TERN_HTTP_IDLE_TIMEOUT_SECONDS",
                "soon",
                "TERN_HTTP_IDLE_TIMEOUT_SECONDS",
            ),
            ("TERN_HTTP2_KEEPALIVE_SECONDS", "0", "TERN_HTTP2_KEEPALIVE_SECONDS"),
            ("TERN_METRICS_ADDR", "metrics", "TERN_METRICS_ADDR"),
            ("TERN_MAX_APP_RATE_LIMIT", "0", "TERN_MAX_APP_RATE_LIMIT"),
        ];
        for (name, value, expect) in cases {
            let err = Config::from_sources(None, &env(&[(name, value)])).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(expect), "{name}={value}: {msg}");
            assert!(msg.contains(name), "{name}={value}: {msg}");
        }
        let err = from_toml("http_addr = \"nope\"").unwrap_err();
        assert!(err.to_string().contains("http_addr in tern.toml"), "{err}");
    }

    #[test]
    fn accepted_database_urls() {
        for url in ["sqlite://x.db", "postgres://u@h/db", "postgresql://u@h/db"] {
            let c = Config::from_sources(None, &env(&[("TERN_DATABASE_URL", url)])).unwrap();
            assert_eq!(c.database_url.expose(), url);
        }
        let key = "Ab".repeat(32);
        let c = Config::from_sources(None, &env(&[("TERN_MASTER_KEY", &key)])).unwrap();
        assert_eq!(c.master_key.unwrap().expose(), key);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let key = "ab".repeat(32);
        let e = env(&[
            ("TERN_ADMIN_PASSWORD", "hunter2-hunter2"),
            ("TERN_MASTER_KEY", &key),
            ("TERN_DATABASE_URL", "postgres://tern:pg-pass-123@db:5432/tern"),
            ("TERN_REDIS_URL", "redis://:redis-pass@cache:6379/0"),
            ("TERN_PULSAR_TOKEN", "pulsar-jwt-456"),
        ]);
        let c = Config::from_sources(None, &e).unwrap();
        let debug = format!("{c:?}");
        for secret in [
            "hunter2-hunter2",
            key.as_str(),
            "pg-pass-123",
            "redis-pass",
            "pulsar-jwt-456",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
        assert!(debug.contains("postgres://tern:<redacted>@db:5432/tern"), "{debug}");
        assert_eq!(c.database_url.expose(), "postgres://tern:pg-pass-123@db:5432/tern");
        assert_eq!(c.database_url.to_string(), "postgres://tern:<redacted>@db:5432/tern");
        assert_eq!(redact_url_password("postgres://u@h/x"), "postgres://u@h/x");
        assert_eq!(
            redact_url_password("sqlite://./data/tern.db"),
            "sqlite://./data/tern.db"
        );
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let err = Config::load(Some(Path::new("/nonexistent/tern.toml"))).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/tern.toml"));
    }
}
