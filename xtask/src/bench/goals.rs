//! The goals of the throughput issue, each checked against the figures of the same run.

use serde_json::{Value, json};

/// The PostgreSQL goals, skipped together when PostgreSQL cannot be reached.
pub(super) const POSTGRES: [&str; 4] = [
    "PostgreSQL ingest only ≥ 0.50 of the PostgreSQL durable limit",
    "PostgreSQL default settings ≥ 0.50 of the PostgreSQL durable limit",
    "PostgreSQL: p99 < 25 ms (ingest only and default settings)",
    "two serve processes on one PostgreSQL: none processed twice, none lost",
];

/// Whether a goal was met, with the figure that says so.
enum Verdict {
    Met(String),
    NotMet(String),
    Skipped(String),
}

/// The goals, in the order they were checked.
#[derive(Default)]
pub(super) struct Goals(Vec<(String, Verdict)>);

impl Goals {
    fn push(&mut self, goal: &str, met: bool, figure: String) {
        let verdict = if met {
            Verdict::Met(figure)
        } else {
            Verdict::NotMet(figure)
        };
        self.0.push((goal.to_owned(), verdict));
    }

    /// Met when `ratio` is at least `at_least`.
    pub(super) fn ratio(&mut self, goal: &str, ratio: f64, at_least: f64) {
        self.push(goal, ratio >= at_least, format!("{ratio:.2}"));
    }

    /// Met when `value` is below `limit`.
    pub(super) fn below(&mut self, goal: &str, value: f64, limit: f64, unit: &str) {
        self.push(goal, value < limit, format!("{value:.1} {unit}"));
    }

    /// Met when `met`; `figure` says what was seen.
    pub(super) fn holds(&mut self, goal: &str, met: bool, figure: &str) {
        self.push(goal, met, figure.to_owned());
    }

    /// Not measured in this run, and why.
    pub(super) fn skipped(&mut self, goal: &str, why: &str) {
        self.0
            .push((goal.to_owned(), Verdict::Skipped(why.to_owned())));
    }

    /// Prints one line per goal and returns them for the report.
    pub(super) fn print(&self) -> Value {
        let mut out = Vec::new();
        for (goal, verdict) in &self.0 {
            let (word, figure) = match verdict {
                Verdict::Met(f) => ("met", f),
                Verdict::NotMet(f) => ("NOT MET", f),
                Verdict::Skipped(f) => ("skipped", f),
            };
            println!("{word:>8}  {goal}: {figure}");
            out.push(json!({"goal": goal, "verdict": word.to_lowercase(), "figure": figure}));
        }
        Value::Array(out)
    }
}
