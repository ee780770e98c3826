//! The gRPC server API over a real socket: signed calls, the same answers as REST, errors as
//! statuses carrying the stable code, health and reflection.
#![allow(clippy::unwrap_used)]

mod support;

use support::*;
use tern_platform::proto::server_v1 as pb;
use tern_tenant_api::grpc::error_code;
use tonic::transport::Channel;

async fn start() -> (TestServer, Channel) {
    let (_, store, dir) = stores().await.into_iter().next().unwrap();
    let s = TestServer::start(store, dir).await;
    let channel = grpc_channel(&s).await;
    (s, channel)
}

#[tokio::test]
async fn signed_calls_work_and_match_rest() {
    let (s, ch) = start().await;
    let a = s.app("a").await;
    let mut users = pb::users_client::UsersClient::new(ch.clone());
    let mut messages = pb::messages_client::MessagesClient::new(ch.clone());
    let up = pb::UpsertUsersRequest {
        users: vec![
            pb::UserInput {
                id: "alice".into(),
                name: Some("Alice".into()),
                ..Default::default()
            },
            pb::UserInput {
                id: "bob".into(),
                ..Default::default()
            },
        ],
    };
    let r = users
        .upsert_users(grpc_signed(&a, "/tern.server.v1.Users/UpsertUsers", up))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.users.len(), 2);
    let u = users
        .get_user(grpc_signed(
            &a,
            "/tern.server.v1.Users/GetUser",
            pb::GetUserRequest {
                user_id: "alice".into(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(u.get_ref().name, "Alice");
    assert!(!u.get_ref().online);

    let content = tern_tenant_api::grpc_struct(serde_json::json!({"text": "over grpc"}));
    let send = pb::SendRequest {
        from: Some("alice".into()),
        to: Some(pb::Target {
            to: Some(pb::target::To::User("bob".into())),
        }),
        client_msg_id: "g1".into(),
        r#type: "text".into(),
        content,
        ..Default::default()
    };
    let sent = messages
        .send(grpc_signed(&a, "/tern.server.v1.Messages/Send", send.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((sent.conversation_id.as_str(), sent.seq), ("d:alice:bob", 1));
    let again = messages
        .send(grpc_signed(&a, "/tern.server.v1.Messages/Send", send))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, sent, "idempotent on client_msg_id, as over REST");
    // The REST door sees what the gRPC door sent.
    let h = a.client.history("d:alice:bob", 0, 10).await.unwrap();
    assert_eq!(h[0].content["text"], "over grpc");
    let h = messages
        .history(grpc_signed(
            &a,
            "/tern.server.v1.Messages/History",
            pb::HistoryRequest {
                conversation_id: "d:alice:bob".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.messages.len(), 1);
    assert_eq!(h.messages[0].msg_id, sent.msg_id);
}

#[tokio::test]
async fn errors_are_statuses_with_the_stable_code() {
    let (s, ch) = start().await;
    let a = s.app("a").await;
    let b = s.app("b").await;
    let mut users = pb::users_client::UsersClient::new(ch.clone());
    let get = |app: &TestApp, id: &str| {
        grpc_signed(
            app,
            "/tern.server.v1.Users/GetUser",
            pb::GetUserRequest { user_id: id.into() },
        )
    };

    let e = users.get_user(get(&a, "nobody")).await.unwrap_err();
    assert_eq!(
        (e.code(), error_code(&e).as_deref()),
        (tonic::Code::NotFound, Some("not_found"))
    );
    let e = users.get_user(get(&a, "bad id")).await.unwrap_err();
    assert_eq!(
        (e.code(), error_code(&e).as_deref()),
        (tonic::Code::InvalidArgument, Some("invalid_argument"))
    );
    // Unsigned.
    let e = users
        .get_user(pb::GetUserRequest { user_id: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), error_code(&e).as_deref()),
        (tonic::Code::Unauthenticated, Some("missing_credentials"))
    );
    // Signed for one message, sent with another.
    let mut forged = get(&a, "alice");
    forged.get_mut().user_id = "mallory".into();
    let e = users.get_user(forged).await.unwrap_err();
    assert_eq!(
        (e.code(), error_code(&e).as_deref()),
        (tonic::Code::Unauthenticated, Some("bad_signature"))
    );
    // Signed for another method path.
    let wrong_path = grpc_signed(
        &a,
        "/tern.server.v1.Users/DeleteUser",
        pb::GetUserRequest {
            user_id: "alice".into(),
        },
    );
    let e = users.get_user(wrong_path).await.unwrap_err();
    assert_eq!(error_code(&e).as_deref(), Some("bad_signature"));
    // A replay.
    let once = get(&a, "nobody");
    let replay = tonic::Request::from_parts(
        once.metadata().clone(),
        Default::default(),
        pb::GetUserRequest {
            user_id: "nobody".into(),
        },
    );
    users.get_user(once).await.unwrap_err();
    let e = users.get_user(replay).await.unwrap_err();
    assert_eq!(error_code(&e).as_deref(), Some("nonce_reused"));
    // App B cannot see app A's user.
    a.client.create_user("alice", "Alice").await.unwrap();
    assert!(users.get_user(get(&a, "alice")).await.is_ok());
    let e = users.get_user(get(&b, "alice")).await.unwrap_err();
    assert_eq!(error_code(&e).as_deref(), Some("not_found"));
}

#[tokio::test]
async fn health_and_reflection_answer_without_signing() {
    let (_s, ch) = start().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let r = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "tern.server.v1.Messages".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut refl = ServerReflectionClient::new(ch);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(futures::stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("no service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "tern.server.v1.Users",
        "tern.server.v1.Messages",
        "tern.server.v1.Groups",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
}

#[tokio::test]
async fn broadcasts_run_over_grpc_and_stay_in_their_app() {
    let (s, ch) = start().await;
    let a = s.app("a").await;
    let b = s.app("b").await;
    a.client.create_user("u1", "U1").await.unwrap();
    a.client.create_user("u2", "U2").await.unwrap();
    let mut bc = pb::broadcasts_client::BroadcastsClient::new(ch);
    let start = pb::StartBroadcastRequest {
        r#type: "text".into(),
        content: tern_tenant_api::grpc_struct(serde_json::json!({"text": "maintenance at noon"})),
        client_msg_id: String::new(),
        users: Vec::new(),
    };
    let job = bc
        .start_broadcast(grpc_signed(&a, "/tern.server.v1.Broadcasts/StartBroadcast", start))
        .await
        .unwrap()
        .into_inner();
    let get = |app: &TestApp| {
        grpc_signed(
            app,
            "/tern.server.v1.Broadcasts/GetBroadcast",
            pb::BroadcastRequest {
                broadcast_id: job.id.clone(),
            },
        )
    };
    let mut done = job.clone();
    for _ in 0..100 {
        done = bc.get_broadcast(get(&a)).await.unwrap().into_inner();
        if done.status != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!((done.status.as_str(), done.sent), ("done", 2));
    let e = bc.get_broadcast(get(&b)).await.unwrap_err();
    assert_eq!(error_code(&e).as_deref(), Some("not_found"));
    let bad = pb::StartBroadcastRequest {
        r#type: "system".into(),
        content: None,
        client_msg_id: String::new(),
        users: Vec::new(),
    };
    let e = bc
        .start_broadcast(grpc_signed(&a, "/tern.server.v1.Broadcasts/StartBroadcast", bad))
        .await
        .unwrap_err();
    assert_eq!(error_code(&e).as_deref(), Some("invalid_argument"));
}

/// Every signed call counts for its app, and one that answers an error counts as an error
/// too, over gRPC and REST alike; an unsigned call counts for nobody.
#[tokio::test]
async fn calls_that_answer_an_error_are_counted_per_app() {
    use tern_platform::usage::HOUR_MS;
    let (s, ch) = start().await;
    let a = s.app("a").await;
    let b = s.app("b").await;
    let mut grpc_users = pb::users_client::UsersClient::new(ch.clone());
    let get = |app: &TestApp, id: &str| {
        grpc_signed(
            app,
            "/tern.server.v1.Users/GetUser",
            pb::GetUserRequest { user_id: id.into() },
        )
    };
    users(&a.client, &["alice"]).await; // REST, fine
    grpc_users.get_user(get(&a, "alice")).await.unwrap(); // gRPC, fine
    grpc_users.get_user(get(&a, "nobody")).await.unwrap_err(); // gRPC not_found
    grpc_users.get_user(get(&a, "bad id")).await.unwrap_err(); // gRPC invalid_argument
    assert!(a.client.get_user("nobody").await.is_err()); // REST 404
    grpc_users.get_user(get(&b, "alice")).await.unwrap_err(); // b has no alice
    grpc_users
        .get_user(pb::GetUserRequest { user_id: "x".into() })
        .await
        .unwrap_err(); // unsigned: nobody's

    // What the engine's flusher has not written yet, written now; then read back.
    s.pipeline.usage().flush(s.store.as_ref()).await;
    let now = tern_platform::domain::now_ms();
    let counted = |hours: Vec<tern_platform::usage::UsageHour>| {
        hours
            .iter()
            .fold((0, 0), |(c, e), h| (c + h.counts.api_calls, e + h.counts.errors))
    };
    let of = |app: &TestApp| app.app.id.clone();
    let hours = s.store.usage(&of(&a), now - 2 * HOUR_MS, now + HOUR_MS).await.unwrap();
    assert_eq!(counted(hours), (5, 3));
    let hours = s.store.usage(&of(&b), now - 2 * HOUR_MS, now + HOUR_MS).await.unwrap();
    assert_eq!(counted(hours), (1, 1));
    assert_eq!(
        s.store.minute_usage(&of(&a), now - HOUR_MS).await.unwrap(),
        (5, 3),
        "per minute too"
    );
}
