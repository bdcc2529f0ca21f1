//! The COAR Notify patterns and how a payload's `type` selects one.

use std::fmt;

use crate::vocab::{NotifyTerm, as2_local_name};

/// Every pattern this crate knows: the 12 of COAR Notify 1.0.1 and the two 0.9.0 ingest
/// patterns, which are read but never built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pattern {
    /// `Offer` + `coar-notify:ReviewAction`.
    RequestReview,
    /// `Offer` + `coar-notify:EndorsementAction`.
    RequestEndorsement,
    /// `Accept`.
    Accept,
    /// `Reject`.
    Reject,
    /// `TentativeAccept`.
    TentativeAccept,
    /// `TentativeReject`.
    TentativeReject,
    /// `Announce` + `coar-notify:ReviewAction`.
    AnnounceReview,
    /// `Announce` + `coar-notify:EndorsementAction`.
    AnnounceEndorsement,
    /// `Announce` alone (the spec's `announce-resource` page).
    AnnounceServiceResult,
    /// `Announce` + `coar-notify:RelationshipAction`.
    AnnounceRelationship,
    /// `Undo` (retracts an Offer).
    UndoOffer,
    /// `Flag` + `coar-notify:UnprocessableNotification`.
    Unprocessable,
    /// `Offer` + `coar-notify:IngestAction` (0.9.0 only; removed in 1.0.0).
    RequestIngest,
    /// `Announce` + `coar-notify:IngestAction` (0.9.0 only; removed in 1.0.0).
    AnnounceIngest,
}

/// The family a pattern belongs to, as the specification groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Offers: Request Review, Request Endorsement (and legacy Request Ingest).
    Request,
    /// Accept, Reject, TentativeAccept, TentativeReject.
    Acknowledgement,
    /// The announcements.
    Announcement,
    /// Undo Offer and Unprocessable Notification.
    Process,
}

impl Pattern {
    /// Every pattern, 1.0.1 first, then the legacy ones.
    pub const ALL: [Pattern; 14] = [
        Pattern::RequestReview,
        Pattern::RequestEndorsement,
        Pattern::Accept,
        Pattern::Reject,
        Pattern::TentativeAccept,
        Pattern::TentativeReject,
        Pattern::AnnounceReview,
        Pattern::AnnounceEndorsement,
        Pattern::AnnounceServiceResult,
        Pattern::AnnounceRelationship,
        Pattern::UndoOffer,
        Pattern::Unprocessable,
        Pattern::RequestIngest,
        Pattern::AnnounceIngest,
    ];

    /// A stable kebab-case name, used in URLs, configuration, storage and the CLI.
    pub fn slug(self) -> &'static str {
        match self {
            Pattern::RequestReview => "request-review",
            Pattern::RequestEndorsement => "request-endorsement",
            Pattern::Accept => "accept",
            Pattern::Reject => "reject",
            Pattern::TentativeAccept => "tentative-accept",
            Pattern::TentativeReject => "tentative-reject",
            Pattern::AnnounceReview => "announce-review",
            Pattern::AnnounceEndorsement => "announce-endorsement",
            Pattern::AnnounceServiceResult => "announce-service-result",
            Pattern::AnnounceRelationship => "announce-relationship",
            Pattern::UndoOffer => "undo-offer",
            Pattern::Unprocessable => "unprocessable",
            Pattern::RequestIngest => "request-ingest",
            Pattern::AnnounceIngest => "announce-ingest",
        }
    }

    /// The pattern's title as the specification writes it.
    pub fn title(self) -> &'static str {
        match self {
            Pattern::RequestReview => "Request Review",
            Pattern::RequestEndorsement => "Request Endorsement",
            Pattern::Accept => "Accept",
            Pattern::Reject => "Reject",
            Pattern::TentativeAccept => "Tentatively Accept",
            Pattern::TentativeReject => "Tentatively Reject",
            Pattern::AnnounceReview => "Announce Review",
            Pattern::AnnounceEndorsement => "Announce Endorsement",
            Pattern::AnnounceServiceResult => "Announce Service Result",
            Pattern::AnnounceRelationship => "Announce Relationship",
            Pattern::UndoOffer => "Undo Offer",
            Pattern::Unprocessable => "Unprocessable Notification",
            Pattern::RequestIngest => "Request Ingest (0.9.0)",
            Pattern::AnnounceIngest => "Announce Ingest (0.9.0)",
        }
    }

    /// Looks a pattern up by its [`slug`](Self::slug). `announce-resource`, the
    /// specification's URL slug for Announce Service Result, is accepted too.
    pub fn from_slug(slug: &str) -> Option<Pattern> {
        if slug == "announce-resource" {
            return Some(Pattern::AnnounceServiceResult);
        }
        Pattern::ALL.into_iter().find(|p| p.slug() == slug)
    }

    /// The pattern's family.
    pub fn category(self) -> Category {
        match self {
            Pattern::RequestReview | Pattern::RequestEndorsement | Pattern::RequestIngest => {
                Category::Request
            }
            Pattern::Accept
            | Pattern::Reject
            | Pattern::TentativeAccept
            | Pattern::TentativeReject => Category::Acknowledgement,
            Pattern::AnnounceReview
            | Pattern::AnnounceEndorsement
            | Pattern::AnnounceServiceResult
            | Pattern::AnnounceRelationship
            | Pattern::AnnounceIngest => Category::Announcement,
            Pattern::UndoOffer | Pattern::Unprocessable => Category::Process,
        }
    }

    /// What an announcement of this pattern links a resource to (`review`, `endorsement`,
    /// `relationship`, `service-result`), for a repository's item page; `None` for the
    /// patterns that announce no link (requests, replies, ingest).
    pub fn link_kind(self) -> Option<&'static str> {
        match self {
            Pattern::AnnounceReview => Some("review"),
            Pattern::AnnounceEndorsement => Some("endorsement"),
            Pattern::AnnounceRelationship => Some("relationship"),
            Pattern::AnnounceServiceResult => Some("service-result"),
            _ => None,
        }
    }

    /// Whether the pattern exists only in the deprecated 0.9.0 specification.
    pub fn is_legacy(self) -> bool {
        matches!(self, Pattern::RequestIngest | Pattern::AnnounceIngest)
    }

    /// The ActivityStreams activity type of the pattern.
    pub fn activity_type(self) -> &'static str {
        match self {
            Pattern::RequestReview | Pattern::RequestEndorsement | Pattern::RequestIngest => {
                "Offer"
            }
            Pattern::Accept => "Accept",
            Pattern::Reject => "Reject",
            Pattern::TentativeAccept => "TentativeAccept",
            Pattern::TentativeReject => "TentativeReject",
            Pattern::AnnounceReview
            | Pattern::AnnounceEndorsement
            | Pattern::AnnounceServiceResult
            | Pattern::AnnounceRelationship
            | Pattern::AnnounceIngest => "Announce",
            Pattern::UndoOffer => "Undo",
            Pattern::Unprocessable => "Flag",
        }
    }

    /// The COAR Notify type the pattern requires beside its activity type, if any.
    pub fn notify_type(self) -> Option<NotifyTerm> {
        match self {
            Pattern::RequestReview | Pattern::AnnounceReview => Some(NotifyTerm::ReviewAction),
            Pattern::RequestEndorsement | Pattern::AnnounceEndorsement => {
                Some(NotifyTerm::EndorsementAction)
            }
            Pattern::RequestIngest | Pattern::AnnounceIngest => Some(NotifyTerm::IngestAction),
            Pattern::AnnounceRelationship => Some(NotifyTerm::RelationshipAction),
            Pattern::Unprocessable => Some(NotifyTerm::UnprocessableNotification),
            _ => None,
        }
    }

    /// The `type` value this crate emits: a string for a single type, as the specification's
    /// examples do, an array otherwise.
    pub fn type_value(self) -> serde_json::Value {
        match (self, self.notify_type()) {
            (Pattern::AnnounceServiceResult, _) => serde_json::json!(["Announce"]),
            (_, Some(term)) => serde_json::json!([self.activity_type(), term.compact()]),
            (_, None) => serde_json::json!(self.activity_type()),
        }
    }

    /// Selects the pattern from the values of `type`, as a set: order and spelling
    /// (`X`, `as:X`, `coar-notify:X`, full IRIs of either vocabulary) do not matter.
    ///
    /// Returns `None` when the types name no pattern, or more than one activity type. Extra
    /// Notify types on acknowledgements and Undo are allowed (0.9.0 examples carry
    /// `coar-notify:ReviewAction` there).
    pub fn detect<'a>(types: impl IntoIterator<Item = &'a str>) -> Option<Pattern> {
        let mut activity: Option<&str> = None;
        let mut notify: Vec<NotifyTerm> = Vec::new();
        for t in types {
            if let Some(term) = NotifyTerm::parse(t) {
                if !notify.contains(&term) {
                    notify.push(term);
                }
            } else if let Some(local) = as2_local_name(t).filter(|l| {
                matches!(
                    *l,
                    "Offer"
                        | "Accept"
                        | "Reject"
                        | "TentativeAccept"
                        | "TentativeReject"
                        | "Announce"
                        | "Undo"
                        | "Flag"
                )
            }) {
                match activity {
                    Some(seen) if seen != local => return None,
                    _ => activity = Some(local),
                }
            }
        }
        let single = match notify.as_slice() {
            [] => None,
            [one] => Some(*one),
            _ => return None,
        };
        use NotifyTerm as N;
        match (activity?, single) {
            ("Offer", Some(N::ReviewAction)) => Some(Pattern::RequestReview),
            ("Offer", Some(N::EndorsementAction)) => Some(Pattern::RequestEndorsement),
            ("Offer", Some(N::IngestAction)) => Some(Pattern::RequestIngest),
            ("Announce", Some(N::ReviewAction)) => Some(Pattern::AnnounceReview),
            ("Announce", Some(N::EndorsementAction)) => Some(Pattern::AnnounceEndorsement),
            ("Announce", Some(N::RelationshipAction)) => Some(Pattern::AnnounceRelationship),
            ("Announce", Some(N::IngestAction)) => Some(Pattern::AnnounceIngest),
            ("Announce", None) => Some(Pattern::AnnounceServiceResult),
            ("Flag", Some(N::UnprocessableNotification)) => Some(Pattern::Unprocessable),
            ("Accept", t) if t != Some(N::UnprocessableNotification) => Some(Pattern::Accept),
            ("Reject", t) if t != Some(N::UnprocessableNotification) => Some(Pattern::Reject),
            ("TentativeAccept", t) if t != Some(N::UnprocessableNotification) => {
                Some(Pattern::TentativeAccept)
            }
            ("TentativeReject", t) if t != Some(N::UnprocessableNotification) => {
                Some(Pattern::TentativeReject)
            }
            ("Undo", t) if t != Some(N::UnprocessableNotification) => Some(Pattern::UndoOffer),
            _ => None,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// Serialized as its [slug](Pattern::slug).
impl serde::Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.slug())
    }
}

impl<'de> serde::Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let slug = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Pattern::from_slug(&slug)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown pattern {slug:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_ignores_order_and_spelling() {
        let cases: &[(&[&str], Option<Pattern>)] = &[
            (
                &["Offer", "coar-notify:ReviewAction"],
                Some(Pattern::RequestReview),
            ),
            (
                &["coar-notify:ReviewAction", "Offer"],
                Some(Pattern::RequestReview),
            ),
            (&["as:Offer", "ReviewAction"], Some(Pattern::RequestReview)),
            (
                &[
                    "https://www.w3.org/ns/activitystreams#Offer",
                    "https://purl.org/coar/notify_vocabulary/EndorsementAction",
                ],
                Some(Pattern::RequestEndorsement),
            ),
            (&["Announce"], Some(Pattern::AnnounceServiceResult)),
            (&["Accept"], Some(Pattern::Accept)),
            (
                &["Reject", "coar-notify:ReviewAction"],
                Some(Pattern::Reject),
            ),
            (
                &["coar-notify:UnprocessableNotification", "Flag"],
                Some(Pattern::Unprocessable),
            ),
            (&["Offer"], None),
            (&["Flag"], None),
            (&["Offer", "Announce", "coar-notify:ReviewAction"], None),
            (
                &[
                    "Offer",
                    "coar-notify:ReviewAction",
                    "coar-notify:EndorsementAction",
                ],
                None,
            ),
            (&["Create"], None),
            (&[], None),
        ];
        for (types, want) in cases {
            assert_eq!(Pattern::detect(types.iter().copied()), *want, "{types:?}");
        }
    }

    #[test]
    fn slugs_round_trip() {
        for p in Pattern::ALL {
            assert_eq!(Pattern::from_slug(p.slug()), Some(p));
            let types: Vec<String> = match p.type_value() {
                serde_json::Value::String(s) => vec![s],
                serde_json::Value::Array(a) => a
                    .into_iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect(),
                other => panic!("{other}"),
            };
            assert_eq!(Pattern::detect(types.iter().map(String::as_str)), Some(p));
        }
        assert_eq!(
            Pattern::from_slug("announce-resource"),
            Some(Pattern::AnnounceServiceResult)
        );
    }
}
