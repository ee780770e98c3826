//! Signed server API requests (SIGNING.md §1): the canonical query of any raw query, the
//! string to sign, and the parsers of the `X-Tern-Timestamp`, `X-Tern-Nonce` and
//! `X-Tern-Signature` headers never panic. The canonical query is a fixed point, does not
//! depend on the order of the parameters and uses only the documented alphabet; a
//! signature Tern writes parses back to its MAC.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tern_platform::auth::canonical::canonical_query;
use tern_platform::auth::request::{is_valid_nonce, parse_signature, parse_timestamp, sign, string_to_sign};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    query: &'a str,
    timestamp: &'a str,
    nonce: &'a str,
    method: &'a str,
    path: &'a str,
    signature: &'a str,
    secret: &'a str,
    body: &'a [u8],
}

fn is_canonical_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'%' | b'=' | b'&')
}

fuzz_target!(|input: Input<'_>| {
    // Canonical query.
    let canonical = canonical_query(input.query);
    assert_eq!(
        canonical_query(&canonical),
        canonical,
        "not a fixed point: {:?}",
        input.query
    );
    assert!(canonical.bytes().all(is_canonical_byte), "{canonical:?}");
    let bytes = canonical.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%' {
            let escape = bytes.get(i + 1..i + 3).expect("a complete escape");
            assert!(
                escape.iter().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c)),
                "{canonical:?}"
            );
        }
    }
    let mut reversed: Vec<&str> = input.query.split('&').collect();
    reversed.reverse();
    assert_eq!(
        canonical_query(&reversed.join("&")),
        canonical,
        "order matters: {:?}",
        input.query
    );

    // Header values.
    if let Some(t) = parse_timestamp(input.timestamp) {
        assert!(t >= 0);
        assert!(input.timestamp.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(input.timestamp.trim_start_matches('0').parse::<i64>().unwrap_or(0), t);
    }
    let _ = is_valid_nonce(input.nonce);
    if let Some(mac) = parse_signature(input.signature) {
        let written: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(format!("v1={written}"), input.signature);
    }

    // String to sign: seven lines, the values as sent, when none holds a newline.
    let sts = string_to_sign(
        input.timestamp,
        input.nonce,
        input.method,
        input.path,
        input.query,
        input.body,
    );
    let fields = [input.timestamp, input.nonce, input.method, input.path];
    if fields.iter().all(|f| !f.contains('\n')) {
        let lines: Vec<&str> = sts.split('\n').collect();
        assert_eq!(lines.len(), 7, "{sts:?}");
        assert_eq!(lines[0], "TERN1-HMAC-SHA256");
        assert_eq!(lines[1], input.timestamp);
        assert_eq!(lines[2], input.nonce);
        assert_eq!(lines[3], input.method.to_ascii_uppercase());
        assert_eq!(lines[4], input.path);
        assert_eq!(lines[5], canonical);
        assert_eq!(lines[6].len(), 64);
    }
    let signature = sign(input.secret, &sts);
    assert!(parse_signature(&signature).is_some(), "{signature}");
});
