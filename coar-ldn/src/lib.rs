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
