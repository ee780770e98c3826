//! The console's push page against the real binary, whose pushes go to the APNs and FCM
//! double (platform/src/push/double.rs) over HTTP/2 and TLS: the delivery log filtered by
//! user, device and message; "send test push" per device showing the provider's answer
//! (accepted, refused with Apple's reason, a dead token removed, not configured); roles and
//! CSRF on the button.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::browser::{
    add_viewer, between, operator, tenant_with_app, Browser, TenantWithApp, OPERATOR, OPERATOR_PASSWORD,
};
use common::{eventually, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tern_platform::push::double::{DoubleAnswer, ProviderDouble};
use tern_platform::push::test_keys;
use tern_sdk::push::PushToken;
use tern_sdk::server::ServerClient;

const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "TEAM123456";
const GOOD_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const BAD_TOKEN: &str = "0000000000000000000000000000000000000000000000000000000000000bad";
const DEAD_TOKEN: &str = "00000000000000000000000000000000000000000000000000000000000dead0";

/// The value of `name`="…" in the first `<tr>` holding `needle`.
fn cell_row<'a>(html: &'a str, needle: &str) -> &'a str {
    let at = html.find(needle).unwrap_or_else(|| panic!("no {needle:?} in {html}"));
    let start = html[..at].rfind("<tr>").unwrap();
    &html[start..at + html[at..].find("</tr>").unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_page_shows_the_log_and_a_test_push_shows_the_providers_answer() {
    let double = ProviderDouble::start().await.unwrap();
    let (p8, public) = test_keys::p256();
    double.trust_apns_key(KEY_ID, TEAM_ID, &public);
    double.script(BAD_TOKEN, vec![DoubleAnswer::reject(400, "TopicDisallowed"); 3]);
    double.script(DEAD_TOKEN, vec![DoubleAnswer::reject(410, "Unregistered")]);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("double-ca.pem");
    std::fs::write(&ca, double.ca_pem()).unwrap();
    let base = double.base_url();
    let token_url = format!("{base}/token");
    let mut server = Server::start(
        dir.path(),
        &[
            ("TERN_ADMIN_EMAIL", OPERATOR),
            ("TERN_ADMIN_PASSWORD", OPERATOR_PASSWORD),
            ("TERN_PUSH_APNS_URL", &base),
            ("TERN_PUSH_APNS_SANDBOX_URL", &base),
            ("TERN_PUSH_FCM_URL", &base),
            ("TERN_PUSH_FCM_TOKEN_URL", &token_url),
            ("TERN_PUSH_CA_FILE", ca.to_str().unwrap()),
        ],
    );
    server.wait_for_line("tern: ready");

    // A tenant, an app, a viewer, through the console.
    let mut op = operator(&server).await;
    let TenantWithApp {
        tenant,
        app: app_id,
        app_key,
        app_secret: secret,
    } = tenant_with_app(&mut op, "Pushy").await;
    let app = format!("/console/t/{tenant}/apps/{app_id}");
    add_viewer(&mut op, &tenant, "viewer@pushy.test").await;

    // Users, devices, APNs credentials, through the server API.
    let api = ServerClient::new(&server.base, &app_key, &secret);
    api.create_user("alice", "Alice").await.unwrap();
    api.create_user("bob", "Bob").await.unwrap();
    let before = op.get(&format!("{app}/push")).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert!(before.body.contains("No push attempts"), "{}", before.body);
    let apns = |token: &str| PushToken {
        provider: "apns".into(),
        token: token.into(),
        environment: Some("sandbox".into()),
        ..PushToken::default()
    };
    let good: Value = api.register_device("bob", &apns(GOOD_TOKEN)).await.unwrap();
    let bad: Value = api.register_device("bob", &apns(BAD_TOKEN)).await.unwrap();
    let dead: Value = api.register_device("bob", &apns(DEAD_TOKEN)).await.unwrap();
    let id = |v: &Value| v["device_id"].as_str().unwrap().to_owned();
    let (good, bad, dead) = (id(&good), id(&bad), id(&dead));

    // Before credentials are set, a test push says why nothing was sent.
    let unset = op
        .change(&format!("{app}/push/test"), &[("user", "bob"), ("device", &good)])
        .await;
    assert_eq!(unset.status, StatusCode::OK, "{}", unset.body);
    assert!(unset.body.contains("was not sent"), "{}", unset.body);
    assert!(unset.body.contains("no apns credentials"), "{}", unset.body);
    assert!(double.received().is_empty());

    let _: Value = api
        .request(
            "PUT",
            "/v1/push/credentials/apns",
            Some(&json!({"key_id": KEY_ID, "team_id": TEAM_ID, "bundle_id": "com.example.chat", "private_key": p8})),
        )
        .await
        .unwrap();

    // bob's devices, each with its button.
    let devices = op.get(&format!("{app}/push?user=bob")).await;
    assert_eq!(devices.status, StatusCode::OK);
    let listed = between(&devices.body, "<section id=\"devices\">", "</section>");
    assert!(
        listed.contains(&good) && listed.contains(&bad) && listed.contains(&dead),
        "{listed}"
    );
    assert_eq!(listed.matches("Send test push").count(), 3);

    // A test push to the good token: APNs accepted it, and said so.
    let sent = op
        .change(&format!("{app}/push/test"), &[("user", "bob"), ("device", &good)])
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let result = between(&sent.body, "<section class=\"test-result\"", "</section>");
    assert!(result.contains("<strong class=\"outcome\">sent</strong>"), "{result}");
    assert!(
        result.contains("HTTP <strong class=\"http-status\">200</strong>"),
        "{result}"
    );
    let got = double.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].token, GOOD_TOKEN);
    assert_eq!(got[0].body["aps"]["alert"]["title"], "Test push");
    // To the bad one: Apple's 400 and its reason.
    let refused = op
        .change(&format!("{app}/push/test"), &[("user", "bob"), ("device", &bad)])
        .await;
    let result = between(&refused.body, "<section class=\"test-result\"", "</section>");
    assert!(result.contains("<strong class=\"outcome\">failed</strong>"), "{result}");
    assert!(
        result.contains("HTTP <strong class=\"http-status\">400</strong>"),
        "{result}"
    );
    assert!(
        result.contains("<strong class=\"reason\">TopicDisallowed</strong>"),
        "{result}"
    );
    // To the uninstalled app's token: 410, and the device is gone from the list.
    let gone = op
        .change(&format!("{app}/push/test"), &[("user", "bob"), ("device", &dead)])
        .await;
    let result = between(&gone.body, "<section class=\"test-result\"", "</section>");
    assert!(
        result.contains("<strong class=\"outcome\">token_removed</strong>"),
        "{result}"
    );
    assert!(
        result.contains("<strong class=\"reason\">Unregistered</strong>"),
        "{result}"
    );
    let listed = between(&gone.body, "<section id=\"devices\">", "</section>");
    assert!(!listed.contains(&dead) && listed.contains(&good), "{listed}");

    // A message to bob, who has no session: the worker pushes it to both phones.
    let msg: Value = api
        .request(
            "POST",
            "/v1/messages",
            Some(&json!({"from": "alice", "to": {"user": "bob"}, "client_msg_id": "m1", "type": "text", "content": {"text": "are you there?"}})),
        )
        .await
        .unwrap();
    let msg_id = msg["msg_id"].as_str().unwrap().to_owned();
    let by_msg = format!("{app}/push?msg={msg_id}");
    eventually("the message's two pushes are logged", || {
        let mut b = Browser {
            http: op.http.clone(),
            base: op.base.clone(),
            cookies: op.cookies.clone(),
        };
        let path = by_msg.clone();
        async move {
            let page = b.get(&path).await;
            between(&page.body, "<section id=\"log\">", "</section>")
                .matches("<tr><td>")
                .count()
                == 2
        }
    })
    .await;
    let page = op.get(&by_msg).await;
    let log = between(&page.body, "<section id=\"log\">", "</section>");
    assert!(!log.contains(">test<"), "only the message's pushes: {log}");
    assert!(cell_row(log, &good).contains(">sent<"), "{log}");
    let row = cell_row(log, &bad);
    assert!(row.contains(">failed<") && row.contains("TopicDisallowed"), "{row}");
    assert!(!log.contains(&dead), "the removed device got no push: {log}");

    // By user: the three tests and the two pushes (the unsent test never reached the log).
    let page = op.get(&format!("{app}/push?user=bob")).await;
    let log = between(&page.body, "<section id=\"log\">", "</section>");
    assert_eq!(log.matches("<tr><td>").count(), 5, "{log}");
    assert_eq!(log.matches(">test<").count(), 3, "{log}");
    // By device: the good phone's test and push only.
    let page = op.get(&format!("{app}/push?device={good}")).await;
    let log = between(&page.body, "<section id=\"log\">", "</section>");
    assert_eq!(log.matches("<tr><td>").count(), 2, "{log}");
    assert!(!log.contains(&bad), "{log}");
    // Another user's filter shows nothing of bob.
    let page = op.get(&format!("{app}/push?user=alice")).await;
    assert!(page.body.contains("No devices registered"));
    assert!(page.body.contains("No push attempts match"), "{}", page.body);
    // A malformed filter says which.
    let page = op.get(&format!("{app}/push?user=bad%20id")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("is not a user id"), "{}", page.body);
    let page = op.get(&format!("{app}/push?device=phone")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);

    // The button needs this session's CSRF token, and a developer's role.
    let pushes = double.received().len();
    let forged = op
        .post(
            &format!("{app}/push/test"),
            &[("user", "bob"), ("device", &good), ("csrf", "forged")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let mut viewer = Browser::new(&server);
    viewer.sign_in("viewer@pushy.test", "viewer-password").await;
    let seen = viewer.get(&format!("{app}/push?user=bob")).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.body.contains(&good) && !seen.body.contains("Send test push"));
    let refused = viewer
        .change(&format!("{app}/push/test"), &[("user", "bob"), ("device", &good)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    // Someone else's device, or none: not found.
    for (user, device) in [("alice", good.as_str()), ("bob", "dev_nope"), ("bob", "not a device")] {
        let page = op
            .change(&format!("{app}/push/test"), &[("user", user), ("device", device)])
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{user} {device}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(double.received().len(), pushes, "no refused post sent a push");

    // The audit log keeps each test push.
    let audit = op.get(&format!("/console/t/{tenant}/audit")).await;
    assert_eq!(audit.body.matches("app.push.test").count(), 4, "{}", audit.body);
}
