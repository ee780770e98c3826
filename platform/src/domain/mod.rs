//! The nouns of Tern: tenants own apps, apps own users, users talk in conversations.
//! Plain data with the rules that belong to the data itself; storage lives in `store`,
//! behaviour that spans several nouns in `delivery`.

pub mod app;
pub mod broadcast;
pub mod conversation;
pub mod friend;
pub mod group;
pub mod lifecycle;
pub mod message;
pub mod moderation;
pub mod room;
pub mod short_text;
pub mod tenant;
pub mod user;

pub use app::*;
pub use broadcast::*;
pub use conversation::*;
pub use friend::*;
pub use group::*;
pub use lifecycle::*;
pub use message::*;
pub use moderation::*;
pub use room::*;
pub use short_text::*;
pub use tenant::*;
pub use user::*;

/// Milliseconds since the Unix epoch: the one unit of time in storage and on the wire
/// (user tokens, which follow JWT, are the exception and use seconds).
pub type UnixMillis = i64;

pub fn now_ms() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
