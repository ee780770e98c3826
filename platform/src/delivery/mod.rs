//! The one delivery pipeline. Every send, from REST, gRPC or the WebSocket, goes through
//! `Pipeline::send` and gets the same answer:
//!
//! ```text
//! check_message ─▶ authorise ─▶ route ─▶ mentions ─▶ relations ─▶ moderate ─▶ persist ─▶ publish
//! ```
//!
//! Each stage is a named function in `send`; `relations` may end a retry early with its
//! first answer.
//!
//! A message is persisted before anyone is told it exists; the receipt to the sender means
//! it is durable. Persistence is batched (`writer`): concurrent sends share one transaction,
//! which is how one SQLite file takes thousands of sends a second.

mod hook;
pub mod moderation;
mod pipeline;
mod send;

pub(crate) use send::check_message;
mod user_cache;
mod writer;

pub use crate::error::DeliveryError;
pub use hook::{BeforeSendHook, HookDecision, HookDraft};
pub use pipeline::{
    clamp_limit, Actor, Pipeline, PipelineConfig, Recipient, SendOptions, SendRequest, DEFAULT_PAGE, MAX_PAGE,
};
pub use user_cache::USER_CACHE_TTL;
