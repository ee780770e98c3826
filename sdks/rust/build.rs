//! Generates the client-protocol types from the same proto file the server uses
//! (`platform/proto/tern/v1/client.proto`), with protox, so building needs no system
//! protoc and the SDK does not depend on the server's crates.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = "../../platform/proto";
    let file = "../../platform/proto/tern/v1/client.proto";
    println!("cargo:rerun-if-changed={file}");
    let fds = protox::compile([file], [proto_root])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
