//! Compose: pick a pattern, fill in only that pattern's fields, see every validation problem
//! next to the field it concerns, preview the JSON-LD, send it through the outbox. Replies to
//! a received Offer come prefilled (`?pattern=accept&reply_to=KEY`).

use std::sync::Arc;

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use coar_model::{Category, Notification, Pattern};
use serde_json::{Map, Value, json};

use super::{Admin, CheckedForm, Form, problem_page, redirect, render, root};
use crate::web::{App, problem::ProblemDetails};

/// One input of the form and where its value goes in the notification.
struct Field {
    /// The form field's name.
    name: &'static str,
    label: &'static str,
    /// The JSON path of the value.
    path: &'static [&'static str],
    help: &'static str,
    /// Several values separated by spaces become an array.
    list: bool,
    /// The value a new form starts with.
    default: &'static str,
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

fn object_type(default: &'static str, help: &'static str) -> Field {
    Field {
        list: true,
        default,
        ..field("object_type", "Object type", &["object", "type"], help)
    }
}

/// The fields of `pattern`, in the order the form shows them.
fn fields(pattern: Pattern) -> Vec<Field> {
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
            Field {
                default: "",
                ..field(
                    "object_id",
                    "Relationship id",
                    &["object", "id"],
                    "An id for the relationship itself; leave empty for a new urn:uuid.",
                )
            },
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

/// The parts of `pattern` that are not the form's to choose.
fn skeleton(pattern: Pattern) -> Value {
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
            doc["object"] = json!({"type": "Relationship", "id": coar_model::new_id()});
        }
        _ => {}
    }
    doc
}

fn pointer(path: &[&str]) -> String {
    path.iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
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

/// The received Offer a reply answers.
async fn offer_of(
    app: &App,
    key: Option<&str>,
) -> Result<Option<(i64, Notification)>, crate::web::problem::ProblemDetails> {
    let Some(key) = key.and_then(|k| k.parse::<i64>().ok()) else {
        return Ok(None);
    };
    let Some(record) = app.store().get(key).await? else {
        return Ok(None);
    };
    Ok(Notification::from_slice(&record.body)
        .ok()
        .filter(|n| {
            matches!(
                n.pattern(),
                Some(Pattern::RequestReview | Pattern::RequestEndorsement)
            )
        })
        .map(|n| (key, n)))
}

/// The form's values for a reply to `offer`.
fn reply_values(pattern: Pattern, offer: &Notification) -> Vec<(&'static str, String)> {
    let a = offer.activity();
    let mut v = Vec::new();
    let mut put = |k: &'static str, value: Option<&str>| {
        if let Some(value) = value {
            v.push((k, value.to_owned()));
        }
    };
    // A retraction goes where the Offer went; every other reply goes back to its sender.
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

/// `GET /admin/compose[?pattern=slug][&reply_to=key]`.
pub async fn form(
    State(app): State<Arc<App>>,
    admin: Admin,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let pattern = q
        .get("pattern")
        .and_then(|s| Pattern::from_slug(s))
        .filter(|p| !p.is_legacy());
    let offer = match offer_of(&app, q.get("reply_to").map(String::as_str)).await {
        Ok(o) => o,
        Err(p) => return problem_page(&app, &admin, p),
    };
    let values: Vec<(String, String)> = match (pattern, &offer) {
        (Some(p), Some((_, offer))) => reply_values(p, offer)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        (Some(p), None) => fields(p)
            .iter()
            .map(|f| (f.name.to_owned(), f.default.to_owned()))
            .collect(),
        _ => Vec::new(),
    };
    let form = Form(values);
    page(
        &app,
        &admin,
        StatusCode::OK,
        pattern,
        offer.as_ref(),
        &form,
        None,
    )
}

/// `POST /admin/compose`: `action=preview` shows the notification and its problems;
/// `action=send` stores a valid one in the outbox.
pub async fn submit(
    State(app): State<Arc<App>>,
    CheckedForm { admin, form }: CheckedForm,
) -> Response {
    let Some(pattern) = form
        .get("pattern")
        .and_then(Pattern::from_slug)
        .filter(|p| !p.is_legacy())
    else {
        return page(
            &app,
            &admin,
            StatusCode::BAD_REQUEST,
            None,
            None,
            &form,
            None,
        );
    };
    let offer = match offer_of(&app, form.get("reply_to")).await {
        Ok(o) => o,
        Err(p) => return problem_page(&app, &admin, p),
    };
    let mut doc = skeleton(pattern);
    for f in fields(pattern) {
        let Some(value) = form.non_empty(f.name) else {
            continue;
        };
        let value = if f.list && value.contains(char::is_whitespace) {
            json!(value.split_whitespace().collect::<Vec<_>>())
        } else {
            json!(value)
        };
        set(&mut doc, f.path, value);
    }
    // An answer's object is what it answers: the id given as inReplyTo, unless set.
    let answers = pattern.category() == Category::Acknowledgement
        || matches!(pattern, Pattern::UndoOffer | Pattern::Unprocessable);
    if answers
        && doc.pointer("/object/id").is_none()
        && let Some(id) = form.non_empty("in_reply_to")
    {
        set(&mut doc, &["object", "id"], json!(id));
    }
    if let Some((_, o)) = &offer
        && (pattern.category() == Category::Acknowledgement || pattern == Pattern::UndoOffer)
    {
        // The Offer itself, as the specification's examples embed it.
        let mut embedded = o.activity().as_map().clone();
        embedded.shift_remove("@context");
        doc["object"] = Value::Object(embedded);
    }
    let outcome = match app.prepare_outbound(doc).await {
        Ok(prepared) => Ok(prepared),
        Err(e @ crate::outbox::OutboxError::NoInbox { .. }) => Err(e.to_string()),
        Err(e) => return problem_page(&app, &admin, ProblemDetails::from(e)),
    };
    let (notification, report) = match outcome {
        Ok(x) => x,
        Err(discovery) => {
            let checked = Checked {
                problems: vec![
                    json!({"pointer": "/target/inbox", "severity": "error", "message": discovery, "rule": "target.inbox.discovery"}),
                ],
                preview: None,
            };
            return page(
                &app,
                &admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(pattern),
                offer.as_ref(),
                &form,
                Some(checked),
            );
        }
    };
    let valid = report.is_valid();
    if form.get("action") == Some("send") && valid {
        return match app.queue_outbound(&notification).await {
            Ok(inserted) => redirect(&format!(
                "{}/messages/{}?done=sent",
                root(&app),
                inserted.record().key
            )),
            Err(e) => problem_page(&app, &admin, ProblemDetails::from(e)),
        };
    }
    let checked = Checked {
        problems: report
            .problems
            .iter()
            .map(|p| json!({"pointer": p.pointer, "severity": p.severity, "message": p.message, "rule": p.rule}))
            .collect(),
        preview: serde_json::to_string_pretty(&notification.to_value()).ok(),
    };
    let status = if valid {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(
        &app,
        &admin,
        status,
        Some(pattern),
        offer.as_ref(),
        &form,
        Some(checked),
    )
}

/// The result of checking a composed notification.
struct Checked {
    problems: Vec<Value>,
    preview: Option<String>,
}

fn page(
    app: &App,
    admin: &Admin,
    status: StatusCode,
    pattern: Option<Pattern>,
    offer: Option<&(i64, Notification)>,
    form: &Form,
    checked: Option<Checked>,
) -> Response {
    let fields = pattern.map(fields).unwrap_or_default();
    let problems = checked
        .as_ref()
        .map(|c| c.problems.clone())
        .unwrap_or_default();
    // Each problem goes to the field it is about: the field at or above its pointer, else
    // the first field below it (a missing `object` is the first object field's business).
    let owner = |ptr: &str| -> Option<&'static str> {
        fields
            .iter()
            .filter(|f| {
                let fp = pointer(f.path);
                ptr == fp || ptr.starts_with(&format!("{fp}/"))
            })
            .max_by_key(|f| f.path.len())
            .or_else(|| {
                fields
                    .iter()
                    .find(|f| pointer(f.path).starts_with(&format!("{ptr}/")))
            })
            .map(|f| f.name)
    };
    let mut general = Vec::new();
    let mut by_field: std::collections::HashMap<&str, Vec<Value>> = Default::default();
    for p in &problems {
        let ptr = p["pointer"].as_str().unwrap_or_default();
        match owner(ptr) {
            Some(name) => by_field.entry(name).or_default().push(p.clone()),
            None => general.push(p.clone()),
        }
    }
    let field_values: Vec<Value> = fields
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "label": f.label,
                "help": f.help,
                "value": form.get(f.name).unwrap_or_default(),
                "problems": by_field.get(f.name).cloned().unwrap_or_default(),
            })
        })
        .collect();
    let errors = problems.iter().filter(|p| p["severity"] == "error").count();
    render(
        app,
        Some(admin),
        status,
        "compose.html",
        json!({
            "nav": "compose",
            "patterns": coar_model::Pattern::ALL.iter().filter(|p| !p.is_legacy()).map(|p| json!({"slug": p.slug(), "title": p.title()})).collect::<Vec<_>>(),
            "pattern": pattern.map(|p| json!({"slug": p.slug(), "title": p.title()})),
            "fields": field_values,
            "general": general,
            "checked": checked.is_some(),
            "errors": errors,
            "preview": checked.and_then(|c| c.preview),
            "reply_to": offer.map(|(k, _)| k),
            "offer": offer.map(|(k, n)| json!({"key": k, "id": n.activity().id(), "title": n.pattern().map(|p| p.title())})),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
            map.insert(
                "@context".into(),
                json!(coar_model::vocab::STANDARD_CONTEXT),
            );
            map.insert("id".into(), json!(coar_model::new_id()));
            map.insert("origin".into(), json!({"id": "https://me.example/", "inbox": "https://me.example/inbox", "type": "Service"}));
            map.insert(
                "actor".into(),
                json!({"id": "https://me.example/", "type": "Service"}),
            );
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
}
