//! JSON-LD processing with the `json-ld` crate, offline: contexts come only from memory.
//!
//! [`Contexts`] is the document loader. It starts with ActivityStreams 2.0 (bundled in this
//! crate); vocabularies register their own documents (a vocabulary crate can ship them as
//! plain data). Any other remote `@context` is refused with an error naming it: this crate
//! has no network code, so a document can never make it fetch anything.
//!
//! Processed contexts are cached: a document whose top-level `@context` was seen before is
//! expanded from the cached active context, without processing that context again.

use std::{
    collections::HashMap,
    future::Future,
    pin::pin,
    sync::{Arc, Mutex},
    task::{Context as TaskContext, Poll, Waker},
};

use json_ld::{
    Context, ExpandedDocument, IriBuf, JsonLdProcessor, LoadError, Loader, Process, RemoteDocument,
    expansion::Expand,
    rdf::RdfQuads,
    syntax::{TryFromJson, Value},
};

use crate::rdf::Dataset;

/// The ActivityStreams 2.0 context document.
pub const ACTIVITYSTREAMS_CONTEXT: &str = include_str!("../contexts/activitystreams.jsonld");

/// A small LDP context (`inbox`, `contains`, `constrainedBy`, the container types) for
/// documents that use `"@context": "http://www.w3.org/ns/ldp"`, as LDN's examples do. It is
/// this crate's own subset, not a copy of the W3C document.
pub const LDP_CONTEXT: &str = r#"{"@context": {
  "ldp": "http://www.w3.org/ns/ldp#",
  "inbox": {"@id": "ldp:inbox", "@type": "@id"},
  "contains": {"@id": "ldp:contains", "@type": "@id"},
  "constrainedBy": {"@id": "ldp:constrainedBy", "@type": "@id"},
  "Container": "ldp:Container",
  "BasicContainer": "ldp:BasicContainer",
  "Resource": "ldp:Resource",
  "RDFSource": "ldp:RDFSource"
}}"#;

/// How many distinct processed contexts are kept; past that the cache starts over.
const CACHE_LIMIT: usize = 256;

/// Why a document could not be processed as JSON-LD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonLdError {
    /// The bytes are not JSON.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// The document names a remote context that is not registered; nothing was fetched.
    #[error("unknown remote context {0:?}: only registered contexts are used, nothing is fetched")]
    UnknownContext(String),
    /// The document is JSON but not valid JSON-LD.
    #[error("invalid JSON-LD: {0}")]
    Invalid(String),
    /// A string that may be used as an IRI percent-encodes octets that are not UTF-8. RFC
    /// 3987 allows it, but the JSON-LD processor cannot compare such IRIs (it would panic),
    /// so the document is refused rather than processed.
    #[error("{0:?} percent-encodes octets that are not UTF-8; such IRIs cannot be processed here")]
    NonUtf8Iri(String),
    /// The document goes past a [`Budget`](crate::Budget): nested too deeply, or its
    /// expansion could grow too large. Checked before the JSON-LD processor sees it.
    #[error("{0}")]
    OverBudget(crate::Exceeded),
    /// A context document given to [`Contexts::register`] is unusable.
    #[error("cannot register context {iri:?}: {message}")]
    BadContext {
        /// The context IRI.
        iri: String,
        /// Why.
        message: String,
    },
}

type Processed = Context<IriBuf, json_ld::BlankIdBuf>;

/// Limits on fetching one remote context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// Give up after this long.
    pub timeout: std::time::Duration,
    /// Refuse documents larger than this.
    pub max_bytes: usize,
}

impl Default for FetchLimits {
    /// 5 s and 256 KiB.
    fn default() -> Self {
        FetchLimits {
            timeout: std::time::Duration::from_secs(5),
            max_bytes: 256 * 1024,
        }
    }
}

/// Fetches a remote context document for the opt-in allow-list loader. This crate has no
/// network code: the application supplies the fetching (`coar-client` has an HTTP one). It
/// is called at most once per URL (results are cached) and may block.
pub trait Fetch: Send + Sync {
    /// The document at `url`, or why not.
    fn fetch(&self, url: &str, limits: &FetchLimits) -> Result<String, String>;
}

impl<F: Fn(&str, &FetchLimits) -> Result<String, String> + Send + Sync> Fetch for F {
    fn fetch(&self, url: &str, limits: &FetchLimits) -> Result<String, String> {
        self(url, limits)
    }
}

/// The opt-in remote loading of [`Contexts::allow_remote`].
#[derive(Clone)]
struct Remote {
    prefixes: Vec<String>,
    limits: FetchLimits,
    fetch: Arc<dyn Fetch>,
    fetched: Arc<Mutex<HashMap<String, RemoteDocument>>>,
}

/// The registered context documents (the offline document loader) and the cache of
/// processed contexts. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct Contexts {
    docs: HashMap<String, RemoteDocument>,
    cache: Arc<Mutex<HashMap<String, Arc<Processed>>>>,
    remote: Option<Remote>,
}

impl std::fmt::Debug for Contexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut iris: Vec<&String> = self.docs.keys().collect();
        iris.sort();
        f.debug_struct("Contexts")
            .field("registered", &iris)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not a registered context")]
struct NotRegistered;

#[derive(Debug, thiserror::Error)]
#[error("not a registered context: fetching it failed: {0}")]
struct FetchFailed(String);

impl Loader for Contexts {
    async fn load(&self, url: &json_ld::Iri) -> Result<RemoteDocument<IriBuf>, LoadError> {
        if let Some(doc) = self.docs.get(url.as_str()) {
            return Ok(doc.clone());
        }
        let Some(remote) = &self.remote else {
            return Err(LoadError::new(url.to_owned(), NotRegistered));
        };
        if !remote
            .prefixes
            .iter()
            .any(|p| url.as_str().starts_with(p.as_str()))
        {
            return Err(LoadError::new(url.to_owned(), NotRegistered));
        }
        if let Some(doc) = remote
            .fetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url.as_str())
        {
            return Ok(doc.clone());
        }
        let failed = |m: String| LoadError::new(url.to_owned(), FetchFailed(m));
        let text = remote
            .fetch
            .fetch(url.as_str(), &remote.limits)
            .map_err(failed)?;
        if text.len() > remote.limits.max_bytes {
            return Err(failed(format!(
                "{} bytes, more than {}",
                text.len(),
                remote.limits.max_bytes
            )));
        }
        let value = parse(&text).map_err(|e| failed(e.to_string()))?;
        let mime = "application/ld+json"
            .parse()
            .map_err(|_| failed("media type".into()))?;
        let doc = RemoteDocument::new(Some(url.to_owned()), Some(mime), value);
        remote
            .fetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url.as_str().to_owned(), doc.clone());
        Ok(doc)
    }
}

impl Default for Contexts {
    /// ActivityStreams 2.0 and the LDP subset, under their `https` and `http` IRIs.
    fn default() -> Self {
        let mut c = Contexts {
            docs: HashMap::new(),
            cache: Arc::default(),
            remote: None,
        };
        let bundled = [
            (
                "https://www.w3.org/ns/activitystreams",
                ACTIVITYSTREAMS_CONTEXT,
            ),
            (
                "http://www.w3.org/ns/activitystreams",
                ACTIVITYSTREAMS_CONTEXT,
            ),
            ("http://www.w3.org/ns/ldp", LDP_CONTEXT),
            ("https://www.w3.org/ns/ldp", LDP_CONTEXT),
        ];
        for (iri, doc) in bundled {
            c.register(iri, doc)
                .unwrap_or_else(|e| unreachable!("a bundled context is valid: {e}"));
        }
        c
    }
}

/// Holds a document from anyone to the default [`Budget`](crate::Budget) before the JSON-LD
/// processor (which recurses, and copies IRIs at each use) sees it: strict JSON within the
/// depth, and an expansion that cannot outgrow the output budget.
fn guard(document: &str) -> Result<(), JsonLdError> {
    let budget = crate::Budget::default();
    let value =
        crate::json::parse_strict(document.as_bytes(), budget.max_depth).map_err(|e| match e {
            crate::json::StrictJsonError::TooDeep { limit } => {
                JsonLdError::OverBudget(crate::Exceeded::Depth(limit))
            }
            other => JsonLdError::Json(other.to_string()),
        })?;
    crate::receiver::expansion_within(&value, &budget).map_err(JsonLdError::OverBudget)
}

/// Parses JSON into json-ld's value type through serde_json: no source map is built, and
/// serde_json's recursion limit (128) keeps hostile nesting away from the recursive
/// JSON-LD algorithms.
/// Parses JSON for the JSON-LD processor. Every document, context and base it sees goes
/// through here, so this is where strings it would panic on are refused.
pub(crate) fn parse(text: &str) -> Result<Value, JsonLdError> {
    let value: Value = serde_json::from_str(text).map_err(|e| JsonLdError::Json(e.to_string()))?;
    if text.contains('%')
        && let Some(bad) = first_non_utf8_iri(&value)
    {
        return Err(JsonLdError::NonUtf8Iri(bad.to_owned()));
    }
    Ok(value)
}

/// The first string (key or value) that could become an IRI and percent-encodes octets
/// that are not UTF-8. json-ld's IRI type (through `pct-str` 2) hashes IRIs by their
/// decoded characters and panics on such octets; any string without whitespace may become
/// an IRI (as an `@id`, a `@type`, a term under `@vocab`, a relative reference).
fn first_non_utf8_iri(value: &Value) -> Option<&str> {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if percent_decodes_to_non_utf8(s) => return Some(s),
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => {
                for entry in map.iter() {
                    if percent_decodes_to_non_utf8(&entry.key) {
                        return Some(&entry.key);
                    }
                    stack.push(&entry.value);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether `s` could be an IRI (no whitespace) whose well-formed `%XX` escapes decode to
/// bytes that are not UTF-8. Malformed escapes are left alone: such a string is no IRI.
pub(crate) fn percent_decodes_to_non_utf8(s: &str) -> bool {
    if !s.contains('%') || s.contains(char::is_whitespace) {
        return false;
    }
    let bytes = s.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let byte = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                decoded.push(u8::try_from(byte).unwrap_or(0));
                i += 3;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&decoded).is_err()
}

/// Runs a future that never waits on I/O (the loader is in memory) to completion.
fn run<F: Future>(future: F) -> Result<F::Output, JsonLdError> {
    let mut future = pin!(future);
    let mut cx = TaskContext::from_waker(Waker::noop());
    for _ in 0..1_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return Ok(out);
        }
    }
    Err(JsonLdError::Invalid(
        "JSON-LD processing did not complete".into(),
    ))
}

impl Contexts {
    /// Registers a context document under `iri` (exactly as documents write it).
    pub fn register(&mut self, iri: &str, document: &str) -> Result<(), JsonLdError> {
        let bad = |message: String| JsonLdError::BadContext {
            iri: iri.to_owned(),
            message,
        };
        let url = IriBuf::new(iri.to_owned()).map_err(|e| bad(e.to_string()))?;
        let value = parse(document).map_err(|e| bad(e.to_string()))?;
        let mime = "application/ld+json"
            .parse()
            .map_err(|_| bad("media type".into()))?;
        self.docs.insert(
            iri.to_owned(),
            RemoteDocument::new(Some(url), Some(mime), value),
        );
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(())
    }

    /// Opt-in: also load contexts whose IRI starts with one of `prefixes`, through `fetch`,
    /// within `limits`, each at most once. Off unless called; registered contexts are always
    /// served from memory first.
    pub fn allow_remote(
        mut self,
        prefixes: Vec<String>,
        limits: FetchLimits,
        fetch: Arc<dyn Fetch>,
    ) -> Contexts {
        self.remote = Some(Remote {
            prefixes,
            limits,
            fetch,
            fetched: Arc::default(),
        });
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self
    }

    /// Whether `iri` is registered.
    pub fn contains(&self, iri: &str) -> bool {
        self.docs.contains_key(iri)
    }

    /// The error for a failure inside json-ld: an unregistered remote context is named.
    fn classify(&self, message: String) -> JsonLdError {
        if message.contains("not a registered context") || message.contains("loading") {
            let refused = message.split_whitespace().find_map(|w| {
                let w = w.trim_matches(|c: char| matches!(c, '`' | '"' | ':' | ',' | '(' | ')'));
                (w.contains("://") && !self.docs.contains_key(w)).then(|| w.to_owned())
            });
            if let Some(iri) = refused {
                return JsonLdError::UnknownContext(iri);
            }
        }
        JsonLdError::Invalid(message)
    }

    /// The processed form of a top-level `@context` value, from the cache when seen before.
    pub(crate) fn processed(
        &self,
        context: Value,
        base: Option<&IriBuf>,
    ) -> Result<Arc<Processed>, JsonLdError> {
        // The active context carries the base IRI that relative IRIs resolve against.
        let key = format!("{}\n{context}", base.map_or("", |b| b.as_str()));
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Arc::clone(hit));
        }
        let syntax = json_ld::syntax::context::Context::try_from_json(context)
            .map_err(|e| JsonLdError::Invalid(e.to_string()))?;
        let initial = Processed::new(base.cloned());
        let processed = run(syntax.process_full(
            &mut (),
            &initial,
            self,
            base.cloned(),
            json_ld::context_processing::Options::default(),
            (),
        ))?
        .map_err(|e| self.classify(e.to_string()))?
        .into_processed();
        let processed = Arc::new(processed);
        // Only contexts made of references to registered ones are kept: an inline context
        // is the sender's, and each one kept would be memory a sender chose.
        if key.contains('{') {
            return Ok(processed);
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&processed));
        Ok(processed)
    }

    /// Expands a document, processing its top-level `@context` at most once per distinct
    /// value.
    pub fn expand(&self, document: &str) -> Result<ExpandedDocument, JsonLdError> {
        self.expand_with_base(document, None)
    }

    /// [`expand`](Self::expand), with relative IRIs resolved against `base`. The document
    /// is first held to the default [`Budget`](crate::Budget) (depth, repeated members,
    /// how large its expansion could grow), since it may come from anyone.
    pub fn expand_with_base(
        &self,
        document: &str,
        base: Option<&str>,
    ) -> Result<ExpandedDocument, JsonLdError> {
        guard(document)?;
        self.expand_prechecked(document, base)
    }

    /// [`expand_with_base`](Self::expand_with_base) for a document the caller has already
    /// held to its budget (the receiver does, with its own).
    pub(crate) fn expand_prechecked(
        &self,
        document: &str,
        base: Option<&str>,
    ) -> Result<ExpandedDocument, JsonLdError> {
        let base = base
            .map(|b| {
                if percent_decodes_to_non_utf8(b) {
                    return Err(JsonLdError::NonUtf8Iri(b.to_owned()));
                }
                IriBuf::new(b.to_owned())
                    .map_err(|e| JsonLdError::Invalid(format!("base IRI {b:?}: {e}")))
            })
            .transpose()?;
        let mut value = parse(document)?;
        let context = match &mut value {
            Value::Object(o) => o.remove("@context").next().map(|e| e.value),
            _ => None,
        };
        let active = match context {
            Some(c) => self.processed(c, base.as_ref())?,
            None => Arc::new(Processed::new(base.clone())),
        };
        // The common shape of documents is expanded without json-ld's general algorithm
        // (and without cloning the active context); anything else goes to json-ld.
        if let Some(expanded) = crate::fast::expand(&value, &active) {
            return Ok(expanded);
        }
        self.expand_general(&value, &active, base.as_ref())
    }

    /// json-ld's expansion algorithm, from an already processed active context.
    pub(crate) fn expand_general(
        &self,
        value: &Value,
        active: &Processed,
        base: Option<&IriBuf>,
    ) -> Result<ExpandedDocument, JsonLdError> {
        run(value.expand_full(
            &mut (),
            active.clone(),
            base,
            self,
            json_ld::expansion::Options::default(),
            (),
        ))?
        .map_err(|e| self.classify(e.to_string()))
    }

    /// Expands a document without the cache: the `json-ld` crate's own path, kept as the
    /// reference (and the benchmark's baseline).
    pub fn expand_uncached(&self, document: &str) -> Result<ExpandedDocument, JsonLdError> {
        let input = RemoteDocument::new(None, None, parse(document)?);
        run(JsonLdProcessor::expand(&input, self))?.map_err(|e| self.classify(e.to_string()))
    }

    /// The document's RDF dataset (blank nodes relabelled `_:b0`, `_:b1`, …).
    pub fn to_dataset(&self, document: &str) -> Result<Dataset, JsonLdError> {
        self.to_dataset_with_base(document, None)
    }

    /// [`to_dataset`](Self::to_dataset), with relative IRIs resolved against `base`, held
    /// to the default budget first as [`expand_with_base`](Self::expand_with_base) is.
    pub fn to_dataset_with_base(
        &self,
        document: &str,
        base: Option<&str>,
    ) -> Result<Dataset, JsonLdError> {
        guard(document)?;
        Ok(self.to_dataset_prechecked(document, base)?.0)
    }

    /// [`to_dataset_with_base`](Self::to_dataset_with_base) for a document already held to
    /// its budget, with whether its expansion states anything ([`states_something`]: the
    /// test a receiver applies whether or not it builds the dataset, so that a document
    /// whose only subject is relative, such as `"@id": ""`, counts the same either way).
    pub(crate) fn to_dataset_prechecked(
        &self,
        document: &str,
        base: Option<&str>,
    ) -> Result<(Dataset, bool), JsonLdError> {
        let mut expanded = self.expand_prechecked(document, base)?;
        let says = states_something(&expanded);
        let mut generator = json_ld::rdf_types::generator::Blank::new();
        expanded.relabel_and_canonicalize_with(&mut (), &mut generator);
        let mut vocabulary = ();
        let quads = expanded
            .rdf_quads_full(&mut vocabulary, &mut generator, None, false)
            .cloned();
        Ok((Dataset::from_json_ld(quads), says))
    }

    /// The document's RDF dataset as N-Quads lines.
    pub fn to_nquads(&self, document: &str) -> Result<Vec<String>, JsonLdError> {
        let dataset = self.to_dataset(document)?;
        let text = dataset
            .serialize(crate::RdfFormat::NQuads)
            .map_err(|e| JsonLdError::Invalid(e.to_string()))?;
        Ok(text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect())
    }

    /// Compacts a JSON-LD document (e.g. the expanded form of Turtle) with `context` (a
    /// `@context` value such as `["https://www.w3.org/ns/activitystreams", "…"]`), giving
    /// the compact JSON a vocabulary layer reads.
    pub fn compact(
        &self,
        document: &serde_json::Value,
        context: &serde_json::Value,
    ) -> Result<serde_json::Value, JsonLdError> {
        let input = RemoteDocument::new(None, None, parse(&document.to_string())?);
        let context =
            json_ld::syntax::context::Context::try_from_json(parse(&context.to_string())?)
                .map_err(|e| JsonLdError::Invalid(e.to_string()))?;
        let reference =
            json_ld::RemoteContextReference::Loaded(RemoteDocument::new(None, None, context));
        let compacted =
            run(input.compact(reference, self))?.map_err(|e| self.classify(e.to_string()))?;
        serde_json::from_str(&compacted.to_string())
            .map_err(|e| JsonLdError::Invalid(e.to_string()))
    }
}

/// Whether an expanded document states anything: a node with a type, a property, a
/// reverse property, included nodes, or a graph that itself states something. A document
/// whose terms no context maps expands to nodes with at most an `@id`, which are no triples.
pub(crate) fn states_something(document: &json_ld::ExpandedDocument) -> bool {
    document.iter().any(object_states)
}

fn object_states(object: &json_ld::IndexedObject<json_ld::IriBuf, json_ld::BlankIdBuf>) -> bool {
    match object.inner() {
        json_ld::Object::Node(node) => {
            !node.types().is_empty()
                || !node.properties().is_empty()
                || node.reverse_properties().is_some_and(|r| !r.is_empty())
                || node.included_entry().is_some_and(|i| !i.is_empty())
                || node.graph().is_some_and(|g| g.iter().any(object_states))
        }
        // A value or a list at the top level is dropped from the graph.
        json_ld::Object::Value(_) | json_ld::Object::List(_) => false,
    }
}
