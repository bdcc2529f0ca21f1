//! The inbound path of `POST /inbox`, in process: the LDN receiver (media type, size and
//! depth limits, JSON or Turtle, JSON-LD expansion with the bundled contexts, the RDF
//! dataset), then the COAR model (classification and validation of every pattern).
//!
//! Input: one byte that picks the `Content-Type`, then the body (the encoding of
//! `fixtures/fuzz/`, which `cargo xtask fuzz` seeds with the specification's payloads).
//! Beyond "never panics", each input checks the invariants the server relies on: the
//! inbox's `check` agrees with `receive`, a notification serializes back to exactly the
//! JSON it was read from, and validation is deterministic.

#![no_main]

use std::sync::LazyLock;

use coar_ldn::{Contexts, Receiver, ReceiverConfig};
use coar_model::Notification;
use libfuzzer_sys::fuzz_target;

mod common;
use common::tolerate_caught_parser_panics;


/// The content types the first byte selects from, as a peer might send them.
const CONTENT_TYPES: [Option<&str>; 6] = [
    Some("application/ld+json"),
    Some("application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\""),
    Some("text/turtle"),
    Some("application/json"),
    Some("text/plain"),
    None,
];

/// The receiver exactly as `coar-notify serve` builds it (with the default body limit).
static RECEIVER: LazyLock<Receiver> = LazyLock::new(|| {
    let mut contexts = Contexts::default();
    for (iri, document) in coar_model::vocab::context_documents() {
        contexts
            .register(iri, document)
            .expect("coar-model's context documents are valid");
    }
    Receiver::new(
        contexts,
        ReceiverConfig {
            compact_context: Some(serde_json::json!(coar_model::vocab::STANDARD_CONTEXT)),
            ..ReceiverConfig::default()
        },
    )
});

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    tolerate_caught_parser_panics();
    // What the workers do with a stored body: parse it on its own. Never panics.
    let direct = Notification::from_slice(body);
    let base = Some("https://inbox.example/");
    // The inbox's `check` refuses and reads exactly as `receive` does.
    let checked = RECEIVER.check(content_type, body, base);
    let received = RECEIVER.receive(content_type, body, base);
    match (&received, &checked) {
        (Ok(r), Ok(c)) => assert_eq!((r.format, &r.json), (c.format, &c.json)),
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("receive and check disagree: {received:?} / {checked:?}"),
    }
    let Ok(received) = received else {
        return;
    };
    let Ok(notification) = Notification::from_value(received.json.clone()) else {
        return;
    };
    let report = notification.validate();
    let _ = notification.pattern();
    // It serializes back to exactly the JSON object it was read from.
    let back: serde_json::Value =
        serde_json::from_str(&notification.to_json_string()).expect("serializes to JSON");
    assert_eq!(back, received.json, "a notification did not serialize back");
    // The workers' direct parse agrees with the inbox's for JSON bodies.
    if let Ok(direct) = direct {
        if received.format == coar_ldn::BodyFormat::JsonLd {
            assert_eq!(direct.to_value(), notification.to_value());
            assert_eq!(direct.validate(), report, "validation is not deterministic");
        }
    }
});
