//! Generic W3C Linked Data Notifications (LDN).
//!
//! This crate is for anyone who wants to send, receive or consume LDN notifications, whatever
//! vocabulary they carry: JSON-LD processing with bundled offline contexts, RDF conversion,
//! inbox discovery, inbox container semantics and content negotiation.
//!
//! It deliberately knows nothing of COAR Notify (that vocabulary lives in `coar-model`), opens
//! no network connections of its own and depends on no web framework.
