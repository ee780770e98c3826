//! Compiles the proto files with protox (pure Rust), so building needs no system protoc.
//!
//! The client protocol (`tern.v1`) also gets proto3-JSON serde impls from pbjson-build
//! (`tern.v1.serde.rs`), for the `tern.v1.json` WebSocket subprotocol; its well-known types
//! (`google.protobuf.Struct`) therefore map to `pbjson_types`, which carry serde impls. The
//! server API (`tern.server.v1`) is compiled separately and keeps `prost_types`. The gRPC
//! door of the client protocol (`tern.client.v1.Gateway`) is only a service over the
//! `tern.v1` frames: its code refers to those types rather than generating them again.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = "proto/tern/v1/client.proto";
    let server = "proto/tern/v1/server.proto";
    let gateway = "proto/tern/client/v1/gateway.proto";
    for f in [client, server, gateway] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-changed=proto");
    // sqlx::migrate! embeds platform/migrations at compile time: rebuild when they change.
    println!("cargo:rerun-if-changed=migrations");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);

    // Every file, for gRPC server reflection.
    let all = protox::compile([client, server, gateway], ["proto"])?;
    std::fs::write(out.join("tern_descriptor.bin"), prost::Message::encode_to_vec(&all))?;

    let client_fds = protox::compile([client], ["proto"])?;
    let client_descriptor = prost::Message::encode_to_vec(&client_fds);
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(client_fds)?;
    pbjson_build::Builder::new()
        .register_descriptors(&client_descriptor)?
        .preserve_proto_field_names()
        .build(&[".tern.v1"])?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(protox::compile([server], ["proto"])?)?;

    // Only the gateway file: its import (client.proto) is generated above.
    let mut gateway_fds = protox::compile([gateway], ["proto"])?;
    gateway_fds.file.retain(|f| f.name() == "tern/client/v1/gateway.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // No `connect(endpoint)` constructor on the client: it would clash with the
        // `Connect` method.
        .build_transport(false)
        .extern_path(".tern.v1", "crate::proto::v1")
        .compile_fds(gateway_fds)?;
    Ok(())
}
