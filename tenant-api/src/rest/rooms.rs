//! Rooms through the server API (docs/rooms.md): create, read with the online member
//! count, list, update, dismiss, take a user out, and mutes in a room. The operations are
//! `tern_platform::rooms`, shared with gRPC and the WebSocket gateway; another app's rooms
//! are `not_found`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::{now_ms, App, RoomMute};
use tern_platform::rooms::{self, RoomDetail};
use tern_platform::service::rooms as pages;
use utoipa::ToSchema;

use super::dto::PageQuery;
use super::moderation::parse_until;
use super::users::{parse_user, Done};
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::input::room as parse_room;
use crate::state::ApiState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoomView {
    pub id: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// `server_api` (created by your backend) or `join` (by a user's first join).
    pub created_by: String,
    /// Users in the room now (each once, whatever their number of connections).
    pub member_count: u64,
    /// The seq of the room's newest message (`r:<id>`); 0 when it has none.
    pub last_seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<RoomDetail> for RoomView {
    fn from(d: RoomDetail) -> Self {
        Self {
            id: d.room.id.into_string(),
            name: d.room.name,
            metadata: d.room.metadata,
            created_by: d.room.created_by.as_str().to_owned(),
            member_count: d.member_count,
            last_seq: d.room.last_seq,
            created_at: d.room.created_at,
            updated_at: d.room.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoomsAnswer {
    pub rooms: Vec<RoomView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// 1–64 characters of `[A-Za-z0-9_.@-]`, unique in the app.
    pub id: String,
    /// 1 to 100 characters; default: the id.
    pub name: Option<String>,
    /// A JSON object of your own, at most 4 KiB serialised; default `{}`.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoom {
    /// Absent keeps the name.
    pub name: Option<String>,
    /// Absent (or `null`) keeps the metadata; an object replaces it.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionsAnswer {
    pub ok: bool,
    /// Connections that were in the room and were told to leave.
    pub sessions: u64,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteInRoom {
    /// Unix ms when the mute ends; `null` or absent: forever (stored as 253402300799999).
    pub until: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoomMuteView {
    pub user_id: String,
    /// Unix ms.
    pub until: i64,
}

impl From<RoomMute> for RoomMuteView {
    fn from(m: RoomMute) -> Self {
        Self {
            user_id: m.user_id.into_string(),
            until: m.until,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoomMutesAnswer {
    pub mutes: Vec<RoomMuteView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Creates a room. Users join it from the SDK (`join_room`); with the app setting
/// `rooms_created_on_join` they may also create one by joining it.
#[utoipa::path(post, path = "/v1/rooms", operation_id = "create_room", tag = "rooms", request_body = CreateRoom,
    responses((status = 200, body = RoomView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn create(State(st): State<ApiState>, req: Signed<CreateRoom>) -> Result<Json<RoomView>, ApiError> {
    create_room(&st, &req.app, req.body).await.map(Json)
}

pub async fn create_room(st: &ApiState, app: &App, b: CreateRoom) -> Result<RoomView, ApiError> {
    let id = parse_room(&b.id)?;
    Ok(rooms::create(&st.pipeline, app, id, b.name, b.metadata).await?.into())
}

/// The app's rooms by id, paged, each with its online member count.
#[utoipa::path(get, path = "/v1/rooms", operation_id = "list_rooms", tag = "rooms", params(PageQuery),
    responses((status = 200, body = RoomsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn list(State(st): State<ApiState>, req: Signed<()>) -> Result<Json<RoomsAnswer>, ApiError> {
    list_rooms(&st, &req.app, req.query()?).await.map(Json)
}

pub async fn list_rooms(st: &ApiState, app: &App, q: PageQuery) -> Result<RoomsAnswer, ApiError> {
    let page = pages::list_page(&st.pipeline, app, q.cursor.as_deref(), q.limit.unwrap_or(0)).await?;
    Ok(RoomsAnswer {
        rooms: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    })
}

/// One room with its online member count.
#[utoipa::path(get, path = "/v1/rooms/{room_id}", operation_id = "get_room", tag = "rooms", params(("room_id" = String, Path)),
    responses((status = 200, body = RoomView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<RoomView>, ApiError> {
    get_room(&st, &req.app, &id).await.map(Json)
}

pub async fn get_room(st: &ApiState, app: &App, id: &str) -> Result<RoomView, ApiError> {
    let id = parse_room(id)?;
    Ok(rooms::get(&st.pipeline, app, &id).await?.into())
}

/// Changes a room's name and/or metadata.
#[utoipa::path(patch, path = "/v1/rooms/{room_id}", operation_id = "update_room", tag = "rooms", params(("room_id" = String, Path)),
    request_body = UpdateRoom,
    responses((status = 200, body = RoomView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn update(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<UpdateRoom>,
) -> Result<Json<RoomView>, ApiError> {
    update_room(&st, &req.app, &id, req.body).await.map(Json)
}

pub async fn update_room(st: &ApiState, app: &App, id: &str, b: UpdateRoom) -> Result<RoomView, ApiError> {
    let id = parse_room(id)?;
    Ok(rooms::update(&st.pipeline, app, &id, b.name, b.metadata).await?.into())
}

/// Dismisses a room: it and its history are deleted, and every connected member gets
/// `room_left` (reason `dismissed`) and leaves.
#[utoipa::path(delete, path = "/v1/rooms/{room_id}", operation_id = "dismiss_room", tag = "rooms", params(("room_id" = String, Path)),
    responses((status = 200, body = SessionsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn dismiss(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<SessionsAnswer>, ApiError> {
    dismiss_room(&st, &req.app, &id).await.map(Json)
}

pub async fn dismiss_room(st: &ApiState, app: &App, id: &str) -> Result<SessionsAnswer, ApiError> {
    let id = parse_room(id)?;
    let sessions = rooms::dismiss(&st.pipeline, app, &id).await?;
    Ok(SessionsAnswer { ok: true, sessions })
}

/// Takes a user out of a room now: their connections in it get `room_left` (reason
/// `removed`) and nothing more from it. They may join again (mute them to keep them quiet).
#[utoipa::path(delete, path = "/v1/rooms/{room_id}/members/{user_id}", operation_id = "remove_from_room", tag = "rooms",
    params(("room_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = SessionsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn remove_member(
    State(st): State<ApiState>,
    ApiPath((id, user)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<SessionsAnswer>, ApiError> {
    remove_room_user(&st, &req.app, &id, &user).await.map(Json)
}

pub async fn remove_room_user(st: &ApiState, app: &App, id: &str, user: &str) -> Result<SessionsAnswer, ApiError> {
    let id = parse_room(id)?;
    let user = parse_user(user)?;
    let sessions = rooms::remove_user(&st.pipeline, app, &id, &user).await?;
    Ok(SessionsAnswer { ok: true, sessions })
}

/// The mutes in force in a room, by user id, paged.
#[utoipa::path(get, path = "/v1/rooms/{room_id}/mutes", operation_id = "list_room_mutes", tag = "rooms", params(("room_id" = String, Path), PageQuery),
    responses((status = 200, body = RoomMutesAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn mutes(
    State(st): State<ApiState>,
    ApiPath(id): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<RoomMutesAnswer>, ApiError> {
    list_room_mutes(&st, &req.app, &id, req.query()?).await.map(Json)
}

pub async fn list_room_mutes(st: &ApiState, app: &App, id: &str, q: PageQuery) -> Result<RoomMutesAnswer, ApiError> {
    let id = parse_room(id)?;
    let page = pages::mutes_page(&st.pipeline, app, &id, q.cursor.as_deref(), q.limit.unwrap_or(0)).await?;
    Ok(RoomMutesAnswer {
        mutes: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    })
}

/// Mutes a user in a room until a time: they stay and read; their sends to the room fail
/// with `user_muted`.
#[utoipa::path(put, path = "/v1/rooms/{room_id}/mutes/{user_id}", operation_id = "mute_in_room", tag = "rooms",
    params(("room_id" = String, Path), ("user_id" = String, Path)), request_body = MuteInRoom,
    responses((status = 200, body = RoomMuteView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn mute(
    State(st): State<ApiState>,
    ApiPath((id, user)): ApiPath<(String, String)>,
    req: Signed<Option<MuteInRoom>>,
) -> Result<Json<RoomMuteView>, ApiError> {
    mute_room_user(&st, &req.app, &id, &user, req.body.unwrap_or_default())
        .await
        .map(Json)
}

pub async fn mute_room_user(
    st: &ApiState,
    app: &App,
    id: &str,
    user: &str,
    b: MuteInRoom,
) -> Result<RoomMuteView, ApiError> {
    let id = parse_room(id)?;
    let user = parse_user(user)?;
    let until = parse_until(b.until, now_ms())?;
    Ok(rooms::mute(&st.pipeline, app, &id, &user, until).await?.into())
}

/// Lifts a user's mute in a room.
#[utoipa::path(delete, path = "/v1/rooms/{room_id}/mutes/{user_id}", operation_id = "unmute_in_room", tag = "rooms",
    params(("room_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = Done), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn unmute(
    State(st): State<ApiState>,
    ApiPath((id, user)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<Done>, ApiError> {
    unmute_room_user(&st, &req.app, &id, &user).await.map(Json)
}

pub async fn unmute_room_user(st: &ApiState, app: &App, id: &str, user: &str) -> Result<Done, ApiError> {
    let id = parse_room(id)?;
    let user = parse_user(user)?;
    rooms::unmute(&st.pipeline, app, &id, &user).await?;
    Ok(Done { ok: true })
}
