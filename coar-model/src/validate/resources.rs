//! The baseline of the resources a notification names: its `context`, the types of
//! resources, content items (`ietf:item`) and `ietf:cite-as`.

use serde_json::Value;

use super::{
    Validator,
    syntax::{is_http_uri, is_media_type},
};
use crate::{
    Category, Pattern,
    node::Node,
    notification::json_kind,
    vocab::{is_as2_object_type, is_schema_org_type},
};

impl Validator {
    /// The baseline rules for the `context` property, when present.
    pub(super) fn context_node(&mut self, root: Node<'_>, pattern: Option<Pattern>) {
        let announcement = pattern.is_some_and(|p| p.category() == Category::Announcement);
        match root.get("context") {
            None => {
                if announcement && self.v1() {
                    self.error(
                        "context.required",
                        "/context",
                        "an announcement must have a context: the resource it is about",
                    );
                }
            }
            Some(Value::String(_)) => {
                self.uri_value(root, "", "context", "context.id.uri", announcement);
            }
            Some(Value::Object(m)) => {
                let node = Node::new(m);
                self.node_id(
                    node,
                    "/context",
                    "context",
                    "context.id.required",
                    if announcement {
                        "context.id.http-uri"
                    } else {
                        "context.id.uri"
                    },
                    announcement,
                );
                if announcement && self.v1() {
                    if node.get("type").is_some() {
                        self.resource_types(node, "/context", "context", "context.type", false);
                    }
                    if node.get("ietf:item").is_some() {
                        self.item(node, "/context");
                    }
                }
            }
            Some(other) => self.error(
                "context.shape",
                "/context",
                format!(
                    "context must be an object with an id, found {}",
                    json_kind(other)
                ),
            ),
        }
    }

    /// A resource's `type`: MUST include an AS2 object type, SHOULD include a schema.org one.
    pub(super) fn resource_types(
        &mut self,
        node: Node<'_>,
        base: &str,
        what: &str,
        rule_prefix: &'static str,
        schema_warning: bool,
    ) {
        let required = match rule_prefix {
            "object.type" => "object.type.required",
            "context.type" => "context.type.required",
            _ => "item.type.required",
        };
        let Some(types) = self.types_shape(node, base, what, required) else {
            return;
        };
        if !types.iter().any(|t| is_as2_object_type(t)) {
            let rule = match rule_prefix {
                "object.type" => "object.type.as2",
                "context.type" => "context.type.as2",
                _ => "item.type.as2",
            };
            self.error(
                rule,
                format!("{base}/type"),
                format!("{what}'s type must include an ActivityStreams object type"),
            );
        }
        if schema_warning && !types.iter().any(|t| is_schema_org_type(t)) {
            let rule = match rule_prefix {
                "object.type" => "object.type.schema-org",
                "context.type" => "context.type.schema-org",
                _ => "item.type.schema-org",
            };
            self.warning(
                rule,
                format!("{base}/type"),
                format!("{what}'s type should include a schema.org type"),
            );
        }
    }

    /// `ietf:item` of the node at `base`, which must exist.
    pub(super) fn item(&mut self, parent: Node<'_>, base: &str) {
        let pointer = format!("{base}/ietf:item");
        let node = match parent.get("ietf:item") {
            None => {
                self.error(
                    "item.required",
                    pointer,
                    "ietf:item is required: the resource's content file",
                );
                return;
            }
            Some(Value::Object(m)) => Node::new(m),
            Some(other) => {
                self.error(
                    "item.required",
                    pointer,
                    format!(
                        "ietf:item must be an object with id, type and mediaType, found {}",
                        json_kind(other)
                    ),
                );
                return;
            }
        };
        self.node_id(
            node,
            &pointer,
            "ietf:item",
            "item.id.required",
            "item.id.http-uri",
            true,
        );
        self.resource_types(node, &pointer, "ietf:item", "item.type", true);
        match node.get("mediaType") {
            None => self.error(
                "item.media-type.required",
                format!("{pointer}/mediaType"),
                "ietf:item must have a mediaType",
            ),
            Some(Value::String(m)) if is_media_type(m) => {}
            Some(other) => self.error(
                "item.media-type.valid",
                format!("{pointer}/mediaType"),
                format!("mediaType must be a MIME type such as application/pdf, found {other}"),
            ),
        }
    }

    pub(super) fn cite_as(&mut self, node: Node<'_>, base: &str, recommended: bool) {
        if node.get("ietf:cite-as") == Some(&Value::String(String::new())) {
            // A quirk of the workflow catalogue's examples: an empty cite-as means "none".
            self.warning(
                "cite-as.empty",
                format!("{base}/ietf:cite-as"),
                "ietf:cite-as is empty; give the persistent identifier or leave it out",
            );
        } else if node.get("ietf:cite-as").is_some() {
            if let Some(pid) = self.uri_value(node, base, "ietf:cite-as", "cite-as.uri", false)
                && !is_http_uri(pid)
            {
                self.warning(
                    "cite-as.http-uri",
                    format!("{base}/ietf:cite-as"),
                    "ietf:cite-as should be a persistent HTTP URI, e.g. https://doi.org/...",
                );
            }
        } else if recommended {
            self.warning(
                "cite-as.recommended",
                format!("{base}/ietf:cite-as"),
                "ietf:cite-as (a persistent identifier) should be given",
            );
        }
    }
}
