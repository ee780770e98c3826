//! Compiles the proto files with protox (pure Rust), so building needs no system protoc.
//!
//! Well-known types (`google.protobuf.*`) map to `pbjson_types`, which carry serde impls,
//! and the client protocol (`tern.v1`) also gets proto3-JSON serde impls from pbjson-build
//! (`tern.v1.serde.rs`), for the `tern.v1.json` WebSocket subprotocol.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/tern/v1/client.proto", "proto/tern/v1/server.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(files, ["proto"])?;
    let descriptor = prost::Message::encode_to_vec(&fds);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("tern_descriptor.bin"), &descriptor)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(fds)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor)?
        .preserve_proto_field_names()
        .build(&[".tern.v1"])?;
    Ok(())
}
