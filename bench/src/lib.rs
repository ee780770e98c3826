//! The parts of the load generator that the test suite shares: the chaos workload and its
//! checker (`tests/chaos.rs` runs a short version of the `chaos` scenario).

pub mod chaos;
