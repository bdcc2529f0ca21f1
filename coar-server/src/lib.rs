//! The `coar-notify` server: a thin axum adapter over the project's library crates.
//!
//! It turns HTTP requests into calls to `coar-model`, `coar-ldn`, `coar-store` and
//! `coar-client` and their results into responses: the LDN inbox, the outbox, the processing
//! pipeline, the trust registry, feeds and the admin API.
//!
//! It deliberately holds no protocol or storage logic of its own: if a rule about COAR, LDN or
//! SQL appears here, it belongs in the crate below.
