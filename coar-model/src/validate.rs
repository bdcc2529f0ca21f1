//! Validation: every problem of a notification, each with its JSON pointer, rule and message.
//!
//! MUST violations are [`Severity::Error`], SHOULD violations [`Severity::Warning`]. The rules
//! are those of COAR Notify 1.0.1 (baseline and per pattern). Documents using the 0.9.0
//! context are checked against the 0.9.0 text, which did not yet require `context` on
//! announcements, `inReplyTo`/`object` on acknowledgements, or `Service` types.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::{
    Activity, Category, Pattern,
    node::{Node, type_values},
    notification::json_kind,
    vocab::{
        SpecVersion, is_activitystreams_context, is_actor_type, is_as2_activity_type,
        is_as2_object_type, is_schema_org_type, notify_context_version,
    },
};

/// The longest URI accepted (RFC 9110 recommends supporting at least 8000 octets).
pub const MAX_URI_LEN: usize = 8 * 1024;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A SHOULD of the specification is not met; the notification is still valid.
    Warning,
    /// A MUST of the specification is not met; the notification is invalid.
    Error,
}

/// One problem found by validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Error (MUST) or warning (SHOULD).
    pub severity: Severity,
    /// The rule's stable identifier, e.g. `target.inbox.required`.
    pub rule: &'static str,
    /// Where in the document (RFC 6901), e.g. `/target/inbox`.
    pub pointer: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{level} at {pointer}: {} [{}]", self.message, self.rule)
    }
}

/// Everything validation found. Empty means valid and complete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The problems, in document order of the checks.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether no MUST is violated (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The MUST violations.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    /// The SHOULD violations.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Warning)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Escapes one reference token of a JSON pointer (RFC 6901: `~` → `~0`, `/` → `~1`).
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Whether `s` is an absolute URI by RFC 3986: a scheme, `:`, and only URI characters
/// (unreserved, reserved, or `%` followed by two hex digits).
pub fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut sc = scheme.chars();
    if !sc.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !sc.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        || rest.is_empty()
    {
        return false;
    }
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(|c| c.is_ascii_hexdigit());
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b)) {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `s` is an absolute `http` or `https` URI with a host.
pub fn is_http_uri(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &s[8..]
    } else if lower.starts_with("http://") {
        &s[7..]
    } else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    is_uri(s) && !host.is_empty() && !host.starts_with(':')
}

fn is_media_type(s: &str) -> bool {
    let essence = s.split(';').next().unwrap_or("").trim();
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(essence.split_once('/'), Some((a, b)) if token(a) && token(b))
}

/// Validates an activity as the given pattern (or as an unrecognised activity).
pub(crate) fn validate(activity: &Activity, pattern: Option<Pattern>) -> Report {
    let mut v = Validator {
        problems: Vec::new(),
        version: activity.spec_version().unwrap_or(SpecVersion::V1),
    };
    let root = activity.node();
    v.json_ld_context(activity);
    v.id(root);
    v.activity_type(root, pattern);
    v.service(root, Party::Origin);
    v.service(root, Party::Target);
    v.object(root);
    v.actor(root);
    v.optional_uri(root, "", "inReplyTo", "inReplyTo.uri");
    v.context_node(root, pattern);
    if let Some(s) = root.get("summary")
        && !s.is_string()
    {
        v.error(
            "summary.string",
            "/summary",
            format!("summary must be a string, found {}", json_kind(s)),
        );
    }
    if let Some(pattern) = pattern {
        v.pattern(root, pattern);
    }
    Report {
        problems: v.problems,
    }
}

struct Validator {
    problems: Vec<Problem>,
    version: SpecVersion,
}

impl Validator {
    fn error(
        &mut self,
        rule: &'static str,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Error, rule, pointer.into(), message.into());
    }

    fn warning(
        &mut self,
        rule: &'static str,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Warning, rule, pointer.into(), message.into());
    }

    fn push(&mut self, severity: Severity, rule: &'static str, pointer: String, message: String) {
        self.problems.push(Problem {
            severity,
            rule,
            pointer,
            message,
        });
    }

    fn v1(&self) -> bool {
        self.version == SpecVersion::V1
    }

    fn json_ld_context(&mut self, activity: &Activity) {
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
    fn uri_value<'a>(
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

    fn optional_uri(&mut self, node: Node<'_>, base: &str, key: &str, rule: &'static str) {
        self.uri_value(node, base, key, rule, false);
    }

    /// Required id of a node at `base`.
    fn node_id<'a>(
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

    fn types_shape(
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

    fn id(&mut self, root: Node<'_>) {
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

    fn activity_type(&mut self, root: Node<'_>, pattern: Option<Pattern>) {
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

    fn service(&mut self, root: Node<'_>, party: Party) {
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

    fn object(&mut self, root: Node<'_>) {
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

    fn actor(&mut self, root: Node<'_>) {
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

    /// The baseline rules for the `context` property, when present.
    fn context_node(&mut self, root: Node<'_>, pattern: Option<Pattern>) {
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
    fn resource_types(
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
    fn item(&mut self, parent: Node<'_>, base: &str) {
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

    fn cite_as(&mut self, node: Node<'_>, base: &str, recommended: bool) {
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

    fn pattern(&mut self, root: Node<'_>, pattern: Pattern) {
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

    /// Acknowledgements and Undo: inReplyTo is required and names the object.
    fn reply(&mut self, root: Node<'_>) {
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

    fn relationship(&mut self, root: Node<'_>, o: Node<'_>) {
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

/// Which service of a notification a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Party {
    Origin,
    Target,
}

impl Party {
    fn key(self) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        for ok in [
            "urn:uuid:0370c0fb-bb78-4a9b-87f5-bed307a509dd",
            "urn:uuid:74FFB356-0632-44D9-B176-888DA85758DC",
            "mailto:josiah.carberry@example.com",
            "https://example.org/a%20b?x=1#f",
            "tag:example.org,2026:x",
        ] {
            assert!(is_uri(ok), "{ok}");
        }
        for bad in [
            "",
            "no-scheme",
            "1http://x",
            "http://exa mple.org",
            "https://x/%zz",
            "urn:",
            "é:x",
        ] {
            assert!(!is_uri(bad), "{bad}");
        }
        assert!(is_http_uri("HTTPS://example.org"));
        assert!(is_http_uri("http://user@example.org:8080/x"));
        assert!(!is_http_uri("https://"));
        assert!(!is_http_uri("https:///path"));
        assert!(!is_http_uri("ftp://example.org"));
        assert!(!is_http_uri("urn:uuid:1"));
    }

    #[test]
    fn media_types() {
        assert!(is_media_type("application/pdf"));
        assert!(is_media_type("text/html; charset=utf-8"));
        assert!(!is_media_type("pdf"));
        assert!(!is_media_type("application/"));
    }

    #[test]
    fn pointer_escaping() {
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
    }
}
