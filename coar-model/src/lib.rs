//! The COAR Notify 1.0.1 vocabulary: every pattern typed, builders, and validation that
//! reports every problem with a JSON pointer.
//!
//! This crate is for anyone who builds or checks COAR Notify payloads: repositories, review
//! services, tests. It deliberately has no I/O, no async runtime, no HTTP and no JSON-LD
//! processing (the `coar-ldn` crate expands JSON-LD; this one reads the compact form every
//! COAR Notify sender writes). It depends on serde, serde_json, thiserror and uuid only.
//!
//! # Reading
//! ```
//! use coar_model::{Notification, Pattern};
//! let bytes = br#"{
//!   "@context": ["https://www.w3.org/ns/activitystreams", "https://coar-notify.net"],
//!   "id": "urn:uuid:0370c0fb-bb78-4a9b-87f5-bed307a509dd",
//!   "type": ["Offer", "coar-notify:ReviewAction"],
//!   "origin": {"id": "https://repo.example/", "inbox": "https://repo.example/inbox/", "type": "Service"},
//!   "target": {"id": "https://review.example/", "inbox": "https://review.example/inbox/", "type": "Service"},
//!   "actor": {"id": "https://repo.example/", "type": "Service"},
//!   "object": {
//!     "id": "https://repo.example/item/1/",
//!     "type": ["Page", "sorg:AboutPage"],
//!     "ietf:cite-as": "https://doi.org/10.5555/1",
//!     "ietf:item": {
//!       "id": "https://repo.example/item/1/paper.pdf",
//!       "type": ["Article", "sorg:ScholarlyArticle"],
//!       "mediaType": "application/pdf"
//!     }
//!   }
//! }"#;
//! let n = Notification::from_slice(bytes).unwrap();
//! assert_eq!(n.pattern(), Some(Pattern::RequestReview));
//! assert!(n.validate().is_valid());
//!
//! // Every problem at once, each with its pointer and rule.
//! let mut broken: serde_json::Value = serde_json::from_slice(bytes).unwrap();
//! broken["target"].as_object_mut().unwrap().remove("inbox");
//! broken["object"].as_object_mut().unwrap().remove("ietf:item");
//! let report = Notification::from_value(broken).unwrap().validate();
//! let rules: Vec<_> = report.errors().map(|p| (p.pointer.as_str(), p.rule)).collect();
//! assert_eq!(rules, [("/target/inbox", "target.inbox.required"), ("/object/ietf:item", "item.required")]);
//! ```
//!
//! Parsing is tolerant of representation and strict on meaning:
//! - `type` may be a string or an array, in any order; terms may be written `X`,
//!   `coar-notify:X` / `as:X`, or as full IRIs of either vocabulary namespace.
//! - `@context` may name `https://coar-notify.net` (1.0) or the deprecated
//!   `https://purl.org/coar/notify` (0.9.0), with `http` spellings and trailing slashes.
//! - Keys may come in any order; unknown properties are kept, and a notification serializes
//!   back to exactly the JSON object it was parsed from.
//! - A `type` that names no pattern gives [`Notification::Unrecognised`], kept intact.
//!
//! # Validation
//! [`Notification::validate`] returns a [`Report`] of every [`Problem`], each with a JSON
//! pointer (RFC 6901), a stable rule id and a message. MUST violations are errors, SHOULD
//! violations warnings. The specification's own examples carry quirks that this validator
//! tolerates deliberately:
//! - `type` is a string in some examples and an array in others (shape is free).
//! - The Offer embedded in Accept, Reject, Tentative* and Undo has `object.type` of only
//!   `sorg:AboutPage`, with no ActivityStreams type: a replayed Offer is not re-validated
//!   against the request rules. What is checked is that it is the whole Offer (an `Offer`
//!   type, its origin, target and object: `object.offer.complete`) and that
//!   `inReplyTo == object.id`.
//! - Replies' `origin`/`target` need not mirror the Offer's (the Accept example does not).
//! - Activity ids may be any RFC 3986 URI, e.g. upper-case UUID URNs or `mailto:` actors; a
//!   form other than `urn:uuid:` or HTTP is only a warning.
//! - A request's `inReplyTo` may equal its own id (workflow repository-pci step 2).
//! - Announce Service Result is `["Announce"]` with no Notify type.
//! - An empty `ietf:cite-as` (workflow pci-sciety step 2.1) counts as absent: a warning.
//! - `ietf:cite-as` must be a URI; an HTTP one is only recommended (`doi:` URIs exist).
//! - 0.9.0 documents (purl context) are checked against 0.9.0's rules: no `context`
//!   required on announcements, no `Service` type or `inReplyTo` required, and the
//!   deprecated context is a warning.
//!
//! # Building
//! Every 1.0.1 pattern has a `builder`, and received Offers have reply helpers ([`Offer`]);
//! [`Builder::build`] validates, so it only ever returns a valid notification.
//! ```
//! use coar_model::*;
//! let offer = RequestReview::builder(
//!     Service::new("https://repo.example", "https://repo.example/inbox/"),
//!     Service::new("https://review.example", "https://review.example/inbox/"),
//!     Resource::landing_page("https://repo.example/item/1")
//!         .cite_as("https://doi.org/10.5555/1")
//!         .item(Item::new("https://repo.example/item/1/paper.pdf", "application/pdf")),
//! )
//! .actor(Actor::new("https://repo.example", ActorType::Service))
//! .build()
//! .unwrap();
//! let accept = offer.accept().build().unwrap();
//! assert_eq!(accept.in_reply_to(), offer.id());
//! ```

/// The Rust examples of `docs/patterns.md`, one per pattern, run as doc tests so that the
/// guide cannot go stale (the payloads, commands and API bodies are checked by coar-server's
/// `tests/patterns.rs`).
#[cfg(all(doctest, patterns_guide))]
#[doc = include_str!("../../docs/patterns.md")]
pub struct PatternsGuide;

mod build;
mod node;
mod notification;
mod pattern;
mod patterns;
mod reply;
pub mod template;
mod thread;
mod validate;
pub mod vocab;

pub use build::{
    Actor, ActorType, BuildError, Buildable, Builder, Item, Relationship, Resource, Service, new_id,
};
pub use node::Node;
pub use notification::{
    Accept, Activity, AnnounceEndorsement, AnnounceIngest, AnnounceRelationship, AnnounceReview,
    AnnounceServiceResult, Limits, Notification, ParseError, Reject, RequestEndorsement,
    RequestIngest, RequestReview, TentativeAccept, TentativeReject, UndoOffer, Unprocessable,
};
pub use pattern::{Category, Pattern};
pub use reply::{
    Acknowledgement, CompleteError, Offer, complete_outbound, derived_reply_id, embed_offer,
    offer_wanted,
};
pub use thread::ThreadStatus;
pub use validate::{MAX_URI_LEN, Problem, Report, Severity, is_http_uri, is_uri, pointer_token};
pub use vocab::SpecVersion;

/// The specification's examples that unit tests share.
#[cfg(test)]
mod fixtures {
    use crate::Notification;

    /// The Request Review example (an Offer with origin, target and inboxes).
    pub(crate) fn request_review() -> Notification {
        let body = include_str!("../../fixtures/spec/request-review.json");
        Notification::from_slice(body.as_bytes()).unwrap()
    }
}
