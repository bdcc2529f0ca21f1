//! Budgets for work done on a peer's bytes: every parser of input that arrives over the
//! network stops, with an error naming the budget, before its work grows past these.

#[cfg(feature = "rdf")]
use std::time::Instant;
use std::{fmt, time::Duration};

/// The limits on reading one document a peer sent, beyond its size in bytes (which the
/// caller checks before anything is parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The most RDF triples a Turtle document may hold (default 10 000; a notification has
    /// about 40). JSON-LD needs none: its triples are bounded by its values, and so by its
    /// size.
    pub max_triples: usize,
    /// The deepest nesting: of JSON values, of Turtle's `[ ]`, `( )` and `<< >>`, and of
    /// nodes embedded in the JSON-LD shaped from RDF (default 32; notifications need about
    /// 6).
    pub max_depth: usize,
    /// The most bytes of JSON-LD that shaping RDF into a tree may produce (default 4 MiB):
    /// a node referenced many times is copied at each reference, so a small document can
    /// ask for a large tree.
    pub max_output_bytes: usize,
    /// The longest one document may take to read (default 2 s), checked as the work goes.
    pub max_time: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_triples: 10_000,
            max_depth: 32,
            max_output_bytes: 4 * 1024 * 1024,
            max_time: Duration::from_secs(2),
        }
    }
}

/// Which budget a document went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// More triples than [`Budget::max_triples`].
    Triples(usize),
    /// Deeper than [`Budget::max_depth`].
    Depth(usize),
    /// More JSON-LD than [`Budget::max_output_bytes`].
    Output(usize),
    /// Longer than [`Budget::max_time`].
    Time(Duration),
    /// Inline JSON-LD contexts that define more terms than this.
    ContextTerms(usize),
}

impl Exceeded {
    /// A stable name for the budget, for problem reports and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Exceeded::Triples(_) => "triples",
            Exceeded::Depth(_) => "depth",
            Exceeded::Output(_) => "output",
            Exceeded::Time(_) => "time",
            Exceeded::ContextTerms(_) => "context-terms",
        }
    }
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exceeded::Triples(n) => write!(f, "the document holds more than {n} triples"),
            Exceeded::Depth(n) => write!(f, "the document nests deeper than {n} levels"),
            Exceeded::Output(n) => {
                write!(f, "the document's JSON-LD would be larger than {n} bytes")
            }
            Exceeded::ContextTerms(n) => {
                write!(
                    f,
                    "the document's inline contexts define more than {n} terms"
                )
            }
            Exceeded::Time(d) => write!(
                f,
                "reading the document took longer than {} ms",
                d.as_millis()
            ),
        }
    }
}

impl std::error::Error for Exceeded {}

/// A running clock against [`Budget::max_time`].
#[derive(Debug, Clone, Copy)]
#[cfg(feature = "rdf")]
pub(crate) struct Deadline {
    at: Option<Instant>,
    budget: Duration,
}

#[cfg(feature = "rdf")]
impl Deadline {
    pub(crate) fn start(budget: &Budget) -> Deadline {
        Deadline {
            at: Instant::now().checked_add(budget.max_time),
            budget: budget.max_time,
        }
    }

    pub(crate) fn check(&self) -> Result<(), Exceeded> {
        match self.at {
            Some(at) if Instant::now() > at => Err(Exceeded::Time(self.budget)),
            _ => Ok(()),
        }
    }
}

/// The deepest nesting of Turtle's `[ ]`, `( )`, `<< >>` and `{| |}`, outside IRIs,
/// strings and comments, or `Err` as soon as it passes `limit`. One pass, no allocation:
/// it runs before the parser, an early refusal of deep documents.
///
/// It is not what keeps recursion bounded, since a lexer of its own may disagree with the
/// parser's about where a string or a comment ends. Blank nodes and collections come out of
/// the parser as flat triples (the shaping after it checks its own depth); RDF 1.2 triple
/// terms and reifiers, the one construct the parser nests in memory, are counted here in
/// the raw text, strings and comments included, and at most `limit` of them are allowed,
/// which no lexer can hide.
#[cfg(feature = "rdf")]
pub(crate) fn turtle_nesting(text: &str, limit: usize) -> Result<usize, Exceeded> {
    let b = text.as_bytes();
    let quoted = b.windows(2).filter(|w| *w == b"<<" || *w == b"{|").count();
    if quoted > limit {
        return Err(Exceeded::Depth(limit));
    }
    let (mut i, mut depth, mut max) = (0, 0usize, 0usize);
    let open = |depth: &mut usize, max: &mut usize| {
        *depth += 1;
        *max = (*max).max(*depth);
        if *depth > limit {
            Err(Exceeded::Depth(limit))
        } else {
            Ok(())
        }
    };
    while i < b.len() {
        match b[i] {
            b'#' => {
                // The parser reads line by line: a comment ends at `\n` only.
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'<' if b.get(i + 1) == Some(&b'<') => {
                open(&mut depth, &mut max)?;
                i += 1;
            }
            b'<' => {
                // An IRI: no '>' inside, escapes are \u and \U only.
                i += 1;
                while i < b.len() && b[i] != b'>' {
                    i += 1;
                }
            }
            b'>' if b.get(i + 1) == Some(&b'>') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'{' if b.get(i + 1) == Some(&b'|') => {
                open(&mut depth, &mut max)?;
                i += 1;
            }
            b'|' if b.get(i + 1) == Some(&b'}') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            // A prefixed name's escaped character (`ex:a\#b`) is not structure.
            b'\\' => i += 1,
            b'[' | b'(' => open(&mut depth, &mut max)?,
            b']' | b')' => depth = depth.saturating_sub(1),
            q @ (b'"' | b'\'') => {
                let long = b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q);
                i += if long { 3 } else { 1 };
                while i < b.len() {
                    match b[i] {
                        b'\\' => i += 1,
                        c if c == q && !long => break,
                        c if c == q && b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q) => {
                            i += 2;
                            break;
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turtle_nesting_counts_only_structure() {
        assert_eq!(
            turtle_nesting("<a> <b> [ <c> ( 1 [ <d> 2 ] ) ] .", 32),
            Ok(3)
        );
        // Brackets in IRIs, strings and comments are not structure.
        let quiet = r#"<urn:[[[> <b> "[[[" , '((' , """ [[ " ]] """ . # [[[[
<c> <d> '''(( ' ''' ."#;
        assert_eq!(turtle_nesting(quiet, 32), Ok(0));
        assert_eq!(
            turtle_nesting("<< <a> <b> << <c> <d> <e> >> >> <f> <g> .", 32),
            Ok(2)
        );
        let deep = format!("<a> <b> {} .", "[ <p> ".repeat(1000));
        assert_eq!(turtle_nesting(&deep, 32), Err(Exceeded::Depth(32)));
    }
}
