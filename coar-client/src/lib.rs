//! Sending COAR Notify notifications over Linked Data Notifications.
//!
//! This crate is the only one of the project that opens outbound connections: inbox
//! discovery, POSTing notifications, and retries with backoff.
//!
//! It deliberately keeps no state on disk: durable outboxes belong to `coar-store` and the
//! server, which call this crate once per delivery attempt.
