//! The gRPC `Friends` service on SQLite and (when configured) PostgreSQL: every REST
//! friends and blocks operation, the same state seen from both doors, the same error codes
//! (bad input, other apps' users, unsigned calls).
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{json, Value};
use support::*;
use tern_platform::proto::server_v1 as pb;
use tern_tenant_api::grpc::error_code;

fn signed<T: prost::Message>(app: &TestApp, method: &str, msg: T) -> tonic::Request<T> {
    grpc_signed(app, &format!("/tern.server.v1.Friends/{method}"), msg)
}

fn page(user: &str) -> pb::UserPageRequest {
    pb::UserPageRequest {
        user_id: user.into(),
        cursor: String::new(),
        limit: 0,
    }
}

fn pair(user: &str, friend: &str) -> pb::FriendPairRequest {
    pb::FriendPairRequest {
        user_id: user.into(),
        friend_id: friend.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friends_over_grpc_on_every_store() {
    for (backend, store, dir) in stores().await {
        eprintln!("on {backend}");
        let s = TestServer::start(store, dir).await;
        let a = s.app("a").await;
        let b = s.app("b").await;
        let ids: Vec<Value> = ["alice", "bob", "carol"].iter().map(|u| json!({"id": u})).collect();
        a.client.upsert_users(&ids).await.unwrap();
        b.client.upsert_users(&[json!({"id": "dave"})]).await.unwrap();
        let mut f = pb::friends_client::FriendsClient::new(grpc_channel(&s).await);

        // Requests: sent, listed, accepted; the other one declined.
        let req = pb::SendFriendRequestRequest {
            user_id: "alice".into(),
            to: "bob".into(),
            message: "it's Alice".into(),
        };
        let r = f
            .send_friend_request(signed(&a, "SendFriendRequest", req))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (r.from.as_str(), r.to.as_str(), r.state.as_str()),
            ("alice", "bob", "pending")
        );
        let carol = pb::SendFriendRequestRequest {
            user_id: "carol".into(),
            to: "bob".into(),
            message: String::new(),
        };
        f.send_friend_request(signed(&a, "SendFriendRequest", carol))
            .await
            .unwrap();
        let pending = f
            .list_friend_requests(signed(&a, "ListFriendRequests", page("bob")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            pending.requests.iter().map(|r| r.from.as_str()).collect::<Vec<_>>(),
            vec!["alice", "carol"]
        );
        let answer = |from: &str| pb::AnswerFriendRequestRequest {
            user_id: "bob".into(),
            from: from.into(),
        };
        let accepted = f
            .accept_friend_request(signed(&a, "AcceptFriendRequest", answer("alice")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(accepted.state, "accepted");
        let declined = f
            .decline_friend_request(signed(&a, "DeclineFriendRequest", answer("carol")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(declined.state, "declined");
        let e = f
            .accept_friend_request(signed(&a, "AcceptFriendRequest", answer("carol")))
            .await
            .unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("not_found"), "nothing pending any more");

        // The same friendship over both doors.
        let friends = f
            .list_friends(signed(&a, "ListFriends", page("alice")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            friends.friends.iter().map(|x| x.friend_id.as_str()).collect::<Vec<_>>(),
            vec!["bob"]
        );
        let rest: Value = a.client.request("GET", "/v1/users/bob/friends", None).await.unwrap();
        assert_eq!(rest["friends"][0]["friend_id"], "alice");

        // Remark and tags: absent keeps, set_tags replaces, "" clears the remark.
        let upd = pb::UpdateFriendRequest {
            user_id: "alice".into(),
            friend_id: "bob".into(),
            remark: Some("Bobby".into()),
            tags: vec!["work".into()],
            set_tags: true,
        };
        let u = f
            .update_friend(signed(&a, "UpdateFriend", upd))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (u.remark.as_deref(), u.tags.clone()),
            (Some("Bobby"), vec!["work".to_owned()])
        );
        let keep = pb::UpdateFriendRequest {
            user_id: "alice".into(),
            friend_id: "bob".into(),
            remark: None,
            tags: vec!["ignored".into()],
            set_tags: false,
        };
        let u = f
            .update_friend(signed(&a, "UpdateFriend", keep))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (u.remark.as_deref(), u.tags.clone()),
            (Some("Bobby"), vec!["work".to_owned()])
        );
        let clear = pb::UpdateFriendRequest {
            user_id: "alice".into(),
            friend_id: "bob".into(),
            remark: Some(String::new()),
            tags: Vec::new(),
            set_tags: true,
        };
        let u = f
            .update_friend(signed(&a, "UpdateFriend", clear))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((u.remark, u.tags), (None, Vec::<String>::new()));
        let g = f
            .get_friend(signed(&a, "GetFriend", pair("bob", "alice")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(g.friend_id, "alice");
        let bad = pb::UpdateFriendRequest {
            user_id: "alice".into(),
            friend_id: "bob".into(),
            remark: Some("r".repeat(101)),
            tags: Vec::new(),
            set_tags: false,
        };
        let e = f.update_friend(signed(&a, "UpdateFriend", bad)).await.unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("invalid_argument"));

        // Asking a friend again is a conflict; asking oneself is invalid.
        let again = pb::SendFriendRequestRequest {
            user_id: "bob".into(),
            to: "alice".into(),
            message: String::new(),
        };
        let e = f
            .send_friend_request(signed(&a, "SendFriendRequest", again))
            .await
            .unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("conflict"));
        let me = pb::SendFriendRequestRequest {
            user_id: "bob".into(),
            to: "bob".into(),
            message: String::new(),
        };
        let e = f
            .send_friend_request(signed(&a, "SendFriendRequest", me))
            .await
            .unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("invalid_argument"));

        // Delete both sides.
        let del = pb::DeleteFriendRequest {
            user_id: "alice".into(),
            friend_id: "bob".into(),
            both: true,
        };
        f.delete_friend(signed(&a, "DeleteFriend", del.clone())).await.unwrap();
        let e = f
            .get_friend(signed(&a, "GetFriend", pair("bob", "alice")))
            .await
            .unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("not_found"));
        let e = f.delete_friend(signed(&a, "DeleteFriend", del)).await.unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("not_found"));

        // Blocks: a blocked user's direct messages fail with `blocked`.
        let block = pb::BlockRequest {
            user_id: "alice".into(),
            blocked_id: "carol".into(),
        };
        let bl = f
            .block_user(signed(&a, "BlockUser", block.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((bl.user_id.as_str(), bl.blocked_id.as_str()), ("alice", "carol"));
        let list = f
            .list_blocks(signed(&a, "ListBlocks", page("alice")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(list.blocks.len(), 1);
        let e = a.client.send_text("carol", "alice", "c1", "hi").await.unwrap_err();
        assert_eq!(e.code(), Some("blocked"));
        f.unblock_user(signed(&a, "UnblockUser", block.clone())).await.unwrap();
        let e = f.unblock_user(signed(&a, "UnblockUser", block)).await.unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("not_found"));
        a.client.send_text("carol", "alice", "c2", "hi again").await.unwrap();

        // Another app's users are not_found; bad ids invalid; unsigned calls refused.
        let cross = pb::SendFriendRequestRequest {
            user_id: "alice".into(),
            to: "dave".into(),
            message: String::new(),
        };
        let e = f
            .send_friend_request(signed(&a, "SendFriendRequest", cross))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), error_code(&e).as_deref()),
            (tonic::Code::NotFound, Some("not_found"))
        );
        let e = f
            .list_friends(signed(&b, "ListFriends", page("alice")))
            .await
            .unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("not_found"));
        let e = f
            .list_friends(signed(&a, "ListFriends", page("no such id!")))
            .await
            .unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("invalid_argument"));
        let e = f.list_friends(tonic::Request::new(page("alice"))).await.unwrap_err();
        assert_eq!(
            (e.code(), error_code(&e).as_deref()),
            (tonic::Code::Unauthenticated, Some("missing_credentials"))
        );
    }
}

/// A paged list read a page at a time over gRPC and over REST: the same pages, the same
/// cursors (each door's cursor works on the other), and the same refusal of a bad cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_cursors_are_the_same_over_both_doors() {
    for (backend, store, dir) in stores().await {
        eprintln!("on {backend}");
        let s = TestServer::start(store, dir).await;
        let a = s.app("a").await;
        let ids: Vec<Value> = ["alice", "bob", "carol", "dave"]
            .iter()
            .map(|u| json!({"id": u}))
            .collect();
        a.client.upsert_users(&ids).await.unwrap();
        let mut f = pb::friends_client::FriendsClient::new(grpc_channel(&s).await);
        for blocked in ["bob", "carol", "dave"] {
            let block = pb::BlockRequest {
                user_id: "alice".into(),
                blocked_id: blocked.into(),
            };
            f.block_user(signed(&a, "BlockUser", block)).await.unwrap();
        }

        let mut grpc_cursor = String::new();
        let mut seen = Vec::new();
        loop {
            let req = pb::UserPageRequest {
                user_id: "alice".into(),
                cursor: grpc_cursor.clone(),
                limit: 2,
            };
            let g = f.list_blocks(signed(&a, "ListBlocks", req)).await.unwrap().into_inner();
            let query = if grpc_cursor.is_empty() {
                "/v1/users/alice/blocks?limit=2".to_owned()
            } else {
                format!("/v1/users/alice/blocks?limit=2&cursor={grpc_cursor}")
            };
            let r: Value = a.client.request("GET", &query, None).await.unwrap();
            let rest_ids: Vec<&str> = r["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["blocked_id"].as_str().unwrap())
                .collect();
            let grpc_ids: Vec<&str> = g.blocks.iter().map(|b| b.blocked_id.as_str()).collect();
            assert_eq!(grpc_ids, rest_ids);
            assert_eq!(g.next_cursor, r["next_cursor"].as_str().unwrap_or_default());
            seen.extend(grpc_ids.iter().map(|s| s.to_string()));
            if g.next_cursor.is_empty() {
                break;
            }
            grpc_cursor = g.next_cursor;
        }
        assert_eq!(seen, vec!["bob", "carol", "dave"]);

        let bad = pb::UserPageRequest {
            user_id: "alice".into(),
            cursor: "***".into(),
            limit: 0,
        };
        let e = f.list_blocks(signed(&a, "ListBlocks", bad)).await.unwrap_err();
        let r = a
            .client
            .request::<Value>("GET", "/v1/users/alice/blocks?cursor=***", None)
            .await
            .unwrap_err();
        assert_eq!(error_code(&e).as_deref(), Some("invalid_argument"));
        assert_eq!(r.code(), Some("invalid_argument"));
        assert_eq!(e.message(), "cursor is malformed");
    }
}
