//! Validation: every problem of a notification, each with its JSON pointer, rule and message.
//!
//! MUST violations are [`Severity::Error`], SHOULD violations [`Severity::Warning`]. The rules
//! are those of COAR Notify 1.0.1 (baseline and per pattern). Documents using the 0.9.0
//! context are checked against the 0.9.0 text, which did not yet require `context` on
//! announcements, `inReplyTo`/`object` on acknowledgements, or `Service` types.

//! - this module: the [`Report`] and its [`Problem`]s, and the order of the checks;
//! - `syntax`: URIs, media types, JSON pointers;
//! - `shapes`: the baseline of every notification (context, id, type, origin, target,
//!   object, actor, context, items, cite-as);
//! - `resources`: the resources it names (context, types, items, cite-as);
//! - `patterns`: each pattern's own rules.

mod patterns;
mod resources;
mod shapes;
mod syntax;

use std::fmt;

use serde::Serialize;

use crate::{Activity, Pattern, notification::json_kind, vocab::SpecVersion};

pub use syntax::{MAX_URI_LEN, is_http_uri, is_uri, pointer_token};

use shapes::Party;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A SHOULD of the specification is not met; the notification is still valid.
    Warning,
    /// A MUST of the specification is not met; the notification is invalid.
    Error,
}

/// One problem found by validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Error (MUST) or warning (SHOULD).
    pub severity: Severity,
    /// The rule's stable identifier, e.g. `target.inbox.required`.
    pub rule: &'static str,
    /// Where in the document (RFC 6901), e.g. `/target/inbox`.
    pub pointer: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{level} at {pointer}: {} [{}]", self.message, self.rule)
    }
}

/// Everything validation found. Empty means valid and complete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The problems, in document order of the checks.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether no MUST is violated (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The MUST violations.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    /// The SHOULD violations.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Warning)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Validates an activity as the given pattern (or as an unrecognised activity).
pub(crate) fn validate(activity: &Activity, pattern: Option<Pattern>) -> Report {
    let mut v = Validator {
        problems: Vec::new(),
        version: activity.spec_version().unwrap_or(SpecVersion::V1),
    };
    let root = activity.node();
    v.json_ld_context(activity);
    v.id(root);
    v.activity_type(root, pattern);
    v.service(root, Party::Origin);
    v.service(root, Party::Target);
    v.object(root);
    v.actor(root);
    v.optional_uri(root, "", "inReplyTo", "inReplyTo.uri");
    v.context_node(root, pattern);
    if let Some(s) = root.get("summary")
        && !s.is_string()
    {
        v.error(
            "summary.string",
            "/summary",
            format!("summary must be a string, found {}", json_kind(s)),
        );
    }
    if let Some(pattern) = pattern {
        v.pattern(root, pattern);
    }
    Report {
        problems: v.problems,
    }
}

struct Validator {
    problems: Vec<Problem>,
    version: SpecVersion,
}

impl Validator {
    fn error(
        &mut self,
        rule: &'static str,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Error, rule, pointer.into(), message.into());
    }

    fn warning(
        &mut self,
        rule: &'static str,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(Severity::Warning, rule, pointer.into(), message.into());
    }

    fn push(&mut self, severity: Severity, rule: &'static str, pointer: String, message: String) {
        self.problems.push(Problem {
            severity,
            rule,
            pointer,
            message,
        });
    }

    fn v1(&self) -> bool {
        self.version == SpecVersion::V1
    }
}
