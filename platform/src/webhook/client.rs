//! The HTTP caller behind every webhook, before-send and after-event alike.
//!
//! A webhook URL is chosen by a tenant, so calling it is a server-side request forgery
//! risk: without a guard any tenant could make Tern POST to its own admin ports, the cloud
//! metadata service or the private network. So this module resolves the host itself,
//! refuses internal addresses (unless the operator set `TERN_WEBHOOK_ALLOW_PRIVATE=1`), and
//! pins the connection to the address it checked, so a DNS answer cannot change between
//! the check and the connect. Redirects are not followed (a redirect could point inside),
//! proxies from the environment are ignored (they would bypass the pin), and at most
//! `MAX_RESPONSE_BYTES` of an answer are read.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Url;

/// The most of a response body that is read; the rest is ignored.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The environment variable that lets webhooks reach internal addresses.
pub const ALLOW_PRIVATE_ENV: &str = "TERN_WEBHOOK_ALLOW_PRIVATE";
/// Clients are cached per (host, checked address) so keep-alive connections are reused;
/// past this many the cache starts over.
const MAX_CACHED_CLIENTS: usize = 256;
/// Upper bound for connecting; each request's own (usually shorter) timeout covers it too.
/// Fixed rather than per request because clients are cached and shared by callers with
/// different timeouts.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum WebhookError {
    #[error("webhook URL is not a valid absolute URL: {0}")]
    InvalidUrl(String),
    #[error("webhook URL must use http or https, not {0:?}")]
    UnsupportedScheme(String),
    #[error("webhook URL has no host")]
    MissingHost,
    /// `https://user:pass@host/`: credentials in a URL end up in logs, screens and
    /// backups, so they are refused; receivers authenticate a call by its signature.
    #[error(
        "webhook URL must not carry a user name or password (user:pass@host); verify the \
         X-Tern-Signature header instead"
    )]
    CredentialsInUrl,
    #[error(
        "webhook host {host} resolves to {addr}, an internal address (loopback, private, link-local, \
         ...); refused to prevent server-side request forgery. An operator can allow it by setting \
         TERN_WEBHOOK_ALLOW_PRIVATE=1"
    )]
    ForbiddenAddress { host: String, addr: IpAddr },
    #[error("could not resolve webhook host {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("webhook endpoint did not answer within {0} ms")]
    Timeout(u64),
    #[error("webhook request failed: {0}")]
    Transport(String),
}

/// One POST to a webhook endpoint.
#[derive(Debug, Clone)]
pub struct WebhookRequest<'a> {
    pub url: &'a str,
    /// `X-Tern-Webhook-Id`: the same on every attempt of one event.
    pub webhook_id: &'a str,
    /// `X-Tern-Event`.
    pub event_type: &'a str,
    /// `X-Tern-Attempt`, from 1.
    pub attempt: u32,
    /// `X-Tern-Signature`, from `auth::webhook::signature_header`.
    pub signature: &'a str,
    pub body: &'a str,
    /// Covers everything: resolving, connecting, sending and reading the answer.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    pub status: u16,
    /// At most `MAX_RESPONSE_BYTES` of the body.
    pub body: Vec<u8>,
    /// The body was longer than `MAX_RESPONSE_BYTES` and was cut.
    pub truncated: bool,
}

impl WebhookResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Reads `TERN_WEBHOOK_ALLOW_PRIVATE`: `1` or `true` allows internal addresses.
pub fn allow_private_from_env() -> bool {
    std::env::var(ALLOW_PRIVATE_ENV)
        .map(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes"))
        .unwrap_or(false)
}

/// `url` for showing: any user name and password replaced by `<redacted>`. Such URLs are
/// refused when configured, but one stored before that rule must still not be shown whole.
pub fn url_for_display(url: &str) -> String {
    match Url::parse(url.trim()) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("<redacted>");
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        // Not a URL at all: it cannot be called, and nothing in it is known to be safe.
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

/// Checks a webhook URL when a tenant configures it: it parses, is http(s), and its host
/// resolves only to addresses webhooks may reach.
pub async fn validate_webhook_url(url: &str, allow_private: bool) -> Result<(), WebhookError> {
    let target = parse_target(url)?;
    resolve_checked(&target, allow_private).await.map(|_| ())
}

/// The caller. Cheap to share in an `Arc`; holds a small cache of pinned clients.
#[derive(Debug)]
pub struct WebhookClient {
    allow_private: bool,
    clients: Mutex<HashMap<(String, SocketAddr), reqwest::Client>>,
}

impl WebhookClient {
    pub fn new(allow_private: bool) -> Self {
        Self {
            allow_private,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// `allow_private` from `TERN_WEBHOOK_ALLOW_PRIVATE`.
    pub fn from_env() -> Self {
        Self::new(allow_private_from_env())
    }

    pub fn allow_private(&self) -> bool {
        self.allow_private
    }

    /// POSTs the request and reads the answer, all within `req.timeout`. Any HTTP status is
    /// an `Ok`; the caller decides what counts as success.
    pub async fn post(&self, req: &WebhookRequest<'_>) -> Result<WebhookResponse, WebhookError> {
        let timeout_ms = u64::try_from(req.timeout.as_millis()).unwrap_or(u64::MAX);
        match tokio::time::timeout(req.timeout, self.post_unbounded(req)).await {
            Ok(result) => result,
            Err(_) => Err(WebhookError::Timeout(timeout_ms)),
        }
    }

    async fn post_unbounded(&self, req: &WebhookRequest<'_>) -> Result<WebhookResponse, WebhookError> {
        let timeout_ms = u64::try_from(req.timeout.as_millis()).unwrap_or(u64::MAX);
        let transport = |e| transport(e, timeout_ms);
        let target = parse_target(req.url)?;
        let addr = resolve_checked(&target, self.allow_private).await?;
        let client = self.client_for(&target.host, addr)?;
        let mut response = client
            .post(target.url)
            .timeout(req.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Tern-Webhook-Id", req.webhook_id)
            .header("X-Tern-Event", req.event_type)
            .header("X-Tern-Attempt", req.attempt.to_string())
            .header("X-Tern-Signature", req.signature)
            .body(req.body.to_owned())
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            let room = MAX_RESPONSE_BYTES - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(WebhookResponse {
            status,
            body,
            truncated,
        })
    }

    /// A client whose DNS for `host` is fixed to `addr`, the address that was checked.
    fn client_for(&self, host: &str, addr: SocketAddr) -> Result<reqwest::Client, WebhookError> {
        let key = (host.to_owned(), addr);
        let mut clients = self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("Tern-Webhook/", env!("CARGO_PKG_VERSION")));
        if host.parse::<IpAddr>().is_err() {
            builder = builder.resolve(host, addr);
        }
        let client = builder.build().map_err(|e| transport(e, 0))?;
        if clients.len() >= MAX_CACHED_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}

fn transport(e: reqwest::Error, timeout_ms: u64) -> WebhookError {
    if e.is_timeout() {
        return WebhookError::Timeout(timeout_ms);
    }
    // The URL is the tenant's own and may carry credentials: leave it out of the message.
    WebhookError::Transport(e.without_url().to_string())
}

struct Target {
    url: Url,
    /// As it appears in the URL, without IPv6 brackets.
    host: String,
    port: u16,
}

/// The syntax checks of [`validate_webhook_url`] alone, without resolving the host: an
/// absolute http(s) URL with a host and no credentials.
pub fn check_webhook_url_syntax(url: &str) -> Result<(), WebhookError> {
    parse_target(url).map(|_| ())
}

fn parse_target(url: &str) -> Result<Target, WebhookError> {
    let parsed = Url::parse(url.trim()).map_err(|e| WebhookError::InvalidUrl(e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(WebhookError::UnsupportedScheme(other.to_owned())),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(WebhookError::CredentialsInUrl);
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(WebhookError::MissingHost)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port_or_known_default().ok_or(WebhookError::MissingHost)?;
    Ok(Target {
        url: parsed,
        host,
        port,
    })
}

/// Resolves the target and returns the address to connect to. Every address the name
/// resolves to must be allowed: a name that mixes public and internal answers is refused.
async fn resolve_checked(target: &Target, allow_private: bool) -> Result<SocketAddr, WebhookError> {
    let addrs: Vec<SocketAddr> = if let Ok(ip) = target.host.parse::<IpAddr>() {
        vec![SocketAddr::new(ip, target.port)]
    } else {
        tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| WebhookError::Resolve {
                host: target.host.clone(),
                reason: e.to_string(),
            })?
            .collect()
    };
    let first = *addrs.first().ok_or_else(|| WebhookError::Resolve {
        host: target.host.clone(),
        reason: "no addresses".into(),
    })?;
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| is_internal(a.ip())) {
            return Err(WebhookError::ForbiddenAddress {
                host: target.host.clone(),
                addr: bad.ip(),
            });
        }
    }
    Ok(first)
}

/// Whether an address is one a webhook must not reach by default: anything not globally
/// routable (loopback, private, shared, link-local, unspecified, multicast, broadcast,
/// documentation, benchmarking, reserved), including IPv4 embedded in IPv6.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                   // "this network", incl. 0.0.0.0
        || a == 10                           // private
        || (a == 100 && (64..128).contains(&b)) // CGNAT shared space 100.64/10
        || a == 127                          // loopback
        || (a == 169 && b == 254)            // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)    // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)    // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)  // 6to4 relay anycast
        || (a == 192 && b == 168)            // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)  // TEST-NET-3
        || a >= 224 // multicast 224/4, reserved 240/4, broadcast
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_internal_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    // 6to4 (2002::/16) carries one in bits 16..48.
    if s[0] == 0x2002 {
        return is_internal_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || s[0..6] == [0, 0, 0, 0, 0, 0]        // IPv4-compatible (deprecated) ::/96
        || (s[0] & 0xfe00) == 0xfc00            // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80            // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0            // site-local (deprecated) fec0::/10
        || (s[0] & 0xff00) == 0xff00            // multicast ff00::/8
        || (s[0] == 0x2001 && s[1] == 0x0db8)   // documentation 2001:db8::/32
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments 2001::/23 (incl. Teredo)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for a in [
            "127.0.0.1",
            "127.5.6.7",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.9",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:c0a8:0101::1",
        ] {
            assert!(is_internal(ip(a)), "{a} must be internal");
        }
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "93.184.216.34",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!is_internal(ip(a)), "{a} must be public");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_when_configured() {
        for bad in [
            "http://127.0.0.1/hook",
            "http://10.0.0.1/hook",
            "http://[::1]:8080/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:9/hook",
            "http://2130706433/", // 127.0.0.1 as one decimal number
            "http://0x7f.1/",
        ] {
            let err = validate_webhook_url(bad, false).await.unwrap_err();
            assert!(matches!(err, WebhookError::ForbiddenAddress { .. }), "{bad}: {err:?}");
            assert!(err.to_string().contains("TERN_WEBHOOK_ALLOW_PRIVATE=1"));
            validate_webhook_url(bad, true).await.unwrap();
        }
        assert!(matches!(
            validate_webhook_url("ftp://example.com/x", true).await,
            Err(WebhookError::UnsupportedScheme(s)) if s == "ftp"
        ));
        assert!(matches!(
            validate_webhook_url("file:///etc/passwd", true).await,
            Err(WebhookError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            validate_webhook_url("not a url", true).await,
            Err(WebhookError::InvalidUrl(_))
        ));
        // A public literal needs no DNS and passes.
        validate_webhook_url("https://8.8.8.8/hook", false).await.unwrap();
    }

    #[tokio::test]
    async fn credentials_in_a_url_are_refused_and_never_shown() {
        for bad in [
            "https://user:hunter2@8.8.8.8/hook",
            "https://user@8.8.8.8/hook",
            "https://:hunter2@8.8.8.8/hook",
        ] {
            let err = validate_webhook_url(bad, true).await.unwrap_err();
            assert_eq!(err, WebhookError::CredentialsInUrl, "{bad}");
            assert!(!err.to_string().contains("hunter2"));
            let shown = url_for_display(bad);
            assert!(!shown.contains("hunter2") && !shown.contains("user@"), "{shown}");
            assert!(shown.contains("8.8.8.8/hook"), "{shown}");
        }
        assert_eq!(url_for_display("https://8.8.8.8/hook"), "https://8.8.8.8/hook");
        assert_eq!(url_for_display("::not a url:hunter2"), "<unparseable URL>");
    }
}
