//! JSON ↔ `google.protobuf.Struct`, the one conversion every door uses: REST carries content
//! and metadata as JSON objects, gRPC (`prost_types`) and the WebSocket (`pbjson_types`) as
//! Structs.
//!
//! The rule for numbers: a Struct number is a double. One that is whole and exactly
//! representable (|n| < 2^53) goes back to JSON as an integer, so `1000` stays `1000`;
//! any other finite number stays a float; a non-finite one (which JSON cannot hold)
//! becomes `null`. JSON numbers become doubles (an integer beyond 2^53 is rounded to the
//! nearest double, as any proto3 JSON reader would).

/// 2^53: every whole double below it in magnitude is an exact integer.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// A Struct number as JSON, by the rule above.
pub fn number_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < EXACT_INTEGER_LIMIT {
        // Exact: |n| < 2^53 fits an i64 with no rounding.
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// A JSON number as a Struct number.
pub fn number_from_json(n: &serde_json::Number) -> f64 {
    n.as_f64().unwrap_or(0.0)
}

/// The same conversion for both generated families of the well-known types.
macro_rules! struct_json_for {
    ($types:ident) => {
        use $types::{value::Kind, ListValue, Struct, Value};

        /// A JSON object as a Struct; `None` for anything that is not an object.
        pub fn json_to_struct(v: &serde_json::Value) -> Option<Struct> {
            match v {
                serde_json::Value::Object(map) => Some(Struct {
                    fields: map.iter().map(|(k, v)| (k.clone(), json_to_value(v))).collect(),
                }),
                _ => None,
            }
        }

        /// Any JSON value as a Struct value.
        pub fn json_to_value(v: &serde_json::Value) -> Value {
            let kind = match v {
                serde_json::Value::Null => Kind::NullValue(0),
                serde_json::Value::Bool(b) => Kind::BoolValue(*b),
                serde_json::Value::Number(n) => Kind::NumberValue(super::number_from_json(n)),
                serde_json::Value::String(s) => Kind::StringValue(s.clone()),
                serde_json::Value::Array(a) => Kind::ListValue(ListValue {
                    values: a.iter().map(json_to_value).collect(),
                }),
                serde_json::Value::Object(_) => Kind::StructValue(json_to_struct(v).unwrap_or_default()),
            };
            Value { kind: Some(kind) }
        }

        /// A Struct as a JSON object.
        pub fn struct_to_json(s: &Struct) -> serde_json::Value {
            serde_json::Value::Object(
                s.fields
                    .iter()
                    .map(|(k, v)| (k.clone(), value_to_json(v)))
                    .collect(),
            )
        }

        /// A Struct value as JSON (an unset value is `null`).
        pub fn value_to_json(v: &Value) -> serde_json::Value {
            match &v.kind {
                None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
                Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
                Some(Kind::NumberValue(n)) => super::number_to_json(*n),
                Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
                Some(Kind::ListValue(l)) => serde_json::Value::Array(l.values.iter().map(value_to_json).collect()),
                Some(Kind::StructValue(s)) => struct_to_json(s),
            }
        }
    };
}

/// For `prost_types` (the server API's gRPC).
pub mod prost {
    struct_json_for!(prost_types);
}

/// For `pbjson_types` (the client protocol, which also speaks proto3 JSON).
pub mod pbjson {
    struct_json_for!(pbjson_types);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_round_trip_in_both_families() {
        let v = json!({"text": "hi", "n": 3, "neg": -7, "x": [1.5, false, null], "o": {"k": "v"}});
        assert_eq!(
            prost::json_to_struct(&v).map(|s| prost::struct_to_json(&s)),
            Some(v.clone())
        );
        assert_eq!(pbjson::json_to_struct(&v).map(|s| pbjson::struct_to_json(&s)), Some(v));
        assert!(prost::json_to_struct(&json!([1])).is_none());
        assert!(pbjson::json_to_struct(&json!(null)).is_none());
    }

    #[test]
    fn whole_numbers_are_integers_only_below_two_to_the_53() {
        assert_eq!(
            number_to_json(9_007_199_254_740_991.0),
            json!(9_007_199_254_740_991_i64)
        );
        assert_eq!(
            number_to_json(-9_007_199_254_740_991.0),
            json!(-9_007_199_254_740_991_i64)
        );
        assert_eq!(number_to_json(9.0e15), json!(9_000_000_000_000_000_i64));
        assert_eq!(number_to_json(EXACT_INTEGER_LIMIT), json!(9_007_199_254_740_992.0));
        assert_eq!(number_to_json(1.5), json!(1.5));
        assert_eq!(number_to_json(f64::NAN), json!(null));
        assert_eq!(number_to_json(f64::INFINITY), json!(null));
    }
}
