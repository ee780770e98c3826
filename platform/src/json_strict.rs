//! JSON from callers, parsed strictly: an object that names a key twice is refused at any
//! depth (`serde_json` keeps the last value silently, so two readers of one document, such
//! as a webhook receiver and Tern, could each see a different `content`). Every door parses
//! request JSON through here: REST bodies, WebSocket JSON frames, token claims.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Parses `bytes` as `T` after checking that no object in it repeats a key.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    UniqueKeys.deserialize(&mut de)?;
    de.end()?;
    serde_json::from_slice(bytes)
}

/// `from_slice` for text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    from_slice(text.as_bytes())
}

/// Walks any JSON value, failing on the first object with a repeated key.
#[derive(Clone, Copy)]
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(UniqueKeys)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key_seed(Key)? {
            if seen.contains(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            seen.insert(key);
            map.next_value_seed(UniqueKeys)?;
        }
        Ok(())
    }
}

/// An object key, borrowed from the input when it has no escapes: every request body and
/// JSON frame passes through here, so keys are not copied just to be compared.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        for doc in [
            r#"{"a":1,"a":2}"#,
            r#"{"content":{"text":"hi","text":"bye"}}"#,
            r#"{"metadata":{"k":{"x":1,"x":1}}}"#,
            r#"[{"ok":1},{"b":1,"b":1}]"#,
            // The same key spelled with an escape is the same key.
            r#"{"to":"alice","t\u006f":"mallory"}"#,
        ] {
            let err = from_str::<Value>(doc).unwrap_err();
            assert!(err.to_string().contains("duplicate key"), "{doc}: {err}");
        }
    }

    #[test]
    fn documents_without_repeats_parse_as_serde_json_would() {
        let doc = r#"{"a":[1,2.5,"x",null,true],"b":{"a":{"b":1}},"c":{}}"#;
        assert_eq!(
            from_str::<Value>(doc).unwrap(),
            serde_json::from_str::<Value>(doc).unwrap()
        );
        // Equal keys in different objects are fine.
        assert!(from_str::<Value>(r#"{"a":{"id":1},"b":{"id":2}}"#).is_ok());
        // Malformed input is still an error, with serde_json's message.
        assert!(from_str::<Value>("{").is_err());
        assert!(from_str::<Value>("{} x").is_err());
    }
}
