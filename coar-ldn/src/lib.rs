//! Generic W3C Linked Data Notifications (LDN).
//!
//! This crate is for anyone who wants to send, receive or consume LDN notifications, whatever
//! vocabulary they carry: JSON-LD processing with bundled offline contexts, RDF conversion,
//! inbox discovery, inbox container semantics and content negotiation.
//!
//! It deliberately knows nothing of COAR Notify (that vocabulary lives in `coar-model`), opens
//! no network connections of its own and depends on no web framework.
//!
//! The JSON-LD and RDF parts (`jsonld`, `rdf`, `receiver`, `inbox`, discovery in RDF
//! bodies) are the default feature `rdf`; without it the crate is the light part: `Link`
//! headers, HTML discovery, content negotiation, strict JSON and the budgets.
//!
//! # Receiving
//! ```
//! # #[cfg(feature = "rdf")] {
//! use coar_ldn::{Contexts, ReceiveError, Receiver, ReceiverConfig};
//! // ActivityStreams is bundled; register other contexts with `Contexts::register`.
//! let receiver = Receiver::new(Contexts::default(), ReceiverConfig::default());
//! let body = br#"{
//!     "@context": "https://www.w3.org/ns/activitystreams",
//!     "id": "urn:uuid:7e4c1d9a-2f61-4d0c-9d43-0b8a5f6c2e11",
//!     "type": "Announce",
//!     "actor": "https://review.example/",
//!     "object": "https://review.example/reviews/1"
//! }"#;
//! let received = receiver.receive(Some("application/ld+json"), body, None).unwrap();
//! assert_eq!(received.dataset.len(), 3);
//! // Refusals carry their HTTP status and a message for problem details.
//! let refused = receiver.receive(Some("text/plain"), body, None).unwrap_err();
//! assert!(matches!(refused, ReceiveError::UnsupportedMediaType { .. }));
//! assert_eq!(refused.status().as_u16(), 415);
//! # }
//! ```
//!
//! # Discovering an inbox
//! ```
//! use coar_ldn::{LDP_INBOX, parse_link_header};
//! let links = parse_link_header(r#"<https://repo.example/inbox/>; rel="http://www.w3.org/ns/ldp#inbox""#);
//! let inbox = links.iter().find(|l| l.has_rel(LDP_INBOX)).map(|l| l.target.as_str());
//! assert_eq!(inbox, Some("https://repo.example/inbox/"));
//! ```
//!
//! # What is here
//! - [`link`]: RFC 8288 `Link` headers, parsed (discovery) and written (advertising).
//! - [`discovery`]: finding an inbox in `Link` headers and HTML, without I/O.
//! - [`conneg`]: `Accept` negotiation over RDF serializations; the POST media types and
//!   `Accept-Post`.
//! - [`jsonld`]: JSON-LD to RDF (N-Quads) with an offline loader of registered contexts.
//! - [`rdf`]: RDF datasets (sophia): Turtle, N-Triples, N-Quads, JSON-LD out; Turtle and
//!   N-Quads in; isomorphism.
//! - [`budget`]: the limits on the work one peer document may cause (depth, triples, output
//!   size, time), enforced by every parser here.
//! - [`json`]: strict JSON (I-JSON): repeated member names refused, with their pointer.
//! - [`signature`]: HTTP Message Signatures (RFC 9421) and `Content-Digest` (RFC 9530) on
//!   requests: signing, verifying with a named reason for each refusal, keys as JWKs.
//! - [`receiver`]: the receiver core: media type and bytes in, a parsed notification or a
//!   typed error with its HTTP status out.
//! - [`inbox`]: the inbox listing (`ldp:contains`) with paging links, as JSON-LD with an
//!   inline context, Turtle, N-Triples or N-Quads.

pub mod budget;
pub mod conneg;
pub mod discovery;
#[cfg(feature = "rdf")]
mod fast;
#[cfg(feature = "rdf")]
pub mod inbox;
pub mod json;
#[cfg(feature = "rdf")]
pub mod jsonld;
pub mod link;
#[cfg(feature = "rdf")]
pub mod rdf;
#[cfg(feature = "rdf")]
pub mod receiver;
pub mod signature;

pub use budget::{Budget, Exceeded};
pub use conneg::{
    ACCEPT_POST, BodyFormat, NotAcceptable, RdfFormat, best_quality, body_format,
    json_ld_content_type, negotiate, quality,
};
#[cfg(feature = "rdf")]
pub use inbox::Listing;
#[cfg(feature = "rdf")]
pub use jsonld::{Contexts, Fetch, FetchLimits, JsonLdError};
pub use link::{LDP_CONSTRAINED_BY, LDP_INBOX, Link, inbox_link_header, parse_link_header};
#[cfg(feature = "rdf")]
pub use rdf::{Dataset, RdfError};
#[cfg(feature = "rdf")]
pub use receiver::{Checked, ReceiveError, Received, Receiver, ReceiverConfig};
