//! Persistence for a COAR Notify service.
//!
//! This crate owns every SQL statement of the project: notifications in both directions with
//! their raw bodies, the durable processing queue, the service registry and request threads,
//! on SQLite (embedded default), PostgreSQL and MariaDB/MySQL.
//!
//! It deliberately does no HTTP and no JSON-LD processing: it stores what the layers above
//! have parsed and validated.
