//! Hostile and malformed input gives an error, never a panic or a stack overflow.

use coar_model::{Limits, Notification, ParseError};

#[test]
fn not_json() {
    for bytes in [
        &b""[..],
        b"{",
        b"{\"id\":}",
        b"\xff\xfe{}",
        b"{\"a\":1}trailing",
        b"nul",
    ] {
        let err = Notification::from_slice(bytes).unwrap_err();
        assert!(matches!(err, ParseError::Json { .. }), "{bytes:?}: {err:?}");
    }
    let err = Notification::from_slice(b"{\n  \"id\": x\n}").unwrap_err();
    assert_eq!(
        err,
        ParseError::Json {
            message: "expected value".into(),
            line: 2,
            column: 9
        }
    );
}

#[test]
fn json_that_is_not_an_object() {
    for (text, found) in [
        ("[]", "an array"),
        ("\"x\"", "a string"),
        ("1", "a number"),
        ("null", "null"),
        ("true", "a boolean"),
    ] {
        assert_eq!(
            Notification::from_json_str(text).unwrap_err(),
            ParseError::NotAnObject { found },
            "{text}"
        );
    }
}

#[test]
fn ten_thousand_deep_nesting() {
    let depth = 10_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert_eq!(
        Notification::from_json_str(&arrays).unwrap_err(),
        ParseError::TooDeep
    );
    let objects = format!(
        "{{\"id\":{}1{}}}",
        "{\"a\":".repeat(depth),
        "}".repeat(depth)
    );
    assert_eq!(
        Notification::from_json_str(&objects).unwrap_err(),
        ParseError::TooDeep
    );
}

#[test]
fn huge_documents_and_strings() {
    let huge = format!("{{\"id\":\"urn:uuid:{}\"}}", "a".repeat(5 * 1024 * 1024));
    assert!(matches!(
        Notification::from_json_str(&huge).unwrap_err(),
        ParseError::TooLarge { limit, .. } if limit == Limits::default().max_bytes
    ));
    // Under a raised limit it parses, and validation reports the overlong id.
    let n = Notification::from_slice_with(huge.as_bytes(), Limits { max_bytes: 8 << 20 }).unwrap();
    let report = n.validate();
    assert!(
        report
            .errors()
            .any(|p| p.rule == "id.uri" && p.message.contains("limited")),
        "{report}"
    );
}

#[test]
fn wrong_shapes_everywhere_are_problems_not_panics() {
    let docs = [
        r#"{"@context":null,"id":null,"type":null,"origin":null,"target":null,"object":null,"actor":null,"context":null,"inReplyTo":null,"summary":null}"#,
        r#"{"@context":[1,{}],"id":[],"type":[[]],"origin":[],"target":{"id":{},"inbox":{}},"object":{"id":5},"actor":{"type":[1]}}"#,
        r#"{"type":"Offer","object":{"ietf:item":[]},"origin":{"type":{}}}"#,
        r#"{"type":["Accept"],"object":"urn:x:1","inReplyTo":{"id":"urn:x:2"}}"#,
        r#"{"type":"Announce","object":{"as:subject":{},"as:object":[]},"context":"https://x.example"}"#,
        r#"{"type":["Announce","RelationshipAction"],"object":{"type":"Relationship","as:subject":{},"as:object":[]},"context":{"id":7}}"#,
    ];
    for doc in docs {
        let n = Notification::from_json_str(doc).unwrap();
        let report = n.validate();
        assert!(!report.is_valid(), "{doc}");
        for p in &report.problems {
            assert!(p.pointer.is_empty() || p.pointer.starts_with('/'), "{p}");
        }
    }
}
