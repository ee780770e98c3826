//! A browser for the console's tests over HTTP: its own cookies, redirects not followed
//! (the tests look at them), forms posted with the session's CSRF token.

use std::collections::HashMap;

use reqwest::{header, StatusCode};

use super::Server;

/// The first operator, made by `tern serve` from TERN_ADMIN_EMAIL/PASSWORD in [`start_console`].
pub const OPERATOR: &str = "ops@example.com";
pub const OPERATOR_PASSWORD: &str = "operator-password-1";
/// The password [`add_viewer`] gives a viewer.
pub const VIEWER_PASSWORD: &str = "viewer-password";

/// The databases a console test runs on: SQLite (the data dir's file), and a fresh
/// PostgreSQL database when one is configured.
pub async fn databases() -> Vec<Option<String>> {
    let mut all = vec![None];
    if let Some(url) = tern_platform::store::testing::postgres_fresh_url().await {
        all.push(Some(url));
    }
    all
}

/// `tern serve` in a fresh data dir with the first operator and `env`, ready for requests.
pub fn start_console(env: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![
        ("TERN_ADMIN_EMAIL", OPERATOR),
        ("TERN_ADMIN_PASSWORD", OPERATOR_PASSWORD),
    ];
    all.extend_from_slice(env);
    let mut server = Server::start(dir.path(), &all);
    server.wait_for_line("tern: ready");
    (server, dir)
}

/// A browser signed in as the first operator.
pub async fn operator(server: &Server) -> Browser {
    let mut op = Browser::new(server);
    let signed = op.sign_in(OPERATOR, OPERATOR_PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    op
}

/// The signed-in `op` adds `email` to `tenant` as a viewer (password [`VIEWER_PASSWORD`]).
pub async fn add_viewer(op: &mut Browser, tenant: &str, email: &str) {
    let added = op
        .change(
            &format!("/console/t/{tenant}/members"),
            &[("email", email), ("password", VIEWER_PASSWORD), ("role", "viewer")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
}

/// One browser: its own cookies, no redirects followed (the tests look at them).
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: HashMap<String, String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Browser {
    pub fn new(server: &Server) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookies: HashMap::new(),
        }
    }

    /// Another handle on this browser's session (for polling inside `eventually`).
    pub fn clone_session(&self) -> Self {
        Self {
            http: self.http.clone(),
            base: self.base.clone(),
            cookies: self.cookies.clone(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let res = req.header(header::COOKIE, self.cookie_header()).send().await.unwrap();
        for c in res.headers().get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        Page {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    /// POSTs with this session's CSRF token (read from `page_with_forms`).
    pub async fn change(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.csrf().await;
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields).await
    }

    pub async fn csrf(&mut self) -> String {
        let page = self.get("/console/tenants").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        field(&page.body, "csrf")
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/console/login").await;
        let token = field(&form.body, "csrf");
        self.post(
            "/console/login",
            &[("csrf", &token), ("email", email), ("password", password)],
        )
        .await
    }
}

/// The value of the first `<input name="NAME" value="…">`.
pub fn field(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no field {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The values of the secret fields of a page that shows secrets once, in order.
pub fn secrets_shown(html: &str) -> Vec<String> {
    html.match_indices("class=\"secret\"")
        .map(|(at, _)| {
            let rest = &html[at..];
            let v = rest.find("value=\"").unwrap() + 7;
            rest[v..v + rest[v..].find('"').unwrap()].to_owned()
        })
        .collect()
}

/// Text between `start` and the next `end`, after the first `start`.
pub fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let at = html.find(start).unwrap_or_else(|| panic!("no {start:?} in {html}")) + start.len();
    &html[at..at + html[at..].find(end).unwrap()]
}

/// A tenant and an app the operator made through the console, with what the app page showed
/// once: the AppKey and the AppSecret.
pub struct TenantWithApp {
    pub tenant: String,
    /// The app's id (its page is `/console/t/{tenant}/apps/{app}`).
    pub app: String,
    pub app_key: String,
    pub app_secret: String,
}

/// The signed-in operator creates a tenant named `name` and an app `chat` in it.
pub async fn tenant_with_app(op: &mut Browser, name: &str) -> TenantWithApp {
    let created = op.change("/console/tenants", &[("name", name)]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let tenant = created
        .location()
        .trim_start_matches("/console/t/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let app_page = op
        .change(&format!("/console/t/{tenant}/apps"), &[("name", "chat")])
        .await;
    assert_eq!(app_page.status, StatusCode::OK, "{}", app_page.body);
    let secrets = secrets_shown(&app_page.body);
    assert_eq!(secrets.len(), 2, "the AppSecret and the webhook secret are shown");
    let app_key = between(&app_page.body, "<dt>AppKey</dt><dd><code>", "<").to_owned();
    let app = between(&app_page.body, &format!("/console/t/{tenant}/apps/"), "\"").to_owned();
    TenantWithApp {
        tenant,
        app,
        app_key,
        app_secret: secrets[0].clone(),
    }
}

/// A browser signed in as a new member of `tenant` with `role` (password
/// [`VIEWER_PASSWORD`]), added by the operator `op`.
pub async fn member_of(op: &mut Browser, server: &Server, tenant: &str, email: &str, role: &str) -> Browser {
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

/// A JSON call to the operator API (`/admin/v1{path}`) with the browser's session, and its
/// CSRF token for a change. The answer's body as JSON (a string if it is not JSON).
pub async fn admin(
    b: &mut Browser,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut req = b
        .http
        .request(method.parse().unwrap(), format!("{}/admin/v1{path}", b.base));
    if method != "GET" {
        let csrf = b.csrf().await;
        req = req.header("x-csrf-token", csrf);
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body.to_string());
    }
    let page: Page = b.send(req).await;
    (
        page.status,
        serde_json::from_str(&page.body).unwrap_or(serde_json::Value::String(page.body)),
    )
}

/// The `code` of an error answer's body.
pub fn error_code(v: &serde_json::Value) -> &str {
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {v}"))
}
