//! What the features decide without changing anything, kept below the pipeline so that the
//! send path can ask them without importing a feature: who may do what in a group and what
//! a group message must pass (`groups`), whether one user may message another (`friends`),
//! who can see a message and what a reply may quote (`messages`).

pub mod friends;
pub mod groups;
pub mod messages;
