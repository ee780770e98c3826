//! (being written)

pub mod signing;
