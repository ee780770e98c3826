//! The nouns of Tern: tenants own apps, apps own users, users talk in conversations.
//! Plain data with the rules that belong to the data itself; storage lives in `store`,
//! behaviour that spans several nouns in `delivery`.

pub mod app;
pub mod broadcast;
pub mod console;
pub mod conversation;
pub mod friend;
pub mod group;
pub mod lifecycle;
pub mod message;
pub mod moderation;
pub mod push;
pub mod room;
pub mod short_text;
pub mod tenant;
pub mod user;

pub use app::*;
pub use broadcast::*;
pub use console::*;
pub use conversation::*;
pub use friend::*;
pub use group::*;
pub use lifecycle::*;
pub use message::*;
pub use moderation::*;
pub use push::*;
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

#[cfg(test)]
mod stored_names {
    //! The names below are stored in the database and shown on the wire; the strum derives
    //! must keep spelling them exactly so, in both directions.
    use super::*;

    fn round_trip<T: Copy + PartialEq + std::fmt::Debug>(
        cases: &[(T, &str)],
        as_str: fn(T) -> &'static str,
        parse: fn(&str) -> Option<T>,
    ) {
        for (value, name) in cases {
            assert_eq!(as_str(*value), *name);
            assert_eq!(parse(name), Some(*value), "{name}");
            assert_eq!(parse(&name.to_uppercase()), None, "{name} is case-sensitive");
        }
        assert_eq!(parse(""), None);
        assert_eq!(parse("unknown"), None);
    }

    #[test]
    fn every_enum_keeps_its_names() {
        use AppStatus as A;
        round_trip(
            &[(A::Active, "active"), (A::Suspended, "suspended")],
            A::as_str,
            A::parse,
        );
        use TenantStatus as T;
        round_trip(
            &[
                (T::Active, "active"),
                (T::Suspended, "suspended"),
                (T::PendingApproval, "pending_approval"),
                (T::Declined, "declined"),
            ],
            T::as_str,
            T::parse,
        );
        use BroadcastState as B;
        round_trip(
            &[
                (B::Running, "running"),
                (B::Done, "done"),
                (B::Cancelled, "cancelled"),
                (B::Failed, "failed"),
            ],
            B::as_str,
            B::parse,
        );
        use FriendRequestState as F;
        round_trip(
            &[
                (F::Pending, "pending"),
                (F::Accepted, "accepted"),
                (F::Declined, "declined"),
            ],
            F::as_str,
            F::parse,
        );
        use JoinRequestState as J;
        round_trip(
            &[
                (J::Pending, "pending"),
                (J::Accepted, "accepted"),
                (J::Declined, "declined"),
            ],
            J::as_str,
            J::parse,
        );
        use GroupRole as G;
        round_trip(
            &[(G::Owner, "owner"), (G::Admin, "admin"), (G::Member, "member")],
            G::as_str,
            G::parse,
        );
        use JoinPolicy as P;
        round_trip(
            &[
                (P::Free, "free"),
                (P::Approval, "approval"),
                (P::InviteOnly, "invite_only"),
            ],
            P::as_str,
            P::parse,
        );
        use WordPolicy as W;
        round_trip(&[(W::Replace, "replace"), (W::Reject, "reject")], W::as_str, W::parse);
        use RoomOrigin as R;
        round_trip(&[(R::ServerApi, "server_api"), (R::Join, "join")], R::as_str, R::parse);
        use MessageType as M;
        let sendable = [
            (M::Text, "text"),
            (M::Image, "image"),
            (M::File, "file"),
            (M::Audio, "audio"),
            (M::Video, "video"),
            (M::Location, "location"),
            (M::Custom, "custom"),
        ];
        round_trip(&sendable, M::as_str, M::parse_sendable);
        round_trip(&sendable, M::as_str, M::parse_stored);
        assert_eq!(M::System.as_str(), "system");
        assert_eq!(M::parse_stored("system"), Some(M::System));
        assert_eq!(
            M::parse_sendable("system"),
            None,
            "a caller may not send a system message"
        );
    }
}
