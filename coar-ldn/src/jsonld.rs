//! JSON-LD processing with the `json-ld` crate, offline: contexts come only from memory.
//!
//! [`Contexts`] is the document loader. It starts with ActivityStreams 2.0 (bundled in this
//! crate); vocabularies register their own documents (a vocabulary crate can ship them as
//! plain data). Any other remote `@context` is refused with an error naming it: this crate
//! has no network code at all, so a document can never make it fetch anything.

use std::{
    collections::HashMap,
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

use json_ld::{
    IriBuf, JsonLdProcessor, LoadError, Loader, RemoteDocument,
    syntax::{Parse, Value},
};

/// The ActivityStreams 2.0 context document.
pub const ACTIVITYSTREAMS_CONTEXT: &str = include_str!("../contexts/activitystreams.jsonld");

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
    /// A context document given to [`Contexts::register`] is unusable.
    #[error("cannot register context {iri:?}: {message}")]
    BadContext {
        /// The context IRI.
        iri: String,
        /// Why.
        message: String,
    },
}

/// The registered context documents: the offline document loader.
#[derive(Debug, Clone)]
pub struct Contexts {
    docs: HashMap<String, RemoteDocument>,
}

#[derive(Debug, thiserror::Error)]
#[error("not a registered context")]
struct NotRegistered;

impl Loader for Contexts {
    async fn load(&self, url: &json_ld::Iri) -> Result<RemoteDocument<IriBuf>, LoadError> {
        self.docs
            .get(url.as_str())
            .cloned()
            .ok_or_else(|| LoadError::new(url.to_owned(), NotRegistered))
    }
}

impl Default for Contexts {
    /// ActivityStreams 2.0 under its `https` and `http` IRIs.
    fn default() -> Self {
        let mut c = Contexts {
            docs: HashMap::new(),
        };
        for iri in [
            "https://www.w3.org/ns/activitystreams",
            "http://www.w3.org/ns/activitystreams",
        ] {
            c.register(iri, ACTIVITYSTREAMS_CONTEXT)
                .unwrap_or_else(|e| unreachable!("the bundled AS2 context is valid: {e}"));
        }
        c
    }
}

fn parse(text: &str) -> Result<Value, JsonLdError> {
    Value::parse_str(text)
        .map(|(v, _)| v)
        .map_err(|e| JsonLdError::Json(e.to_string()))
}

/// Runs a future that never waits on I/O (the loader is in memory) to completion.
fn run<F: Future>(future: F) -> Result<F::Output, JsonLdError> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return Ok(out);
        }
    }
    Err(JsonLdError::Invalid(
        "JSON-LD processing did not complete".into(),
    ))
}

fn classify(message: String, contexts: &Contexts) -> JsonLdError {
    // The loader's error names the IRI it refused; report it as such.
    match message.split_whitespace().find_map(|w| {
        let w = w.trim_matches(|c: char| c == '`' || c == '"' || c == ':' || c == ',');
        (w.contains("://") && !contexts.docs.contains_key(w)).then(|| w.to_owned())
    }) {
        Some(iri)
            if message.contains("not a registered context") || message.contains("loading") =>
        {
            JsonLdError::UnknownContext(iri)
        }
        _ => JsonLdError::Invalid(message),
    }
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
        Ok(())
    }

    /// Whether `iri` is registered.
    pub fn contains(&self, iri: &str) -> bool {
        self.docs.contains_key(iri)
    }

    /// The document's RDF dataset as N-Quads lines (blank nodes labelled `_:b0`, `_:b1`, …).
    pub fn to_nquads(&self, document: &str) -> Result<Vec<String>, JsonLdError> {
        let input = RemoteDocument::new(None, None, parse(document)?);
        let mut generator = json_ld::rdf_types::generator::Blank::new();
        let mut rdf =
            run(input.to_rdf(&mut generator, self))?.map_err(|e| classify(e.to_string(), self))?;
        Ok(rdf.cloned_quads().map(|q| format!("{q} .")).collect())
    }

    /// Expands the document; returns how many top-level nodes it has.
    pub fn expand_count(&self, document: &str) -> Result<usize, JsonLdError> {
        let input = RemoteDocument::new(None, None, parse(document)?);
        let expanded = run(input.expand(self))?.map_err(|e| classify(e.to_string(), self))?;
        Ok(expanded.len())
    }
}
