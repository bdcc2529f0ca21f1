//! The receiver core over the spec payloads and hostile input; JSON-LD → RDF → Turtle → RDF
//! round trips; Turtle POSTs read back as compact JSON-LD.

use std::{fs, path::PathBuf};

use coar_ldn::{
    BodyFormat, Contexts, RdfFormat, ReceiveError, Receiver, ReceiverConfig, rdf::Dataset,
};
use http::StatusCode;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn contexts() -> Contexts {
    let mut c = Contexts::default();
    let v1 = fs::read_to_string(root().join("contexts/coar-notify-1.0.1.json")).unwrap();
    let v0 = fs::read_to_string(root().join("contexts/coar-notify-0.9.0.json")).unwrap();
    c.register("https://coar-notify.net", &v1).unwrap();
    c.register("https://purl.org/coar/notify", &v0).unwrap();
    c
}

fn receiver() -> Receiver {
    Receiver::new(
        contexts(),
        ReceiverConfig {
            compact_context: Some(json!([
                "https://www.w3.org/ns/activitystreams",
                "https://coar-notify.net"
            ])),
            ..ReceiverConfig::default()
        },
    )
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["spec", "spec/0.9.0", "spec/workflows"] {
        for entry in fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                out.push((path.display().to_string(), fs::read(&path).unwrap()));
            }
        }
    }
    assert_eq!(out.len(), 36);
    out
}

const PROFILE: &str = "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";

#[test]
fn every_spec_payload_is_received_and_round_trips_through_turtle() {
    let r = receiver();
    for (name, bytes) in fixtures() {
        let got = r
            .receive(Some(PROFILE), &bytes, None)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.original, bytes);
        assert_eq!(got.format, BodyFormat::JsonLd);
        assert_eq!(got.json, serde_json::from_slice::<Value>(&bytes).unwrap());
        // JSON-LD → RDF → Turtle → RDF gives an isomorphic graph.
        let turtle = got.dataset.serialize(RdfFormat::Turtle).unwrap();
        let back = Dataset::parse_turtle(&turtle, None).unwrap();
        assert!(back.isomorphic(&got.dataset), "{name}:\n{turtle}");
        // The same notification POSTed as Turtle: same graph, readable as compact JSON-LD.
        let as_turtle = r
            .receive(Some("text/turtle"), turtle.as_bytes(), None)
            .unwrap();
        assert_eq!(as_turtle.format, BodyFormat::Turtle);
        assert!(as_turtle.dataset.isomorphic(&got.dataset), "{name}");
        if name.contains("0.9.0") {
            continue; // compacted with the 1.0 context, the purl vocabulary stays in full IRIs
        }
        assert_eq!(
            as_turtle.json["id"], got.json["id"],
            "{name}: {}",
            as_turtle.json
        );
        assert!(
            as_turtle.json["origin"]["inbox"].is_string(),
            "{name}: {}",
            as_turtle.json
        );
        // Compaction gives back the same graph.
        let recompacted = r
            .receive(
                Some("application/ld+json"),
                as_turtle.json.to_string().as_bytes(),
                None,
            )
            .unwrap();
        assert!(
            recompacted.dataset.isomorphic(&got.dataset),
            "{name}: {}",
            as_turtle.json
        );
    }
}

#[test]
fn each_refusal_has_its_status() {
    let r = Receiver::new(
        contexts(),
        ReceiverConfig {
            max_bytes: 64 * 1024,
            ..ReceiverConfig::default()
        },
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_but_parsable = format!(
        "{{\"id\":\"urn:x:1\",\"a\":{}1{}}}",
        "[".repeat(40),
        "]".repeat(40)
    );
    let big = format!("{{\"summary\":\"{}\"}}", "x".repeat(70 * 1024));
    let cases: Vec<(Option<&str>, Vec<u8>, StatusCode, &str)> = vec![
        (
            None,
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
        ),
        (
            Some("text/plain"),
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
        ),
        (
            Some(PROFILE),
            big.into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
        ),
        (
            Some(PROFILE),
            b"{\"id\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "Malformed JSON",
        ),
        (
            Some(PROFILE),
            b"\xff{}".to_vec(),
            StatusCode::BAD_REQUEST,
            "Malformed JSON",
        ),
        (
            Some(PROFILE),
            deep.into_bytes(),
            StatusCode::BAD_REQUEST,
            "Nested too deeply",
        ),
        (
            Some(PROFILE),
            deep_but_parsable.into_bytes(),
            StatusCode::BAD_REQUEST,
            "Nested too deeply",
        ),
        (
            Some(PROFILE),
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
            "Not a JSON-LD document",
        ),
        (
            Some(PROFILE),
            b"\"x\"".to_vec(),
            StatusCode::BAD_REQUEST,
            "Not a JSON-LD document",
        ),
        (
            Some(PROFILE),
            br#"{"@context": 5}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid JSON-LD",
        ),
        (
            Some(PROFILE),
            br#"{"@context": "http://169.254.169.254/ctx", "id": "urn:x:1"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unknown remote context",
        ),
        (
            // JSON that no context maps: it expands to an empty graph.
            Some(PROFILE),
            br#"{"hello": "world"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid JSON-LD",
        ),
        (
            Some("application/json"),
            br#"{"@context": {"x": "urn:x:"}, "@id": "urn:x:1", "hello": "world"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid JSON-LD",
        ),
        (
            Some("text/turtle"),
            b"<a> <b> .".to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid Turtle",
        ),
        (
            Some("text/turtle"),
            b"\xff".to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid Turtle",
        ),
        (
            Some("text/turtle"),
            b"# nothing".to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid Turtle",
        ),
        (
            Some(PROFILE),
            br#"{"id": "urn:x:1", "type": "Offer", "id": "urn:x:2"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "Duplicate member name",
        ),
        (
            Some("text/turtle"),
            format!(
                "<urn:s> <urn:p> {}1{} .",
                "[<urn:p>".repeat(6_000),
                "]".repeat(6_000)
            )
            .into_bytes(),
            StatusCode::BAD_REQUEST,
            "Nested too deeply",
        ),
        (
            Some("text/turtle"),
            turtle_fan_out().into_bytes(),
            StatusCode::BAD_REQUEST,
            "Over budget",
        ),
        (
            Some(PROFILE),
            inline_context_amplification().into_bytes(),
            StatusCode::BAD_REQUEST,
            "Over budget",
        ),
        (
            // sophia's lexer once panicked here, slicing inside the `é`.
            Some("text/turtle"),
            "<urn:s> <urn:p> \"\"\"a\"é\"\"\" .".as_bytes().to_vec(),
            StatusCode::BAD_REQUEST,
            "Invalid Turtle",
        ),
        (
            Some(PROFILE),
            prefix_chain(2000).into_bytes(),
            StatusCode::BAD_REQUEST,
            "Over budget",
        ),
        (
            Some("text/turtle"),
            long_prefix().into_bytes(),
            StatusCode::BAD_REQUEST,
            "Over budget",
        ),
        (
            Some("text/turtle"),
            format!(
                "<urn:s> <urn:p> \"\"\"x\"\\\"\"\"\" , {}<urn:a> <urn:b> <urn:c>{} .",
                "<<( <urn:s> <urn:p> ".repeat(40),
                " )>>".repeat(40)
            )
            .into_bytes(),
            StatusCode::BAD_REQUEST,
            "Nested too deeply",
        ),
    ];
    for (ct, body, status, title) in cases {
        let err = r.receive(ct, &body, None).unwrap_err();
        assert_eq!(
            (err.status(), err.title()),
            (status, title),
            "{ct:?} {:?}: {err}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
    }
    match r
        .receive(Some(PROFILE), b"{\n \"id\": x}", None)
        .unwrap_err()
    {
        ReceiveError::MalformedJson { line, column, .. } => assert_eq!((line, column), (2, 8)),
        other => panic!("{other:?}"),
    }
    match r
        .receive(
            Some(PROFILE),
            br#"{"@context": ["https://www.w3.org/ns/activitystreams", "https://x.example/c"]}"#,
            None,
        )
        .unwrap_err()
    {
        ReceiveError::UnknownContext(iri) => assert_eq!(iri, "https://x.example/c"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn application_json_is_read_as_json_ld() {
    let bytes = fs::read(root().join("spec/announce-review.json")).unwrap();
    let got = receiver()
        .receive(Some("application/json"), &bytes, None)
        .unwrap();
    assert_eq!(got.format, BodyFormat::JsonLd);
    assert!(got.dataset.len() > 10);
}

/// Found by `cargo xtask fuzz`: json-ld's IRI type panics when it hashes an IRI whose
/// percent-escapes decode to bytes that are not UTF-8. Such documents are refused with an
/// error naming the string; escapes of UTF-8 and strings that cannot be IRIs still pass.
#[test]
fn iris_percent_encoding_non_utf8_octets_are_refused_not_a_panic() {
    let r = receiver();
    let as_ctx = "https://www.w3.org/ns/activitystreams";
    for (content_type, body, culprit) in [
        (
            "application/ld+json",
            format!(r#"{{"@context":"{as_ctx}","id":"https://example.org/a%85b","type":"Offer"}}"#),
            "https://example.org/a%85b",
        ),
        (
            "application/ld+json",
            format!(r#"{{"@context":"{as_ctx}","id":"urn:x","type":"Offer","object":{{"id":"x%FF"}}}}"#),
            "x%FF",
        ),
        (
            "application/ld+json",
            r#"{"@context":{"@vocab":"https://x.org/%c3/"},"id":"https://example.org/a","type":"Offer"}"#.to_owned(),
            "https://x.org/%c3/",
        ),
        (
            "application/ld+json",
            format!(r#"{{"@context":"{as_ctx}","id":"urn:x","type":"Offer","%e9t%e9":"1"}}"#),
            "%e9t%e9",
        ),
        (
            "text/turtle",
            "<https://example.org/a%85b> a <https://www.w3.org/ns/activitystreams#Offer> .".to_owned(),
            "https://example.org/a%85b",
        ),
    ] {
        let err = r
            .receive(Some(content_type), body.as_bytes(), None)
            .expect_err(&body);
        assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(err.to_string().contains(culprit), "{err} names {culprit}");
    }
    // UTF-8 escapes, malformed escapes and text are fine.
    let ok = format!(
        r#"{{"@context":"{as_ctx}","id":"https://example.org/caf%C3%A9","type":"Offer",
            "summary":"50 %ff of it","name":"100%zz"}}"#
    );
    r.receive(Some("application/ld+json"), ok.as_bytes(), None)
        .unwrap();
}

/// `check` (what an inbox calls) accepts and refuses exactly what `receive` does, and reads
/// the same JSON: on every spec payload, its Turtle form, and documents that are refused.
#[test]
fn check_agrees_with_receive() {
    let r = receiver();
    let mut cases: Vec<(String, &str, Vec<u8>)> = Vec::new();
    for (name, bytes) in fixtures() {
        let turtle = r
            .receive(Some(PROFILE), &bytes, None)
            .unwrap()
            .dataset
            .serialize(RdfFormat::Turtle)
            .unwrap();
        cases.push((
            format!("{name} as Turtle"),
            "text/turtle",
            turtle.into_bytes(),
        ));
        cases.push((name, PROFILE, bytes));
    }
    for bad in [
        r#"{"@context":"https://unknown.example/ctx","id":"urn:x","type":"Offer"}"#,
        r#"{"@context":{"@vocab":5},"id":"urn:x"}"#,
        r#"{"@context":"https://www.w3.org/ns/activitystreams","@id":{"x":1}}"#,
        r#"[1,2]"#,
        r#"{"id":"#,
    ] {
        cases.push((
            bad.to_owned(),
            "application/ld+json",
            bad.as_bytes().to_vec(),
        ));
    }
    cases.push(("text".into(), "text/plain", b"{}".to_vec()));
    let mut refused = 0;
    for (name, content_type, body) in cases {
        let full = r.receive(Some(content_type), &body, None);
        let checked = r.check(Some(content_type), &body, None);
        match (full, checked) {
            (Ok(full), Ok(checked)) => {
                assert_eq!(
                    (full.format, full.json),
                    (checked.format, checked.json),
                    "{name}"
                );
            }
            (Err(a), Err(b)) => {
                assert_eq!(a, b, "{name}");
                refused += 1;
            }
            (a, b) => panic!("{name}: receive {:?} but check {:?}", a.err(), b.err()),
        }
    }
    assert_eq!(refused, 6);
}

/// One node with many literals referenced from thousands of places (a 54 KB body that once
/// asked the shaping for gigabytes).
fn turtle_fan_out() -> String {
    let mut ttl = String::from("<urn:hub> ");
    for i in 0..100 {
        ttl.push_str(&format!("<urn:p:{i}> \"{}\" ; ", "x".repeat(30)));
    }
    ttl.push_str("<urn:p:end> 1 .\n");
    for i in 0..1800 {
        ttl.push_str(&format!("_:s{i} <urn:p> <urn:hub> .\n"));
    }
    assert!(ttl.len() < 64 * 1024, "{}", ttl.len());
    ttl
}

/// A term mapped to a long IRI and used many times: small to send, huge to expand.
fn inline_context_amplification() -> String {
    let iri = format!("https://x.example/{}", "a".repeat(10_000));
    let uses = vec![r#"{"t": 1}"#; 4_000].join(",");
    format!(r#"{{"@context": {{"t": "{iri}"}}, "@graph": [{uses}]}}"#)
}

#[test]
fn budgets_are_configurable() {
    let r = Receiver::new(
        Contexts::default(),
        ReceiverConfig {
            max_bytes: 1024 * 1024,
            budget: coar_ldn::Budget {
                max_triples: 5,
                ..coar_ldn::Budget::default()
            },
            ..ReceiverConfig::default()
        },
    );
    let six: String = (0..6).map(|i| format!("<urn:s> <urn:p> {i} .\n")).collect();
    match r.receive(Some("text/turtle"), six.as_bytes(), None) {
        Err(ReceiveError::OverBudget(coar_ldn::Exceeded::Triples(5))) => {}
        other => panic!("{other:?}"),
    }
    let five: String = (0..5).map(|i| format!("<urn:s> <urn:p> {i} .\n")).collect();
    r.receive(Some("text/turtle"), five.as_bytes(), None)
        .unwrap();
}

/// Terms defined through a chain of prefixes, each one's IRI the next one's compact IRI: the
/// processor recurses along the chain, and its context grows with the chain's square.
fn prefix_chain(n: usize) -> String {
    let mut terms: Vec<String> = (1..=n)
        .rev()
        .map(|i| format!(r#""t{i}": "t{}:/""#, i - 1))
        .collect();
    terms.push(r#""t0": "http://e.example/""#.to_owned());
    format!(
        r#"{{"@context": {{{}}}, "@id": "urn:x:1", "t{n}": 1}}"#,
        terms.join(", ")
    )
}

/// A prefix bound to a long IRI, used for every term of thousands of triples.
fn long_prefix() -> String {
    let mut ttl = format!("@prefix p: <https://x.example/{}> .\n", "a".repeat(20_000));
    ttl.push_str("p: p: p:");
    for _ in 0..3000 {
        ttl.push_str(", p:");
    }
    ttl.push_str(" .\n");
    ttl
}

/// What the W3C LDN test suite's sender POSTs: `"@id": ""` (the notification's own URL, to be
/// assigned), `@type`, and plain IRIs. It is a notification with statements: accepted by
/// `check` and `receive` alike, and so is one that uses only keywords and full IRIs without
/// any context. A document of blank nodes with no property states nothing.
#[test]
fn ldn_test_suite_notifications_are_received() {
    let r = receiver();
    for body in [
        r#"{"@context": "https://www.w3.org/ns/activitystreams", "@id": "", "@type": "Announce",
            "actor": "https://linkedresearch.org/ldn/tests/", "object": "https://example.org/article",
            "target": "https://example.org/profile#me", "updated": "2026-12-01T00:00:00Z"}"#,
        r#"{"@id": "urn:x:1", "http://schema.org/name": "no context at all"}"#,
        r#"{"@context": "https://www.w3.org/ns/activitystreams", "type": "Announce",
            "object": "https://example.org/article"}"#,
    ] {
        let checked = r.check(Some(PROFILE), body.as_bytes(), None);
        let received = r.receive(Some(PROFILE), body.as_bytes(), None);
        assert!(checked.is_ok(), "check refused {body}: {checked:?}");
        assert!(received.is_ok(), "receive refused {body}: {received:?}");
    }
    for body in [
        r#"{"@id": "urn:x:1"}"#,
        r#"[{"hello": "world"}, {"@id": "urn:x:2"}]"#,
    ] {
        let checked = r.check(Some(PROFILE), body.as_bytes(), None).map(|_| ());
        let received = r.receive(Some(PROFILE), body.as_bytes(), None).map(|_| ());
        assert!(checked.is_err(), "{body}");
        assert_eq!(checked, received, "{body}");
    }
}
