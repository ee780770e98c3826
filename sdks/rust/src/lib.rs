//! (being written)

pub mod webhook;
