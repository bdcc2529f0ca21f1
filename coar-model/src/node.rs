//! Borrowed, typed views of the JSON objects inside a notification.

use serde_json::{Map, Value};

/// A borrowed view of one JSON-LD node (a JSON object) of a notification: `origin`,
/// `target`, `actor`, `object`, `context`, an `ietf:item`, …
///
/// Getters return `None` when a property is absent *or* has the wrong JSON shape; validation
/// reports the latter separately, with its pointer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Node<'a> {
    /// Views a JSON object as a node.
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Node { map }
    }

    /// The node's `id` (or `@id`).
    pub fn id(&self) -> Option<&'a str> {
        self.str("id").or_else(|| self.str("@id"))
    }

    /// The values of `type` (or `@type`), a string or an array of strings in the payload.
    pub fn types(&self) -> Vec<&'a str> {
        type_values(self.map.get("type").or_else(|| self.map.get("@type")))
    }

    /// Whether `type` contains a value the predicate accepts.
    pub fn has_type(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.types().into_iter().any(pred)
    }

    /// A string property.
    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.map.get(key).and_then(Value::as_str)
    }

    /// A property that is itself a node (JSON object).
    pub fn node(&self, key: &str) -> Option<Node<'a>> {
        self.map.get(key).and_then(Value::as_object).map(Node::new)
    }

    /// The IRI a property refers to: the string itself, or the `id` of an embedded node.
    pub fn reference(&self, key: &str) -> Option<&'a str> {
        match self.map.get(key)? {
            Value::String(s) => Some(s),
            Value::Object(m) => Node::new(m).id(),
            _ => None,
        }
    }

    /// Any property, as JSON.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// `name`.
    pub fn name(&self) -> Option<&'a str> {
        self.str("name")
    }

    /// `inbox` (the LDN inbox of a service).
    pub fn inbox(&self) -> Option<&'a str> {
        self.reference("inbox")
    }

    /// `ietf:cite-as` (a persistent identifier).
    pub fn cite_as(&self) -> Option<&'a str> {
        self.reference("ietf:cite-as")
    }

    /// `ietf:item` (the content file of a resource).
    pub fn item(&self) -> Option<Node<'a>> {
        self.node("ietf:item")
    }

    /// `mediaType`.
    pub fn media_type(&self) -> Option<&'a str> {
        self.str("mediaType")
    }

    /// The underlying JSON object.
    pub fn as_map(&self) -> &'a Map<String, Value> {
        self.map
    }
}

/// Reads a `type`-like value: a string, or the strings of an array.
pub(crate) fn type_values(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}
