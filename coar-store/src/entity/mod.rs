//! SeaORM entities: one module per table. Times are `i64` microseconds since the Unix epoch,
//! the one representation that sorts, indexes and round-trips exactly on all three backends.

pub mod attempt;
pub mod link;
pub mod notification;
pub mod service;
pub mod signing_key;
