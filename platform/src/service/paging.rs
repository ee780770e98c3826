//! The server API's page cursors: opaque to callers (URL-safe base64 of the last key of a
//! page), the same for REST and gRPC.

use base64::Engine as _;

use crate::delivery::DeliveryError;
use crate::ids::IdError;

/// One page of a list, and the cursor of the next if this one was full.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of at most `limit` items: a full one may have more after it, keyed by `key`
    /// of its last item.
    pub fn of(items: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Self {
        let next_cursor = (items.len() as u32 == limit)
            .then(|| items.last().map(|last| encode_cursor(&key(last))))
            .flatten();
        Self { items, next_cursor }
    }
}

pub fn encode_cursor(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

/// The key a cursor holds; `invalid_argument` ("cursor is malformed") if it holds none.
pub fn decode_cursor(cursor: &str) -> Result<String, DeliveryError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| DeliveryError::InvalidArgument("cursor is malformed".into()))
}

/// The key a page starts after: the `cursor`'s key read by `parse`; `None` without a cursor.
/// A cursor that holds no key, or a key `parse` refuses, is `invalid_argument`.
pub fn after<T>(
    cursor: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, IdError>,
) -> Result<Option<T>, DeliveryError> {
    match cursor {
        None => Ok(None),
        Some(c) => Ok(Some(parse(&decode_cursor(c)?)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor("bob|1")).ok().as_deref(), Some("bob|1"));
        assert!(decode_cursor("***").is_err());
    }

    #[test]
    fn a_page_starts_after_the_key_its_cursor_holds() {
        let parse = |c: Option<&str>| after(c, crate::ids::UserId::parse);
        assert_eq!(parse(None).ok(), Some(None));
        let bob = parse(Some(&encode_cursor("bob"))).ok().flatten();
        assert_eq!(bob.as_ref().map(|u| u.as_str()), Some("bob"));
        assert!(parse(Some("***")).is_err(), "not base64");
        assert!(parse(Some(&encode_cursor("no such id!"))).is_err(), "not a user id");
    }

    #[test]
    fn only_a_full_page_has_a_next_cursor() {
        let full = Page::of(vec!["a", "b"], 2, |s| s.to_string());
        assert_eq!(
            full.next_cursor.as_deref().map(decode_cursor).and_then(Result::ok),
            Some("b".into())
        );
        assert_eq!(Page::of(vec!["a"], 2, |s| s.to_string()).next_cursor, None);
    }
}
