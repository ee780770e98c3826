//! Rooms through the server API, REST and gRPC, on SQLite and (when configured)
//! PostgreSQL: the registry with member counts and history, dismissal, mutes and the room
//! send rate from the server door, bad and oversized input, unsigned callers, and another
//! app's rooms answering `not_found`.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

use serde_json::{json, Value};
use support::*;
use tern_sdk::server::ServerClient;
use tern_sdk::signing::{new_nonce, sign_request, unix_now};

async fn call(c: &ServerClient, method: &str, path: &str, body: Option<Value>) -> Value {
    c.request::<Value>(method, path, body.as_ref())
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
}

/// (HTTP status, code) of a request that must fail.
async fn fails(c: &ServerClient, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    match c.request::<Value>(method, path, body.as_ref()).await {
        Err(tern_sdk::server::ServerError::Api { status, code, .. }) => (status, code),
        other => panic!("{method} {path} should fail, got {other:?}"),
    }
}

/// A signed request with raw bytes, for bodies a well-behaved client would not send;
/// (status, body, Retry-After).
async fn raw(s: &TestServer, a: &TestApp, method: &str, path: &str, body: &[u8]) -> (u16, Value, Option<String>) {
    let headers = sign_request(
        a.app.app_key.as_str(),
        &a.secret,
        method,
        path,
        body,
        unix_now(),
        &new_nonce(),
    );
    let mut req = s.http().request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{}{}", s.base, path),
    );
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let res = req.body(body.to_vec()).send().await.unwrap();
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = res.bytes().await.unwrap();
    (status, serde_json::from_slice(&text).unwrap_or(Value::Null), retry)
}

fn send_body(from: &str, room: &str, text: &str) -> Value {
    json!({"from": from, "to": {"room": room}, "type": "text", "content": {"text": text}})
}

async fn registry_history_and_dismissal(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    c.upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
        .await
        .unwrap();

    let lobby = c
        .create_room("lobby", Some("Lobby"), Some(json!({"topic": "welcome"})))
        .await
        .unwrap();
    assert_eq!(
        (
            lobby.name.as_str(),
            &lobby.metadata,
            lobby.created_by.as_str(),
            lobby.member_count,
            lobby.last_seq
        ),
        ("Lobby", &json!({"topic": "welcome"}), "server_api", 0, 0)
    );
    assert_eq!(
        fails(c, "POST", "/v1/rooms", Some(json!({"id": "lobby"}))).await,
        (409, "conflict".into())
    );
    // The defaults: the id as name, an empty object as metadata.
    let bare = c.create_room("bare", None, None).await.unwrap();
    assert_eq!((bare.name.as_str(), &bare.metadata), ("bare", &json!({})));
    c.create_room("zoo", None, None).await.unwrap();

    // Paged by id.
    let first = c.rooms(None, 2).await.unwrap();
    assert_eq!(
        first.rooms.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["bare", "lobby"]
    );
    let rest = c.rooms(first.next_cursor.as_deref(), 2).await.unwrap();
    assert_eq!(
        rest.rooms.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["zoo"]
    );
    assert_eq!(rest.next_cursor, None);

    // Updates keep what they do not name.
    let r = c.update_room("lobby", Some("Main lobby"), None).await.unwrap();
    assert_eq!(
        (r.name.as_str(), &r.metadata),
        ("Main lobby", &json!({"topic": "welcome"}))
    );
    let r = c.update_room("lobby", None, Some(json!({"pinned": 1}))).await.unwrap();
    assert_eq!((r.name.as_str(), &r.metadata), ("Main lobby", &json!({"pinned": 1})));
    assert!(r.updated_at >= r.created_at);

    // Messages are stored with a seq; the room shows its last one.
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        let sent = c
            .send_room_text("alice", "lobby", &format!("k{i}"), text)
            .await
            .unwrap();
        assert_eq!((sent.conversation_id.as_str(), sent.seq), ("r:lobby", i as i64 + 1));
    }
    assert_eq!(c.room("lobby").await.unwrap().last_seq, 3);
    let h = c.history("r:lobby", 0, 10).await.unwrap();
    assert_eq!(
        h.iter()
            .map(|m| (m.seq, m.content["text"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![(1, "one"), (2, "two"), (3, "three")]
    );
    // A retry of a room send is the first answer.
    let again = c.send_room_text("alice", "lobby", "k0", "one").await.unwrap();
    assert_eq!(again.seq, 1);
    // Unknown rooms are not_found for sends, from a user or from the system.
    let (st, code) = fails(c, "POST", "/v1/messages", Some(send_body("alice", "nowhere", "x"))).await;
    assert_eq!((st, code.as_str()), (404, "not_found"));
    let to_nowhere = json!({"to": {"room": "nowhere"}, "type": "text", "content": {"text": "x"}});
    assert_eq!(
        fails(c, "POST", "/v1/messages", Some(to_nowhere)).await,
        (404, "not_found".into())
    );
    // The system speaks in a room (no `from`): stored next in the room's timeline, with no
    // sender, and a retry with its key is the first answer.
    let system = json!({"to": {"room": "lobby"}, "client_msg_id": "notice-1", "type": "text",
        "content": {"text": "the stream starts in 5 minutes"}});
    let sent = call(c, "POST", "/v1/messages", Some(system.clone())).await;
    assert_eq!(
        (sent["conversation_id"].as_str(), sent["seq"].as_i64()),
        (Some("r:lobby"), Some(4))
    );
    assert_eq!(call(c, "POST", "/v1/messages", Some(system)).await["seq"], 4);
    let last = c.history("r:lobby", 3, 10).await.unwrap();
    assert_eq!(
        last.iter()
            .map(|m| (m.seq, m.from.as_deref(), m.content["text"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![(4, None, "the stream starts in 5 minutes")]
    );

    // Dismissal: the room and its history are gone, the id may be used again from seq 1.
    assert_eq!(c.dismiss_room("lobby").await.unwrap(), 0);
    assert_eq!(
        fails(c, "GET", "/v1/rooms/lobby", None).await,
        (404, "not_found".into())
    );
    let (st, _) = fails(c, "GET", "/v1/conversations/r%3Alobby/messages", None).await;
    assert_eq!(st, 404);
    assert_eq!(fails(c, "DELETE", "/v1/rooms/lobby", None).await.1, "not_found");
    c.create_room("lobby", None, None).await.unwrap();
    assert_eq!(c.send_room_text("bob", "lobby", "fresh", "again").await.unwrap().seq, 1);
}
on_every_store!(
    rooms_registry_history_and_dismissal,
    registry_history_and_dismissal,
    with_worker
);

async fn rate_and_mutes_from_the_server_door(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    c.upsert_users(&[json!({"id": "alice"}), json!({"id": "bob"})])
        .await
        .unwrap();
    c.create_room("hot", None, None).await.unwrap();
    c.create_room("quiet", None, None).await.unwrap();
    c.update_app_settings(&json!({"room_send_rate_per_second": 1}))
        .await
        .unwrap();

    // Past the room's rate: 429 rate_limited with a Retry-After, and nothing stored for it.
    let mut limited = 0;
    let mut stored = 0;
    for i in 0..4 {
        let body = serde_json::to_vec(&send_body("alice", "hot", &format!("{i}"))).unwrap();
        let (st, v, retry) = raw(&s, &a, "POST", "/v1/messages", &body).await;
        match st {
            200 => stored += 1,
            429 => {
                assert_eq!(v["error"]["code"], "rate_limited");
                assert_eq!(retry.as_deref(), Some("1"));
                limited += 1;
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert!(limited >= 1, "four at once exceed one a second");
    assert_eq!(c.history("r:hot", 0, 10).await.unwrap().len(), stored);
    // The budget is the room's: another room is not held back by it.
    c.send_room_text("bob", "quiet", "q0", "fine").await.unwrap();

    // Mutes in a room: the user's sends fail there, and only there.
    c.update_app_settings(&json!({"room_send_rate_per_second": 1000}))
        .await
        .unwrap();
    let until = tern_platform::domain::now_ms() + 3_600_000;
    let m = c.mute_in_room("quiet", "bob", Some(until)).await.unwrap();
    assert_eq!((m["user_id"].as_str(), m["until"].as_i64()), (Some("bob"), Some(until)));
    let forever = c.mute_in_room("quiet", "alice", None).await.unwrap();
    assert_eq!(forever["until"], 253_402_300_799_999_i64);
    let (st, code) = fails(
        c,
        "POST",
        "/v1/messages",
        Some(send_body("bob", "quiet", "let me talk")),
    )
    .await;
    assert_eq!((st, code.as_str()), (403, "user_muted"));
    c.send_room_text("bob", "hot", "h-bob", "elsewhere is fine")
        .await
        .unwrap();
    let mutes = c.room_mutes("quiet").await.unwrap();
    let muted: Vec<&str> = mutes["mutes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(muted, vec!["alice", "bob"]);
    let page = call(c, "GET", "/v1/rooms/quiet/mutes?limit=1", None).await;
    assert_eq!(page["mutes"].as_array().unwrap().len(), 1);
    let next = page["next_cursor"].as_str().unwrap();
    let page2 = call(c, "GET", &format!("/v1/rooms/quiet/mutes?limit=1&cursor={next}"), None).await;
    assert_eq!(page2["mutes"][0]["user_id"], "bob");
    c.unmute_in_room("quiet", "bob").await.unwrap();
    c.send_room_text("bob", "quiet", "q1", "thanks").await.unwrap();
    assert_eq!(
        fails(c, "DELETE", "/v1/rooms/quiet/mutes/bob", None).await,
        (404, "not_found".into())
    );

    // Removing a user who is not connected is harmless; the room must exist.
    let v = call(c, "DELETE", "/v1/rooms/quiet/members/bob", None).await;
    assert_eq!((v["ok"].as_bool(), v["sessions"].as_u64()), (Some(true), Some(0)));
    assert_eq!(
        fails(c, "DELETE", "/v1/rooms/nowhere/members/bob", None).await.1,
        "not_found"
    );
}
on_every_store!(room_rate_and_mutes, rate_and_mutes_from_the_server_door, with_worker);

async fn bad_input_and_callers(s: TestServer) {
    let a = s.app("a").await;
    let c = &a.client;
    c.upsert_users(&[json!({"id": "alice"})]).await.unwrap();
    c.create_room("r", None, None).await.unwrap();
    let bad_creates = [
        (json!({"id": "has space"}), "invalid_argument"),
        (json!({"id": "x".repeat(65)}), "invalid_argument"),
        (json!({"id": "r2", "name": ""}), "invalid_argument"),
        (json!({"id": "r2", "name": "n".repeat(101)}), "invalid_argument"),
        (json!({"id": "r2", "metadata": [1, 2]}), "invalid_argument"),
        (
            json!({"id": "r2", "metadata": {"blob": "x".repeat(5000)}}),
            "invalid_argument",
        ),
        (json!({"id": "r2", "owner": "alice"}), "invalid_json"),
        (json!({"name": "no id"}), "invalid_json"),
        (json!({"id": 7}), "invalid_json"),
    ];
    for (body, want) in bad_creates {
        let (st, code) = fails(c, "POST", "/v1/rooms", Some(body.clone())).await;
        assert_eq!((st, code.as_str()), (400, want), "{body}");
    }
    assert_eq!(
        fails(c, "GET", "/v1/rooms/r2", None).await.1,
        "not_found",
        "nothing half-made"
    );
    assert_eq!(
        fails(c, "PATCH", "/v1/rooms/r", Some(json!({"name": " "}))).await.1,
        "invalid_argument"
    );
    assert_eq!(
        fails(c, "PATCH", "/v1/rooms/r", Some(json!({"metadata": "text"})))
            .await
            .1,
        "invalid_argument"
    );
    assert_eq!(c.room("r").await.unwrap().name, "r", "a refused update changes nothing");
    assert_eq!(fails(c, "GET", "/v1/rooms/bad%20id", None).await.1, "invalid_argument");
    assert_eq!(
        fails(c, "GET", "/v1/rooms?cursor=%21%21", None).await.1,
        "invalid_argument"
    );
    assert_eq!(fails(c, "GET", "/v1/rooms?limit=x", None).await.1, "invalid_argument");
    let past = json!({"until": 1000});
    assert_eq!(
        fails(c, "PUT", "/v1/rooms/r/mutes/alice", Some(past)).await.1,
        "invalid_argument"
    );
    assert_eq!(fails(c, "PUT", "/v1/rooms/r/mutes/nobody", None).await.1, "not_found");
    assert_eq!(fails(c, "PUT", "/v1/rooms/none/mutes/alice", None).await.1, "not_found");

    // Oversized and malformed bodies.
    let big = format!(r#"{{"id":"big","metadata":{{"x":"{}"}}}}"#, "y".repeat(300 * 1024));
    let (st, v, _) = raw(&s, &a, "POST", "/v1/rooms", big.as_bytes()).await;
    assert_eq!((st, v["error"]["code"].as_str()), (413, Some("payload_too_large")));
    let (st, v, _) = raw(&s, &a, "POST", "/v1/rooms", b"{\"id\":").await;
    assert_eq!((st, v["error"]["code"].as_str()), (400, Some("invalid_json")));

    // Unsigned, or signed with a wrong secret: nothing is answered but the error.
    let res = s.http().get(format!("{}/v1/rooms/r", s.base)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "missing_credentials");
    let wrong = ServerClient::new(&s.base, a.app.app_key.as_str(), "sk_wrong");
    assert_eq!(
        fails(&wrong, "DELETE", "/v1/rooms/r", None).await,
        (401, "bad_signature".into())
    );
    assert_eq!(c.room("r").await.unwrap().id, "r", "still there");
}
on_every_store!(room_bad_input_and_callers, bad_input_and_callers, with_worker);

async fn another_apps_rooms_are_not_found(s: TestServer) {
    let a = s.app("a").await;
    let b = s.app("b").await;
    for app in [&a, &b] {
        app.client.upsert_users(&[json!({"id": "alice"})]).await.unwrap();
    }
    a.client.create_room("secret", None, None).await.unwrap();
    a.client.send_room_text("alice", "secret", "k", "for a").await.unwrap();
    let c = &b.client;
    for (method, path, body) in [
        ("GET", "/v1/rooms/secret", None),
        ("PATCH", "/v1/rooms/secret", Some(json!({"name": "mine"}))),
        ("DELETE", "/v1/rooms/secret", None),
        ("DELETE", "/v1/rooms/secret/members/alice", None),
        ("GET", "/v1/rooms/secret/mutes", None),
        ("PUT", "/v1/rooms/secret/mutes/alice", None),
        ("DELETE", "/v1/rooms/secret/mutes/alice", None),
        ("GET", "/v1/conversations/r%3Asecret/messages", None),
        ("POST", "/v1/messages", Some(send_body("alice", "secret", "x"))),
    ] {
        assert_eq!(
            fails(c, method, path, body).await,
            (404, "not_found".into()),
            "{method} {path}"
        );
    }
    assert!(c.rooms(None, 50).await.unwrap().rooms.is_empty());
    // The same id in B is B's own room, with its own seqs.
    c.create_room("secret", None, None).await.unwrap();
    assert_eq!(c.send_room_text("alice", "secret", "k", "for b").await.unwrap().seq, 1);
    assert_eq!(a.client.room("secret").await.unwrap().last_seq, 1);
    assert_eq!(
        a.client.history("r:secret", 0, 10).await.unwrap()[0].content["text"],
        "for a"
    );
}
on_every_store!(
    rooms_of_another_app_are_not_found,
    another_apps_rooms_are_not_found,
    with_worker
);

mod grpc {

    use tern_platform::proto::server_v1 as pb;
    use tern_tenant_api::grpc::error_code;

    use super::*;

    fn signed<T: prost::Message>(app: &TestApp, method: &str, msg: T) -> tonic::Request<T> {
        grpc_signed(app, &format!("/tern.server.v1.Rooms/{method}"), msg)
    }

    fn room_req(id: &str) -> pb::RoomRequest {
        pb::RoomRequest { room_id: id.into() }
    }

    async fn rooms_over_grpc(s: TestServer) {
        let a = s.app("a").await;
        let b = s.app("b").await;
        a.client.upsert_users(&[json!({"id": "alice"})]).await.unwrap();
        let mut r = pb::rooms_client::RoomsClient::new(grpc_channel(&s).await);

        let create = pb::CreateRoomRequest {
            id: "stage".into(),
            name: Some("Stage".into()),
            metadata: tern_tenant_api::grpc_struct(json!({"capacity": 500})),
        };
        let room = r
            .create_room(signed(&a, "CreateRoom", create.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (room.name.as_str(), room.created_by.as_str(), room.member_count),
            ("Stage", "server_api", 0)
        );
        let e = r.create_room(signed(&a, "CreateRoom", create)).await.unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("conflict"));
        // The same room over REST and gRPC.
        a.client.send_room_text("alice", "stage", "k1", "hi").await.unwrap();
        let got = r
            .get_room(signed(&a, "GetRoom", room_req("stage")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((got.last_seq, got.name.as_str()), (1, "Stage"));
        let rest = a.client.room("stage").await.unwrap();
        assert_eq!(
            (rest.name, rest.last_seq, rest.created_at),
            (got.name.clone(), 1, got.created_at)
        );
        let list = r
            .list_rooms(signed(
                &a,
                "ListRooms",
                pb::ListRoomsRequest {
                    cursor: String::new(),
                    limit: 0,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(list.rooms.len(), 1);
        let upd = pb::UpdateRoomRequest {
            room_id: "stage".into(),
            name: Some("Main stage".into()),
            metadata: None,
        };
        let u = r.update_room(signed(&a, "UpdateRoom", upd)).await.unwrap().into_inner();
        assert_eq!(u.name, "Main stage");
        assert_eq!(
            u.metadata.map(tern_tenant_api_struct_to_json),
            Some(json!({"capacity": 500})),
            "metadata kept"
        );

        let mute = pb::MuteRoomUserRequest {
            room_id: "stage".into(),
            user_id: "alice".into(),
            until: None,
        };
        let m = r.mute_user(signed(&a, "MuteUser", mute)).await.unwrap().into_inner();
        assert_eq!(m.until, 253_402_300_799_999);
        let e = a
            .client
            .send_room_text("alice", "stage", "k2", "hello?")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("user_muted"));
        let mutes = r
            .list_mutes(signed(
                &a,
                "ListMutes",
                pb::ListRoomMutesRequest {
                    room_id: "stage".into(),
                    cursor: String::new(),
                    limit: 0,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            mutes.mutes.iter().map(|m| m.user_id.as_str()).collect::<Vec<_>>(),
            vec!["alice"]
        );
        let who = pb::RoomUserRequest {
            room_id: "stage".into(),
            user_id: "alice".into(),
        };
        r.unmute_user(signed(&a, "UnmuteUser", who.clone())).await.unwrap();
        a.client.send_room_text("alice", "stage", "k3", "thanks").await.unwrap();
        let removed = r
            .remove_user(signed(&a, "RemoveUser", who.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(removed.sessions, 0);

        // Another app: not_found for each; bad ids: invalid_argument.
        let e = r.get_room(signed(&b, "GetRoom", room_req("stage"))).await.unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("not_found"));
        let e = r
            .delete_room(signed(&b, "DeleteRoom", room_req("stage")))
            .await
            .unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("not_found"));
        let e = r.remove_user(signed(&b, "RemoveUser", who)).await.unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("not_found"));
        let e = r.get_room(signed(&a, "GetRoom", room_req("bad id"))).await.unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("invalid_argument"));
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = r.get_room(tonic::Request::new(room_req("stage"))).await.unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("missing_credentials"));

        r.delete_room(signed(&a, "DeleteRoom", room_req("stage")))
            .await
            .unwrap();
        let e = r.get_room(signed(&a, "GetRoom", room_req("stage"))).await.unwrap_err();
        assert_eq!(
            (e.code(), error_code(&e).as_deref()),
            (tonic::Code::NotFound, Some("not_found"))
        );
    }
    on_every_store!(rooms_over_grpc_on_every_store, rooms_over_grpc, with_worker);

    fn tern_tenant_api_struct_to_json(s: prost_types::Struct) -> Value {
        // Back through JSON: the REST view of the same Struct.
        let fields: serde_json::Map<String, Value> = s
            .fields
            .into_iter()
            .map(|(k, v)| {
                let v = match v.kind {
                    Some(prost_types::value::Kind::NumberValue(n)) => json!(n as i64),
                    Some(prost_types::value::Kind::StringValue(t)) => json!(t),
                    other => panic!("unexpected {other:?}"),
                };
                (k, v)
            })
            .collect();
        Value::Object(fields)
    }
}
