//! `validate` and `rdf`: commands that read files and need neither network nor database.

use std::{path::PathBuf, process::ExitCode};

/// `validate`: exit 1 if any file is not a valid notification.
pub(crate) fn validate(files: &[PathBuf], json: bool) -> ExitCode {
    let mut all_valid = true;
    let mut results = Vec::new();
    for file in files {
        let (pattern, report, error) = match std::fs::read(file) {
            Err(e) => (None, None, Some(e.to_string())),
            Ok(bytes) => match coar_model::Notification::from_slice(&bytes) {
                Err(e) => (None, None, Some(e.to_string())),
                Ok(n) => (n.pattern(), Some(n.validate()), None),
            },
        };
        let valid =
            error.is_none() && pattern.is_some() && report.as_ref().is_some_and(|r| r.is_valid());
        all_valid &= valid;
        if json {
            results.push(serde_json::json!({
                "file": file.display().to_string(),
                "valid": valid,
                "pattern": pattern.map(|p| p.slug()),
                "error": error,
                "problems": report.as_ref().map(|r| &r.problems),
            }));
        } else {
            let name = file.display();
            match (&error, pattern) {
                (Some(e), _) => println!("{name}: not a notification: {e}"),
                (None, Some(p)) => println!(
                    "{name}: {} ({})",
                    if valid { "valid" } else { "INVALID" },
                    p.title()
                ),
                (None, None) => println!("{name}: INVALID (no COAR Notify pattern)"),
            }
            for p in report.iter().flat_map(|r| &r.problems) {
                println!("  {p}");
            }
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(results));
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `rdf`: a notification's RDF, in Turtle, N-Triples or N-Quads.
pub(crate) fn rdf(file: &PathBuf, format: &str) -> ExitCode {
    let format = match format {
        "turtle" | "ttl" => coar_ldn::RdfFormat::Turtle,
        "ntriples" | "nt" => coar_ldn::RdfFormat::NTriples,
        "nquads" | "nq" => coar_ldn::RdfFormat::NQuads,
        other => {
            eprintln!(
                "coar-notify: invalid setting --format: {other:?} is not turtle, ntriples or nquads"
            );
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("coar-notify: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    match coar_server::contexts().to_dataset(&text).and_then(|d| {
        d.serialize(format)
            .map_err(|e| coar_ldn::JsonLdError::Invalid(e.to_string()))
    }) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("coar-notify: {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}
