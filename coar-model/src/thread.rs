//! Request threads: where an Offer stands, from the replies it has received. The store keeps
//! the queries; the rules are here.

use serde::Serialize;

use crate::Pattern;

/// Where a request stands, derived from the replies received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadStatus {
    /// Sent, no answer yet.
    Requested,
    /// The service intends to act, which may change.
    TentativelyAccepted,
    /// The service intends to act.
    Accepted,
    /// The service does not intend to act now.
    TentativelyRejected,
    /// The service will not act.
    Rejected,
    /// The request was withdrawn.
    Undone,
    /// The result (review, endorsement, relationship, service result) was announced.
    Announced,
}

impl ThreadStatus {
    /// The status after `reply` (a pattern answering the Offer).
    pub fn after(self, reply: Pattern) -> ThreadStatus {
        match reply {
            Pattern::TentativeAccept => ThreadStatus::TentativelyAccepted,
            Pattern::Accept => ThreadStatus::Accepted,
            Pattern::TentativeReject => ThreadStatus::TentativelyRejected,
            Pattern::Reject => ThreadStatus::Rejected,
            Pattern::UndoOffer => ThreadStatus::Undone,
            Pattern::AnnounceReview
            | Pattern::AnnounceEndorsement
            | Pattern::AnnounceServiceResult
            | Pattern::AnnounceRelationship
            | Pattern::AnnounceIngest => ThreadStatus::Announced,
            _ => self,
        }
    }

    /// The status the patterns of a request's replies, in the order received, add up to.
    pub fn of(replies: impl IntoIterator<Item = Pattern>) -> ThreadStatus {
        replies
            .into_iter()
            .fold(ThreadStatus::Requested, ThreadStatus::after)
    }

    /// Whether an announcement completes a request of this kind when it does not name the
    /// request in `inReplyTo`: a review request by a review, an endorsement request by an
    /// endorsement; service results and relationships complete any.
    pub fn completes(announcement: Option<Pattern>, request: Option<Pattern>) -> bool {
        match announcement {
            Some(Pattern::AnnounceReview) => request == Some(Pattern::RequestReview),
            Some(Pattern::AnnounceEndorsement) => request == Some(Pattern::RequestEndorsement),
            Some(Pattern::AnnounceIngest) => request == Some(Pattern::RequestIngest),
            Some(Pattern::AnnounceServiceResult | Pattern::AnnounceRelationship) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_add_up_to_a_status() {
        use Pattern as P;
        assert_eq!(ThreadStatus::of([]), ThreadStatus::Requested);
        assert_eq!(
            ThreadStatus::of([P::TentativeAccept, P::Accept]),
            ThreadStatus::Accepted
        );
        assert_eq!(
            ThreadStatus::of([P::Accept, P::AnnounceReview]),
            ThreadStatus::Announced
        );
        assert_eq!(ThreadStatus::of([P::UndoOffer]), ThreadStatus::Undone);
        // Patterns that answer nothing leave the status as it was.
        assert_eq!(
            ThreadStatus::of([P::Reject, P::RequestReview]),
            ThreadStatus::Rejected
        );
        assert!(ThreadStatus::completes(
            Some(P::AnnounceReview),
            Some(P::RequestReview)
        ));
        assert!(!ThreadStatus::completes(
            Some(P::AnnounceReview),
            Some(P::RequestEndorsement)
        ));
        assert!(ThreadStatus::completes(
            Some(P::AnnounceRelationship),
            Some(P::RequestEndorsement)
        ));
        assert!(!ThreadStatus::completes(
            Some(P::Accept),
            Some(P::RequestReview)
        ));
    }
}
