//! The rules of each pattern, beyond the baseline.

use super::Validator;
use serde_json::Value;

use crate::{Category, Pattern, node::Node};

impl Validator {
    pub(super) fn pattern(&mut self, root: Node<'_>, pattern: Pattern) {
        let object = root.node("object");
        match pattern.category() {
            Category::Request => {
                if let Some(o) = object {
                    self.uri_value(o, "/object", "id", "object.id.http-uri", true);
                    if self.v1() {
                        self.resource_types(o, "/object", "object", "object.type", true);
                        self.cite_as(o, "/object", true);
                        self.item(o, "/object");
                    }
                }
            }
            Category::Acknowledgement => self.reply(root),
            Category::Process if pattern == Pattern::UndoOffer => self.reply(root),
            Category::Process => {
                if root.get("inReplyTo").is_none() {
                    self.error("inReplyTo.required", "/inReplyTo", "inReplyTo is required: the id of the notification that could not be processed");
                }
                if root.get("summary").is_none() {
                    self.error(
                        "summary.required",
                        "/summary",
                        "summary is required: why the notification could not be processed",
                    );
                }
            }
            Category::Announcement => {
                if let Some(o) = object {
                    match pattern {
                        Pattern::AnnounceRelationship => self.relationship(root, o),
                        Pattern::AnnounceIngest => {}
                        _ if self.v1() => {
                            self.resource_types(o, "/object", "object", "object.type", true);
                            if pattern != Pattern::AnnounceServiceResult {
                                self.cite_as(o, "/object", true);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Acknowledgements and Undo: the object is the whole Offer, inReplyTo is required and
    /// names it.
    pub(super) fn reply(&mut self, root: Node<'_>) {
        if self.v1() {
            self.whole_offer(root);
        }
        let in_reply_to = root.reference("inReplyTo");
        if root.get("inReplyTo").is_none() {
            if self.v1() {
                self.error(
                    "inReplyTo.required",
                    "/inReplyTo",
                    "inReplyTo is required: the id of the Offer this answers",
                );
            }
            return;
        }
        if let (Some(irt), Some(obj)) = (in_reply_to, root.reference("object"))
            && irt != obj
        {
            self.error(
                "inReplyTo.matches-object",
                "/inReplyTo",
                format!("inReplyTo must equal object.id ({obj:?}), found {irt:?}"),
            );
        }
    }

    /// 1.0.1: the object of an acknowledgement or an Undo "is the complete payload (without
    /// the `@context` property) of the Offer activity to which this pattern is a response".
    /// Receivers such as coarnotify read the Offer's origin, target and object from it, and
    /// refuse a reply that carries only `{id, type}`.
    fn whole_offer(&mut self, root: Node<'_>) {
        const RULE: &str = "object.offer.complete";
        let Some(offer) = root.node("object") else {
            if root.get("object").is_some_and(Value::is_string) {
                self.error(
                    RULE,
                    "/object",
                    "object must be the whole Offer this answers (its payload without @context), \
                     found only its id",
                );
            }
            return;
        };
        if !offer.has_type(|t| t == "Offer") {
            self.error(
                RULE,
                "/object/type",
                format!(
                    "object must be the Offer this answers: its type must include Offer, found {:?}",
                    offer.types()
                ),
            );
        }
        for key in ["origin", "target", "object"] {
            if offer.get(key).is_none() {
                self.error(
                    RULE,
                    format!("/object/{key}"),
                    format!(
                        "object must be the whole Offer this answers (its payload without \
                         @context): it has no {key}"
                    ),
                );
            }
        }
    }

    pub(super) fn relationship(&mut self, root: Node<'_>, o: Node<'_>) {
        self.resource_types(o, "/object", "object", "object.type", false);
        let mut related = None;
        for (key, rule_required, rule_uri) in [
            (
                "as:subject",
                "relationship.subject.required",
                "relationship.subject.uri",
            ),
            (
                "as:relationship",
                "relationship.relationship.required",
                "relationship.relationship.uri",
            ),
            (
                "as:object",
                "relationship.object.required",
                "relationship.object.uri",
            ),
        ] {
            if o.get(key).is_none() {
                self.error(
                    rule_required,
                    format!("/object/{key}"),
                    format!("the relationship must have {key}"),
                );
                continue;
            }
            let value = self.uri_value(o, "/object", key, rule_uri, false);
            if key == "as:object" {
                related = value;
            }
        }
        if let (Some(related), Some(ctx)) = (related, root.reference("context"))
            && related != ctx
        {
            let pointer = if root.node("context").is_some() {
                "/context/id"
            } else {
                "/context"
            };
            self.error(
                "context.id.matches-relationship",
                pointer,
                format!("context.id must equal the relationship's as:object ({related:?}), found {ctx:?}"),
            );
        }
    }
}
