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
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::net::{IpAddr, Ipv4Addr};
//! use coar_server::{Config, Core, Peer, config::Layer, pipeline::Pipeline};
//! let settings = Layer {
//!     database_url: Some("sqlite::memory:".into()),
//!     base_url: Some("https://repository.example/ldn".into()),
//!     ..Layer::default()
//! };
//! let config = Config::resolve(settings, Layer::default(), None).unwrap();
//! let core = std::sync::Arc::new(Core::open(config, Pipeline::default()).await.unwrap());
//! let body = br#"{
//!   "@context": ["https://www.w3.org/ns/activitystreams", "https://coar-notify.net"],
//!   "id": "urn:uuid:94ecae35-dcfd-4182-8550-22c7164fe23f",
//!   "type": ["Announce", "coar-notify:ReviewAction"],
//!   "origin": {"id": "https://review.example/", "inbox": "https://review.example/inbox/", "type": "Service"},
//!   "target": {"id": "https://repository.example/", "inbox": "https://repository.example/ldn/inbox", "type": "Service"},
//!   "object": {"id": "https://review.example/reviews/1", "type": ["Page", "sorg:Review"], "ietf:cite-as": "https://doi.org/10.5555/r1"},
//!   "context": {"id": "https://repository.example/item/1/"}
//! }"#;
//! let peer = || Peer::at(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
//! // Stored durably before the receipt: an HTTP adapter answers 201 with its location.
//! let receipt = core.admit(Some("application/ld+json"), body.to_vec().into(), peer()).await.unwrap();
//! assert!(receipt.location.starts_with("https://repository.example/ldn/inbox/"));
//! // The same notification again is recognised; a broken one is refused with its status.
//! let again = core.admit(Some("application/ld+json"), body.to_vec().into(), peer()).await.unwrap();
//! assert_eq!(again.key, receipt.key);
//! let refused = core.admit(Some("application/ld+json"), b"{".to_vec().into(), peer()).await.unwrap_err();
//! assert_eq!(refused.status(), 400);
//! # });
//! ```
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
pub mod signatures;
pub mod trust;
pub mod urls;
pub mod views;
#[cfg(feature = "http")]
pub mod web;
pub mod worker;

pub use admission::{Admitted, Peer, Rejection};
pub use config::{Config, ConfigError, TrustPolicy};
pub use engine::{BodyError, Core, KEY_GRACE, OpenError, contexts, new_signing_key};
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
