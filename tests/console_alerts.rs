//! API errors and alerts against the real binary (SQLite, and PostgreSQL too when
//! `TERN_TEST_DATABASE_URL` is set): signed REST calls that fail are counted as the app's
//! errors (the overview, the usage page and CSV, the operator API's usage); an error-rate
//! rule made in the console is raised by those calls, shows on the app's and the
//! platform's overview and is mailed (over a real SMTP exchange) to the tenant's admins,
//! and is resolved once the rate falls. Bad thresholds are refused with a stable code,
//! another tenant's rules and alerts answer 404 in the console and the operator API, a form
//! without the CSRF token is refused, a viewer changes nothing, and each change is audited.
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::{admin, databases, operator, start_console, tenant_with_app, Browser, TenantWithApp};
use common::eventually;
use common::smtp::SmtpSink;
use reqwest::StatusCode;
use serde_json::json;
use tern_sdk::server::ServerClient;

/// The signed-in operator adds `email` to `tenant` with `role` and a first password; a
/// browser signed in as them.
async fn member(op: &mut Browser, tenant: &str, email: &str, role: &str) -> Browser {
    let added = op
        .change(
            &format!("/console/t/{tenant}/members"),
            &[("email", email), ("password", "member-password-1"), ("role", role)],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let mut b = op.clone_session();
    b.cookies.clear();
    let signed = b.sign_in(email, "member-password-1").await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    b
}

fn open_alerts(html: &str) -> Option<&str> {
    html.contains("id=\"open-alerts\"")
        .then(|| common::browser::between(html, "id=\"open-alerts\"", "</section>"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_calls_raise_an_alert_that_is_shown_mailed_and_resolved() {
    for pg in databases().await {
        let sink = SmtpSink::start();
        let smtp = sink.url();
        let mut env = vec![("TERN_SMTP_URL", smtp.as_str()), ("TERN_ALERT_INTERVAL_SECONDS", "1")];
        if let Some(url) = &pg {
            env.push(("TERN_DATABASE_URL", url.as_str()));
        }
        let (server, _dir) = start_console(&env);
        let mut op = operator(&server).await;
        let TenantWithApp {
            tenant,
            app,
            app_key,
            app_secret,
        } = tenant_with_app(&mut op, "Alerted").await;
        let page = format!("/console/t/{tenant}/apps/{app}");
        let _admin = member(&mut op, &tenant, "admin@alerted.test", "admin").await;
        let _dev = member(&mut op, &tenant, "dev@alerted.test", "developer").await;

        // A rule: more than 50 % errors over 5 minutes, with at least 4 calls.
        let made = op
            .change(
                &format!("{page}/alerts/rules"),
                &[
                    ("kind", "error_rate"),
                    ("threshold", "50"),
                    ("window_minutes", "5"),
                    ("min_volume", "4"),
                ],
            )
            .await;
        assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
        let rules = op.get(&format!("{page}/alerts")).await;
        assert!(
            rules
                .body
                .contains("more than 50 % of API calls answer an error over 5 min"),
            "{}",
            rules.body
        );
        assert!(rules.body.contains("No alerts raised yet"), "{}", rules.body);

        // Four signed calls that fail (404): 4 of 4.
        let api = ServerClient::new(&server.base, &app_key, &app_secret);
        for n in 0..4 {
            assert!(api.get_user(&format!("ghost{n}")).await.is_err());
        }
        eventually("the alert is open on the app's overview", || {
            let mut b = op.clone_session();
            let path = format!("{page}/overview");
            async move { open_alerts(&b.get(&path).await.body).is_some_and(|a| a.contains("API error rate")) }
        })
        .await;
        let overview = op.get(&format!("{page}/overview")).await;
        let open = open_alerts(&overview.body).unwrap();
        assert!(open.contains("4 of 4 API calls answered an error"), "{open}");
        let windows = common::browser::between(&overview.body, "id=\"windows\"", "</table>");
        assert!(windows.contains(">4</span> (100.0 %)"), "errors counted: {windows}");
        // The platform's overview (operators) lists every app's open alerts.
        let platform = op.get("/console/overview").await;
        let open = open_alerts(&platform.body).expect("open alerts on the platform overview");
        assert!(
            open.contains("chat") && open.contains(&format!("{page}/alerts")),
            "{open}"
        );

        // Mailed to the tenant's admins, not to its developer.
        let mail = tokio::task::spawn_blocking(move || {
            let m = sink.wait_for("admin@alerted.test", "Alert on chat: API error rate");
            (m, sink)
        })
        .await
        .unwrap();
        let (mail, sink) = mail;
        assert!(mail.body().contains("4 of 4 API calls"), "{}", mail.body());
        assert!(mail.body().contains(&format!("{page}/alerts")), "{}", mail.body());
        assert!(
            !sink.all().iter().any(|m| m.to.iter().any(|t| t == "dev@alerted.test")),
            "developers are not mailed"
        );

        // Calls that work bring the rate to 4 of 9: resolved, and raised once only.
        api.create_user("alice", "Alice").await.unwrap();
        for _ in 0..4 {
            api.get_user("alice").await.unwrap();
        }
        eventually("the alert is resolved", || {
            let mut b = op.clone_session();
            let path = format!("{page}/alerts");
            async move { b.get(&path).await.body.contains(">resolved<") }
        })
        .await;
        let alerts = op.get(&format!("{page}/alerts")).await;
        assert_eq!(alerts.body.matches("class=\"alert-row\"").count(), 1, "{}", alerts.body);
        assert!(open_alerts(&op.get(&format!("{page}/overview")).await.body).is_none());
        assert_eq!(
            sink.all()
                .iter()
                .filter(|m| m.subject().contains("Alert on chat"))
                .count(),
            1,
            "one mail per episode"
        );

        // The errors in the usage page, its CSV (last column) and the operator API.
        let usage = op.get(&format!("{page}/usage")).await;
        assert!(
            usage.body.contains("<strong class=\"errors\">4</strong> errors"),
            "{}",
            usage.body
        );
        let csv = op.get(&format!("{page}/usage.csv")).await;
        let mut lines = csv.body.lines();
        assert_eq!(
            lines.next(),
            Some("hour_utc,messages,api_calls,peak_connections,errors")
        );
        let last = lines.last().unwrap();
        assert!(last.ends_with(",9,0,4"), "{last}");
        let (status, usage) = admin(&mut op, "GET", &format!("/tenants/{tenant}/apps/{app}/usage"), None).await;
        assert_eq!(status, StatusCode::OK, "{usage}");
        assert_eq!(
            (usage["total_api_calls"].as_i64(), usage["total_errors"].as_i64()),
            (Some(9), Some(4))
        );
        let (status, raised) = admin(&mut op, "GET", &format!("/tenants/{tenant}/apps/{app}/alerts"), None).await;
        assert_eq!(status, StatusCode::OK, "{raised}");
        assert_eq!(raised["alerts"].as_array().unwrap().len(), 1);
        assert!(raised["alerts"][0]["resolved_at"].is_i64(), "{raised}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_checked_scoped_to_their_tenant_csrf_bound_and_audited() {
    for pg in databases().await {
        let env: Vec<(&str, &str)> = pg.iter().map(|u| ("TERN_DATABASE_URL", u.as_str())).collect();
        let (server, _dir) = start_console(&env);
        let mut op = operator(&server).await;
        let a = tenant_with_app(&mut op, "Acme").await;
        let b = tenant_with_app(&mut op, "Bravo").await;
        let a_page = format!("/console/t/{}/apps/{}", a.tenant, a.app);
        let a_api = format!("/tenants/{}/apps/{}", a.tenant, a.app);
        let mut dev = member(&mut op, &a.tenant, "dev@acme.test", "developer").await;
        let mut viewer = member(&mut op, &a.tenant, "viewer@acme.test", "viewer").await;
        let mut other = member(&mut op, &b.tenant, "owner@bravo.test", "owner").await;

        // Bad thresholds: refused with what is wrong, nothing kept.
        for (form, says) in [
            (
                [
                    ("kind", "error_rate"),
                    ("threshold", "0"),
                    ("window_minutes", "5"),
                    ("min_volume", "5"),
                ],
                "percentage from 1 to 100",
            ),
            (
                [
                    ("kind", "error_rate"),
                    ("threshold", "150"),
                    ("window_minutes", "5"),
                    ("min_volume", "5"),
                ],
                "percentage from 1 to 100",
            ),
            (
                [
                    ("kind", "error_rate"),
                    ("threshold", "50"),
                    ("window_minutes", "0"),
                    ("min_volume", "5"),
                ],
                "window_minutes must be from 1 to 1440",
            ),
            (
                [
                    ("kind", "webhook_failures"),
                    ("threshold", "-1"),
                    ("window_minutes", "5"),
                    ("min_volume", ""),
                ],
                "a count from 0",
            ),
            (
                [
                    ("kind", "dead_events"),
                    ("threshold", "lots"),
                    ("window_minutes", ""),
                    ("min_volume", ""),
                ],
                "whole number",
            ),
            (
                [
                    ("kind", "moon_phase"),
                    ("threshold", "1"),
                    ("window_minutes", ""),
                    ("min_volume", ""),
                ],
                "kind must be one of",
            ),
        ] {
            let refused = dev.change(&format!("{a_page}/alerts/rules"), &form).await;
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{form:?}: {}", refused.body);
            assert!(refused.body.contains(says), "{form:?}: {}", refused.body);
        }
        let (status, err) = admin(
            &mut dev,
            "POST",
            &format!("{a_api}/alert-rules"),
            Some(json!({"kind": "connection_drop", "threshold": 101, "min_volume": 10})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(err["error"]["code"], "invalid_argument", "{err}");
        let (status, err) = admin(
            &mut dev,
            "POST",
            &format!("{a_api}/alert-rules"),
            Some(json!({"kind": "dead_events", "threshold": 1, "colour": "red"})),
        )
        .await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_json"))
        );
        assert!(dev
            .get(&format!("{a_page}/alerts"))
            .await
            .body
            .contains("No alert rules yet"));

        // Without the CSRF token, a form post is refused, and so is an operator API change.
        let no_csrf = dev
            .post(
                &format!("{a_page}/alerts/rules"),
                &[("kind", "dead_events"), ("threshold", "0")],
            )
            .await;
        assert_eq!(no_csrf.status, StatusCode::FORBIDDEN, "{}", no_csrf.body);
        let bare = dev
            .http
            .post(format!("{}/admin/v1{a_api}/alert-rules", dev.base))
            .header("content-type", "application/json")
            .body(json!({"kind": "dead_events", "threshold": 0}).to_string());
        let bare = dev.send(bare).await;
        assert_eq!(bare.status, StatusCode::FORBIDDEN);
        assert!(bare.body.contains("csrf_token_invalid"), "{}", bare.body);
        // A viewer changes nothing.
        let denied = viewer
            .change(
                &format!("{a_page}/alerts/rules"),
                &[("kind", "dead_events"), ("threshold", "0")],
            )
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
        assert!(dev
            .get(&format!("{a_page}/alerts"))
            .await
            .body
            .contains("No alert rules yet"));

        // A rule made in the console, changed through the operator API, and one made there.
        let made = dev
            .change(
                &format!("{a_page}/alerts/rules"),
                &[("kind", "dead_events"), ("threshold", "3")],
            )
            .await;
        assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
        let (status, list) = admin(&mut dev, "GET", &format!("{a_api}/alert-rules"), None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let rule = list["rules"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(list["rules"][0]["threshold"], 3);
        let (status, changed) = admin(
            &mut dev,
            "PATCH",
            &format!("{a_api}/alert-rules/{rule}"),
            Some(json!({"threshold": 7})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        assert_eq!(
            (changed["kind"].as_str(), changed["threshold"].as_i64()),
            (Some("dead_events"), Some(7))
        );
        let (status, webhook) = admin(
            &mut dev,
            "POST",
            &format!("{a_api}/alert-rules"),
            Some(json!({"kind": "webhook_failures", "threshold": 2, "window_minutes": 15})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{webhook}");
        let second = webhook["id"].as_str().unwrap().to_owned();
        let edited = dev
            .change(
                &format!("{a_page}/alerts/rules/{second}"),
                &[
                    ("kind", "webhook_failures"),
                    ("threshold", "4"),
                    ("window_minutes", "30"),
                ],
            )
            .await;
        assert_eq!(edited.status, StatusCode::SEE_OTHER, "{}", edited.body);
        let shown = dev.get(&format!("{a_page}/alerts")).await.body;
        assert!(shown.contains("more than 7 dead webhook events"), "{shown}");
        assert!(
            shown.contains("more than 4 failed webhook attempts over 30 min"),
            "{shown}"
        );
        let viewer_sees = viewer.get(&format!("{a_page}/alerts")).await;
        assert!(viewer_sees.body.contains("more than 7 dead webhook events"));
        assert!(!viewer_sees.body.contains("id=\"new-rule\""), "no form for a viewer");

        // Another tenant's owner: every URL of A's alerts answers 404, in the console and the
        // operator API, also with A's app under B's tenant; nothing of A changes.
        let b_page_with_a_app = format!("/console/t/{}/apps/{}", b.tenant, a.app);
        for path in [format!("{a_page}/alerts"), format!("{b_page_with_a_app}/alerts")] {
            assert_eq!(other.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        for (path, form) in [
            (
                format!("{a_page}/alerts/rules"),
                vec![("kind", "dead_events"), ("threshold", "0")],
            ),
            (
                format!("{a_page}/alerts/rules/{rule}"),
                vec![("kind", "dead_events"), ("threshold", "0")],
            ),
            (format!("{a_page}/alerts/rules/{rule}/delete"), vec![]),
            (format!("{b_page_with_a_app}/alerts/rules/{rule}/delete"), vec![]),
        ] {
            let probed = other.change(&path, &form).await;
            assert_eq!(probed.status, StatusCode::NOT_FOUND, "{path}: {}", probed.body);
        }
        // B's own app does not have A's rule either.
        let b_page = format!("/console/t/{}/apps/{}", b.tenant, b.app);
        let probed = other.change(&format!("{b_page}/alerts/rules/{rule}/delete"), &[]).await;
        assert_eq!(probed.status, StatusCode::NOT_FOUND);
        let b_api_with_a_app = format!("/tenants/{}/apps/{}", b.tenant, a.app);
        for (method, path, body) in [
            ("GET", format!("{a_api}/alert-rules"), None),
            (
                "POST",
                format!("{a_api}/alert-rules"),
                Some(json!({"kind": "dead_events", "threshold": 0})),
            ),
            ("GET", format!("{a_api}/alert-rules/{rule}"), None),
            (
                "PATCH",
                format!("{a_api}/alert-rules/{rule}"),
                Some(json!({"threshold": 0})),
            ),
            ("DELETE", format!("{a_api}/alert-rules/{rule}"), None),
            ("GET", format!("{a_api}/alerts"), None),
            ("GET", format!("{b_api_with_a_app}/alert-rules"), None),
            ("GET", format!("{b_api_with_a_app}/alerts"), None),
            (
                "GET",
                format!("/tenants/{}/apps/{}/alert-rules/{rule}", b.tenant, b.app),
                None,
            ),
        ] {
            let (status, err) = admin(&mut other, method, &path, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {err}");
            assert_eq!(err["error"]["code"], "not_found", "{method} {path}");
        }
        let (_, list) = admin(&mut dev, "GET", &format!("{a_api}/alert-rules"), None).await;
        assert_eq!(list["rules"].as_array().unwrap().len(), 2, "{list}");
        assert_eq!(list["rules"][0]["threshold"], 7);

        // Deleting; every change is in the tenant's audit log.
        let (status, _) = admin(&mut dev, "DELETE", &format!("{a_api}/alert-rules/{rule}"), None).await;
        assert_eq!(status, StatusCode::OK);
        let gone = dev.change(&format!("{a_page}/alerts/rules/{second}/delete"), &[]).await;
        assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.body);
        assert!(dev
            .get(&format!("{a_page}/alerts"))
            .await
            .body
            .contains("No alert rules yet"));
        let audit = op.get(&format!("/console/t/{}/audit", a.tenant)).await.body;
        for action in [
            "app.alert_rule.create",
            "app.alert_rule.update",
            "app.alert_rule.delete",
        ] {
            assert_eq!(audit.matches(action).count(), 2, "{action} twice: {audit}");
        }
    }
}
