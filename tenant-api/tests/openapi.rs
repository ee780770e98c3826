//! Every operation of the server API's OpenAPI document (`/v1`), exercised against a live
//! server, answers with a documented status and a body that fits the documented schema. The
//! committed `docs/openapi.json` (the server API with the operator API merged in, as the
//! binary serves it) is checked by the `tern` package's `tests/openapi.rs`.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use support::*;

/// A minimal JSON Schema check of what utoipa emits: $ref, type (with null), properties,
/// required, items, oneOf/anyOf/allOf. Unknown properties fail: an undocumented field is a
/// shape the document does not promise.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return check(doc, &doc["components"]["schemas"][name], v, at);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema[key].as_array() {
            if alts.iter().any(|s| check(doc, s, v, at).is_ok()) {
                return Ok(());
            }
            return Err(format!("{at}: matches none of {key}"));
        }
    }
    if let Some(all) = schema["allOf"].as_array() {
        // One object made of several: check against the union of their properties.
        let mut merged = json!({"type": "object", "properties": {}, "required": []});
        for part in all {
            let part = match part["$ref"].as_str() {
                Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
                None => part,
            };
            for (k, p) in part["properties"].as_object().into_iter().flatten() {
                merged["properties"][k] = p.clone();
            }
            for r in part["required"].as_array().into_iter().flatten() {
                merged["required"].as_array_mut().unwrap().push(r.clone());
            }
        }
        return check(doc, &merged, v, at);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() {
        let ok = types.iter().any(|t| match *t {
            "null" => v.is_null(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            _ => false,
        });
        if !ok {
            return Err(format!("{at}: {v} is not of type {types:?}"));
        }
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), v.as_object()) {
        for req in schema["required"].as_array().into_iter().flatten() {
            let k = req.as_str().unwrap();
            if !obj.contains_key(k) {
                return Err(format!("{at}: required field {k} missing"));
            }
        }
        for (k, val) in obj {
            match props.get(k) {
                Some(s) => check(doc, s, val, &format!("{at}.{k}"))?,
                None if schema.get("additionalProperties").is_some_and(|a| a != &json!(false)) => {}
                None => return Err(format!("{at}: undocumented field {k}")),
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, val) in arr.iter().enumerate() {
            check(doc, items, val, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers_as_documented() {
    for (backend, store, dir) in stores().await {
        eprintln!("on {backend}");
        // Pushes go to the provider double, which trusts the APNs key set below.
        let double = tern_platform::push::double::ProviderDouble::start().await.unwrap();
        let (p8, public) = tern_platform::push::test_keys::p256();
        double.trust_apns_key("ABC123DEFG", "TEAM123456", &public);
        let config = EngineConfig {
            push: double.push_config(),
            ..EngineConfig::default()
        };
        let s = TestServer::start_with(store, dir, config).await;
        let a = s.app("a").await;
        let c = &a.client;
        // What the samples refer to.
        c.upsert_users(&[
            json!({"id": "alice"}),
            json!({"id": "bob"}),
            json!({"id": "carol"}),
            json!({"id": "dave"}),
        ])
        .await
        .unwrap();
        let sent = c.send_text("alice", "bob", "seed", "hi").await.unwrap();
        c.create_group("g0", "G0", "alice", &["carol"]).await.unwrap();
        let in_group = c
            .send(&json!({"from": "alice", "to": {"group": "g0"}, "type": "text", "content": {"text": "hi all"}}))
            .await
            .unwrap();
        let dead = tern_platform::store::NewOutboxEvent {
            id: "wh_dead1".into(),
            app_id: a.app.id.clone(),
            event_type: "message.sent".into(),
            body: "{}".into(),
            created_at: 1,
        };
        s.store.enqueue_events(&[dead]).await.unwrap();
        s.store.mark_event_dead("wh_dead1", 3, "gave up").await.unwrap();
        let uploaded = c.upload_file("alice", "a.txt", "text/plain", b"hello").await.unwrap();
        let served: Value = reqwest::get(format!("{}/v1/openapi.json", s.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let doc: Value = serde_json::from_str(&tern_tenant_api::openapi::document_json()).unwrap();
        assert_eq!(served, doc, "the server serves the generated document");

        // One sample request per documented operation, in an order that keeps them valid.
        let samples: Vec<(&str, &str, String, Option<Value>)> = vec![
            (
                "post",
                "/v1/users",
                "/v1/users".into(),
                Some(json!({"users": [{"id": "erin", "name": "Erin"}]})),
            ),
            ("get", "/v1/users", "/v1/users?limit=2".into(), None),
            ("get", "/v1/users/{user_id}", "/v1/users/alice".into(), None),
            (
                "patch",
                "/v1/users/{user_id}",
                "/v1/users/alice".into(),
                Some(json!({"name": "Alice"})),
            ),
            (
                "post",
                "/v1/users/{user_id}/tokens",
                "/v1/users/alice/tokens".into(),
                Some(json!({"ttl_seconds": 60})),
            ),
            (
                "post",
                "/v1/users/{user_id}/tokens/revoke",
                "/v1/users/erin/tokens/revoke".into(),
                None,
            ),
            ("post", "/v1/users/{user_id}/kick", "/v1/users/alice/kick".into(), None),
            (
                "get",
                "/v1/users/{user_id}/conversations",
                "/v1/users/alice/conversations".into(),
                None,
            ),
            (
                "get",
                "/v1/users/{user_id}/conversations/{conversation_id}",
                "/v1/users/alice/conversations/d%3Aalice%3Abob".into(),
                None,
            ),
            (
                "post",
                "/v1/users/{user_id}/conversations/{conversation_id}/read",
                "/v1/users/bob/conversations/d%3Aalice%3Abob/read".into(),
                Some(json!({"seq": 1})),
            ),
            (
                "post",
                "/v1/messages",
                "/v1/messages".into(),
                Some(json!({"from": "bob", "to": {"user": "alice"}, "type": "text", "content": {"text": "yo"}})),
            ),
            (
                "post",
                "/v1/messages/batch",
                "/v1/messages/batch".into(),
                Some(json!({"from": "alice", "to": ["bob", "nobody"], "type": "text", "content": {"text": "all"}})),
            ),
            (
                "get",
                "/v1/messages/{msg_id}",
                format!("/v1/messages/{}", sent.msg_id),
                None,
            ),
            (
                "get",
                "/v1/conversations/{conversation_id}/messages",
                "/v1/conversations/d%3Aalice%3Abob/messages?after_seq=0".into(),
                None,
            ),
            // ---- message lifecycle (before the recall of the same message) ----
            (
                "patch",
                "/v1/messages/{msg_id}",
                format!("/v1/messages/{}", sent.msg_id),
                Some(json!({"content": {"text": "hi, edited"}})),
            ),
            (
                "post",
                "/v1/messages/{msg_id}/extensions",
                format!("/v1/messages/{}/extensions", sent.msg_id),
                Some(json!({"user_id": "bob", "set": [{"key": "k", "value": "v", "expected_version": 0}]})),
            ),
            (
                "get",
                "/v1/messages/{msg_id}/extensions",
                format!("/v1/messages/{}/extensions", sent.msg_id),
                None,
            ),
            (
                "put",
                "/v1/messages/{msg_id}/reactions/{reaction}/users/{user_id}",
                format!("/v1/messages/{}/reactions/%F0%9F%91%8D/users/bob", sent.msg_id),
                None,
            ),
            (
                "get",
                "/v1/messages/{msg_id}/reactions/{reaction}/users",
                format!("/v1/messages/{}/reactions/%F0%9F%91%8D/users?limit=10", sent.msg_id),
                None,
            ),
            (
                "delete",
                "/v1/messages/{msg_id}/reactions/{reaction}/users/{user_id}",
                format!("/v1/messages/{}/reactions/%F0%9F%91%8D/users/bob", sent.msg_id),
                None,
            ),
            (
                "post",
                "/v1/messages/{msg_id}/delete-for-user",
                format!("/v1/messages/{}/delete-for-user", sent.msg_id),
                Some(json!({"user_id": "bob"})),
            ),
            (
                "post",
                "/v1/messages/{msg_id}/recall",
                format!("/v1/messages/{}/recall", sent.msg_id),
                None,
            ),
            (
                "post",
                "/v1/groups",
                "/v1/groups".into(),
                Some(json!({"id": "g1", "name": "G1", "owner": "alice", "members": ["bob"]})),
            ),
            ("get", "/v1/groups/{group_id}", "/v1/groups/g1".into(), None),
            (
                "post",
                "/v1/groups/{group_id}/members",
                "/v1/groups/g1/members".into(),
                Some(json!({"members": ["carol"]})),
            ),
            (
                "get",
                "/v1/groups/{group_id}/members",
                "/v1/groups/g1/members".into(),
                None,
            ),
            (
                "delete",
                "/v1/groups/{group_id}/members/{user_id}",
                "/v1/groups/g1/members/carol".into(),
                None,
            ),
            (
                "patch",
                "/v1/groups/{group_id}",
                "/v1/groups/g1".into(),
                Some(json!({"announcement": "hello", "join_policy": "free", "avatar_url": null})),
            ),
            (
                "get",
                "/v1/groups/{group_id}/members/{user_id}",
                "/v1/groups/g1/members/bob".into(),
                None,
            ),
            (
                "post",
                "/v1/groups/{group_id}/members/{user_id}/role",
                "/v1/groups/g1/members/bob/role".into(),
                Some(json!({"role": "admin"})),
            ),
            (
                "post",
                "/v1/groups/{group_id}/members/{user_id}/mute",
                "/v1/groups/g1/members/bob/mute".into(),
                Some(json!({"until": null})),
            ),
            (
                "delete",
                "/v1/groups/{group_id}/members/{user_id}/mute",
                "/v1/groups/g1/members/bob/mute".into(),
                None,
            ),
            (
                "post",
                "/v1/groups/{group_id}/join",
                "/v1/groups/g1/join".into(),
                Some(json!({"user_id": "dave"})),
            ),
            (
                "post",
                "/v1/groups/{group_id}/members/{user_id}/leave",
                "/v1/groups/g1/members/dave/leave".into(),
                None,
            ),
            (
                "post",
                "/v1/groups/{group_id}/join",
                "/v1/groups/g0/join".into(),
                Some(json!({"user_id": "bob", "message": "let me in"})),
            ),
            (
                "post",
                "/v1/groups/{group_id}/join",
                "/v1/groups/g0/join".into(),
                Some(json!({"user_id": "dave"})),
            ),
            (
                "get",
                "/v1/groups/{group_id}/join-requests",
                "/v1/groups/g0/join-requests?limit=10".into(),
                None,
            ),
            (
                "post",
                "/v1/groups/{group_id}/join-requests/{user_id}/accept",
                "/v1/groups/g0/join-requests/bob/accept".into(),
                None,
            ),
            (
                "post",
                "/v1/groups/{group_id}/join-requests/{user_id}/decline",
                "/v1/groups/g0/join-requests/dave/decline".into(),
                None,
            ),
            (
                "post",
                "/v1/groups/{group_id}/owner",
                "/v1/groups/g1/owner".into(),
                Some(json!({"user_id": "bob"})),
            ),
            (
                "get",
                "/v1/users/{user_id}/groups",
                "/v1/users/alice/groups".into(),
                None,
            ),
            (
                "post",
                "/v1/groups/{group_id}/read-counts",
                "/v1/groups/g0/read-counts".into(),
                Some(json!({"msg_ids": [in_group.msg_id]})),
            ),
            (
                "get",
                "/v1/groups/{group_id}/messages/{msg_id}/readers",
                format!("/v1/groups/g0/messages/{}/readers?unread=true", in_group.msg_id),
                None,
            ),
            ("delete", "/v1/groups/{group_id}", "/v1/groups/g1".into(), None),
            ("get", "/v1/app/settings", "/v1/app/settings".into(), None),
            (
                "patch",
                "/v1/app/settings",
                "/v1/app/settings".into(),
                Some(json!({"group_member_limit": 5000, "room_backlog": 20})),
            ),
            (
                "post",
                "/v1/presence/query",
                "/v1/presence/query".into(),
                Some(json!({"users": ["alice", "bob"]})),
            ),
            (
                "post",
                "/v1/broadcasts",
                "/v1/broadcasts".into(),
                Some(json!({"type": "text", "content": {"text": "hello all"}})),
            ),
            ("get", "/v1/broadcasts", "/v1/broadcasts?limit=5".into(), None),
            (
                "get",
                "/v1/broadcasts/{broadcast_id}",
                "/v1/broadcasts/{broadcast}".into(),
                None,
            ),
            (
                "post",
                "/v1/broadcasts/{broadcast_id}/cancel",
                "/v1/broadcasts/{broadcast}/cancel".into(),
                None,
            ),
            (
                "put",
                "/v1/webhook",
                "/v1/webhook".into(),
                Some(json!({"url": null, "events": ["message.sent"]})),
            ),
            ("get", "/v1/webhook", "/v1/webhook".into(), None),
            ("get", "/v1/webhook/dead-events", "/v1/webhook/dead-events".into(), None),
            (
                "post",
                "/v1/webhook/dead-events/{event_id}/redeliver",
                "/v1/webhook/dead-events/wh_dead1/redeliver".into(),
                None,
            ),
            // ---- moderation ----
            (
                "put",
                "/v1/moderation/word-lists/{name}",
                "/v1/moderation/word-lists/mild".into(),
                Some(json!({"policy": "replace", "words": ["darn"]})),
            ),
            (
                "get",
                "/v1/moderation/word-lists",
                "/v1/moderation/word-lists".into(),
                None,
            ),
            (
                "get",
                "/v1/moderation/word-lists/{name}",
                "/v1/moderation/word-lists/mild".into(),
                None,
            ),
            (
                "delete",
                "/v1/moderation/word-lists/{name}",
                "/v1/moderation/word-lists/mild".into(),
                None,
            ),
            (
                "post",
                "/v1/users/{user_id}/ban",
                "/v1/users/carol/ban".into(),
                Some(json!({"until": null, "reason": "spam"})),
            ),
            ("delete", "/v1/users/{user_id}/ban", "/v1/users/carol/ban".into(), None),
            (
                "post",
                "/v1/users/{user_id}/mute",
                "/v1/users/carol/mute".into(),
                Some(json!({"until": null})),
            ),
            (
                "delete",
                "/v1/users/{user_id}/mute",
                "/v1/users/carol/mute".into(),
                None,
            ),
            // ---- friends and blocks ----
            (
                "post",
                "/v1/users/{user_id}/friend-requests",
                "/v1/users/carol/friend-requests".into(),
                Some(json!({"to": "alice", "message": "hi"})),
            ),
            (
                "post",
                "/v1/users/{user_id}/friend-requests",
                "/v1/users/bob/friend-requests".into(),
                Some(json!({"to": "alice"})),
            ),
            (
                "get",
                "/v1/users/{user_id}/friend-requests",
                "/v1/users/alice/friend-requests".into(),
                None,
            ),
            (
                "post",
                "/v1/users/{user_id}/friend-requests/{from_id}/accept",
                "/v1/users/alice/friend-requests/carol/accept".into(),
                None,
            ),
            (
                "post",
                "/v1/users/{user_id}/friend-requests/{from_id}/decline",
                "/v1/users/alice/friend-requests/bob/decline".into(),
                None,
            ),
            (
                "get",
                "/v1/users/{user_id}/friends",
                "/v1/users/alice/friends".into(),
                None,
            ),
            (
                "get",
                "/v1/users/{user_id}/friends/{friend_id}",
                "/v1/users/alice/friends/carol".into(),
                None,
            ),
            (
                "patch",
                "/v1/users/{user_id}/friends/{friend_id}",
                "/v1/users/alice/friends/carol".into(),
                Some(json!({"remark": "Caz", "tags": ["family"]})),
            ),
            (
                "delete",
                "/v1/users/{user_id}/friends/{friend_id}",
                "/v1/users/alice/friends/carol?both=true".into(),
                None,
            ),
            (
                "put",
                "/v1/users/{user_id}/blocks/{blocked_id}",
                "/v1/users/alice/blocks/bob".into(),
                None,
            ),
            (
                "get",
                "/v1/users/{user_id}/blocks",
                "/v1/users/alice/blocks".into(),
                None,
            ),
            (
                "delete",
                "/v1/users/{user_id}/blocks/{blocked_id}",
                "/v1/users/alice/blocks/bob".into(),
                None,
            ),
            // ---- offline push ----
            (
                "put",
                "/v1/push/credentials/apns",
                "/v1/push/credentials/apns".into(),
                Some(
                    json!({"key_id": "ABC123DEFG", "team_id": "TEAM123456", "bundle_id": "com.example.chat",
                    "private_key": p8.clone()}),
                ),
            ),
            (
                "put",
                "/v1/push/credentials/fcm",
                "/v1/push/credentials/fcm".into(),
                Some(json!({"service_account": tern_platform::push::test_keys::service_account("demo", "p@demo.iam")})),
            ),
            ("get", "/v1/push/credentials", "/v1/push/credentials".into(), None),
            (
                "post",
                "/v1/users/{user_id}/devices",
                "/v1/users/alice/devices".into(),
                Some(
                    json!({"provider": "apns", "token": "ab".repeat(32), "environment": "sandbox", "locale": "en-US"}),
                ),
            ),
            (
                "get",
                "/v1/users/{user_id}/devices",
                "/v1/users/alice/devices".into(),
                None,
            ),
            (
                "patch",
                "/v1/users/{user_id}/devices/{device_id}",
                "/v1/users/alice/devices/{device}".into(),
                Some(json!({"locale": "fr-FR"})),
            ),
            (
                "post",
                "/v1/users/{user_id}/devices/{device_id}/test-push",
                "/v1/users/alice/devices/{device}/test-push".into(),
                None,
            ),
            (
                "get",
                "/v1/push/log",
                "/v1/push/log?user_id=alice&limit=10".into(),
                None,
            ),
            (
                "delete",
                "/v1/users/{user_id}/devices/{device_id}",
                "/v1/users/alice/devices/{device}".into(),
                None,
            ),
            (
                "delete",
                "/v1/push/credentials/{provider}",
                "/v1/push/credentials/fcm".into(),
                None,
            ),
            (
                "patch",
                "/v1/users/{user_id}/push-settings",
                "/v1/users/alice/push-settings".into(),
                Some(
                    json!({"dnd": {"start": "22:00", "end": "07:00", "utc_offset_minutes": 60}, "mute": ["d:alice:bob"]}),
                ),
            ),
            (
                "get",
                "/v1/users/{user_id}/push-settings",
                "/v1/users/alice/push-settings".into(),
                None,
            ),
            // ---- rooms ----
            (
                "post",
                "/v1/rooms",
                "/v1/rooms".into(),
                Some(json!({"id": "lobby", "name": "Lobby", "metadata": {"topic": "welcome"}})),
            ),
            ("get", "/v1/rooms", "/v1/rooms?limit=10".into(), None),
            ("get", "/v1/rooms/{room_id}", "/v1/rooms/lobby".into(), None),
            (
                "patch",
                "/v1/rooms/{room_id}",
                "/v1/rooms/lobby".into(),
                Some(json!({"name": "Main lobby"})),
            ),
            (
                "put",
                "/v1/rooms/{room_id}/mutes/{user_id}",
                "/v1/rooms/lobby/mutes/bob".into(),
                Some(json!({"until": null})),
            ),
            ("get", "/v1/rooms/{room_id}/mutes", "/v1/rooms/lobby/mutes".into(), None),
            (
                "delete",
                "/v1/rooms/{room_id}/mutes/{user_id}",
                "/v1/rooms/lobby/mutes/bob".into(),
                None,
            ),
            (
                "delete",
                "/v1/rooms/{room_id}/members/{user_id}",
                "/v1/rooms/lobby/members/bob".into(),
                None,
            ),
            ("delete", "/v1/rooms/{room_id}", "/v1/rooms/lobby".into(), None),
            // ---- files ----
            (
                "post",
                "/v1/files",
                "/v1/files".into(),
                Some(
                    json!({"uploader": "alice", "name": "b.png", "size": 10, "content_type": "image/png",
                    "sha256": "ab".repeat(32)}),
                ),
            ),
            (
                "get",
                "/v1/files/{file_id}",
                format!("/v1/files/{}?user=alice", uploaded.file_id),
                None,
            ),
            ("get", "/v1/app/storage", "/v1/app/storage".into(), None),
            ("delete", "/v1/users/{user_id}", "/v1/users/dave".into(), None),
        ];
        // The server API's operations; the operator API (`/admin/v1`, merged in by the binary)
        // is the console's (tests/console_api.rs drives it against the binary).
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with("/v1/"))
            .flat_map(|(p, ops)| ops.as_object().unwrap().keys().map(move |m| (m.clone(), p.clone())))
            .collect();
        let sampled: BTreeSet<(String, String)> = samples
            .iter()
            .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(
            documented, sampled,
            "every documented operation has a sample, and nothing undocumented is sampled"
        );

        let mut broadcast = String::new();
        let mut device = String::new();
        for (method, template, path, body) in samples {
            let path = path.replace("{broadcast}", &broadcast).replace("{device}", &device);
            let op = &doc["paths"][template][method];
            let answer: Result<Value, _> = c.request(&method.to_uppercase(), &path, body.as_ref()).await;
            let (status, value) = match answer {
                Ok(v) => (
                    match (method, template) {
                        ("post", "/v1/broadcasts") => 202,
                        ("post", "/v1/files") => 201,
                        _ => 200,
                    },
                    v,
                ),
                Err(tern_sdk::server::ServerError::Api {
                    status,
                    code,
                    message,
                    request_id,
                }) => (
                    status,
                    json!({"error": {"code": code, "message": message, "request_id": request_id}}),
                ),
                Err(e) => panic!("{method} {path}: {e}"),
            };
            assert!((200..300).contains(&status), "{method} {path} failed: {value}");
            if (method, template) == ("post", "/v1/broadcasts") {
                broadcast = value["id"].as_str().unwrap().to_owned();
            }
            if (method, template) == ("post", "/v1/users/{user_id}/devices") {
                device = value["device_id"].as_str().unwrap().to_owned();
            }
            let responses = op["responses"].as_object().unwrap();
            let listed = responses
                .get(&status.to_string())
                .or_else(|| responses.get(&format!("{}XX", status / 100)));
            let listed = listed.unwrap_or_else(|| panic!("{method} {template}: status {status} is not documented"));
            let schema = &listed["content"]["application/json"]["schema"];
            check(&doc, schema, &value, &format!("{method} {template}")).unwrap();
        }

        // Errors fit the documented error shape too.
        let e = c.get_user("nobody").await.unwrap_err();
        let tern_sdk::server::ServerError::Api {
            status,
            code,
            message,
            request_id,
        } = e
        else {
            panic!("{e}")
        };
        assert_eq!((status, code.as_str()), (404, "not_found"));
        let v = json!({"error": {"code": code, "message": message, "request_id": request_id}});
        let schema =
            &doc["paths"]["/v1/users/{user_id}"]["get"]["responses"]["4XX"]["content"]["application/json"]["schema"];
        check(&doc, schema, &v, "error").unwrap();
    }
}

#[test]
fn every_error_code_is_in_docs_errors_md() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/errors.md")).unwrap();
    for (code, status, _) in tern_tenant_api::error::ERROR_CODES {
        assert!(
            doc.contains(&format!("| `{code}` | {status} |")),
            "{code} missing from docs/errors.md"
        );
    }
}
