//! The console's groups and rooms pages against the real binary: a group looked up by id
//! with its members and roles (paged), a mute shown; the app's rooms with how many users are
//! in each now, counted from real WebSocket sessions; bad ids say so; another app's group is
//! 404 without a word of it. (Every page of another tenant: tests/console.rs.)
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::{between, operator, start_console, tenant_with_app, TenantWithApp};
use common::eventually;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tern_sdk::server::ServerClient;
use tern_sdk::{Client, Platform};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_show_members_and_roles_and_rooms_their_live_counts() {
    let (server, _dir) = start_console(&[]);
    let mut op = operator(&server).await;
    let TenantWithApp {
        tenant,
        app: app_id,
        app_key,
        app_secret,
    } = tenant_with_app(&mut op, "Clubs").await;
    let other = tenant_with_app(&mut op, "Elsewhere").await;
    let app = format!("/console/t/{tenant}/apps/{app_id}");
    let api = ServerClient::new(&server.base, &app_key, &app_secret);
    for (id, name) in [("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")] {
        api.create_user(id, name).await.unwrap();
    }
    let _: Value = api
        .create_group_with(&json!({
            "id": "team", "name": "<i>Team</i>", "owner": "alice", "members": ["bob", "carol"],
            "announcement": "standup at 9", "join_policy": "invite_only"
        }))
        .await
        .unwrap();
    let _: Value = api
        .request(
            "POST",
            "/v1/groups/team/members/bob/role",
            Some(&json!({"role": "admin"})),
        )
        .await
        .unwrap();
    let until = tern_platform::domain::now_ms() + 3_600_000;
    let _: Value = api
        .request(
            "POST",
            "/v1/groups/team/members/carol/mute",
            Some(&json!({"until": until})),
        )
        .await
        .unwrap();
    let elsewhere = ServerClient::new(&server.base, &other.app_key, &other.app_secret);
    elsewhere.create_user("zed", "Zed").await.unwrap();
    let _: Value = elsewhere
        .create_group("secret-club", "Secret Club", "zed", &[])
        .await
        .unwrap();

    // The group: its settings, members with their roles, the mute.
    let empty = op.get(&format!("{app}/groups")).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    let page = op.get(&format!("{app}/groups?group=team")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let group = between(&page.body, "<section id=\"group\">", "</section>");
    assert!(
        group.contains("&#60;i&#62;Team&#60;/i&#62;"),
        "the name is text: {group}"
    );
    assert!(group.contains("<dd class=\"member-count\">3</dd>") && group.contains("invite_only"));
    assert!(
        group.contains("standup at 9") && group.contains("conversation=g%3Ateam"),
        "{group}"
    );
    let members = between(&page.body, "<section id=\"members\">", "</section>");
    let role_of = |user: &str| {
        let row = between(members, &format!(">{user}</a>"), "</tr>");
        between(row, "<span class=\"badge role\">", "<").to_owned()
    };
    assert_eq!(
        (role_of("alice"), role_of("bob"), role_of("carol")),
        ("owner".into(), "admin".into(), "member".into())
    );
    let carol = between(members, ">carol</a>", "</tr>");
    assert!(carol.contains(" UTC"), "carol's mute shows when it ends: {carol}");
    assert!(!between(members, ">bob</a>", "</tr>").contains(" UTC</td></tr>"));
    // Paged by user id: after bob, only carol.
    let next = op.get(&format!("{app}/groups?group=team&after=bob")).await;
    let rest = between(&next.body, "<section id=\"members\">", "</section>");
    assert!(rest.contains(">carol</a>") && !rest.contains(">alice</a>"), "{rest}");

    // Bad ids say so; another app's group is not found here, without a word of it.
    for (q, status) in [
        ("group=not%20an%20id", StatusCode::BAD_REQUEST),
        ("group=team&after=bad%20id", StatusCode::BAD_REQUEST),
        ("group=nobody-here", StatusCode::NOT_FOUND),
        ("group=secret-club", StatusCode::NOT_FOUND),
    ] {
        let page = op.get(&format!("{app}/groups?{q}")).await;
        assert_eq!(page.status, status, "{q}");
        assert!(page.body.contains("role=\"alert\""), "{q}");
        assert!(!page.body.contains("Secret Club"), "{q}");
    }

    // Rooms with how many are in each now: two users join the lobby over WebSockets.
    api.create_room("lobby", Some("Lobby"), None).await.unwrap();
    api.create_room("quiet", Some("Quiet"), None).await.unwrap();
    let ws = format!("{}/v1/connect", server.base.replace("http://", "ws://"));
    let mut sessions = Vec::new();
    for user in ["alice", "bob"] {
        let token = api.user_token(user, Some(600)).await.unwrap().token;
        let (c, events) = Client::connect(&ws, &token, &format!("{user}-phone"), Platform::Ios)
            .await
            .unwrap();
        c.join_room("lobby").await.unwrap();
        sessions.push((c, events));
    }
    let online = |html: &str, room: &str| {
        let row = between(html, &format!("<code>{room}</code>"), "</tr>");
        between(row, "<td class=\"online\"><strong>", "<").to_owned()
    };
    eventually("the lobby counts two users", || {
        let mut b = op.clone_session();
        let path = format!("{app}/rooms");
        async move { online(&b.get(&path).await.body, "lobby") == "2" }
    })
    .await;
    let page = op.get(&format!("{app}/rooms")).await;
    assert_eq!(online(&page.body, "quiet"), "0");
    assert!(
        page.body.contains("hx-trigger=\"every 5s\""),
        "the counts refresh themselves"
    );
    assert!(page.body.contains("conversation=r%3Alobby"));
    let after = op.get(&format!("{app}/rooms?after=lobby")).await;
    assert!(after.body.contains("<code>quiet</code>") && !after.body.contains("<code>lobby</code>"));
    let bad = op.get(&format!("{app}/rooms?after=bad%20id")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // The other app's rooms page does not list this app's rooms.
    let theirs = op
        .get(&format!("/console/t/{}/apps/{}/rooms", other.tenant, other.app))
        .await;
    assert!(theirs.body.contains("No rooms."), "{}", theirs.body);
    drop(sessions);
}
