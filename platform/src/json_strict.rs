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

/// Keys of one object compared pairwise before they go into a hash set.
const FEW_KEYS: usize = 16;

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
        // Objects in requests and frames have a handful of keys: comparing against the few
        // seen so far is cheaper than hashing each one (and seeding a hasher per object);
        // a large object moves to a set so that the walk stays linear.
        let mut few: Vec<Cow<'de, str>> = Vec::new();
        let mut many: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(key) = map.next_key_seed(Key)? {
            let repeated = match &mut many {
                Some(set) => !set.insert(key.clone()),
                None if few.contains(&key) => true,
                None if few.len() < FEW_KEYS => {
                    few.push(key.clone());
                    false
                }
                None => {
                    let mut set: HashSet<Cow<'de, str>> = few.drain(..).collect();
                    set.insert(key.clone());
                    many = Some(set);
                    false
                }
            };
            if repeated {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
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
        // Objects of many keys (past the pairwise comparisons, in the set) and of a few,
        // repeated first, last and in the middle.
        let keys = |n: usize| (0..n).map(|i| format!("\"k{i}\":1")).collect::<Vec<_>>().join(",");
        for (n, again) in [(40, 0), (40, 39), (40, 20), (10, 3), (16, 15), (17, 16)] {
            let doc = format!("{{{},\"k{again}\":2}}", keys(n));
            let err = from_str::<Value>(&doc).unwrap_err();
            assert!(err.to_string().contains("duplicate key"), "{doc}: {err}");
            let fine = format!("{{{}}}", keys(n));
            assert_eq!(from_str::<Value>(&fine).unwrap().as_object().unwrap().len(), n);
        }
    }

    #[test]
    fn numbers_are_read_as_the_nearest_double() {
        // Found by the ws_frame_proto fuzz target: serde_json's default parser read these one
        // step off (1.5000003539171303 as 1.5000003539171305), so a number in a message's
        // content changed between the sender and a JSON reader. The workspace now turns on
        // serde_json's `float_roundtrip`.
        for text in ["1.5000003539171303", "1.5000000000000067"] {
            let exact: f64 = text.parse().unwrap();
            let read: f64 = from_str(text).unwrap();
            assert_eq!(read, exact, "{text}");
            assert_eq!(serde_json::to_string(&read).unwrap(), text);
            let doc: Value = from_str(&format!(r#"{{"content":{{"n":{text}}}}}"#)).unwrap();
            assert_eq!(doc["content"]["n"].as_f64(), Some(exact), "{text}");
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
