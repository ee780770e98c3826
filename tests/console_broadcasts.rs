//! The console's broadcasts page against the real binary: start a broadcast to a list of
//! users and to every user, watch the jobs finish with their counts, a double submit is one
//! job, bad input says what is wrong, the text is rendered inert; roles, CSRF and the audit
//! log. (Another tenant's broadcasts answer 404: tests/console.rs.)
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::{add_viewer, between, field, operator, start_console, tenant_with_app, Browser, TenantWithApp};
use common::eventually;
use reqwest::StatusCode;
use tern_sdk::server::ServerClient;

fn history(html: &str) -> &str {
    between(html, "<section id=\"broadcasts\"", "</section>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_start_finish_and_show_their_progress() {
    let (server, _dir) = start_console(&[]);
    let mut op = operator(&server).await;
    let TenantWithApp {
        tenant,
        app: app_id,
        app_key,
        app_secret,
    } = tenant_with_app(&mut op, "Loud").await;
    let app = format!("/console/t/{tenant}/apps/{app_id}");
    add_viewer(&mut op, &tenant, "viewer@loud.test").await;
    let api = ServerClient::new(&server.base, &app_key, &app_secret);
    for (id, name) in [("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")] {
        api.create_user(id, name).await.unwrap();
    }

    let page = op.get(&format!("{app}/broadcasts")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(history(&page.body).contains("No broadcasts yet"));
    let key = field(&page.body, "key");

    // To a list with one id that is no user: two sent, one failed.
    let hostile = "<img src=x onerror=alert(1)> maintenance at 02:00";
    let form = [
        ("text", hostile),
        ("audience", "list"),
        ("users", "alice, bob\nnobody"),
        ("key", key.as_str()),
    ];
    let started = op.change(&format!("{app}/broadcasts"), &form).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    assert_eq!(started.location(), format!("{app}/broadcasts?done=broadcast-started"));
    // The same form again (a double click, a reload): still one job.
    let again = op.change(&format!("{app}/broadcasts"), &form).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    eventually("the list broadcast finishes", || {
        let mut b = op.clone_session();
        let path = format!("{app}/broadcasts");
        async move { history(&b.get(&path).await.body).contains(">done<") }
    })
    .await;
    let page = op.get(&format!("{app}/broadcasts")).await;
    let list = history(&page.body);
    assert_eq!(list.matches("<tr class=\"job\">").count(), 1, "{list}");
    assert!(list.contains("3 users") && list.contains("3 of 3 users"), "{list}");
    assert!(list.contains("2 sent") && list.contains("1 failed"), "{list}");
    assert!(!page.body.contains("<img src=x"), "the text is inert: {list}");
    assert!(
        list.contains("&#60;img src=x onerror=alert(1)&#62; maintenance"),
        "{list}"
    );
    assert!(
        !list.contains("hx-trigger=\"every 2s\""),
        "nothing runs, nothing refreshes"
    );

    // To every user, with a fresh form.
    let key = field(&op.get(&format!("{app}/broadcasts")).await.body, "key");
    let all = op
        .change(
            &format!("{app}/broadcasts"),
            &[("text", "hello everyone"), ("audience", "all"), ("key", key.as_str())],
        )
        .await;
    assert_eq!(all.status, StatusCode::SEE_OTHER, "{}", all.body);
    eventually("the broadcast to everyone finishes", || {
        let mut b = op.clone_session();
        let path = format!("{app}/broadcasts");
        async move { history(&b.get(&path).await.body).matches(">done<").count() == 2 }
    })
    .await;
    let page = op.get(&format!("{app}/broadcasts")).await;
    let list = history(&page.body);
    let newest = between(list, "<tr class=\"job\">", "</tr>");
    assert!(
        newest.contains("every user") && newest.contains("hello everyone"),
        "{newest}"
    );
    assert!(newest.contains("3 users") && newest.contains("3 sent"), "{newest}");
    // A finished job has no cancel button; cancelling it anyway answers it as it is.
    assert!(!list.contains(">Cancel<"), "{list}");
    let id = format!("bc_{}", between(newest, "<code class=\"dim\">bc_", "<"));
    let cancel = op.change(&format!("{app}/broadcasts/{id}/cancel"), &[]).await;
    assert_eq!(cancel.status, StatusCode::SEE_OTHER, "{}", cancel.body);
    let page = op.get(&format!("{app}/broadcasts")).await;
    assert_eq!(history(&page.body).matches(">done<").count(), 2);

    // Bad input says what is wrong, and starts nothing.
    for (form, says) in [
        (vec![("text", "  "), ("audience", "all")], "empty"),
        (vec![("text", "x"), ("audience", "list"), ("users", "")], "user ids"),
        (
            vec![("text", "x"), ("audience", "list"), ("users", "ok bad:id")],
            "is not a user id",
        ),
        (vec![("text", "x"), ("audience", "someone")], "Choose every user"),
    ] {
        let mut fields = form.clone();
        fields.push(("key", "k-bad"));
        let page = op.change(&format!("{app}/broadcasts"), &fields).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{form:?}: {}", page.body);
        assert!(page.body.contains(says), "{form:?}: {}", page.body);
    }
    let page = op.get(&format!("{app}/broadcasts?before=x'%20or%201=1")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let missing = op
        .change(&format!("{app}/broadcasts/bc_00000000000000000000000000/cancel"), &[])
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // CSRF and roles: a viewer sees the history, not the form, and cannot start one.
    let forged = op
        .post(
            &format!("{app}/broadcasts"),
            &[
                ("text", "x"),
                ("audience", "all"),
                ("key", "k-forged"),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let mut viewer = Browser::new(&server);
    viewer.sign_in("viewer@loud.test", "viewer-password").await;
    let seen = viewer.get(&format!("{app}/broadcasts")).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.body.contains("hello everyone") && !seen.body.contains("Start broadcast"));
    let refused = viewer
        .change(
            &format!("{app}/broadcasts"),
            &[("text", "x"), ("audience", "all"), ("key", "k-viewer")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let page = op.get(&format!("{app}/broadcasts")).await;
    assert_eq!(
        history(&page.body).matches("<tr class=\"job\">").count(),
        2,
        "nothing else started"
    );

    // The audit log: two starts (the double submit is one job, logged once per post) and the cancel.
    let audit = op.get(&format!("/console/t/{tenant}/audit")).await;
    assert_eq!(audit.body.matches("app.broadcast.start").count(), 3, "{}", audit.body);
    assert!(audit.body.contains("app.broadcast.cancel") && audit.body.contains("to every user"));
}
