//! The canonical query of a signed request (SIGNING.md §1). Client and server must turn
//! the same raw query into the same bytes whatever order or escaping the client's HTTP
//! library chose, so the signature covers the parameters rather than their spelling.
//!
//! Works on bytes throughout: decoded values need not be UTF-8. A `%` that does not start
//! a valid escape (`%zz`, a truncated `%4`) is kept as the literal byte `%`, so it is
//! re-encoded as `%25`; the request is not rejected for it (docs/signing.md).

use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Every byte but `A-Z a-z 0-9 - _ . ~` is written `%XX` (upper-case hex, as the crate
/// writes it). `percent_decode` keeps a `%` that starts no valid escape as a literal `%`
/// and leaves `+` alone, which is exactly what SIGNING.md asks of the decoding step.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `raw` decoded, then encoded again in the one canonical spelling.
fn canonical_component(raw: &[u8]) -> String {
    let decoded: Vec<u8> = percent_decode(raw).collect();
    percent_encode(&decoded, ESCAPED).to_string()
}

/// The canonical form of `raw_query` (the part after `?`, without the `?`).
///
/// `b=2&a=%E4%BD%A0+x&a=1&flag` becomes `a=%E4%BD%A0%2Bx&a=1&b=2&flag=`.
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .as_bytes()
        .split(|&b| b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = match part.iter().position(|&b| b == b'=') {
                Some(eq) => (&part[..eq], &part[eq + 1..]),
                None => (part, &[][..]),
            };
            (canonical_component(key), canonical_component(value))
        })
        .collect();
    // Encoded strings are ASCII, so `Ord` on `String` is the bytewise order SIGNING.md asks for.
    pairs.sort_unstable();
    let mut out = String::with_capacity(raw_query.len() + pairs.len());
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_from_signing_md() {
        assert_eq!(
            canonical_query("b=2&a=%E4%BD%A0+x&a=1&flag"),
            "a=%E4%BD%A0%2Bx&a=1&b=2&flag="
        );
    }

    #[test]
    fn empty_parts_are_dropped_and_an_empty_query_stays_empty() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("&&"), "");
        assert_eq!(canonical_query("a=1&&b=2&"), "a=1&b=2");
    }

    #[test]
    fn split_is_at_the_first_equals_sign() {
        assert_eq!(canonical_query("a=b=c"), "a=b%3Dc");
        assert_eq!(canonical_query("=x"), "=x");
        assert_eq!(canonical_query("k="), "k=");
    }

    #[test]
    fn escapes_are_normalised_to_upper_case_and_unreserved_ones_are_decoded() {
        assert_eq!(canonical_query("q=%e4%bd%a0"), "q=%E4%BD%A0");
        assert_eq!(canonical_query("q=%41%2d%7E"), "q=A-~");
        assert_eq!(canonical_query("q=a b"), "q=a%20b");
        assert_eq!(canonical_query("q=%20"), "q=%20");
    }

    #[test]
    fn invalid_escapes_keep_the_percent_literally() {
        assert_eq!(canonical_query("q=%zz"), "q=%25zz");
        assert_eq!(canonical_query("q=%4"), "q=%254");
        assert_eq!(canonical_query("q=%"), "q=%25");
        assert_eq!(canonical_query("q=100%"), "q=100%25");
        assert_eq!(canonical_query("q=%%41"), "q=%25A");
    }

    #[test]
    fn decoded_bytes_need_not_be_utf8() {
        assert_eq!(canonical_query("q=%FF%fe"), "q=%FF%FE");
    }

    #[test]
    fn pairs_sort_by_encoded_key_then_value_bytewise() {
        assert_eq!(canonical_query("b=1&B=1&a=2&a=10"), "B=1&a=10&a=2&b=1");
        // `%` (0x25) sorts before digits and letters.
        assert_eq!(canonical_query("k=1&k=%E4"), "k=%E4&k=1");
        assert_eq!(canonical_query("a.b=1&a=1&a_b=1&a~=1"), "a=1&a.b=1&a_b=1&a~=1");
    }
}
