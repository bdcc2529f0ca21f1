//! A fast path for JSON-LD expansion of the common shape of notifications, checked against
//! the json-ld crate.
//!
//! Most documents a notification inbox receives use a cached top-level context and nothing
//! else: terms without scoped contexts or special containers, `@id` and `@type` (or their
//! aliases), nested node objects, and plain literals. For those, [`expand`] builds the same
//! [`ExpandedDocument`] as json-ld's expansion algorithm, without cloning the processed
//! context and without the general algorithm's machinery. IRIs are expanded by json-ld's own
//! `expand_iri_simple`, so IRI semantics (terms, compact IRIs, `@vocab`, relative IRIs
//! against the base) are json-ld's.
//!
//! Anything outside that subset makes [`expand`] return `None`, and the caller runs json-ld:
//! the fast path never guesses. The tests compare both on every fixture and on mutations of
//! them.

use json_ld::{
    ContainerKind, Context, ExpandedDocument, Id, IndexedObject, IriBuf, Node, Nullable, Object,
    Term, Type, ValidId, Value as LdValue,
    context_processing::algorithm::{Action, MalformedIri, expand_iri_simple},
    object::Literal,
    syntax::{ExpandableRef, Keyword, Value},
};

type Processed = Context<IriBuf, json_ld::BlankIdBuf>;

/// Nesting deeper than this goes to json-ld (which has its own limits).
const MAX_DEPTH: usize = 32;

/// The expansion of `document` (with its top-level `@context` already removed) against
/// `active`, or `None` when the document is not in the subset this path handles.
pub(crate) fn expand(document: &Value, active: &Processed) -> Option<ExpandedDocument> {
    if active.previous_context().is_some()
        || active.default_language().is_some()
        || active.default_base_direction().is_some()
    {
        return None;
    }
    let Value::Object(object) = document else {
        return None;
    };
    let node = node(object, active, 0)?;
    // The algorithm drops a top-level node that has only an `@id` (or nothing).
    if node.types.is_none() && node.properties().is_empty() {
        return None;
    }
    let mut doc = ExpandedDocument::new();
    doc.insert(IndexedObject::new(Object::node(node), None));
    Some(doc)
}

/// IRI expansion exactly as json-ld does it, against `active`.
fn iri(active: &Processed, value: &str, document_relative: bool, vocab: bool) -> Option<Term> {
    let mut env = json_ld::Environment {
        vocabulary: &mut (),
        loader: &(),
        warnings: &mut (),
    };
    expand_iri_simple::<MalformedIri, (), (), ()>(
        &mut env,
        active,
        Nullable::Some(ExpandableRef::String(value)),
        document_relative,
        vocab.then_some(Action::Keep),
    )
    .ok()
    .flatten()
}

/// A valid IRI or blank node identifier; anything else is not for the fast path.
fn valid_id(term: Option<Term>) -> Option<Id> {
    match term? {
        Term::Id(id @ Id::Valid(ValidId::Iri(_))) => Some(id),
        _ => None,
    }
}

/// What a key of a node object is.
enum KeyKind {
    Id,
    Type,
    /// A property and its type mapping.
    Property(Id, Option<Type>),
}

fn key_kind(active: &Processed, key: &str) -> Option<KeyKind> {
    if key.starts_with('@') {
        return match key {
            "@id" => Some(KeyKind::Id),
            "@type" => Some(KeyKind::Type),
            _ => None,
        };
    }
    let Some(definition) = active.get(key) else {
        return valid_id(iri(active, key, false, true)).map(|id| KeyKind::Property(id, None));
    };
    let property = match definition.value()? {
        Term::Keyword(Keyword::Id) => return Some(KeyKind::Id),
        Term::Keyword(Keyword::Type) => return Some(KeyKind::Type),
        Term::Keyword(_) | Term::Null => return None,
        // What expand_iri_simple gives for a defined term with vocab = true.
        Term::Id(id @ Id::Valid(ValidId::Iri(_))) => id.clone(),
        Term::Id(_) => return None,
    };
    {
        let container = definition.container();
        let plain = container.is_empty() || container.as_slice() == [ContainerKind::Set];
        if !plain
            || definition.context().is_some()
            || definition.reverse_property()
            || definition.nest().is_some()
            || definition.index().is_some()
            || definition.language().is_some()
            || definition.direction().is_some()
            || matches!(definition.typ(), Some(Type::Json | Type::None))
        {
            return None;
        }
    }
    Some(KeyKind::Property(property, definition.typ().cloned()))
}

fn node(object: &json_ld::syntax::Object, active: &Processed, depth: usize) -> Option<Node> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut node = Node::new();
    for entry in object.iter() {
        let key = entry.key.as_str();
        match key_kind(active, key)? {
            KeyKind::Id => {
                if node.id.is_some() {
                    return None;
                }
                let Value::String(s) = &entry.value else {
                    return None;
                };
                node.id = Some(valid_id(iri(active, s, true, false))?);
            }
            KeyKind::Type => {
                if node.types.is_some() {
                    return None;
                }
                let values: &[Value] = match &entry.value {
                    Value::Array(items) if !items.is_empty() => items,
                    single @ Value::String(_) => std::slice::from_ref(single),
                    _ => return None,
                };
                let mut types = Vec::with_capacity(values.len());
                for v in values {
                    let Value::String(s) = v else { return None };
                    // A type with a type-scoped context changes the active context.
                    if active
                        .get(s.as_str())
                        .is_some_and(|d| d.context().is_some())
                    {
                        return None;
                    }
                    types.push(valid_id(iri(active, s, true, true))?);
                }
                node.types = Some(types);
            }
            KeyKind::Property(property, typ) => {
                let values: &[Value] = match &entry.value {
                    Value::Null => continue,
                    Value::Array(items) if items.is_empty() => return None,
                    Value::Array(items) => items,
                    single => std::slice::from_ref(single),
                };
                for v in values {
                    let object = value(v, typ.as_ref(), active, depth)?;
                    node.insert(property.clone(), IndexedObject::new(object, None));
                }
            }
        }
    }
    Some(node)
}

/// One value of a property whose type mapping is `typ`.
fn value(v: &Value, typ: Option<&Type>, active: &Processed, depth: usize) -> Option<Object> {
    Some(match v {
        Value::String(s) => match typ {
            Some(Type::Id) | Some(Type::Vocab) => {
                let vocab = matches!(typ, Some(Type::Vocab));
                let mut reference = Node::new();
                reference.id = Some(valid_id(iri(active, s, true, vocab))?);
                Object::node(reference)
            }
            Some(Type::Iri(datatype)) => Object::Value(LdValue::Literal(
                Literal::String(s.clone()),
                Some(datatype.clone()),
            )),
            None => Object::Value(LdValue::Literal(Literal::String(s.clone()), None)),
            Some(_) => return None,
        },
        Value::Boolean(b) => Object::Value(LdValue::Literal(
            Literal::Boolean(*b),
            typ.and_then(Type::as_iri).cloned(),
        )),
        Value::Number(n) => Object::Value(LdValue::Literal(
            Literal::Number(n.clone()),
            typ.and_then(Type::as_iri).cloned(),
        )),
        Value::Object(o) => {
            let nested = node(o, active, depth + 1)?;
            if nested.id.is_none() && nested.types.is_none() && nested.properties().is_empty() {
                return None;
            }
            Object::node(nested)
        }
        Value::Null | Value::Array(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::{fs, path::PathBuf};

    use serde_json::{Value as Json, json};

    use crate::Contexts;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
    }

    fn contexts() -> Contexts {
        let mut c = Contexts::default();
        for (iri, file) in [
            ("https://coar-notify.net", "coar-notify-1.0.1.json"),
            ("https://purl.org/coar/notify", "coar-notify-0.9.0.json"),
        ] {
            let text = fs::read_to_string(root().join("contexts").join(file)).unwrap();
            c.register(iri, &text).unwrap();
        }
        c
    }

    fn fixtures() -> Vec<(String, Json)> {
        let mut out = Vec::new();
        for dir in ["spec", "spec/0.9.0", "spec/workflows"] {
            for entry in fs::read_dir(root().join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "json") {
                    let doc = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
                    out.push((path.display().to_string(), doc));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The fast path's answer and json-ld's for `doc` (with `base`); the fast one is `None`
    /// when it declined.
    fn both(
        c: &Contexts,
        doc: &Json,
        base: Option<&str>,
    ) -> (
        Option<json_ld::ExpandedDocument>,
        Result<json_ld::ExpandedDocument, String>,
    ) {
        let base = base.map(|b| json_ld::IriBuf::new(b.to_owned()).unwrap());
        let mut value = crate::jsonld::parse(&doc.to_string()).unwrap();
        let context = match &mut value {
            json_ld::syntax::Value::Object(o) => o.remove("@context").next().map(|e| e.value),
            _ => None,
        };
        let active = match context {
            Some(ctx) => match c.processed(ctx, base.as_ref()) {
                Ok(active) => active,
                Err(e) => return (None, Err(e.to_string())),
            },
            None => std::sync::Arc::new(super::Processed::new(base.clone())),
        };
        let fast = super::expand(&value, &active);
        let general = c
            .expand_general(&value, &active, base.as_ref())
            .map_err(|e| e.to_string());
        (fast, general)
    }

    #[test]
    fn takes_every_1_0_1_example_and_agrees_with_json_ld() {
        let c = contexts();
        let mut declined = Vec::new();
        for (name, doc) in fixtures() {
            let (fast, general) = both(&c, &doc, None);
            if fast.is_none() {
                declined.push(name.rsplit('/').next().unwrap_or_default().to_owned());
            }
            if let Some(fast) = fast {
                assert_eq!(Ok(fast), general, "{name}");
            }
        }
        // Only the 0.9.0 examples (their context has scoped definitions) and a workflow
        // example with an empty `ietf:cite-as` (an invalid IRI json-ld keeps) go to json-ld.
        declined.retain(|n| !n.starts_with("0.9.0") && n != "pci-sciety-2.1-announce-review.json");
        assert!(declined.is_empty(), "the fast path declined {declined:?}");
    }

    /// Adds `extra` to the document's top-level `@context`.
    fn add_context(d: &mut Json, extra: Json) {
        let mut list = match d["@context"].take() {
            Json::Array(items) => items,
            Json::Null => Vec::new(),
            one => vec![one],
        };
        list.push(extra);
        d["@context"] = Json::Array(list);
    }

    /// A named edit of a document.
    type Mutation = (&'static str, Box<dyn Fn(&mut Json)>);

    /// Edits that reach each rule of the subset, and each way out of it.
    fn mutations() -> Vec<Mutation> {
        vec![
            (
                "unknown term (vocab)",
                Box::new(|d| d["customTerm"] = json!("x")),
            ),
            (
                "absolute IRI key",
                Box::new(|d| d["http://example.org/p"] = json!("v")),
            ),
            ("undefined prefix", Box::new(|d| d["ex:thing"] = json!("v"))),
            (
                "relative id",
                Box::new(|d| d["object"]["id"] = json!("item/1")),
            ),
            (
                "relative id ..",
                Box::new(|d| d["object"]["id"] = json!("../up?q=1#f")),
            ),
            (
                "blank node id",
                Box::new(|d| d["object"]["id"] = json!("_:b0")),
            ),
            (
                "numbers and booleans",
                Box::new(|d| {
                    d["sorg:position"] = json!(3);
                    d["sorg:ratio"] = json!(1.5e3);
                    d["sorg:flag"] = json!(true);
                }),
            ),
            (
                "typed term with a number",
                Box::new(|d| d["published"] = json!(2026)),
            ),
            (
                "typed date",
                Box::new(|d| d["published"] = json!("2026-11-23T10:00:00Z")),
            ),
            (
                "@id-typed term",
                Box::new(|d| d["url"] = json!("https://example.org/u")),
            ),
            ("@id-typed relative", Box::new(|d| d["url"] = json!("u/1"))),
            (
                "@id-typed object",
                Box::new(|d| d["url"] = json!({"id": "https://example.org/u", "name": "U"})),
            ),
            ("null value", Box::new(|d| d["summary"] = Json::Null)),
            (
                "null in array",
                Box::new(|d| d["summary"] = json!([null, "s"])),
            ),
            ("empty array", Box::new(|d| d["cc"] = json!([]))),
            (
                "nested array",
                Box::new(|d| d["cc"] = json!([["https://a.example/"]])),
            ),
            (
                "value object",
                Box::new(|d| d["summary"] = json!({"@value": "s", "@language": "en"})),
            ),
            (
                "language map",
                Box::new(|d| d["nameMap"] = json!({"en": "x", "fr": "y"})),
            ),
            (
                "list container",
                Box::new(|d| {
                    d["orderedItems"] = json!(["https://a.example/1", "https://a.example/2"])
                }),
            ),
            (
                "nested context",
                Box::new(|d| d["object"]["@context"] = json!({"x": "http://x.example/"})),
            ),
            (
                "top-level language",
                Box::new(|d| add_context(d, json!({"@language": "en"}))),
            ),
            (
                "extra inline context",
                Box::new(|d| {
                    add_context(
                        d,
                        json!({"foo": {"@id": "http://foo.example/", "@type": "@id"}}),
                    );
                    d["foo"] = json!("rel/1");
                }),
            ),
            (
                "scoped context",
                Box::new(|d| {
                    add_context(
                        d,
                        json!({"scoped": {"@id": "http://s.example/", "@context": {"name": "http://s.example/name"}}}),
                    )
                }),
            ),
            (
                "scoped use",
                Box::new(|d| {
                    add_context(
                        d,
                        json!({"scoped": {"@id": "http://s.example/", "@context": {"name": "http://s.example/name"}}}),
                    );
                    d["scoped"] = json!({"name": "n"});
                }),
            ),
            (
                "unknown type",
                Box::new(|d| d["type"] = json!(["Offer", "Frobnicate"])),
            ),
            ("type not a string", Box::new(|d| d["type"] = json!([1]))),
            ("type empty", Box::new(|d| d["type"] = json!([]))),
            (
                "duplicate id",
                Box::new(|d| d["@id"] = json!("urn:uuid:other")),
            ),
            (
                "keyword key",
                Box::new(|d| d["@reverse"] = json!({"as:actor": "https://x.example/"})),
            ),
            (
                "@graph",
                Box::new(|d| d["@graph"] = json!([{"id": "https://g.example/"}])),
            ),
            (
                "only id",
                Box::new(|d| {
                    let id = d["id"].clone();
                    *d = json!({"@context": d["@context"].clone(), "id": id});
                }),
            ),
            ("empty nested object", Box::new(|d| d["object"] = json!({}))),
            (
                "nested only id",
                Box::new(|d| d["object"] = json!({"id": "https://o.example/"})),
            ),
            (
                "invalid IRI id",
                Box::new(|d| d["object"]["id"] = json!("not an iri")),
            ),
            (
                "invalid IRI in @id term",
                Box::new(|d| d["inReplyTo"] = json!("not an iri")),
            ),
            ("keyword-like key", Box::new(|d| d["@foo"] = json!("x"))),
            ("keyword-like value", Box::new(|d| d["url"] = json!("@foo"))),
            (
                "deep nesting",
                Box::new(|d| {
                    let mut inner = json!({"id": "https://deep.example/"});
                    for _ in 0..super::MAX_DEPTH + 2 {
                        inner = json!({"object": inner});
                    }
                    d["context"] = inner;
                }),
            ),
        ]
    }

    /// For every fixture × mutation: when the fast path answers, json-ld gives the same
    /// document; and the fast path declines what it does not cover.
    #[test]
    fn agrees_with_json_ld_on_mutations() {
        // json-ld's recursive futures need a deep stack for the deep-nesting case in debug
        // builds.
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(mutations_agree)
            .unwrap()
            .join()
            .unwrap();
    }

    fn mutations_agree() {
        let c = contexts();
        let mut answered = 0;
        let mut declined = 0;
        for (name, doc) in fixtures() {
            for (what, mutate) in mutations() {
                let mut d = doc.clone();
                mutate(&mut d);
                for base in [None, Some("https://base.example/dir/doc")] {
                    let (fast, general) = both(&c, &d, base);
                    match fast {
                        Some(fast) => {
                            answered += 1;
                            assert_eq!(Ok(fast), general, "{name} with {what}, base {base:?}");
                        }
                        None => declined += 1,
                    }
                }
            }
        }
        // Both sides of the subset are exercised.
        assert!(
            answered > 500 && declined > 500,
            "{answered} answered, {declined} declined"
        );
    }
}
