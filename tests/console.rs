//! The operations console against the real binary on a random port: who sees what (every
//! page and action of another tenant answers 404), CSRF on every change, inert user input,
//! lockout after wrong passwords, sign-out everywhere, secrets shown once, the audit log.
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::{between, field, secrets_shown, tenant_with_app, Browser};
use common::Server;
use reqwest::{header, StatusCode};
use tern_sdk::server::ServerClient;

const OPERATOR: &str = "ops@example.com";
const OPERATOR_PASSWORD: &str = "operator-password-1";

fn start() -> (Server, tempfile::TempDir) {
    start_with(&[])
}

fn start_with(env: &[(&str, &str)]) -> (Server, tempfile::TempDir) {
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

async fn operator(server: &Server) -> Browser {
    let mut op = Browser::new(server);
    let signed = op.sign_in(OPERATOR, OPERATOR_PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    op
}

#[tokio::test]
async fn every_page_and_action_of_another_tenant_answers_404() {
    let (server, _dir) = start();
    let mut op = operator(&server).await;
    let a = tenant_with_app(&mut op, "Alpha").await;
    let b = tenant_with_app(&mut op, "Beta").await;
    let added = op
        .change(
            &format!("/console/t/{}/members", a.tenant),
            &[
                ("email", "owner@alpha.test"),
                ("password", "alpha-owner-pw"),
                ("role", "owner"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);

    // Beta's app has a user and a conversation.
    let beta = ServerClient::new(&server.base, &b.app_key, &b.app_secret);
    beta.create_user("bob", "Bob").await.unwrap();
    beta.create_user("carol", "Carol").await.unwrap();
    let sent = beta.send_text("bob", "carol", "c1", "secret plans").await.unwrap();
    let conv = sent.conversation_id.clone();
    // And bob's phone, registered for pushes.
    let phone = tern_sdk::push::PushToken {
        provider: "fcm".into(),
        token: "beta-bob-phone".into(),
        ..Default::default()
    };
    let beta_device = beta.register_device("bob", &phone).await.unwrap()["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let alpha = ServerClient::new(&server.base, &a.app_key, &a.app_secret);
    alpha.create_user("bob", "Alpha Bob").await.unwrap();
    alpha.create_user("ann", "Ann").await.unwrap();
    let alpha_sent = alpha.send_text("bob", "ann", "c1", "hello Ann").await.unwrap();

    let mut owner = Browser::new(&server);
    let signed = owner.sign_in("owner@alpha.test", "alpha-owner-pw").await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(signed.location(), "/console");
    let home = owner.get("/console").await;
    assert_eq!(
        home.location(),
        format!("/console/t/{}", a.tenant),
        "a member of one tenant lands in it"
    );

    let pages = |t: &str, app: &str, conv: &str| {
        vec![
            format!("/console/t/{t}"),
            format!("/console/t/{t}/audit"),
            format!("/console/t/{t}/apps/{app}"),
            format!("/console/t/{t}/apps/{app}/users"),
            format!("/console/t/{t}/apps/{app}/users?q=bo"),
            format!("/console/t/{t}/apps/{app}/users/bob"),
            format!("/console/t/{t}/apps/{app}/messages?conversation={conv}"),
            format!("/console/t/{t}/apps/{app}/webhooks"),
            format!("/console/t/{t}/apps/{app}/push"),
            format!("/console/t/{t}/apps/{app}/push?user=bob"),
            format!("/console/t/{t}/apps/{app}/usage"),
            format!("/console/t/{t}/apps/{app}/usage.csv?hours=720"),
        ]
    };
    // Their own tenant's pages open (so the probes below can fail).
    for path in pages(&a.tenant, &a.app, &alpha_sent.conversation_id) {
        let page = owner.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
    }
    // Beta's, by Beta's URLs or with Beta's app under Alpha's tenant: 404, and not a word of Beta.
    let mut probes = pages(&b.tenant, &b.app, &conv);
    probes.extend(pages(&a.tenant, &b.app, &conv).into_iter().skip(2));
    probes.push("/console/audit".into());
    probes.push("/console/t/tn_00000000000000000000".into());
    probes.push("/console/t/not-an-id/apps/also-not".into());
    for path in &probes {
        let page = owner.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "GET {path}");
        assert!(
            !page.body.contains("Beta") && !page.body.contains("secret plans") && !page.body.contains(&beta_device),
            "{path}"
        );
    }
    let tenants = owner.get("/console/tenants").await;
    assert!(tenants.body.contains("Alpha") && !tenants.body.contains("Beta"));

    let secret_id = {
        let page = op.get(&format!("/console/t/{}/apps/{}", b.tenant, b.app)).await;
        between(&page.body, "<td><code>sec_", "<").to_owned()
    };
    let actions: Vec<(String, Vec<(&str, &str)>)> = [&b.tenant, &a.tenant]
        .iter()
        .flat_map(|t| {
            let app = format!("/console/t/{t}/apps/{}", b.app);
            vec![
                (format!("{app}/settings"), vec![("max_text_bytes", "10")]),
                (format!("{app}/secrets/rotate"), vec![]),
                (format!("{app}/secrets/sec_{secret_id}/revoke"), vec![]),
                (format!("{app}/webhook-secret/rotate"), vec![]),
                (format!("{app}/users/bob/ban"), vec![("duration", "3600")]),
                (format!("{app}/users/bob/mute"), vec![("duration", "3600")]),
                (format!("{app}/users/bob/revoke-tokens"), vec![]),
                (format!("{app}/users/bob/kick"), vec![]),
                (format!("{app}/webhooks"), vec![("url", "")]),
                (format!("{app}/webhooks/dead/evt_1/redeliver"), vec![]),
                (
                    format!("{app}/push/test"),
                    vec![("user", "bob"), ("device", beta_device.as_str())],
                ),
            ]
        })
        .chain([
            (format!("/console/t/{}/apps", b.tenant), vec![("name", "stolen")]),
            (
                format!("/console/t/{}/members", b.tenant),
                vec![
                    ("email", "spy@alpha.test"),
                    ("password", "spy-password"),
                    ("role", "owner"),
                ],
            ),
            (format!("/console/t/{}/status", b.tenant), vec![("status", "suspended")]),
            // Beta's device through Alpha's own app (where a bob exists too).
            (
                format!("/console/t/{}/apps/{}/push/test", a.tenant, a.app),
                vec![("user", "bob"), ("device", beta_device.as_str())],
            ),
        ])
        .collect();
    for (path, form) in &actions {
        let page = owner.change(path, form).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "POST {path}: {}", page.body);
    }
    // Nothing of Beta changed: Bob can still send, with the one secret Beta had.
    beta.send_text("bob", "carol", "c2", "still here").await.unwrap();
    let beta_app = op.get(&format!("/console/t/{}/apps/{}", b.tenant, b.app)).await;
    assert_eq!(
        beta_app.body.matches("<td><code>sec_").count(),
        1,
        "no secret was added or revoked"
    );
    assert!(beta_app.body.contains("value=\"12288\""), "max_text_bytes unchanged");
    let beta_audit = op.get(&format!("/console/t/{}/audit", b.tenant)).await;
    assert!(!beta_audit.body.contains("app.push.test"), "no test push was tried");
    let beta_tenant = op.get(&format!("/console/t/{}", b.tenant)).await;
    assert!(!beta_tenant.body.contains("stolen") && !beta_tenant.body.contains("spy@alpha.test"));
}

#[tokio::test]
async fn changes_without_the_csrf_token_are_refused() {
    let (server, _dir) = start();
    let mut op = operator(&server).await;
    for form in [vec![("name", "NoToken")], vec![("name", "NoToken"), ("csrf", "forged")]] {
        let page = op.post("/console/tenants", &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
        assert!(page.body.contains("Form expired"));
    }
    // From another site, even with the token.
    let csrf = op.csrf().await;
    let req = op
        .http
        .post(format!("{}/console/tenants", op.base))
        .header("sec-fetch-site", "cross-site")
        .form(&[("name", "NoToken"), ("csrf", csrf.as_str())]);
    assert_eq!(op.send(req).await.status, StatusCode::FORBIDDEN);
    let list = op.get("/console/tenants").await;
    assert!(!list.body.contains("NoToken"), "no refused post created a tenant");

    // htmx sends the token as a header instead of a field.
    let req = op
        .http
        .post(format!("{}/console/tenants", op.base))
        .header("x-csrf-token", csrf.as_str())
        .header("hx-request", "true")
        .form(&[("name", "ViaHtmx")]);
    assert_eq!(op.send(req).await.status, StatusCode::SEE_OTHER);
    assert!(op.get("/console/tenants").await.body.contains("ViaHtmx"));

    // Another session's token is not this one's.
    let mut other = operator(&server).await;
    let their = other.csrf().await;
    assert_ne!(their, csrf);
    let page = op
        .post("/console/tenants", &[("name", "Theirs"), ("csrf", &their)])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    // The sign-in form has its own token: a post without it signs nobody in.
    let mut fresh = Browser::new(&server);
    let page = fresh
        .post(
            "/console/login",
            &[("email", OPERATOR), ("password", OPERATOR_PASSWORD)],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!fresh.cookies.contains_key("tern_console"));
    // A reload of a form's address shows a page, not a bare error.
    let page = op.get("/console/logout").await;
    assert_eq!(page.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(page.body.contains("only takes a form"));
    // The server API's own answers stay JSON.
    let api = op.get("/v1/users").await;
    assert!(api.body.starts_with("{\"error\""), "{}", api.body);

    // Without a session, a change sends the browser to sign in and changes nothing.
    let page = fresh.post("/console/tenants", &[("name", "Anon"), ("csrf", "x")]).await;
    assert_eq!(
        (page.status, page.location()),
        (StatusCode::SEE_OTHER, "/console/login")
    );
}

#[tokio::test]
async fn user_names_and_message_bodies_are_rendered_inert() {
    let (server, _dir) = start();
    let mut op = operator(&server).await;
    let t = tenant_with_app(&mut op, "Acme").await;
    let api = ServerClient::new(&server.base, &t.app_key, &t.app_secret);
    let evil_name = "<script>alert('name')</script><img src=x onerror=alert(1)>";
    api.create_user("mallory", evil_name).await.unwrap();
    api.create_user("victim", "Victim").await.unwrap();
    let body = "</li><script>alert(\"body\")</script>\"><b onmouseover=alert(2)>hi</b>";
    let sent = api.send_text("mallory", "victim", "x1", body).await.unwrap();

    let app = format!("/console/t/{}/apps/{}", t.tenant, t.app);
    for path in [
        format!("{app}/users"),
        format!("{app}/users?q=mall"),
        format!("{app}/users/mallory"),
        format!("{app}/messages?conversation={}", sent.conversation_id),
    ] {
        let page = op.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains("<script>alert"), "{path}: markup from user input");
        assert!(
            !page.body.contains("<img src=x") && !page.body.contains("<b onmouseover"),
            "{path}"
        );
        assert!(
            page.body.contains("&lt;script&gt;alert(") || page.body.contains("&#60;script&#62;alert("),
            "{path}: the text is shown, escaped"
        );
        // Every script is a file of the console's own: no inline script anywhere.
        for (at, _) in page.body.match_indices("<script") {
            assert!(page.body[at..].starts_with("<script src=\"/console/assets/"), "{path}");
        }
        let csp = page.headers.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
    }
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_and_sessions_end_everywhere() {
    let (server, _dir) = start();
    let mut op = operator(&server).await;
    let t = tenant_with_app(&mut op, "Acme").await;
    op.change(
        &format!("/console/t/{}/members", t.tenant),
        &[
            ("email", "dev@acme.test"),
            ("password", "dev-password-1"),
            ("role", "developer"),
        ],
    )
    .await;

    let mut dev = Browser::new(&server);
    for n in 1..=4 {
        let page = dev.sign_in("dev@acme.test", "wrong-password").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {n}");
        assert!(page.body.contains("Wrong email or password."));
    }
    let fifth = dev.sign_in("dev@acme.test", "wrong-password").await;
    assert_eq!(fifth.status, StatusCode::FORBIDDEN);
    assert!(fifth.body.contains("locked until"), "{}", fifth.body);
    let right = dev.sign_in("dev@acme.test", "dev-password-1").await;
    assert_eq!(
        right.status,
        StatusCode::FORBIDDEN,
        "locked: even the right password is refused"
    );
    assert!(!dev.cookies.contains_key("tern_console"));
    // An unknown email reads like a wrong password; the operator is not locked.
    let page = Browser::new(&server).sign_in("nobody@acme.test", "whatever-pw").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);

    // The session cookie: HttpOnly, SameSite=Strict, only for /console.
    let mut second = Browser::new(&server);
    let signed = second.sign_in(&OPERATOR.to_uppercase(), OPERATOR_PASSWORD).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "an email's case does not matter");
    let cookie = signed
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("tern_console="))
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP here");
    // Behind an HTTPS proxy the cookie is Secure.
    let mut tls = Browser::new(&server);
    let form = tls.get("/console/login").await;
    let token = field(&form.body, "csrf");
    let req = tls
        .http
        .post(format!("{}/console/login", tls.base))
        .header("x-forwarded-proto", "https")
        .form(&[
            ("csrf", token.as_str()),
            ("email", OPERATOR),
            ("password", OPERATOR_PASSWORD),
        ]);
    let page = tls.send(req).await;
    assert!(page
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("tern_console=") && c.to_str().unwrap().contains("; Secure")));

    // Signing out everywhere ends the other browsers' sessions too.
    assert_eq!(second.get("/console/tenants").await.status, StatusCode::OK);
    let out = op.change("/console/logout-everywhere", &[]).await;
    assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, "/console/login"));
    for b in [&mut op, &mut second, &mut tls] {
        let page = b.get("/console/tenants").await;
        assert_eq!(
            (page.status, page.location()),
            (StatusCode::SEE_OTHER, "/console/login")
        );
    }
}

#[tokio::test]
async fn secrets_are_shown_once_roles_limit_changes_and_the_audit_log_keeps_each_step() {
    let (server, _dir) = start();
    let mut op = operator(&server).await;
    let t = tenant_with_app(&mut op, "Acme").await;
    let app = format!("/console/t/{}/apps/{}", t.tenant, t.app);
    let page = op.get(&app).await;
    assert!(page.body.contains(&t.app_key));
    assert!(!page.body.contains(&t.app_secret), "the app page never shows a secret");

    // Rotation: a new secret, shown once, that signs requests; the old one keeps working.
    let rotated = op.change(&format!("{app}/secrets/rotate"), &[]).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let new_secret = secrets_shown(&rotated.body).pop().unwrap();
    assert_ne!(new_secret, t.app_secret);
    ServerClient::new(&server.base, &t.app_key, &new_secret)
        .create_user("u1", "U1")
        .await
        .unwrap();
    ServerClient::new(&server.base, &t.app_key, &t.app_secret)
        .create_user("u2", "U2")
        .await
        .unwrap();
    let page = op.get(&app).await;
    assert_eq!(page.body.matches("<td><code>sec_").count(), 2);
    assert!(!page.body.contains(&new_secret));

    // Settings: validated by the platform, the refusal says why and changes nothing.
    let bad = op
        .change(&format!("{app}/settings"), &[("max_text_bytes", "999999")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("max_text_bytes must be from 1 to 65536"),
        "{}",
        bad.body
    );
    let nan = op
        .change(&format!("{app}/settings"), &[("max_text_bytes", "lots")])
        .await;
    assert_eq!(nan.status, StatusCode::BAD_REQUEST);
    let current = op.get(&app).await;
    let mut form: Vec<(String, String)> = current
        .body
        .match_indices("type=\"number\" name=\"")
        .map(|(at, _)| {
            let rest = &current.body[at + 20..];
            let name = &rest[..rest.find('"').unwrap()];
            (name.to_owned(), field(&current.body, name))
        })
        .collect();
    for (k, v) in &mut form {
        if k == "max_text_bytes" {
            *v = "2048".into();
        }
    }
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let saved = op.change(&format!("{app}/settings"), &fields).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(op
        .get(&app)
        .await
        .body
        .contains("name=\"max_text_bytes\" value=\"2048\""));

    // A viewer sees the app but changes nothing.
    op.change(
        &format!("/console/t/{}/members", t.tenant),
        &[
            ("email", "viewer@acme.test"),
            ("password", "viewer-password"),
            ("role", "viewer"),
        ],
    )
    .await;
    let mut viewer = Browser::new(&server);
    viewer.sign_in("viewer@acme.test", "viewer-password").await;
    let seen = viewer.get(&app).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(!seen.body.contains("Rotate AppSecret"));
    let refused = viewer.change(&format!("{app}/secrets/rotate"), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = viewer
        .change(
            &format!("/console/t/{}/members", t.tenant),
            &[("email", "x@acme.test"), ("password", "x-password"), ("role", "owner")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Suspending the tenant stops its app at once.
    let suspended = op
        .change(&format!("/console/t/{}/status", t.tenant), &[("status", "suspended")])
        .await;
    assert_eq!(suspended.status, StatusCode::SEE_OTHER);
    let err = ServerClient::new(&server.base, &t.app_key, &new_secret)
        .create_user("u3", "U3")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("app_suspended"), "{err}");

    // The audit log has each change, and no secret.
    let log = op.get(&format!("/console/t/{}/audit", t.tenant)).await;
    for action in [
        "tenant.create",
        "app.create",
        "app.secret.rotate",
        "app.settings",
        "tenant.member.add",
        "tenant.status",
    ] {
        assert!(log.body.contains(&format!("<code>{action}</code>")), "{action} missing");
    }
    assert!(log.body.contains("max_text_bytes: 12288 → 2048"));
    assert!(
        log.body.contains("<td>127.0.0.1</td>"),
        "the log says where a change came from"
    );
    for secret in [&t.app_secret, &new_secret] {
        assert!(!log.body.contains(secret.as_str()));
    }
    let platform = op.get("/console/audit").await;
    assert!(platform.body.contains("account.sign_in"));
}

#[tokio::test]
async fn the_cli_lists_suspends_and_reactivates_tenants_and_the_audit_log_says_so() {
    let (server, dir) = start();
    let mut op = operator(&server).await;
    let t = tenant_with_app(&mut op, "Acme").await;
    let cli = |args: &[&str]| {
        let out = common::tern_command(dir.path()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed: serde_json::Value = serde_json::from_str(&cli(&["tenant", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["name"], "Acme");
    assert_eq!(listed[0]["status"], "active");

    assert!(cli(&["tenant", "suspend", "Acme"]).contains("is suspended"));
    let api = ServerClient::new(&server.base, &t.app_key, &t.app_secret);
    common::eventually("the suspended tenant's app refuses calls", || async {
        matches!(api.create_user("u1", "U1").await, Err(e) if e.to_string().contains("app_suspended"))
    })
    .await;
    assert!(cli(&["tenant", "list"]).contains("suspended"));
    cli(&["tenant", "activate", &t.tenant]);
    common::eventually("the reactivated tenant's app answers", || async {
        api.create_user("u2", "U2").await.is_ok()
    })
    .await;

    let log = op.get(&format!("/console/t/{}/audit", t.tenant)).await;
    assert!(
        log.body.contains("<td>cli</td>"),
        "CLI changes are in the console's audit log"
    );
    assert!(log.body.contains("active → suspended") && log.body.contains("suspended → active"));
    let out = common::tern_command(dir.path())
        .args(["tenant", "suspend", "Nobody"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// Fills in the public sign-up form (its own token, from the page).
async fn sign_up(b: &mut Browser, tenant: &str, email: &str, password: &str) -> common::browser::Page {
    let form = b.get("/console/signup").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let token = field(&form.body, "csrf");
    b.post(
        "/console/signup",
        &[
            ("csrf", &token),
            ("tenant", tenant),
            ("email", email),
            ("password", password),
        ],
    )
    .await
}

/// The token of a verification link.
fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_owned()
}

/// The tenant id a member lands in after signing in.
async fn landing_tenant(b: &mut Browser) -> String {
    let home = b.get("/console").await;
    home.location().trim_start_matches("/console/t/").to_owned()
}

#[tokio::test]
async fn a_tenant_signs_up_verifies_by_mail_over_smtp_and_waits_for_an_operator() {
    let sink = common::smtp::SmtpSink::start();
    let url = sink.url();
    let (mut server, _dir) = start_with(&[("TERN_SMTP_URL", &url), ("TERN_SMTP_FROM", "Tern <noreply@tern.test>")]);
    let banner = server.wait_for_line("  mail:");
    assert!(
        banner.contains(&format!("SMTP via 127.0.0.1:{}", sink.port)),
        "{banner}"
    );
    assert!(server.wait_for_line("  sign-up:").contains("approves"));

    let mut visitor = Browser::new(&server);
    assert!(visitor.get("/console/login").await.body.contains("/console/signup"));
    // Bad input: said clearly, nothing kept, no mail.
    for (tenant, email, password, says) in [
        (
            "Northwind",
            "not-an-email",
            "northwind-pw-1",
            "enter a valid email address",
        ),
        (
            "Northwind",
            "founder@northwind.test",
            "short",
            "a password must be 8 to 256 characters",
        ),
        (
            "   ",
            "founder@northwind.test",
            "northwind-pw-1",
            "tenant name must not be empty",
        ),
        ("North\u{7}wind", "founder@northwind.test", "northwind-pw-1", "control"),
    ] {
        let page = sign_up(&mut visitor, tenant, email, password).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{tenant:?} {email}");
        assert!(page.body.contains(says), "{says}: {}", page.body);
    }
    let huge = "x".repeat(20_000);
    let page = sign_up(&mut visitor, &huge, "a@b.test", "long-enough-pw").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let forged = visitor
        .post(
            "/console/signup",
            &[
                ("csrf", "forged"),
                ("tenant", "Forged"),
                ("email", "f@f.test"),
                ("password", "forged-password"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(sink.all().is_empty(), "no mail for refused sign-ups");

    let sent = sign_up(&mut visitor, "Northwind", "Founder@Northwind.test", "northwind-pw-1").await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert!(sent.body.contains("Check your inbox") && sent.body.contains("founder@northwind.test"));
    let mail = sink.wait_for("founder@northwind.test", "Confirm your email");
    assert_eq!(mail.from, "noreply@tern.test");
    let link = mail
        .link(&format!("{}/console/verify?token=", server.base))
        .unwrap_or_else(|| panic!("no link in {}", mail.body()));
    let token = token_of(&link);

    // Before verifying there is no account to sign in with.
    let mut owner = Browser::new(&server);
    let early = owner.sign_in("founder@northwind.test", "northwind-pw-1").await;
    assert_eq!(early.status, StatusCode::UNAUTHORIZED);
    // The link shows what it will do; the button does it, once.
    let path = link.trim_start_matches(&server.base).to_owned();
    let shown = visitor.get(&path).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert!(shown.body.contains("Northwind") && shown.body.contains("Confirm and create my tenant"));
    let verified = visitor.post("/console/verify", &[("token", &token)]).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert!(verified.body.contains("waits for a platform operator"));
    for page in [
        visitor.post("/console/verify", &[("token", &token)]).await,
        visitor.get(&path).await,
        visitor.get("/console/verify?token=made-up").await,
        visitor.post("/console/verify", &[("token", "")]).await,
    ] {
        assert_eq!(page.status, StatusCode::GONE, "a link works once: {}", page.body);
    }
    sink.wait_for("founder@northwind.test", "is created");

    // The name is taken now; an email with an account gets a mail, not a second account.
    let taken = sign_up(&mut visitor, "Northwind", "other@northwind.test", "other-password").await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.body.contains("exists already"));
    let again = sign_up(&mut visitor, "Northwind Two", "founder@northwind.test", "whatever-pw").await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the form does not tell who has an account"
    );
    sink.wait_for("founder@northwind.test", "already have");

    // The owner signs in to a tenant waiting for approval: no apps yet, no deciding.
    let signed = owner.sign_in("founder@northwind.test", "northwind-pw-1").await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let tenant = landing_tenant(&mut owner).await;
    let page = owner.get(&format!("/console/t/{tenant}")).await;
    assert!(page.body.contains("waits for a platform operator"), "{}", page.body);
    assert!(page.body.contains("pending_approval"));
    let refused = owner
        .change(&format!("/console/t/{tenant}/apps"), &[("name", "chat")])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("waiting for an operator"), "{}", refused.body);
    let refused = owner
        .change(&format!("/console/t/{tenant}/decision"), &[("decision", "approve")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(owner.get("/console/mail").await.status, StatusCode::NOT_FOUND);

    // The operator sees it waiting and approves it; the owner is emailed and can work.
    let mut op = operator(&server).await;
    let list = op.get("/console/tenants").await;
    assert!(list.body.contains("Waiting for approval") && list.body.contains("Northwind"));
    let bad = op
        .change(&format!("/console/t/{tenant}/decision"), &[("decision", "maybe")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let approved = op
        .change(&format!("/console/t/{tenant}/decision"), &[("decision", "approve")])
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    assert!(approved.location().ends_with("?done=approved"));
    let mail = sink.wait_for("founder@northwind.test", "is approved");
    assert!(mail.body().contains("/console/login"));
    let twice = op
        .change(&format!("/console/t/{tenant}/decision"), &[("decision", "decline")])
        .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);
    assert!(twice.body.contains("not waiting for approval"));
    let app = owner
        .change(&format!("/console/t/{tenant}/apps"), &[("name", "chat")])
        .await;
    assert_eq!(app.status, StatusCode::OK, "{}", app.body);

    // The outbox lists every mail, never a link's token; the audit log each step.
    let outbox = op.get("/console/mail").await;
    for kind in ["signup.verify", "signup.verified", "signup.existing", "tenant.approved"] {
        assert!(outbox.body.contains(&format!("<code>{kind}</code>")), "{kind}");
    }
    assert!(outbox.body.contains("smtp") && !outbox.body.contains(&token));
    let log = op.get(&format!("/console/t/{tenant}/audit")).await;
    for action in ["tenant.signup", "tenant.approve", "app.create"] {
        assert!(log.body.contains(&format!("<code>{action}</code>")), "{action}");
    }
}

/// The mail in the mail folder about `subject`, as the sink would have received it.
fn mail_file(dir: &std::path::Path, subject: &str) -> common::smtp::Received {
    let folder = dir.join("data").join("mail");
    for _ in 0..100 {
        if let Ok(entries) = std::fs::read_dir(&folder) {
            for e in entries.flatten() {
                let data = std::fs::read_to_string(e.path()).unwrap();
                let m = common::smtp::Received {
                    from: String::new(),
                    to: Vec::new(),
                    data,
                };
                if m.subject().contains(subject) {
                    return m;
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no mail about {subject:?} in {}", folder.display());
}

#[tokio::test]
async fn without_smtp_mails_are_files_and_tenants_are_declined_or_approved_from_the_cli() {
    let (mut server, dir) = start();
    let banner = server.wait_for_line("  mail:");
    assert!(banner.contains("written to") && banner.contains("mail"), "{banner}");

    let mut a = Browser::new(&server);
    assert_eq!(
        sign_up(&mut a, "Globex", "hank@globex.test", "globex-password")
            .await
            .status,
        StatusCode::OK
    );
    let mail = mail_file(dir.path(), "create Globex");
    let link = mail.link(&format!("{}/console/verify?token=", server.base)).unwrap();
    let verified = a.post("/console/verify", &[("token", &token_of(&link))]).await;
    assert_eq!(verified.status, StatusCode::OK);
    let mut b = Browser::new(&server);
    assert_eq!(
        sign_up(&mut b, "Initech", "bill@initech.test", "initech-password")
            .await
            .status,
        StatusCode::OK
    );
    let link = mail_file(dir.path(), "create Initech")
        .link(&format!("{}/console/verify?token=", server.base))
        .unwrap();
    assert_eq!(
        b.post("/console/verify", &[("token", &token_of(&link))]).await.status,
        StatusCode::OK
    );

    let mut hank = Browser::new(&server);
    hank.sign_in("hank@globex.test", "globex-password").await;
    let globex = landing_tenant(&mut hank).await;
    let mut bill = Browser::new(&server);
    bill.sign_in("bill@initech.test", "initech-password").await;
    let initech = landing_tenant(&mut bill).await;
    // Another tenant's decision, status and pages: 404 for a member.
    for (path, form) in [
        (format!("/console/t/{initech}/decision"), vec![("decision", "approve")]),
        (format!("/console/t/{initech}/decision"), vec![("decision", "decline")]),
        (format!("/console/t/{initech}/status"), vec![("status", "active")]),
    ] {
        assert_eq!(hank.change(&path, &form).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        hank.get(&format!("/console/t/{initech}")).await.status,
        StatusCode::NOT_FOUND
    );

    // The operator declines Globex with a reason; the owner reads it.
    let mut op = operator(&server).await;
    let outbox = op.get("/console/mail").await;
    assert!(outbox.body.contains("mails are written as files"), "{}", outbox.body);
    let status = op
        .change(&format!("/console/t/{globex}/status"), &[("status", "active")])
        .await;
    assert_eq!(
        status.status,
        StatusCode::BAD_REQUEST,
        "a pending tenant is decided, not reactivated"
    );
    let declined = op
        .change(
            &format!("/console/t/{globex}/decision"),
            &[("decision", "decline"), ("reason", "We serve only <b>schools</b>.")],
        )
        .await;
    assert_eq!(declined.status, StatusCode::SEE_OTHER, "{}", declined.body);
    let mail = mail_file(dir.path(), "Globex was not approved");
    assert!(mail.body().contains("We serve only <b>schools</b>."));
    let page = hank.get(&format!("/console/t/{globex}")).await;
    assert!(page.body.contains("declined this tenant"));
    let refused = hank
        .change(&format!("/console/t/{globex}/apps"), &[("name", "chat")])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let log = op.get(&format!("/console/t/{globex}/audit")).await;
    assert!(log.body.contains("We serve only &lt;b&gt;schools&lt;/b&gt;.") || log.body.contains("&#60;b&#62;"));

    // The CLI approves Initech (and cannot decide it twice); the owner is emailed.
    let cli = |args: &[&str]| common::tern_command(dir.path()).args(args).output().unwrap();
    let out = cli(&["tenant", "approve", "Initech"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is active"));
    mail_file(dir.path(), "Initech is approved");
    let out = cli(&["tenant", "decline", "Initech", "--reason", "late"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not waiting for approval"));
    assert!(!cli(&["tenant", "approve", "Nobody"]).status.success());
    let app = bill
        .change(&format!("/console/t/{initech}/apps"), &[("name", "chat")])
        .await;
    assert_eq!(app.status, StatusCode::OK, "{}", app.body);
    let log = op.get(&format!("/console/t/{initech}/audit")).await;
    assert!(log.body.contains("<td>cli</td>") && log.body.contains("pending_approval → active"));
}

#[tokio::test]
async fn sign_up_can_skip_approval_or_be_turned_off() {
    let (server, dir) = start_with(&[("TERN_SIGNUP", "open")]);
    let mut v = Browser::new(&server);
    assert_eq!(
        sign_up(&mut v, "Hooli", "gavin@hooli.test", "hooli-password")
            .await
            .status,
        StatusCode::OK
    );
    let link = mail_file(dir.path(), "create Hooli")
        .link(&format!("{}/console/verify?token=", server.base))
        .unwrap();
    let done = v.post("/console/verify", &[("token", &token_of(&link))]).await;
    assert!(done.body.contains("is ready"), "{}", done.body);
    let mut gavin = Browser::new(&server);
    gavin.sign_in("gavin@hooli.test", "hooli-password").await;
    let t = landing_tenant(&mut gavin).await;
    let app = gavin.change(&format!("/console/t/{t}/apps"), &[("name", "chat")]).await;
    assert_eq!(app.status, StatusCode::OK, "an open platform's tenant works at once");
    drop(server);

    let (server, _dir) = start_with(&[("TERN_SIGNUP", "off")]);
    let mut v = Browser::new(&server);
    assert_eq!(v.get("/console/signup").await.status, StatusCode::NOT_FOUND);
    assert!(!v.get("/console/login").await.body.contains("/console/signup"));
    let page = v
        .post("/console/signup", &[("tenant", "X"), ("email", "x@x.test")])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn teammates_are_invited_by_mail_with_roles_and_roles_stay_within_bounds() {
    let sink = common::smtp::SmtpSink::start();
    let url = sink.url();
    let (server, _dir) = start_with(&[("TERN_SMTP_URL", &url)]);
    let mut op = operator(&server).await;
    let acme = tenant_with_app(&mut op, "Acme").await;
    let other = tenant_with_app(&mut op, "Other").await;
    let t = acme.tenant.clone();
    op.change(
        &format!("/console/t/{t}/members"),
        &[
            ("email", "owner@acme.test"),
            ("password", "owner-password"),
            ("role", "owner"),
        ],
    )
    .await;
    let mut owner = Browser::new(&server);
    owner.sign_in("owner@acme.test", "owner-password").await;

    // Bad input is refused clearly and sends nothing.
    for (form, status, says) in [
        (
            vec![("email", "nope"), ("role", "admin")],
            StatusCode::BAD_REQUEST,
            "valid email",
        ),
        (
            vec![("email", "a@acme.test"), ("role", "god")],
            StatusCode::BAD_REQUEST,
            "role must be",
        ),
        (
            vec![("email", OPERATOR), ("role", "viewer")],
            StatusCode::BAD_REQUEST,
            "platform operator",
        ),
        (
            vec![("email", "owner@acme.test"), ("role", "viewer")],
            StatusCode::CONFLICT,
            "member of Acme already",
        ),
    ] {
        let page = owner.change(&format!("/console/t/{t}/invitations"), &form).await;
        let expected = if status == StatusCode::CONFLICT {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        assert_eq!(page.status, expected, "{form:?}: {}", page.body);
        assert!(page.body.contains(says), "{says}: {}", page.body);
    }
    assert!(sink.all().is_empty());

    // An admin and a new developer are invited; each gets a link.
    let sent = owner
        .change(
            &format!("/console/t/{t}/invitations"),
            &[("email", "Ada@Acme.test"), ("role", "admin")],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let mail = sink.wait_for("ada@acme.test", "invites you to Acme");
    assert!(mail.body().contains("as admin"));
    let link = mail.link(&format!("{}/console/invite?token=", server.base)).unwrap();
    let page = owner.get(&format!("/console/t/{t}")).await;
    assert!(page.body.contains("Open invitations") && page.body.contains("ada@acme.test"));

    // Accepting: a password for the new account, once.
    let mut ada = Browser::new(&server);
    let path = link.trim_start_matches(&server.base).to_owned();
    let shown = ada.get(&path).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.body.contains("join Acme as admin") && shown.body.contains("name=\"password\""));
    let token = token_of(&link);
    let short = ada
        .post("/console/invite", &[("token", &token), ("password", "short")])
        .await;
    assert_eq!(
        short.status,
        StatusCode::BAD_REQUEST,
        "a short password, and the link still works"
    );
    let joined = ada
        .post("/console/invite", &[("token", &token), ("password", "ada-password")])
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    assert!(joined.body.contains("member of Acme now, as admin"));
    let reused = ada
        .post("/console/invite", &[("token", &token), ("password", "ada-password")])
        .await;
    assert_eq!(reused.status, StatusCode::GONE);
    assert_eq!(ada.get(&path).await.status, StatusCode::GONE);
    assert_eq!(
        ada.sign_in("ada@acme.test", "ada-password").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(landing_tenant(&mut ada).await, t);

    // An admin invites up to admin, not owner; a revoked invitation's link is dead.
    let refused = ada
        .change(
            &format!("/console/t/{t}/invitations"),
            &[("email", "boss@acme.test"), ("role", "owner")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    ada.change(
        &format!("/console/t/{t}/invitations"),
        &[("email", "dev@acme.test"), ("role", "developer")],
    )
    .await;
    let dev_link = sink
        .wait_for("dev@acme.test", "invites you")
        .link(&format!("{}/console/invite?token=", server.base))
        .unwrap();
    let page = ada.get(&format!("/console/t/{t}")).await;
    let id = between(&page.body, "/invitations/", "/revoke").to_owned();
    // Another tenant's member cannot touch it, nor Acme's members.
    let mut stranger = Browser::new(&server);
    op.change(
        &format!("/console/t/{}/members", other.tenant),
        &[
            ("email", "boss@other.test"),
            ("password", "other-password"),
            ("role", "owner"),
        ],
    )
    .await;
    stranger.sign_in("boss@other.test", "other-password").await;
    let owner_id = {
        let page = owner.get(&format!("/console/t/{t}")).await;
        let at = page.body.find("<td>owner@acme.test</td>").unwrap();
        between(&page.body[at..], "/members/", "/role").to_owned()
    };
    for (path, form) in [
        (
            format!("/console/t/{t}/invitations"),
            vec![("email", "spy@other.test"), ("role", "owner")],
        ),
        (format!("/console/t/{t}/invitations/{id}/revoke"), vec![]),
        (
            format!("/console/t/{t}/members/{owner_id}/role"),
            vec![("role", "viewer")],
        ),
        (format!("/console/t/{t}/members/{owner_id}/remove"), vec![]),
        (format!("/console/t/{}/members/{owner_id}/remove", other.tenant), vec![]),
    ] {
        let page = stranger.change(&path, &form).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "POST {path}: {}", page.body);
    }
    let revoked = ada
        .change(&format!("/console/t/{t}/invitations/{id}/revoke"), &[])
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let dead = Browser::new(&server)
        .post(
            "/console/invite",
            &[("token", &token_of(&dev_link)), ("password", "dev-password")],
        )
        .await;
    assert_eq!(dead.status, StatusCode::GONE);

    // Roles: an admin cannot touch the owner; the last owner cannot step down or leave.
    let page = owner.get(&format!("/console/t/{t}")).await;
    let at = page.body.find("<td>ada@acme.test</td>").unwrap();
    let ada_id = between(&page.body[at..], "/members/", "/role").to_owned();
    let refused = ada
        .change(
            &format!("/console/t/{t}/members/{owner_id}/role"),
            &[("role", "viewer")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let last = owner
        .change(&format!("/console/t/{t}/members/{owner_id}/role"), &[("role", "admin")])
        .await;
    assert_eq!(last.status, StatusCode::BAD_REQUEST);
    assert!(last.body.contains("at least one owner"));
    let last = owner
        .change(&format!("/console/t/{t}/members/{owner_id}/remove"), &[])
        .await;
    assert_eq!(last.status, StatusCode::BAD_REQUEST);
    let viewer = owner
        .change(&format!("/console/t/{t}/members/{ada_id}/role"), &[("role", "viewer")])
        .await;
    assert_eq!(viewer.status, StatusCode::SEE_OTHER, "{}", viewer.body);
    let refused = ada
        .change(&format!("/console/t/{t}/apps"), &[("name", "viewer-app")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "a viewer now");
    let removed = owner
        .change(&format!("/console/t/{t}/members/{ada_id}/remove"), &[])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert_eq!(ada.get(&format!("/console/t/{t}")).await.status, StatusCode::NOT_FOUND);

    // An existing account accepts without a new password.
    owner
        .change(
            &format!("/console/t/{t}/invitations"),
            &[("email", "ada@acme.test"), ("role", "developer")],
        )
        .await;
    let mails: Vec<_> = sink.all().into_iter().filter(|m| m.to == ["ada@acme.test"]).collect();
    let back = mails
        .last()
        .unwrap()
        .link(&format!("{}/console/invite?token=", server.base))
        .unwrap();
    let shown = ada.get(back.trim_start_matches(&server.base)).await;
    assert!(!shown.body.contains("name=\"password\""));
    let joined = ada.post("/console/invite", &[("token", &token_of(&back))]).await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    assert_eq!(ada.get(&format!("/console/t/{t}")).await.status, StatusCode::OK);

    let log = op.get(&format!("/console/t/{t}/audit")).await;
    for action in [
        "tenant.member.invite",
        "tenant.member.join",
        "tenant.invitation.revoke",
        "tenant.member.role",
        "tenant.member.remove",
    ] {
        assert!(log.body.contains(&format!("<code>{action}</code>")), "{action}");
    }
    assert!(!log.body.contains(&token));
}

#[tokio::test]
async fn usage_is_counted_per_hour_charted_and_exported_as_csv() {
    let (server, _dir) = start();
    let mut op = operator(&server).await;
    let t = tenant_with_app(&mut op, "Acme").await;
    let api = ServerClient::new(&server.base, &t.app_key, &t.app_secret);
    api.create_user("ann", "Ann").await.unwrap();
    api.create_user("bob", "Bob").await.unwrap();
    for n in 0..3 {
        api.send_text("ann", "bob", &format!("m{n}"), "hello").await.unwrap();
    }
    let usage = format!("/console/t/{}/apps/{}/usage", t.tenant, t.app);
    // Counted in memory, written every few seconds: the page reads the database.
    let mut page = op.get(&usage).await;
    for _ in 0..100 {
        if page.body.contains("<strong>3</strong> messages") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        page = op.get(&usage).await;
    }
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<strong>3</strong> messages"), "{}", page.body);
    assert!(page.body.contains("<strong>5</strong> API calls"), "2 users + 3 sends");
    assert!(page.body.contains("data-chart=\""), "the chart's data is on the page");
    assert!(page.body.contains("/console/assets/uPlot.iife.min.js"));
    let js = op.get("/console/assets/uPlot.iife.min.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.contains("uPlot"));
    for (at, _) in page.body.match_indices("<script") {
        assert!(page.body[at..].starts_with("<script src=\"/console/assets/"));
    }

    let csv = op.get(&format!("{usage}.csv?hours=168")).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "hour_utc,messages,api_calls,peak_connections");
    assert_eq!(lines.len(), 1 + 168, "every hour of the week, zeros included");
    assert!(lines.last().unwrap().ends_with(",3,5,0"), "{}", lines.last().unwrap());
    assert!(lines[1].ends_with(":00:00Z,0,0,0"), "{}", lines[1]);
    let bad = op.get(&format!("{usage}?hours=99999")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
