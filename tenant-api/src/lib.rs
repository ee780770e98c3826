//! Tern's server API: REST under `/v1` (axum) and gRPC `tern.server.v1` (tonic), the
//! operational endpoints (`/healthz`, `/readyz`, `/metrics`), and request signing.
//! Handlers parse input into platform types and call `tern_platform`; nothing here knows SQL.

pub mod ops;
