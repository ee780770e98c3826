//! Each node's group member snapshots, with two nodes (two pipelines) on one database, on
//! SQLite and (when configured) PostgreSQL: a node reuses its snapshot while the group is
//! unchanged, and sees a change made on the other node with its next use: a member removed
//! there is not in the fan-out list here, with no time to wait out.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::json;
use tern_platform::bus::memory::MemoryBus;
use tern_platform::delivery::{Actor, Pipeline, PipelineConfig, Recipient, SendOptions, SendRequest};
use tern_platform::domain::*;
use tern_platform::groups::{self, GroupSpec};
use tern_platform::ids::*;
use tern_platform::presence::MemoryPresence;
use tern_platform::store::{testing, NewApp, Store};

fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

async fn app(store: &dyn Store) -> App {
    let tenant = Tenant {
        id: TenantId::generate(),
        name: format!("t-{}", rand::random::<u64>()),
        status: TenantStatus::Active,
        created_at: now_ms(),
    };
    store.create_tenant(&tenant).await.unwrap();
    let id = AppId::generate();
    let app = store
        .create_app(&NewApp {
            first_secret: AppSecretRecord {
                id: SecretId::generate(),
                app_id: id.clone(),
                ciphertext: vec![1],
                created_at: now_ms(),
                expires_at: None,
            },
            id,
            tenant_id: tenant.id,
            name: "app".into(),
            app_key: AppKey::generate(),
            settings: AppSettings::default(),
            webhook_secret_ciphertext: vec![2],
        })
        .await
        .unwrap();
    let users: Vec<(UserId, UserProfile)> = ["ann", "ben", "cy"]
        .iter()
        .map(|u| (uid(u), UserProfile::default()))
        .collect();
    store.upsert_users(&app.id, &users, now_ms()).await.unwrap();
    app
}

fn node(store: &Arc<dyn Store>) -> Pipeline {
    Pipeline::new(
        store.clone(),
        Arc::new(MemoryBus::new()),
        Arc::new(MemoryPresence::new()),
        PipelineConfig::default(),
    )
}

async fn two_nodes_one_database(store: Arc<dyn Store>) {
    let app = app(&*store).await;
    let (a, b) = (node(&store), node(&store));
    let g = GroupId::parse("g").unwrap();
    groups::create(
        &a,
        &app,
        &Actor::Server,
        GroupSpec {
            id: Some(g.clone()),
            name: "G".into(),
            owner: uid("ann"),
            members: vec![uid("ben"), uid("cy")],
            metadata: json!({}),
            avatar_url: None,
            announcement: String::new(),
            join_policy: JoinPolicy::Approval,
        },
    )
    .await
    .unwrap();

    let first = a.group_snapshot(&app, &g).await.unwrap();
    assert_eq!(first.ids(), [uid("ann"), uid("ben"), uid("cy")]);
    let again = a.group_snapshot(&app, &g).await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "unchanged: the snapshot is reused, members not read again"
    );
    // Sends check the snapshot too: ben may send, a stranger may not.
    let send = |from: &str| SendRequest {
        sender: Sender::User(uid(from)),
        to: Recipient::Group(g.clone()),
        client_msg_id: None,
        msg_type: MessageType::Text,
        content: json!({"text": "hi"}),
        source: Source::ServerApi,
        options: SendOptions::default(),
    };
    a.send(&app, send("ben")).await.unwrap();

    // Node B removes ben and mutes cy; node A sees both on its next use.
    groups::remove_member(&b, &app, &Actor::Server, &g, &uid("ben"))
        .await
        .unwrap();
    groups::mute_member(&b, &app, &Actor::Server, &g, &uid("cy"), Some(FOREVER))
        .await
        .unwrap();
    let now = a.group_snapshot(&app, &g).await.unwrap();
    assert_eq!(now.ids(), [uid("ann"), uid("cy")]);
    assert_eq!(now.member(&uid("cy")).unwrap().muted_until, Some(FOREVER));
    assert_eq!(a.send(&app, send("ben")).await.unwrap_err().code(), "forbidden");
    assert_eq!(a.send(&app, send("cy")).await.unwrap_err().code(), "member_muted");
    // A profile change on B (mute_all) is seen on A as well.
    groups::mute_member(&b, &app, &Actor::Server, &g, &uid("cy"), None)
        .await
        .unwrap();
    groups::update(
        &b,
        &app,
        &Actor::Server,
        &g,
        GroupPatch {
            mute_all: Some(true),
            ..GroupPatch::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(a.send(&app, send("cy")).await.unwrap_err().code(), "group_muted");
    a.send(&app, send("ann")).await.unwrap();
    // Dismissed on B: not found on A.
    groups::dismiss(&b, &app, &Actor::Server, &g).await.unwrap();
    assert_eq!(a.group_snapshot(&app, &g).await.unwrap_err().code(), "not_found");
    assert_eq!(a.send(&app, send("ann")).await.unwrap_err().code(), "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let (store, _dir) = testing::sqlite_temp().await;
    two_nodes_one_database(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    if let Some(store) = testing::postgres_fresh().await {
        two_nodes_one_database(store).await;
    }
}
