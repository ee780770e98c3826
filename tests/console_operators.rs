//! Operators inviting operators, against the real binary on SQLite and PostgreSQL: an
//! operator invites by email (the console and the operator API); the mail, written to the
//! mail folder, holds a link that works once, for 24 hours, where the invitee chooses a
//! password and then signs in as an operator (an existing account keeps its password). A
//! link used twice, expired or revoked is refused; a short password keeps the link open;
//! a form without the CSRF token and a tenant member change nothing (404 in the console,
//! `forbidden` in the operator API); every step is in the platform's audit log.
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::{
    admin, databases, error_code, member_of, operator, start_console, tenant_with_app, Browser, VIEWER_PASSWORD,
};
use common::Server;
use reqwest::StatusCode;
use serde_json::json;

/// The mails in the mail folder to `to`.
fn mails_to(dir: &std::path::Path, to: &str) -> Vec<common::smtp::Received> {
    let folder = dir.join("data").join("mail");
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| common::smtp::Received {
            from: String::new(),
            to: Vec::new(),
            data: std::fs::read_to_string(e.path()).unwrap(),
        })
        .filter(|m| m.data.lines().any(|l| l.starts_with("To: ") && l.contains(to)))
        .collect()
}

/// The invitation link mailed to `to` (the only mail to them).
fn link_to(server: &Server, dir: &std::path::Path, to: &str) -> String {
    let mails = mails_to(dir, to);
    assert_eq!(mails.len(), 1, "one mail to {to}");
    assert!(
        mails[0].subject().contains("invites you to operate Tern"),
        "{}",
        mails[0].data
    );
    assert!(
        mails[0].body().contains("works once, for 24 hours"),
        "{}",
        mails[0].body()
    );
    let link = mails[0]
        .link(&format!("{}/console/operator-invite?token=", server.base))
        .unwrap();
    link.trim_start_matches(&server.base).to_owned()
}

fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_owned()
}

/// Runs one statement on the server's database (a day cannot be waited for).
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_invite_operators_by_mail_with_single_use_links() {
    for pg in databases().await {
        eprintln!("on {}", if pg.is_some() { "postgres" } else { "sqlite" });
        let env: Vec<(&str, &str)> = pg.iter().map(|u| ("TERN_DATABASE_URL", u.as_str())).collect();
        let (server, dir) = start_console(&env);
        let mut op = operator(&server).await;
        let acme = tenant_with_app(&mut op, "Acme").await;

        // Bad input says why and sends nothing; a form without the CSRF token is refused.
        for (email, says) in [("nope", "valid email"), (common::browser::OPERATOR, "operator already")] {
            let page = op.change("/console/operators/invitations", &[("email", email)]).await;
            assert_eq!(page.status, StatusCode::BAD_REQUEST, "{email}: {}", page.body);
            assert!(page.body.contains(says), "{says}: {}", page.body);
        }
        let forged = op
            .post("/console/operators/invitations", &[("email", "forged@ops.test")])
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
        assert!(mails_to(dir.path(), "forged@ops.test").is_empty());

        // An invitation from the console: listed, mailed.
        let sent = op
            .change("/console/operators/invitations", &[("email", "New.Op@Ops.test")])
            .await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
        assert_eq!(sent.location(), "/console/operators?done=operator-invited");
        let page = op.get("/console/operators").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains("new.op@ops.test") && page.body.contains("ops@example.com"),
            "{}",
            page.body
        );
        let link = link_to(&server, dir.path(), "new.op@ops.test");

        // The link's page asks for a password; a short one keeps the link open.
        let mut new_op = Browser::new(&server);
        let shown = new_op.get(&link).await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
        assert!(shown.body.contains("Choose a password") && shown.body.contains("name=\"password\""));
        let token = token_of(&link);
        let short = new_op
            .post(
                "/console/operator-invite",
                &[("token", token.as_str()), ("password", "short")],
            )
            .await;
        assert_eq!(short.status, StatusCode::BAD_REQUEST, "{}", short.body);
        let signed = new_op.sign_in("new.op@ops.test", "short").await;
        assert_ne!(signed.status, StatusCode::SEE_OTHER, "no account was made");
        let accepted = new_op
            .post(
                "/console/operator-invite",
                &[("token", token.as_str()), ("password", "new-operator-password")],
            )
            .await;
        assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
        assert!(
            accepted.body.contains("You are a platform operator now"),
            "{}",
            accepted.body
        );

        // Once: the link is refused after.
        let again = new_op
            .post(
                "/console/operator-invite",
                &[("token", token.as_str()), ("password", "another-password")],
            )
            .await;
        assert_eq!(again.status, StatusCode::GONE, "{}", again.body);
        assert_eq!(new_op.get(&link).await.status, StatusCode::GONE);

        // The new operator signs in and sees what operators see.
        let signed = new_op.sign_in("new.op@ops.test", "new-operator-password").await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
        assert_eq!(new_op.get("/console/operators").await.status, StatusCode::OK);
        assert_eq!(
            new_op.get(&format!("/console/t/{}", acme.tenant)).await.status,
            StatusCode::OK
        );
        let (s, v) = admin(&mut new_op, "GET", "/operator-invitations", None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(
            v["invitations"].as_array().unwrap().is_empty(),
            "accepted: no longer open: {v}"
        );

        // The operator API: invite (201), bad email, an operator already (409).
        let (s, v) = admin(
            &mut op,
            "POST",
            "/operator-invitations",
            Some(json!({"email": "late@ops.test"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(
            (v["email"].as_str(), v["invited_by"].as_str()),
            (Some("late@ops.test"), Some("ops@example.com"))
        );
        assert_eq!(
            v["expires_at"].as_i64().unwrap() - v["created_at"].as_i64().unwrap(),
            24 * 3600 * 1000
        );
        let (s, v) = admin(&mut op, "POST", "/operator-invitations", Some(json!({"email": "nope"}))).await;
        assert_eq!(
            (s, error_code(&v), v["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, "invalid_argument", Some("email")),
            "{v}"
        );
        let (s, v) = admin(
            &mut op,
            "POST",
            "/operator-invitations",
            Some(json!({"email": "new.op@ops.test"})),
        )
        .await;
        assert_eq!((s, error_code(&v)), (StatusCode::CONFLICT, "conflict"), "{v}");
        let (s, v) = admin(
            &mut op,
            "POST",
            "/operator-invitations",
            Some(json!({"email": "a@b.test", "role": "x"})),
        )
        .await;
        assert_eq!((s, error_code(&v)), (StatusCode::BAD_REQUEST, "invalid_json"), "{v}");

        // Expired after 24 hours: refused, and nobody was made an operator.
        let late = link_to(&server, dir.path(), "late@ops.test");
        sql(
            &pg,
            dir.path(),
            "UPDATE console_operator_invitations SET expires_at = created_at + 86400000 WHERE email = 'late@ops.test'",
        )
        .await;
        assert_eq!(
            Browser::new(&server).get(&late).await.status,
            StatusCode::OK,
            "works until its 24 hours end"
        );
        sql(
            &pg,
            dir.path(),
            "UPDATE console_operator_invitations SET expires_at = 1 WHERE email = 'late@ops.test'",
        )
        .await;
        let mut latecomer = Browser::new(&server);
        assert_eq!(latecomer.get(&late).await.status, StatusCode::GONE);
        let refused = latecomer
            .post(
                "/console/operator-invite",
                &[("token", token_of(&late).as_str()), ("password", "late-password-1")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::GONE, "{}", refused.body);
        assert_ne!(
            latecomer.sign_in("late@ops.test", "late-password-1").await.status,
            StatusCode::SEE_OTHER
        );

        // Revoked: the link stops working at once.
        let (_, v) = admin(
            &mut op,
            "POST",
            "/operator-invitations",
            Some(json!({"email": "rev@ops.test"})),
        )
        .await;
        let id = v["id"].as_str().unwrap().to_owned();
        let (s, v) = admin(&mut op, "GET", "/operator-invitations", None).await;
        assert_eq!(
            (s, v["invitations"][0]["email"].as_str()),
            (StatusCode::OK, Some("rev@ops.test")),
            "{v}"
        );
        let (s, v) = admin(&mut op, "POST", &format!("/operator-invitations/{id}/revoke"), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = admin(&mut op, "POST", &format!("/operator-invitations/{id}/revoke"), None).await;
        assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
        let revoked = link_to(&server, dir.path(), "rev@ops.test");
        assert_eq!(Browser::new(&server).get(&revoked).await.status, StatusCode::GONE);

        // A tenant member may not: 404 in the console, forbidden in the operator API.
        let mut owner = member_of(&mut op, &server, &acme.tenant, "owner@acme.test", "owner").await;
        assert_eq!(owner.get("/console/operators").await.status, StatusCode::NOT_FOUND);
        let page = owner
            .change("/console/operators/invitations", &[("email", "sneaky@acme.test")])
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);
        for (method, path, body) in [
            ("GET", "/operator-invitations".to_owned(), None),
            (
                "POST",
                "/operator-invitations".to_owned(),
                Some(json!({"email": "sneaky@acme.test"})),
            ),
            ("POST", format!("/operator-invitations/{id}/revoke"), None),
        ] {
            let (s, v) = admin(&mut owner, method, &path, body).await;
            assert_eq!(
                (s, error_code(&v)),
                (StatusCode::FORBIDDEN, "forbidden"),
                "{method} {path}"
            );
        }
        assert!(mails_to(dir.path(), "sneaky@acme.test").is_empty());

        // An existing account accepts without a new password and keeps its own.
        let sent = op
            .change("/console/operators/invitations", &[("email", "owner@acme.test")])
            .await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
        let link = link_to(&server, dir.path(), "owner@acme.test");
        let shown = owner.get(&link).await;
        assert!(!shown.body.contains("name=\"password\""), "{}", shown.body);
        let accepted = owner
            .post("/console/operator-invite", &[("token", token_of(&link).as_str())])
            .await;
        assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
        let mut again = Browser::new(&server);
        assert_eq!(
            again.sign_in("owner@acme.test", VIEWER_PASSWORD).await.status,
            StatusCode::SEE_OTHER
        );
        assert_eq!(again.get("/console/operators").await.status, StatusCode::OK);

        // Every step is in the platform's audit log.
        let log = op.get("/console/audit").await;
        for (action, times) in [
            ("operator.invite", 4),
            ("operator.join", 2),
            ("operator.invitation.revoke", 1),
        ] {
            let cell = format!("<code>{action}</code>");
            assert_eq!(log.body.matches(&cell).count(), times, "{action}: {}", log.body);
        }
        assert!(
            log.body.contains("new.op@ops.test") && log.body.contains("late@ops.test"),
            "{}",
            log.body
        );
    }
}
