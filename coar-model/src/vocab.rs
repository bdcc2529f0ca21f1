//! Vocabulary terms: the JSON-LD contexts, ActivityStreams 2.0 types and COAR Notify terms,
//! and how the different spellings of one term are recognised.

/// The ActivityStreams 2.0 context IRI.
pub const ACTIVITYSTREAMS_CONTEXT: &str = "https://www.w3.org/ns/activitystreams";
/// The COAR Notify context IRI of versions 1.0.0 and 1.0.1 (preferred).
pub const NOTIFY_CONTEXT: &str = "https://coar-notify.net";
/// The deprecated purl context IRI of COAR Notify 0.9.0.
pub const NOTIFY_LEGACY_CONTEXT: &str = "https://purl.org/coar/notify";
/// The COAR Notify 1.0 vocabulary namespace (note: `http`, as the context defines it).
pub const NOTIFY_VOCAB: &str = "http://coar-notify.net/specification/vocabulary/";
/// The COAR Notify 0.9.0 vocabulary namespace.
pub const NOTIFY_LEGACY_VOCAB: &str = "https://purl.org/coar/notify_vocabulary/";

/// The `@context` value every notification built by this crate carries.
pub const STANDARD_CONTEXT: [&str; 2] = [ACTIVITYSTREAMS_CONTEXT, NOTIFY_CONTEXT];

/// The COAR Notify JSON-LD context documents as plain data, for a JSON-LD document loader.
///
/// Each entry is `(IRI as used in @context, document)`. The 1.0.1 context is listed under
/// `https://coar-notify.net` with and without a trailing slash (and its `http` spelling); the
/// 0.9.0 context under `https://purl.org/coar/notify` and its `http` spelling. This crate does
/// no JSON-LD processing itself: `coar-ldn` does, with these documents registered.
pub fn context_documents() -> &'static [(&'static str, &'static str)] {
    const V1: &str = include_str!("../contexts/coar-notify-1.0.1.json");
    const V0: &str = include_str!("../contexts/coar-notify-0.9.0.json");
    &[
        ("https://coar-notify.net", V1),
        ("https://coar-notify.net/", V1),
        ("http://coar-notify.net", V1),
        ("http://coar-notify.net/", V1),
        ("https://purl.org/coar/notify", V0),
        ("http://purl.org/coar/notify", V0),
    ]
}

/// Which COAR Notify context a document uses, and so which version of the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecVersion {
    /// `https://coar-notify.net`: COAR Notify 1.0.x (1.0.1 is current).
    V1,
    /// `https://purl.org/coar/notify`: COAR Notify 0.9.0, deprecated, read-only support.
    V0_9,
}

/// Recognises a COAR Notify context IRI, in any of its spellings.
pub fn notify_context_version(iri: &str) -> Option<SpecVersion> {
    let rest = iri
        .strip_prefix("https://")
        .or_else(|| iri.strip_prefix("http://"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    match rest {
        "coar-notify.net" => Some(SpecVersion::V1),
        "purl.org/coar/notify" => Some(SpecVersion::V0_9),
        _ => None,
    }
}

/// Recognises the ActivityStreams context IRI (`https` or `http`, with or without `#`).
pub fn is_activitystreams_context(iri: &str) -> bool {
    let rest = iri
        .strip_prefix("https://")
        .or_else(|| iri.strip_prefix("http://"));
    matches!(rest, Some(r) if r.trim_end_matches('#') == "www.w3.org/ns/activitystreams")
}

/// The COAR Notify vocabulary terms used as activity types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyTerm {
    /// `coar-notify:ReviewAction`.
    ReviewAction,
    /// `coar-notify:EndorsementAction`.
    EndorsementAction,
    /// `coar-notify:IngestAction` (0.9.0 ingest patterns only).
    IngestAction,
    /// `coar-notify:RelationshipAction`.
    RelationshipAction,
    /// `coar-notify:UnprocessableNotification`.
    UnprocessableNotification,
}

impl NotifyTerm {
    /// The local name of the term, e.g. `ReviewAction`.
    pub fn local_name(self) -> &'static str {
        match self {
            NotifyTerm::ReviewAction => "ReviewAction",
            NotifyTerm::EndorsementAction => "EndorsementAction",
            NotifyTerm::IngestAction => "IngestAction",
            NotifyTerm::RelationshipAction => "RelationshipAction",
            NotifyTerm::UnprocessableNotification => "UnprocessableNotification",
        }
    }

    /// The compact form this crate emits, e.g. `coar-notify:ReviewAction`.
    pub fn compact(self) -> String {
        format!("coar-notify:{}", self.local_name())
    }

    /// Recognises a Notify type in any spelling: `coar-notify:X`, bare `X` (an alias in both
    /// contexts), or the full IRI in the 1.0 (`http` or `https`) or 0.9.0 namespace.
    pub fn parse(value: &str) -> Option<NotifyTerm> {
        const PREFIXES: [&str; 5] = [
            "coar-notify:",
            NOTIFY_VOCAB,
            "https://coar-notify.net/specification/vocabulary/",
            NOTIFY_LEGACY_VOCAB,
            "http://purl.org/coar/notify_vocabulary/",
        ];
        let local = PREFIXES
            .iter()
            .find_map(|p| value.strip_prefix(p))
            .unwrap_or(value);
        match local {
            "ReviewAction" => Some(NotifyTerm::ReviewAction),
            "EndorsementAction" => Some(NotifyTerm::EndorsementAction),
            "IngestAction" => Some(NotifyTerm::IngestAction),
            "RelationshipAction" => Some(NotifyTerm::RelationshipAction),
            "UnprocessableNotification" => Some(NotifyTerm::UnprocessableNotification),
            _ => None,
        }
    }
}

/// ActivityStreams 2.0 activity types (AS2 vocabulary §3.2, plus `Activity` itself).
const AS2_ACTIVITY_TYPES: &[&str] = &[
    "Accept",
    "Activity",
    "Add",
    "Announce",
    "Arrive",
    "Block",
    "Create",
    "Delete",
    "Dislike",
    "Flag",
    "Follow",
    "Ignore",
    "IntransitiveActivity",
    "Invite",
    "Join",
    "Leave",
    "Like",
    "Listen",
    "Move",
    "Offer",
    "Question",
    "Read",
    "Reject",
    "Remove",
    "TentativeAccept",
    "TentativeReject",
    "Travel",
    "Undo",
    "Update",
    "View",
];

/// ActivityStreams 2.0 object types, including actor and link types, but not activities.
const AS2_OBJECT_TYPES: &[&str] = &[
    "Application",
    "Article",
    "Audio",
    "Collection",
    "CollectionPage",
    "Document",
    "Event",
    "Group",
    "Image",
    "Link",
    "Mention",
    "Note",
    "Object",
    "OrderedCollection",
    "OrderedCollectionPage",
    "Organization",
    "Page",
    "Person",
    "Place",
    "Profile",
    "Relationship",
    "Service",
    "Tombstone",
    "Video",
];

/// The actor types COAR Notify allows.
pub const ACTOR_TYPES: [&str; 5] = ["Application", "Group", "Organization", "Person", "Service"];

/// The ActivityStreams local name of a type value (`Offer`, `as:Offer` or the full IRI), or
/// `None` when the value is not in the ActivityStreams namespace.
pub fn as2_local_name(value: &str) -> Option<&str> {
    for prefix in [
        "as:",
        "https://www.w3.org/ns/activitystreams#",
        "http://www.w3.org/ns/activitystreams#",
    ] {
        if let Some(local) = value.strip_prefix(prefix) {
            return Some(local);
        }
    }
    (!value.contains(':')).then_some(value)
}

/// Whether a type value names an ActivityStreams activity type.
pub fn is_as2_activity_type(value: &str) -> bool {
    as2_local_name(value).is_some_and(|l| AS2_ACTIVITY_TYPES.contains(&l))
}

/// Whether a type value names an ActivityStreams type (object, actor, link or activity): what
/// the spec means by "MUST include an AS2 object type".
pub fn is_as2_object_type(value: &str) -> bool {
    as2_local_name(value)
        .is_some_and(|l| AS2_OBJECT_TYPES.contains(&l) || AS2_ACTIVITY_TYPES.contains(&l))
}

/// Whether a type value is a schema.org type (`sorg:X`, `schema:X` or a schema.org IRI).
pub fn is_schema_org_type(value: &str) -> bool {
    [
        "sorg:",
        "schema:",
        "http://schema.org/",
        "https://schema.org/",
    ]
    .iter()
    .any(|p| value.strip_prefix(p).is_some_and(|l| !l.is_empty()))
}

/// Whether an actor type value is one COAR Notify allows.
pub fn is_actor_type(value: &str) -> bool {
    as2_local_name(value).is_some_and(|l| ACTOR_TYPES.contains(&l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_terms_in_every_spelling() {
        for s in [
            "ReviewAction",
            "coar-notify:ReviewAction",
            "http://coar-notify.net/specification/vocabulary/ReviewAction",
            "https://purl.org/coar/notify_vocabulary/ReviewAction",
        ] {
            assert_eq!(NotifyTerm::parse(s), Some(NotifyTerm::ReviewAction), "{s}");
        }
        assert_eq!(NotifyTerm::parse("coar-notify:Nope"), None);
        assert_eq!(NotifyTerm::parse("Offer"), None);
    }

    #[test]
    fn context_spellings() {
        assert_eq!(
            notify_context_version("https://coar-notify.net/"),
            Some(SpecVersion::V1)
        );
        assert_eq!(
            notify_context_version("http://purl.org/coar/notify"),
            Some(SpecVersion::V0_9)
        );
        assert_eq!(notify_context_version("https://example.org"), None);
        assert!(is_activitystreams_context(
            "http://www.w3.org/ns/activitystreams#"
        ));
        assert!(!is_activitystreams_context("https://www.w3.org/ns/ldp"));
    }

    #[test]
    fn as2_types() {
        assert!(is_as2_activity_type("as:Offer"));
        assert!(is_as2_activity_type(
            "https://www.w3.org/ns/activitystreams#Announce"
        ));
        assert!(!is_as2_activity_type("Page"));
        assert!(is_as2_object_type("Page"));
        assert!(!is_as2_object_type("sorg:AboutPage"));
        assert!(is_schema_org_type("sorg:AboutPage"));
        assert!(is_actor_type("Person"));
        assert!(!is_actor_type("Robot"));
    }
}
