//! Replies a service sends on its own: acknowledging an Offer, flagging a notification it
//! cannot process, and the defaults of a notification it composes. Rules of COAR Notify, so
//! that every server, CLI and dashboard built on this crate answers the same way.

use serde_json::{Map, Value, json};

use crate::{
    Accept, Activity, BuildError, Buildable, Builder, Notification, Pattern, Reject,
    RequestEndorsement, RequestReview, TentativeAccept, TentativeReject, UndoOffer, Unprocessable,
    build::{embedded, node_value},
};

/// How a service acknowledges an Offer (Request Review or Request Endorsement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Acknowledgement {
    /// Accept.
    Accept,
    /// Reject.
    Reject,
    /// TentativeAccept.
    TentativeAccept,
    /// TentativeReject.
    TentativeReject,
}

impl Acknowledgement {
    /// All four, in the order a menu shows them.
    pub const ALL: [Acknowledgement; 4] = [
        Acknowledgement::Accept,
        Acknowledgement::TentativeAccept,
        Acknowledgement::TentativeReject,
        Acknowledgement::Reject,
    ];

    /// `accept`, `reject`, `tentative-accept` or `tentative-reject`.
    pub fn slug(self) -> &'static str {
        self.pattern().slug()
    }

    /// The acknowledgement named by its slug.
    pub fn from_slug(slug: &str) -> Option<Acknowledgement> {
        Acknowledgement::ALL.into_iter().find(|a| a.slug() == slug)
    }

    /// Its pattern.
    pub fn pattern(self) -> Pattern {
        match self {
            Acknowledgement::Accept => Pattern::Accept,
            Acknowledgement::Reject => Pattern::Reject,
            Acknowledgement::TentativeAccept => Pattern::TentativeAccept,
            Acknowledgement::TentativeReject => Pattern::TentativeReject,
        }
    }
}

/// The id of a service's automatic reply to the notification `answered`: derived from its
/// id and the reply's kind (a UUID v5), so answering the same notification again (a worker
/// run twice, a replay) produces the same reply, which the outbox recognises as a repeat.
pub fn derived_reply_id(answered: &str, kind: &str) -> String {
    format!(
        "urn:uuid:{}",
        uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("{answered}#{kind}").as_bytes()
        )
    )
}

impl Notification {
    /// The acknowledgement `kind` of this notification, if it is an Offer (Request Review or
    /// Request Endorsement; `None` for anything else), with an id derived from the Offer's
    /// ([`derived_reply_id`]) and `summary` if given. `Some(Err)` when the Offer gives no
    /// way back (no `origin.inbox`).
    pub fn acknowledge(
        &self,
        kind: Acknowledgement,
        summary: Option<&str>,
    ) -> Option<Result<Notification, BuildError>> {
        let id = derived_reply_id(self.id().unwrap_or_default(), kind.slug());
        fn finish<P: Buildable>(
            b: Builder<P>,
            id: &str,
            summary: Option<&str>,
        ) -> Result<Notification, BuildError>
        where
            Notification: From<P>,
        {
            let b = b.id(id);
            match summary {
                Some(s) => b.summary(s).build(),
                None => b.build(),
            }
            .map(Notification::from)
        }
        fn answer<O: Offer>(
            offer: &O,
            kind: Acknowledgement,
            id: &str,
            summary: Option<&str>,
        ) -> Result<Notification, BuildError> {
            match kind {
                Acknowledgement::Accept => finish(offer.accept(), id, summary),
                Acknowledgement::Reject => finish(offer.reject(), id, summary),
                Acknowledgement::TentativeAccept => finish(offer.tentative_accept(), id, summary),
                Acknowledgement::TentativeReject => finish(offer.tentative_reject(), id, summary),
            }
        }
        match self {
            Notification::RequestReview(o) => Some(answer(o, kind, &id, summary)),
            Notification::RequestEndorsement(o) => Some(answer(o, kind, &id, summary)),
            _ => None,
        }
    }

    /// The Unprocessable Notification that tells this notification's sender it could not
    /// be processed, with `summary` (a fixed sentence: nothing internal goes to a peer) and
    /// an id derived from this one's. `None` when this is itself an Unprocessable
    /// Notification: a flag is never answered with a flag, so two services cannot bounce
    /// flags forever. `Some(Err)` when the sender gave no way back (no `origin.inbox`) or
    /// this has no id.
    pub fn flag_as_unprocessable(&self, summary: &str) -> Option<Result<Notification, BuildError>> {
        if self.pattern() == Some(Pattern::Unprocessable) {
            return None;
        }
        let id = derived_reply_id(self.id().unwrap_or_default(), "unprocessable");
        Some(
            self.unprocessable_reply(summary)
                .id(id)
                .build()
                .map(Notification::from),
        )
    }
}

/// A notification to send was given a `pattern` that is not a COAR Notify 1.0.1 pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompleteError {
    /// Not a JSON object.
    #[error("a notification is a JSON object")]
    NotAnObject,
    /// `pattern` names no 1.0.1 pattern.
    #[error("{0:?} is not a COAR Notify 1.0.1 pattern")]
    UnknownPattern(String),
}

/// Completes a notification a service composes (the admin API's outbox, the dashboard's
/// compose page): a `pattern` slug becomes its `type`; `@context`, `id`, `origin` and `actor`
/// default to the standard context, a fresh `urn:uuid` and `identity` (a Service object with
/// `id`, `inbox`, `name`; the actor is the same without `inbox`). What is given is kept.
pub fn complete_outbound(doc: &mut Value, identity: &Value) -> Result<(), CompleteError> {
    let map: &mut Map<String, Value> = doc.as_object_mut().ok_or(CompleteError::NotAnObject)?;
    if let Some(slug) = map.remove("pattern") {
        let slug = slug.as_str().unwrap_or_default().to_owned();
        let pattern = Pattern::from_slug(&slug)
            .filter(|p| !p.is_legacy())
            .ok_or(CompleteError::UnknownPattern(slug))?;
        map.insert("type".into(), pattern.type_value());
    }
    map.entry("@context")
        .or_insert_with(|| json!(crate::vocab::STANDARD_CONTEXT));
    map.entry("id").or_insert_with(|| json!(crate::new_id()));
    map.entry("origin").or_insert_with(|| identity.clone());
    map.entry("actor").or_insert_with(|| {
        let mut me = identity.clone();
        me.as_object_mut().map(|m| m.remove("inbox"));
        me
    });
    Ok(())
}

/// The types whose `object` is the whole Offer they answer: the four acknowledgements and
/// Undo.
const ANSWERS_AN_OFFER: [&str; 5] = [
    "Accept",
    "Reject",
    "TentativeAccept",
    "TentativeReject",
    "Undo",
];

/// The id of the Offer a composed acknowledgement or Undo answers but does not yet embed:
/// its `inReplyTo`, else its `object`'s id. `None` when `doc` is something else, or already
/// carries an Offer with origin, target and object (a 1.0.1 reply's `object` is the whole
/// Offer: [`embed_offer`] puts it there).
pub fn offer_wanted(doc: &Value) -> Option<&str> {
    let types = crate::node::type_values(doc.get("type"));
    if !types.iter().any(|t| ANSWERS_AN_OFFER.contains(t)) {
        return None;
    }
    let object = doc.get("object");
    let whole = object.and_then(Value::as_object).is_some_and(|o| {
        ["origin", "target", "object"]
            .iter()
            .all(|k| o.contains_key(*k))
    });
    if whole {
        return None;
    }
    doc.get("inReplyTo")
        .and_then(Value::as_str)
        .or_else(|| object.and_then(Value::as_str))
        .or_else(|| object.and_then(|o| o.get("id")).and_then(Value::as_str))
}

/// Makes `offer` (without `@context`) the `object` of the composed reply `doc` when `doc`
/// wants it ([`offer_wanted`] names the offer's id) and `offer` is an Offer; `inReplyTo`
/// becomes its id if it was missing. Returns whether it did.
pub fn embed_offer(doc: &mut Value, offer: &Activity) -> bool {
    let Some(id) = offer.id() else { return false };
    if offer_wanted(doc) != Some(id) || !offer.types().contains(&"Offer") {
        return false;
    }
    let Some(map) = doc.as_object_mut() else {
        return false;
    };
    map.insert("object".into(), embedded(offer));
    map.entry("inReplyTo").or_insert_with(|| json!(id));
    true
}

// Replies built from a received activity: who answers whom, and what the answer embeds.

/// Replies to a received Offer (Request Review or Request Endorsement), addressed back to its
/// sender: `origin` and `target` swapped, `object` the Offer, `inReplyTo` its id.
pub trait Offer: std::ops::Deref<Target = Activity> {
    /// The target intends to act on the Offer.
    fn accept(&self) -> Builder<Accept> {
        reply(self)
    }

    /// The target will take no further action.
    fn reject(&self) -> Builder<Reject> {
        reply(self)
    }

    /// The target intends to act, which may change.
    fn tentative_accept(&self) -> Builder<TentativeAccept> {
        reply(self)
    }

    /// The target does not intend to act now.
    fn tentative_reject(&self) -> Builder<TentativeReject> {
        reply(self)
    }

    /// The sender retracts its own Offer: same `origin` and `target` as the Offer.
    fn undo(&self) -> Builder<UndoOffer> {
        let offer: &Activity = self;
        let b = Builder::new(
            node_value(offer.origin()),
            node_value(offer.target()),
            embedded(offer),
        );
        match offer.id() {
            Some(id) => b.in_reply_to(id),
            None => b,
        }
    }
}

impl Offer for RequestReview {}
impl Offer for RequestEndorsement {}

fn reply<P: Buildable>(offer: &Activity) -> Builder<P> {
    let b = Builder::new(
        node_value(offer.target()),
        node_value(offer.origin()),
        embedded(offer),
    );
    match offer.id() {
        Some(id) => b.in_reply_to(id),
        None => b,
    }
}

impl Activity {
    /// An Unprocessable Notification answering this (received) activity: addressed back to
    /// its origin, `object` and `inReplyTo` naming it, `summary` the reason. Building fails
    /// when the received activity gives no way back (no `origin.inbox`) or has no id.
    pub fn unprocessable_reply(&self, reason: impl Into<String>) -> Builder<Unprocessable> {
        let id = self.id().unwrap_or_default().to_owned();
        let mut b: Builder<Unprocessable> = Builder::new(
            node_value(self.target()),
            node_value(self.origin()),
            json!({ "id": id }),
        )
        .summary(reason);
        if !id.is_empty() {
            b = b.in_reply_to(id);
        }
        b
    }
}

impl Notification {
    /// See [`Activity::unprocessable_reply`].
    pub fn unprocessable_reply(&self, reason: impl Into<String>) -> Builder<Unprocessable> {
        self.activity().unprocessable_reply(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixtures::request_review as offer;

    #[test]
    fn acknowledgements_answer_offers_with_a_stable_id() {
        let offer = offer();
        for kind in Acknowledgement::ALL {
            let a = offer.acknowledge(kind, Some("ok")).unwrap().unwrap();
            let b = offer.acknowledge(kind, Some("ok")).unwrap().unwrap();
            assert_eq!(a.pattern(), Some(kind.pattern()));
            assert_eq!(a.id(), b.id());
            assert_eq!(a.in_reply_to(), offer.id());
            assert_eq!(Acknowledgement::from_slug(kind.slug()), Some(kind));
        }
        let accept = offer
            .acknowledge(Acknowledgement::Accept, None)
            .unwrap()
            .unwrap();
        assert!(accept.acknowledge(Acknowledgement::Accept, None).is_none());
    }

    #[test]
    fn a_flag_is_never_answered_with_a_flag() {
        let flag = offer().flag_as_unprocessable("no").unwrap().unwrap();
        assert_eq!(flag.pattern(), Some(Pattern::Unprocessable));
        assert!(flag.flag_as_unprocessable("no").is_none());
    }

    #[test]
    fn outbound_defaults_fill_only_what_is_missing() {
        let me = json!({"id": "https://me.example/", "inbox": "https://me.example/inbox", "type": "Service"});
        let mut doc = json!({"pattern": "announce-review", "id": "urn:uuid:1"});
        complete_outbound(&mut doc, &me).unwrap();
        assert_eq!(doc["id"], "urn:uuid:1");
        assert_eq!(doc["origin"], me);
        assert!(doc["actor"].get("inbox").is_none());
        assert_eq!(doc["type"], Pattern::AnnounceReview.type_value());
        assert!(doc.get("pattern").is_none());
        assert_eq!(
            complete_outbound(&mut json!({"pattern": "nope"}), &me),
            Err(CompleteError::UnknownPattern("nope".into()))
        );
        assert_eq!(
            complete_outbound(&mut json!([]), &me),
            Err(CompleteError::NotAnObject)
        );
    }
}
