//! The REST server API under `/v1`. Every route is signed (`Signed<T>`) but the upload
//! endpoint and file content, whose URLs carry their own signature (`rest::uploads`); paths and bodies
//! are documented in the OpenAPI document (`crate::openapi`) generated from these handlers.

use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::state::ApiState;

pub mod app;
pub mod broadcasts;
pub mod conversations;
pub mod dto;
pub mod files;
pub mod friends;
pub mod groups;
pub mod lifecycle;
pub mod messages;
pub mod moderation;
pub mod presence;
pub mod push;
pub mod rooms;
pub mod uploads;
pub mod users;
pub mod webhooks;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/users", post(users::upsert).get(users::list))
        .route(
            "/v1/users/{user_id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/v1/users/{user_id}/tokens", post(users::mint_token))
        .route("/v1/users/{user_id}/tokens/revoke", post(users::revoke_tokens))
        .route("/v1/users/{user_id}/kick", post(users::kick))
        .route("/v1/users/{user_id}/conversations", get(conversations::list))
        .route(
            "/v1/users/{user_id}/conversations/{conversation_id}",
            get(conversations::get),
        )
        .route(
            "/v1/users/{user_id}/conversations/{conversation_id}/read",
            post(conversations::mark_read),
        )
        .route("/v1/messages", post(messages::send))
        .route("/v1/messages/batch", post(messages::batch_send))
        .route("/v1/messages/{msg_id}", get(messages::get))
        .route("/v1/messages/{msg_id}/recall", post(messages::recall))
        .route("/v1/conversations/{conversation_id}/messages", get(messages::history))
        // ---- groups ----
        .route("/v1/groups", post(groups::create))
        .route(
            "/v1/groups/{group_id}",
            get(groups::get).patch(groups::update).delete(groups::dismiss),
        )
        .route(
            "/v1/groups/{group_id}/members",
            post(groups::add_members).get(groups::members),
        )
        .route(
            "/v1/groups/{group_id}/members/{user_id}",
            get(groups::member).delete(groups::remove_member),
        )
        .route("/v1/groups/{group_id}/members/{user_id}/role", post(groups::set_role))
        .route(
            "/v1/groups/{group_id}/members/{user_id}/mute",
            post(groups::mute).delete(groups::unmute),
        )
        .route("/v1/groups/{group_id}/members/{user_id}/leave", post(groups::leave))
        .route("/v1/groups/{group_id}/owner", post(groups::transfer))
        .route("/v1/groups/{group_id}/join", post(groups::join))
        .route("/v1/groups/{group_id}/join-requests", get(groups::join_requests))
        .route(
            "/v1/groups/{group_id}/join-requests/{user_id}/accept",
            post(groups::accept),
        )
        .route(
            "/v1/groups/{group_id}/join-requests/{user_id}/decline",
            post(groups::decline),
        )
        .route("/v1/groups/{group_id}/read-counts", post(groups::read_counts))
        .route("/v1/groups/{group_id}/messages/{msg_id}/readers", get(groups::readers))
        .route("/v1/users/{user_id}/groups", get(groups::user_groups))
        .route("/v1/app/settings", get(app::get_settings).patch(app::patch_settings))
        .route("/v1/presence/query", post(presence::query))
        .route("/v1/webhook", get(webhooks::get).put(webhooks::put))
        .route("/v1/webhook/dead-events", get(webhooks::dead))
        .route(
            "/v1/webhook/dead-events/{event_id}/redeliver",
            post(webhooks::redeliver),
        )
        // ---- moderation ----
        .route("/v1/moderation/word-lists", get(moderation::list_word_lists))
        .route(
            "/v1/moderation/word-lists/{name}",
            get(moderation::get_word_list)
                .put(moderation::put_word_list)
                .delete(moderation::delete_word_list),
        )
        .route(
            "/v1/users/{user_id}/ban",
            post(moderation::ban).delete(moderation::unban),
        )
        .route(
            "/v1/users/{user_id}/mute",
            post(moderation::mute).delete(moderation::unmute),
        )
        // ---- friends and blocks ----
        .route(
            "/v1/users/{user_id}/friend-requests",
            post(friends::send_request).get(friends::list_requests),
        )
        .route(
            "/v1/users/{user_id}/friend-requests/{from_id}/accept",
            post(friends::accept),
        )
        .route(
            "/v1/users/{user_id}/friend-requests/{from_id}/decline",
            post(friends::decline),
        )
        .route("/v1/users/{user_id}/friends", get(friends::list))
        .route(
            "/v1/users/{user_id}/friends/{friend_id}",
            get(friends::get).patch(friends::update).delete(friends::delete),
        )
        .route("/v1/users/{user_id}/blocks", get(friends::blocks))
        .route(
            "/v1/users/{user_id}/blocks/{blocked_id}",
            axum::routing::put(friends::block).delete(friends::unblock),
        )
        // ---- message lifecycle ----
        .route("/v1/messages/{msg_id}", axum::routing::patch(lifecycle::edit))
        .route(
            "/v1/messages/{msg_id}/delete-for-user",
            post(lifecycle::delete_for_user),
        )
        .route(
            "/v1/messages/{msg_id}/extensions",
            get(lifecycle::extensions).post(lifecycle::update_extensions),
        )
        .route(
            "/v1/messages/{msg_id}/reactions/{reaction}/users",
            get(lifecycle::reaction_users),
        )
        .route(
            "/v1/messages/{msg_id}/reactions/{reaction}/users/{user_id}",
            axum::routing::put(lifecycle::add_reaction).delete(lifecycle::remove_reaction),
        )
        // ---- rooms and broadcasts ----
        .route("/v1/rooms", post(rooms::create).get(rooms::list))
        .route(
            "/v1/rooms/{room_id}",
            get(rooms::get).patch(rooms::update).delete(rooms::dismiss),
        )
        .route(
            "/v1/rooms/{room_id}/members/{user_id}",
            axum::routing::delete(rooms::remove_member),
        )
        .route("/v1/rooms/{room_id}/mutes", get(rooms::mutes))
        .route(
            "/v1/rooms/{room_id}/mutes/{user_id}",
            axum::routing::put(rooms::mute).delete(rooms::unmute),
        )
        .route("/v1/broadcasts", post(broadcasts::start).get(broadcasts::list))
        .route("/v1/broadcasts/{broadcast_id}", get(broadcasts::get))
        .route("/v1/broadcasts/{broadcast_id}/cancel", post(broadcasts::cancel))
        // ---- offline push ----
        .route("/v1/users/{user_id}/devices", post(push::register).get(push::list))
        .route(
            "/v1/users/{user_id}/devices/{device_id}",
            axum::routing::patch(push::update).delete(push::remove),
        )
        .route(
            "/v1/users/{user_id}/push-settings",
            get(push::get_settings).patch(push::update_settings),
        )
        .route("/v1/push/credentials", get(push::credentials))
        .route("/v1/push/log", get(push::log))
        .route(
            "/v1/users/{user_id}/devices/{device_id}/test-push",
            post(push::test_push),
        )
        .route(
            "/v1/push/credentials/apns",
            axum::routing::put(push::set_apns).delete(push::delete_apns),
        )
        .route(
            "/v1/push/credentials/fcm",
            axum::routing::put(push::set_fcm).delete(push::delete_fcm),
        )
        .route(
            "/v1/push/credentials/{provider}",
            axum::routing::delete(push::delete_credentials),
        )
        // ---- files ----
        .route("/v1/files", post(files::create))
        .route("/v1/files/{file_id}", get(files::get))
        .route("/v1/files/{file_id}/content", get(uploads::content))
        .route("/v1/files/{file_id}/thumbnail", get(uploads::thumbnail))
        .route("/v1/app/storage", get(files::storage))
        .merge(upload_routes())
}

/// The tus upload endpoint: every answer, errors included, says `Tus-Resumable`.
fn upload_routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/uploads", post(uploads::create).options(uploads::options))
        .route(
            "/v1/uploads/{file_id}",
            axum::routing::head(uploads::head)
                .patch(uploads::patch)
                .delete(uploads::delete)
                .options(uploads::options),
        )
        .layer(axum::middleware::from_fn(uploads::tus_headers))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this path",
    )
}
