//! Page cursors (`?cursor=` on REST, `cursor` on gRPC): any string decodes or is refused
//! without panicking; a cursor that decodes is the one Tern would write for its key, and
//! every key comes back from its cursor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_platform::ids::{GroupId, UserId};
use tern_platform::service::paging::{after, decode_cursor, encode_cursor};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = decode_cursor(text) {
        assert_eq!(encode_cursor(&key), text, "two spellings of one cursor");
    }
    assert_eq!(decode_cursor(&encode_cursor(text)).ok().as_deref(), Some(text));
    let _ = after(Some(text), UserId::parse);
    let _ = after(Some(text), GroupId::parse);
    let _ = after(Some(&encode_cursor(text)), UserId::parse);
});
