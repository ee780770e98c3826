//! The operator API's routes for the rest of the console (webhooks, push, groups and rooms,
//! broadcasts, the mail outbox, a tenant's team) and its tokens' expiry and last use, against
//! the real binary on a random port: each route does what its page does and writes the
//! page's audit line; a viewer's token changes nothing (403); every route naming another
//! tenant's thing answers 404; bad bodies, unknown ids and bad filters get stable codes
//! (never a 500). On SQLite, and on PostgreSQL too when `TERN_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use common::browser::{
    databases, error_code, operator, secrets_shown, start_console, tenant_with_app, Browser, VIEWER_PASSWORD,
};
use common::{eventually, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tern_sdk::push::PushToken;
use tern_sdk::server::ServerClient;

fn start(pg: &Option<String>) -> (Server, tempfile::TempDir) {
    let mut env = vec![("TERN_WEBHOOK_ALLOW_PRIVATE", "1")];
    if let Some(url) = pg {
        env.push(("TERN_DATABASE_URL", url));
    }
    start_console(&env)
}

/// Runs one statement on the server's database (what a test cannot wait for: a day, or an
/// event's 24 hours of failures).
async fn sql(pg: &Option<String>, dir: &std::path::Path, statement: &str) {
    match pg {
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        None => {
            let url = format!("sqlite://{}/tern.db", dir.join("data").display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
    }
}

/// Calls `/admin/v1` with a bearer token.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(server: &Server, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: server.base.clone(),
            token: token.to_owned(),
        }
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}/admin/v1{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
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

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }
}

/// Asserts an `invalid_argument` (400) naming `field`.
fn refused_on(answer: (StatusCode, Value), field: &str) {
    let (s, v) = answer;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_argument"),
        "{v}"
    );
    assert_eq!(v["error"]["field"], field, "{v}");
}

async fn make_token(b: &mut Browser, name: &str, tenant: &str, role: &str, expires: &str) -> String {
    let page = b
        .change(
            "/console/tokens",
            &[("name", name), ("tenant", tenant), ("role", role), ("expires", expires)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    secrets_shown(&page.body)[0].clone()
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

/// A webhook endpoint answering every POST with the status set now.
struct Endpoint {
    status: Mutex<u16>,
}

async fn answer(State(e): State<Arc<Endpoint>>) -> (AxumStatus, &'static str) {
    let s = *e.status.lock().unwrap();
    (AxumStatus::from_u16(s).unwrap(), "endpoint says hi")
}

async fn endpoint(status: u16) -> (Arc<Endpoint>, String) {
    let e = Arc::new(Endpoint {
        status: Mutex::new(status),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/hook", post(answer)).with_state(e.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (e, url)
}

fn apns(token: &str) -> PushToken {
    PushToken {
        provider: "apns".into(),
        token: token.into(),
        environment: Some("sandbox".into()),
        ..PushToken::default()
    }
}

const DEVICE_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_has_its_routes_and_each_change_is_audited() {
    for pg in databases().await {
        eprintln!("on {}", if pg.is_some() { "postgres" } else { "sqlite" });
        let (server, dir) = start(&pg);
        let (hook, url) = endpoint(200).await;
        let mut op = operator(&server).await;
        let a = tenant_with_app(&mut op, "Alpha").await;
        let token = make_token(&mut op, "ops-bot", "", "", "").await;
        let api = Api::new(&server, &token);
        let p = format!("/tenants/{}/apps/{}", a.tenant, a.app);
        let client = ServerClient::new(&server.base, &a.app_key, &a.app_secret);
        for (id, name) in [("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")] {
            client.create_user(id, name).await.unwrap();
        }

        // ---- webhooks: configuration, checked by the platform ----
        let w = api.get(&format!("{p}/webhook")).await;
        assert!(w["url"].is_null(), "{w}");
        assert_eq!(w["breaker"]["open"], false, "{w}");
        let tested = api.ok("POST", &format!("{p}/webhook/test"), None).await;
        assert_eq!(tested["sent"], false, "no URL yet: {tested}");
        assert!(tested["why"].as_str().unwrap().contains("URL"), "{tested}");
        refused_on(
            api.call(
                "PUT",
                &format!("{p}/webhook"),
                Some(json!({"url": url, "events": ["no.such"]})),
            )
            .await,
            "events",
        );
        refused_on(
            api.call(
                "PUT",
                &format!("{p}/webhook"),
                Some(json!({"url": "ftp://example.com/x"})),
            )
            .await,
            "url",
        );
        refused_on(
            api.call(
                "PUT",
                &format!("{p}/webhook"),
                Some(json!({"url": url, "before_send": {"timeout_ms": 99_999_999}})),
            )
            .await,
            "before_send",
        );
        assert!(
            api.get(&format!("{p}/webhook")).await["url"].is_null(),
            "nothing stored"
        );
        let set = api
            .ok(
                "PUT",
                &format!("{p}/webhook"),
                Some(json!({"url": url, "events": ["message.sent"], "before_send": {"timeout_ms": 1500}})),
            )
            .await;
        assert_eq!(set["url"], url.as_str(), "{set}");
        assert_eq!(set["events"], json!(["message.sent"]), "{set}");
        assert_eq!(set["before_send"]["timeout_ms"], 1500, "{set}");
        assert_eq!(set["before_send"]["enabled"], false, "kept: {set}");
        // The server API sees the same configuration.
        assert_eq!(client.webhook().await.unwrap()["config"]["url"], url.as_str());

        // A test event, and the delivery log.
        let tested = api.ok("POST", &format!("{p}/webhook/test"), None).await;
        assert_eq!(tested["sent"], true, "{tested}");
        assert_eq!(tested["attempt"]["outcome"], "delivered", "{tested}");
        assert_eq!(tested["attempt"]["http_status"], 200, "{tested}");
        assert_eq!(tested["attempt"]["response_excerpt"], "endpoint says hi", "{tested}");
        *hook.status.lock().unwrap() = 500;
        let sent = client.send_text("alice", "bob", "m1", "hello").await.unwrap();
        let log_path = format!("{p}/webhook/attempts");
        eventually("the failed after-event is logged", || {
            let (api, path) = (&api, &log_path);
            async move {
                api.get(path).await["attempts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l["event_type"] == "message.sent")
            }
        })
        .await;
        let log = api.get(&log_path).await;
        let line = log["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["event_type"] == "message.sent")
            .unwrap()
            .clone();
        assert_eq!(line["http_status"], 500, "{line}");
        let event = line["event_id"].as_str().unwrap().to_owned();
        let only = api.get(&format!("{log_path}?event={event}")).await;
        assert!(
            only["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["event_id"] == event.as_str()),
            "{only}"
        );
        let paged = api.get(&format!("{log_path}?limit=1")).await;
        assert_eq!(paged["attempts"].as_array().unwrap().len(), 1, "{paged}");
        let older = paged["next_before"].as_str().unwrap();
        let page2 = api.get(&format!("{log_path}?limit=1&before={older}")).await;
        assert_ne!(page2["attempts"][0]["id"], paged["attempts"][0]["id"], "{page2}");
        refused_on(api.call("GET", &format!("{log_path}?event=nope"), None).await, "event");
        refused_on(api.call("GET", &format!("{log_path}?before=x"), None).await, "before");

        // Dead events (a test cannot wait 24 hours: the event is given up in the database),
        // and their redelivery to the recovered endpoint.
        *hook.status.lock().unwrap() = 200;
        let dead_path = format!("{p}/webhook/dead-events");
        eventually("the event is dead", || {
            let (api, path, pg, dir, event) = (&api, &dead_path, &pg, dir.path(), &event);
            async move {
                sql(
                    pg,
                    dir,
                    &format!("UPDATE outbox_events SET state = 'dead' WHERE id = '{event}'"),
                )
                .await;
                api.get(path).await["events"][0]["id"] == event.as_str()
            }
        })
        .await;
        refused_on(api.call("GET", &format!("{dead_path}?after=x"), None).await, "after");
        let (s, v) = api
            .call(
                "POST",
                &format!("{dead_path}/wh_00000000000000000000000000/redeliver"),
                None,
            )
            .await;
        assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
        api.ok("POST", &format!("{dead_path}/{event}/redeliver"), None).await;
        eventually("the redelivered event is delivered", || {
            let (api, path) = (&api, format!("{log_path}?event={event}"));
            async move { api.get(&path).await["attempts"][0]["outcome"] == "delivered" }
        })
        .await;
        assert_eq!(api.get(&dead_path).await["events"], json!([]));

        // ---- push: devices, a test push, the log ----
        let device: Value = client.register_device("bob", &apns(DEVICE_TOKEN)).await.unwrap();
        let device = device["device_id"].as_str().unwrap().to_owned();
        let devices = api.get(&format!("{p}/users/bob/devices")).await;
        assert_eq!(devices["devices"][0]["id"], device.as_str(), "{devices}");
        assert_eq!(devices["devices"][0]["token"], DEVICE_TOKEN, "{devices}");
        let (s, v) = api.call("GET", &format!("{p}/users/nobody/devices"), None).await;
        assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
        let pushed = api
            .ok(
                "POST",
                &format!("{p}/push/test"),
                Some(json!({"user": "bob", "device": device})),
            )
            .await;
        assert_eq!(pushed["sent"], false, "{pushed}");
        assert!(pushed["why"].as_str().unwrap().contains("apns"), "{pushed}");
        let (s, v) = api
            .call(
                "POST",
                &format!("{p}/push/test"),
                Some(json!({"user": "alice", "device": device})),
            )
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::NOT_FOUND, "not_found"),
            "another's device: {v}"
        );
        let plog = api.get(&format!("{p}/push/log?user=bob&device={device}")).await;
        assert!(plog["attempts"].is_array(), "{plog}");
        refused_on(api.call("GET", &format!("{p}/push/log?user=a%20b"), None).await, "user");
        refused_on(
            api.call("GET", &format!("{p}/push/log?device=phone"), None).await,
            "device",
        );
        refused_on(api.call("GET", &format!("{p}/push/log?msg=x%20y"), None).await, "msg");
        refused_on(api.call("GET", &format!("{p}/push/log?before=x"), None).await, "before");

        // ---- groups and rooms ----
        client
            .create_group("g1", "Team", "alice", &["bob", "carol"])
            .await
            .unwrap();
        let g = api.get(&format!("{p}/groups/g1")).await;
        assert_eq!(
            (g["name"].as_str(), g["member_count"].as_i64()),
            (Some("Team"), Some(3)),
            "{g}"
        );
        let first = api.get(&format!("{p}/groups/g1/members?limit=2")).await;
        assert_eq!(first["members"][0]["user_id"], "alice", "{first}");
        assert_eq!(first["members"][0]["role"], "owner", "{first}");
        let next = first["next_after"].as_str().unwrap();
        let rest = api.get(&format!("{p}/groups/g1/members?after={next}")).await;
        assert_eq!(rest["members"][0]["user_id"], "carol", "{rest}");
        let (s, v) = api.call("GET", &format!("{p}/groups/nope"), None).await;
        assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
        let (s, v) = api.call("GET", &format!("{p}/groups/nope/members"), None).await;
        assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
        client.create_room("lobby", Some("Lobby"), None).await.unwrap();
        let rooms = api.get(&format!("{p}/rooms")).await;
        assert_eq!(rooms["rooms"][0]["id"], "lobby", "{rooms}");
        assert_eq!(rooms["rooms"][0]["online"], 0, "{rooms}");
        refused_on(api.call("GET", &format!("{p}/rooms?after=a%20b"), None).await, "after");

        // ---- broadcasts: a key makes a retried start one job ----
        let body = json!({"text": "hello all", "users": ["alice", "bob"], "idempotency_key": "job-1"});
        let (s, job) = api.call("POST", &format!("{p}/broadcasts"), Some(body.clone())).await;
        assert_eq!(s, StatusCode::CREATED, "{job}");
        let (s, again) = api.call("POST", &format!("{p}/broadcasts"), Some(body)).await;
        assert_eq!((s, &again["id"]), (StatusCode::OK, &job["id"]), "{again}");
        let id = job["id"].as_str().unwrap().to_owned();
        eventually("the broadcast is done", || {
            let (api, path) = (&api, format!("{p}/broadcasts"));
            async move { api.get(&path).await["broadcasts"][0]["state"] == "done" }
        })
        .await;
        let list = api.get(&format!("{p}/broadcasts")).await;
        assert_eq!(list["broadcasts"].as_array().unwrap().len(), 1, "one job: {list}");
        assert_eq!(
            (
                list["broadcasts"][0]["sent"].as_i64(),
                list["broadcasts"][0]["total"].as_i64()
            ),
            (Some(2), Some(2)),
            "{list}"
        );
        let cancelled = api.ok("POST", &format!("{p}/broadcasts/{id}/cancel"), None).await;
        assert_eq!(cancelled["state"], "done", "a finished job stays as it is: {cancelled}");
        let (s, v) = api
            .call(
                "POST",
                &format!("{p}/broadcasts/bc_00000000000000000000000000/cancel"),
                None,
            )
            .await;
        assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
        refused_on(
            api.call(
                "POST",
                &format!("{p}/broadcasts"),
                Some(json!({"text": " ", "idempotency_key": "k2"})),
            )
            .await,
            "text",
        );
        refused_on(
            api.call(
                "POST",
                &format!("{p}/broadcasts"),
                Some(json!({"text": "x", "users": [], "idempotency_key": "k3"})),
            )
            .await,
            "users",
        );
        refused_on(
            api.call(
                "POST",
                &format!("{p}/broadcasts"),
                Some(json!({"text": "x", "users": ["a b"], "idempotency_key": "k4"})),
            )
            .await,
            "users",
        );
        refused_on(
            api.call(
                "POST",
                &format!("{p}/broadcasts"),
                Some(json!({"text": "x".repeat(20_000), "idempotency_key": "k5"})),
            )
            .await,
            "text",
        );
        refused_on(
            api.call("GET", &format!("{p}/broadcasts?before=x"), None).await,
            "before",
        );

        // ---- the overview: the page's figures ----
        let o = api.get(&format!("{p}/overview")).await;
        assert_eq!(o["windows"].as_array().unwrap().len(), 3, "{o}");
        assert_eq!(o["hourly"].as_array().unwrap().len(), 24, "{o}");
        assert!(o["windows"][0]["webhook_attempts"].as_i64().unwrap() >= 1, "{o}");
        let whole = api.get("/overview").await;
        assert!(
            whole["windows"][2]["messages"].as_i64() >= o["windows"][2]["messages"].as_i64(),
            "{whole}"
        );

        // ---- the team: invitations and members ----
        let t = format!("/tenants/{}", a.tenant);
        let (s, inv) = api
            .call(
                "POST",
                &format!("{t}/invitations"),
                Some(json!({"email": "new@alpha.test", "role": "developer"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{inv}");
        let open = api.get(&format!("{t}/invitations")).await;
        assert_eq!(open["invitations"][0]["email"], "new@alpha.test", "{open}");
        refused_on(
            api.call(
                "POST",
                &format!("{t}/invitations"),
                Some(json!({"email": "not an email", "role": "developer"})),
            )
            .await,
            "email",
        );
        refused_on(
            api.call(
                "POST",
                &format!("{t}/invitations"),
                Some(json!({"email": "x@alpha.test", "role": "emperor"})),
            )
            .await,
            "role",
        );
        let inv_id = inv["id"].as_str().unwrap();
        api.ok("POST", &format!("{t}/invitations/{inv_id}/revoke"), None).await;
        assert_eq!(api.get(&format!("{t}/invitations")).await["invitations"], json!([]));
        let (s, v) = api
            .call("POST", &format!("{t}/invitations/{inv_id}/revoke"), None)
            .await;
        assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"), "once: {v}");
        let mail = api.get("/mail").await;
        assert_eq!(mail["mails"][0]["to"], "new@alpha.test", "{mail}");
        assert_eq!(mail["mails"][0]["kind"], "invitation", "{mail}");

        member(&mut op, &server, &a.tenant, "owner@alpha.test", "owner").await;
        member(&mut op, &server, &a.tenant, "dev@alpha.test", "developer").await;
        let members = api.get(&format!("{t}/members")).await;
        let account = |email: &str| {
            members["members"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["email"] == email)
                .unwrap()["account_id"]
                .as_i64()
                .unwrap()
        };
        let (owner, dev) = (account("owner@alpha.test"), account("dev@alpha.test"));
        let (s, v) = api
            .call(
                "POST",
                &format!("{t}/invitations"),
                Some(json!({"email": "dev@alpha.test", "role": "viewer"})),
            )
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::CONFLICT, "conflict"),
            "a member already: {v}"
        );
        let (s, v) = api
            .call(
                "POST",
                &format!("{t}/members/{owner}/role"),
                Some(json!({"role": "viewer"})),
            )
            .await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_argument"),
            "the last owner: {v}"
        );
        let changed = api
            .ok(
                "POST",
                &format!("{t}/members/{dev}/role"),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!(changed["role"], "admin", "{changed}");
        let removed = api.ok("POST", &format!("{t}/members/{dev}/remove"), None).await;
        assert_eq!(removed["email"], "dev@alpha.test", "{removed}");
        let (s, v) = api.call("POST", &format!("{t}/members/{dev}/remove"), None).await;
        assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
        let (s, v) = api
            .call(
                "POST",
                &format!("{t}/members/123456789/role"),
                Some(json!({"role": "viewer"})),
            )
            .await;
        assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");

        // ---- each change in the tenant's audit log, by the token ----
        let log = api.get(&format!("{t}/audit?limit=200")).await;
        let entries = log["entries"].as_array().unwrap();
        for want in [
            "app.webhook",
            "app.webhook.test",
            "app.webhook.redeliver",
            "app.push.test",
            "app.broadcast.start",
            "app.broadcast.cancel",
            "tenant.member.invite",
            "tenant.invitation.revoke",
            "tenant.member.role",
            "tenant.member.remove",
        ] {
            let line = entries
                .iter()
                .find(|e| e["action"] == want)
                .unwrap_or_else(|| panic!("{want} missing from {log}"));
            assert_eq!(line["actor"], "ops@example.com (token ops-bot)", "{line}");
        }
        let starts = entries.iter().filter(|e| e["action"] == "app.broadcast.start").count();
        assert_eq!(starts, 1, "the repeated start is not a second job");
        assert!(!sent.msg_id.to_string().is_empty());
    }
}

/// Beta's things, named by every new route through Alpha's owner's token: 404. A viewer's
/// token reads but changes nothing (403), and bodies that do not parse or are too large get
/// their codes on every route that takes one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_routes_keep_tenants_apart_roles_and_body_rules() {
    let (server, _dir) = start(&None);
    let mut op = operator(&server).await;
    let a = tenant_with_app(&mut op, "Alpha").await;
    let b = tenant_with_app(&mut op, "Beta").await;
    let beta = ServerClient::new(&server.base, &b.app_key, &b.app_secret);
    beta.create_user("bob", "Bob").await.unwrap();
    beta.create_user("carol", "Carol").await.unwrap();
    beta.create_group("bg", "Beta group", "bob", &["carol"]).await.unwrap();
    let device: Value = beta.register_device("bob", &apns(DEVICE_TOKEN)).await.unwrap();
    let device = device["device_id"].as_str().unwrap().to_owned();
    let alpha = ServerClient::new(&server.base, &a.app_key, &a.app_secret);
    alpha.create_user("alice", "Alice").await.unwrap();
    let ops = Api::new(&server, &make_token(&mut op, "ops", "", "", "").await);
    let job = ops
        .ok(
            "POST",
            &format!("/tenants/{}/apps/{}/broadcasts", b.tenant, b.app),
            Some(json!({"text": "beta", "idempotency_key": "beta-1"})),
        )
        .await;
    let job = job["id"].as_str().unwrap().to_owned();
    let (_, inv) = ops
        .call(
            "POST",
            &format!("/tenants/{}/invitations", b.tenant),
            Some(json!({"email": "x@beta.test", "role": "viewer"})),
        )
        .await;
    let inv = inv["id"].as_str().unwrap().to_owned();
    member(&mut op, &server, &b.tenant, "owner@beta.test", "owner").await;
    let beta_owner_account = ops.get(&format!("/tenants/{}/members", b.tenant)).await["members"][0]["account_id"]
        .as_i64()
        .unwrap();

    let mut owner = member(&mut op, &server, &a.tenant, "owner@alpha.test", "owner").await;
    let api = Api::new(&server, &make_token(&mut owner, "alpha-bot", &a.tenant, "", "").await);
    let (bt, ba, at) = (&b.tenant, &b.app, &a.tenant);
    let mut probes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/tenants/{bt}/members"), None),
        (
            "POST",
            format!("/tenants/{bt}/members/{beta_owner_account}/role"),
            Some(json!({"role": "viewer"})),
        ),
        (
            "POST",
            format!("/tenants/{bt}/members/{beta_owner_account}/remove"),
            None,
        ),
        ("GET", format!("/tenants/{bt}/invitations"), None),
        (
            "POST",
            format!("/tenants/{bt}/invitations"),
            Some(json!({"email": "y@beta.test", "role": "viewer"})),
        ),
        ("POST", format!("/tenants/{bt}/invitations/{inv}/revoke"), None),
        // Beta's member and invitation under Alpha's own tenant.
        (
            "POST",
            format!("/tenants/{at}/members/{beta_owner_account}/role"),
            Some(json!({"role": "viewer"})),
        ),
        (
            "POST",
            format!("/tenants/{at}/members/{beta_owner_account}/remove"),
            None,
        ),
        ("POST", format!("/tenants/{at}/invitations/{inv}/revoke"), None),
    ];
    for (t, app) in [(bt, ba), (at, ba)] {
        let p = format!("/tenants/{t}/apps/{app}");
        probes.extend([
            ("GET", format!("{p}/overview"), None),
            ("GET", format!("{p}/webhook"), None),
            ("PUT", format!("{p}/webhook"), Some(json!({"url": null}))),
            ("GET", format!("{p}/webhook/attempts"), None),
            ("GET", format!("{p}/webhook/dead-events"), None),
            (
                "POST",
                format!("{p}/webhook/dead-events/wh_00000000000000000000000000/redeliver"),
                None,
            ),
            ("POST", format!("{p}/webhook/test"), None),
            ("GET", format!("{p}/push/log"), None),
            ("GET", format!("{p}/users/bob/devices"), None),
            (
                "POST",
                format!("{p}/push/test"),
                Some(json!({"user": "bob", "device": device})),
            ),
            ("GET", format!("{p}/groups/bg"), None),
            ("GET", format!("{p}/groups/bg/members"), None),
            ("GET", format!("{p}/rooms"), None),
            ("GET", format!("{p}/broadcasts"), None),
            (
                "POST",
                format!("{p}/broadcasts"),
                Some(json!({"text": "x", "idempotency_key": "sneaky"})),
            ),
            ("POST", format!("{p}/broadcasts/{job}/cancel"), None),
        ]);
    }
    // Beta's group, device and job named under Alpha's own app.
    let own = format!("/tenants/{at}/apps/{}", a.app);
    probes.extend([
        ("GET", format!("{own}/groups/bg"), None),
        ("GET", format!("{own}/users/bob/devices"), None),
        (
            "POST",
            format!("{own}/push/test"),
            Some(json!({"user": "bob", "device": device})),
        ),
        ("POST", format!("{own}/broadcasts/{job}/cancel"), None),
    ]);
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
    // Nothing of Beta changed.
    let beta_jobs = ops.get(&format!("/tenants/{bt}/apps/{ba}/broadcasts")).await;
    assert_eq!(beta_jobs["broadcasts"].as_array().unwrap().len(), 1, "{beta_jobs}");
    assert_eq!(
        ops.get(&format!("/tenants/{bt}/members")).await["members"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ops.get(&format!("/tenants/{bt}/invitations")).await["invitations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for operators_only in ["/mail", "/overview"] {
        let (s, v) = api.call("GET", operators_only, None).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{operators_only}: {v}"
        );
    }

    // A viewer's token: every read works, every change is 403.
    let mut viewer = member(&mut op, &server, at, "viewer@alpha.test", "viewer").await;
    let vapi = Api::new(&server, &make_token(&mut viewer, "read-only", at, "", "").await);
    alpha.create_group("ag", "Alpha group", "alice", &[]).await.unwrap();
    let p = format!("/tenants/{at}/apps/{}", a.app);
    for read in [
        format!("{p}/overview"),
        format!("{p}/webhook"),
        format!("{p}/webhook/attempts"),
        format!("{p}/webhook/dead-events"),
        format!("{p}/push/log"),
        format!("{p}/users/alice/devices"),
        format!("{p}/groups/ag"),
        format!("{p}/groups/ag/members"),
        format!("{p}/rooms"),
        format!("{p}/broadcasts"),
        format!("/tenants/{at}/members"),
        format!("/tenants/{at}/invitations"),
    ] {
        vapi.get(&read).await;
    }
    let members = vapi.get(&format!("/tenants/{at}/members")).await;
    let someone = members["members"][0]["account_id"].as_i64().unwrap();
    let changes: Vec<(&str, String, Option<Value>)> = vec![
        ("PUT", format!("{p}/webhook"), Some(json!({"url": null}))),
        ("POST", format!("{p}/webhook/test"), None),
        (
            "POST",
            format!("{p}/webhook/dead-events/wh_00000000000000000000000000/redeliver"),
            None,
        ),
        (
            "POST",
            format!("{p}/push/test"),
            Some(json!({"user": "alice", "device": "dev_00000000000000000000000000"})),
        ),
        (
            "POST",
            format!("{p}/broadcasts"),
            Some(json!({"text": "x", "idempotency_key": "viewer"})),
        ),
        (
            "POST",
            format!("{p}/broadcasts/bc_00000000000000000000000000/cancel"),
            None,
        ),
        (
            "POST",
            format!("/tenants/{at}/invitations"),
            Some(json!({"email": "z@alpha.test", "role": "viewer"})),
        ),
        ("POST", format!("/tenants/{at}/invitations/abc/revoke"), None),
        (
            "POST",
            format!("/tenants/{at}/members/{someone}/role"),
            Some(json!({"role": "viewer"})),
        ),
        ("POST", format!("/tenants/{at}/members/{someone}/remove"), None),
    ];
    for (method, path, body) in &changes {
        let (status, v) = vapi.call(method, path, body.clone()).await;
        assert_eq!(
            (status, error_code(&v)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{method} {path}: {v}"
        );
    }
    assert_eq!(vapi.get(&format!("{p}/broadcasts")).await["broadcasts"], json!([]));

    // Bodies: malformed, wrong shape, unknown field, oversized; on every route that reads one.
    let oversized = format!("{{\"x\": \"{}\"}}", "a".repeat(70 * 1024)).into_bytes();
    for (method, path) in [
        ("PUT", format!("{p}/webhook")),
        ("POST", format!("{p}/push/test")),
        ("POST", format!("{p}/broadcasts")),
        ("POST", format!("/tenants/{at}/invitations")),
        ("POST", format!("/tenants/{at}/members/{someone}/role")),
    ] {
        for (body, status, want) in [
            (b"{\"url\": ".to_vec(), StatusCode::BAD_REQUEST, "invalid_json"),
            (b"[1, 2]".to_vec(), StatusCode::BAD_REQUEST, "invalid_json"),
            (b"{\"surprise\": 1}".to_vec(), StatusCode::BAD_REQUEST, "invalid_json"),
            (oversized.clone(), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ] {
            let (s, v) = api.raw(method, &path, Some(body)).await;
            assert_eq!((s, error_code(&v)), (status, want), "{method} {path}: {v}");
        }
    }
    assert!(
        api.get(&format!("{p}/webhook")).await["url"].is_null(),
        "nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_may_end_and_shows_its_last_use_written_at_most_once_a_minute() {
    for pg in databases().await {
        eprintln!("on {}", if pg.is_some() { "postgres" } else { "sqlite" });
        let (server, dir) = start(&pg);
        let mut op = operator(&server).await;
        let a = tenant_with_app(&mut op, "Alpha").await;
        let ops = Api::new(&server, &make_token(&mut op, "ops", "", "", "").await);

        // Made with an end, by the API and by the console's form.
        let (s, made) = ops
            .call(
                "POST",
                "/tokens",
                Some(json!({"name": "nightly", "tenant_id": a.tenant, "expires_in_days": 30})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{made}");
        let info = &made["info"];
        let days = (info["expires_at"].as_i64().unwrap() - info["created_at"].as_i64().unwrap()) / 86_400_000;
        assert_eq!(days, 30, "{made}");
        assert!(info["last_used_at"].is_null(), "not used yet: {made}");
        for bad in [json!(0), json!(366), json!(-1), json!("soon")] {
            let (s, v) = ops
                .call("POST", "/tokens", Some(json!({"name": "x", "expires_in_days": bad})))
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        }
        let weekly = make_token(&mut op, "weekly", &a.tenant, "", "7").await;
        let page = op.get("/console/tokens").await;
        let row = common::browser::between(&page.body, "weekly", "</tr>");
        assert!(
            row.contains("UTC") && row.contains("never"),
            "an end, never used: {row}"
        );

        // A use is recorded, and shown; a second within the minute writes nothing.
        let nightly = Api::new(&server, made["token"].as_str().unwrap());
        nightly.get("/tenants").await;
        let id = info["id"].as_str().unwrap().to_owned();
        let used = |list: &Value| {
            list["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["id"] == id.as_str())
                .unwrap()["last_used_at"]
                .as_i64()
        };
        let first = used(&ops.get("/tokens").await).expect("the use is recorded");
        assert!((first - info["created_at"].as_i64().unwrap()).abs() < 60_000);
        let stamp = first - 30_000;
        sql(
            &pg,
            dir.path(),
            &format!("UPDATE console_api_tokens SET last_used_at = {stamp} WHERE id = '{id}'"),
        )
        .await;
        nightly.get("/tenants").await;
        assert_eq!(
            used(&ops.get("/tokens").await),
            Some(stamp),
            "not again within a minute"
        );
        let stale = first - 61_000;
        sql(
            &pg,
            dir.path(),
            &format!("UPDATE console_api_tokens SET last_used_at = {stale} WHERE id = '{id}'"),
        )
        .await;
        nightly.get("/tenants").await;
        assert!(
            used(&ops.get("/tokens").await).unwrap() > stale,
            "written again after a minute"
        );
        let page = op.get("/console/tokens").await;
        let row = common::browser::between(&page.body, "nightly", "</tr>");
        assert!(!row.contains("never"), "its last use is shown: {row}");

        // Past its end: refused with its own code; the page says expired.
        let past = first - 1;
        sql(
            &pg,
            dir.path(),
            &format!("UPDATE console_api_tokens SET expires_at = {past} WHERE id = '{id}'"),
        )
        .await;
        let (s, v) = nightly.call("GET", "/tenants", None).await;
        assert_eq!(
            (s, error_code(&v)),
            (StatusCode::UNAUTHORIZED, "api_token_expired"),
            "{v}"
        );
        let page = op.get("/console/tokens").await;
        let row = common::browser::between(&page.body, "nightly", "</tr>");
        assert!(row.contains("expired") && !row.contains("Revoke"), "{row}");
        // Tokens without an end keep working.
        Api::new(&server, &weekly).get("/tenants").await;
        ops.get("/tenants").await;
    }
}
