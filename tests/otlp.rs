//! Traces really leave the process: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, `tern serve`
//! exports its request spans over OTLP/HTTP protobuf, and a SIGTERM flushes what is still
//! buffered. A tiny collector in the test receives and decodes them.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use common::{Server, UNREACHABLE_PG};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

/// (span name, attributes as key=value strings) of every span received.
type Received = Arc<Mutex<Vec<(String, Vec<String>)>>>;

async fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).unwrap();
                let mut spans = sink.lock().unwrap();
                for rs in req.resource_spans {
                    for ss in rs.scope_spans {
                        for span in ss.spans {
                            let attrs = span
                                .attributes
                                .iter()
                                .map(|kv| {
                                    let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                        Some(Value::StringValue(s)) => s.clone(),
                                        Some(Value::IntValue(i)) => i.to_string(),
                                        other => format!("{other:?}"),
                                    };
                                    format!("{}={v}", kv.key)
                                })
                                .collect();
                            spans.push((span.name, attrs));
                        }
                    }
                }
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_the_otlp_collector() {
    let (endpoint, received) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("TERN_DATABASE_URL", UNREACHABLE_PG),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ],
    );
    let res = reqwest::Client::new()
        .get(format!("{}/healthz", server.base))
        .header("x-request-id", "otlp-test-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The batch would export later; SIGTERM must flush it before the process exits.
    let status = tokio::task::spawn_blocking(move || server.terminate()).await.unwrap();
    assert!(status.success(), "{status:?}");

    let spans = received.lock().unwrap().clone();
    let request_span = spans
        .iter()
        .find(|(name, attrs)| name == "http_request" && attrs.iter().any(|a| a == "request_id=otlp-test-1"))
        .unwrap_or_else(|| panic!("no http_request span for the request; got {spans:?}"));
    assert!(
        request_span.1.iter().any(|a| a == "http.route=/healthz"),
        "{request_span:?}"
    );
    assert!(
        request_span.1.iter().any(|a| a == "http.status=200"),
        "{request_span:?}"
    );
}
