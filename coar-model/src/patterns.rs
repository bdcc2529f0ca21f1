//! The per-pattern types: one newtype over [`Activity`] for each pattern, which only exists
//! for activities of that pattern, with the accessors its pattern guarantees.

use std::ops::Deref;

use serde::{Serialize, Serializer};

use crate::{Activity, Notification, Pattern, Report, node::Node, validate};

/// Defines one pattern type: a newtype over [`Activity`] that only exists for activities of
/// that pattern.
macro_rules! pattern_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name(pub(crate) Activity);

        impl $name {
            /// The pattern this type stands for.
            pub const PATTERN: Pattern = Pattern::$name;

            /// The activity.
            pub fn activity(&self) -> &Activity {
                &self.0
            }

            /// Checks the notification against the baseline and this pattern's rules.
            pub fn validate(&self) -> Report {
                validate::validate(&self.0, Some(Pattern::$name))
            }
        }

        impl Deref for $name {
            type Target = Activity;
            fn deref(&self) -> &Activity {
                &self.0
            }
        }

        impl From<$name> for Notification {
            fn from(p: $name) -> Notification {
                Notification::$name(p)
            }
        }

        impl TryFrom<Notification> for $name {
            type Error = Notification;
            /// Unwraps the pattern, or gives the notification back when it is another one.
            fn try_from(n: Notification) -> Result<$name, Notification> {
                match n {
                    Notification::$name(p) => Ok(p),
                    other => Err(other),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.as_map().serialize(serializer)
            }
        }
    };
}

pattern_type!(
    /// Request Review: `Offer` + `coar-notify:ReviewAction`. A repository asks a service to
    /// review a resource; `object` is the resource, with its `ietf:item`.
    RequestReview
);
pattern_type!(
    /// Request Endorsement: `Offer` + `coar-notify:EndorsementAction`.
    RequestEndorsement
);
pattern_type!(
    /// Accept: the target intends to act on the Offer it embeds as `object`.
    Accept
);
pattern_type!(
    /// Reject: the target will take no further action with the Offer.
    Reject
);
pattern_type!(
    /// Tentative Accept: the target intends to act on the Offer, which may change.
    TentativeAccept
);
pattern_type!(
    /// Tentative Reject: the target does not intend to act now, but might consider another
    /// Offer for the same resource.
    TentativeReject
);
pattern_type!(
    /// Announce Review: `object` is the review, `context` the reviewed resource.
    AnnounceReview
);
pattern_type!(
    /// Announce Endorsement: `object` is the endorsement, `context` the endorsed resource.
    AnnounceEndorsement
);
pattern_type!(
    /// Announce Service Result (`Announce` alone): `object` is the result, `context` the
    /// resource it is about.
    AnnounceServiceResult
);
pattern_type!(
    /// Announce Relationship: `object` is a `Relationship` with `as:subject`,
    /// `as:relationship` and `as:object`; `context` is the related resource.
    AnnounceRelationship
);
pattern_type!(
    /// Undo Offer: retracts the Offer it embeds as `object`.
    UndoOffer
);
pattern_type!(
    /// Unprocessable Notification (`Flag`): the notification `inReplyTo` names could not be
    /// processed, for the reason in `summary`.
    Unprocessable
);
pattern_type!(
    /// Request Ingest, a 0.9.0 pattern removed in 1.0.0: read, never built.
    RequestIngest
);
pattern_type!(
    /// Announce Ingest, a 0.9.0 pattern removed in 1.0.0: read, never built.
    AnnounceIngest
);

/// The preprint-like `object` of a request.
macro_rules! request_accessors {
    ($($name:ident),*) => {$(
        impl $name {
            /// The resource the request is about (`object`).
            pub fn resource(&self) -> Option<Node<'_>> {
                self.0.object()
            }

            /// The resource's content file (`object.ietf:item`).
            pub fn item(&self) -> Option<Node<'_>> {
                self.0.object().and_then(|o| o.item())
            }
        }
    )*};
}
request_accessors!(RequestReview, RequestEndorsement, RequestIngest);

impl AnnounceRelationship {
    /// `object.as:subject`: the resource the relationship starts from.
    pub fn subject(&self) -> Option<&str> {
        self.0.object()?.reference("as:subject")
    }

    /// `object.as:relationship`: the relation's IRI.
    pub fn relationship(&self) -> Option<&str> {
        self.0.object()?.reference("as:relationship")
    }

    /// `object.as:object`: the resource the relationship points to.
    pub fn related(&self) -> Option<&str> {
        self.0.object()?.reference("as:object")
    }
}

impl Unprocessable {
    /// Why the notification could not be processed (`summary`).
    pub fn reason(&self) -> Option<&str> {
        self.0.summary()
    }
}
