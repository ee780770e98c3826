//! The gRPC twins of the push operations (`tern.server.v1.Push`): devices, credentials,
//! test pushes, the delivery log and a user's mute and do-not-disturb settings give what
//! REST gives, with the same error codes, and an app of another tenant reaches none of it.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{json, Value};
use support::*;
use tern_platform::proto::server_v1 as pb;
use tern_platform::push::double::ProviderDouble;
use tern_platform::push::test_keys;
use tern_tenant_api::grpc::error_code;
use tonic::transport::Channel;

const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "TEAM123456";

fn client(ch: &Channel) -> pb::push_client::PushClient<Channel> {
    pb::push_client::PushClient::new(ch.clone())
}

fn method(name: &str) -> String {
    format!("/tern.server.v1.Push/{name}")
}

fn code(e: &tonic::Status) -> Option<String> {
    error_code(e)
}

async fn grpc_push_matches_rest(
    store: std::sync::Arc<dyn tern_platform::store::Store>,
    dir: Option<tempfile::TempDir>,
) {
    let double = ProviderDouble::start().await.unwrap();
    let (p8, public) = test_keys::p256();
    double.trust_apns_key(KEY_ID, TEAM_ID, &public);
    let config = EngineConfig {
        push: double.push_config(),
        ..Default::default()
    };
    let s = TestServer::start_with(store, dir, config).await;
    let a = s.app("a").await;
    let ch = grpc_channel(&s).await;
    let mut push = client(&ch);
    users(&a.client, &["bob"]).await;

    // Credentials: validated as over REST, listed without the keys.
    let apns = pb::SetApnsCredentialsRequest {
        key_id: KEY_ID.into(),
        team_id: TEAM_ID.into(),
        bundle_id: "com.example.chat".into(),
        private_key: p8.clone(),
    };
    let set = push
        .set_apns_credentials(grpc_signed(&a, &method("SetApnsCredentials"), apns))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.provider, "apns");
    let bad = pb::SetFcmCredentialsRequest {
        service_account_json: "{\"type\": \"service_account\"}".into(),
    };
    let e = push
        .set_fcm_credentials(grpc_signed(&a, &method("SetFcmCredentials"), bad))
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("invalid_push_credentials"), "{e:?}");
    let sa = test_keys::service_account("demo-project", "push@demo-project.iam.gserviceaccount.com");
    let fcm = pb::SetFcmCredentialsRequest {
        service_account_json: sa.to_string(),
    };
    push.set_fcm_credentials(grpc_signed(&a, &method("SetFcmCredentials"), fcm))
        .await
        .unwrap();
    let creds = push
        .list_credentials(grpc_signed(&a, &method("ListCredentials"), pb::Empty {}))
        .await
        .unwrap()
        .into_inner();
    let providers: Vec<&str> = creds.credentials.iter().map(|c| c.provider.as_str()).collect();
    assert_eq!(providers, ["apns", "fcm"]);
    let listed = format!("{creds:?}");
    assert!(listed.contains(KEY_ID) && !listed.contains("PRIVATE KEY"), "{listed}");

    // Devices: registered over gRPC, seen over REST; bad input gets REST's code.
    let reg = pb::RegisterDeviceRequest {
        user_id: "bob".into(),
        provider: "fcm".into(),
        token: "bob-phone".into(),
        locale: Some("en-GB".into()),
        ..Default::default()
    };
    let dev = push
        .register_device(grpc_signed(&a, &method("RegisterDevice"), reg))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((dev.provider.as_str(), dev.environment.as_str()), ("fcm", "production"));
    let rest: Value = a.client.request("GET", "/v1/users/bob/devices", None).await.unwrap();
    assert_eq!(rest["devices"][0]["device_id"], dev.device_id.as_str());
    for (reg, want) in [
        (
            pb::RegisterDeviceRequest {
                user_id: "bob".into(),
                provider: "pigeon".into(),
                token: "x".into(),
                ..Default::default()
            },
            "invalid_argument",
        ),
        (
            pb::RegisterDeviceRequest {
                user_id: "nobody".into(),
                provider: "fcm".into(),
                token: "y".into(),
                ..Default::default()
            },
            "not_found",
        ),
    ] {
        let e = push
            .register_device(grpc_signed(&a, &method("RegisterDevice"), reg))
            .await
            .unwrap_err();
        assert_eq!(code(&e).as_deref(), Some(want), "{e:?}");
    }
    let upd = pb::UpdateDeviceRequest {
        user_id: "bob".into(),
        device_id: dev.device_id.clone(),
        locale: Some("de-DE".into()),
        ..Default::default()
    };
    let changed = push
        .update_device(grpc_signed(&a, &method("UpdateDevice"), upd))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.locale.as_deref(), Some("de-DE"));

    // A test push reports the provider's answer, and the log has it.
    let which = pb::DeviceRequest {
        user_id: "bob".into(),
        device_id: dev.device_id.clone(),
    };
    let tested = push
        .test_push(grpc_signed(&a, &method("TestPush"), which.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((tested.outcome.as_str(), tested.http_status), ("sent", 200));
    let q = pb::PushLogRequest {
        device_id: dev.device_id.clone(),
        ..Default::default()
    };
    let log = push.log(grpc_signed(&a, &method("Log"), q)).await.unwrap().into_inner();
    assert_eq!(log.entries.len(), 1);
    assert_eq!(log.entries[0].id, tested.id);
    assert!(log.next_cursor.is_empty());
    let bad_q = pb::PushLogRequest {
        msg_id: "not a message id".into(),
        ..Default::default()
    };
    let e = push.log(grpc_signed(&a, &method("Log"), bad_q)).await.unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("invalid_argument"));

    // Mute and do-not-disturb: set over gRPC, read over REST; contradictions refused.
    let change = pb::UpdatePushSettingsRequest {
        user_id: "bob".into(),
        dnd: Some(pb::DoNotDisturb {
            start: "22:00".into(),
            end: "07:00".into(),
            utc_offset_minutes: 60,
        }),
        mute: vec!["g:climbers".into()],
        ..Default::default()
    };
    let now = push
        .update_settings(grpc_signed(&a, &method("UpdateSettings"), change))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.muted_conversations, ["g:climbers"]);
    let rest: Value = a
        .client
        .request("GET", "/v1/users/bob/push-settings", None)
        .await
        .unwrap();
    assert_eq!(
        rest,
        json!({"dnd": {"start": "22:00", "end": "07:00", "utc_offset_minutes": 60}, "muted_conversations": ["g:climbers"]})
    );
    for bad in [
        pb::UpdatePushSettingsRequest {
            user_id: "bob".into(),
            dnd: Some(pb::DoNotDisturb {
                start: "22:00".into(),
                end: "07:00".into(),
                utc_offset_minutes: 0,
            }),
            clear_dnd: true,
            ..Default::default()
        },
        pb::UpdatePushSettingsRequest {
            user_id: "bob".into(),
            dnd: Some(pb::DoNotDisturb {
                start: "7pm".into(),
                end: "07:00".into(),
                utc_offset_minutes: 0,
            }),
            ..Default::default()
        },
        pb::UpdatePushSettingsRequest {
            user_id: "bob".into(),
            mute: vec!["r:lobby".into()],
            unmute: vec!["g:climbers".into()],
            ..Default::default()
        },
    ] {
        let e = push
            .update_settings(grpc_signed(&a, &method("UpdateSettings"), bad))
            .await
            .unwrap_err();
        assert_eq!(code(&e).as_deref(), Some("invalid_argument"), "{e:?}");
    }
    let cleared = push
        .update_settings(grpc_signed(
            &a,
            &method("UpdateSettings"),
            pb::UpdatePushSettingsRequest {
                user_id: "bob".into(),
                clear_dnd: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(cleared.dnd.is_none());
    assert_eq!(
        cleared.muted_conversations,
        ["g:climbers"],
        "a refused change changed nothing"
    );

    // Another tenant's app reaches none of this app's users, devices, log or settings.
    let stranger = s.app_in_new_tenant("elsewhere").await;
    let bob = pb::UserRequest { user_id: "bob".into() };
    let e = push
        .get_settings(grpc_signed(&stranger, &method("GetSettings"), bob.clone()))
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("not_found"));
    let e = push
        .remove_device(grpc_signed(&stranger, &method("RemoveDevice"), which.clone()))
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("not_found"));
    let theirs = push
        .log(grpc_signed(&stranger, &method("Log"), pb::PushLogRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.entries.is_empty());
    let theirs = push
        .list_credentials(grpc_signed(&stranger, &method("ListCredentials"), pb::Empty {}))
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.credentials.is_empty());

    // Removal: the device and the FCM credentials go.
    push.remove_device(grpc_signed(&a, &method("RemoveDevice"), which))
        .await
        .unwrap();
    let left = push
        .list_devices(grpc_signed(&a, &method("ListDevices"), bob))
        .await
        .unwrap()
        .into_inner();
    assert!(left.devices.is_empty());
    push.delete_credentials(grpc_signed(
        &a,
        &method("DeleteCredentials"),
        pb::DeletePushCredentialsRequest { provider: "fcm".into() },
    ))
    .await
    .unwrap();
    let e = push
        .delete_credentials(grpc_signed(
            &a,
            &method("DeleteCredentials"),
            pb::DeletePushCredentialsRequest {
                provider: "carrier-pigeon".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(code(&e).as_deref(), Some("invalid_argument"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_over_grpc_matches_rest() {
    for (backend, store, dir) in stores().await {
        eprintln!("push_over_grpc_matches_rest on {backend}");
        grpc_push_matches_rest(store, dir).await;
    }
}
