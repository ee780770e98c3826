//! Parsed identifiers. A handler or the pipeline only ever sees these, never raw strings:
//! whatever reaches the engine has already been checked here (parse, don't validate).
//! Deserialising goes through the same parsers (`TryFrom<String>`), so an id in a JSON
//! body, a stored document or a test fixture is refused exactly as `parse` refuses it.

use std::fmt;

use rand::distributions::{Alphanumeric, DistString};
use serde::{Deserialize, Serialize};

/// Why a string was refused as an identifier. `field` names what was being parsed so the
/// caller's error can say which input was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct IdError {
    pub field: &'static str,
    pub reason: &'static str,
}

fn lower_alnum(len: usize) -> String {
    Alphanumeric
        .sample_string(&mut rand::thread_rng(), len)
        .to_ascii_lowercase()
}

/// Characters allowed in ids that tenants choose (users, groups, rooms): `[A-Za-z0-9_.@-]`.
fn is_tenant_id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'@' | b'-')
}

fn parse_tenant_chosen(field: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError {
            field,
            reason: "must not be empty",
        });
    }
    if s.len() > 64 {
        return Err(IdError {
            field,
            reason: "must be at most 64 characters",
        });
    }
    if !s.bytes().all(is_tenant_id_char) {
        return Err(IdError {
            field,
            reason: "may only contain A-Z a-z 0-9 _ . @ -",
        });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::try_from(s).map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A tenant: `tn_` followed by 20 lowercase alphanumerics.
    TenantId
);
string_id!(
    /// An app's internal id: `app_` followed by 20 lowercase alphanumerics. Never shown to SDKs.
    AppId
);
string_id!(
    /// The public key of an app that goes in every request: `ak_` followed by 16 lowercase alphanumerics.
    AppKey
);
string_id!(
    /// A user of an app, chosen by the tenant: 1–64 characters of `[A-Za-z0-9_.@-]`.
    UserId
);
string_id!(
    /// A group, chosen by the tenant: 1–64 characters of `[A-Za-z0-9_.@-]`.
    GroupId
);
string_id!(
    /// A room, chosen by the tenant: 1–64 characters of `[A-Za-z0-9_.@-]`.
    RoomId
);
string_id!(
    /// A stored message: `m_` followed by a ULID, so ids sort by creation time.
    MsgId
);
string_id!(
    /// The sender's idempotency key: 1–64 printable ASCII characters, no spaces.
    ClientMsgId
);
string_id!(
    /// A device registered for offline pushes: `dev_` + 20 lowercase alphanumerics.
    DeviceId
);
string_id!(
    /// The id of an app secret record (not the secret itself): `sec_` + 16 lowercase alphanumerics.
    SecretId
);

fn parse_prefixed(field: &'static str, s: &str, prefix: &str, len: usize) -> Result<(), IdError> {
    let rest = s.strip_prefix(prefix).ok_or(IdError {
        field,
        reason: "has the wrong prefix",
    })?;
    if rest.len() != len || !rest.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(IdError {
            field,
            reason: "is malformed",
        });
    }
    Ok(())
}

impl TenantId {
    pub fn generate() -> Self {
        Self(format!("tn_{}", lower_alnum(20)))
    }
    pub fn parse(s: &str) -> Result<Self, IdError> {
        parse_prefixed("tenant id", s, "tn_", 20)?;
        Ok(Self(s.to_owned()))
    }
}

impl AppId {
    pub fn generate() -> Self {
        Self(format!("app_{}", lower_alnum(20)))
    }
    pub fn parse(s: &str) -> Result<Self, IdError> {
        parse_prefixed("app id", s, "app_", 20)?;
        Ok(Self(s.to_owned()))
    }
}

impl AppKey {
    pub fn generate() -> Self {
        Self(format!("ak_{}", lower_alnum(16)))
    }
    /// AppKeys are `ak_` plus 3–64 characters of `[A-Za-z0-9_]`; generated ones have 16.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let field = "app key";
        let rest = s.strip_prefix("ak_").ok_or(IdError {
            field,
            reason: "must start with ak_",
        })?;
        if rest.len() < 3 || rest.len() > 64 || !rest.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            return Err(IdError {
                field,
                reason: "is malformed",
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl SecretId {
    pub fn generate() -> Self {
        Self(format!("sec_{}", lower_alnum(16)))
    }
    pub fn parse(s: &str) -> Result<Self, IdError> {
        parse_prefixed("secret id", s, "sec_", 16)?;
        Ok(Self(s.to_owned()))
    }
}

impl DeviceId {
    pub fn generate() -> Self {
        Self(format!("dev_{}", lower_alnum(20)))
    }
    pub fn parse(s: &str) -> Result<Self, IdError> {
        parse_prefixed("device id", s, "dev_", 20)?;
        Ok(Self(s.to_owned()))
    }
}

impl UserId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        parse_tenant_chosen("user id", s)?;
        Ok(Self(s.to_owned()))
    }
}

impl GroupId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        parse_tenant_chosen("group id", s)?;
        Ok(Self(s.to_owned()))
    }
}

impl RoomId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        parse_tenant_chosen("room id", s)?;
        Ok(Self(s.to_owned()))
    }
}

impl MsgId {
    pub fn generate() -> Self {
        Self(format!("m_{}", ulid::Ulid::new().to_string().to_ascii_lowercase()))
    }
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let field = "message id";
        let rest = s.strip_prefix("m_").ok_or(IdError {
            field,
            reason: "must start with m_",
        })?;
        if rest.len() != 26 || !rest.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(IdError {
                field,
                reason: "is malformed",
            });
        }
        Ok(Self(s.to_ascii_lowercase()))
    }
}

impl ClientMsgId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let field = "client_msg_id";
        if s.is_empty() || s.len() > 64 {
            return Err(IdError {
                field,
                reason: "must be 1 to 64 characters",
            });
        }
        if !s.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(IdError {
                field,
                reason: "must be printable ASCII without spaces",
            });
        }
        Ok(Self(s.to_owned()))
    }
    /// For sends that arrive without one (system messages, batch sends): a fresh unique key.
    pub fn generate() -> Self {
        Self(format!("auto-{}", ulid::Ulid::new()))
    }
}

/// A conversation. Its string form is what APIs show and accept:
/// `d:<a>:<b>` for a direct chat (the two user ids sorted, so either direction gives one id),
/// `g:<group>` for a group and `r:<room>` for a room. `:` never occurs in a user id, so the
/// form is unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConversationId {
    Direct(UserId, UserId),
    Group(GroupId),
    Room(RoomId),
    /// System notices to one user (messages the app sends as itself, with no `from`).
    System(UserId),
}

impl ConversationId {
    pub fn direct(a: &UserId, b: &UserId) -> Self {
        if a <= b {
            Self::Direct(a.clone(), b.clone())
        } else {
            Self::Direct(b.clone(), a.clone())
        }
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let field = "conversation id";
        let bad = IdError {
            field,
            reason: "must be d:<user>:<user>, g:<group>, r:<room> or s:<user>",
        };
        let (kind, rest) = s.split_once(':').ok_or(bad.clone())?;
        match kind {
            "d" => {
                let (a, b) = rest.split_once(':').ok_or(bad.clone())?;
                let (a, b) = (
                    UserId::parse(a).map_err(|_| bad.clone())?,
                    UserId::parse(b).map_err(|_| bad.clone())?,
                );
                if a > b {
                    // Only the canonical (sorted) form is accepted, so one conversation has one id.
                    return Err(IdError {
                        field,
                        reason: "direct conversation ids list the two users in sorted order",
                    });
                }
                Ok(Self::Direct(a, b))
            }
            "g" => Ok(Self::Group(GroupId::parse(rest).map_err(|_| bad)?)),
            "r" => Ok(Self::Room(RoomId::parse(rest).map_err(|_| bad)?)),
            "s" => Ok(Self::System(UserId::parse(rest).map_err(|_| bad)?)),
            _ => Err(bad),
        }
    }

    /// The other participant of a direct conversation, seen from `me`.
    pub fn peer_of(&self, me: &UserId) -> Option<&UserId> {
        match self {
            Self::Direct(a, b) if a == me => Some(b),
            Self::Direct(a, b) if b == me => Some(a),
            _ => None,
        }
    }

    pub fn kind(&self) -> ConversationKind {
        match self {
            Self::Direct(..) => ConversationKind::Direct,
            Self::Group(_) => ConversationKind::Group,
            Self::Room(_) => ConversationKind::Room,
            Self::System(_) => ConversationKind::System,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Direct,
    Group,
    Room,
    System,
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct(a, b) => write!(f, "d:{a}:{b}"),
            Self::Group(g) => write!(f, "g:{g}"),
            Self::Room(r) => write!(f, "r:{r}"),
            Self::System(u) => write!(f, "s:{u}"),
        }
    }
}

impl Serialize for ConversationId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ConversationId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Every way of making an id from a string (`str::parse`, `TryFrom<String>`, and through
/// it `Deserialize`) goes through the id's `parse`.
macro_rules! deserialize_via_parse {
    ($($name:ident),*) => {$(
        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }
    )*};
}
deserialize_via_parse!(
    TenantId,
    AppId,
    AppKey,
    UserId,
    GroupId,
    RoomId,
    MsgId,
    ClientMsgId,
    SecretId,
    DeviceId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_follow_the_documented_alphabet() {
        assert!(UserId::parse("alice.smith@example-1_x").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"a".repeat(64)).is_ok());
        assert!(UserId::parse(&"a".repeat(65)).is_err());
        assert!(UserId::parse("al ice").is_err());
        assert!(UserId::parse("a:b").is_err());
        assert!(UserId::parse("李雷").is_err());
    }

    #[test]
    fn direct_conversation_id_is_the_same_in_both_directions() {
        let a = UserId::parse("bob").unwrap();
        let b = UserId::parse("alice").unwrap();
        let c1 = ConversationId::direct(&a, &b);
        let c2 = ConversationId::direct(&b, &a);
        assert_eq!(c1, c2);
        assert_eq!(c1.to_string(), "d:alice:bob");
        assert_eq!(ConversationId::parse("d:alice:bob").unwrap(), c1);
        assert!(ConversationId::parse("d:bob:alice").is_err());
        assert_eq!(c1.peer_of(&a), Some(&b));
    }

    #[test]
    fn conversation_ids_reject_garbage() {
        for s in ["", "x", "x:y", "d:alice", "g:", "r:a b", "g:a:b", "d::", "q:abc"] {
            assert!(ConversationId::parse(s).is_err(), "{s:?} should be rejected");
        }
        assert!(matches!(
            ConversationId::parse("g:team-1"),
            Ok(ConversationId::Group(_))
        ));
        assert!(matches!(ConversationId::parse("r:live.1"), Ok(ConversationId::Room(_))));
    }

    #[test]
    fn deserialising_goes_through_the_parser() {
        let user: UserId = serde_json::from_str("\"alice\"").unwrap();
        assert_eq!(user.as_str(), "alice");
        assert_eq!(serde_json::to_string(&user).unwrap(), "\"alice\"");
        for bad in ["\"al ice\"", "\"\"", "\"a:b\"", "7"] {
            assert!(serde_json::from_str::<UserId>(bad).is_err(), "{bad}");
        }
        let err = serde_json::from_str::<AppKey>("\"sk_demo\"").unwrap_err().to_string();
        assert!(err.contains("invalid app key"), "{err}");
        assert!(serde_json::from_str::<MsgId>("\"m_x\"").is_err());
        let msg = MsgId::generate();
        let back: MsgId = serde_json::from_str(&serde_json::to_string(&msg).unwrap()).unwrap();
        assert_eq!(back, msg);
        let key = ClientMsgId::generate();
        let back: ClientMsgId = serde_json::from_str(&serde_json::to_string(&key).unwrap()).unwrap();
        assert_eq!(back, key);
    }

    #[test]
    fn generated_ids_parse_back() {
        assert!(TenantId::parse(TenantId::generate().as_str()).is_ok());
        assert!(AppId::parse(AppId::generate().as_str()).is_ok());
        assert!(AppKey::parse(AppKey::generate().as_str()).is_ok());
        assert!(MsgId::parse(MsgId::generate().as_str()).is_ok());
        assert!(SecretId::parse(SecretId::generate().as_str()).is_ok());
        assert!(DeviceId::parse(DeviceId::generate().as_str()).is_ok());
        assert!(AppKey::parse("ak_demo_4k2m9p7q").is_ok());
        assert!(AppKey::parse("sk_demo").is_err());
    }
}
