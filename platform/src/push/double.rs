//! A local stand-in for APNs and FCM (Apple's and Google's services cannot be reached from
//! tests): one HTTPS server, HTTP/2 over TLS with a certificate made here by rcgen, that
//! checks requests the way the providers document them and answers with their real bodies.
//!
//! APNs (`POST /3/device/{token}`): the ES256 provider JWT (signature, `kid`, `iss`, age),
//! `apns-topic`, `apns-push-type`, `apns-priority`, `apns-collapse-id` (64 bytes at most),
//! `apns-id` (a UUID) and a JSON payload with `aps` (4 KiB at most); errors are
//! `{"reason": "..."}` (410 adds `timestamp`). FCM: the OAuth2 JWT-bearer exchange at
//! `/token` (RS256 assertion, scope, audience) and `POST /v1/projects/{p}/messages:send`
//! with the access token it issued and a v1 message; errors are Google's `error` object
//! with an `FcmError` detail. A test scripts answers per device token and reads back every
//! request.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::credentials::FCM_SCOPE;
use super::provider::PushConfig;
use crate::domain::PushProvider;

/// How the double answers one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoubleAnswer {
    Accept,
    /// An error with the provider's status and reason (`BadDeviceToken`, `UNREGISTERED`).
    Reject {
        status: u16,
        reason: String,
    },
}

impl DoubleAnswer {
    pub fn reject(status: u16, reason: &str) -> Self {
        Self::Reject {
            status,
            reason: reason.to_owned(),
        }
    }
}

/// One push request the double received.
#[derive(Debug, Clone)]
pub struct ReceivedPush {
    pub provider: PushProvider,
    /// The device token (APNs: from the path; FCM: `message.token`).
    pub token: String,
    pub http2: bool,
    /// Request headers, names in lowercase.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
    /// What the double answered.
    pub status: u16,
    pub reason: Option<String>,
}

#[derive(Default)]
struct State {
    /// APNs keys the double trusts: key id → (team id, public key).
    apns_keys: HashMap<String, (String, Vec<u8>)>,
    /// Scripted answers per device token, used in order; then `Accept`.
    scripts: HashMap<String, VecDeque<DoubleAnswer>>,
    received: Vec<ReceivedPush>,
    access_tokens: HashSet<String>,
    exchanges: usize,
    /// Each token exchange's `iss` (service account).
    issued: u64,
    /// TLS connections accepted.
    connections: usize,
}

pub struct ProviderDouble {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    stop: CancellationToken,
}

impl Drop for ProviderDouble {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why the double could not start.
#[derive(Debug, thiserror::Error)]
#[error("provider double: {0}")]
pub struct DoubleError(String);

fn err(e: impl std::fmt::Display) -> DoubleError {
    DoubleError(e.to_string())
}

impl ProviderDouble {
    /// Starts the double on 127.0.0.1 on a free port, with a fresh CA and certificate.
    pub async fn start() -> Result<Self, DoubleError> {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Tern push double CA");
        let ca_key = KeyPair::generate().map_err(err)?;
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;
        let leaf_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).map_err(err)?;
        let leaf_key = KeyPair::generate().map_err(err)?;
        let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(err)?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .map_err(err)?;
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(err)?;
        let addr = listener.local_addr().map_err(err)?;
        let state = Arc::new(Mutex::new(State::default()));
        let arrived = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let base = format!("https://127.0.0.1:{}", addr.port());
        tokio::spawn(accept_loop(
            listener,
            acceptor,
            state.clone(),
            arrived.clone(),
            stop.clone(),
            base,
        ));
        Ok(Self {
            addr,
            ca_pem: ca.pem(),
            state,
            arrived,
            stop,
        })
    }

    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// The CA certificate clients must trust to reach the double.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Push settings that send everything to the double.
    pub fn push_config(&self) -> PushConfig {
        let base = self.base_url();
        PushConfig {
            apns_production_url: base.clone(),
            apns_sandbox_url: base.clone(),
            fcm_url: base.clone(),
            oauth_token_url: format!("{base}/token"),
            extra_root_pem: Some(self.ca_pem.clone()),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// Trusts an APNs key: provider tokens signed by it, with this key id and team id, pass.
    pub fn trust_apns_key(&self, key_id: &str, team_id: &str, public_key: &[u8]) {
        lock(&self.state)
            .apns_keys
            .insert(key_id.to_owned(), (team_id.to_owned(), public_key.to_vec()));
    }

    /// Answers the next pushes to `token` with `answers`, in order, then accepts again.
    pub fn script(&self, token: &str, answers: Vec<DoubleAnswer>) {
        lock(&self.state)
            .scripts
            .entry(token.to_owned())
            .or_default()
            .extend(answers);
    }

    /// Every push request received so far.
    pub fn received(&self) -> Vec<ReceivedPush> {
        lock(&self.state).received.clone()
    }

    /// How many TLS connections clients opened (HTTP/2 multiplexes pushes over one).
    pub fn connections(&self) -> usize {
        lock(&self.state).connections
    }

    /// How many OAuth2 token exchanges were made.
    pub fn token_exchanges(&self) -> usize {
        lock(&self.state).exchanges
    }

    /// Waits until `n` push requests have arrived (or `timeout`), and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedPush> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            let got = self.received();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    stop: CancellationToken,
    base: String,
) {
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => continue,
            },
            () = stop.cancelled() => return,
        };
        let acceptor = acceptor.clone();
        let (state, arrived, stop, base) = (state.clone(), arrived.clone(), stop.clone(), base.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            lock(&state).connections += 1;
            let service = hyper::service::service_fn(move |req| {
                let (state, arrived, base) = (state.clone(), arrived.clone(), base.clone());
                async move { Ok::<_, std::convert::Infallible>(handle(req, &state, &arrived, &base).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), service);
            tokio::select! {
                _ = conn => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

fn reply(status: u16, headers: &[(&str, String)], body: Value) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    let bytes = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    b.body(Full::new(bytes))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: &Mutex<State>,
    arrived: &Notify,
    base: &str,
) -> Response<Full<Bytes>> {
    let http2 = req.version() == hyper::Version::HTTP_2;
    let path = req.uri().path().to_owned();
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if let Some(token) = path.strip_prefix("/3/device/") {
        let (status, reason, response) = apns(state, token, &headers, &body, http2);
        record(
            state,
            arrived,
            PushProvider::Apns,
            token,
            http2,
            headers,
            &body,
            status,
            reason,
        );
        return response;
    }
    if path == "/token" {
        return oauth(state, &body, &format!("{base}/token"));
    }
    if let Some(project) = path
        .strip_prefix("/v1/projects/")
        .and_then(|p| p.strip_suffix("/messages:send"))
    {
        let (token, status, reason, response) = fcm(state, project, &headers, &body);
        record(
            state,
            arrived,
            PushProvider::Fcm,
            &token,
            http2,
            headers,
            &body,
            status,
            reason,
        );
        return response;
    }
    reply(404, &[], json!({"reason": "BadPath"}))
}

#[allow(clippy::too_many_arguments)]
fn record(
    state: &Mutex<State>,
    arrived: &Notify,
    provider: PushProvider,
    token: &str,
    http2: bool,
    headers: BTreeMap<String, String>,
    body: &[u8],
    status: u16,
    reason: Option<String>,
) {
    lock(state).received.push(ReceivedPush {
        provider,
        token: token.to_owned(),
        http2,
        headers,
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
        status,
        reason,
    });
    arrived.notify_waiters();
}

fn jwt_parts(jwt: &str) -> Option<(Value, Value, String, Vec<u8>)> {
    let mut it = jwt.split('.');
    let (h, c, s) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    Some((header, claims, format!("{h}.{c}"), URL_SAFE_NO_PAD.decode(s).ok()?))
}

fn now_s() -> i64 {
    crate::domain::now_ms().div_euclid(1000)
}

fn next_answer(state: &Mutex<State>, token: &str) -> DoubleAnswer {
    lock(state)
        .scripts
        .get_mut(token)
        .and_then(VecDeque::pop_front)
        .unwrap_or(DoubleAnswer::Accept)
}

/// Checks an APNs request as Apple does, then answers as scripted.
fn apns(
    state: &Mutex<State>,
    token: &str,
    h: &BTreeMap<String, String>,
    body: &[u8],
    http2: bool,
) -> (u16, Option<String>, Response<Full<Bytes>>) {
    let apns_id = h
        .get("apns-id")
        .cloned()
        .unwrap_or_else(|| crate::push::provider::push_uuid(&ulid::Ulid::new().to_string()));
    let fail = |status: u16, reason: &str| {
        let mut body = json!({ "reason": reason });
        if status == 410 {
            body["timestamp"] = json!(crate::domain::now_ms());
        }
        (
            status,
            Some(reason.to_owned()),
            reply(status, &[("apns-id", apns_id.clone())], body),
        )
    };
    if !http2 {
        // Apple speaks nothing but HTTP/2.
        return fail(400, "BadPath");
    }
    if token.len() < 64 || !token.bytes().all(|c| c.is_ascii_hexdigit()) {
        return fail(400, "BadDeviceToken");
    }
    let Some(jwt) = h.get("authorization").and_then(|a| a.strip_prefix("bearer ")) else {
        return fail(403, "MissingProviderToken");
    };
    let valid = jwt_parts(jwt).is_some_and(|(header, claims, input, sig)| {
        let kid = header["kid"].as_str().unwrap_or("");
        let keys = lock(state);
        let Some((team, public)) = keys.apns_keys.get(kid) else {
            return false;
        };
        let iat = claims["iat"].as_i64().unwrap_or(0);
        header["alg"] == "ES256"
            && claims["iss"].as_str() == Some(team.as_str())
            && (now_s() - iat).abs() < 3600
            && UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
                .verify(input.as_bytes(), &sig)
                .is_ok()
    });
    if !valid {
        return fail(403, "InvalidProviderToken");
    }
    if h.get("apns-topic").is_none_or(|t| t.is_empty()) {
        return fail(400, "MissingTopic");
    }
    if !matches!(
        h.get("apns-push-type").map(String::as_str),
        Some("alert" | "background" | "voip" | "complication" | "fileprovider" | "mdm" | "liveactivity")
    ) {
        return fail(400, "InvalidPushType");
    }
    if h.get("apns-priority")
        .is_some_and(|p| !matches!(p.as_str(), "1" | "5" | "10"))
    {
        return fail(400, "BadPriority");
    }
    if h.get("apns-collapse-id").is_some_and(|c| c.len() > 64) {
        return fail(400, "BadCollapseId");
    }
    if h.get("apns-id")
        .is_some_and(|id| id.len() != 36 || id.bytes().filter(|b| *b == b'-').count() != 4)
    {
        return fail(400, "BadMessageId");
    }
    if body.len() > 4096 {
        return fail(413, "PayloadTooLarge");
    }
    let payload: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if !payload["aps"].is_object() {
        return fail(400, "PayloadEmpty");
    }
    match next_answer(state, token) {
        DoubleAnswer::Accept => (200, None, reply(200, &[("apns-id", apns_id)], Value::Null)),
        DoubleAnswer::Reject { status, reason } => fail(status, &reason),
    }
}

/// The OAuth2 JWT-bearer grant (RFC 7523) as Google's token endpoint runs it.
fn oauth(state: &Mutex<State>, body: &[u8], audience: &str) -> Response<Full<Bytes>> {
    let form: HashMap<String, String> = serde_urlencoded_pairs(body);
    let refuse = |why: &str| reply(400, &[], json!({"error": "invalid_grant", "error_description": why}));
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return reply(400, &[], json!({"error": "unsupported_grant_type"}));
    }
    let Some((header, claims, input, sig)) = form.get("assertion").and_then(|a| jwt_parts(a)) else {
        return refuse("malformed assertion");
    };
    let public = super::test_keys::rsa_public();
    if header["alg"] != "RS256"
        || UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(input.as_bytes(), &sig)
            .is_err()
    {
        return refuse("Invalid JWT Signature.");
    }
    if claims["aud"].as_str() != Some(audience) {
        return refuse("Invalid JWT: audience");
    }
    if !claims["scope"]
        .as_str()
        .is_some_and(|s| s.split(' ').any(|x| x == FCM_SCOPE))
    {
        return reply(400, &[], json!({"error": "invalid_scope"}));
    }
    let (iat, exp) = (claims["iat"].as_i64().unwrap_or(0), claims["exp"].as_i64().unwrap_or(0));
    if exp <= now_s() || exp - iat > 3600 || !claims["iss"].as_str().is_some_and(|i| i.contains('@')) {
        return refuse("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.");
    }
    let mut s = lock(state);
    s.exchanges += 1;
    s.issued += 1;
    let token = format!("ya29.double-{}-{}", s.issued, ulid::Ulid::new());
    s.access_tokens.insert(token.clone());
    reply(
        200,
        &[],
        json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
    )
}

fn serde_urlencoded_pairs(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn google_error(status: u16, code: &str) -> Value {
    let status_text = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    json!({"error": {
        "code": status,
        "message": format!("{code} (from the Tern provider double)"),
        "status": status_text,
        "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}],
    }})
}

/// Checks an FCM v1 send as Google does, then answers as scripted.
fn fcm(
    state: &Mutex<State>,
    project: &str,
    h: &BTreeMap<String, String>,
    body: &[u8],
) -> (String, u16, Option<String>, Response<Full<Bytes>>) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let token = v["message"]["token"].as_str().unwrap_or("").to_owned();
    let fail = |status: u16, code: &str| {
        (
            token.clone(),
            status,
            Some(code.to_owned()),
            reply(status, &[], google_error(status, code)),
        )
    };
    let authorised = h
        .get("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|t| lock(state).access_tokens.contains(t));
    if !authorised {
        return fail(401, "UNAUTHENTICATED");
    }
    let m = &v["message"];
    let targets = ["token", "topic", "condition"]
        .iter()
        .filter(|k| !m[**k].is_null())
        .count();
    if !m.is_object() || targets != 1 || token.is_empty() {
        return fail(400, "INVALID_ARGUMENT");
    }
    if !m["data"].is_null() && !m["data"].as_object().is_some_and(|d| d.values().all(Value::is_string)) {
        // Google takes only string values in `data`.
        return fail(400, "INVALID_ARGUMENT");
    }
    match next_answer(state, &token) {
        DoubleAnswer::Accept => {
            let name = format!("projects/{project}/messages/{}", ulid::Ulid::new());
            (token.clone(), 200, None, reply(200, &[], json!({ "name": name })))
        }
        DoubleAnswer::Reject { status, reason } => fail(status, &reason),
    }
}
