//! Signatures and tokens, exactly as SIGNING.md specifies: server API request signatures
//! (`request`), the canonical query (`canonical`), user tokens and server bearer tokens
//! (`token`, HS256 JWTs), and webhook signatures (`webhook`).

pub mod webhook;
