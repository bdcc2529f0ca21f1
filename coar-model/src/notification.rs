//! Notifications: the activity, parsing and serialization. The per-pattern types are in
//! `patterns.rs`.

use std::{fmt, ops::Deref};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

pub use crate::patterns::*;
use crate::{
    Pattern, Report,
    node::{Node, type_values},
    validate,
    vocab::{SpecVersion, notify_context_version},
};

/// Limits applied when parsing untrusted bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest document accepted, in bytes.
    pub max_bytes: usize,
}

impl Default for Limits {
    /// 4 MiB: far above any real notification (a few KiB), far below harm.
    fn default() -> Self {
        Limits {
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Why bytes could not be read as a notification at all. Everything else (missing
/// properties, wrong values) is a validation problem, reported by [`Notification::validate`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The document is larger than [`Limits::max_bytes`].
    #[error("the document is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// The document's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not JSON (or not UTF-8).
    #[error("not valid JSON: {message} (line {line}, column {column})")]
    Json {
        /// serde_json's description.
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The JSON nests deeper than the parser allows (128 levels).
    #[error("the JSON nests too deeply (more than 128 levels)")]
    TooDeep,
    /// The JSON is valid but its top level is not an object.
    #[error("a notification must be a JSON object, found {found}")]
    NotAnObject {
        /// What was found instead: `an array`, `a string`, …
        found: &'static str,
    },
}

impl ParseError {
    fn from_json(err: serde_json::Error) -> ParseError {
        let message = err.to_string();
        if message.starts_with("recursion limit exceeded") {
            return ParseError::TooDeep;
        }
        // serde_json appends " at line L column C" to its message; keep only the cause.
        let cause = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(cause, _)| cause)
            .to_owned();
        ParseError::Json {
            message: cause,
            line: err.line(),
            column: err.column(),
        }
    }
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An ActivityStreams activity as received or built: the JSON object itself, kept whole
/// (every key, in its order, unknown properties included), with typed getters.
///
/// An `Activity` is what every pattern type wraps, and what
/// [`Notification::Unrecognised`] keeps when the type names no COAR Notify pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    doc: Map<String, Value>,
}

impl Activity {
    /// Wraps a JSON object.
    pub fn from_map(doc: Map<String, Value>) -> Activity {
        Activity { doc }
    }

    /// The activity as a [`Node`], for generic property access.
    pub fn node(&self) -> Node<'_> {
        Node::new(&self.doc)
    }

    /// `id`.
    pub fn id(&self) -> Option<&str> {
        self.node().id()
    }

    /// The values of `type`.
    pub fn types(&self) -> Vec<&str> {
        type_values(self.doc.get("type"))
    }

    /// `origin`: the service that sent the notification.
    pub fn origin(&self) -> Option<Node<'_>> {
        self.node().node("origin")
    }

    /// `target`: the service the notification is for.
    pub fn target(&self) -> Option<Node<'_>> {
        self.node().node("target")
    }

    /// `actor`: the party responsible for the activity.
    pub fn actor(&self) -> Option<Node<'_>> {
        self.node().node("actor")
    }

    /// `object`, when it is an embedded node.
    pub fn object(&self) -> Option<Node<'_>> {
        self.node().node("object")
    }

    /// The IRI of `object`, whether it is embedded or a plain reference.
    pub fn object_id(&self) -> Option<&str> {
        self.node().reference("object")
    }

    /// `context` (the resource on the target the activity is about), not `@context`.
    pub fn context(&self) -> Option<Node<'_>> {
        self.node().node("context")
    }

    /// The IRI of `context`, whether it is embedded or a plain reference.
    pub fn context_id(&self) -> Option<&str> {
        self.node().reference("context")
    }

    /// `inReplyTo`.
    pub fn in_reply_to(&self) -> Option<&str> {
        self.node().reference("inReplyTo")
    }

    /// `summary`.
    pub fn summary(&self) -> Option<&str> {
        self.node().str("summary")
    }

    /// The `@context` value as received.
    pub fn json_ld_context(&self) -> Option<&Value> {
        self.doc.get("@context")
    }

    /// Which COAR Notify context `@context` names, if exactly one family is named.
    pub fn spec_version(&self) -> Option<SpecVersion> {
        let mut found = None;
        for iri in type_values(self.doc.get("@context")) {
            if let Some(v) = notify_context_version(iri) {
                if found.is_some_and(|f| f != v) {
                    return None;
                }
                found = Some(v);
            }
        }
        found
    }

    /// Whether the document claims to be COAR Notify: its `@context` names a COAR Notify
    /// context, or one of its types is a COAR Notify term (`coar-notify:…`, or an IRI of
    /// either vocabulary). Such a document must meet the rules every COAR notification
    /// meets even when it names no pattern this crate knows.
    pub fn claims_coar(&self) -> bool {
        let coar_type = |t: &str| {
            t.starts_with("coar-notify:")
                || t.starts_with(crate::vocab::NOTIFY_VOCAB)
                || t.starts_with(crate::vocab::NOTIFY_LEGACY_VOCAB)
                || t.starts_with("https://coar-notify.net/specification/vocabulary/")
        };
        type_values(self.doc.get("@context"))
            .into_iter()
            .any(|iri| notify_context_version(iri).is_some())
            || self.types().into_iter().any(coar_type)
    }

    /// Every URI this notification says something about: `object`, `context`, their
    /// `ietf:cite-as`, and a relationship's subject and object. Used to answer "what is known
    /// about resource X".
    pub fn resource_uris(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for key in ["object", "context"] {
            if let Some(id) = self.node().reference(key) {
                out.push(id);
            }
            if let Some(node) = self.node().node(key) {
                out.extend(node.cite_as());
                out.extend(node.reference("as:subject"));
                out.extend(node.reference("as:object"));
                // An acknowledgement embeds the Offer: its resource is about the same thing.
                if let Some(inner) = node.reference("object") {
                    out.push(inner);
                }
                if let Some(inner) = node.node("object") {
                    out.extend(inner.cite_as());
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.doc
    }

    /// The JSON object, owned.
    pub fn into_map(self) -> Map<String, Value> {
        self.doc
    }

    /// The JSON value.
    pub fn to_value(&self) -> Value {
        Value::Object(self.doc.clone())
    }
}

/// A COAR Notify notification: one variant per pattern, plus [`Unrecognised`] for an
/// activity whose `type` names no pattern (a receiver must still be able to store it and say
/// what it could not classify).
///
/// Parsing is tolerant of representation and strict on meaning: `type` may be a string or an
/// array in any order and spelling, keys may come in any order, unknown properties are kept.
/// Parsing never fails because a property is missing or wrong; [`validate`] reports those,
/// every one with its JSON pointer.
///
/// [`Unrecognised`]: Notification::Unrecognised
/// [`validate`]: Notification::validate
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Notification {
    /// Request Review.
    RequestReview(RequestReview),
    /// Request Endorsement.
    RequestEndorsement(RequestEndorsement),
    /// Accept.
    Accept(Accept),
    /// Reject.
    Reject(Reject),
    /// Tentative Accept.
    TentativeAccept(TentativeAccept),
    /// Tentative Reject.
    TentativeReject(TentativeReject),
    /// Announce Review.
    AnnounceReview(AnnounceReview),
    /// Announce Endorsement.
    AnnounceEndorsement(AnnounceEndorsement),
    /// Announce Service Result.
    AnnounceServiceResult(AnnounceServiceResult),
    /// Announce Relationship.
    AnnounceRelationship(AnnounceRelationship),
    /// Undo Offer.
    UndoOffer(UndoOffer),
    /// Unprocessable Notification.
    Unprocessable(Unprocessable),
    /// Request Ingest (0.9.0, read-only).
    RequestIngest(RequestIngest),
    /// Announce Ingest (0.9.0, read-only).
    AnnounceIngest(AnnounceIngest),
    /// An activity whose `type` names no COAR Notify pattern, kept intact.
    Unrecognised(Activity),
}

impl Notification {
    /// Parses bytes with the default [`Limits`].
    pub fn from_slice(bytes: &[u8]) -> Result<Notification, ParseError> {
        Notification::from_slice_with(bytes, Limits::default())
    }

    /// Parses bytes with explicit [`Limits`].
    pub fn from_slice_with(bytes: &[u8], limits: Limits) -> Result<Notification, ParseError> {
        if bytes.len() > limits.max_bytes {
            return Err(ParseError::TooLarge {
                size: bytes.len(),
                limit: limits.max_bytes,
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(ParseError::from_json)?;
        Notification::from_value(value)
    }

    /// Parses a string with the default [`Limits`].
    pub fn from_json_str(text: &str) -> Result<Notification, ParseError> {
        Notification::from_slice(text.as_bytes())
    }

    /// Classifies a JSON value. Fails only when it is not an object.
    pub fn from_value(value: Value) -> Result<Notification, ParseError> {
        match value {
            Value::Object(map) => Ok(Notification::from_activity(Activity::from_map(map))),
            other => Err(ParseError::NotAnObject {
                found: json_kind(&other),
            }),
        }
    }

    /// Classifies an activity by its `type`.
    pub fn from_activity(activity: Activity) -> Notification {
        match Pattern::detect(activity.types()) {
            Some(pattern) => Notification::wrap(pattern, activity),
            None => Notification::Unrecognised(activity),
        }
    }

    fn wrap(pattern: Pattern, a: Activity) -> Notification {
        match pattern {
            Pattern::RequestReview => Notification::RequestReview(RequestReview(a)),
            Pattern::RequestEndorsement => Notification::RequestEndorsement(RequestEndorsement(a)),
            Pattern::Accept => Notification::Accept(Accept(a)),
            Pattern::Reject => Notification::Reject(Reject(a)),
            Pattern::TentativeAccept => Notification::TentativeAccept(TentativeAccept(a)),
            Pattern::TentativeReject => Notification::TentativeReject(TentativeReject(a)),
            Pattern::AnnounceReview => Notification::AnnounceReview(AnnounceReview(a)),
            Pattern::AnnounceEndorsement => {
                Notification::AnnounceEndorsement(AnnounceEndorsement(a))
            }
            Pattern::AnnounceServiceResult => {
                Notification::AnnounceServiceResult(AnnounceServiceResult(a))
            }
            Pattern::AnnounceRelationship => {
                Notification::AnnounceRelationship(AnnounceRelationship(a))
            }
            Pattern::UndoOffer => Notification::UndoOffer(UndoOffer(a)),
            Pattern::Unprocessable => Notification::Unprocessable(Unprocessable(a)),
            Pattern::RequestIngest => Notification::RequestIngest(RequestIngest(a)),
            Pattern::AnnounceIngest => Notification::AnnounceIngest(AnnounceIngest(a)),
        }
    }

    /// The pattern, or `None` for [`Notification::Unrecognised`].
    pub fn pattern(&self) -> Option<Pattern> {
        Some(match self {
            Notification::RequestReview(_) => Pattern::RequestReview,
            Notification::RequestEndorsement(_) => Pattern::RequestEndorsement,
            Notification::Accept(_) => Pattern::Accept,
            Notification::Reject(_) => Pattern::Reject,
            Notification::TentativeAccept(_) => Pattern::TentativeAccept,
            Notification::TentativeReject(_) => Pattern::TentativeReject,
            Notification::AnnounceReview(_) => Pattern::AnnounceReview,
            Notification::AnnounceEndorsement(_) => Pattern::AnnounceEndorsement,
            Notification::AnnounceServiceResult(_) => Pattern::AnnounceServiceResult,
            Notification::AnnounceRelationship(_) => Pattern::AnnounceRelationship,
            Notification::UndoOffer(_) => Pattern::UndoOffer,
            Notification::Unprocessable(_) => Pattern::Unprocessable,
            Notification::RequestIngest(_) => Pattern::RequestIngest,
            Notification::AnnounceIngest(_) => Pattern::AnnounceIngest,
            Notification::Unrecognised(_) => return None,
        })
    }

    /// The activity, whatever the pattern.
    pub fn activity(&self) -> &Activity {
        match self {
            Notification::RequestReview(p) => p,
            Notification::RequestEndorsement(p) => p,
            Notification::Accept(p) => p,
            Notification::Reject(p) => p,
            Notification::TentativeAccept(p) => p,
            Notification::TentativeReject(p) => p,
            Notification::AnnounceReview(p) => p,
            Notification::AnnounceEndorsement(p) => p,
            Notification::AnnounceServiceResult(p) => p,
            Notification::AnnounceRelationship(p) => p,
            Notification::UndoOffer(p) => p,
            Notification::Unprocessable(p) => p,
            Notification::RequestIngest(p) => p,
            Notification::AnnounceIngest(p) => p,
            Notification::Unrecognised(a) => a,
        }
    }

    /// The activity, owned.
    pub fn into_activity(self) -> Activity {
        match self {
            Notification::RequestReview(p) => p.0,
            Notification::RequestEndorsement(p) => p.0,
            Notification::Accept(p) => p.0,
            Notification::Reject(p) => p.0,
            Notification::TentativeAccept(p) => p.0,
            Notification::TentativeReject(p) => p.0,
            Notification::AnnounceReview(p) => p.0,
            Notification::AnnounceEndorsement(p) => p.0,
            Notification::AnnounceServiceResult(p) => p.0,
            Notification::AnnounceRelationship(p) => p.0,
            Notification::UndoOffer(p) => p.0,
            Notification::Unprocessable(p) => p.0,
            Notification::RequestIngest(p) => p.0,
            Notification::AnnounceIngest(p) => p.0,
            Notification::Unrecognised(a) => a,
        }
    }

    /// Checks the notification against the baseline and its pattern's rules, reporting
    /// every problem found.
    pub fn validate(&self) -> Report {
        validate::validate(self.activity(), self.pattern())
    }

    /// The rules every COAR notification meets whatever its pattern (id, an ActivityStreams
    /// activity type, origin, target with its inbox, object, …): [`validate`](Self::validate)
    /// without the one that asks for a pattern this crate knows. What a document that
    /// [claims COAR Notify](Activity::claims_coar) is held to when its pattern is unknown (a
    /// later version's, say).
    pub fn validate_common(&self) -> Report {
        let mut report = self.validate();
        report.problems.retain(|p| p.rule != "type.pattern");
        report
    }

    /// The notification as compacted JSON-LD (the JSON it was parsed from, or built as).
    pub fn to_value(&self) -> Value {
        self.activity().to_value()
    }

    /// The notification as a JSON string.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self.activity().as_map()).unwrap_or_default()
    }
}

impl Deref for Notification {
    type Target = Activity;
    fn deref(&self) -> &Activity {
        self.activity()
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json_string())
    }
}

impl Serialize for Notification {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.activity().as_map().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Notification {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Notification::from_value(value).map_err(serde::de::Error::custom)
    }
}
