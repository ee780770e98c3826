//! The operations console against the real binary on a random port: who sees what (every
//! page and action of another tenant answers 404), CSRF on every change, inert user input,
//! lockout after wrong passwords, sign-out everywhere, secrets shown once, the audit log.
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::{
    add_viewer, between, field, operator, secrets_shown, start_console, tenant_with_app, Browser, OPERATOR,
    OPERATOR_PASSWORD,
};
use reqwest::{header, StatusCode};
use tern_sdk::server::ServerClient;

#[tokio::test]
async fn every_page_and_action_of_another_tenant_answers_404() {
    let (server, _dir) = start_console(&[]);
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
    // And a broadcast.
    let beta_job: serde_json::Value = beta
        .request(
            "POST",
            "/v1/broadcasts",
            Some(&serde_json::json!({"type": "text", "content": {"text": "beta news"}, "users": ["carol"]})),
        )
        .await
        .unwrap();
    let beta_broadcast = beta_job["id"].as_str().unwrap().to_owned();
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
            format!("/console/t/{t}/apps/{app}/webhooks?event=wh_x"),
            format!("/console/t/{t}/apps/{app}/broadcasts"),
            format!("/console/t/{t}/apps/{app}/groups"),
            format!("/console/t/{t}/apps/{app}/overview"),
            format!("/console/t/{t}/apps/{app}/rooms"),
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
    probes.push("/console/overview".into());
    probes.push("/console/t/tn_00000000000000000000".into());
    probes.push("/console/t/not-an-id/apps/also-not".into());
    for path in &probes {
        let page = owner.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "GET {path}");
        assert!(
            !page.body.contains("Beta")
                && !page.body.contains("secret plans")
                && !page.body.contains(&beta_device)
                && !page.body.contains("beta news"),
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
                (format!("{app}/webhooks/test"), vec![]),
                (format!("{app}/messages/{}/recall", sent.msg_id), vec![]),
                (
                    format!("{app}/broadcasts"),
                    vec![("text", "stolen"), ("audience", "all"), ("key", "k-probe")],
                ),
                (format!("{app}/broadcasts/{beta_broadcast}/cancel"), vec![]),
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
    let beta_history = beta.history(&conv, 0, 10).await.unwrap();
    assert!(beta_history.iter().all(|m| !m.recalled), "no message was recalled");
    let beta_app = op.get(&format!("/console/t/{}/apps/{}", b.tenant, b.app)).await;
    assert_eq!(
        beta_app.body.matches("<td><code>sec_").count(),
        1,
        "no secret was added or revoked"
    );
    assert!(beta_app.body.contains("value=\"12288\""), "max_text_bytes unchanged");
    let beta_audit = op.get(&format!("/console/t/{}/audit", b.tenant)).await;
    assert!(!beta_audit.body.contains("app.push.test"), "no test push was tried");
    assert!(!beta_audit.body.contains("app.webhook.test"), "no test event was tried");
    assert!(
        !beta_audit.body.contains("app.broadcast"),
        "no broadcast was started or cancelled"
    );
    let beta_broadcasts = op
        .get(&format!("/console/t/{}/apps/{}/broadcasts", b.tenant, b.app))
        .await;
    assert!(!beta_broadcasts.body.contains("stolen"), "no broadcast was started");
    let beta_tenant = op.get(&format!("/console/t/{}", b.tenant)).await;
    assert!(!beta_tenant.body.contains("stolen") && !beta_tenant.body.contains("spy@alpha.test"));
}

#[tokio::test]
async fn changes_without_the_csrf_token_are_refused() {
    let (server, _dir) = start_console(&[]);
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
    let (server, _dir) = start_console(&[]);
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
    let (server, _dir) = start_console(&[]);
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
    let (server, _dir) = start_console(&[]);
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
    let (server, dir) = start_console(&[]);
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

#[tokio::test]
async fn the_explorer_shows_reactions_and_recalls_a_message() {
    let (server, _dir) = start_console(&[]);
    let mut op = operator(&server).await;
    let t = tenant_with_app(&mut op, "Recaller").await;
    add_viewer(&mut op, &t.tenant, "viewer@recaller.test").await;
    let api = ServerClient::new(&server.base, &t.app_key, &t.app_secret);
    api.create_user("alice", "Alice").await.unwrap();
    api.create_user("bob", "Bob").await.unwrap();
    let keep = api.send_text("alice", "bob", "k1", "keep me").await.unwrap();
    let oops = api.send_text("alice", "bob", "k2", "wrong chat, sorry").await.unwrap();
    api.add_reaction(&keep.msg_id, "👍", "bob").await.unwrap();
    api.add_reaction(&keep.msg_id, "👍", "alice").await.unwrap();
    let app = format!("/console/t/{}/apps/{}", t.tenant, t.app);
    let history = format!("{app}/messages?conversation={}", keep.conversation_id);

    let page = op.get(&history).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let kept = between(&page.body, &format!("id=\"seq-{}\"", keep.seq), "</li>");
    assert!(kept.contains("<div class=\"reactions\">👍 2</div>"), "{kept}");
    assert_eq!(page.body.matches(">Recall<").count(), 2);

    // A viewer sees no button and may not recall.
    let mut viewer = Browser::new(&server);
    viewer.sign_in("viewer@recaller.test", "viewer-password").await;
    let seen = viewer.get(&history).await;
    assert!(seen.body.contains("wrong chat") && !seen.body.contains(">Recall<"));
    let refused = viewer
        .change(&format!("{app}/messages/{}/recall", oops.msg_id), &[])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // No such message, or not a message id: 404. Without the CSRF token: refused.
    for id in ["01JZ0000000000000000000000", "not a msg"] {
        let page = op.change(&format!("{app}/messages/{id}/recall"), &[]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{id}");
    }
    let forged = op
        .post(&format!("{app}/messages/{}/recall", oops.msg_id), &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // The developer (here the operator) recalls: back at the message, marked, content gone.
    let done = op.change(&format!("{app}/messages/{}/recall", oops.msg_id), &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(
        done.location().ends_with(&format!("#seq-{}", oops.seq)),
        "{}",
        done.location()
    );
    let page = op.get(&history).await;
    let recalled = between(&page.body, &format!("id=\"seq-{}\"", oops.seq), "</li>");
    assert!(
        recalled.contains("recalled") && !recalled.contains("wrong chat"),
        "{recalled}"
    );
    assert!(!recalled.contains(">Recall<"), "{recalled}");
    let synced = api.history(&keep.conversation_id, 0, 10).await.unwrap();
    assert!(synced.iter().any(|m| m.msg_id == oops.msg_id && m.recalled));
    // Recalling twice answers the message as it is.
    let again = op.change(&format!("{app}/messages/{}/recall", oops.msg_id), &[]).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let audit = op.get(&format!("/console/t/{}/audit", t.tenant)).await;
    assert!(audit.body.contains("app.message.recall") && audit.body.contains(&oops.msg_id));
}

#[tokio::test]
async fn usage_is_counted_per_hour_charted_and_exported_as_csv() {
    let (server, _dir) = start_console(&[]);
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
    assert_eq!(lines[0], "hour_utc,messages,api_calls,peak_connections,errors");
    assert_eq!(lines.len(), 1 + 168, "every hour of the week, zeros included");
    assert!(lines.last().unwrap().ends_with(",3,5,0,0"), "{}", lines.last().unwrap());
    assert!(lines[1].ends_with(":00:00Z,0,0,0,0"), "{}", lines[1]);
    let bad = op.get(&format!("{usage}?hours=99999")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
