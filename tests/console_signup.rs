//! The console's tenant sign-up and team invitations against the real binary: the
//! verification mail read from a real SMTP exchange (tests/common/smtp.rs) or from the mail
//! folder, single-use links, approval and decline (console and CLI), the `open` and `off`
//! settings; invitations for new and existing accounts, once, revoked, roles bounded by
//! one's own, the last owner kept. (Split from tests/console.rs.)
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::{between, field, operator, start_console, tenant_with_app, Browser, OPERATOR};
use reqwest::StatusCode;

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
    let (mut server, _dir) = start_console(&[("TERN_SMTP_URL", &url), ("TERN_SMTP_FROM", "Tern <noreply@tern.test>")]);
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
    let (mut server, dir) = start_console(&[]);
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
    let (server, dir) = start_console(&[("TERN_SIGNUP", "open")]);
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

    let (server, _dir) = start_console(&[("TERN_SIGNUP", "off")]);
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
    let (server, _dir) = start_console(&[("TERN_SMTP_URL", &url)]);
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
