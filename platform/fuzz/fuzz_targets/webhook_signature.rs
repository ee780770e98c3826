//! The webhook `X-Tern-Signature` header (SIGNING.md §3): a receiver's parse and check never
//! panic on any header, body or clock; a parsed header written back parses to the same; a
//! header Tern writes verifies with each of its secrets, and not for another body.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tern_platform::auth::webhook::{parse_header, signature_header, verify, WebhookSignatureError};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    header: &'a str,
    body: &'a [u8],
    secrets: Vec<&'a str>,
    /// The receiver's clock: Unix seconds, as a real clock gives them.
    now: u32,
    tolerance: u16,
    t: u32,
}

fuzz_target!(|input: Input<'_>| {
    let now = i64::from(input.now);
    let tolerance = i64::from(input.tolerance);
    if let Ok(parsed) = parse_header(input.header) {
        let mut written = format!("t={}", parsed.t);
        for v in &parsed.v1 {
            written.push_str(",v1=");
            written.push_str(v);
        }
        assert_eq!(parse_header(&written), Ok(parsed), "{written:?}");
    }
    for secret in &input.secrets {
        let _ = verify(input.header, input.body, secret, now, tolerance);
    }

    if input.secrets.is_empty() {
        return;
    }
    let t = i64::from(input.t);
    let header = signature_header(&input.secrets, t, input.body);
    let parsed = parse_header(&header).unwrap_or_else(|e| panic!("{header}: {e}"));
    assert_eq!(parsed.t, t);
    assert_eq!(parsed.v1.len(), input.secrets.len());
    for secret in &input.secrets {
        assert_eq!(verify(&header, input.body, secret, t, tolerance), Ok(()), "{header}");
        let mut other = input.body.to_vec();
        other.push(b'!');
        assert_eq!(
            verify(&header, &other, secret, t, tolerance),
            Err(WebhookSignatureError::NoMatch)
        );
    }
});
