//! WebSocket frames on `tern.v1.proto`: any binary message a client sends is parsed by the
//! gateway's own codec without panicking; a frame that parses encodes back to itself, and
//! written as JSON (the other subprotocol) parses back to a frame that writes the same JSON.
//! The same bytes read as a server frame check the writer the SDKs read, on both encodings.
#![no_main]

use axum::extract::ws::Message as WsMessage;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use tern_platform::proto::v1 as pb;
use tern_push_gateway::{decode_client_frame, encode_server_frame, DecodeError, Encoding, Incoming};

/// A frame with a NaN in it is not equal to itself; such frames are compared no further.
#[allow(clippy::eq_op)]
fn comparable<T: PartialEq>(v: &T) -> bool {
    v == v
}

/// The frame as JSON, as a value: the order of a Struct's keys is the hash map's.
fn as_json<T: serde::Serialize>(frame: &T) -> serde_json::Value {
    serde_json::to_value(frame).expect("a parsed frame serialises")
}

fuzz_target!(|data: &[u8]| {
    assert!(matches!(
        decode_client_frame(Encoding::Json, Incoming::Binary(data)),
        Err(DecodeError::BinaryOnJson)
    ));
    if let Ok(frame) = decode_client_frame(Encoding::Proto, Incoming::Binary(data)) {
        let bytes = frame.encode_to_vec();
        let again = decode_client_frame(Encoding::Proto, Incoming::Binary(&bytes))
            .unwrap_or_else(|e| panic!("our own protobuf does not parse: {e}"));
        if comparable(&frame) {
            assert_eq!(again, frame, "protobuf round trip changed the frame");
        }
        if let Ok(json) = serde_json::to_string(&frame) {
            let from_json = decode_client_frame(Encoding::Json, Incoming::Text(&json))
                .unwrap_or_else(|e| panic!("our own JSON {json} does not parse: {e}"));
            // Compared as a JSON client sees it: protobuf can say "null" two ways (a Value
            // with no kind, or a NullValue), JSON one.
            assert_eq!(
                as_json(&from_json),
                as_json(&frame),
                "protobuf -> JSON -> frame changed it"
            );
        }
    }
    // A server frame Tern could write: one whose enums are all known (JSON has no name for
    // another value, and the server only sets known ones).
    if let Some(server) = pb::ServerFrame::decode(data)
        .ok()
        .filter(|f| serde_json::to_string(f).is_ok())
    {
        for enc in [Encoding::Json, Encoding::Proto] {
            match encode_server_frame(enc, &server) {
                WsMessage::Text(t) => {
                    let back = serde_json::from_str::<pb::ServerFrame>(t.as_str())
                        .unwrap_or_else(|e| panic!("server JSON {} does not parse: {e}", t.as_str()));
                    assert_eq!(as_json(&back), as_json(&server), "server frame changed on JSON");
                }
                WsMessage::Binary(b) => {
                    let back = pb::ServerFrame::decode(&b[..])
                        .unwrap_or_else(|e| panic!("server protobuf does not parse: {e}"));
                    if comparable(&server) {
                        assert_eq!(back, server, "server frame changed on protobuf");
                    }
                }
                other => panic!("a server frame is a data message, not {other:?}"),
            }
        }
    }
});
