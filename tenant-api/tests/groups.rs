//! Groups through the server API, REST and gRPC, on SQLite and (when configured)
//! PostgreSQL: profiles, roles, mutes, joining, requests, leaving, transfer, dismissal,
//! mentions, read receipts, the notices in the timeline, the webhooks, and bad, oversized
//! and cross-app input.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use serde_json::{json, Value};
use support::*;
use tern_platform::proto::server_v1 as pb;
use tern_sdk::server::ServerClient;
use tern_tenant_api::grpc::error_code;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

fn field(v: &Value, list: &str, f: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[f].as_str().unwrap().to_owned())
        .collect()
}

/// Turns webhooks on, so after-events are written, and applies `tune`.
async fn settings(s: &TestServer, a: &TestApp, tune: impl FnOnce(&mut tern_platform::domain::AppSettings)) {
    let mut settings = a.app.settings.clone();
    settings.webhook.url = Some("https://hooks.example.com/tern".into());
    tune(&mut settings);
    s.store.update_app_settings(&a.app.id, &settings).await.unwrap();
    s.forget_credentials(&a.app.app_key);
}

/// The app's after-events written so far: `(type, data)`, oldest first.
async fn events(s: &TestServer, a: &TestApp) -> Vec<(String, Value)> {
    s.store
        .due_events(i64::MAX, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.app_id == a.app.id)
        .map(|e| {
            let body: Value = serde_json::from_str(&e.body).unwrap();
            (e.event_type, body["data"].clone())
        })
        .collect()
}

fn of_type(events: &[(String, Value)], t: &str) -> Vec<Value> {
    events.iter().filter(|(k, _)| k == t).map(|(_, d)| d.clone()).collect()
}

/// The `event` of each system notice in a group's timeline, in order.
async fn notices(c: &ServerClient, group: &str) -> Vec<String> {
    c.history(&format!("g:{group}"), 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.msg_type == "system")
        .map(|m| m.content["event"].as_str().unwrap().to_owned())
        .collect()
}

async fn send_text(
    c: &ServerClient,
    from: &str,
    group: &str,
    text: &str,
) -> Result<tern_sdk::server::SendAnswer, String> {
    c.send(&json!({"from": from, "to": {"group": group}, "type": "text", "content": {"text": text}}))
        .await
        .map_err(|e| e.code().unwrap_or("<none>").to_owned())
}

// ---- profile, roles, mutes, transfer -------------------------------------------------

async fn profile_roles_mutes_and_transfer(s: TestServer) {
    let a = s.app("a").await;
    settings(&s, &a, |_| {}).await;
    let c = &a.client;
    users(c, &["alice", "bob", "carol", "dave"]).await;

    let g = call(
        c,
        "POST",
        "/v1/groups",
        Some(
            json!({"id": "team", "name": "Team", "owner": "alice", "members": ["bob", "carol"],
                    "avatar_url": "https://cdn.example/t.png", "announcement": "hi all",
                    "metadata": {"topic": "work"}, "join_policy": "free"}),
        ),
    )
    .await;
    assert_eq!(
        (
            g["member_count"].as_i64(),
            g["join_policy"].as_str(),
            g["announcement"].as_str(),
            g["mute_all"].as_bool()
        ),
        (Some(3), Some("free"), Some("hi all"), Some(false))
    );
    assert_eq!(call(c, "GET", "/v1/groups/team", None).await, g);
    // An id is made when none is given.
    let made = call(c, "POST", "/v1/groups", Some(json!({"name": "No id", "owner": "dave"}))).await;
    assert!(made["id"].as_str().unwrap().starts_with("grp_"), "{made}");
    assert_eq!(made["join_policy"], "approval", "approval is the default policy");

    let updated = call(
        c,
        "PATCH",
        "/v1/groups/team",
        Some(json!({"announcement": "standup at 10", "avatar_url": null, "name": "The Team"})),
    )
    .await;
    assert_eq!(
        (
            updated["announcement"].as_str(),
            updated["avatar_url"].clone(),
            updated["name"].as_str()
        ),
        (Some("standup at 10"), Value::Null, Some("The Team"))
    );
    assert_eq!(updated["metadata"], json!({"topic": "work"}), "absent fields are kept");
    // A patch that changes nothing writes nothing (no notice).
    call(
        c,
        "PATCH",
        "/v1/groups/team",
        Some(json!({"announcement": "standup at 10"})),
    )
    .await;

    let bob = call(
        c,
        "POST",
        "/v1/groups/team/members/bob/role",
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(bob["role"], "admin");
    assert_eq!(call(c, "GET", "/v1/groups/team/members/bob", None).await, bob);
    assert_eq!(
        fails(
            c,
            "POST",
            "/v1/groups/team/members/alice/role",
            Some(json!({"role": "member"}))
        )
        .await,
        "forbidden",
        "the owner's role changes only by a transfer"
    );

    // Carol is muted in this group until a time: her sends fail, others go on.
    let until = tern_platform::domain::now_ms() + 3_600_000;
    let carol = call(
        c,
        "POST",
        "/v1/groups/team/members/carol/mute",
        Some(json!({ "until": until })),
    )
    .await;
    assert_eq!(carol["muted_until"], until);
    assert_eq!(
        send_text(c, "carol", "team", "hello?").await.unwrap_err(),
        "member_muted"
    );
    send_text(c, "bob", "team", "carol is muted").await.unwrap();
    let carol = call(c, "DELETE", "/v1/groups/team/members/carol/mute", None).await;
    assert_eq!(carol["muted_until"], Value::Null);
    send_text(c, "carol", "team", "back").await.unwrap();
    // Forever when no time is given.
    let forever = call(c, "POST", "/v1/groups/team/members/carol/mute", None).await;
    assert_eq!(forever["muted_until"], tern_platform::domain::FOREVER);
    call(c, "DELETE", "/v1/groups/team/members/carol/mute", None).await;

    // mute_all: only the owner and admins speak.
    call(c, "PATCH", "/v1/groups/team", Some(json!({"mute_all": true}))).await;
    assert_eq!(send_text(c, "carol", "team", "x").await.unwrap_err(), "group_muted");
    send_text(c, "bob", "team", "admins still speak").await.unwrap();
    send_text(c, "alice", "team", "so does the owner").await.unwrap();
    call(c, "PATCH", "/v1/groups/team", Some(json!({"mute_all": false}))).await;
    send_text(c, "carol", "team", "free again").await.unwrap();

    // Transfer: bob owns it, alice is a member.
    let moved = call(c, "POST", "/v1/groups/team/owner", Some(json!({"user_id": "bob"}))).await;
    assert_eq!(moved["owner"], "bob");
    let roles: Vec<(String, String)> = call(c, "GET", "/v1/groups/team/members", None).await["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [("alice", "member"), ("bob", "owner"), ("carol", "member")].map(|(u, r)| (u.to_owned(), r.to_owned()))
    );
    assert_eq!(
        fails(c, "POST", "/v1/groups/team/owner", Some(json!({"user_id": "dave"}))).await,
        "not_found",
        "only a member can become the owner"
    );
    assert_eq!(
        fails(c, "POST", "/v1/groups/team/owner", Some(json!({"user_id": "bob"}))).await,
        "invalid_argument"
    );

    // A user's groups, paged.
    let page = call(c, "GET", "/v1/users/carol/groups?limit=1", None).await;
    assert_eq!(field(&page, "groups", "id"), ["team"]);
    let mine = call(c, "GET", "/v1/users/dave/groups", None).await;
    assert_eq!(mine["groups"].as_array().unwrap().len(), 1);
    assert_eq!(fails(c, "GET", "/v1/users/nobody/groups", None).await, "not_found");

    // Every change is a notice in the timeline, in order, and an after-event.
    assert_eq!(
        notices(c, "team").await,
        [
            "group_created",
            "group_updated",
            "role_changed",
            "member_muted",
            "member_unmuted",
            "member_muted",
            "member_unmuted",
            "group_updated",
            "group_updated",
            "owner_transferred"
        ]
    );
    let ev = events(&s, &a).await;
    assert_eq!(of_type(&ev, "group.created").len(), 2);
    let up = of_type(&ev, "group.updated");
    assert_eq!(
        up[0]["changed"],
        json!({"name": "The Team", "announcement": "standup at 10", "avatar_url": null})
    );
    assert_eq!(up[1]["changed"], json!({"mute_all": true}));
    assert_eq!(up.len(), 3);
    assert_eq!(
        of_type(&ev, "group.role_changed")[0],
        json!({"group_id": "team", "user_id": "bob", "role": "admin", "by": null})
    );
    assert_eq!(of_type(&ev, "group.member_muted")[0]["until"], until);
    assert_eq!(of_type(&ev, "group.member_muted")[1]["until"], Value::Null);
    assert_eq!(
        of_type(&ev, "group.owner_transferred")[0],
        json!({"group_id": "team", "from": "alice", "to": "bob", "by": null})
    );
}
on_every_store!(profile_roles_mutes, profile_roles_mutes_and_transfer);

// ---- joining, requests, leaving, removal ---------------------------------------------

async fn joining_requests_leaving_and_removal(s: TestServer) {
    let a = s.app("a").await;
    settings(&s, &a, |_| {}).await;
    let c = &a.client;
    users(c, &["alice", "bob", "carol", "dave", "erin"]).await;
    c.create_group_with(&json!({"id": "open", "name": "Open", "owner": "alice", "join_policy": "free"}))
        .await
        .unwrap();
    c.create_group_with(&json!({"id": "club", "name": "Club", "owner": "alice"}))
        .await
        .unwrap();
    c.create_group_with(&json!({"id": "vip", "name": "VIP", "owner": "alice", "join_policy": "invite_only"}))
        .await
        .unwrap();

    // free: in at once; asking again answers with the membership.
    let j = c.join_group("open", "bob", "").await.unwrap();
    assert_eq!(
        (j["joined"].as_bool(), j["member"]["role"].as_str()),
        (Some(true), Some("member"))
    );
    assert_eq!(j["request"], Value::Null);
    assert_eq!(c.join_group("open", "bob", "").await.unwrap()["joined"], true);
    // invite_only: refused.
    assert_eq!(
        c.join_group("vip", "bob", "").await.unwrap_err().code(),
        Some("forbidden")
    );
    // approval: a request waits for an admin.
    let r = c.join_group("club", "bob", "me please").await.unwrap();
    assert_eq!(
        (
            r["joined"].as_bool(),
            r["request"]["state"].as_str(),
            r["request"]["message"].as_str()
        ),
        (Some(false), Some("pending"), Some("me please"))
    );
    c.join_group("club", "carol", "").await.unwrap();
    c.join_group("club", "dave", "").await.unwrap();
    let listed = c.group_join_requests("club", None).await.unwrap();
    assert_eq!(field(&listed, "requests", "user_id"), ["bob", "carol", "dave"]);
    let page = call(c, "GET", "/v1/groups/club/join-requests?limit=2", None).await;
    let next = page["next_cursor"].as_str().unwrap();
    let rest = call(
        c,
        "GET",
        &format!("/v1/groups/club/join-requests?limit=2&cursor={next}"),
        None,
    )
    .await;
    assert_eq!(field(&rest, "requests", "user_id"), ["dave"]);

    let accepted = c.answer_group_join_request("club", "bob", true).await.unwrap();
    assert_eq!(accepted["state"], "accepted");
    assert_eq!(c.group_member("club", "bob").await.unwrap()["role"], "member");
    assert_eq!(
        c.answer_group_join_request("club", "carol", false).await.unwrap()["state"],
        "declined"
    );
    assert_eq!(
        c.answer_group_join_request("club", "carol", true)
            .await
            .unwrap_err()
            .code(),
        Some("not_found"),
        "an answered request cannot be answered again"
    );
    assert_eq!(
        c.group_member("club", "carol").await.unwrap_err().code(),
        Some("not_found")
    );
    // Adding a user settles their pending request.
    c.add_group_members("club", &["dave"]).await.unwrap();
    assert!(c.group_join_requests("club", None).await.unwrap()["requests"]
        .as_array()
        .unwrap()
        .is_empty());

    // Leaving: members may; the owner must transfer first.
    c.leave_group("club", "bob").await.unwrap();
    assert_eq!(
        c.group_member("club", "bob").await.unwrap_err().code(),
        Some("not_found")
    );
    assert_eq!(
        c.leave_group("club", "bob").await.unwrap_err().code(),
        Some("not_found")
    );
    assert_eq!(
        c.leave_group("club", "alice").await.unwrap_err().code(),
        Some("forbidden")
    );
    // Removal: the owner cannot be removed; the removed get a notice of their own.
    assert_eq!(
        c.remove_group_member("club", "alice").await.unwrap_err().code(),
        Some("forbidden")
    );
    c.remove_group_member("club", "dave").await.unwrap();
    let dave = c.history("s:dave", 0, 10).await.unwrap();
    assert_eq!(dave.len(), 1);
    assert_eq!(
        (
            dave[0].content["event"].as_str(),
            dave[0].content["group_id"].as_str(),
            dave[0].msg_type.as_str()
        ),
        (Some("removed_from_group"), Some("club"), "system")
    );
    let dave_list = c.conversations("dave").await.unwrap();
    assert_eq!(
        field(&dave_list, "conversations", "conversation_id"),
        ["s:dave"],
        "the group left dave's list; the notice is in it"
    );
    assert_eq!(
        send_text(c, "dave", "club", "still here?").await.unwrap_err(),
        "forbidden"
    );

    assert_eq!(
        notices(c, "club").await,
        [
            "group_created",
            "member_joined",
            "members_added",
            "member_left",
            "member_removed"
        ]
    );
    let ev = events(&s, &a).await;
    let asked: Vec<String> = of_type(&ev, "group.join_requested")
        .iter()
        .map(|d| d["user_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(asked, ["bob", "carol", "dave"]);
    let joined = of_type(&ev, "group.member_joined");
    assert_eq!(joined[0], json!({"group_id": "open", "user_id": "bob", "by": null}));
    assert_eq!(joined[1], json!({"group_id": "club", "user_id": "bob", "by": null}));
    assert_eq!(
        of_type(&ev, "group.member_left"),
        [json!({"group_id": "club", "user_id": "bob"})]
    );
    assert_eq!(
        of_type(&ev, "group.member_removed"),
        [json!({"group_id": "club", "user_id": "dave", "by": null})]
    );
    assert_eq!(
        of_type(&ev, "group.member_added"),
        [json!({"group_id": "club", "members": ["dave"], "by": null})]
    );
}
on_every_store!(joining_and_leaving, joining_requests_leaving_and_removal);

async fn a_full_group_answers_group_full(s: TestServer) {
    let a = s.app("a").await;
    settings(&s, &a, |st| st.group_member_limit = 3).await;
    let c = &a.client;
    users(c, &["u1", "u2", "u3", "u4", "u5"]).await;
    assert_eq!(
        c.create_group("big", "Big", "u1", &["u2", "u3", "u4"])
            .await
            .unwrap_err()
            .code(),
        Some("group_full")
    );
    c.create_group_with(&json!({"id": "g", "name": "G", "owner": "u1", "members": ["u2"], "join_policy": "free"}))
        .await
        .unwrap();
    c.join_group("g", "u3", "").await.unwrap();
    assert_eq!(
        c.join_group("g", "u4", "").await.unwrap_err().code(),
        Some("group_full")
    );
    assert_eq!(
        c.add_group_members("g", &["u4"]).await.unwrap_err().code(),
        Some("group_full")
    );
    c.update_group("g", &json!({"join_policy": "approval"})).await.unwrap();
    c.leave_group("g", "u3").await.unwrap();
    c.join_group("g", "u4", "").await.unwrap();
    c.join_group("g", "u5", "").await.unwrap();
    c.answer_group_join_request("g", "u4", true).await.unwrap();
    assert_eq!(
        c.answer_group_join_request("g", "u5", true).await.unwrap_err().code(),
        Some("group_full")
    );
    let g = c.group("g").await.unwrap();
    assert_eq!(g["member_count"], 3, "nothing was half-written");
    let pending = c.group_join_requests("g", None).await.unwrap();
    assert_eq!(
        field(&pending, "requests", "user_id"),
        ["u5"],
        "the refused request still waits"
    );
}
on_every_store!(group_full, a_full_group_answers_group_full);

// ---- mentions and read receipts ----------------------------------------------------

async fn mentions_and_read_receipts(s: TestServer) {
    let a = s.app("a").await;
    settings(&s, &a, |_| {}).await;
    let c = &a.client;
    users(c, &["alice", "bob", "carol", "dave", "erin"]).await;
    c.create_group("team", "Team", "alice", &["bob", "carol", "dave"])
        .await
        .unwrap();
    let mentioned = |user: &'static str| async move {
        call(c, "GET", &format!("/v1/users/{user}/conversations/g%3Ateam"), None).await["mentioned"]
            .as_bool()
            .unwrap()
    };

    let m1 = c
        .send(
            &json!({"from": "bob", "to": {"group": "team"}, "type": "text", "content": {"text": "@carol look"},
                      "client_msg_id": "m1", "mentions": ["carol"]}),
        )
        .await
        .unwrap();
    assert!(mentioned("carol").await);
    assert!(!mentioned("dave").await && !mentioned("alice").await && !mentioned("bob").await);
    let stored = call(c, "GET", &format!("/v1/messages/{}", m1.msg_id), None).await;
    assert_eq!(
        (stored["mentions"].clone(), stored["mention_all"].as_bool()),
        (json!(["carol"]), Some(false))
    );
    // Only members can be mentioned; mentions are for groups.
    let e = c
        .send(&json!({"from": "bob", "to": {"group": "team"}, "type": "text", "content": {"text": "x"}, "mentions": ["erin"]}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("invalid_argument"));
    let e = c
        .send(&json!({"from": "bob", "to": {"user": "carol"}, "type": "text", "content": {"text": "x"}, "mentions": ["carol"]}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("invalid_argument"));
    let too_many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let e = c
        .send(&json!({"from": "bob", "to": {"group": "team"}, "type": "text", "content": {"text": "x"}, "mentions": too_many}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("invalid_argument"));
    // Reading past the mention clears it.
    c.mark_read("carol", "g:team", m1.seq).await.unwrap();
    assert!(!mentioned("carol").await);

    // @all from the server API marks everyone but the sender.
    let m2 = c
        .send(&json!({"from": "bob", "to": {"group": "team"}, "type": "text", "content": {"text": "all hands"}, "mention_all": true}))
        .await
        .unwrap();
    for u in ["alice", "carol", "dave"] {
        assert!(mentioned(u).await, "{u}");
    }
    assert!(!mentioned("bob").await);
    let history = c.history("g:team", m1.seq - 1, 10).await.unwrap();
    assert_eq!(history.iter().map(|m| m.mention_all).collect::<Vec<_>>(), [false, true]);
    let sent_events = of_type(&events(&s, &a).await, "message.sent");
    let with_mentions: Vec<_> = sent_events.iter().filter(|d| d.get("mentions").is_some()).collect();
    assert_eq!(
        with_mentions.len(),
        2,
        "message.sent carries mentions when there are some"
    );
    assert_eq!(with_mentions[0]["mentions"], json!(["carol"]));

    // Read counts: carol read m1; alice and dave have not; bob sent it.
    c.mark_read("alice", "g:team", m2.seq).await.unwrap();
    let counts = c.group_read_counts("team", &[&m1.msg_id, &m2.msg_id]).await.unwrap();
    let got: Vec<(i64, i64)> = counts["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["read"].as_i64().unwrap(), c["unread"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        got,
        [(2, 1), (1, 2)],
        "m1: alice and carol of three; m2: alice of three"
    );
    let readers = c.group_message_readers("team", &m1.msg_id, false).await.unwrap();
    assert_eq!(strings(&readers["user_ids"]), ["alice", "carol"]);
    let unread = c.group_message_readers("team", &m2.msg_id, true).await.unwrap();
    assert_eq!(strings(&unread["user_ids"]), ["carol", "dave"]);
    // A member who joins later does not count for earlier messages.
    c.add_group_members("team", &["erin"]).await.unwrap();
    let counts = c.group_read_counts("team", &[&m1.msg_id]).await.unwrap();
    assert_eq!(
        (
            counts["counts"][0]["read"].as_i64(),
            counts["counts"][0]["unread"].as_i64()
        ),
        (Some(2), Some(1))
    );
    // Unknown or another conversation's messages are not found; lists are bounded.
    let direct = c.send_text("alice", "bob", "d1", "psst").await.unwrap();
    assert_eq!(
        c.group_read_counts("team", &[&direct.msg_id]).await.unwrap_err().code(),
        Some("not_found")
    );
    assert_eq!(
        c.group_read_counts("team", &["m_nope"]).await.unwrap_err().code(),
        Some("not_found")
    );
    assert_eq!(
        c.group_read_counts("team", &[]).await.unwrap_err().code(),
        Some("invalid_argument")
    );
    let many: Vec<String> = (0..101).map(|i| format!("m_{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        c.group_read_counts("team", &many).await.unwrap_err().code(),
        Some("invalid_argument")
    );
    // Past the app's limit, a group keeps no read counts.
    c.update_app_settings(&json!({"group_read_receipt_limit": 4}))
        .await
        .unwrap();
    assert_eq!(
        c.group_read_counts("team", &[&m1.msg_id]).await.unwrap_err().code(),
        Some("receipts_unavailable")
    );
    assert_eq!(
        c.group_message_readers("team", &m1.msg_id, false)
            .await
            .unwrap_err()
            .code(),
        Some("receipts_unavailable")
    );
    // Unread counts stay per member.
    let dave = call(c, "GET", "/v1/users/dave/conversations/g%3Ateam", None).await;
    assert_eq!(
        dave["unread"],
        dave["last_seq"].as_i64().unwrap() - dave["read_seq"].as_i64().unwrap()
    );
    assert!(dave["unread"].as_i64().unwrap() >= 2);
}
on_every_store!(mentions_and_receipts, mentions_and_read_receipts);

// ---- dismissal -----------------------------------------------------------------------

async fn dismissal_takes_the_group_away(s: TestServer) {
    let a = s.app("a").await;
    settings(&s, &a, |_| {}).await;
    let c = &a.client;
    users(c, &["alice", "bob", "carol", "dave"]).await;
    c.create_group("team", "Team", "alice", &["bob", "carol"])
        .await
        .unwrap();
    send_text(c, "bob", "team", "hi").await.unwrap();
    // A pending request goes with the group.
    c.join_group("team", "dave", "").await.unwrap();
    c.dismiss_group("team").await.unwrap();
    assert_eq!(c.group("team").await.unwrap_err().code(), Some("not_found"));
    assert_eq!(c.history("g:team", 0, 10).await.unwrap_err().code(), Some("not_found"));
    assert_eq!(send_text(c, "bob", "team", "x").await.unwrap_err(), "not_found");
    assert_eq!(c.dismiss_group("team").await.unwrap_err().code(), Some("not_found"));
    for u in ["alice", "bob", "carol"] {
        let inbox = c.history(&format!("s:{u}"), 0, 10).await.unwrap();
        assert_eq!(inbox.len(), 1, "{u}");
        assert_eq!(inbox[0].content["event"], "group_dismissed");
        assert_eq!(inbox[0].content["name"], "Team");
        let list = c.conversations(u).await.unwrap();
        assert!(!field(&list, "conversations", "conversation_id").contains(&"g:team".to_owned()));
    }
    let ev = events(&s, &a).await;
    assert_eq!(
        of_type(&ev, "group.dismissed"),
        [json!({"group_id": "team", "name": "Team", "by": null})]
    );
    assert!(
        c.history("s:dave", 0, 10).await.is_err(),
        "dave was never a member: no notice"
    );
    // The id can be used again, for a new group with a new timeline.
    c.create_group("team", "Team 2", "bob", &[]).await.unwrap();
    assert!(c.group_join_requests("team", None).await.unwrap()["requests"]
        .as_array()
        .unwrap()
        .is_empty());
    let first = send_text(c, "bob", "team", "fresh").await.unwrap();
    assert_eq!(first.seq, 2, "after the new group's own opening notice");
}
on_every_store!(dismissal, dismissal_takes_the_group_away);

// ---- bad input and other apps ------------------------------------------------------

async fn bad_input_and_other_apps(s: TestServer) {
    let a = s.app("a").await;
    let b = s.app("b").await;
    let c = &a.client;
    users(c, &["alice", "bob"]).await;
    users(&b.client, &["alice", "bob"]).await;
    c.create_group("team", "Team", "alice", &["bob"]).await.unwrap();
    let msg = send_text(c, "alice", "team", "hi").await.unwrap();

    // Malformed and out-of-range input: a clear code, nothing stored.
    let bad: Vec<(&str, &str, Option<Value>, &str)> = vec![
        (
            "POST",
            "/v1/groups",
            Some(json!({"id": "x", "name": "", "owner": "alice"})),
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/groups",
            Some(json!({"id": "bad id", "name": "X", "owner": "alice"})),
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/groups",
            Some(json!({"id": "x", "name": "X", "owner": "alice", "join_policy": "open"})),
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/groups",
            Some(json!({"id": "x", "name": "X", "owner": "alice", "metadata": [1]})),
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/groups",
            Some(json!({"id": "x", "name": "X", "owner": "alice", "avatar_url": "javascript:x"})),
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/groups",
            Some(json!({"id": "x", "name": "X", "owner": "alice", "announcement": "a".repeat(2001)})),
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/groups",
            Some(json!({"id": "x", "name": "X", "owner": "alice", "extra": 1})),
            "invalid_json",
        ),
        (
            "POST",
            "/v1/groups",
            Some(json!({"id": "x", "name": "X", "owner": "ghost"})),
            "not_found",
        ),
        (
            "PATCH",
            "/v1/groups/team",
            Some(json!({"name": "x".repeat(101)})),
            "invalid_argument",
        ),
        (
            "PATCH",
            "/v1/groups/team",
            Some(json!({"metadata": {"k": "x".repeat(5000)}})),
            "invalid_argument",
        ),
        (
            "PATCH",
            "/v1/groups/team",
            Some(json!({"mute_all": "yes"})),
            "invalid_json",
        ),
        (
            "POST",
            "/v1/groups/team/members",
            Some(json!({"members": []})),
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/groups/team/members",
            Some(json!({"members": ["ghost"]})),
            "not_found",
        ),
        (
            "POST",
            "/v1/groups/team/members/bob/role",
            Some(json!({"role": "owner"})),
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/groups/team/members/bob/role",
            Some(json!({"role": "king"})),
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/groups/team/members/bob/mute",
            Some(json!({"until": 5})),
            "invalid_argument",
        ),
        ("POST", "/v1/groups/team/members/alice/mute", None, "forbidden"),
        ("POST", "/v1/groups/team/members/nobody/mute", None, "not_found"),
        (
            "POST",
            "/v1/groups/team/join",
            Some(json!({"user_id": "bob", "message": "m".repeat(501)})),
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/groups/team/join",
            Some(json!({"user_id": "ghost"})),
            "not_found",
        ),
        (
            "POST",
            "/v1/groups/team/read-counts",
            Some(json!({"msg_ids": "m1"})),
            "invalid_json",
        ),
        ("GET", "/v1/groups/team/members?cursor=%%%", None, "invalid_argument"),
        ("GET", "/v1/groups/team/members?limit=-1", None, "invalid_argument"),
    ];
    for (method, path, body, code) in bad {
        assert_eq!(
            fails(c, method, path, body.clone()).await,
            code,
            "{method} {path} {body:?}"
        );
    }
    let too_many: Vec<String> = (0..501).map(|i| format!("u{i}")).collect();
    assert_eq!(
        fails(
            c,
            "POST",
            "/v1/groups/team/members",
            Some(json!({ "members": too_many }))
        )
        .await,
        "invalid_argument"
    );
    // An oversized body is refused before it is read as JSON.
    let huge = json!({"announcement": "x".repeat(300 * 1024)});
    assert_eq!(
        fails(c, "PATCH", "/v1/groups/team", Some(huge)).await,
        "payload_too_large"
    );
    let g = c.group("team").await.unwrap();
    assert_eq!(
        (g["name"].as_str(), g["member_count"].as_i64()),
        (Some("Team"), Some(2))
    );

    // Another app sees none of it: the same ids are not_found there, and change nothing here.
    let other = &b.client;
    let cross: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/groups/team".into(), None),
        ("PATCH", "/v1/groups/team".into(), Some(json!({"name": "mine"}))),
        ("DELETE", "/v1/groups/team".into(), None),
        ("GET", "/v1/groups/team/members".into(), None),
        (
            "POST",
            "/v1/groups/team/members".into(),
            Some(json!({"members": ["bob"]})),
        ),
        ("GET", "/v1/groups/team/members/bob".into(), None),
        ("DELETE", "/v1/groups/team/members/bob".into(), None),
        (
            "POST",
            "/v1/groups/team/members/bob/role".into(),
            Some(json!({"role": "admin"})),
        ),
        ("POST", "/v1/groups/team/members/bob/mute".into(), None),
        ("DELETE", "/v1/groups/team/members/bob/mute".into(), None),
        ("POST", "/v1/groups/team/members/bob/leave".into(), None),
        ("POST", "/v1/groups/team/owner".into(), Some(json!({"user_id": "bob"}))),
        ("POST", "/v1/groups/team/join".into(), Some(json!({"user_id": "bob"}))),
        ("GET", "/v1/groups/team/join-requests".into(), None),
        ("POST", "/v1/groups/team/join-requests/bob/accept".into(), None),
        (
            "POST",
            "/v1/groups/team/read-counts".into(),
            Some(json!({"msg_ids": [msg.msg_id]})),
        ),
        ("GET", format!("/v1/groups/team/messages/{}/readers", msg.msg_id), None),
        ("GET", "/v1/conversations/g%3Ateam/messages".into(), None),
    ];
    for (method, path, body) in cross {
        assert_eq!(fails(other, method, &path, body).await, "not_found", "{method} {path}");
    }
    assert!(call(other, "GET", "/v1/users/bob/groups", None).await["groups"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(send_text(other, "bob", "team", "hi").await.unwrap_err(), "not_found");
    let g = c.group("team").await.unwrap();
    assert_eq!(
        (g["name"].as_str(), g["member_count"].as_i64()),
        (Some("Team"), Some(2))
    );
    assert_eq!(c.group_member("team", "bob").await.unwrap()["role"], "member");
}
on_every_store!(bad_and_cross_app, bad_input_and_other_apps);

// ---- gRPC ----------------------------------------------------------------------------

fn signed<T: prost::Message>(app: &TestApp, method: &str, msg: T) -> tonic::Request<T> {
    grpc_signed(app, &format!("/tern.server.v1.Groups/{method}"), msg)
}

fn gid(g: &str) -> pb::GroupRequest {
    pb::GroupRequest { group_id: g.into() }
}

fn member(g: &str, u: &str) -> pb::MemberRequest {
    pb::MemberRequest {
        group_id: g.into(),
        user_id: u.into(),
    }
}

async fn the_groups_service_over_grpc(s: TestServer) {
    let a = s.app("a").await;
    let b = s.app("b").await;
    users(&a.client, &["alice", "bob", "carol", "dave"]).await;
    let ch = grpc_channel(&s).await;
    let mut g = pb::groups_client::GroupsClient::new(ch.clone());
    let mut messages = pb::messages_client::MessagesClient::new(ch);

    let created = g
        .create_group(signed(
            &a,
            "CreateGroup",
            pb::CreateGroupRequest {
                id: "team".into(),
                name: "Team".into(),
                owner: "alice".into(),
                members: vec!["bob".into()],
                metadata: tern_tenant_api::grpc_struct(json!({"k": 1})),
                announcement: "hello".into(),
                join_policy: "approval".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            created.member_count,
            created.join_policy.as_str(),
            created.announcement.as_str()
        ),
        (2, "approval", "hello")
    );
    // The same group over REST.
    let rest = a.client.group("team").await.unwrap();
    assert_eq!(
        (rest["name"].as_str(), rest["announcement"].as_str()),
        (Some("Team"), Some("hello"))
    );

    let updated = g
        .update_group(signed(
            &a,
            "UpdateGroup",
            pb::UpdateGroupRequest {
                group_id: "team".into(),
                avatar_url: Some("https://cdn.example/a.png".into()),
                mute_all: Some(true),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.avatar_url.as_deref(), updated.mute_all, updated.name.as_str()),
        (Some("https://cdn.example/a.png"), true, "Team")
    );
    let cleared = g
        .update_group(signed(
            &a,
            "UpdateGroup",
            pb::UpdateGroupRequest {
                group_id: "team".into(),
                avatar_url: Some(String::new()),
                mute_all: Some(false),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleared.avatar_url, None, "\"\" clears the avatar");

    // Join (approval): a request; answered over gRPC.
    let joined = g
        .join(signed(
            &a,
            "Join",
            pb::JoinGroupRequest {
                group_id: "team".into(),
                user_id: "carol".into(),
                message: "hi".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!joined.joined);
    assert_eq!(joined.request.unwrap().state, "pending");
    let pending = g
        .list_join_requests(signed(
            &a,
            "ListJoinRequests",
            pb::ListJoinRequestsRequest {
                group_id: "team".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.requests.len(), 1);
    let answered = g
        .answer_join_request(signed(
            &a,
            "AnswerJoinRequest",
            pb::AnswerJoinRequestRequest {
                group_id: "team".into(),
                user_id: "carol".into(),
                accept: true,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.state, "accepted");
    let added = g
        .add_members(signed(
            &a,
            "AddMembers",
            pb::AddMembersRequest {
                group_id: "team".into(),
                members: vec!["dave".into(), "bob".into()],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.added, ["dave"]);

    // Roles, mutes, transfer.
    let bob = g
        .set_role(signed(
            &a,
            "SetRole",
            pb::SetRoleRequest {
                group_id: "team".into(),
                user_id: "bob".into(),
                role: "admin".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bob.role, "admin");
    let muted = g
        .mute_member(signed(
            &a,
            "MuteMember",
            pb::MuteMemberRequest {
                group_id: "team".into(),
                user_id: "dave".into(),
                until: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(muted.muted_until, Some(tern_platform::domain::FOREVER));
    let send = |from: &str| pb::SendRequest {
        from: Some(from.into()),
        to: Some(pb::Target {
            to: Some(pb::target::To::Group("team".into())),
        }),
        r#type: "text".into(),
        content: tern_tenant_api::grpc_struct(json!({"text": "hi"})),
        mentions: vec!["carol".into()],
        ..Default::default()
    };
    let refused = messages.send(tonic::Request::new(send("dave"))).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::Unauthenticated,
        "unsigned calls are refused"
    );
    let refused = messages.send(signed_messages(&a, send("dave"))).await.unwrap_err();
    assert_eq!(error_code(&refused).as_deref(), Some("member_muted"));
    let unmuted = g
        .unmute_member(signed(&a, "UnmuteMember", member("team", "dave")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unmuted.muted_until, None);
    let sent = messages
        .send(signed_messages(&a, send("dave")))
        .await
        .unwrap()
        .into_inner();
    let conv = a
        .client
        .request::<Value>("GET", "/v1/users/carol/conversations/g%3Ateam", None)
        .await
        .unwrap();
    assert_eq!(conv["mentioned"], true, "a mention sent over gRPC marks carol's entry");

    let counts = g
        .read_counts(signed(
            &a,
            "ReadCounts",
            pb::ReadCountsRequest {
                group_id: "team".into(),
                msg_ids: vec![sent.msg_id.clone()],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((counts.counts[0].read, counts.counts[0].unread), (0, 3));
    a.client.mark_read("bob", "g:team", sent.seq).await.unwrap();
    let readers = g
        .readers(signed(
            &a,
            "Readers",
            pb::ReadersRequest {
                group_id: "team".into(),
                msg_id: sent.msg_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(readers.user_ids, ["bob"]);

    let moved = g
        .transfer_owner(signed(
            &a,
            "TransferOwner",
            pb::TransferOwnerRequest {
                group_id: "team".into(),
                user_id: "bob".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.owner, "bob");
    let alice = g
        .get_member(signed(&a, "GetMember", member("team", "alice")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alice.role, "member");
    let list = g
        .list_members(signed(
            &a,
            "ListMembers",
            pb::ListMembersRequest {
                group_id: "team".into(),
                limit: 2,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.members.len(), 2);
    assert!(!list.next_cursor.is_empty());
    let mine = g
        .list_user_groups(signed(
            &a,
            "ListUserGroups",
            pb::ListUserGroupsRequest {
                user_id: "carol".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.groups.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), ["team"]);

    g.leave(signed(&a, "Leave", member("team", "carol"))).await.unwrap();
    g.remove_member(signed(
        &a,
        "RemoveMember",
        pb::RemoveMemberRequest {
            group_id: "team".into(),
            user_id: "dave".into(),
        },
    ))
    .await
    .unwrap();
    let e = g
        .remove_member(signed(
            &a,
            "RemoveMember",
            pb::RemoveMemberRequest {
                group_id: "team".into(),
                user_id: "bob".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), error_code(&e).as_deref()),
        (tonic::Code::PermissionDenied, Some("forbidden"))
    );

    // Another app: not_found, as over REST.
    let e = g.get_group(signed(&b, "GetGroup", gid("team"))).await.unwrap_err();
    assert_eq!(
        (e.code(), error_code(&e).as_deref()),
        (tonic::Code::NotFound, Some("not_found"))
    );
    let e = g
        .dismiss_group(signed(&b, "DismissGroup", gid("team")))
        .await
        .unwrap_err();
    assert_eq!(error_code(&e).as_deref(), Some("not_found"));
    // Bad input: invalid_argument.
    let e = g
        .set_role(signed(
            &a,
            "SetRole",
            pb::SetRoleRequest {
                group_id: "team".into(),
                user_id: "alice".into(),
                role: "boss".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), error_code(&e).as_deref()),
        (tonic::Code::InvalidArgument, Some("invalid_argument"))
    );

    g.dismiss_group(signed(&a, "DismissGroup", gid("team"))).await.unwrap();
    let e = g.get_group(signed(&a, "GetGroup", gid("team"))).await.unwrap_err();
    assert_eq!(error_code(&e).as_deref(), Some("not_found"));
}
on_every_store!(grpc_groups, the_groups_service_over_grpc);

fn signed_messages(app: &TestApp, msg: pb::SendRequest) -> tonic::Request<pb::SendRequest> {
    grpc_signed(app, "/tern.server.v1.Messages/Send", msg)
}
