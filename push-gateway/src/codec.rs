//! The two encodings of the same frames: `tern.v1.json` (proto3 JSON mapping, text
//! messages) and `tern.v1.proto` (binary protobuf, binary messages). A frame in the other
//! encoding than the one negotiated is a `bad_frame`.

use prost::Message as _;
use tern_platform::proto::v1 as pb;

pub const JSON_SUBPROTOCOL: &str = "tern.v1.json";
pub const PROTO_SUBPROTOCOL: &str = "tern.v1.proto";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Proto,
}

impl Encoding {
    /// The negotiated subprotocol; a client that names none speaks JSON.
    pub fn from_subprotocol(p: Option<&str>) -> Self {
        match p {
            Some(PROTO_SUBPROTOCOL) => Self::Proto,
            _ => Self::Json,
        }
    }
}

/// What a WebSocket data message carried.
pub enum Incoming<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("text frames are not accepted on tern.v1.proto; send binary protobuf")]
    TextOnBinary,
    #[error("binary frames are not accepted on tern.v1.json; send JSON text")]
    BinaryOnJson,
    #[error("malformed frame: {0}")]
    Malformed(String),
}

pub fn decode(enc: Encoding, data: Incoming<'_>) -> Result<pb::ClientFrame, DecodeError> {
    match (enc, data) {
        (Encoding::Json, Incoming::Text(t)) => {
            serde_json::from_str(t).map_err(|e| DecodeError::Malformed(e.to_string()))
        }
        (Encoding::Proto, Incoming::Binary(b)) => {
            pb::ClientFrame::decode(b).map_err(|e| DecodeError::Malformed(e.to_string()))
        }
        (Encoding::Json, Incoming::Binary(_)) => Err(DecodeError::BinaryOnJson),
        (Encoding::Proto, Incoming::Text(_)) => Err(DecodeError::TextOnBinary),
    }
}

/// An encoded server frame, ready for the socket.
pub enum Outgoing {
    Text(String),
    Binary(Vec<u8>),
}

pub fn encode(enc: Encoding, frame: &pb::ServerFrame) -> Outgoing {
    match enc {
        // Serialising generated types to a string cannot fail (no maps with non-string keys).
        Encoding::Json => Outgoing::Text(serde_json::to_string(frame).unwrap_or_default()),
        Encoding::Proto => Outgoing::Binary(frame.encode_to_vec()),
    }
}
