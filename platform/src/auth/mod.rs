//! Signatures and tokens, exactly as SIGNING.md specifies: server API request signatures
//! (`request`), the canonical query (`canonical`), user tokens and server bearer tokens
//! (`token`, HS256 JWTs), and webhook signatures (`webhook`).
//!
//! `error` holds the one error type both verifiers return, with the stable codes callers
//! see; `credentials` is the short-lived cache of an app and its decrypted secrets that both
//! verifiers share, so a hot app does not cost a store round trip and an AES open per call.

pub mod canonical;
pub mod credentials;
pub mod error;
pub mod request;
pub mod token;
pub mod webhook;

pub use error::AuthError;
