//! The files commands over the WebSocket (client.proto 120-129): a user announces an
//! upload as themselves, and gets a download URL only for a file they uploaded or that was
//! sent in a conversation they are in.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use serde_json::json;
use support::*;
use tern_platform::delivery::{Recipient, SendOptions, SendRequest};
use tern_platform::domain::{MessageType, Sender, Source};
use tern_platform::files::{memory, Files, FilesConfig, UrlGrant, UrlSigner};
use tern_platform::ids::{FileId, UserId};

#[tokio::test]
async fn users_upload_as_themselves_and_only_members_get_download_urls() {
    for (backend, env) in Env::all().await {
        eprintln!("on {backend}");
        let app = env.app(|_| {}).await;
        app.users(&env, &["alice", "bob", "carol"]).await;
        let server = env
            .start_with(
                None,
                tern_push_gateway::GatewayConfig {
                    public_url: Some("https://chat.example".into()),
                    ..Env::config()
                },
            )
            .await;
        let (alice, _a) = connect(&server.url, &app, "alice", "a").await;
        let (carol, _c) = connect(&server.url, &app, "carol", "c").await;
        let data = b"a voice note".to_vec();

        // Before the node hands the gateway its files: unavailable, not a crash.
        let e = alice.create_upload("n.ogg", "audio/ogg", &data).await.unwrap_err();
        assert_eq!(e.code(), Some("unavailable"));

        let files = Arc::new(Files::new(
            server.store.clone(),
            memory::open(),
            UrlSigner::new([5; 32]),
            FilesConfig::default(),
        ));
        server.gateway.use_files(files.clone());
        let t = alice.create_upload("note.ogg", "audio/ogg", &data).await.unwrap();
        assert!(
            t.upload_url
                .starts_with(&format!("https://chat.example/v1/uploads/{}?", t.file_id)),
            "{}",
            t.upload_url
        );
        // The bytes arrive (the tus endpoint is the server API's; here the platform call).
        let id = FileId::parse(&t.file_id).unwrap();
        let grant: UrlGrant = serde_urlencoded::from_str(t.upload_url.split_once('?').unwrap().1).unwrap();
        let body = futures::stream::iter([Ok(bytes::Bytes::from(data.clone()))]);
        files.append(&id, &grant, 0, None, Box::pin(body)).await.unwrap();

        // Alice sends it to bob; bob gets a URL, carol does not.
        let sent = server
            .pipeline
            .send(
                &app.app,
                SendRequest {
                    sender: Sender::User(UserId::parse("alice").unwrap()),
                    to: Recipient::User(UserId::parse("bob").unwrap()),
                    client_msg_id: None,
                    msg_type: MessageType::Audio,
                    content: json!({"file_id": t.file_id, "duration_ms": 1200}),
                    source: Source::Sdk,
                    options: SendOptions::default(),
                },
            )
            .await
            .unwrap();
        assert!(sent.seq >= 1);
        let (bob, _b) = connect(&server.url, &app, "bob", "b").await;
        let u = bob.file_url(&t.file_id).await.unwrap();
        assert_eq!(
            (u.name.as_str(), u.content_type.as_str(), u.size),
            ("note.ogg", "audio/ogg", 12)
        );
        assert!(u
            .url
            .starts_with(&format!("https://chat.example/v1/files/{}/content?", t.file_id)));
        assert!(alice.file_url(&t.file_id).await.is_ok());
        assert_eq!(carol.file_url(&t.file_id).await.unwrap_err().code(), Some("not_found"));
        assert_eq!(
            carol.file_url("../etc/passwd").await.unwrap_err().code(),
            Some("not_found")
        );

        // Bad announcements have their codes.
        let e = alice.create_upload("../x", "audio/ogg", &data).await.unwrap_err();
        assert_eq!(e.code(), Some("invalid_argument"));
        let e = alice.create_upload("x.ogg", "not a type", &data).await.unwrap_err();
        assert_eq!(e.code(), Some("invalid_argument"));
        let e = alice.create_upload("x.ogg", "audio/ogg", &[]).await.unwrap_err();
        assert_eq!(e.code(), Some("invalid_argument"));
        server.stop().await;
    }
}
