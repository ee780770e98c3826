//! The console's groups and rooms pages against the real binary: a group looked up by id
//! with its members and roles (paged), a mute shown; the app's rooms with how many users are
//! in each now, counted from real WebSocket sessions; bad ids say so; another app's group is
//! 404 without a word of it; the app's groups listed, searched and paged in the console and
//! the operator API, on both stores, and 404 for another tenant. (Every page of another
//! tenant: tests/console.rs.)
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::{between, databases, member_of, operator, start_console, tenant_with_app, Page, TenantWithApp};
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

/// The `code` of an operator API error answer.
fn code_of(page: &Page) -> String {
    let v: Value = serde_json::from_str(&page.body).unwrap_or_else(|_| panic!("not JSON: {}", page.body));
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// The group ids of a list page's rows, in order.
fn listed(html: &str) -> Vec<String> {
    let rows = between(html, "<div id=\"group-results\">", "</section>");
    rows.match_indices("<a href=\"")
        .filter_map(|(at, _)| {
            let rest = &rows[at..];
            let id = rest.split("?group=").nth(1)?;
            Some(id[..id.find('"')?].to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_groups_are_listed_searched_and_paged_on_both_stores() {
    for pg in databases().await {
        eprintln!("on {}", if pg.is_some() { "postgres" } else { "sqlite" });
        let env: Vec<(&str, &str)> = pg.iter().map(|u| ("TERN_DATABASE_URL", u.as_str())).collect();
        let (server, _dir) = start_console(&env);
        let mut op = operator(&server).await;
        let mine = tenant_with_app(&mut op, "Clubs").await;
        let other = tenant_with_app(&mut op, "Elsewhere").await;
        let app = format!("/console/t/{}/apps/{}", mine.tenant, mine.app);
        let admin = format!("/admin/v1/tenants/{}/apps/{}", mine.tenant, mine.app);
        let api = ServerClient::new(&server.base, &mine.app_key, &mine.app_secret);
        api.create_user("alice", "Alice").await.unwrap();
        // 52 groups: g-00 … g-50 and one found by its name, more than a page of 50.
        for i in 0..=50 {
            let _: Value = api
                .create_group(&format!("g-{i:02}"), &format!("Group {i}"), "alice", &[])
                .await
                .unwrap();
        }
        let _: Value = api
            .create_group("zz-chess", "<b>Chess</b> club", "alice", &[])
            .await
            .unwrap();
        let elsewhere = ServerClient::new(&server.base, &other.app_key, &other.app_secret);
        elsewhere.create_user("zed", "Zed").await.unwrap();
        let _: Value = elsewhere
            .create_group("g-secret", "Secret Club", "zed", &[])
            .await
            .unwrap();

        // The list: by id, 50 a page, each row linking to the group's page.
        let first = op.get(&format!("{app}/groups")).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.body);
        let ids = listed(&first.body);
        assert_eq!(ids.len(), 50, "{ids:?}");
        assert_eq!((ids[0].as_str(), ids[49].as_str()), ("g-00", "g-49"));
        assert!(!first.body.contains("g-secret") && !first.body.contains("Secret Club"));
        let results = between(&first.body, "<div id=\"group-results\">", "</section>");
        let next = between(results, "<p><a href=\"", "\">Next page</a>").replace("&amp;", "&");
        assert!(next.ends_with("?q=&after=g-49"), "{next}");
        let second = op.get(&next).await;
        assert_eq!(listed(&second.body), ["g-50", "zz-chess"]);
        assert!(!second.body.contains("Next page"));
        assert!(
            second.body.contains("&#60;b&#62;Chess&#60;/b&#62; club"),
            "names are text: {}",
            second.body
        );
        let group = op.get(&format!("{app}/groups?group=zz-chess")).await;
        assert_eq!(group.status, StatusCode::OK, "the row's link is the group's page");
        assert!(group.body.contains("<section id=\"group\">"));

        // Searched by id prefix or part of the name, ignoring case.
        let found = op.get(&format!("{app}/groups?q=g-4")).await;
        assert_eq!(listed(&found.body).len(), 10, "g-40 … g-49");
        let found = op.get(&format!("{app}/groups?q=CHESS")).await;
        assert_eq!(listed(&found.body), ["zz-chess"]);
        let none = op.get(&format!("{app}/groups?q=secret")).await;
        assert!(none.body.contains("No group matches."), "{}", none.body);

        // Malformed input says so, as a 400 page.
        for q in ["after=bad%20id", &format!("q={}", "x".repeat(129))] {
            let page = op.get(&format!("{app}/groups?{q}")).await;
            assert_eq!(page.status, StatusCode::BAD_REQUEST, "{q}");
            assert!(page.body.contains("role=\"alert\""), "{q}: {}", page.body);
        }

        // The operator API: the same list, paged by `after`, searched by `q`.
        let got = op.get(&format!("{admin}/groups?limit=2")).await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.body);
        let v: Value = serde_json::from_str(&got.body).unwrap();
        assert_eq!(v["groups"][0]["id"], "g-00", "{v}");
        assert_eq!(v["groups"][1]["owner"], "alice", "{v}");
        assert_eq!(v["next_after"], "g-01", "{v}");
        let got = op.get(&format!("{admin}/groups?q=chess&after=g-01")).await;
        let v: Value = serde_json::from_str(&got.body).unwrap();
        assert_eq!(v["groups"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(v["groups"][0]["name"], "<b>Chess</b> club", "{v}");
        assert!(v.get("next_after").is_none(), "{v}");
        let bad = op.get(&format!("{admin}/groups?after=bad%20id")).await;
        assert_eq!(
            (bad.status, code_of(&bad)),
            (StatusCode::BAD_REQUEST, "invalid_argument".into())
        );
        let long = op.get(&format!("{admin}/groups?q={}", "x".repeat(129))).await;
        assert_eq!(
            (long.status, code_of(&long)),
            (StatusCode::BAD_REQUEST, "invalid_argument".into())
        );

        // Another tenant's owner: 404 from the page and the route, also with this app put
        // under their own tenant's URL; nothing of the groups shown.
        let mut theirs = member_of(&mut op, &server, &other.tenant, "owner@elsewhere.example", "owner").await;
        for path in [
            format!("{app}/groups"),
            format!("{app}/groups?q=g-"),
            format!("/console/t/{}/apps/{}/groups", other.tenant, mine.app),
        ] {
            let page = theirs.get(&path).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
            assert!(!page.body.contains("g-00"), "{path}");
        }
        for path in [
            format!("{admin}/groups"),
            format!("/admin/v1/tenants/{}/apps/{}/groups", other.tenant, mine.app),
        ] {
            let page = theirs.get(&path).await;
            assert_eq!(
                (page.status, code_of(&page)),
                (StatusCode::NOT_FOUND, "not_found".into()),
                "{path}"
            );
        }
        // Their own app's list holds only their group.
        let own = theirs
            .get(&format!("/console/t/{}/apps/{}/groups", other.tenant, other.app))
            .await;
        assert_eq!(listed(&own.body), ["g-secret"]);
    }
}
