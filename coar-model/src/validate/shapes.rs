//! The baseline every notification is checked against, whatever its pattern.

use serde_json::Value;

use super::{
    Validator,
    syntax::{MAX_URI_LEN, is_http_uri, is_uri, pointer_token},
};
use crate::{
    Activity, Pattern,
    node::{Node, type_values},
    notification::json_kind,
    vocab::{
        SpecVersion, is_activitystreams_context, is_actor_type, is_as2_activity_type,
        notify_context_version,
    },
};

impl Validator {
    pub(super) fn json_ld_context(&mut self, activity: &Activity) {
        let Some(ctx) = activity.json_ld_context() else {
            self.error("@context.required", "/@context", "@context is required");
            return;
        };
        if !matches!(ctx, Value::String(_) | Value::Array(_)) {
            self.error(
                "@context.shape",
                "/@context",
                format!(
                    "@context must be an array of context URIs, found {}",
                    json_kind(ctx)
                ),
            );
            return;
        }
        let iris = type_values(Some(ctx));
        if !iris.iter().any(|i| is_activitystreams_context(i)) {
            self.error(
                "@context.activitystreams",
                "/@context",
                "@context must include https://www.w3.org/ns/activitystreams",
            );
        }
        let versions: Vec<SpecVersion> = iris
            .iter()
            .filter_map(|i| notify_context_version(i))
            .collect();
        match versions.as_slice() {
            [] => self.error(
                "@context.notify",
                "/@context",
                "@context must include one COAR Notify context: https://coar-notify.net (or the deprecated https://purl.org/coar/notify)",
            ),
            [SpecVersion::V0_9] => self.warning(
                "@context.deprecated",
                "/@context",
                "https://purl.org/coar/notify is deprecated since COAR Notify 1.0.0; use https://coar-notify.net",
            ),
            [_] => {}
            _ => self.error(
                "@context.notify",
                "/@context",
                "@context must include exactly one COAR Notify context",
            ),
        }
    }

    /// Checks that `node[key]` is a string URI (or HTTP URI); reports the problem under
    /// `rule` at `base/key`. Returns the string when it is one.
    pub(super) fn uri_value<'a>(
        &mut self,
        node: Node<'a>,
        base: &str,
        key: &str,
        rule: &'static str,
        http: bool,
    ) -> Option<&'a str> {
        let pointer = format!("{base}/{}", pointer_token(key));
        let value = node.get(key)?;
        let (s, p) = match value {
            Value::String(s) => (s.as_str(), pointer),
            // A node reference written as an object: check its id.
            Value::Object(m) => match Node::new(m).id() {
                Some(id) => (id, format!("{pointer}/id")),
                None => {
                    self.error(
                        rule,
                        format!("{pointer}/id"),
                        format!("{key} must have an id"),
                    );
                    return None;
                }
            },
            other => {
                self.error(
                    rule,
                    pointer,
                    format!("{key} must be a URI string, found {}", json_kind(other)),
                );
                return None;
            }
        };
        let what = if http { "an HTTP(S) URI" } else { "a URI" };
        if s.len() > MAX_URI_LEN {
            self.error(
                rule,
                p,
                format!(
                    "{key} is {} bytes long; URIs are limited to {MAX_URI_LEN}",
                    s.len()
                ),
            );
            None
        } else if !(if http { is_http_uri(s) } else { is_uri(s) }) {
            let shown: String = s.chars().take(80).collect();
            self.error(rule, p, format!("{key} must be {what}, found {shown:?}"));
            None
        } else {
            Some(s)
        }
    }

    pub(super) fn optional_uri(
        &mut self,
        node: Node<'_>,
        base: &str,
        key: &str,
        rule: &'static str,
    ) {
        self.uri_value(node, base, key, rule, false);
    }

    /// Required id of a node at `base`.
    pub(super) fn node_id<'a>(
        &mut self,
        node: Node<'a>,
        base: &str,
        what: &str,
        rule_required: &'static str,
        rule_uri: &'static str,
        http: bool,
    ) -> Option<&'a str> {
        if node.get("id").is_none() && node.get("@id").is_none() {
            self.error(
                rule_required,
                format!("{base}/id"),
                format!("{what} must have an id"),
            );
            return None;
        }
        let key = if node.get("id").is_some() {
            "id"
        } else {
            "@id"
        };
        self.uri_value(node, base, key, rule_uri, http)
    }

    pub(super) fn types_shape(
        &mut self,
        node: Node<'_>,
        base: &str,
        what: &str,
        rule_required: &'static str,
    ) -> Option<Vec<String>> {
        let pointer = format!("{base}/type");
        match node.get("type") {
            None => {
                self.error(rule_required, pointer, format!("{what} must have a type"));
                None
            }
            Some(Value::String(s)) => Some(vec![s.clone()]),
            Some(Value::Array(items)) if !items.is_empty() => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => self.error(
                            "type.string",
                            format!("{pointer}/{i}"),
                            format!("type values must be strings, found {}", json_kind(other)),
                        ),
                    }
                }
                Some(out)
            }
            Some(other) => {
                self.error(
                    rule_required,
                    pointer,
                    format!(
                        "{what}'s type must be a string or a non-empty array of strings, found {}",
                        json_kind(other)
                    ),
                );
                None
            }
        }
    }

    pub(super) fn id(&mut self, root: Node<'_>) {
        match root.get("id") {
            None => self.error("id.required", "/id", "the activity must have an id"),
            Some(_) => {
                if let Some(id) = self.uri_value(root, "", "id", "id.uri", false) {
                    let lower = id.to_ascii_lowercase();
                    if !lower.starts_with("urn:uuid:") && !is_http_uri(id) {
                        self.warning(
                            "id.recommended-form",
                            "/id",
                            "the activity id should be a urn:uuid: URN (or an HTTP URI)",
                        );
                    }
                }
            }
        }
    }

    pub(super) fn activity_type(&mut self, root: Node<'_>, pattern: Option<Pattern>) {
        let Some(types) = self.types_shape(root, "", "the activity", "type.required") else {
            return;
        };
        if !types.iter().any(|t| is_as2_activity_type(t)) {
            self.error(
                "type.activity",
                "/type",
                "type must include an ActivityStreams activity type",
            );
        } else if pattern.is_none() {
            self.error(
                "type.pattern",
                "/type",
                format!("type {types:?} names no COAR Notify pattern"),
            );
        }
    }

    pub(super) fn service(&mut self, root: Node<'_>, party: Party) {
        let key = party.key();
        let base = format!("/{key}");
        let node = match root.get(key) {
            None => {
                self.error(
                    rule(party, ServiceRule::Required),
                    base,
                    format!("{key} is required"),
                );
                return;
            }
            Some(Value::Object(m)) => Node::new(m),
            Some(other) => {
                self.error(
                    rule(party, ServiceRule::Required),
                    base,
                    format!(
                        "{key} must be an object with id, type and inbox, found {}",
                        json_kind(other)
                    ),
                );
                return;
            }
        };
        self.node_id(
            node,
            &base,
            key,
            rule(party, ServiceRule::IdRequired),
            rule(party, ServiceRule::IdHttpUri),
            true,
        );
        if self.v1()
            && let Some(types) =
                self.types_shape(node, &base, key, rule(party, ServiceRule::TypeRequired))
            && !types.iter().any(|t| t == "Service" || t == "as:Service")
        {
            self.warning(
                rule(party, ServiceRule::TypeService),
                format!("{base}/type"),
                format!("{key}'s type should include Service"),
            );
        }
        match node.get("inbox") {
            None if party == Party::Target => self.error(
                "target.inbox.required",
                format!("{base}/inbox"),
                "target must have an inbox",
            ),
            None => self.warning(
                "origin.inbox.recommended",
                format!("{base}/inbox"),
                "origin should have an inbox, so that replies can be sent",
            ),
            Some(_) => {
                self.uri_value(
                    node,
                    &base,
                    "inbox",
                    rule(party, ServiceRule::InboxHttpUri),
                    true,
                );
            }
        }
    }

    pub(super) fn object(&mut self, root: Node<'_>) {
        match root.get("object") {
            None => self.error("object.required", "/object", "object is required"),
            Some(Value::String(_)) => {
                // A plain IRI reference is the node with that id.
                self.uri_value(root, "", "object", "object.id.uri", false);
            }
            Some(Value::Object(m)) => {
                self.node_id(
                    Node::new(m),
                    "/object",
                    "object",
                    "object.id.required",
                    "object.id.uri",
                    false,
                );
            }
            Some(other) => self.error(
                "object.required",
                "/object",
                format!(
                    "object must be an object with an id, found {}",
                    json_kind(other)
                ),
            ),
        }
    }

    pub(super) fn actor(&mut self, root: Node<'_>) {
        let node = match root.get("actor") {
            None => {
                self.warning(
                    "actor.recommended",
                    "/actor",
                    "an actor is highly recommended",
                );
                return;
            }
            Some(Value::Object(m)) => Node::new(m),
            Some(other) => {
                self.error(
                    "actor.shape",
                    "/actor",
                    format!(
                        "actor must be an object with id and type, found {}",
                        json_kind(other)
                    ),
                );
                return;
            }
        };
        self.node_id(
            node,
            "/actor",
            "actor",
            "actor.id.required",
            "actor.id.uri",
            false,
        );
        if let Some(types) = self.types_shape(node, "/actor", "actor", "actor.type.required")
            && !types.iter().any(|t| is_actor_type(t))
        {
            self.error(
                "actor.type.allowed",
                "/actor/type",
                "actor's type must be one of Application, Group, Organization, Person, Service",
            );
        }
        if let Some(name) = node.get("name")
            && !name.is_string()
        {
            self.error(
                "actor.name.string",
                "/actor/name",
                format!("actor's name must be a string, found {}", json_kind(name)),
            );
        }
    }
}

/// Which service of a notification a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Party {
    Origin,
    Target,
}

impl Party {
    pub(super) fn key(self) -> &'static str {
        match self {
            Party::Origin => "origin",
            Party::Target => "target",
        }
    }
}

/// The rules every service object (origin, target) is checked against.
#[derive(Debug, Clone, Copy)]
enum ServiceRule {
    Required,
    IdRequired,
    IdHttpUri,
    TypeRequired,
    TypeService,
    InboxHttpUri,
}

/// The rule id `"{party}.{rule}"`, as a static string. The match is exhaustive: a new
/// party or rule without its id does not compile.
fn rule(party: Party, rule: ServiceRule) -> &'static str {
    macro_rules! table {
        ($($r:ident => $s:literal),* $(,)?) => {
            match (party, rule) {
                $(
                    (Party::Origin, ServiceRule::$r) => concat!("origin.", $s),
                    (Party::Target, ServiceRule::$r) => concat!("target.", $s),
                )*
            }
        };
    }
    table!(
        Required => "required",
        IdRequired => "id.required",
        IdHttpUri => "id.http-uri",
        TypeRequired => "type.required",
        TypeService => "type.service",
        InboxHttpUri => "inbox.http-uri",
    )
}
