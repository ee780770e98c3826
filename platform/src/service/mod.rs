//! The application layer: the operations the doors (REST, gRPC, the WebSocket gateway, the
//! console) call, one module per area. Each takes parsed, typed input and returns domain
//! values or a platform error; the store, the caches and the kicks behind an operation are
//! its business, never a door's. The wire shapes (JSON views, protobuf) stay in the doors.
//!
//! The operations of groups, rooms, friends, broadcasts and the message lifecycle live in
//! their own modules (`crate::groups`, `crate::rooms`, ...); this layer holds the rest, and
//! for those features what both server API doors (REST and gRPC) need around them: the
//! pages read by cursor, the checks on a request's size made before its ids are parsed.

pub mod alerts;
pub mod api_tokens;
pub mod broadcasts;
pub mod console;
pub mod conversations;
pub mod friends;
pub mod groups;
pub mod invitations;
pub mod messages;
pub mod moderation;
pub mod operators;
pub mod overview;
pub mod paging;
pub mod presence;
pub mod rooms;
pub mod settings;
pub mod signup;
pub mod users;
pub mod webhooks;

use crate::delivery::Pipeline;
use crate::domain::{App, User};
use crate::ids::UserId;
use crate::store::{StoreError, StoreResult};

/// The user, or `not_found` ("user not found").
pub(crate) async fn existing_user(p: &Pipeline, app: &App, id: &UserId) -> StoreResult<User> {
    p.store().user(&app.id, id).await?.ok_or(StoreError::NotFound("user"))
}
