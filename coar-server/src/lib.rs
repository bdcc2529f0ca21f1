//! The COAR Notify server's engine, and (feature `http`, on by default) its thin axum
//! adapter and the `coar-notify` binary.
//!
//! The engine knows no HTTP framework: [`Core`] holds the store, the clients, the LDN
//! receiver, the pipeline and the URLs; [`Core::admit`] takes a body and the sender's
//! evidence ([`Peer`]) and answers a [`Admitted`] once the notification is durably stored, or
//! a [`Rejection`]; [`worker`] claims queued notifications and runs the [`pipeline`] of
//! [`pipeline::Handler`]s on them, or delivers outbound ones. An application embeds it as the
//! reference Python library's `receive()` with a service binding, made durable
//! (`examples/embedded.rs`).
//!
//! [`web`] turns HTTP requests into calls to the engine and their results into responses: the
//! LDN inbox (POST, GET, HEAD, OPTIONS), the Atom feed, the admin API and dashboard, health
//! and metrics.
//!
//! It deliberately holds no protocol or storage rule of its own: COAR rules are in
//! `coar-model`, LDN in `coar-ldn`, the registry, the queue and the trust rule in
//! `coar-store`, discovery and delivery in `coar-client`. What is here is their composition
//! (admission, workers, the outbox) and the adapters.

pub mod admission;
pub mod batch;
pub mod config;
mod engine;
pub mod limits;
pub mod metrics;
pub mod outbox;
pub mod parse;
pub mod pipeline;
pub mod secrets;
pub mod trust;
pub mod urls;
pub mod views;
#[cfg(feature = "http")]
pub mod web;
pub mod worker;

pub use admission::{Admitted, Peer, Rejection};
pub use config::{Config, ConfigError, TrustPolicy};
pub use engine::{BodyError, Core, OpenError, contexts};
#[cfg(feature = "http")]
pub use web::{App, app, app_with, inbox_link_layer, router, serve};

use std::sync::Arc;

/// Runs `count` workers (at least one) without HTTP until `shutdown` completes; then lets
/// each finish the notification in hand (the rest of their claims go back to the queue).
/// `coar-notify worker` runs this, for deployments that scale web and workers separately
/// on PostgreSQL; an embedding application may run it beside its own server.
pub async fn work(core: Arc<Core>, count: usize, shutdown: impl Future<Output = ()>) {
    let workers = worker::Workers::start(core, count.max(1));
    shutdown.await;
    workers.stop().await;
}
