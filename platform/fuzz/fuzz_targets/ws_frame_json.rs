//! WebSocket frames on `tern.v1.json`: any text a client sends is parsed by the gateway's
//! own codec without panicking; a frame that parses writes back (JSON and protobuf) to
//! the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use tern_platform::proto::v1 as pb;
use tern_push_gateway::{decode_client_frame, DecodeError, Encoding, Incoming};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        // Not text: the JSON subprotocol refuses a binary message outright.
        assert!(matches!(
            decode_client_frame(Encoding::Json, Incoming::Binary(data)),
            Err(DecodeError::BinaryOnJson)
        ));
        return;
    };
    assert!(matches!(
        decode_client_frame(Encoding::Proto, Incoming::Text(text)),
        Err(DecodeError::TextOnBinary)
    ));
    let Ok(frame) = decode_client_frame(Encoding::Json, Incoming::Text(text)) else {
        return;
    };
    // JSON written from the frame parses back to the same frame.
    let json = serde_json::to_string(&frame).expect("a parsed frame serialises");
    let again = decode_client_frame(Encoding::Json, Incoming::Text(&json))
        .unwrap_or_else(|e| panic!("our own JSON {json} does not parse: {e}"));
    assert_eq!(again, frame, "JSON round trip changed the frame: {json}");
    // And so does its protobuf encoding, on the other subprotocol.
    let bytes = frame.encode_to_vec();
    let decoded = decode_client_frame(Encoding::Proto, Incoming::Binary(&bytes))
        .unwrap_or_else(|e| panic!("our own protobuf does not parse: {e}"));
    assert_eq!(decoded, frame, "protobuf round trip changed the frame");
    let _: pb::ClientFrame = decoded;
});
