//! The OpenAPI document as the `tern` binary serves it at `GET /v1/openapi.json`: the server
//! API's part (`tern_tenant_api::openapi`) with the operator API's (`/admin/v1`,
//! `tern_console::admin::AdminDoc`) merged in by the binary. The committed
//! `docs/openapi.json` is that document (`TERN_UPDATE_OPENAPI=1 cargo test -p tern --test
//! openapi` rewrites it), the real binary serves it byte for byte, its snapshot is pinned,
//! and its operations are named consistently for SDK generators.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use serde_json::Value;
use utoipa::OpenApi as _;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

/// The full document built as the binary builds it (`src/serve.rs`, `openapi_document`).
fn generated() -> String {
    tern_tenant_api::openapi::document_json_with(vec![tern_console::admin::AdminDoc::openapi()])
}

/// The body of `GET /v1/openapi.json` from `tern serve` in a fresh data dir.
async fn served_document() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut server = common::Server::start(dir.path(), &[]);
    server.wait_for_line("tern: ready");
    let res = reqwest::get(format!("{}/v1/openapi.json", server.base)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.bytes().await.unwrap().to_vec()
}

#[test]
fn committed_document_matches_the_code() {
    let generated = generated();
    if std::env::var("TERN_UPDATE_OPENAPI").is_ok() {
        std::fs::write(COMMITTED, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: run `TERN_UPDATE_OPENAPI=1 cargo test -p tern --test openapi`"
    );
    let doc: Value = serde_json::from_str(&generated).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let description = doc["info"]["description"].as_str().unwrap();
    for (code, _, _) in tern_tenant_api::error::ERROR_CODES {
        assert!(description.contains(&format!("`{code}`")), "{code} is not documented");
    }
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.keys().any(|p| p.starts_with("/v1/")), "no server API path");
    assert!(
        paths.keys().any(|p| p.starts_with("/admin/v1/")),
        "no operator API path"
    );
}

/// The real binary serves the committed file byte for byte, and the snapshot of what it
/// serves is unchanged.
#[tokio::test]
async fn the_served_openapi_document() {
    let served = served_document().await;
    let committed = std::fs::read(COMMITTED).unwrap();
    assert!(
        served == committed,
        "GET /v1/openapi.json differs from docs/openapi.json ({} bytes served, {} committed)",
        served.len(),
        committed.len()
    );
    let served: Value = serde_json::from_slice(&served).unwrap();
    insta::assert_json_snapshot!("openapi_document", served);
}

/// What a generator reads from the served document (server API and operator API), walked as
/// a whole: every operation has an
/// operationId of its own (SDK generators name methods and types after it); a `path`
/// parameter is one the path template names, and each `{name}` of the template is one; a
/// request body does not require `metadata`, which every endpoint that takes it accepts absent.
#[tokio::test]
async fn the_served_document_names_operations_and_parameters_consistently() {
    let doc: Value = serde_json::from_slice(&served_document().await).unwrap();
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        let segments: BTreeSet<&str> = template
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {template}");
            match op["operationId"].as_str() {
                None => problems.push(format!("{at}: no operationId")),
                Some(id) if !ids.insert(id.to_owned()) => problems.push(format!("{at}: operationId {id} repeats")),
                Some(_) => {}
            }
            let mut in_path = BTreeSet::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                if p["in"] == "path" {
                    if !segments.contains(name) {
                        problems.push(format!("{at}: path parameter {name} is not in the template"));
                    }
                    if p["required"] != true {
                        problems.push(format!("{at}: path parameter {name} is not required"));
                    }
                    in_path.insert(name);
                }
            }
            for missing in segments.difference(&in_path) {
                problems.push(format!("{at}: {{{missing}}} is not declared as a path parameter"));
            }
            if let Some(r) = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str() {
                let body = &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")];
                if body["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|f| f == "metadata")
                {
                    problems.push(format!("{at}: {r} requires metadata"));
                }
            }
        }
    }
    assert!(ids.len() >= 80, "{} operations", ids.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
