//! The operator API (`/admin/v1`) against the real binary on a random port: tokens made in
//! the console (shown once, kept as a hash), bearer and session-cookie auth (CSRF on
//! changes), roles (a viewer's token reads and changes nothing), tenant scope (every route
//! naming another tenant's tenant, app, secret, user or message answers 404), the error
//! shape of bad bodies, and the audit log naming the token that made each change. On SQLite,
//! and on PostgreSQL too when `TERN_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::{
    databases, error_code, operator, secrets_shown, start_console, tenant_with_app, Browser, VIEWER_PASSWORD,
};
use common::Server;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tern_sdk::server::ServerClient;

fn start(pg: &Option<String>) -> (Server, tempfile::TempDir) {
    match pg {
        Some(url) => start_console(&[("TERN_DATABASE_URL", url)]),
        None => start_console(&[]),
    }
}

/// Calls `/admin/v1` with a bearer token (or none).
struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(server: &Server, token: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: server.base.clone(),
            token: token.map(str::to_owned),
        }
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}/admin/v1{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        assert_eq!(
            res.headers().get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{method} {path}"
        );
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.raw(method, path, body.map(|b| b.to_string().into_bytes())).await
    }

    async fn get(&self, path: &str) -> Value {
        let (status, v) = self.call("GET", path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
        v
    }
}

/// The signed-in browser makes a token on the console's tokens page; returns its value.
async fn make_token(b: &mut Browser, name: &str, tenant: &str, role: &str) -> String {
    let page = b
        .change("/console/tokens", &[("name", name), ("tenant", tenant), ("role", role)])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let shown = secrets_shown(&page.body);
    assert_eq!(shown.len(), 1, "the new token is shown: {}", page.body);
    assert!(shown[0].starts_with("tern_at_"), "{}", shown[0]);
    shown[0].clone()
}

async fn member(op: &mut Browser, server: &Server, tenant: &str, email: &str, role: &str) -> Browser {
    let added = op
        .change(
            &format!("/console/t/{tenant}/members"),
            &[("email", email), ("password", VIEWER_PASSWORD), ("role", role)],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let mut b = Browser::new(server);
    let signed = b.sign_in(email, VIEWER_PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    b
}

/// Every stored token hash, read straight from the database.
async fn stored_token_hashes(pg: &Option<String>, dir: &std::path::Path) -> Vec<String> {
    let q = "SELECT token_hash FROM console_api_tokens";
    match pg {
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query_scalar(q).fetch_all(&pool).await.unwrap()
        }
        None => {
            let url = format!("sqlite://{}/tern.db", dir.join("data").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query_scalar(q).fetch_all(&pool).await.unwrap()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_shown_once_kept_hashed_and_works_until_revoked() {
    for pg in databases().await {
        eprintln!("on {}", if pg.is_some() { "postgres" } else { "sqlite" });
        let (server, dir) = start(&pg);
        let mut op = operator(&server).await;
        tenant_with_app(&mut op, "Alpha").await;
        tenant_with_app(&mut op, "Beta").await;
        let token = make_token(&mut op, "ops-script", "", "").await;

        // Shown once: the list names it, never shows it again.
        let list = op.get("/console/tokens").await;
        assert!(list.body.contains("ops-script"), "{}", list.body);
        assert!(!list.body.contains(&token), "the token is shown only once");
        // Kept as its SHA-256 only.
        let hashes = stored_token_hashes(&pg, dir.path()).await;
        assert_eq!(hashes, vec![tern_platform::service::console::token_hash(&token)]);

        // A platform token sees every tenant.
        let api = Api::new(&server, Some(&token));
        let tenants = api.get("/tenants").await;
        let names: Vec<&str> = tenants["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{tenants}");
        assert!(names.contains(&"Alpha") && names.contains(&"Beta"), "{names:?}");
        let found = api.get("/tenants?q=alp").await;
        assert_eq!(found["tenants"].as_array().unwrap().len(), 1, "{found}");
        let mine = api.get("/tokens").await;
        assert_eq!(mine["tokens"][0]["name"], "ops-script", "{mine}");
        assert!(mine.to_string().find(&token).is_none(), "never listed with its value");

        // No token, an unknown one, a malformed header.
        let (s, v) = Api::new(&server, None).call("GET", "/tenants", None).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNAUTHORIZED, "missing_credentials"),
            "{v}"
        );
        let (s, v) = Api::new(&server, Some("tern_at_nope"))
            .call("GET", "/tenants", None)
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNAUTHORIZED, "api_token_invalid"),
            "{v}"
        );
        let (s, v) = Api::new(&server, Some("not a token at all"))
            .call("GET", "/tenants", None)
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNAUTHORIZED, "api_token_invalid"),
            "{v}"
        );
        let res = reqwest::Client::new()
            .get(format!("{}/admin/v1/tenants", server.base))
            .header("authorization", format!("Basic {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

        // Revoked in the console: refused at once with its own code.
        let id = mine["tokens"][0]["id"].as_str().unwrap().to_owned();
        let revoked = op.change(&format!("/console/tokens/{id}/revoke"), &[]).await;
        assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
        let (s, v) = api.call("GET", "/tenants", None).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNAUTHORIZED, "api_token_revoked"),
            "{v}"
        );
        assert!(op.get("/console/tokens").await.body.contains("revoked"));
        let audit = op.get("/console/audit").await;
        assert!(
            audit.body.contains("api_token.create") && audit.body.contains("api_token.revoke"),
            "{}",
            audit.body
        );
        assert!(!audit.body.contains(&token), "the audit log never holds the token");
    }
}

/// Beta's things, named by every route, through Alpha's owner's token: 404, nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_token_sees_its_tenant_only_and_every_route_naming_another_answers_404() {
    let (server, _dir) = start_console(&[]);
    let mut op = operator(&server).await;
    let a = tenant_with_app(&mut op, "Alpha").await;
    let b = tenant_with_app(&mut op, "Beta").await;
    let beta = ServerClient::new(&server.base, &b.app_key, &b.app_secret);
    beta.create_user("bob", "Bob").await.unwrap();
    beta.create_user("carol", "Carol").await.unwrap();
    let sent = beta.send_text("bob", "carol", "c1", "beta secret").await.unwrap();
    let alpha = ServerClient::new(&server.base, &a.app_key, &a.app_secret);
    alpha.create_user("bob", "Alpha Bob").await.unwrap();
    let ops_token = make_token(&mut op, "ops", "", "").await;
    let ops = Api::new(&server, Some(&ops_token));
    let beta_secret = ops.get(&format!("/tenants/{}/apps/{}", b.tenant, b.app)).await["secrets"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut owner = member(&mut op, &server, &a.tenant, "owner@alpha.test", "owner").await;
    let token = make_token(&mut owner, "alpha-bot", &a.tenant, "").await;
    let api = Api::new(&server, Some(&token));
    let listed = api.get("/tenants").await;
    assert_eq!(listed["tenants"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["tenants"][0]["name"], "Alpha");
    // Its own tenant works.
    api.get(&format!("/tenants/{}/apps/{}/users/bob", a.tenant, a.app))
        .await;

    let (bt, ba, at, aa) = (&b.tenant, &b.app, &a.tenant, &a.app);
    let conv = sent.conversation_id.to_string();
    let msg = sent.msg_id.to_string();
    let mut probes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/tenants/{bt}"), None),
        ("POST", format!("/tenants/{bt}/approve"), None),
        ("POST", format!("/tenants/{bt}/decline"), Some(json!({"reason": "x"}))),
        ("POST", format!("/tenants/{bt}/suspend"), None),
        ("POST", format!("/tenants/{bt}/activate"), None),
        ("GET", format!("/tenants/{bt}/audit"), None),
        ("GET", format!("/tenants/{bt}/apps"), None),
        ("POST", format!("/tenants/{bt}/apps"), Some(json!({"name": "sneaky"}))),
        (
            "POST",
            "/tokens".into(),
            Some(json!({"name": "sneaky", "tenant_id": bt.to_string()})),
        ),
    ];
    // Each app route under Beta's tenant, and with Beta's app under Alpha's own tenant.
    for (t, app) in [(bt, ba), (at, ba)] {
        let p = format!("/tenants/{t}/apps/{app}");
        probes.extend([
            ("GET", p.clone(), None),
            ("PATCH", format!("{p}/settings"), Some(json!({"max_text_bytes": 100}))),
            ("POST", format!("{p}/secrets/rotate"), None),
            ("POST", format!("{p}/secrets/{beta_secret}/revoke"), None),
            ("POST", format!("{p}/webhook-secret/rotate"), None),
            ("GET", format!("{p}/users?q=bo"), None),
            ("GET", format!("{p}/users/bob"), None),
            ("GET", format!("{p}/usage"), None),
            ("GET", format!("{p}/conversations/{}/messages", urlencode(&conv)), None),
            ("POST", format!("{p}/messages/{msg}/recall"), None),
        ]);
        for action in ["ban", "unban", "mute", "unmute", "revoke-tokens", "kick"] {
            probes.push(("POST", format!("{p}/users/bob/{action}"), None));
        }
    }
    // Beta's secret and message named under Alpha's own app.
    probes.push((
        "POST",
        format!("/tenants/{at}/apps/{aa}/secrets/{beta_secret}/revoke"),
        None,
    ));
    probes.push(("POST", format!("/tenants/{at}/apps/{aa}/messages/{msg}/recall"), None));
    probes.push((
        "GET",
        format!("/tenants/{at}/apps/{aa}/conversations/{}/messages", urlencode(&conv)),
        None,
    ));
    // The operator's token, by id.
    let ops_id = ops.get("/tokens").await["tokens"][0]["id"].as_str().unwrap().to_owned();
    probes.push(("POST", format!("/tokens/{ops_id}/revoke"), None));
    // Nothing at all, for comparison: the same answer.
    probes.push(("GET", "/tenants/t_0000000000000000000000000/apps".into(), None));

    for (method, path, body) in &probes {
        let (status, v) = api.call(method, path, body.clone()).await;
        assert_eq!(
            (status, error_code(&v)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{method} {path}: {v}"
        );
        assert!(!v.to_string().contains("Beta"), "{method} {path} leaks: {v}");
    }
    eprintln!("{} probes answered 404", probes.len());
    // Nothing of Beta changed: its secret still signs, its message is not recalled, bob is free.
    let m = beta.get_message(&sent.msg_id).await.unwrap();
    assert!(!m.recalled);
    assert!(beta.get_user("bob").await.unwrap()["banned_until"].is_null());
    assert_eq!(ops.get("/tokens").await["tokens"][0]["revoked_at"], Value::Null);
    let (s, v) = api.call("GET", "/audit", None).await;
    assert_eq!((s, error_code(&v)), (StatusCode::FORBIDDEN, "forbidden"), "{v}");
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewers_token_reads_but_changes_nothing_and_ends_with_the_membership() {
    let (server, _dir) = start_console(&[]);
    let mut op = operator(&server).await;
    let a = tenant_with_app(&mut op, "Alpha").await;
    let alpha = ServerClient::new(&server.base, &a.app_key, &a.app_secret);
    alpha.create_user("bob", "Bob").await.unwrap();
    alpha.create_user("carol", "Carol").await.unwrap();
    let sent = alpha.send_text("bob", "carol", "c1", "hello").await.unwrap();
    let mut viewer = member(&mut op, &server, &a.tenant, "viewer@alpha.test", "viewer").await;
    let token = make_token(&mut viewer, "read-only", &a.tenant, "").await;
    // Nobody makes a token above their own role.
    let refused = viewer
        .change(
            "/console/tokens",
            &[("name", "x"), ("tenant", &a.tenant), ("role", "admin")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let api = Api::new(&server, Some(&token));
    let p = format!("/tenants/{}/apps/{}", a.tenant, a.app);
    let conv = urlencode(&sent.conversation_id.to_string());
    for read in [
        format!("/tenants/{}", a.tenant),
        format!("/tenants/{}/apps", a.tenant),
        format!("/tenants/{}/audit", a.tenant),
        p.clone(),
        format!("{p}/users?q=b"),
        format!("{p}/users/bob"),
        format!("{p}/usage?hours=168"),
        format!("{p}/conversations/{conv}/messages"),
    ] {
        api.get(&read).await;
    }
    let history = api.get(&format!("{p}/conversations/{conv}/messages")).await;
    assert_eq!(history["messages"][0]["content"]["text"], "hello", "{history}");
    let secret = api.get(&p).await["secrets"][0]["id"].as_str().unwrap().to_owned();
    let msg = sent.msg_id.to_string();
    let mut changes: Vec<(&str, String, Option<Value>)> = vec![
        ("POST", "/tenants".into(), Some(json!({"name": "Mine"}))),
        (
            "POST",
            format!("/tenants/{}/apps", a.tenant),
            Some(json!({"name": "x"})),
        ),
        ("POST", format!("/tenants/{}/suspend", a.tenant), None),
        ("PATCH", format!("{p}/settings"), Some(json!({"max_text_bytes": 100}))),
        ("POST", format!("{p}/secrets/rotate"), None),
        ("POST", format!("{p}/secrets/{secret}/revoke"), None),
        ("POST", format!("{p}/webhook-secret/rotate"), None),
        ("POST", format!("{p}/messages/{msg}/recall"), None),
    ];
    for action in ["ban", "unban", "mute", "unmute", "revoke-tokens", "kick"] {
        changes.push(("POST", format!("{p}/users/bob/{action}"), None));
    }
    for (method, path, body) in &changes {
        let (status, v) = api.call(method, path, body.clone()).await;
        assert_eq!(
            (status, error_code(&v)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{method} {path}: {v}"
        );
    }
    assert!(!alpha.get_message(&sent.msg_id).await.unwrap().recalled);
    assert_eq!(api.get(&p).await["settings"]["max_text_bytes"], 12288, "unchanged");

    // Removing the member ends the token.
    let page = op.get(&format!("/console/t/{}", a.tenant)).await;
    let end = page.body.find("/remove\"").unwrap();
    let account = page.body[page.body[..end].rfind("/members/").unwrap() + 9..end].to_owned();
    let removed = op
        .change(&format!("/console/t/{}/members/{account}/remove", a.tenant), &[])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    let (s, v) = api.call("GET", "/tenants", None).await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNAUTHORIZED, "api_token_revoked"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_audited_with_the_tokens_name_and_bad_bodies_get_stable_codes() {
    for pg in databases().await {
        eprintln!("on {}", if pg.is_some() { "postgres" } else { "sqlite" });
        let (server, _dir) = start(&pg);
        let mut op = operator(&server).await;
        let token = make_token(&mut op, "deploy-bot", "", "").await;
        let api = Api::new(&server, Some(&token));

        let (s, t) = api.call("POST", "/tenants", Some(json!({"name": "Gamma"}))).await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        let tenant = t["id"].as_str().unwrap().to_owned();
        let (s, dup) = api.call("POST", "/tenants", Some(json!({"name": "Gamma"}))).await;
        assert_eq!((s, error_code(&dup)), (StatusCode::CONFLICT, "conflict"), "{dup}");
        let (s, created) = api
            .call(
                "POST",
                &format!("/tenants/{tenant}/apps"),
                Some(json!({"name": "chat"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let app = created["app"]["id"].as_str().unwrap().to_owned();
        let (key, secret) = (
            created["app"]["app_key"].as_str().unwrap().to_owned(),
            created["app_secret"].as_str().unwrap().to_owned(),
        );
        let p = format!("/tenants/{tenant}/apps/{app}");
        let detail = api.get(&p).await;
        assert!(!detail.to_string().contains(&secret), "the secret is not shown again");

        // Bad input: stable codes, nothing changed.
        for (body, status, want) in [
            (
                b"{\"max_text_bytes\": ".to_vec(),
                StatusCode::BAD_REQUEST,
                "invalid_json",
            ),
            (b"[1, 2]".to_vec(), StatusCode::BAD_REQUEST, "invalid_json"),
            (
                b"{\"max_text_bytes\": 999999999}".to_vec(),
                StatusCode::BAD_REQUEST,
                "invalid_argument",
            ),
            (
                b"{\"no_such_setting\": 1}".to_vec(),
                StatusCode::BAD_REQUEST,
                "invalid_argument",
            ),
            (
                format!("{{\"x\": \"{}\"}}", "a".repeat(70 * 1024)).into_bytes(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            ),
        ] {
            let (s, v) = api.raw("PATCH", &format!("{p}/settings"), Some(body)).await;
            assert_eq!((s, error_code(&v)), (status, want), "{v}");
        }
        let (s, v) = api
            .call("POST", "/tenants", Some(json!({"name": "X", "extra": true})))
            .await;
        assert_eq!((s, error_code(&v)), (StatusCode::BAD_REQUEST, "invalid_json"), "{v}");
        let (s, v) = api.call("DELETE", "/tenants", None).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            "{v}"
        );
        let (s, v) = api.call("GET", "/nothing/here", None).await;
        assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");

        // The changes a script makes.
        let settings = api
            .call("PATCH", &format!("{p}/settings"), Some(json!({"max_text_bytes": 2000})))
            .await;
        assert_eq!(settings.0, StatusCode::OK, "{}", settings.1);
        assert_eq!(settings.1["max_text_bytes"], 2000);
        let (s, rotated) = api.call("POST", &format!("{p}/secrets/rotate"), None).await;
        assert_eq!(s, StatusCode::OK, "{rotated}");
        let new_secret = rotated["app_secret"].as_str().unwrap().to_owned();
        let old_id = api.get(&p).await["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] != rotated["secret_id"])
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, v) = api.call("POST", &format!("{p}/secrets/{old_id}/revoke"), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = api.call("POST", &format!("{p}/webhook-secret/rotate"), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["webhook_secret"].as_str().unwrap().len() >= 32);
        // The new secret signs; the revoked one does not.
        let client = ServerClient::new(&server.base, &key, &new_secret);
        client.create_user("bob", "Bob").await.unwrap();
        client.create_user("carol", "Carol").await.unwrap();
        assert!(ServerClient::new(&server.base, &key, &secret)
            .get_user("bob")
            .await
            .is_err());
        let sent = client.send_text("bob", "carol", "c1", "to recall").await.unwrap();
        let (s, v) = api
            .call(
                "POST",
                &format!("{p}/users/bob/ban"),
                Some(json!({"duration_seconds": 3600, "reason": "spam"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["banned_until"].as_i64().is_some(), "{v}");
        for action in ["unban", "mute", "unmute", "revoke-tokens", "kick"] {
            let (s, v) = api.call("POST", &format!("{p}/users/bob/{action}"), None).await;
            assert_eq!(s, StatusCode::OK, "{action}: {v}");
        }
        let (s, v) = api.call("POST", &format!("{p}/users/bob/explode"), None).await;
        assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
        let (s, v) = api
            .call("POST", &format!("{p}/messages/{}/recall", sent.msg_id), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["recalled"], true, "{v}");
        let conv = urlencode(&sent.conversation_id.to_string());
        let history = api.get(&format!("{p}/conversations/{conv}/messages?after=0")).await;
        assert_eq!(history["messages"][0]["recalled"], true, "{history}");
        let (s, v) = api.call("POST", &format!("/tenants/{tenant}/suspend"), None).await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("suspended")), "{v}");
        let (s, v) = api.call("POST", &format!("/tenants/{tenant}/approve"), None).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "{v}"
        );
        let (s, v) = api.call("POST", &format!("/tenants/{tenant}/activate"), None).await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("active")), "{v}");
        let usage = api.get(&format!("{p}/usage")).await;
        assert_eq!(usage["rows"].as_array().unwrap().len(), 24, "{usage}");

        // Each change, in the tenant's audit log, by the token, from the caller's address.
        let log = api.get(&format!("/tenants/{tenant}/audit?limit=200")).await;
        let entries = log["entries"].as_array().unwrap();
        let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
        for want in [
            "tenant.create",
            "app.create",
            "app.settings",
            "app.secret.rotate",
            "app.secret.revoke",
            "app.webhook_secret.rotate",
            "user.ban",
            "user.unban",
            "user.mute",
            "user.unmute",
            "user.revoke_tokens",
            "user.kick",
            "app.message.recall",
            "tenant.status",
        ] {
            assert!(actions.contains(&want), "{want} missing from {actions:?}");
        }
        for e in entries {
            assert_eq!(e["actor"], "ops@example.com (token deploy-bot)", "{e}");
            assert_eq!(e["ip"], "127.0.0.1", "{e}");
        }
        assert!(!log.to_string().contains(&new_secret), "no secret in the log");
        let settings_line = entries.iter().find(|e| e["action"] == "app.settings").unwrap();
        assert_eq!(
            settings_line["detail"], "max_text_bytes: 12288 → 2000",
            "{settings_line}"
        );
        // The console's page shows the same lines.
        let page = op.get(&format!("/console/t/{tenant}/audit")).await;
        assert!(page.body.contains("(token deploy-bot)"), "{}", page.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_works_and_a_change_with_it_needs_the_csrf_token() {
    let (server, _dir) = start_console(&[]);
    let mut op = operator(&server).await;
    let url = |p: &str| format!("{}/admin/v1{p}", server.base);
    let read = op.send(op.http.get(url("/tenants"))).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let bare = op
        .send(op.http.post(url("/tenants")).json(&json!({"name": "Delta"})))
        .await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN, "{}", bare.body);
    let v: Value = serde_json::from_str(&bare.body).unwrap();
    assert_eq!(error_code(&v), "csrf_token_invalid");
    let wrong = op
        .send(
            op.http
                .post(url("/tenants"))
                .header("x-csrf-token", "guess")
                .json(&json!({"name": "Delta"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.body);
    let csrf = op.csrf().await;
    let cross = op
        .send(
            op.http
                .post(url("/tenants"))
                .header("x-csrf-token", &csrf)
                .header("sec-fetch-site", "cross-site")
                .json(&json!({"name": "Delta"})),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN, "{}", cross.body);
    let made = op
        .send(
            op.http
                .post(url("/tenants"))
                .header("x-csrf-token", &csrf)
                .json(&json!({"name": "Delta"})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let listed = op.send(op.http.get(url("/tenants?q=delta"))).await;
    assert!(listed.body.contains("Delta"), "{}", listed.body);
    let log = op.get("/console/audit").await;
    assert!(log.body.contains("tenant.create"), "{}", log.body);
    // An unknown session is not a session.
    let res = reqwest::Client::new()
        .get(url("/tenants"))
        .header("cookie", "tern_console=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
