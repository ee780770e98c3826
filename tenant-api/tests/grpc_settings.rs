//! The gRPC twins of `/v1/app/settings` and `/v1/webhook`: the same values, checks and error
//! codes as REST, each app seeing only its own.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{json, Value};
use support::*;
use tern_platform::proto::server_v1 as pb;
use tern_tenant_api::grpc::error_code;

fn codes(e: &tonic::Status) -> (tonic::Code, Option<String>) {
    (e.code(), error_code(e))
}

type Apps = pb::apps_client::AppsClient<tonic::transport::Channel>;

/// A server with two apps, and a gRPC `Apps` client to it.
async fn two_apps() -> (TestServer, TestApp, TestApp, Apps) {
    let (_, store, dir) = stores().await.into_iter().next().unwrap();
    let s = TestServer::start(store, dir).await;
    let apps = Apps::new(grpc_channel(&s).await);
    let a = s.app("a").await;
    let b = s.app("b").await;
    (s, a, b, apps)
}

async fn get_settings(apps: &mut Apps, app: &TestApp) -> pb::AppSettings {
    apps.get_app_settings(grpc_signed(app, "/tern.server.v1.Apps/GetAppSettings", pb::Empty {}))
        .await
        .unwrap()
        .into_inner()
}

async fn update_settings(
    apps: &mut Apps,
    app: &TestApp,
    update: pb::UpdateAppSettingsRequest,
) -> Result<pb::AppSettings, tonic::Status> {
    apps.update_app_settings(grpc_signed(app, "/tern.server.v1.Apps/UpdateAppSettings", update))
        .await
        .map(tonic::Response::into_inner)
}

/// The app's settings as REST shows them now (this node's cached copy of the app dropped).
async fn rest_settings(s: &TestServer, app: &TestApp) -> Value {
    s.forget_credentials(&app.app.app_key);
    app.client.request("GET", "/v1/app/settings", None).await.unwrap()
}

#[tokio::test]
async fn app_settings_over_grpc_match_rest() {
    let (s, a, b, mut apps) = two_apps().await;

    let got = get_settings(&mut apps, &a).await;
    let rest: Value = a.client.request("GET", "/v1/app/settings", None).await.unwrap();
    assert_eq!(got.max_sessions_web as i64, rest["max_sessions_web"].as_i64().unwrap());
    assert_eq!(
        got.recall_window_seconds,
        rest["recall_window_seconds"].as_i64().unwrap()
    );
    assert!(!got.friendship_required_for_direct);

    // Only the fields set change; REST sees the change, the other app does not.
    let update = pb::UpdateAppSettingsRequest {
        friendship_required_for_direct: Some(true),
        room_backlog: Some(7),
        ..Default::default()
    };
    let updated = update_settings(&mut apps, &a, update).await.unwrap();
    assert!(updated.friendship_required_for_direct);
    assert_eq!(updated.room_backlog, 7);
    assert_eq!(updated.max_sessions_web, got.max_sessions_web);
    let rest = rest_settings(&s, &a).await;
    assert_eq!(rest["friendship_required_for_direct"], true);
    assert_eq!(rest["room_backlog"], 7);
    let other: Value = b.client.request("GET", "/v1/app/settings", None).await.unwrap();
    assert_eq!(other["friendship_required_for_direct"], false);

    // Out of range: refused with the REST code, nothing changed.
    let bad = pb::UpdateAppSettingsRequest {
        max_sessions_web: Some(0),
        room_backlog: Some(1),
        ..Default::default()
    };
    let e = update_settings(&mut apps, &a, bad).await.unwrap_err();
    assert_eq!(
        codes(&e),
        (tonic::Code::InvalidArgument, Some("invalid_argument".into()))
    );
    let rest = rest_settings(&s, &a).await;
    assert_eq!(rest["room_backlog"], 7);

    // Unsigned.
    let e = apps.get_app_settings(pb::Empty {}).await.unwrap_err();
    assert_eq!(
        codes(&e),
        (tonic::Code::Unauthenticated, Some("missing_credentials".into()))
    );
}

#[tokio::test]
async fn the_push_policy_over_grpc_matches_rest() {
    let (s, a, b, mut apps) = two_apps().await;

    let got = get_settings(&mut apps, &a).await;
    let push = got.push.unwrap();
    assert_eq!(
        (push.show_preview, push.badge, push.mention_only_group_size),
        (Some(true), Some(true), 0),
        "the defaults"
    );
    assert!(push.templates.is_empty());

    // A new policy: no preview, mention-only above 50 members, a text template; the badge
    // unset keeps its default, as an absent JSON field does over REST.
    let mut templates = std::collections::HashMap::new();
    templates.insert(
        "text".to_owned(),
        pb::PushTemplate {
            title: Some("{sender} in {group}".into()),
            body: None,
        },
    );
    let update = pb::UpdateAppSettingsRequest {
        push: Some(pb::AppPushSettings {
            show_preview: Some(false),
            badge: None,
            mention_only_group_size: 50,
            templates,
        }),
        ..Default::default()
    };
    let updated = update_settings(&mut apps, &a, update).await.unwrap();
    let push = updated.push.unwrap();
    assert_eq!(
        (push.show_preview, push.badge, push.mention_only_group_size),
        (Some(false), Some(true), 50)
    );
    assert_eq!(push.templates["text"].title.as_deref(), Some("{sender} in {group}"));
    assert_eq!(push.templates["text"].body, None);
    let rest = rest_settings(&s, &a).await;
    assert_eq!(
        rest["push"],
        json!({"show_preview": false, "badge": true, "mention_only_group_size": 50,
               "templates": {"text": {"title": "{sender} in {group}", "body": null}}})
    );
    let other: Value = b.client.request("GET", "/v1/app/settings", None).await.unwrap();
    assert_eq!(other["push"]["show_preview"], true, "the other app keeps its own");

    // Another setting alone leaves the push policy as it is.
    let unrelated = pb::UpdateAppSettingsRequest {
        room_backlog: Some(9),
        ..Default::default()
    };
    let kept = update_settings(&mut apps, &a, unrelated).await.unwrap();
    assert_eq!(kept.push.unwrap().mention_only_group_size, 50);

    // A template with a placeholder the platform does not fill: REST's code, nothing changed.
    let mut bad_templates = std::collections::HashMap::new();
    bad_templates.insert(
        "text".to_owned(),
        pb::PushTemplate {
            title: Some("{password}".into()),
            body: None,
        },
    );
    let bad = pb::UpdateAppSettingsRequest {
        push: Some(pb::AppPushSettings {
            templates: bad_templates,
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = update_settings(&mut apps, &a, bad).await.unwrap_err();
    assert_eq!(
        codes(&e),
        (tonic::Code::InvalidArgument, Some("invalid_argument".into()))
    );
    let rest = rest_settings(&s, &a).await;
    assert_eq!(rest["push"]["mention_only_group_size"], 50);
    assert_eq!(rest["push"]["show_preview"], false);
}

#[tokio::test]
async fn webhook_configuration_and_dead_events_over_grpc() {
    let (_, store, dir) = stores().await.into_iter().next().unwrap();
    let config = EngineConfig {
        webhook_allow_private: true,
        ..Default::default()
    };
    let s = TestServer::start_with(store, dir, config).await;
    let ch = grpc_channel(&s).await;
    let a = s.app("a").await;
    let b = s.app("b").await;
    let mut hooks = pb::webhooks_client::WebhooksClient::new(ch);

    let none = hooks
        .get_webhook(grpc_signed(&a, "/tern.server.v1.Webhooks/GetWebhook", pb::Empty {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.config.unwrap().url, None);

    // Zero timeout and empty policy take the defaults, as missing JSON fields do.
    let set = pb::WebhookConfig {
        url: Some("http://127.0.0.1:9/hook".into()),
        events: vec!["message.sent".into()],
        before_send: Some(pb::BeforeSendConfig {
            enabled: true,
            ..Default::default()
        }),
    };
    let answer = hooks
        .set_webhook(grpc_signed(&a, "/tern.server.v1.Webhooks/SetWebhook", set))
        .await
        .unwrap()
        .into_inner();
    let cfg = answer.config.unwrap();
    let before = cfg.before_send.unwrap();
    assert_eq!((before.timeout_ms, before.policy.as_str()), (1500, "fail_open"));
    s.forget_credentials(&a.app.app_key);
    let rest: Value = a.client.webhook().await.unwrap();
    assert_eq!(
        rest["config"],
        json!({"url": "http://127.0.0.1:9/hook", "events": ["message.sent"],
               "before_send": {"enabled": true, "sources": [], "types": [], "timeout_ms": 1500, "policy": "fail_open"}})
    );
    let other: Value = b.client.webhook().await.unwrap();
    assert!(other["config"]["url"].is_null(), "another app's webhook is its own");

    // The checks of REST: an unknown event, a bad scheme.
    for bad in [
        pb::WebhookConfig {
            url: Some("http://127.0.0.1:9/hook".into()),
            events: vec!["no.such".into()],
            before_send: None,
        },
        pb::WebhookConfig {
            url: Some("ftp://example.com/x".into()),
            ..Default::default()
        },
    ] {
        let e = hooks
            .set_webhook(grpc_signed(&a, "/tern.server.v1.Webhooks/SetWebhook", bad))
            .await
            .unwrap_err();
        assert_eq!(
            codes(&e),
            (tonic::Code::InvalidArgument, Some("invalid_argument".into()))
        );
    }

    let dead = hooks
        .list_dead_events(grpc_signed(
            &a,
            "/tern.server.v1.Webhooks/ListDeadEvents",
            pb::ListDeadEventsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(dead.events.is_empty() && dead.next_cursor.is_empty());
    let e = hooks
        .list_dead_events(grpc_signed(
            &a,
            "/tern.server.v1.Webhooks/ListDeadEvents",
            pb::ListDeadEventsRequest {
                cursor: "not a cursor".into(),
                limit: 10,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = hooks
        .redeliver_event(grpc_signed(
            &a,
            "/tern.server.v1.Webhooks/RedeliverEvent",
            pb::RedeliverEventRequest {
                event_id: "wh_nope".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(codes(&e), (tonic::Code::NotFound, Some("not_found".into())));
}
