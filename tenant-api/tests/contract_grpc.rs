//! The gRPC contract: error statuses (code, message and the `google.rpc.ErrorInfo` carrying
//! the stable code) pinned by a snapshot, and the tooling every client relies on: server
//! reflection in both versions (v1 and v1alpha) with the health service described, driven
//! both from Rust and by a real `grpcurl` binary.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::*;
use tern_platform::proto::server_v1 as pb;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// A gRPC server API on its own port: the test server, a channel, and the address.
async fn start() -> (TestServer, Channel, String) {
    let (_, store, dir) = stores().await.into_iter().next().unwrap();
    let s = TestServer::start(store, dir).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(tern_tenant_api::grpc::serve(
        listener,
        s.api_state(),
        tokio_util::sync::CancellationToken::new(),
    ));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (s, channel, addr)
}

/// A status as a client sees it, minus nothing: the snapshot holds all of it.
fn status_view(case: &str, s: &tonic::Status) -> Value {
    let details = s.get_error_details();
    let info = details
        .error_info()
        .map(|i| json!({"reason": i.reason, "domain": i.domain, "metadata": i.metadata}));
    json!({"case": case, "code": format!("{:?}", s.code()), "message": s.message(), "error_info": info})
}

#[tokio::test]
async fn error_statuses() {
    let (s, ch, _) = start().await;
    let a = s.app("a").await;
    a.client
        .upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
        .await
        .unwrap();
    let mut users = pb::users_client::UsersClient::new(ch.clone());
    let mut groups = pb::groups_client::GroupsClient::new(ch.clone());
    let get = |id: &str| {
        grpc_signed(
            &a,
            "/tern.server.v1.Users/GetUser",
            pb::GetUserRequest { user_id: id.into() },
        )
    };
    let mut seen = Vec::new();

    let e = users
        .get_user(pb::GetUserRequest {
            user_id: "alice".into(),
        })
        .await
        .unwrap_err();
    seen.push(status_view("unsigned call", &e));
    let mut forged = get("alice");
    forged.get_mut().user_id = "bob".into();
    let e = users.get_user(forged).await.unwrap_err();
    seen.push(status_view("signed for another message", &e));
    let once = get("alice");
    let replay = tonic::Request::from_parts(
        once.metadata().clone(),
        Default::default(),
        pb::GetUserRequest {
            user_id: "alice".into(),
        },
    );
    users.get_user(once).await.unwrap();
    let e = users.get_user(replay).await.unwrap_err();
    seen.push(status_view("replayed call", &e));
    let e = users.get_user(get("nobody")).await.unwrap_err();
    seen.push(status_view("unknown user", &e));
    let e = users.get_user(get("bad id")).await.unwrap_err();
    seen.push(status_view("malformed user id", &e));
    let create = |id: &str| {
        grpc_signed(
            &a,
            "/tern.server.v1.Groups/CreateGroup",
            pb::CreateGroupRequest {
                id: id.into(),
                name: "Team".into(),
                owner: "alice".into(),
                members: vec!["bob".into()],
                ..Default::default()
            },
        )
    };
    groups.create_group(create("team")).await.unwrap();
    let e = groups.create_group(create("team")).await.unwrap_err();
    seen.push(status_view("group id taken", &e));

    for view in &seen {
        assert_eq!(view["error_info"]["domain"], "tern", "{view}");
    }
    insta::assert_json_snapshot!("grpc_error_statuses", seen);
}

#[tokio::test]
async fn reflection_v1alpha_lists_the_services_and_health() {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;

    let (_s, ch, _) = start().await;
    let mut refl = ServerReflectionClient::new(ch);
    let ask = |m: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    };
    let requests = vec![
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol("grpc.health.v1.Health".into())),
    ];
    let mut stream = refl
        .server_reflection_info(futures::stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let listed = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
        panic!("no service list: {listed:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "tern.server.v1.Users",
        "tern.server.v1.Messages",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    let health = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = health.message_response else {
        panic!("the health service is not described: {health:?}")
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

/// The grpcurl binary: `TERN_TEST_GRPCURL`, else `grpcurl` on PATH. Without one the test is
/// skipped with a printed line, unless `TERN_TEST_REQUIRE_SERVICES=1` (CI installs it).
fn grpcurl() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TERN_TEST_GRPCURL").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("grpcurl"))
            .find(|p| p.is_file())
    });
    if on_path.is_none() {
        let message = "skipped: no grpcurl (set TERN_TEST_GRPCURL or put grpcurl on PATH)";
        if std::env::var("TERN_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{message} (and TERN_TEST_REQUIRE_SERVICES=1)");
        }
        println!("{message}");
    }
    on_path
}

/// Runs grpcurl off the async runtime and returns its standard output; a failure fails.
async fn run(grpcurl: &Path, args: Vec<String>) -> String {
    let bin = grpcurl.to_path_buf();
    let out = tokio::task::spawn_blocking(move || Command::new(bin).args(&args).output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "grpcurl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_services_and_checks_health() {
    let Some(grpcurl) = grpcurl() else { return };
    let (_s, _ch, addr) = start().await;
    let plain = |rest: &[&str]| {
        let mut args = vec!["-plaintext".to_owned(), addr.clone()];
        args.extend(rest.iter().map(|s| s.to_string()));
        args
    };
    let listed = run(&grpcurl, plain(&["list"])).await;
    let names: Vec<&str> = listed.lines().map(str::trim).collect();
    for want in [
        "tern.server.v1.Users",
        "tern.server.v1.Messages",
        "tern.server.v1.Groups",
        "tern.server.v1.Friends",
        "grpc.health.v1.Health",
    ] {
        assert!(names.contains(&want), "{want} missing from `grpcurl list`: {listed}");
    }
    let health: Value = serde_json::from_str(&run(&grpcurl, plain(&["grpc.health.v1.Health/Check"])).await).unwrap();
    assert_eq!(health, json!({"status": "SERVING"}));
    let described = run(&grpcurl, plain(&["describe", "tern.server.v1.Users"])).await;
    assert!(described.contains("rpc GetUser"), "{described}");
}
