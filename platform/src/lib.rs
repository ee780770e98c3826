//! Tern's engine. Every front door (REST and gRPC in `tenant-api`, WebSocket in
//! `push-gateway`, the console) calls into this crate; they never talk to each other.
//!
//! Layout:
//! - `ids`, `domain`: parsed identifiers and the nouns (tenants, apps, users, messages).
//! - `auth`: request signatures, user tokens and webhook signatures (SIGNING.md).
//! - `secret_box`: secrets at rest (AES-256-GCM with a versioned master key).
//! - `store`: the Store port and its SQLite and PostgreSQL adapters.
//! - `bus`, `presence`, `nonce`, `rate_limits`: the ports that become Redis or Pulsar at scale;
//!   `clock`, the time the engine reads; `ports`: all of them, chosen at start and given to the `engine`.
//! - `redis_adapters`: those ports on Redis, for several nodes over one database.
//! - `pulsar_bus` (cargo feature `pulsar`): the bus on Apache Pulsar, for many nodes.
//! - `rules`: what a feature decides without changing anything (group permissions and send
//!   checks, blocks and friendship, who can see a message), asked by the pipeline and the features.
//! - `context`: `Ctx`, what a feature needs (ports, shared caches, publishing), below the pipeline.
//! - `delivery`: the one pipeline every message goes through; it imports no feature.
//! - `service`: the application layer the doors call (users, moderation, conversations, ...).
//! - `lifecycle`: what happens to a message after it is sent (edits, recalls, reactions, ...).
//! - `files`: uploads, downloads and the `FileStore` port (local directory, S3, memory).
//! - `friends`, `rooms`, `broadcasts`: operations shared by the server API and the gateway.
//! - `friends`, `groups`: the social operations every door shares.
//! - `push`: offline push to APNs and FCM: devices, credentials, the worker, the delivery log.
//! - `alerts`: alert rules on an app's traffic, their checks (one node at a time) and raised alerts.
//! - `proto`: types generated from `proto/tern/v1/`; `struct_json`: JSON ↔ `google.protobuf.Struct`.

pub mod admins;
pub mod alerts;
pub mod auth;
pub mod bootstrap;
pub mod broadcasts;
pub mod bus;
pub mod clock;
pub mod context;
pub mod delivery;
pub mod domain;
pub mod engine;
pub mod error;
pub mod files;
pub mod friends;
pub mod groups;
pub mod ids;
pub mod json_strict;
pub mod lifecycle;
pub mod mail;
pub mod nonce;
pub mod ports;
pub mod presence;
pub mod proto;
#[cfg(feature = "pulsar")]
pub mod pulsar_bus;
pub mod push;
pub mod rate_limits;
pub mod redis_adapters;
pub mod rooms;
pub mod rules;
pub mod secret_box;
pub mod service;
pub mod store;
pub mod struct_json;
pub mod tenancy;
pub mod usage;
pub mod webhook;
