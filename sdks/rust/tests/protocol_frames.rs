//! The shared golden frames (docs/protocol-frames.json) through this SDK's own generated
//! types: the SDK speaks `tern.v1.proto`, so each frame's protobuf bytes must decode, and
//! what the SDK writes for the frame must decode back to the same frame in as many bytes.
//! The server's side of the same file is `platform/tests/protocol_frames.rs` (JSON and
//! protobuf); the TypeScript SDK checks it too: one vector set for all.
#![allow(clippy::unwrap_used)]

use std::fmt::Debug;

use prost::Message;
use serde_json::Value;
use tern_sdk::proto as pb;

fn golden() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol-frames.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file["frames"].as_array().unwrap().clone()
}

/// Every way the frame `name` with bytes `golden` disagrees with the SDK's reading and writing of `F`.
fn disagreements<F: Message + Default + PartialEq + Debug>(name: &str, golden: &[u8]) -> Vec<String> {
    let frame = match F::decode(golden) {
        Ok(f) => f,
        Err(e) => return vec![format!("{name}: the protobuf does not decode: {e}")],
    };
    let mut out = Vec::new();
    // A Struct's entries are written in key order by prost and in insertion order by
    // protobuf-es, so the bytes may differ in order, never in length or meaning.
    let written = frame.encode_to_vec();
    if written.len() != golden.len() {
        out.push(format!(
            "{name}: the SDK writes {} bytes, golden has {}",
            written.len(),
            golden.len()
        ));
    }
    match F::decode(written.as_slice()) {
        Ok(back) if back == frame => {}
        Ok(back) => out.push(format!("{name}: {frame:?}\n  is written as {back:?}")),
        Err(e) => out.push(format!("{name}: what the SDK writes does not decode: {e}")),
    }
    out
}

#[test]
fn every_golden_frame_decodes_and_is_written_back_alike() {
    let frames = golden();
    let mut problems = Vec::new();
    let (mut client, mut server) = (0, 0);
    for f in &frames {
        let name = f["name"].as_str().unwrap();
        let bytes = hex::decode(f["proto_hex"].as_str().unwrap()).unwrap();
        match f["frame"].as_str().unwrap() {
            "ClientFrame" => {
                client += 1;
                problems.extend(disagreements::<pb::ClientFrame>(name, &bytes));
            }
            "ServerFrame" => {
                server += 1;
                problems.extend(disagreements::<pb::ServerFrame>(name, &bytes));
            }
            other => problems.push(format!("{name}: unknown frame type {other}")),
        }
    }
    assert!(
        client >= 20 && server >= 20,
        "{client} client and {server} server frames"
    );
    assert!(
        problems.is_empty(),
        "{} of {} frames disagree:\n{}",
        problems.len(),
        frames.len(),
        problems.join("\n")
    );
}

/// The frames carry what they say: a decoded frame is the command or push its name gives,
/// with the fields of its JSON (the bytes are not just any valid protobuf).
#[test]
fn decoded_frames_carry_their_json_fields() {
    use pb::client_frame::Command;
    use pb::server_frame::Body;
    for f in golden() {
        let name = f["name"].as_str().unwrap();
        let bytes = hex::decode(f["proto_hex"].as_str().unwrap()).unwrap();
        let json = &f["json"];
        let id = json["id"].as_str().unwrap_or_default();
        match f["frame"].as_str().unwrap() {
            "ClientFrame" => {
                let frame = pb::ClientFrame::decode(bytes.as_slice()).unwrap();
                assert_eq!(frame.id, id, "{name}");
                let Some(command) = frame.command else {
                    panic!("{name}: no command")
                };
                if let Command::Send(s) = command {
                    assert_eq!(
                        s.client_msg_id,
                        json["send"]["client_msg_id"].as_str().unwrap(),
                        "{name}"
                    );
                }
            }
            _ => {
                let frame = pb::ServerFrame::decode(bytes.as_slice()).unwrap();
                assert_eq!(frame.id, id, "{name}");
                let Some(body) = frame.body else {
                    panic!("{name}: no body")
                };
                if let Body::SendAck(a) = body {
                    let seq: i64 = json["send_ack"]["seq"].as_str().unwrap().parse().unwrap();
                    assert_eq!(a.seq, seq, "{name}");
                }
            }
        }
    }
}
