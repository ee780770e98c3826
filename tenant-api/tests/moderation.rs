//! Moderation through the REST server API: word lists filter every send, bans and mutes
//! stop a user's sends; on SQLite and (when configured) PostgreSQL.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use serde_json::{json, Value};
use support::*;
use tern_platform::domain::{now_ms, FOREVER};
use tern_sdk::server::{ServerClient, ServerError};

fn code_of<T: std::fmt::Debug>(r: Result<T, ServerError>) -> (u16, String) {
    match r {
        Err(ServerError::Api { status, code, .. }) => (status, code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn last_text(c: &ServerClient, conversation: &str) -> String {
    let h = c.history(conversation, 0, 100).await.unwrap();
    h.last().unwrap().content["text"].as_str().unwrap().to_owned()
}

async fn word_lists_filter_every_send(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    c.upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
        .await
        .unwrap();

    let list = c
        .put_word_list("mild", "replace", &["darn", "坏蛋", " darn "])
        .await
        .unwrap();
    assert_eq!(list["name"], "mild");
    assert_eq!(list["policy"], "replace");
    assert_eq!(list["words"], json!(["darn", "坏蛋"]));

    // Replaced: one asterisk per character, ASCII case ignored, CJK matched.
    c.send_text("alice", "bob", "m1", "DaRn you, 坏蛋!").await.unwrap();
    assert_eq!(last_text(c, "d:alice:bob").await, "**** you, **!");
    // The server's own sends are filtered too.
    c.send(&json!({"to": {"user": "bob"}, "type": "text", "content": {"text": "darn"}}))
        .await
        .unwrap();
    assert_eq!(last_text(c, "s:bob").await, "****");

    // Rejected: nothing is stored.
    c.put_word_list("hard", "reject", &["forbidden"]).await.unwrap();
    let before = c.history("d:alice:bob", 0, 100).await.unwrap().len();
    let r = c.send_text("alice", "bob", "m2", "this is FORBIDDEN").await;
    assert_eq!(code_of(r), (422, "content_rejected".to_owned()));
    assert_eq!(c.history("d:alice:bob", 0, 100).await.unwrap().len(), before);
    // A file's name is filtered as well.
    let r = c
        .send(&json!({"from": "alice", "to": {"user": "bob"}, "type": "file",
                      "content": {"url": "https://x.example/f", "name": "forbidden.pdf"}}))
        .await;
    assert_eq!(code_of(r), (422, "content_rejected".to_owned()));

    let all = c.word_lists().await.unwrap();
    let names: Vec<&str> = all["word_lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["hard", "mild"]);
    let one: Value = c.request("GET", "/v1/moderation/word-lists/hard", None).await.unwrap();
    assert_eq!(one["words"], json!(["forbidden"]));

    // Changing the policy of a list takes effect on the next send.
    c.put_word_list("hard", "replace", &["forbidden"]).await.unwrap();
    c.send_text("alice", "bob", "m3", "forbidden fruit").await.unwrap();
    assert_eq!(last_text(c, "d:alice:bob").await, "********* fruit");

    // Deleted: the words pass again.
    c.delete_word_list("hard").await.unwrap();
    c.delete_word_list("mild").await.unwrap();
    c.send_text("alice", "bob", "m4", "darn forbidden").await.unwrap();
    assert_eq!(last_text(c, "d:alice:bob").await, "darn forbidden");
    assert_eq!(code_of(c.delete_word_list("mild").await), (404, "not_found".to_owned()));
}
on_every_store!(
    word_lists_filter_every_send_on_every_store,
    word_lists_filter_every_send,
    with_worker
);

async fn word_list_input_is_checked(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    let put = |name: &'static str, body: Value| {
        let c = c.clone();
        async move {
            c.request::<Value>("PUT", &format!("/v1/moderation/word-lists/{name}"), Some(&body))
                .await
        }
    };
    let bad = [
        ("ok", json!({"policy": "mask", "words": ["x"]}), "invalid_json"),
        (
            "ok",
            json!({"policy": "replace", "words": ["x"], "extra": 1}),
            "invalid_json",
        ),
        ("ok", json!({"policy": "replace"}), "invalid_json"),
        ("ok", json!({"policy": "replace", "words": []}), "invalid_argument"),
        ("ok", json!({"policy": "replace", "words": ["  "]}), "invalid_argument"),
        (
            "ok",
            json!({"policy": "replace", "words": ["x".repeat(65)]}),
            "invalid_argument",
        ),
        (
            "bad%20name",
            json!({"policy": "replace", "words": ["x"]}),
            "invalid_argument",
        ),
    ];
    for (name, body, want) in bad {
        let (status, code) = code_of(put(name, body.clone()).await);
        assert_eq!(code, want, "{name} {body}");
        assert_eq!(status, 400);
    }
    // At most 50 lists; replacing one of them is still fine.
    for i in 0..50 {
        c.put_word_list(&format!("l{i}"), "replace", &["x"]).await.unwrap();
    }
    let r = c.put_word_list("l50", "replace", &["x"]).await;
    assert_eq!(code_of(r), (400, "invalid_argument".to_owned()));
    c.put_word_list("l0", "reject", &["y"]).await.unwrap();

    let r = c
        .request::<Value>("GET", "/v1/moderation/word-lists/missing", None)
        .await;
    assert_eq!(code_of(r), (404, "not_found".to_owned()));

    // Unsigned requests are refused.
    let res = s
        .http()
        .get(format!("{}/v1/moderation/word-lists", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}
on_every_store!(
    word_list_input_is_checked_on_every_store,
    word_list_input_is_checked,
    with_worker
);

async fn apps_cannot_touch_each_others_moderation(s: TestServer) {
    let a = s.app("a").await;
    let b = s.app("b").await;
    a.client
        .upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
        .await
        .unwrap();
    b.client
        .upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
        .await
        .unwrap();
    a.client.put_word_list("secret", "reject", &["nope"]).await.unwrap();

    let bc = &b.client;
    assert_eq!(bc.word_lists().await.unwrap(), json!({"word_lists": []}));
    let r = bc
        .request::<Value>("GET", "/v1/moderation/word-lists/secret", None)
        .await;
    assert_eq!(code_of(r), (404, "not_found".to_owned()));
    assert_eq!(
        code_of(bc.delete_word_list("secret").await),
        (404, "not_found".to_owned())
    );
    // A's lists do not filter B's messages.
    bc.send_text("alice", "bob", "b1", "nope").await.unwrap();
    assert_eq!(last_text(bc, "d:alice:bob").await, "nope");
    // A's list is still there.
    assert_eq!(a.client.word_lists().await.unwrap()["word_lists"][0]["name"], "secret");

    // B cannot ban or mute A's users (A's "carol" is not B's).
    a.client.upsert_users(&[json!({"id": "carol"})]).await.unwrap();
    assert_eq!(
        code_of(bc.ban_user("carol", None, "").await),
        (404, "not_found".to_owned())
    );
    assert_eq!(
        code_of(bc.mute_user("carol", None).await),
        (404, "not_found".to_owned())
    );
    assert_eq!(code_of(bc.unban_user("carol").await), (404, "not_found".to_owned()));
    assert_eq!(code_of(bc.unmute_user("carol").await), (404, "not_found".to_owned()));
    // Banning B's alice leaves A's alice alone.
    bc.ban_user("alice", None, "").await.unwrap();
    a.client.send_text("alice", "bob", "a1", "still here").await.unwrap();
}
on_every_store!(
    apps_cannot_touch_each_others_moderation_on_every_store,
    apps_cannot_touch_each_others_moderation,
    with_worker
);

async fn bans_and_mutes_stop_sends(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    c.upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
        .await
        .unwrap();

    // Ban forever, then lift it.
    let u = c.ban_user("alice", None, "spam").await.unwrap();
    assert_eq!(u["banned_until"], json!(FOREVER));
    assert_eq!(c.get_user("alice").await.unwrap()["banned_until"], json!(FOREVER));
    let r = c.send_text("alice", "bob", "x1", "hi").await;
    assert_eq!(code_of(r), (403, "user_banned".to_owned()));
    let u = c.unban_user("alice").await.unwrap();
    assert_eq!(u["banned_until"], Value::Null);
    c.send_text("alice", "bob", "x2", "back").await.unwrap();

    // A ban until a time.
    let until = now_ms() + 3_600_000;
    let u = c.ban_user("alice", Some(until), "").await.unwrap();
    assert_eq!(u["banned_until"], json!(until));
    c.unban_user("alice").await.unwrap();

    // Muted: sends fail, others still reach the user, and history is readable.
    let u = c.mute_user("alice", Some(until)).await.unwrap();
    assert_eq!(u["muted_until"], json!(until));
    let r = c.send_text("alice", "bob", "x3", "hello?").await;
    assert_eq!(code_of(r), (403, "user_muted".to_owned()));
    c.send_text("bob", "alice", "y1", "you are muted").await.unwrap();
    assert_eq!(last_text(c, "d:alice:bob").await, "you are muted");
    let u = c.unmute_user("alice").await.unwrap();
    assert_eq!(u["muted_until"], Value::Null);
    c.send_text("alice", "bob", "x4", "thanks").await.unwrap();
    // Forever.
    assert_eq!(c.mute_user("alice", None).await.unwrap()["muted_until"], json!(FOREVER));

    // Malformed input.
    let past = now_ms() - 1;
    assert_eq!(
        code_of(c.ban_user("alice", Some(past), "").await),
        (400, "invalid_argument".to_owned())
    );
    assert_eq!(
        code_of(c.mute_user("alice", Some(past)).await),
        (400, "invalid_argument".to_owned())
    );
    assert_eq!(
        code_of(c.ban_user("alice", Some(FOREVER + 1), "").await),
        (400, "invalid_argument".to_owned())
    );
    let long = "r".repeat(257);
    assert_eq!(
        code_of(c.ban_user("alice", None, &long).await),
        (400, "invalid_argument".to_owned())
    );
    let r = c
        .request::<Value>("POST", "/v1/users/alice/ban", Some(&json!({"until": "soon"})))
        .await;
    assert_eq!(code_of(r), (400, "invalid_json".to_owned()));
    let r = c
        .request::<Value>("POST", "/v1/users/alice/mute", Some(&json!({"forever": true})))
        .await;
    assert_eq!(code_of(r), (400, "invalid_json".to_owned()));
    assert_eq!(
        code_of(c.ban_user("nobody", None, "").await),
        (404, "not_found".to_owned())
    );
    assert_eq!(
        code_of(c.mute_user("nobody", None).await),
        (404, "not_found".to_owned())
    );
    assert_eq!(
        code_of(c.ban_user("bad id!", None, "").await),
        (400, "invalid_argument".to_owned())
    );
    // An empty body bans forever.
    let u: Value = c.request("POST", "/v1/users/bob/ban", None).await.unwrap();
    assert_eq!(u["banned_until"], json!(FOREVER));
}
on_every_store!(
    bans_and_mutes_stop_sends_on_every_store,
    bans_and_mutes_stop_sends,
    with_worker
);

// ---- gRPC ------------------------------------------------------------------------------

mod grpc {
    use tern_platform::proto::server_v1 as pb;
    use tern_tenant_api::grpc::error_code;

    use super::*;

    fn signed<T: prost::Message>(app: &TestApp, method: &str, msg: T) -> tonic::Request<T> {
        grpc_signed(app, &format!("/tern.server.v1.Moderation/{method}"), msg)
    }

    async fn moderation_over_grpc(s: TestServer) {
        let a = s.app("a").await;
        let b = s.app("b").await;
        a.client
            .upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
            .await
            .unwrap();
        let mut m = pb::moderation_client::ModerationClient::new(grpc_channel(&s).await);

        let put = pb::PutWordListRequest {
            name: "mild".into(),
            policy: "replace".into(),
            words: vec!["darn".into()],
        };
        let l = m
            .put_word_list(signed(&a, "PutWordList", put))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((l.name.as_str(), l.policy.as_str()), ("mild", "replace"));
        a.client.send_text("alice", "bob", "g1", "darn").await.unwrap();
        assert_eq!(last_text(&a.client, "d:alice:bob").await, "****");
        let all = m
            .list_word_lists(signed(&a, "ListWordLists", pb::Empty {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(all.word_lists.len(), 1);

        let bad = pb::PutWordListRequest {
            name: "x".into(),
            policy: "mask".into(),
            words: vec!["y".into()],
        };
        let e = m.put_word_list(signed(&a, "PutWordList", bad)).await.unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("invalid_argument"));
        // Another app sees nothing of A's.
        let req = pb::WordListRequest { name: "mild".into() };
        let e = m.get_word_list(signed(&b, "GetWordList", req)).await.unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("not_found"));

        let ban = pb::BanUserRequest {
            user_id: "alice".into(),
            until: None,
            reason: "spam".into(),
        };
        let u = m
            .ban_user(signed(&a, "BanUser", ban.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(u.banned_until, Some(FOREVER));
        let e = m.ban_user(signed(&b, "BanUser", ban)).await.unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("not_found"));
        let unban = pb::UserRequest {
            user_id: "alice".into(),
        };
        let u = m.unban_user(signed(&a, "UnbanUser", unban)).await.unwrap().into_inner();
        assert_eq!(u.banned_until, None);

        let until = now_ms() + 60_000;
        let mute = pb::MuteUserRequest {
            user_id: "alice".into(),
            until: Some(until),
        };
        let u = m.mute_user(signed(&a, "MuteUser", mute)).await.unwrap().into_inner();
        assert_eq!(u.muted_until, Some(until));
        let r = a.client.send_text("alice", "bob", "g2", "hi").await;
        assert_eq!(code_of(r), (403, "user_muted".to_owned()));
        let unmute = pb::UserRequest {
            user_id: "alice".into(),
        };
        let u = m
            .unmute_user(signed(&a, "UnmuteUser", unmute))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(u.muted_until, None);
        a.client.send_text("alice", "bob", "g3", "hi").await.unwrap();

        let del = pb::WordListRequest { name: "mild".into() };
        m.delete_word_list(signed(&a, "DeleteWordList", del)).await.unwrap();
        // Unsigned calls are refused.
        let e = m.list_word_lists(tonic::Request::new(pb::Empty {})).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
    }
    on_every_store!(moderation_over_grpc_on_every_store, moderation_over_grpc, with_worker);
}
