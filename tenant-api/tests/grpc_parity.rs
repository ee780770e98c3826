//! Every REST operation of the server API has its gRPC twin. The test walks the OpenAPI
//! document (`docs/openapi.json`, as the server serves it) and fails on any operation that
//! is neither in `TWINS` nor in `EXCEPTIONS`, on a twin whose gRPC method does not exist in
//! the compiled `tern.server.v1` descriptors, and on a gRPC method no REST operation maps
//! to. It also writes the side-by-side table in `docs/grpc-parity.md`: it fails when that
//! file is stale, and `TERN_UPDATE_DOCS=1` rewrites it.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;

/// REST `operationId` → gRPC `Service/Method` of `tern.server.v1`.
const TWINS: &[(&str, &str)] = &[
    // users and tokens
    ("upsert_users", "Users/UpsertUsers"),
    ("list_users", "Users/ListUsers"),
    ("get_user", "Users/GetUser"),
    ("update_user", "Users/UpdateUser"),
    ("delete_user", "Users/DeleteUser"),
    ("mint_user_token", "Users/MintToken"),
    ("revoke_user_tokens", "Users/RevokeTokens"),
    ("kick_user", "Users/Kick"),
    // messages
    ("send_message", "Messages/Send"),
    ("batch_send_messages", "Messages/BatchSend"),
    ("get_message", "Messages/GetMessage"),
    ("recall_message", "Messages/Recall"),
    ("get_history", "Messages/History"),
    ("edit_message", "Messages/Edit"),
    ("delete_message_for_user", "Messages/DeleteForUser"),
    ("get_extensions", "Messages/GetExtensions"),
    ("update_extensions", "Messages/UpdateExtensions"),
    ("add_reaction", "Messages/AddReaction"),
    ("remove_reaction", "Messages/RemoveReaction"),
    ("list_reaction_users", "Messages/ListReactionUsers"),
    // conversations
    ("list_conversations", "Conversations/ListConversations"),
    ("get_conversation", "Conversations/GetConversation"),
    ("mark_read", "Conversations/MarkRead"),
    // groups
    ("create_group", "Groups/CreateGroup"),
    ("get_group", "Groups/GetGroup"),
    ("update_group", "Groups/UpdateGroup"),
    ("dismiss_group", "Groups/DismissGroup"),
    ("add_members", "Groups/AddMembers"),
    ("remove_member", "Groups/RemoveMember"),
    ("list_members", "Groups/ListMembers"),
    ("get_member", "Groups/GetMember"),
    ("set_role", "Groups/SetRole"),
    ("mute_member", "Groups/MuteMember"),
    ("unmute_member", "Groups/UnmuteMember"),
    ("transfer_owner", "Groups/TransferOwner"),
    ("leave_group", "Groups/Leave"),
    ("join_group", "Groups/Join"),
    ("list_join_requests", "Groups/ListJoinRequests"),
    ("accept_join_request", "Groups/AnswerJoinRequest"),
    ("decline_join_request", "Groups/AnswerJoinRequest"),
    ("list_user_groups", "Groups/ListUserGroups"),
    ("get_read_counts", "Groups/ReadCounts"),
    ("list_readers", "Groups/Readers"),
    // presence and broadcasts
    ("query_presence", "Presence/QueryPresence"),
    ("start_broadcast", "Broadcasts/StartBroadcast"),
    ("get_broadcast", "Broadcasts/GetBroadcast"),
    ("list_broadcasts", "Broadcasts/ListBroadcasts"),
    ("cancel_broadcast", "Broadcasts/CancelBroadcast"),
    // moderation
    ("list_word_lists", "Moderation/ListWordLists"),
    ("get_word_list", "Moderation/GetWordList"),
    ("put_word_list", "Moderation/PutWordList"),
    ("delete_word_list", "Moderation/DeleteWordList"),
    ("ban_user", "Moderation/BanUser"),
    ("unban_user", "Moderation/UnbanUser"),
    ("mute_user", "Moderation/MuteUser"),
    ("unmute_user", "Moderation/UnmuteUser"),
    // rooms
    ("create_room", "Rooms/CreateRoom"),
    ("get_room", "Rooms/GetRoom"),
    ("list_rooms", "Rooms/ListRooms"),
    ("update_room", "Rooms/UpdateRoom"),
    ("dismiss_room", "Rooms/DeleteRoom"),
    ("remove_from_room", "Rooms/RemoveUser"),
    ("mute_in_room", "Rooms/MuteUser"),
    ("unmute_in_room", "Rooms/UnmuteUser"),
    ("list_room_mutes", "Rooms/ListMutes"),
    // friends and blocks
    ("send_friend_request", "Friends/SendFriendRequest"),
    ("list_friend_requests", "Friends/ListFriendRequests"),
    ("accept_friend_request", "Friends/AcceptFriendRequest"),
    ("decline_friend_request", "Friends/DeclineFriendRequest"),
    ("list_friends", "Friends/ListFriends"),
    ("get_friend", "Friends/GetFriend"),
    ("update_friend", "Friends/UpdateFriend"),
    ("delete_friend", "Friends/DeleteFriend"),
    ("list_blocks", "Friends/ListBlocks"),
    ("block_user", "Friends/BlockUser"),
    ("unblock_user", "Friends/UnblockUser"),
    // app settings
    ("get_app_settings", "Apps/GetAppSettings"),
    ("update_app_settings", "Apps/UpdateAppSettings"),
    // webhooks
    ("get_webhook", "Webhooks/GetWebhook"),
    ("set_webhook", "Webhooks/SetWebhook"),
    ("list_dead_events", "Webhooks/ListDeadEvents"),
    ("redeliver_event", "Webhooks/RedeliverEvent"),
    // offline push
    ("register_device", "Push/RegisterDevice"),
    ("list_devices", "Push/ListDevices"),
    ("update_device", "Push/UpdateDevice"),
    ("remove_device", "Push/RemoveDevice"),
    ("test_push", "Push/TestPush"),
    ("list_push_credentials", "Push/ListCredentials"),
    ("set_apns_credentials", "Push/SetApnsCredentials"),
    ("set_fcm_credentials", "Push/SetFcmCredentials"),
    ("delete_push_credentials", "Push/DeleteCredentials"),
    ("push_log", "Push/Log"),
    ("get_push_settings", "Push/GetSettings"),
    ("update_push_settings", "Push/UpdateSettings"),
    // files (the bytes go to the tus upload URL, never through either door)
    ("create_file", "Files/CreateFile"),
    ("get_file", "Files/GetFile"),
    ("get_storage", "Files/GetStorage"),
];

/// REST operations with no gRPC twin on purpose: `operationId` → why.
const EXCEPTIONS: &[(&str, &str)] = &[];

const DOC: &str = "../docs/grpc-parity.md";

/// (METHOD, path, operationId) of every operation of the server API (`/v1`) in the OpenAPI
/// document (the operator API under `/admin/v1` is no app's to call, so has no gRPC twin).
fn rest_operations() -> Vec<(String, String, String)> {
    let doc: serde_json::Value = serde_json::from_str(&tern_tenant_api::openapi::document_json()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            if !["get", "put", "post", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            ops.push((method.to_ascii_uppercase(), path.clone(), id.to_owned()));
        }
    }
    ops
}

/// `Service/Method` of every method in `tern.server.v1`.
fn grpc_methods() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(tern_platform::proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut out = BTreeSet::new();
    for file in set.file.iter().filter(|f| f.package() == "tern.server.v1") {
        for service in &file.service {
            for method in &service.method {
                out.insert(format!("{}/{}", service.name(), method.name()));
            }
        }
    }
    out
}

#[test]
fn every_rest_operation_has_a_grpc_twin() {
    let twins: BTreeMap<&str, &str> = TWINS.iter().copied().collect();
    let exceptions: BTreeMap<&str, &str> = EXCEPTIONS.iter().copied().collect();
    assert_eq!(twins.len(), TWINS.len(), "an operationId is listed twice in TWINS");
    let methods = grpc_methods();
    let ops = rest_operations();

    let missing: Vec<String> = ops
        .iter()
        .filter(|(_, _, id)| !twins.contains_key(id.as_str()) && !exceptions.contains_key(id.as_str()))
        .map(|(m, p, id)| format!("{m} {p} ({id})"))
        .collect();
    assert!(
        missing.is_empty(),
        "REST operations without a gRPC twin (add the method to server.proto and TWINS, or a reason to EXCEPTIONS): {missing:#?}"
    );

    let unknown: Vec<&str> = twins.values().copied().filter(|m| !methods.contains(*m)).collect();
    assert!(
        unknown.is_empty(),
        "twins that are not gRPC methods of tern.server.v1: {unknown:?}"
    );

    let ids: BTreeSet<&str> = ops.iter().map(|(_, _, id)| id.as_str()).collect();
    let stale: Vec<&str> = twins
        .keys()
        .chain(exceptions.keys())
        .copied()
        .filter(|id| !ids.contains(id))
        .collect();
    assert!(stale.is_empty(), "listed operations that REST no longer has: {stale:?}");

    let mapped: BTreeSet<&str> = twins.values().copied().collect();
    let grpc_only: Vec<&String> = methods.iter().filter(|m| !mapped.contains(m.as_str())).collect();
    assert!(
        grpc_only.is_empty(),
        "gRPC methods with no REST operation: {grpc_only:?}"
    );

    // The side-by-side table.
    let mut table = String::from(
        "# REST and gRPC, side by side\n\n\
         Every operation of the server API over REST (`/v1`, [openapi.json](openapi.json)) and its\n\
         gRPC twin in `tern.server.v1` ([server.proto](../platform/proto/tern/v1/server.proto)).\n\
         Both are signed the same way ([signing.md](signing.md)) and give the same answers and\n\
         error codes. Generated by `tenant-api/tests/grpc_parity.rs`, which fails when a REST\n\
         operation has no twin; rewrite with\n\
         `TERN_UPDATE_DOCS=1 cargo nextest run -p tern-tenant-api --test grpc_parity`.\n\n\
         | REST | operationId | gRPC `tern.server.v1.` |\n|---|---|---|\n",
    );
    let mut rows: Vec<&(String, String, String)> = ops.iter().collect();
    rows.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    for (m, p, id) in rows {
        let twin = match (twins.get(id.as_str()), exceptions.get(id.as_str())) {
            (Some(t), _) => format!("`{t}`"),
            (None, Some(why)) => format!("none: {why}"),
            (None, None) => unreachable!(),
        };
        table.push_str(&format!("| `{m} {p}` | `{id}` | {twin} |\n"));
    }
    table.push_str(&format!(
        "\n{} REST operations, {} gRPC methods, {} without a twin.\n",
        ops.len(),
        methods.len(),
        exceptions.len()
    ));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
    if std::env::var("TERN_UPDATE_DOCS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &table).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == table,
        "docs/grpc-parity.md is stale: run TERN_UPDATE_DOCS=1 cargo nextest run -p tern-tenant-api --test grpc_parity"
    );
}
