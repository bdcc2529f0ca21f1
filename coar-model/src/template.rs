//! Templates of every 1.0.1 pattern: the values a person (a form, a command line) gives to
//! compose one, where each goes in the document, and what a reply to a received Offer takes
//! from it. The admin dashboard's compose page and `coar-notify send --pattern` both build
//! from these, so they offer the same fields and fill them the same way.
//!
//! A template leaves `@context`, `id`, `origin` and `actor` to the sender
//! ([`crate::complete_outbound`] fills them from a service's identity).

use serde_json::{Map, Value, json};

use crate::{Category, Notification, Pattern};

/// One value of a template and where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Its name, as a form field or `--set NAME=VALUE`.
    pub name: &'static str,
    /// A label for people.
    pub label: &'static str,
    /// The JSON path of the value.
    pub path: &'static [&'static str],
    /// What to give.
    pub help: &'static str,
    /// Several values separated by spaces become an array.
    pub list: bool,
    /// The value a new notification starts with.
    pub default: &'static str,
}

const fn field(
    name: &'static str,
    label: &'static str,
    path: &'static [&'static str],
    help: &'static str,
) -> Field {
    Field {
        name,
        label,
        path,
        help,
        list: false,
        default: "",
    }
}

const TARGET_ID: Field = field(
    "target_id",
    "Target service",
    &["target", "id"],
    "The id of the service you address, e.g. https://review.example/",
);
const TARGET_INBOX: Field = field(
    "target_inbox",
    "Target inbox",
    &["target", "inbox"],
    "Its LDN inbox. Leave empty to discover it from the target's id.",
);
const IN_REPLY_TO: Field = field(
    "in_reply_to",
    "In reply to",
    &["inReplyTo"],
    "The id of the notification this answers (an Offer's urn:uuid:…).",
);
const SUMMARY: Field = field(
    "summary",
    "Summary",
    &["summary"],
    "A short human-readable text.",
);
const OBJECT_CITE_AS: Field = field(
    "object_cite_as",
    "Object cite-as",
    &["object", "ietf:cite-as"],
    "A persistent identifier of the object, e.g. a DOI URL.",
);
const CONTEXT_ID: Field = field(
    "context_id",
    "About (context)",
    &["context", "id"],
    "The resource this is about, e.g. the preprint's landing page.",
);
const CONTEXT_CITE_AS: Field = field(
    "context_cite_as",
    "Context cite-as",
    &["context", "ietf:cite-as"],
    "A persistent identifier of that resource.",
);

const fn object_type(default: &'static str, help: &'static str) -> Field {
    Field {
        list: true,
        default,
        ..field("object_type", "Object type", &["object", "type"], help)
    }
}

/// The fields of `pattern`, in the order a form shows them.
pub fn fields(pattern: Pattern) -> Vec<Field> {
    use Pattern as P;
    let mut out = vec![TARGET_ID, TARGET_INBOX];
    match pattern {
        P::RequestReview | P::RequestEndorsement | P::RequestIngest => out.extend([
            field(
                "object_id",
                "Resource landing page",
                &["object", "id"],
                "The landing page of the resource you want reviewed or endorsed.",
            ),
            OBJECT_CITE_AS,
            field(
                "item_id",
                "Item URL",
                &["object", "ietf:item", "id"],
                "The file itself, e.g. the PDF.",
            ),
            Field {
                default: "application/pdf",
                ..field(
                    "item_media_type",
                    "Item media type",
                    &["object", "ietf:item", "mediaType"],
                    "The item's media type.",
                )
            },
            SUMMARY,
        ]),
        P::Accept | P::Reject | P::TentativeAccept | P::TentativeReject | P::UndoOffer => out
            .extend([
                IN_REPLY_TO,
                field(
                    "object_id",
                    "The Offer's id",
                    &["object", "id"],
                    "The Offer answered (replying from a received Offer embeds it whole).",
                ),
                object_type("Offer coar-notify:ReviewAction", "The Offer's types."),
                SUMMARY,
            ]),
        P::AnnounceReview
        | P::AnnounceEndorsement
        | P::AnnounceServiceResult
        | P::AnnounceIngest => {
            let (label, default) = match pattern {
                P::AnnounceReview => ("The review's URL", "Page sorg:Review"),
                P::AnnounceEndorsement => ("The endorsement's URL", "Page sorg:WebPage"),
                _ => ("The result's URL", "Page sorg:WebPage"),
            };
            out.extend([
                IN_REPLY_TO,
                field(
                    "object_id",
                    label,
                    &["object", "id"],
                    "Where the result is published.",
                ),
                OBJECT_CITE_AS,
                object_type(default, "Its types, separated by spaces."),
                CONTEXT_ID,
                CONTEXT_CITE_AS,
                SUMMARY,
            ]);
        }
        P::AnnounceRelationship => out.extend([
            IN_REPLY_TO,
            field(
                "object_id",
                "Relationship id",
                &["object", "id"],
                "An id for the relationship itself; leave empty for a new urn:uuid.",
            ),
            field(
                "subject",
                "Subject",
                &["object", "as:subject"],
                "The resource that relates.",
            ),
            field(
                "relationship",
                "Relationship",
                &["object", "as:relationship"],
                "The relation's IRI, e.g. http://purl.org/vocab/frbr/core#supplement",
            ),
            field(
                "related",
                "Object",
                &["object", "as:object"],
                "The related resource.",
            ),
            field(
                "context_id",
                "Context",
                &["context", "id"],
                "The related resource again (the specification asks for it as context).",
            ),
            SUMMARY,
        ]),
        P::Unprocessable => out.extend([
            IN_REPLY_TO,
            field(
                "object_id",
                "Notification flagged",
                &["object", "id"],
                "The id of the notification that could not be processed.",
            ),
            field(
                "summary",
                "Reason",
                &["summary"],
                "Why it could not be processed.",
            ),
        ]),
    }
    out
}

/// The parts of `pattern` that are not the sender's to choose.
pub fn skeleton(pattern: Pattern) -> Value {
    use Pattern as P;
    let mut doc = json!({"type": pattern.type_value(), "target": {"type": "Service"}});
    match pattern {
        P::RequestReview | P::RequestEndorsement | P::RequestIngest => {
            doc["object"] = json!({
                "type": ["Page", "sorg:AboutPage"],
                "ietf:item": {"type": ["Article", "sorg:ScholarlyArticle"]},
            });
        }
        P::AnnounceRelationship => {
            doc["object"] = json!({"type": "Relationship", "id": crate::new_id()});
        }
        _ => {}
    }
    doc
}

/// The values a reply of `pattern` takes from the received `offer`: its sender as target
/// (an Undo goes where the Offer went), `inReplyTo`, and what the Offer was about.
pub fn reply_values(pattern: Pattern, offer: &Notification) -> Vec<(&'static str, String)> {
    let a = offer.activity();
    let mut v = Vec::new();
    let mut put = |k: &'static str, value: Option<&str>| {
        if let Some(value) = value {
            v.push((k, value.to_owned()));
        }
    };
    let to = if pattern == Pattern::UndoOffer {
        a.target()
    } else {
        a.origin()
    };
    put("target_id", to.and_then(|o| o.id()));
    put("target_inbox", to.and_then(|o| o.inbox()));
    put("in_reply_to", a.id());
    match pattern.category() {
        Category::Announcement => {
            put("context_id", a.object().and_then(|o| o.id()));
            put("context_cite_as", a.object().and_then(|o| o.cite_as()));
        }
        _ => {
            put("object_id", a.id());
            v.push(("object_type", a.types().join(" ")));
        }
    }
    v
}

/// Composes a notification of `pattern` from the values `value` gives by field name (empty
/// ones skipped), replying to `offer` if given: an acknowledgement or Undo embeds the Offer
/// as its object, as the specification's examples do; an answer without an object names
/// what it answers. `@context`, `id`, `origin` and `actor` are left to the sender.
pub fn compose<'a>(
    pattern: Pattern,
    value: impl Fn(&str) -> Option<&'a str>,
    offer: Option<&Notification>,
) -> Value {
    let mut doc = skeleton(pattern);
    for f in fields(pattern) {
        let Some(given) = value(f.name).map(str::trim).filter(|v| !v.is_empty()) else {
            continue;
        };
        let given = if f.list && given.contains(char::is_whitespace) {
            json!(given.split_whitespace().collect::<Vec<_>>())
        } else {
            json!(given)
        };
        set(&mut doc, f.path, given);
    }
    let answers = pattern.category() == Category::Acknowledgement
        || matches!(pattern, Pattern::UndoOffer | Pattern::Unprocessable);
    if answers
        && doc.pointer("/object/id").is_none()
        && let Some(id) = value("in_reply_to")
            .map(str::trim)
            .filter(|v| !v.is_empty())
    {
        set(&mut doc, &["object", "id"], json!(id));
    }
    if let Some(o) = offer
        && (pattern.category() == Category::Acknowledgement || pattern == Pattern::UndoOffer)
    {
        let mut embedded = o.activity().as_map().clone();
        embedded.shift_remove("@context");
        doc["object"] = Value::Object(embedded);
    }
    doc
}

/// The JSON pointer of a field's path.
pub fn pointer(path: &[&str]) -> String {
    path.iter()
        .map(|s| format!("/{}", crate::pointer_token(s)))
        .collect()
}

fn set(doc: &mut Value, path: &[&str], value: Value) {
    let mut at = doc;
    for (i, key) in path.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Some(map) = at.as_object_mut() else {
            return;
        };
        if i + 1 == path.len() {
            map.insert((*key).to_owned(), value);
            return;
        }
        at = map.entry(*key).or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixtures::request_review as offer;

    /// Every pattern's form, filled with plausible values, builds a notification whose only
    /// problems are the ones the form cannot know (none), so that a person can send each.
    #[test]
    fn every_pattern_has_a_complete_form() {
        for p in Pattern::ALL.iter().copied().filter(|p| !p.is_legacy()) {
            let mut doc = skeleton(p);
            for f in fields(p) {
                let value = match f.name {
                    "item_media_type" => "application/pdf".to_owned(),
                    "object_type" => f.default.to_owned(),
                    "in_reply_to" => "urn:uuid:0370c0fb-bb78-4a9b-87f5-bed307a509dd".to_owned(),
                    "summary" => "A summary".to_owned(),
                    "context_id" | "related" => "https://repo.example/item/2".to_owned(),
                    "object_id" if p == Pattern::AnnounceRelationship => continue,
                    "object_id"
                        if p.category() == Category::Acknowledgement
                            || matches!(p, Pattern::Unprocessable | Pattern::UndoOffer) =>
                    {
                        "urn:uuid:0370c0fb-bb78-4a9b-87f5-bed307a509dd".to_owned()
                    }
                    "relationship" => "http://purl.org/vocab/frbr/core#supplement".to_owned(),
                    other => format!("https://example.org/{other}"),
                };
                let value = if f.list && value.contains(' ') {
                    json!(value.split(' ').collect::<Vec<_>>())
                } else {
                    json!(value)
                };
                set(&mut doc, f.path, value);
            }
            let map = doc.as_object_mut().unwrap();
            map.insert("@context".into(), json!(crate::vocab::STANDARD_CONTEXT));
            map.insert("id".into(), json!(crate::new_id()));
            map.insert("origin".into(), json!({"id": "https://me.example/", "inbox": "https://me.example/inbox", "type": "Service"}));
            map.insert(
                "actor".into(),
                json!({"id": "https://me.example/", "type": "Service"}),
            );
            let answers_an_offer =
                p.category() == Category::Acknowledgement || p == Pattern::UndoOffer;
            if answers_an_offer {
                // The form names the Offer; the whole Offer comes from where it is stored.
                let n = Notification::from_value(doc.clone()).unwrap();
                let report = n.validate();
                assert!(
                    report.errors().all(|e| e.rule == "object.offer.complete"),
                    "{p:?}: {:?}",
                    report.problems
                );
                let mut stored = offer().activity().as_map().clone();
                stored.insert(
                    "id".into(),
                    json!("urn:uuid:0370c0fb-bb78-4a9b-87f5-bed307a509dd"),
                );
                let stored = Notification::from_value(Value::Object(stored)).unwrap();
                assert!(crate::embed_offer(&mut doc, &stored), "{p:?}");
            }
            let n = Notification::from_value(doc).unwrap();
            assert_eq!(n.pattern(), Some(p));
            let report = n.validate();
            assert!(report.is_valid(), "{p:?}: {:?}", report.problems);
        }
    }

    #[test]
    fn pointers_escape_slashes_and_tildes() {
        assert_eq!(
            pointer(&["object", "ietf:item", "id"]),
            "/object/ietf:item/id"
        );
        assert_eq!(pointer(&["a/b", "c~d"]), "/a~1b/c~0d");
    }

    #[test]
    fn replies_take_their_target_and_object_from_the_offer() {
        let offer = offer();
        let values = reply_values(Pattern::Accept, &offer);
        let get = |k: &str| values.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("target_id").as_deref(),
            offer.origin().and_then(|o| o.id())
        );
        assert_eq!(get("in_reply_to").as_deref(), offer.id());
        let undo = reply_values(Pattern::UndoOffer, &offer);
        assert_eq!(
            undo.iter()
                .find(|(n, _)| *n == "target_id")
                .map(|(_, v)| v.as_str()),
            offer.target().and_then(|o| o.id())
        );
        let doc = compose(Pattern::Accept, |_| None, Some(&offer));
        assert_eq!(doc["object"]["id"].as_str(), offer.id());
        assert!(doc["object"].get("@context").is_none());
        assert_eq!(pointer(&["object", "ietf:cite-as"]), "/object/ietf:cite-as");
    }
}
