//! Types generated from `proto/tern/` (`v1`, `client/v1`) by `build.rs` (protox, no system protoc).

#[allow(clippy::all, clippy::unwrap_used)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/tern.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/tern.v1.serde.rs"));
}

#[allow(clippy::all, clippy::unwrap_used)]
pub mod server_v1 {
    include!(concat!(env!("OUT_DIR"), "/tern.server.v1.rs"));
}

/// The client protocol's gRPC door (`tern.client.v1.Gateway`), over the `v1` frames.
#[allow(clippy::all, clippy::unwrap_used)]
pub mod client_v1 {
    include!(concat!(env!("OUT_DIR"), "/tern.client.v1.rs"));
}

/// The encoded descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tern_descriptor.bin"));
