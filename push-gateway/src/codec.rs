//! The two encodings of the same frames: `tern.v1.json` (proto3 JSON mapping, text
//! messages) and `tern.v1.proto` (binary protobuf, binary messages). A frame in the other
//! encoding than the one negotiated is a `bad_frame`.

use std::sync::OnceLock;

use axum::extract::ws::{Message as WsMessage, Utf8Bytes};
use bytes::Bytes;
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
            tern_platform::json_strict::from_str(t).map_err(|e| DecodeError::Malformed(e.to_string()))
        }
        (Encoding::Proto, Incoming::Binary(b)) => {
            pb::ClientFrame::decode(b).map_err(|e| DecodeError::Malformed(e.to_string()))
        }
        (Encoding::Json, Incoming::Binary(_)) => Err(DecodeError::BinaryOnJson),
        (Encoding::Proto, Incoming::Text(_)) => Err(DecodeError::TextOnBinary),
    }
}

/// A server frame as a WebSocket message in `enc`.
pub fn encode(enc: Encoding, frame: &pb::ServerFrame) -> WsMessage {
    match enc {
        // Serialising generated types to a string cannot fail (no maps with non-string keys).
        Encoding::Json => WsMessage::Text(serde_json::to_string(frame).unwrap_or_default().into()),
        Encoding::Proto => WsMessage::Binary(frame.encode_to_vec().into()),
    }
}

/// A frame pushed to many sessions (a group message, a room broadcast): encoded at most
/// once per encoding, by the first session that writes it, and the bytes shared by every
/// other session (a WebSocket message holds them by reference count, not by copy).
pub struct SharedFrame {
    frame: pb::ServerFrame,
    json: OnceLock<Utf8Bytes>,
    proto: OnceLock<Bytes>,
}

impl SharedFrame {
    pub fn new(frame: pb::ServerFrame) -> Self {
        Self {
            frame,
            json: OnceLock::new(),
            proto: OnceLock::new(),
        }
    }

    pub fn frame(&self) -> &pb::ServerFrame {
        &self.frame
    }

    pub fn message(&self, enc: Encoding) -> WsMessage {
        match enc {
            Encoding::Json => WsMessage::Text(
                self.json
                    .get_or_init(|| serde_json::to_string(&self.frame).unwrap_or_default().into())
                    .clone(),
            ),
            Encoding::Proto => WsMessage::Binary(self.proto.get_or_init(|| self.frame.encode_to_vec().into()).clone()),
        }
    }
}
