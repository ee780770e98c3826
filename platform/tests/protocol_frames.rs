//! The shared golden frames (docs/protocol-frames.json, written by the TypeScript SDK's
//! protobuf-es code) read and written by the code the gateway runs: a frame's proto3 JSON
//! parsed as push-gateway parses it (`json_strict`, the pbjson serde impls) and its
//! protobuf bytes decoded with prost give the same frame; the JSON the gateway writes for
//! it (`serde_json::to_string`) is the golden JSON; the bytes it writes decode back to the
//! same frame. The TypeScript SDK's test and the Rust SDK's `tests/protocol_frames.rs`
//! check the same file: one vector set for all.
#![allow(clippy::unwrap_used)]

use std::fmt::Debug;

use prost::Message;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tern_platform::json_strict;
use tern_platform::proto::v1 as pb;

struct Golden {
    name: String,
    frame: String,
    json: Value,
    proto: Vec<u8>,
}

fn golden() -> Vec<Golden> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol-frames.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Golden {
            name: f["name"].as_str().unwrap().to_owned(),
            frame: f["frame"].as_str().unwrap().to_owned(),
            json: f["json"].clone(),
            proto: hex::decode(f["proto_hex"].as_str().unwrap()).unwrap(),
        })
        .collect()
}

/// `a == b`, but for one difference that is not one to Tern: pbjson reads a JSON `null` in a
/// `google.protobuf.Struct` as a Value with no kind, prost reads the protobuf as a Value of
/// kind NullValue, and Tern reads both as null (`struct_json::value_to_json`). Such frames
/// must write the same JSON.
fn same_frame<F: PartialEq + Debug + Serialize>(a: &F, b: &F) -> bool {
    let kindless = |f: &F| format!("{f:?}").contains("Value { kind: None }");
    a == b || ((kindless(a) || kindless(b)) && serde_json::to_value(a).unwrap() == serde_json::to_value(b).unwrap())
}

/// Every way `g` disagrees with Tern's reading and writing of `F`, as lines for the report.
fn disagreements<F>(g: &Golden) -> Vec<String>
where
    F: Message + Default + Serialize + DeserializeOwned + PartialEq + Debug,
{
    let name = &g.name;
    let from_json: F = match json_strict::from_str(&g.json.to_string()) {
        Ok(f) => f,
        Err(e) => return vec![format!("{name}: the JSON does not parse: {e}")],
    };
    let from_proto = match F::decode(g.proto.as_slice()) {
        Ok(f) => f,
        Err(e) => return vec![format!("{name}: the protobuf does not decode: {e}")],
    };
    let mut out = Vec::new();
    if !same_frame(&from_json, &from_proto) {
        out.push(format!(
            "{name}: JSON gives {from_json:?}\n  protobuf gives {from_proto:?}"
        ));
    }
    let json_read_back: Value = serde_json::to_value(&from_json).unwrap();
    if json_read_back != g.json {
        out.push(format!("{name}: the JSON is read as {json_read_back}"));
    }

    // What the gateway writes on tern.v1.json (codec::encode), and reads back.
    let written = serde_json::to_string(&from_proto).unwrap();
    let written_value: Value = serde_json::from_str(&written).unwrap();
    if written_value != g.json {
        out.push(format!("{name}: Tern writes {written_value}\n  golden is {}", g.json));
    }
    match json_strict::from_str::<F>(&written) {
        Ok(back) if same_frame(&back, &from_proto) => {}
        Ok(back) => out.push(format!("{name}: the written JSON reads back as {back:?}")),
        Err(e) => out.push(format!("{name}: the written JSON does not parse: {e}")),
    }

    // What it writes on tern.v1.proto. Not compared byte for byte: a Struct is a HashMap
    // in pbjson_types, so the order of its entries on the wire is not fixed.
    let bytes = from_proto.encode_to_vec();
    if bytes.len() != g.proto.len() {
        out.push(format!(
            "{name}: Tern writes {} protobuf bytes, golden has {}",
            bytes.len(),
            g.proto.len()
        ));
    }
    match F::decode(bytes.as_slice()) {
        Ok(back) if back == from_proto => {}
        Ok(back) => out.push(format!("{name}: the written protobuf decodes as {back:?}")),
        Err(e) => out.push(format!("{name}: the written protobuf does not decode: {e}")),
    }
    out
}

#[test]
fn every_golden_frame_reads_and_writes_alike_in_both_encodings() {
    let frames = golden();
    let mut problems = Vec::new();
    let (mut client, mut server) = (0, 0);
    for g in &frames {
        match g.frame.as_str() {
            "ClientFrame" => {
                client += 1;
                problems.extend(disagreements::<pb::ClientFrame>(g));
            }
            "ServerFrame" => {
                server += 1;
                problems.extend(disagreements::<pb::ServerFrame>(g));
            }
            other => problems.push(format!("{}: unknown frame type {other}", g.name)),
        }
    }
    // The file covers the protocol's commands and pushes; an empty or truncated file is a failure.
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
