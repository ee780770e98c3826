//! Generates the client-protocol types from the same proto file the server uses
//! (`platform/proto/tern/v1/client.proto`), with protox, so building needs no system
//! protoc and the SDK does not depend on the server's crates; and the client of the gRPC
//! door (`platform/proto/tern/client/v1/gateway.proto`) over those same types.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = "../../platform/proto";
    let file = "../../platform/proto/tern/v1/client.proto";
    let gateway = "../../platform/proto/tern/client/v1/gateway.proto";
    println!("cargo:rerun-if-changed={file}");
    println!("cargo:rerun-if-changed={gateway}");
    let fds = protox::compile([file], [proto_root])?;
    prost_build::Config::new().compile_fds(fds)?;
    let mut gateway_fds = protox::compile([gateway], [proto_root])?;
    gateway_fds.file.retain(|f| f.name() == "tern/client/v1/gateway.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        // No `connect(endpoint)` constructor on the client: it would clash with the
        // `Connect` method.
        .build_transport(false)
        .extern_path(".tern.v1", "crate::proto")
        .compile_fds(gateway_fds)?;
    Ok(())
}
