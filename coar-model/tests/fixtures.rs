//! The specification's own examples are the first tests: every one parses to its pattern,
//! and the 1.0.1 ones validate with zero errors.

use std::{fs, path::PathBuf};

use coar_model::{Notification, Pattern, SpecVersion};

fn fixtures(dir: &str) -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/spec")
        .join(dir);
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {}", root.display());
    out
}

/// The pattern a fixture's file name stands for.
fn expected(name: &str) -> Pattern {
    let slug = [
        "announce-",
        "request-",
        "tentative-",
        "accept",
        "reject",
        "undo-",
        "unprocessable",
    ]
    .iter()
    .find_map(|p| name.find(p).map(|i| &name[i..]))
    .unwrap_or_else(|| panic!("no pattern in fixture name {name}"));
    match slug {
        "announce-resource" => Pattern::AnnounceServiceResult,
        s => Pattern::from_slug(s).unwrap_or_else(|| panic!("unknown slug {s}")),
    }
}

fn check(dir: &str, version: SpecVersion, count: usize) {
    let all = fixtures(dir);
    assert_eq!(all.len(), count, "{dir}");
    for (name, bytes) in all {
        let n = Notification::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(n.pattern(), Some(expected(&name)), "{name}");
        assert_eq!(n.spec_version(), Some(version), "{name}");
        let report = n.validate();
        assert!(report.is_valid(), "{name}:\n{report}");
        // Serialization gives back the very object that was parsed.
        let original: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(n.to_value(), original, "{name}");
        assert_eq!(Notification::from_value(n.to_value()).unwrap(), n, "{name}");
    }
}

#[test]
fn spec_1_0_1_examples_parse_and_validate() {
    check("", SpecVersion::V1, 12);
}

#[test]
fn workflow_examples_parse_and_validate() {
    check("workflows", SpecVersion::V1, 11);
}

#[test]
fn legacy_0_9_0_examples_parse_and_validate_against_0_9_0() {
    check("0.9.0", SpecVersion::V0_9, 13);
}

#[test]
fn every_1_0_1_pattern_has_an_example() {
    let mut seen: Vec<Pattern> = fixtures("")
        .iter()
        .map(|(name, _)| expected(name))
        .collect();
    seen.sort();
    let want: Vec<Pattern> = Pattern::ALL
        .into_iter()
        .filter(|p| !p.is_legacy())
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn the_spec_examples_only_warn_where_they_skip_a_should() {
    // The 1.0.1 examples follow every SHOULD but one: none. Any warning here is a rule of
    // ours that is stricter than the specification.
    for (name, bytes) in fixtures("") {
        let report = Notification::from_slice(&bytes).unwrap().validate();
        assert_eq!(report.warnings().count(), 0, "{name}:\n{report}");
    }
}
