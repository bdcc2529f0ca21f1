//! Every spec payload expands with the bundled and registered contexts and nothing else;
//! an unknown remote context is refused without any network access (this crate has no
//! network code: the loader only reads its in-memory map).

use std::{fs, path::PathBuf};

use coar_ldn::{Contexts, JsonLdError};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// AS2 is bundled; the COAR contexts are registered as a vocabulary layer would.
fn contexts() -> Contexts {
    let mut c = Contexts::default();
    let v1 = fs::read_to_string(root().join("contexts/coar-notify-1.0.1.json")).unwrap();
    let v0 = fs::read_to_string(root().join("contexts/coar-notify-0.9.0.json")).unwrap();
    c.register("https://coar-notify.net", &v1).unwrap();
    c.register("https://purl.org/coar/notify", &v0).unwrap();
    c
}

#[test]
fn every_spec_payload_converts_to_rdf_offline() {
    let c = contexts();
    let mut checked = 0;
    for dir in ["spec", "spec/0.9.0", "spec/workflows"] {
        for entry in fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = fs::read_to_string(&path).unwrap();
            let expanded = c.expand(&text).unwrap();
            assert_eq!(expanded.len(), 1, "{}", path.display());
            // The cached path gives exactly what the json-ld crate's own path gives.
            assert_eq!(
                expanded,
                c.expand_uncached(&text).unwrap(),
                "{}",
                path.display()
            );
            let quads = c
                .to_nquads(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                quads.len() >= 10,
                "{}: {} quads",
                path.display(),
                quads.len()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 36);
}

#[test]
fn coar_terms_expand_to_the_vocabulary_of_their_context() {
    let c = contexts();
    let rr = fs::read_to_string(root().join("spec/request-review.json")).unwrap();
    let quads = c.to_nquads(&rr).unwrap();
    assert!(quads.contains(&"<urn:uuid:0370c0fb-bb78-4a9b-87f5-bed307a509dd> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://coar-notify.net/specification/vocabulary/ReviewAction> .".to_owned()), "{quads:#?}");
    assert!(quads.iter().any(|q| {
        q.ends_with("<http://www.w3.org/ns/ldp#inbox> <https://review-service.com/inbox/> .")
    }));
    let legacy = fs::read_to_string(root().join("spec/0.9.0/request-review.json")).unwrap();
    let quads = c.to_nquads(&legacy).unwrap();
    assert!(
        quads
            .iter()
            .any(|q| q.contains("<https://purl.org/coar/notify_vocabulary/ReviewAction>"))
    );
}

#[test]
fn unknown_remote_contexts_are_refused_by_name() {
    let c = contexts();
    for iri in [
        "http://169.254.169.254/latest/meta-data",
        "https://example.org/context.jsonld",
    ] {
        let doc = format!(
            r#"{{"@context": ["https://www.w3.org/ns/activitystreams", "{iri}"], "id": "urn:x:1", "type": "Offer"}}"#
        );
        match c.to_nquads(&doc) {
            Err(JsonLdError::UnknownContext(named)) => assert_eq!(named, iri),
            other => panic!("{iri}: {other:?}"),
        }
    }
    // Without the COAR registration, the COAR context is unknown too.
    let bare = Contexts::default();
    let rr = fs::read_to_string(root().join("spec/request-review.json")).unwrap();
    assert_eq!(
        bare.to_nquads(&rr),
        Err(JsonLdError::UnknownContext(
            "https://coar-notify.net".into()
        ))
    );
}

#[test]
fn malformed_input_is_an_error() {
    let c = contexts();
    assert!(matches!(c.to_nquads("{"), Err(JsonLdError::Json(_))));
    assert!(matches!(
        c.to_nquads(r#"{"@context": 5}"#),
        Err(JsonLdError::Invalid(_))
    ));
}

/// Our RDF equals, up to blank-node renaming, what a second implementation (pyld, see
/// fixtures/rdf/generate.py for the command) produced from the same payloads and contexts.
#[test]
fn rdf_matches_a_second_implementation() {
    let c = contexts();
    let mut checked = 0;
    for (dir, expected) in [
        ("spec", "rdf/1.0.1"),
        ("spec/0.9.0", "rdf/0.9.0"),
        ("spec/workflows", "rdf/workflows"),
    ] {
        for entry in fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let want =
                fs::read_to_string(root().join(expected).join(format!("{name}.nq"))).unwrap();
            let want = coar_ldn::Dataset::parse_nquads(&want).unwrap();
            let text = fs::read_to_string(&path).unwrap();
            let ours = c
                .to_dataset_with_base(&text, Some("https://inbox.example/notifications/1"))
                .unwrap();
            assert_eq!(ours.len(), want.len(), "{dir}/{name}");
            assert!(
                ours.isomorphic(&want),
                "{dir}/{name}:\n{}",
                ours.serialize(coar_ldn::RdfFormat::NQuads).unwrap()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 36);
}

/// Remote loading is opt-in, limited to its prefixes, cached, and size-capped; with it off
/// (the default) or for other prefixes, the fetcher is never called.
#[test]
fn allow_list_loader_is_opt_in_prefixed_cached_and_capped() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let fetch = move |url: &str, limits: &coar_ldn::FetchLimits| -> Result<String, String> {
        counter.fetch_add(1, Ordering::SeqCst);
        assert!(
            url.starts_with("https://contexts.example/"),
            "fetched {url}: outside the allow-list"
        );
        if url.ends_with("/huge") {
            return Ok(format!(
                "{{\"@context\": {{\"x\": \"{}\"}}}}",
                "a".repeat(limits.max_bytes)
            ));
        }
        Ok(r#"{"@context": {"ex": "https://vocab.example/", "thing": "ex:thing"}}"#.into())
    };
    let c = contexts().allow_remote(
        vec!["https://contexts.example/".into()],
        coar_ldn::FetchLimits::default(),
        Arc::new(fetch),
    );
    let doc = r#"{"@context": "https://contexts.example/v1", "@id": "urn:x:1", "thing": "y"}"#;
    let quads = c.to_nquads(doc).unwrap();
    assert_eq!(quads, [r#"<urn:x:1> <https://vocab.example/thing> "y" ."#]);
    // Another document with the same context in another shape: fetched once, from the cache.
    c.to_nquads(r#"{"@context": ["https://contexts.example/v1"], "@id": "urn:x:2", "thing": "z"}"#)
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Outside the prefixes: refused by name, the fetcher not called.
    let refused = r#"{"@context": "http://169.254.169.254/latest", "@id": "urn:x:3"}"#;
    assert_eq!(
        c.to_nquads(refused),
        Err(JsonLdError::UnknownContext(
            "http://169.254.169.254/latest".into()
        ))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Too large: refused.
    let huge = r#"{"@context": "https://contexts.example/huge", "@id": "urn:x:4"}"#;
    assert!(c.to_nquads(huge).is_err());
    // Off by default: a loader that fails the test if called proves nothing is fetched.
    let never = |url: &str, _: &coar_ldn::FetchLimits| -> Result<String, String> {
        panic!("fetched {url}")
    };
    let strict = contexts().allow_remote(
        vec!["https://only.example/".into()],
        coar_ldn::FetchLimits::default(),
        Arc::new(never),
    );
    assert_eq!(
        strict.to_nquads(doc),
        Err(JsonLdError::UnknownContext(
            "https://contexts.example/v1".into()
        ))
    );
}
