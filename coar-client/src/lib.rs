//! Sending COAR Notify notifications over Linked Data Notifications.
//!
//! This crate is the only one of the project that opens outbound connections: inbox
//! discovery (LDN: `Link` header first, then the RDF or HTML body), POSTing notifications
//! (validated first: an invalid notification is never sent), retries with exponential
//! backoff and full jitter, and reading remote inboxes. Every hop, redirects included, goes
//! through an address policy that refuses loopback, private and link-local addresses unless
//! allowed.
//!
//! Discovery in RDF bodies and reading inbox listings need the default feature `rdf` (the
//! JSON-LD and RDF stack of coar-ldn); without it, [`Client::plain`] is a sender that finds
//! inboxes in `Link` headers and HTML.
//!
//! It deliberately keeps no state on disk: durable outboxes belong to `coar-store` and the
//! server, which call [`Client::send`] once per delivery attempt.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use coar_client::{Client, ClientConfig, ClientError};
//! use coar_model::{AnnounceReview, Notification, Resource, Service};
//! let client = Client::plain(ClientConfig::default())?;
//! let n: Notification = AnnounceReview::builder(
//!     Service::new("https://review.example/", "https://review.example/inbox/"),
//!     Service::new("https://repo.example/", "https://repo.example/inbox/"),
//!     Resource::new("https://review.example/reviews/1", ["Page", "sorg:Review"])
//!         .cite_as("https://doi.org/10.5555/r1"),
//!     Resource::landing_page("https://repo.example/item/1/"),
//! )
//! .build()
//! .unwrap()
//! .into();
//! // `client.send(&n, "https://repo.example/inbox/")` POSTs it and returns the receipt.
//! // Loopback and private addresses are refused before any connection is made, unless
//! // `ClientConfig::allow_private` says otherwise.
//! let refused = client.send(&n, "http://127.0.0.1:9/inbox").await.unwrap_err();
//! assert!(matches!(refused, ClientError::Forbidden(_)), "{refused}");
//! # Ok::<(), ClientError>(())
//! # }).unwrap();
//! ```

mod config;
mod discover;
mod error;
mod policy;
mod retry;
mod send;
mod transport;

use std::{collections::HashMap, sync::Mutex, time::Instant};

#[cfg(feature = "rdf")]
use coar_ldn::Contexts;
use reqwest::{StatusCode, header};
use url::Url;

pub use config::{ClientConfig, DEFAULT_MAX_RETRY_AFTER, TlsRoots};
pub use error::{ClientError, StatusError};
pub use policy::is_restricted;
pub use retry::{RetryPolicy, parse_retry_after};
pub use send::Receipt;

/// The media type notifications are sent with.
pub const CONTENT_TYPE: &str =
    "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";

/// The HTTP client for LDN senders and consumers.
#[derive(Debug)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) config: ClientConfig,
    #[cfg(feature = "rdf")]
    pub(crate) contexts: Contexts,
    pub(crate) discovered: Mutex<HashMap<String, (Instant, Url)>>,
}

/// A response, read within the size limit.
pub(crate) struct Fetched {
    pub(crate) url: Url,
    pub(crate) status: StatusCode,
    pub(crate) headers: header::HeaderMap,
    pub(crate) body: Vec<u8>,
    pub(crate) truncated: bool,
}

impl Client {
    /// A client. `contexts` are the JSON-LD contexts used to read RDF bodies in discovery
    /// and listings (register COAR's for COAR resources). Feature `rdf`.
    #[cfg(feature = "rdf")]
    pub fn new(config: ClientConfig, contexts: Contexts) -> Result<Client, ClientError> {
        Ok(Client {
            contexts,
            ..Client::plain(config)?
        })
    }

    /// A client that needs no JSON-LD contexts: a plain sender. It discovers inboxes in
    /// `Link` headers and HTML, and (with the `rdf` feature) in JSON-LD bodies that use the
    /// ActivityStreams context only, and in Turtle.
    pub fn plain(config: ClientConfig) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(config.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the target itself, past the address policy; none is
            // used, whatever `HTTP(S)_PROXY` or `ALL_PROXY` say.
            .no_proxy()
            .dns_resolver(policy::resolver(config.allow_private))
            .tls_built_in_native_certs(config.tls_roots.system())
            .tls_built_in_webpki_certs(config.tls_roots.bundled())
            .build()
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        Ok(Client {
            http,
            config,
            #[cfg(feature = "rdf")]
            contexts: Contexts::default(),
            discovered: Mutex::new(HashMap::new()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }
}
