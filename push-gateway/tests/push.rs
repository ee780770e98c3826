//! The offline push commands over the WebSocket (client.proto 130-139): a phone registers,
//! rotates and removes its own push token, and a user sets their mute and do-not-disturb
//! hours; always as the connected user, with the server API's checks and error codes.
#![allow(clippy::unwrap_used)]

mod support;

use support::*;
use tern_platform::ids::UserId;
use tern_sdk::push::{DndHours, PushSettingsChange, PushToken};

const APNS_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

#[tokio::test]
async fn phones_register_their_tokens_and_users_choose_when_to_be_pushed() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|_| {}).await;
        app.users(&env, &["alice", "bob"]).await;
        let server = env.start(None).await;
        let (alice, _a) = connect(&server.url, &app, "alice", "a").await;
        let (bob, _b) = connect(&server.url, &app, "bob", "b").await;

        let phone = alice
            .register_push_token(&PushToken {
                provider: "apns".into(),
                token: APNS_TOKEN.to_uppercase(),
                environment: Some("sandbox".into()),
                locale: Some("en-GB".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            (
                phone.provider.as_str(),
                phone.token.as_str(),
                phone.environment.as_str()
            ),
            ("apns", APNS_TOKEN, "sandbox"),
            "APNs tokens are kept lowercase"
        );
        let alice_id = UserId::parse("alice").unwrap();
        let stored = server
            .store
            .devices_of(&app.app.id, std::slice::from_ref(&alice_id))
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].id.as_str(), phone.device_id);

        // The same token again is the same device; a rotated token keeps the device id.
        let again = alice
            .register_push_token(&PushToken {
                provider: "apns".into(),
                token: APNS_TOKEN.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(again.device_id, phone.device_id);
        let rotated = alice
            .update_push_token(&phone.device_id, Some(&"0".repeat(64)), None, Some(""))
            .await
            .unwrap();
        assert_eq!(
            (rotated.device_id.as_str(), rotated.token.len()),
            (phone.device_id.as_str(), 64)
        );
        assert_eq!(rotated.locale, None, "an empty locale clears it");

        // Bad input gets the server API's codes; another user's device is not found.
        for (t, why) in [
            (
                PushToken {
                    provider: "pigeon".into(),
                    token: "x".into(),
                    ..Default::default()
                },
                "provider",
            ),
            (
                PushToken {
                    provider: "apns".into(),
                    token: "not-hex".into(),
                    ..Default::default()
                },
                "token",
            ),
        ] {
            let e = alice.register_push_token(&t).await.unwrap_err();
            assert_eq!(e.code(), Some("invalid_argument"), "{why}");
        }
        let e = bob
            .update_push_token(&phone.device_id, Some(&"1".repeat(64)), None, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("not_found"));
        let e = bob.remove_push_token(&phone.device_id).await.unwrap_err();
        assert_eq!(e.code(), Some("not_found"));
        let e = alice.remove_push_token("my-phone").await.unwrap_err();
        assert_eq!(e.code(), Some("not_found"));

        // Mute and do-not-disturb, as the connected user.
        assert_eq!(alice.push_settings().await.unwrap(), Default::default());
        let set = alice
            .update_push_settings(&PushSettingsChange {
                dnd: Some(DndHours {
                    start: "22:30".into(),
                    end: "07:00".into(),
                    utc_offset_minutes: -300,
                }),
                mute: vec!["d:alice:bob".into(), "g:climbers".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(set.muted_conversations, ["d:alice:bob", "g:climbers"]);
        let dnd = set.dnd.clone().unwrap();
        assert_eq!(
            (dnd.start.as_str(), dnd.end.as_str(), dnd.utc_offset_minutes),
            ("22:30", "07:00", -300)
        );
        let stored = server.store.push_settings(&app.app.id, &alice_id).await.unwrap();
        assert_eq!(stored.muted.len(), 2);
        assert_eq!(
            bob.push_settings().await.unwrap(),
            Default::default(),
            "bob's are his own"
        );
        for bad in [
            PushSettingsChange {
                mute: vec!["d:bob:carol".into()],
                ..Default::default()
            },
            PushSettingsChange {
                mute: vec!["r:lobby".into()],
                ..Default::default()
            },
            PushSettingsChange {
                dnd: Some(DndHours {
                    start: "25:00".into(),
                    end: "07:00".into(),
                    utc_offset_minutes: 0,
                }),
                ..Default::default()
            },
            PushSettingsChange {
                dnd: Some(DndHours {
                    start: "22:00".into(),
                    end: "07:00".into(),
                    utc_offset_minutes: 0,
                }),
                clear_dnd: true,
                unmute: vec!["g:climbers".into()],
                ..Default::default()
            },
        ] {
            let e = alice.update_push_settings(&bad).await.unwrap_err();
            assert_eq!(e.code(), Some("invalid_argument"), "{bad:?}");
        }
        assert_eq!(
            alice.push_settings().await.unwrap(),
            set,
            "refused changes changed nothing"
        );
        let cleared = alice
            .update_push_settings(&PushSettingsChange {
                clear_dnd: true,
                unmute: vec!["g:climbers".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(cleared.dnd.is_none());
        assert_eq!(cleared.muted_conversations, ["d:alice:bob"]);

        // Logging out removes the phone.
        alice.remove_push_token(&phone.device_id).await.unwrap();
        assert!(server
            .store
            .devices_of(&app.app.id, std::slice::from_ref(&alice_id))
            .await
            .unwrap()
            .is_empty());
        server.stop().await;
    }
}
