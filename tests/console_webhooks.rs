//! The console's webhooks page against the real binary and a real HTTP endpoint run by the
//! test: the delivery log gains each attempt of an after-event (status, latency, the start
//! of the answer, rendered as text), filtered by event and paged; "send test event" shows
//! the endpoint's answer, or why nothing was sent; this node's before-send breaker; roles,
//! CSRF and the audit log on the button; the overview's counts and webhook success.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use common::browser::{add_viewer, between, operator, start_console, tenant_with_app, Browser, TenantWithApp};
use common::eventually;
use reqwest::StatusCode;
use tern_sdk::server::ServerClient;

const HOSTILE: &str = "<script>alert('hook')</script> endpoint down";

/// A webhook endpoint: answers every POST with the status and body set now, and keeps the
/// `X-Tern-Event` of each.
#[derive(Default)]
struct Endpoint {
    answer: Mutex<(u16, String)>,
    events: Mutex<Vec<String>>,
}

impl Endpoint {
    async fn start(status: u16, body: &str) -> (Arc<Self>, String) {
        let endpoint = Arc::new(Self {
            answer: Mutex::new((status, body.to_owned())),
            ..Self::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", post(answer))
            .with_state(endpoint.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (endpoint, url)
    }

    fn answer_with(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap() = (status, body.to_owned());
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

async fn answer(State(e): State<Arc<Endpoint>>, headers: HeaderMap) -> (AxumStatus, String) {
    let event = headers
        .get("x-tern-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    e.events.lock().unwrap().push(event);
    let (status, body) = e.answer.lock().unwrap().clone();
    (AxumStatus::from_u16(status).unwrap(), body)
}

fn log_of(html: &str) -> &str {
    between(html, "<section id=\"log\">", "</section>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_log_and_a_test_event_show_what_the_endpoint_answered() {
    let (endpoint, url) = Endpoint::start(500, HOSTILE).await;
    let (server, _dir) = start_console(&[("TERN_WEBHOOK_ALLOW_PRIVATE", "1")]);
    let mut op = operator(&server).await;
    let TenantWithApp {
        tenant,
        app: app_id,
        app_key,
        app_secret,
    } = tenant_with_app(&mut op, "Hooked").await;
    let app = format!("/console/t/{tenant}/apps/{app_id}");
    add_viewer(&mut op, &tenant, "viewer@hooked.test").await;

    // Before any URL: an empty log, a closed breaker, no test button; the POST says why.
    let page = op.get(&format!("{app}/webhooks")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(log_of(&page.body).contains("No delivery attempts"), "{}", page.body);
    assert!(!page.body.contains("Send test event"));
    let breaker = between(&page.body, "<section id=\"breaker\">", "</section>");
    assert!(
        breaker.contains(">closed<") && breaker.contains("0 failures in a row"),
        "{breaker}"
    );
    let unset = op.change(&format!("{app}/webhooks/test"), &[]).await;
    assert_eq!(unset.status, StatusCode::OK, "{}", unset.body);
    let result = between(&unset.body, "<section class=\"test-result\"", "</section>");
    assert!(
        result.contains("No test event was sent") && result.contains("no webhook URL"),
        "{result}"
    );

    // The endpoint, only message.sent; a message makes an event that fails with a 500.
    let saved = op
        .change(
            &format!("{app}/webhooks"),
            &[("url", url.as_str()), ("event.message.sent", "on")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let api = ServerClient::new(&server.base, &app_key, &app_secret);
    api.create_user("alice", "Alice").await.unwrap();
    api.create_user("bob", "Bob").await.unwrap();
    api.send_text("alice", "bob", "m1", "hello").await.unwrap();
    eventually("the failed attempt is logged", || {
        let mut b = op.clone_session();
        let path = format!("{app}/webhooks");
        async move { log_of(&b.get(&path).await.body).contains(">retrying<") }
    })
    .await;
    let page = op.get(&format!("{app}/webhooks")).await;
    let log = log_of(&page.body);
    let first = between(log, "<tbody>", "</tr>");
    assert!(
        first.contains("message.sent") && first.contains("<td>500</td>"),
        "{first}"
    );
    assert!(first.contains(" ms</td>"), "latency shown: {first}");
    // The endpoint's answer is text, never markup.
    assert!(!page.body.contains("<script>alert"), "{log}");
    assert!(
        first.contains("&#60;script&#62;alert(&#39;hook&#39;)&#60;/script&#62; endpoint down"),
        "{first}"
    );
    let event_id = format!("wh_{}", between(first, "<code class=\"dim\">wh_", "<"));

    // The endpoint recovers; the retry (backoff from 1 s) delivers the same event.
    endpoint.answer_with(200, "thanks");
    eventually("the retry is delivered and logged", || {
        let mut b = op.clone_session();
        let path = format!("{app}/webhooks?event={event_id}");
        async move { log_of(&b.get(&path).await.body).contains(">delivered<") }
    })
    .await;
    let by_event = op.get(&format!("{app}/webhooks?event={event_id}")).await;
    let log = log_of(&by_event.body);
    assert_eq!(log.matches("<tr><td>").count(), 2, "two attempts of this event: {log}");
    assert!(log.contains("<td>2</td>") && log.contains("<td>200</td>") && log.contains("thanks"));

    // Send test event: the answer on top, and a line in the log.
    let sent = op.change(&format!("{app}/webhooks/test"), &[]).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let result = between(&sent.body, "<section class=\"test-result\"", "</section>");
    assert!(
        result.contains("<strong class=\"outcome\">delivered</strong>"),
        "{result}"
    );
    assert!(
        result.contains("HTTP <strong class=\"http-status\">200</strong>"),
        "{result}"
    );
    assert!(result.contains("thanks"), "{result}");
    assert!(log_of(&sent.body).contains("webhook.test"));
    assert_eq!(
        endpoint.events().last().unwrap(),
        "webhook.test",
        "sent though not subscribed"
    );
    endpoint.answer_with(503, "maintenance");
    let failed = op.change(&format!("{app}/webhooks/test"), &[]).await;
    let result = between(&failed.body, "<section class=\"test-result\"", "</section>");
    assert!(result.contains("<strong class=\"outcome\">failed</strong>"), "{result}");
    assert!(result.contains("HTTP <strong class=\"http-status\">503</strong>") && result.contains("maintenance"));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let tests_sent = endpoint.events().iter().filter(|e| *e == "webhook.test").count();
    assert_eq!(tests_sent, 2, "a failed test event is not retried");

    // Filters that do not parse say so (400); the rest are another app's or nothing.
    for bad in ["event=not-an-event", "before=x'%20or%201=1"] {
        let page = op.get(&format!("{app}/webhooks?{bad}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(page.body.contains("role=\"alert\""), "{bad}");
    }
    let none = op.get(&format!("{app}/webhooks?event=wh_nothing")).await;
    assert!(log_of(&none.body).contains("No delivery attempts of this event"));

    // The button needs this session's CSRF token and a developer's role.
    let before = endpoint.events().len();
    let forged = op.post(&format!("{app}/webhooks/test"), &[("csrf", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let mut viewer = Browser::new(&server);
    viewer.sign_in("viewer@hooked.test", "viewer-password").await;
    let seen = viewer.get(&format!("{app}/webhooks")).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(log_of(&seen.body).contains("webhook.test") && !seen.body.contains("Send test event"));
    let refused = viewer.change(&format!("{app}/webhooks/test"), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(endpoint.events().len(), before, "no refused post sent anything");

    // The overview: the message, and the after-event's two attempts (test events left
    // out), one delivered. The platform's overview is for operators only.
    eventually("the overview counts the message", || {
        let mut b = op.clone_session();
        let path = format!("{app}/overview");
        async move {
            let page = b.get(&path).await.body;
            between(&page, "Last 24 hours</th>", "</tr>").contains("<td class=\"messages\">1</td>")
        }
    })
    .await;
    let overview = op.get(&format!("{app}/overview")).await;
    let windows = between(&overview.body, "<table class=\"overview\" id=\"windows\">", "</table>");
    let day = between(windows, "Last 24 hours</th>", "</tr>");
    assert!(day.contains("50.0 %</span> of 2"), "{day}");
    assert!(overview.body.contains("id=\"overview-chart\" data-chart="));
    let platform = op.get("/console/overview").await;
    assert_eq!(platform.status, StatusCode::OK, "{}", platform.body);
    assert!(platform.body.contains("Platform overview"));
    assert_eq!(viewer.get("/console/overview").await.status, StatusCode::NOT_FOUND);
    assert_eq!(viewer.get(&format!("{app}/overview")).await.status, StatusCode::OK);

    // The audit log keeps each test event, with what it came to.
    let audit = op.get(&format!("/console/t/{tenant}/audit")).await;
    assert_eq!(audit.body.matches("app.webhook.test").count(), 3, "{}", audit.body);
    assert!(audit.body.contains("delivered 200") && audit.body.contains("failed 503"));
}
