//! Friends, friend requests and blocks through the server API, acting for one user
//! (`/v1/users/{user_id}/...`). The operations are `tern_platform::friends`, shared with
//! the WebSocket gateway; another app's users are `not_found`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tern_platform::domain::{App, Block, Friend, FriendRequest};
use tern_platform::friends;
use tern_platform::service::friends as pages;
use utoipa::ToSchema;

use super::dto::PageQuery;
use super::users::{parse_user, Done};
use crate::error::ApiError;
use crate::extract::{ApiPath, Signed};
use crate::state::ApiState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FriendView {
    pub user_id: String,
    pub friend_id: String,
    /// What `user_id` calls this friend; only they see it.
    pub remark: Option<String>,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Friend> for FriendView {
    fn from(f: Friend) -> Self {
        Self {
            user_id: f.user_id.into_string(),
            friend_id: f.friend_id.into_string(),
            remark: f.remark,
            tags: f.tags,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FriendRequestView {
    pub from: String,
    pub to: String,
    pub message: String,
    /// `pending`, `accepted` or `declined`.
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<FriendRequest> for FriendRequestView {
    fn from(r: FriendRequest) -> Self {
        Self {
            from: r.from.into_string(),
            to: r.to.into_string(),
            message: r.message,
            state: r.state.as_str().to_owned(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BlockView {
    pub user_id: String,
    pub blocked_id: String,
    pub created_at: i64,
}

impl From<Block> for BlockView {
    fn from(b: Block) -> Self {
        Self {
            user_id: b.user_id.into_string(),
            blocked_id: b.blocked_id.into_string(),
            created_at: b.created_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FriendsAnswer {
    pub friends: Vec<FriendView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FriendRequestsAnswer {
    pub requests: Vec<FriendRequestView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BlocksAnswer {
    pub blocks: Vec<BlockView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendFriendRequest {
    /// The user asked.
    pub to: String,
    /// Up to 500 characters; default empty.
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFriend {
    /// Up to 100 characters; `""` clears it; absent keeps it.
    pub remark: Option<String>,
    /// Up to 20 tags of 1 to 32 characters; absent keeps them.
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteFriendQuery {
    /// Also take the user off the friend's list. Default false (only this user's side).
    pub both: Option<bool>,
}

// ---- friend requests ---------------------------------------------------------------

/// `user_id` asks `to` to be friends; `to` gets a `friend_request` notification.
#[utoipa::path(post, path = "/v1/users/{user_id}/friend-requests", operation_id = "send_friend_request", tag = "friends",
    params(("user_id" = String, Path)), request_body = SendFriendRequest,
    responses((status = 200, body = FriendRequestView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn send_request(
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    req: Signed<SendFriendRequest>,
) -> Result<Json<FriendRequestView>, ApiError> {
    send_friend_request(&st, &req.app, &user, req.body).await.map(Json)
}

pub async fn send_friend_request(
    st: &ApiState,
    app: &App,
    user: &str,
    b: SendFriendRequest,
) -> Result<FriendRequestView, ApiError> {
    let from = parse_user(user)?;
    let to = parse_user(&b.to)?;
    Ok(friends::request(&st.pipeline, app, &from, &to, &b.message)
        .await?
        .into())
}

/// Pending requests to `user_id`, by sender, paged.
#[utoipa::path(get, path = "/v1/users/{user_id}/friend-requests", operation_id = "list_friend_requests", tag = "friends",
    params(("user_id" = String, Path), PageQuery),
    responses((status = 200, body = FriendRequestsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn list_requests(
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<FriendRequestsAnswer>, ApiError> {
    incoming_friend_requests(&st, &req.app, &user, req.query()?)
        .await
        .map(Json)
}

pub async fn incoming_friend_requests(
    st: &ApiState,
    app: &App,
    user: &str,
    q: PageQuery,
) -> Result<FriendRequestsAnswer, ApiError> {
    let user = parse_user(user)?;
    let page =
        pages::incoming_requests_page(&st.pipeline, app, &user, q.cursor.as_deref(), q.limit.unwrap_or(0)).await?;
    Ok(FriendRequestsAnswer {
        requests: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    })
}

/// `user_id` accepts the pending request from `from_id`: both become friends, `friend.added`
/// is sent, and `from_id` gets a `friend_accepted` notification.
#[utoipa::path(post, path = "/v1/users/{user_id}/friend-requests/{from_id}/accept", operation_id = "accept_friend_request", tag = "friends",
    params(("user_id" = String, Path), ("from_id" = String, Path)),
    responses((status = 200, body = FriendRequestView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn accept(
    State(st): State<ApiState>,
    ApiPath((user, from)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<FriendRequestView>, ApiError> {
    answer_friend_request(&st, &req.app, &user, &from, true).await.map(Json)
}

/// `user_id` declines the pending request from `from_id`.
#[utoipa::path(post, path = "/v1/users/{user_id}/friend-requests/{from_id}/decline", operation_id = "decline_friend_request", tag = "friends",
    params(("user_id" = String, Path), ("from_id" = String, Path)),
    responses((status = 200, body = FriendRequestView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn decline(
    State(st): State<ApiState>,
    ApiPath((user, from)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<FriendRequestView>, ApiError> {
    answer_friend_request(&st, &req.app, &user, &from, false)
        .await
        .map(Json)
}

pub async fn answer_friend_request(
    st: &ApiState,
    app: &App,
    user: &str,
    from: &str,
    accept: bool,
) -> Result<FriendRequestView, ApiError> {
    let user = parse_user(user)?;
    let from = parse_user(from)?;
    Ok(friends::answer(&st.pipeline, app, &user, &from, accept).await?.into())
}

// ---- friends -----------------------------------------------------------------------

/// `user_id`'s friends, by friend id, paged.
#[utoipa::path(get, path = "/v1/users/{user_id}/friends", operation_id = "list_friends", tag = "friends",
    params(("user_id" = String, Path), PageQuery),
    responses((status = 200, body = FriendsAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn list(
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<FriendsAnswer>, ApiError> {
    list_friends(&st, &req.app, &user, req.query()?).await.map(Json)
}

pub async fn list_friends(st: &ApiState, app: &App, user: &str, q: PageQuery) -> Result<FriendsAnswer, ApiError> {
    let user = parse_user(user)?;
    let page = pages::friends_page(&st.pipeline, app, &user, q.cursor.as_deref(), q.limit.unwrap_or(0)).await?;
    Ok(FriendsAnswer {
        friends: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    })
}

/// One friend as `user_id` keeps them.
#[utoipa::path(get, path = "/v1/users/{user_id}/friends/{friend_id}", operation_id = "get_friend", tag = "friends",
    params(("user_id" = String, Path), ("friend_id" = String, Path)),
    responses((status = 200, body = FriendView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn get(
    State(st): State<ApiState>,
    ApiPath((user, friend)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<FriendView>, ApiError> {
    get_friend(&st, &req.app, &user, &friend).await.map(Json)
}

pub async fn get_friend(st: &ApiState, app: &App, user: &str, friend: &str) -> Result<FriendView, ApiError> {
    let user = parse_user(user)?;
    let friend = parse_user(friend)?;
    Ok(friends::get(&st.pipeline, app, &user, &friend).await?.into())
}

/// Sets the remark and tags `user_id` keeps on a friend.
#[utoipa::path(patch, path = "/v1/users/{user_id}/friends/{friend_id}", operation_id = "update_friend", tag = "friends",
    params(("user_id" = String, Path), ("friend_id" = String, Path)), request_body = UpdateFriend,
    responses((status = 200, body = FriendView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn update(
    State(st): State<ApiState>,
    ApiPath((user, friend)): ApiPath<(String, String)>,
    req: Signed<UpdateFriend>,
) -> Result<Json<FriendView>, ApiError> {
    update_friend(&st, &req.app, &user, &friend, req.body).await.map(Json)
}

pub async fn update_friend(
    st: &ApiState,
    app: &App,
    user: &str,
    friend: &str,
    b: UpdateFriend,
) -> Result<FriendView, ApiError> {
    let user_id = parse_user(user)?;
    let friend_id = parse_user(friend)?;
    Ok(
        friends::patch(&st.pipeline, app, &user_id, &friend_id, b.remark, b.tags)
            .await?
            .into(),
    )
}

/// Takes a friend off `user_id`'s list; with `both=true` also `user_id` off theirs.
/// `friend.removed` is sent.
#[utoipa::path(delete, path = "/v1/users/{user_id}/friends/{friend_id}", operation_id = "delete_friend", tag = "friends",
    params(("user_id" = String, Path), ("friend_id" = String, Path), DeleteFriendQuery),
    responses((status = 200, body = Done), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn delete(
    State(st): State<ApiState>,
    ApiPath((user, friend)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<Done>, ApiError> {
    delete_friend(&st, &req.app, &user, &friend, req.query()?)
        .await
        .map(Json)
}

pub async fn delete_friend(
    st: &ApiState,
    app: &App,
    user: &str,
    friend: &str,
    q: DeleteFriendQuery,
) -> Result<Done, ApiError> {
    let user = parse_user(user)?;
    let friend = parse_user(friend)?;
    friends::delete(&st.pipeline, app, &user, &friend, q.both.unwrap_or(false)).await?;
    Ok(Done { ok: true })
}

// ---- blocks ------------------------------------------------------------------------

/// Whom `user_id` blocks, by id, paged.
#[utoipa::path(get, path = "/v1/users/{user_id}/blocks", operation_id = "list_blocks", tag = "friends",
    params(("user_id" = String, Path), PageQuery),
    responses((status = 200, body = BlocksAnswer), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn blocks(
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    req: Signed<()>,
) -> Result<Json<BlocksAnswer>, ApiError> {
    list_blocks(&st, &req.app, &user, req.query()?).await.map(Json)
}

pub async fn list_blocks(st: &ApiState, app: &App, user: &str, q: PageQuery) -> Result<BlocksAnswer, ApiError> {
    let user = parse_user(user)?;
    let page = pages::blocks_page(&st.pipeline, app, &user, q.cursor.as_deref(), q.limit.unwrap_or(0)).await?;
    Ok(BlocksAnswer {
        blocks: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    })
}

/// `user_id` blocks `blocked_id`: their direct messages and friend requests to `user_id`
/// fail with `blocked`. Blocking again is harmless.
#[utoipa::path(put, path = "/v1/users/{user_id}/blocks/{blocked_id}", operation_id = "block_user", tag = "friends",
    params(("user_id" = String, Path), ("blocked_id" = String, Path)),
    responses((status = 200, body = BlockView), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn block(
    State(st): State<ApiState>,
    ApiPath((user, blocked)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<BlockView>, ApiError> {
    block_user(&st, &req.app, &user, &blocked).await.map(Json)
}

pub async fn block_user(st: &ApiState, app: &App, user: &str, blocked: &str) -> Result<BlockView, ApiError> {
    let user = parse_user(user)?;
    let blocked = parse_user(blocked)?;
    Ok(friends::block(&st.pipeline, app, &user, &blocked).await?.into())
}

/// `user_id` unblocks `blocked_id`.
#[utoipa::path(delete, path = "/v1/users/{user_id}/blocks/{blocked_id}", operation_id = "unblock_user", tag = "friends",
    params(("user_id" = String, Path), ("blocked_id" = String, Path)),
    responses((status = 200, body = Done), (status = "4XX", body = crate::openapi::ErrorEnvelope)))]
pub async fn unblock(
    State(st): State<ApiState>,
    ApiPath((user, blocked)): ApiPath<(String, String)>,
    req: Signed<()>,
) -> Result<Json<Done>, ApiError> {
    unblock_user(&st, &req.app, &user, &blocked).await.map(Json)
}

pub async fn unblock_user(st: &ApiState, app: &App, user: &str, blocked: &str) -> Result<Done, ApiError> {
    let user = parse_user(user)?;
    let blocked = parse_user(blocked)?;
    friends::unblock(&st.pipeline, app, &user, &blocked).await?;
    Ok(Done { ok: true })
}
