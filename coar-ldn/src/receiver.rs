//! The framework-agnostic receiver core, like the reference Python library's `receive()`:
//! media type and body bytes in; the parsed notification, or a typed error that knows its
//! HTTP status, out. No web framework types, only the `http` crate's `StatusCode`.

use http::StatusCode;
use serde_json::Value;

use crate::{
    budget::{Budget, Deadline, Exceeded},
    conneg::{ACCEPT_POST, BodyFormat, body_format},
    json::{StrictJsonError, parse_strict},
    jsonld::{Contexts, JsonLdError},
    rdf::{Dataset, RdfError},
};

/// Limits and options of a [`Receiver`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverConfig {
    /// The largest body accepted, in bytes (default 256 KiB).
    pub max_bytes: usize,
    /// What reading one body may cost beyond its bytes: nesting depth (of JSON and of
    /// Turtle), triples, the size of the JSON-LD shaped from Turtle, and time.
    pub budget: Budget,
    /// The `@context` a Turtle body is compacted with, so that a vocabulary layer can read
    /// it as compact JSON-LD (`None`: the JSON is left in expanded form).
    pub compact_context: Option<Value>,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            max_bytes: 256 * 1024,
            budget: Budget::default(),
            compact_context: None,
        }
    }
}

/// A notification [`Receiver::check`] accepted: what an inbox needs to store it.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// How it was read.
    pub format: BodyFormat,
    /// The notification as JSON-LD: the body itself for JSON-LD, the compacted (or
    /// expanded) conversion for Turtle.
    pub json: Value,
}

/// A notification the receiver accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The body exactly as received.
    pub original: Vec<u8>,
    /// How it was read.
    pub format: BodyFormat,
    /// The notification as JSON-LD: the body itself for JSON-LD, the compacted (or
    /// expanded) conversion for Turtle.
    pub json: Value,
    /// Its RDF dataset.
    pub dataset: Dataset,
}

/// Why a notification was refused; each knows its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    /// The media type is not one an inbox accepts (415; answer with `Accept-Post`).
    #[error("unsupported media type {found:?}; send one of: {ACCEPT_POST}")]
    UnsupportedMediaType {
        /// The `Content-Type` received, if any.
        found: Option<String>,
    },
    /// The body is larger than the limit (413).
    #[error("the body is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not JSON (400).
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson {
        /// The parser's message.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The JSON or Turtle nests deeper than the limit (400).
    #[error("the document nests deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// An object names the same member twice (400): which one a reader takes differs
    /// between parsers (I-JSON, RFC 7493, forbids it).
    #[error("duplicate member {key:?} at {pointer}")]
    DuplicateKey {
        /// The repeated name.
        key: String,
        /// The JSON pointer of its second occurrence.
        pointer: String,
    },
    /// Reading the body went past a budget other than depth: triples, output size or time
    /// (400).
    #[error("over budget ({name}): {0}", name = .0.name())]
    OverBudget(Exceeded),
    /// The JSON is not a JSON-LD document: an object or an array of objects (400).
    #[error("a notification must be a JSON object")]
    NotAnObject,
    /// The JSON is not valid JSON-LD (400).
    #[error("invalid JSON-LD: {0}")]
    InvalidJsonLd(String),
    /// The document uses a remote context this inbox does not know (422).
    #[error("unknown remote context {0:?}: this inbox fetches no contexts")]
    UnknownContext(String),
    /// The Turtle is malformed, or not UTF-8 (400).
    #[error("invalid Turtle: {0}")]
    InvalidTurtle(String),
}

impl ReceiveError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            ReceiveError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ReceiveError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ReceiveError::UnknownContext(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A short, stable title for a problem report.
    pub fn title(&self) -> &'static str {
        match self {
            ReceiveError::UnsupportedMediaType { .. } => "Unsupported media type",
            ReceiveError::TooLarge { .. } => "Payload too large",
            ReceiveError::MalformedJson { .. } => "Malformed JSON",
            ReceiveError::TooDeep { .. } => "Nested too deeply",
            ReceiveError::DuplicateKey { .. } => "Duplicate member name",
            ReceiveError::OverBudget(_) => "Over budget",
            ReceiveError::NotAnObject => "Not a JSON-LD document",
            ReceiveError::InvalidJsonLd(_) => "Invalid JSON-LD",
            ReceiveError::UnknownContext(_) => "Unknown remote context",
            ReceiveError::InvalidTurtle(_) => "Invalid Turtle",
        }
    }
}

impl From<Exceeded> for ReceiveError {
    fn from(e: Exceeded) -> Self {
        match e {
            Exceeded::Depth(limit) => ReceiveError::TooDeep { limit },
            other => ReceiveError::OverBudget(other),
        }
    }
}

impl From<StrictJsonError> for ReceiveError {
    fn from(e: StrictJsonError) -> Self {
        match e {
            StrictJsonError::Syntax {
                message,
                line,
                column,
            } => ReceiveError::MalformedJson {
                message,
                line,
                column,
            },
            StrictJsonError::DuplicateKey { key, pointer } => {
                ReceiveError::DuplicateKey { key, pointer }
            }
            StrictJsonError::TooDeep { limit } => ReceiveError::TooDeep { limit },
        }
    }
}

impl From<JsonLdError> for ReceiveError {
    fn from(e: JsonLdError) -> Self {
        match e {
            JsonLdError::UnknownContext(iri) => ReceiveError::UnknownContext(iri),
            JsonLdError::OverBudget(e) => ReceiveError::from(e),
            JsonLdError::Json(m) => ReceiveError::MalformedJson {
                message: m,
                line: 0,
                column: 0,
            },
            other => ReceiveError::InvalidJsonLd(other.to_string()),
        }
    }
}

/// The most term definitions the inline contexts of one document may hold. The JSON-LD
/// processor defines terms recursively (a compact IRI through its prefix, and so on), and
/// its processed context grows with the square of a chain of them.
pub const MAX_INLINE_TERMS: usize = 256;

/// Refuses a document whose expansion could grow past the output budget, or whose inline
/// contexts define more than [`MAX_INLINE_TERMS`] terms: checked on the JSON, before the
/// JSON-LD processor runs.
pub(crate) fn expansion_within(json: &Value, budget: &Budget) -> Result<(), Exceeded> {
    let (bound, terms) = expansion_bound(json);
    if terms > MAX_INLINE_TERMS {
        return Err(Exceeded::ContextTerms(MAX_INLINE_TERMS));
    }
    if bound > budget.max_output_bytes {
        return Err(Exceeded::Output(budget.max_output_bytes));
    }
    Ok(())
}

/// An upper bound of the bytes that expanding `json` can produce from what its inline
/// contexts define, and how many terms they define. Every string and member name may
/// expand to as much as all the strings of the inline contexts together (a term may be
/// defined through a chain of prefixes, each adding its own; a term mapped to a 100 KB IRI
/// and used 30 000 times asks for 3 GB). Registered contexts are the operator's, with short
/// IRIs; a document without inline contexts is bounded by its own size. Measured without
/// recursion.
fn expansion_bound(json: &Value) -> (usize, usize) {
    let (mut context_bytes, mut terms, mut strings, mut bytes) = (0usize, 0usize, 0usize, 0usize);
    let mut stack = vec![(json, false)];
    while let Some((v, in_context)) = stack.pop() {
        match v {
            Value::String(s) if in_context => context_bytes = context_bytes.saturating_add(s.len()),
            Value::String(s) => {
                strings += 1;
                bytes += s.len();
            }
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, in_context))),
            Value::Object(map) => {
                for (k, v) in map {
                    let context = in_context || (k == "@context" && !v.is_string());
                    if context {
                        context_bytes = context_bytes.saturating_add(k.len());
                        terms += usize::from(in_context);
                    } else {
                        strings += 1;
                        bytes += k.len();
                    }
                    stack.push((v, context));
                }
            }
            _ => {}
        }
    }
    (
        bytes.saturating_add(strings.saturating_mul(context_bytes)),
        terms,
    )
}

/// Receives notifications: checks media type, size and nesting, processes JSON-LD with
/// the registered contexts only, or parses Turtle.
#[derive(Debug, Clone)]
pub struct Receiver {
    contexts: Contexts,
    config: ReceiverConfig,
}

impl Receiver {
    /// A receiver with these contexts and limits.
    pub fn new(contexts: Contexts, config: ReceiverConfig) -> Receiver {
        Receiver { contexts, config }
    }

    /// The registered contexts.
    pub fn contexts(&self) -> &Contexts {
        &self.contexts
    }

    /// The limits and options.
    pub fn config(&self) -> &ReceiverConfig {
        &self.config
    }

    /// Reads one POSTed notification. `base` resolves relative IRIs, in Turtle and in
    /// JSON-LD (where `"@id": ""`, as the W3C LDN test suite sends, is the notification
    /// itself): use the URL the notification has or will get, or the inbox URL.
    pub fn receive(
        &self,
        content_type: Option<&str>,
        body: &[u8],
        base: Option<&str>,
    ) -> Result<Received, ReceiveError> {
        let (checked, dataset) = self.read(content_type, body, base, true)?;
        Ok(Received {
            original: body.to_vec(),
            format: checked.format,
            json: checked.json,
            // `read` builds the dataset when asked; an empty one would be its bug.
            dataset: dataset.unwrap_or_default(),
        })
    }

    /// [`receive`](Self::receive) without the RDF dataset, which is what an inbox needs to
    /// accept a notification: a JSON-LD body is still expanded with the registered contexts
    /// (so it is refused exactly when `receive` would refuse it), but not turned into RDF,
    /// which costs about as much again.
    pub fn check(
        &self,
        content_type: Option<&str>,
        body: &[u8],
        base: Option<&str>,
    ) -> Result<Checked, ReceiveError> {
        self.read(content_type, body, base, false)
            .map(|(checked, _)| checked)
    }

    fn read(
        &self,
        content_type: Option<&str>,
        body: &[u8],
        base: Option<&str>,
        dataset: bool,
    ) -> Result<(Checked, Option<Dataset>), ReceiveError> {
        let format = content_type.and_then(body_format).ok_or_else(|| {
            ReceiveError::UnsupportedMediaType {
                found: content_type.map(str::to_owned),
            }
        })?;
        if body.len() > self.config.max_bytes {
            return Err(ReceiveError::TooLarge {
                size: body.len(),
                limit: self.config.max_bytes,
            });
        }
        match format {
            BodyFormat::JsonLd => self.json_ld(body, dataset, base),
            BodyFormat::Turtle => self
                .turtle(body, base)
                .map(|(checked, dataset)| (checked, Some(dataset))),
        }
    }

    fn json_ld(
        &self,
        body: &[u8],
        want_dataset: bool,
        base: Option<&str>,
    ) -> Result<(Checked, Option<Dataset>), ReceiveError> {
        // Strict JSON first: exact positions in errors, no repeated member names, and a
        // depth limit applied while parsing, which keeps the JSON-LD processor (which
        // recurses) away from hostile nesting.
        let json = parse_strict(body, self.config.budget.max_depth)?;
        let is_document = match &json {
            Value::Object(_) => true,
            Value::Array(items) => !items.is_empty() && items.iter().all(Value::is_object),
            _ => false,
        };
        if !is_document {
            return Err(ReceiveError::NotAnObject);
        }
        let budget = &self.config.budget;
        expansion_within(&json, budget)?;
        let deadline = Deadline::start(budget);
        // serde_json accepted it, so it is UTF-8.
        let text =
            std::str::from_utf8(body).map_err(|e| ReceiveError::InvalidJsonLd(e.to_string()))?;
        // No triple budget here: a JSON-LD document's triples are bounded by its values,
        // which its size bounds, and `check` (which builds no dataset) must refuse exactly
        // what `receive` refuses.
        let (dataset, says_something) = if want_dataset {
            let (dataset, says) = self.contexts.to_dataset_prechecked(text, base)?;
            (Some(dataset), says)
        } else {
            let expanded = self.contexts.expand_prechecked(text, base)?;
            (None, crate::jsonld::states_something(&expanded))
        };
        deadline.check()?;
        // `{"hello": "world"}` is JSON, and JSON-LD that says nothing: without a context
        // that maps its terms to IRIs, expansion drops every member. It is no notification.
        if !says_something {
            return Err(ReceiveError::InvalidJsonLd(
                "the document expands to an empty graph: no @context maps its terms to IRIs, \
                 so it states nothing"
                    .into(),
            ));
        }
        let checked = Checked {
            format: BodyFormat::JsonLd,
            json,
        };
        Ok((checked, dataset))
    }

    fn turtle(&self, body: &[u8], base: Option<&str>) -> Result<(Checked, Dataset), ReceiveError> {
        let budget = &self.config.budget;
        let deadline = Deadline::start(budget);
        let text = std::str::from_utf8(body)
            .map_err(|e| ReceiveError::InvalidTurtle(format!("not UTF-8: {e}")))?;
        let rdf_error = |e: RdfError| match e {
            RdfError::OverBudget(e) => ReceiveError::from(e),
            other => ReceiveError::InvalidTurtle(other.to_string()),
        };
        let dataset = Dataset::parse_turtle_within(text, base, budget).map_err(rdf_error)?;
        if dataset.is_empty() {
            return Err(ReceiveError::InvalidTurtle(
                "the document has no triples".into(),
            ));
        }
        let expanded = dataset.to_json_ld_within(budget).map_err(rdf_error)?;
        deadline.check()?;
        let json = match &self.config.compact_context {
            Some(context) => self.contexts.compact(&expanded, context)?,
            None => expanded,
        };
        deadline.check()?;
        let checked = Checked {
            format: BodyFormat::Turtle,
            json,
        };
        Ok((checked, dataset))
    }
}
