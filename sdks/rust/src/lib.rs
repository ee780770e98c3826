//! Rust SDK for Tern: the real-time `Client` (WebSocket) for apps, and the signed
//! `ServerClient` (REST) for a tenant's backend, with webhook verification.

pub mod server;
pub mod signing;
pub mod webhook;
