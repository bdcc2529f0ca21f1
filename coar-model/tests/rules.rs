//! One test per MUST rule: break exactly that rule in a valid example and get exactly that
//! error, at exactly that pointer, and nothing else. SHOULD rules give warnings only.

use std::{fs, path::PathBuf};

use coar_model::{Notification, Severity};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/spec")
        .join(format!("{name}.json"));
    serde_json::from_slice(&fs::read(&path).unwrap()).unwrap()
}

enum Op {
    Remove(&'static str),
    Set(&'static str, Value),
}

fn apply(mut doc: Value, op: &Op) -> Value {
    let (pointer, value) = match op {
        Op::Remove(p) => (*p, None),
        Op::Set(p, v) => (*p, Some(v.clone())),
    };
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let last = last.replace("~1", "/").replace("~0", "~");
    let target = doc
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    match (target, value) {
        (Value::Object(m), None) => {
            assert!(m.shift_remove(&last).is_some(), "nothing at {pointer}");
        }
        (Value::Object(m), Some(v)) => {
            m.insert(last, v);
        }
        (Value::Array(a), Some(v)) => a[last.parse::<usize>().unwrap()] = v,
        _ => panic!("cannot apply at {pointer}"),
    }
    doc
}

fn problems(doc: Value, severity: Severity) -> Vec<(String, String)> {
    Notification::from_value(doc)
        .unwrap()
        .validate()
        .problems
        .into_iter()
        .filter(|p| p.severity == severity)
        .map(|p| (p.rule.to_owned(), p.pointer))
        .collect()
}

fn check(cases: Vec<(&str, Op, &str, &str)>, severity: Severity) {
    let mut failures = Vec::new();
    for (name, op, rule, pointer) in cases {
        let base = fixture(name);
        assert!(
            problems(base.clone(), Severity::Error).is_empty(),
            "{name} is not valid"
        );
        let got = problems(apply(base, &op), severity);
        let want = vec![(rule.to_owned(), pointer.to_owned())];
        if got != want {
            failures.push(format!("{name} / {rule}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn each_must_rule_is_an_error_at_its_pointer() {
    use Op::*;
    let rr = "request-review";
    let ar = "announce-review";
    let rel = "announce-relationship";
    check(
        vec![
            // @context
            (rr, Remove("/@context"), "@context.required", "/@context"),
            (
                rr,
                Set("/@context", json!(5)),
                "@context.shape",
                "/@context",
            ),
            (
                rr,
                Set("/@context", json!(["https://coar-notify.net"])),
                "@context.activitystreams",
                "/@context",
            ),
            (
                rr,
                Set(
                    "/@context",
                    json!(["https://www.w3.org/ns/activitystreams"]),
                ),
                "@context.notify",
                "/@context",
            ),
            (
                rr,
                Set(
                    "/@context",
                    json!([
                        "https://www.w3.org/ns/activitystreams",
                        "https://coar-notify.net",
                        "https://purl.org/coar/notify"
                    ]),
                ),
                "@context.notify",
                "/@context",
            ),
            // id
            (rr, Remove("/id"), "id.required", "/id"),
            (rr, Set("/id", json!("not a uri")), "id.uri", "/id"),
            (rr, Set("/id", json!(42)), "id.uri", "/id"),
            (
                rr,
                Set("/id", json!(format!("urn:uuid:{}", "a".repeat(9000)))),
                "id.uri",
                "/id",
            ),
            // type
            (rr, Remove("/type"), "type.required", "/type"),
            (rr, Set("/type", json!([])), "type.required", "/type"),
            (
                "accept",
                Set("/type", json!(["Accept", 5])),
                "type.string",
                "/type/1",
            ),
            (rr, Set("/type", json!("Page")), "type.activity", "/type"),
            (rr, Set("/type", json!(["Offer"])), "type.pattern", "/type"),
            // origin
            (rr, Remove("/origin"), "origin.required", "/origin"),
            (
                rr,
                Set("/origin", json!("https://example.org")),
                "origin.required",
                "/origin",
            ),
            (rr, Remove("/origin/id"), "origin.id.required", "/origin/id"),
            (
                rr,
                Set(
                    "/origin/id",
                    json!("urn:uuid:0370c0fb-bb78-4a9b-87f5-bed307a509dd"),
                ),
                "origin.id.http-uri",
                "/origin/id",
            ),
            (
                rr,
                Remove("/origin/type"),
                "origin.type.required",
                "/origin/type",
            ),
            (
                rr,
                Set("/origin/inbox", json!("mailto:inbox@example.org")),
                "origin.inbox.http-uri",
                "/origin/inbox",
            ),
            // target
            (rr, Remove("/target"), "target.required", "/target"),
            (rr, Remove("/target/id"), "target.id.required", "/target/id"),
            (
                rr,
                Set("/target/id", json!("ftp://example.org")),
                "target.id.http-uri",
                "/target/id",
            ),
            (
                rr,
                Remove("/target/type"),
                "target.type.required",
                "/target/type",
            ),
            (
                rr,
                Remove("/target/inbox"),
                "target.inbox.required",
                "/target/inbox",
            ),
            (
                rr,
                Set("/target/inbox", json!("/relative/inbox")),
                "target.inbox.http-uri",
                "/target/inbox",
            ),
            // object
            (rr, Remove("/object"), "object.required", "/object"),
            (rr, Set("/object", json!(7)), "object.required", "/object"),
            (rr, Remove("/object/id"), "object.id.required", "/object/id"),
            (
                "unprocessable",
                Set("/object/id", json!("no scheme")),
                "object.id.uri",
                "/object/id",
            ),
            // actor
            (
                rr,
                Set("/actor", json!("https://example.org")),
                "actor.shape",
                "/actor",
            ),
            (rr, Remove("/actor/id"), "actor.id.required", "/actor/id"),
            (
                rr,
                Set("/actor/id", json!("no scheme")),
                "actor.id.uri",
                "/actor/id",
            ),
            (
                rr,
                Remove("/actor/type"),
                "actor.type.required",
                "/actor/type",
            ),
            (
                rr,
                Set("/actor/type", json!("Robot")),
                "actor.type.allowed",
                "/actor/type",
            ),
            (
                rr,
                Set("/actor/name", json!(["a"])),
                "actor.name.string",
                "/actor/name",
            ),
            // inReplyTo, summary
            (
                ar,
                Set("/inReplyTo", json!("not a uri")),
                "inReplyTo.uri",
                "/inReplyTo",
            ),
            (
                "reject",
                Set("/summary", json!(5)),
                "summary.string",
                "/summary",
            ),
            // the context property
            (
                rr,
                Set("/context", json!({"id": "no scheme"})),
                "context.id.uri",
                "/context/id",
            ),
            (ar, Set("/context", json!(5)), "context.shape", "/context"),
            // requests
            (
                rr,
                Set(
                    "/object/id",
                    json!("urn:uuid:0370c0fb-bb78-4a9b-87f5-bed307a509dd"),
                ),
                "object.id.http-uri",
                "/object/id",
            ),
            (
                rr,
                Remove("/object/type"),
                "object.type.required",
                "/object/type",
            ),
            (
                rr,
                Set("/object/type", json!("sorg:AboutPage")),
                "object.type.as2",
                "/object/type",
            ),
            (
                rr,
                Set("/object/ietf:cite-as", json!("not a uri")),
                "cite-as.uri",
                "/object/ietf:cite-as",
            ),
            (
                rr,
                Remove("/object/ietf:item"),
                "item.required",
                "/object/ietf:item",
            ),
            (
                rr,
                Remove("/object/ietf:item/id"),
                "item.id.required",
                "/object/ietf:item/id",
            ),
            (
                rr,
                Set("/object/ietf:item/id", json!("urn:x:y")),
                "item.id.http-uri",
                "/object/ietf:item/id",
            ),
            (
                rr,
                Remove("/object/ietf:item/type"),
                "item.type.required",
                "/object/ietf:item/type",
            ),
            (
                rr,
                Set("/object/ietf:item/type", json!(["sorg:ScholarlyArticle"])),
                "item.type.as2",
                "/object/ietf:item/type",
            ),
            (
                rr,
                Remove("/object/ietf:item/mediaType"),
                "item.media-type.required",
                "/object/ietf:item/mediaType",
            ),
            (
                rr,
                Set("/object/ietf:item/mediaType", json!("pdf")),
                "item.media-type.valid",
                "/object/ietf:item/mediaType",
            ),
            (
                "request-endorsement",
                Remove("/object/ietf:item"),
                "item.required",
                "/object/ietf:item",
            ),
            // acknowledgements and Undo
            (
                "accept",
                Remove("/inReplyTo"),
                "inReplyTo.required",
                "/inReplyTo",
            ),
            (
                "reject",
                Remove("/inReplyTo"),
                "inReplyTo.required",
                "/inReplyTo",
            ),
            (
                "tentative-accept",
                Remove("/inReplyTo"),
                "inReplyTo.required",
                "/inReplyTo",
            ),
            (
                "tentative-reject",
                Remove("/inReplyTo"),
                "inReplyTo.required",
                "/inReplyTo",
            ),
            (
                "undo-offer",
                Remove("/inReplyTo"),
                "inReplyTo.required",
                "/inReplyTo",
            ),
            (
                "accept",
                Set(
                    "/inReplyTo",
                    json!("urn:uuid:00000000-0000-4000-8000-000000000000"),
                ),
                "inReplyTo.matches-object",
                "/inReplyTo",
            ),
            (
                "undo-offer",
                Set(
                    "/inReplyTo",
                    json!("urn:uuid:00000000-0000-4000-8000-000000000000"),
                ),
                "inReplyTo.matches-object",
                "/inReplyTo",
            ),
            // A reply's object is the whole Offer it answers.
            (
                "accept",
                Remove("/object/origin"),
                "object.offer.complete",
                "/object/origin",
            ),
            (
                "reject",
                Remove("/object/target"),
                "object.offer.complete",
                "/object/target",
            ),
            (
                "tentative-accept",
                Remove("/object/object"),
                "object.offer.complete",
                "/object/object",
            ),
            (
                "tentative-reject",
                Set(
                    "/object/type",
                    json!(["Announce", "coar-notify:EndorsementAction"]),
                ),
                "object.offer.complete",
                "/object/type",
            ),
            (
                "undo-offer",
                Remove("/object/origin"),
                "object.offer.complete",
                "/object/origin",
            ),
            // Unprocessable
            (
                "unprocessable",
                Remove("/inReplyTo"),
                "inReplyTo.required",
                "/inReplyTo",
            ),
            (
                "unprocessable",
                Remove("/summary"),
                "summary.required",
                "/summary",
            ),
            // announcements
            (ar, Remove("/context"), "context.required", "/context"),
            (
                "announce-endorsement",
                Remove("/context"),
                "context.required",
                "/context",
            ),
            (
                "announce-resource",
                Remove("/context"),
                "context.required",
                "/context",
            ),
            (rel, Remove("/context"), "context.required", "/context"),
            (
                ar,
                Remove("/context/id"),
                "context.id.required",
                "/context/id",
            ),
            (
                ar,
                Set(
                    "/context/id",
                    json!("urn:uuid:0370c0fb-bb78-4a9b-87f5-bed307a509dd"),
                ),
                "context.id.http-uri",
                "/context/id",
            ),
            (
                ar,
                Set("/context/type", json!(["sorg:AboutPage"])),
                "context.type.as2",
                "/context/type",
            ),
            (
                rel,
                Set("/context/ietf:item/mediaType", json!(3)),
                "item.media-type.valid",
                "/context/ietf:item/mediaType",
            ),
            (
                ar,
                Remove("/object/type"),
                "object.type.required",
                "/object/type",
            ),
            (
                ar,
                Set("/object/type", json!(["sorg:Review"])),
                "object.type.as2",
                "/object/type",
            ),
            (
                "announce-resource",
                Remove("/object/type"),
                "object.type.required",
                "/object/type",
            ),
            // Announce Relationship
            (
                rel,
                Remove("/object/type"),
                "object.type.required",
                "/object/type",
            ),
            (
                rel,
                Remove("/object/as:subject"),
                "relationship.subject.required",
                "/object/as:subject",
            ),
            (
                rel,
                Set("/object/as:subject", json!("no scheme")),
                "relationship.subject.uri",
                "/object/as:subject",
            ),
            (
                rel,
                Remove("/object/as:relationship"),
                "relationship.relationship.required",
                "/object/as:relationship",
            ),
            (
                rel,
                Set("/object/as:relationship", json!(1)),
                "relationship.relationship.uri",
                "/object/as:relationship",
            ),
            (
                rel,
                Remove("/object/as:object"),
                "relationship.object.required",
                "/object/as:object",
            ),
            (
                rel,
                Set("/object/as:object", json!("no scheme")),
                "relationship.object.uri",
                "/object/as:object",
            ),
            (
                rel,
                Set("/context/id", json!("https://example.org/elsewhere")),
                "context.id.matches-relationship",
                "/context/id",
            ),
        ],
        Severity::Error,
    );
}

#[test]
fn each_should_rule_is_only_a_warning() {
    use Op::*;
    let rr = "request-review";
    check(
        vec![
            (rr, Remove("/actor"), "actor.recommended", "/actor"),
            (
                rr,
                Remove("/origin/inbox"),
                "origin.inbox.recommended",
                "/origin/inbox",
            ),
            (
                rr,
                Set("/origin/type", json!("Organization")),
                "origin.type.service",
                "/origin/type",
            ),
            (
                rr,
                Set("/target/type", json!(["Application"])),
                "target.type.service",
                "/target/type",
            ),
            (
                rr,
                Set("/id", json!("tag:example.org,2026:1")),
                "id.recommended-form",
                "/id",
            ),
            (
                rr,
                Set("/object/type", json!("Page")),
                "object.type.schema-org",
                "/object/type",
            ),
            (
                rr,
                Remove("/object/ietf:cite-as"),
                "cite-as.recommended",
                "/object/ietf:cite-as",
            ),
            (
                rr,
                Set("/object/ietf:cite-as", json!("doi:10.5555/1")),
                "cite-as.http-uri",
                "/object/ietf:cite-as",
            ),
            (
                rr,
                Set("/object/ietf:item/type", json!("Article")),
                "item.type.schema-org",
                "/object/ietf:item/type",
            ),
            (
                "announce-review",
                Remove("/object/ietf:cite-as"),
                "cite-as.recommended",
                "/object/ietf:cite-as",
            ),
        ],
        Severity::Warning,
    );
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let doc = json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://coar-notify.net"],
        "type": ["Offer", "coar-notify:ReviewAction"],
        "origin": {"id": "not-http:x", "type": "Service"},
        "target": {"id": "https://t.example", "type": "Service"},
        "object": {"id": "https://r.example/1", "type": "Page"},
    });
    let report = Notification::from_value(doc).unwrap().validate();
    let errors: Vec<(&str, &str)> = report
        .errors()
        .map(|p| (p.rule, p.pointer.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            ("id.required", "/id"),
            ("origin.id.http-uri", "/origin/id"),
            ("target.inbox.required", "/target/inbox"),
            ("item.required", "/object/ietf:item"),
        ]
    );
    assert!(report.warnings().count() >= 3, "{report}");
}

#[test]
fn pointers_escape_slashes_and_tildes() {
    let mut doc = fixture("request-review");
    doc["object"]["a/b~c"] = json!(1);
    let n = Notification::from_value(doc).unwrap();
    assert!(n.validate().is_valid());
    assert_eq!(coar_model::pointer_token("a/b~c"), "a~1b~0c");
}

#[test]
fn tolerant_of_representation() {
    // Keys in another order, type as an array in another order with full IRIs, the http
    // spelling of the context with a trailing slash, an extra property: same meaning.
    let mut doc = fixture("accept");
    doc["type"] = json!(["https://www.w3.org/ns/activitystreams#Accept"]);
    doc["@context"] = json!([
        "http://www.w3.org/ns/activitystreams",
        "http://coar-notify.net/"
    ]);
    doc["x-extra"] = json!({"kept": true});
    let map = doc.as_object().unwrap();
    let reversed: serde_json::Map<String, Value> = map
        .iter()
        .rev()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let n = Notification::from_value(Value::Object(reversed.clone())).unwrap();
    assert_eq!(n.pattern(), Some(coar_model::Pattern::Accept));
    assert!(n.validate().is_valid(), "{}", n.validate());
    assert_eq!(n.to_value(), Value::Object(reversed));
    assert_eq!(n.as_map().get("x-extra"), Some(&json!({"kept": true})));
}

#[test]
fn what_claims_coar_notify() {
    let claims = |doc: Value| Notification::from_value(doc).unwrap().claims_coar();
    assert!(claims(fixture("request-review")));
    // The 0.9.0 context, a COAR type by prefix or by IRI.
    assert!(claims(
        json!({"@context": ["https://www.w3.org/ns/activitystreams", "https://purl.org/coar/notify"], "type": "Offer"})
    ));
    assert!(claims(
        json!({"@context": "https://www.w3.org/ns/activitystreams", "type": ["Offer", "coar-notify:NoSuchAction"]})
    ));
    assert!(claims(
        json!({"type": ["Offer", "http://coar-notify.net/specification/vocabulary/ReviewAction"]})
    ));
    // Plain ActivityStreams, and a look-alike host, do not.
    assert!(!claims(
        json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Like"})
    ));
    assert!(!claims(
        json!({"@context": "https://coar-notify.net.evil.example", "type": "Like"})
    ));
}

#[test]
fn the_common_rules_leave_out_only_the_known_pattern() {
    let mut future = fixture("request-review");
    future["type"] = json!(["Offer", "coar-notify:NoSuchAction"]);
    let n = Notification::from_value(future.clone()).unwrap();
    assert!(!n.validate().is_valid());
    assert!(n.validate_common().is_valid(), "{}", n.validate_common());
    future.as_object_mut().unwrap().remove("origin");
    let n = Notification::from_value(future).unwrap();
    assert!(
        n.validate_common()
            .errors()
            .any(|p| p.rule == "origin.required"),
        "{}",
        n.validate_common()
    );
}

#[test]
fn a_reply_that_names_its_offer_only_by_id_is_refused_and_can_be_completed() {
    let accept = fixture("accept");
    let offer_id = accept["object"]["id"].as_str().unwrap().to_owned();
    let mut bare = accept.clone();
    bare["object"] = json!({"id": offer_id, "type": ["Offer", "coar-notify:EndorsementAction"]});
    let mut errors = problems(bare.clone(), Severity::Error);
    errors.sort();
    assert_eq!(
        errors,
        [
            (
                "object.offer.complete".to_owned(),
                "/object/object".to_owned()
            ),
            (
                "object.offer.complete".to_owned(),
                "/object/origin".to_owned()
            ),
            (
                "object.offer.complete".to_owned(),
                "/object/target".to_owned()
            ),
        ]
    );
    let mut reference = accept.clone();
    reference["object"] = json!(offer_id);
    assert_eq!(
        problems(reference.clone(), Severity::Error),
        [("object.offer.complete".to_owned(), "/object".to_owned())]
    );
    // What names the Offer, and filling it in from the Offer itself.
    assert_eq!(coar_model::offer_wanted(&bare), Some(offer_id.as_str()));
    assert_eq!(coar_model::offer_wanted(&accept), None);
    assert_eq!(coar_model::offer_wanted(&fixture("request-review")), None);
    let mut offer = accept["object"].clone();
    offer["@context"] = accept["@context"].clone();
    let offer = Notification::from_value(offer).unwrap();
    let mut other = fixture("request-review");
    other["id"] = json!("urn:uuid:00000000-0000-4000-8000-0000000000aa");
    let other = Notification::from_value(other).unwrap();
    let mut filled = reference.clone();
    assert!(
        !coar_model::embed_offer(&mut filled, &other),
        "not the Offer it names"
    );
    assert!(coar_model::embed_offer(&mut filled, &offer));
    assert_eq!(filled, accept);
    assert!(
        !coar_model::embed_offer(&mut filled, &offer),
        "already whole"
    );
    // 0.9.0 replies embedded only {id, object, type}: still valid under their own rules.
    let legacy = fixture("0.9.0/accept");
    assert!(problems(legacy, Severity::Error).is_empty());
}
