//! RDF datasets with `sophia`: built from JSON-LD (bridging the `json-ld` crate's quads to
//! sophia terms), parsed from Turtle or N-Quads, serialized as Turtle, N-Triples, N-Quads or
//! JSON-LD, compared up to blank-node renaming, and queried for discovery.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value, json};
use sophia::{
    api::{
        prelude::*,
        term::{BnodeId, IriRef, LanguageTag, SimpleTerm, Term as _},
    },
    iri::resolve::BaseIriRef,
    turtle::{
        parser::{nq, turtle::TurtleParser},
        serializer::{
            nq::NQuadsSerializer,
            nt::NTriplesSerializer,
            turtle::{TurtleConfig, TurtleSerializer},
        },
    },
};

use crate::{
    budget::{Budget, Deadline, Exceeded, turtle_nesting},
    conneg::RdfFormat,
};

/// An RDF term, owned.
pub type Term = SimpleTerm<'static>;
/// A quad: subject, predicate, object, and the graph (`None`: the default graph).
pub type Quad = ([Term; 3], Option<Term>);

const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
const XSD_STRING: &str = "http://www.w3.org/2001/XMLSchema#string";

/// Why RDF could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdfError {
    /// The Turtle or N-Quads text is malformed.
    #[error("invalid {format}: {message}")]
    Syntax {
        /// `Turtle` or `N-Quads`.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// The base IRI is not an absolute IRI.
    #[error("invalid base IRI {0:?}")]
    Base(String),
    /// Serialization failed.
    #[error("cannot serialize: {0}")]
    Serialize(String),
    /// The document went past one of its [`Budget`]s.
    #[error("{0}")]
    OverBudget(Exceeded),
}

impl From<Exceeded> for RdfError {
    fn from(e: Exceeded) -> Self {
        RdfError::OverBudget(e)
    }
}

/// An RDF dataset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    quads: Vec<Quad>,
}

pub(crate) fn iri(s: impl Into<String>) -> Term {
    SimpleTerm::Iri(IriRef::new_unchecked(s.into().into()))
}

/// The IRI of a term, if it is one.
pub fn term_iri(t: &Term) -> Option<&str> {
    match t {
        SimpleTerm::Iri(i) => Some(i.as_str()),
        _ => None,
    }
}

impl Dataset {
    /// A dataset of these quads. RDF datasets are sets: a repeated quad is kept once (a
    /// node described twice in JSON-LD gives its triples twice).
    pub fn from_quads(quads: Vec<Quad>) -> Dataset {
        let mut seen = HashSet::with_capacity(quads.len());
        let quads = quads
            .into_iter()
            .filter(|q| seen.insert(q.clone()))
            .collect();
        Dataset { quads }
    }

    /// Converts the `json-ld` crate's RDF output.
    pub(crate) fn from_json_ld(
        quads: impl Iterator<
            Item = json_ld::rdf::Quad<
                json_ld::IriBuf,
                json_ld::BlankIdBuf,
                json_ld::rdf_types::Literal,
            >,
        >,
    ) -> Dataset {
        use json_ld::rdf_types::{Id, LiteralType, Term as T};
        let id = |i: Id| match i {
            Id::Iri(i) => iri(i.into_string()),
            Id::Blank(b) => {
                SimpleTerm::BlankNode(BnodeId::new_unchecked(b.suffix().to_owned().into()))
            }
        };
        let quads = quads
            .map(|json_ld::rdf_types::Quad(s, p, o, g)| {
                let o = match o {
                    T::Id(i) => id(i),
                    T::Literal(l) => match l.type_ {
                        LiteralType::Any(dt) => SimpleTerm::LiteralDatatype(
                            l.value.into(),
                            IriRef::new_unchecked(dt.into_string().into()),
                        ),
                        LiteralType::LangString(tag) => SimpleTerm::LiteralLanguage(
                            l.value.into(),
                            LanguageTag::new_unchecked(tag.as_str().to_owned().into()),
                            None,
                        ),
                    },
                };
                ([id(s), id(p), o], g.map(id))
            })
            .collect();
        Dataset::from_quads(quads)
    }

    /// Parses Turtle within the default [`Budget`]; relative IRIs resolve against `base`
    /// when given.
    pub fn parse_turtle(text: &str, base: Option<&str>) -> Result<Dataset, RdfError> {
        Dataset::parse_turtle_within(text, base, &Budget::default())
    }

    /// Parses Turtle, stopping with [`RdfError::OverBudget`] as soon as the text nests
    /// deeper than `budget.max_depth`, holds more than `budget.max_triples` triples or takes
    /// longer than `budget.max_time`.
    pub fn parse_turtle_within(
        text: &str,
        base: Option<&str>,
        budget: &Budget,
    ) -> Result<Dataset, RdfError> {
        let deadline = Deadline::start(budget);
        turtle_nesting(text, budget.max_depth)?;
        let base = base
            .map(|b| {
                BaseIriRef::new(b.to_owned().into_boxed_str())
                    .map_err(|_| RdfError::Base(b.to_owned()))
            })
            .transpose()?;
        let mut quads: Vec<Quad> = Vec::new();
        // The terms' bytes count against the output budget too: a prefix bound to a long
        // IRI makes every use of it that long.
        let mut bytes = 0usize;
        let parse = || {
            TurtleParser::new()
                .with_base(base)
                .parse_str(text)
                .try_for_each_triple(|t| {
                    if quads.len() >= budget.max_triples {
                        return Err(Exceeded::Triples(budget.max_triples));
                    }
                    if quads.len() % 256 == 255 {
                        deadline.check()?;
                    }
                    let triple: [Term; 3] =
                        [t.s().into_term(), t.p().into_term(), t.o().into_term()];
                    bytes = triple
                        .iter()
                        .fold(bytes, |n, t| n.saturating_add(term_bytes(t)));
                    if bytes > budget.max_output_bytes {
                        return Err(Exceeded::Output(budget.max_output_bytes));
                    }
                    quads.push((triple, None));
                    Ok(())
                })
        };
        // The parser is a peer's input away from its own bugs: sophia 0.10 slices a long
        // string two bytes past a quote that does not close it, inside the next character
        // when that one is not ASCII (`"""a"é"""`). A panic is a malformed document, not
        // a crash.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)) {
            Ok(Ok(())) => Ok(Dataset { quads }),
            Ok(Err(sophia::api::source::StreamError::SinkError(e))) => Err(e.into()),
            Ok(Err(sophia::api::source::StreamError::SourceError(e))) => Err(RdfError::Syntax {
                format: "Turtle",
                message: e.to_string(),
            }),
            Err(_) => Err(RdfError::Syntax {
                format: "Turtle",
                message: "the parser failed on this input".into(),
            }),
        }
    }

    /// Parses N-Quads.
    pub fn parse_nquads(text: &str) -> Result<Dataset, RdfError> {
        let quads: Vec<Quad> =
            nq::parse_str(text)
                .collect_quads()
                .map_err(|e| RdfError::Syntax {
                    format: "N-Quads",
                    message: e.to_string(),
                })?;
        Ok(Dataset::from_quads(quads))
    }

    /// The quads.
    pub fn quads(&self) -> &[Quad] {
        &self.quads
    }

    /// How many quads.
    pub fn len(&self) -> usize {
        self.quads.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.quads.is_empty()
    }

    /// Whether both hold the same quads up to blank-node renaming.
    pub fn isomorphic(&self, other: &Dataset) -> bool {
        sophia::isomorphism::isomorphic_datasets(&self.quads, &other.quads).unwrap_or(false)
    }

    /// The IRIs `o` of the triples `<subject> <predicate> o` (any graph).
    pub fn objects(&self, subject: &str, predicate: &str) -> Vec<&str> {
        self.quads
            .iter()
            .filter(|([s, p, _], _)| term_iri(s) == Some(subject) && term_iri(p) == Some(predicate))
            .filter_map(|([_, _, o], _)| term_iri(o))
            .collect()
    }

    fn triples(&self) -> impl Iterator<Item = &[Term; 3]> {
        self.quads.iter().map(|(t, _)| t)
    }

    /// The dataset in `format`. JSON-LD is the expanded tree of [`Dataset::to_json_ld`].
    pub fn serialize(&self, format: RdfFormat) -> Result<String, RdfError> {
        let err = |e: &dyn std::fmt::Display| RdfError::Serialize(e.to_string());
        match format {
            RdfFormat::JsonLd => Ok(self.to_json_ld()?.to_string()),
            RdfFormat::NQuads => Ok(NQuadsSerializer::new_stringifier()
                .serialize_dataset(&self.quads)
                .map_err(|e| err(&e))?
                .as_str()
                .to_owned()),
            RdfFormat::NTriples => {
                let triples = self.triples().map(Ok::<_, std::convert::Infallible>);
                Ok(NTriplesSerializer::new_stringifier()
                    .serialize_triples(triples)
                    .map_err(|e| err(&e))?
                    .as_str()
                    .to_owned())
            }
            RdfFormat::Turtle => {
                let triples = self.triples().map(Ok::<_, std::convert::Infallible>);
                Ok(TurtleSerializer::new_stringifier_with_config(
                    TurtleConfig::new().with_pretty(true),
                )
                .serialize_triples(triples)
                .map_err(|e| err(&e))?
                .as_str()
                .to_owned())
            }
        }
    }

    /// The default graph as expanded JSON-LD, within the default [`Budget`]; see
    /// [`to_json_ld_within`](Self::to_json_ld_within).
    pub fn to_json_ld(&self) -> Result<Value, RdfError> {
        self.to_json_ld_within(&Budget::default())
    }

    /// The default graph as expanded JSON-LD, shaped as a tree, the form vocabularies
    /// written in compact JSON expect: from the nodes nothing contains (the roots), every
    /// referenced node is embedded wherever it is referenced, except through `as:inReplyTo`
    /// and `ldp:inbox` (which name things rather than contain them) and except where that
    /// would loop. A node embedded twice is the same node described twice: the RDF is
    /// unchanged. One root gives one node object; several give an array.
    ///
    /// Copying a node at each reference lets a small graph ask for a huge tree, so the
    /// shaping is bounded: embedding deeper than `budget.max_depth`, more than
    /// `budget.max_output_bytes` of output or more than `budget.max_time` is
    /// [`RdfError::OverBudget`].
    pub fn to_json_ld_within(&self, budget: &Budget) -> Result<Value, RdfError> {
        let mut by_subject: HashMap<String, Vec<&[Term; 3]>> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut contained: HashSet<String> = HashSet::new();
        for (t, _) in self.quads.iter().filter(|(_, g)| g.is_none()) {
            let key = node_key(&t[0]);
            if !by_subject.contains_key(&key) {
                order.push(key.clone());
            }
            by_subject.entry(key).or_default().push(t);
            if let Some(k) = contained_key(t) {
                contained.insert(k);
            }
        }
        let mut shaper = Shaper {
            by_subject: &by_subject,
            path: Vec::new(),
            emitted: HashSet::new(),
            output: 0,
            budget,
            deadline: Deadline::start(budget),
        };
        let mut out = Vec::new();
        for root in order.iter().filter(|k| !contained.contains(*k)) {
            out.push(shaper.node(root)?);
        }
        // Nodes only reachable through a cycle, or only named, follow at top level.
        for k in &order {
            if !shaper.emitted.contains(k) {
                out.push(shaper.node(k)?);
            }
        }
        Ok(match out.len() {
            1 => out.pop().unwrap_or(Value::Null),
            _ => Value::Array(out),
        })
    }
}

/// Predicates that name a resource rather than contain it.
const NAMING: [&str; 2] = [
    "https://www.w3.org/ns/activitystreams#inReplyTo",
    "http://www.w3.org/ns/ldp#inbox",
];

/// The node a triple contains (its object, unless the predicate only names it).
fn contained_key(t: &[Term; 3]) -> Option<String> {
    let p = term_iri(&t[1]).unwrap_or_default();
    (p != RDF_TYPE
        && !NAMING.contains(&p)
        && matches!(t[2], SimpleTerm::Iri(_) | SimpleTerm::BlankNode(_)))
    .then(|| node_key(&t[2]))
}

/// The bytes a term holds (triple terms, which the budget keeps shallow, by their parts).
fn term_bytes(t: &Term) -> usize {
    match t {
        SimpleTerm::Iri(i) => i.as_str().len(),
        SimpleTerm::BlankNode(b) => b.as_str().len(),
        SimpleTerm::LiteralDatatype(lex, dt) => lex.len() + dt.as_str().len(),
        SimpleTerm::LiteralLanguage(lex, tag, _) => lex.len() + tag.as_str().len(),
        SimpleTerm::Triple(parts) => parts.iter().map(term_bytes).sum(),
        SimpleTerm::Variable(v) => v.as_str().len(),
    }
}

fn node_key(t: &Term) -> String {
    match t {
        SimpleTerm::Iri(i) => i.as_str().to_owned(),
        SimpleTerm::BlankNode(b) => format!("_:{}", b.as_str()),
        other => format!("{other:?}"),
    }
}

struct Shaper<'a> {
    by_subject: &'a HashMap<String, Vec<&'a [Term; 3]>>,
    path: Vec<String>,
    emitted: HashSet<String>,
    /// Bytes of JSON produced so far, counted as the strings go out (with a few bytes of
    /// punctuation each).
    output: usize,
    budget: &'a Budget,
    deadline: Deadline,
}

impl Shaper<'_> {
    fn spend(&mut self, bytes: usize) -> Result<(), Exceeded> {
        self.output = self.output.saturating_add(bytes.saturating_add(16));
        if self.output > self.budget.max_output_bytes {
            return Err(Exceeded::Output(self.budget.max_output_bytes));
        }
        Ok(())
    }

    /// The node `key`, its contained nodes embedded. Recursion is as deep as the embedding,
    /// which `max_depth` bounds.
    fn node(&mut self, key: &str) -> Result<Value, Exceeded> {
        if self.path.len() >= self.budget.max_depth {
            return Err(Exceeded::Depth(self.budget.max_depth));
        }
        self.deadline.check()?;
        self.spend(key.len())?;
        self.emitted.insert(key.to_owned());
        self.path.push(key.to_owned());
        let mut node = Map::new();
        node.insert("@id".into(), json!(key));
        let mut types = Vec::new();
        let mut props: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for t in self.by_subject.get(key).into_iter().flatten().copied() {
            let [_, p, o] = t;
            let p = term_iri(p).unwrap_or_default();
            if p == RDF_TYPE
                && let Some(ty) = term_iri(o)
            {
                self.spend(ty.len())?;
                types.push(json!(ty));
                continue;
            }
            self.spend(p.len())?;
            let value = match o {
                SimpleTerm::Iri(_) | SimpleTerm::BlankNode(_) => {
                    let k = node_key(o);
                    let embed = contained_key(t).is_some()
                        && self.by_subject.contains_key(&k)
                        && !self.path.contains(&k);
                    if embed {
                        self.node(&k)?
                    } else {
                        self.spend(k.len())?;
                        json!({ "@id": k })
                    }
                }
                SimpleTerm::LiteralDatatype(lex, dt) if dt.as_str() == XSD_STRING => {
                    self.spend(lex.len())?;
                    json!({ "@value": &**lex })
                }
                SimpleTerm::LiteralDatatype(lex, dt) => {
                    self.spend(lex.len() + dt.as_str().len())?;
                    json!({ "@value": &**lex, "@type": dt.as_str() })
                }
                SimpleTerm::LiteralLanguage(lex, tag, _) => {
                    self.spend(lex.len() + tag.as_str().len())?;
                    json!({ "@value": &**lex, "@language": tag.as_str() })
                }
                other => {
                    let text = format!("{other:?}");
                    self.spend(text.len())?;
                    json!({ "@value": text })
                }
            };
            props.entry(p.to_owned()).or_default().push(value);
        }
        self.path.pop();
        if !types.is_empty() {
            node.insert("@type".into(), Value::Array(types));
        }
        for (p, values) in props {
            node.insert(p, Value::Array(values));
        }
        Ok(Value::Object(node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: &str = r#"@prefix as: <https://www.w3.org/ns/activitystreams#> .
<urn:x:1> a as:Offer ; as:object [ a as:Page ; as:name "hi"@en ] ; as:summary "x" ;
  as:origin <https://a.example/> .
<https://a.example/> <http://www.w3.org/ns/ldp#inbox> <inbox/> .
"#;

    #[test]
    fn turtle_round_trips_through_every_format() {
        let d = Dataset::parse_turtle(TTL, Some("https://a.example/")).unwrap();
        assert_eq!(d.len(), 7);
        assert_eq!(
            d.objects("https://a.example/", "http://www.w3.org/ns/ldp#inbox"),
            ["https://a.example/inbox/"]
        );
        let ttl = d.serialize(RdfFormat::Turtle).unwrap();
        assert!(
            Dataset::parse_turtle(&ttl, None).unwrap().isomorphic(&d),
            "{ttl}"
        );
        let nq = d.serialize(RdfFormat::NQuads).unwrap();
        assert!(Dataset::parse_nquads(&nq).unwrap().isomorphic(&d), "{nq}");
        let nt = d.serialize(RdfFormat::NTriples).unwrap();
        assert!(Dataset::parse_nquads(&nt).unwrap().isomorphic(&d), "{nt}");
    }

    #[test]
    fn json_ld_embeds_single_references() {
        let d = Dataset::parse_turtle(TTL, Some("https://a.example/")).unwrap();
        let j = d.to_json_ld().unwrap();
        assert_eq!(j["@id"], "urn:x:1");
        assert_eq!(
            j["@type"],
            json!(["https://www.w3.org/ns/activitystreams#Offer"])
        );
        let object = &j["https://www.w3.org/ns/activitystreams#object"][0];
        assert_eq!(
            object["https://www.w3.org/ns/activitystreams#name"][0],
            json!({"@value": "hi", "@language": "en"})
        );
        let origin = &j["https://www.w3.org/ns/activitystreams#origin"][0];
        assert_eq!(origin["@id"], "https://a.example/");
        assert_eq!(
            origin["http://www.w3.org/ns/ldp#inbox"][0],
            json!({"@id": "https://a.example/inbox/"})
        );
        assert_eq!(
            j["https://www.w3.org/ns/activitystreams#summary"][0],
            json!({"@value": "x"})
        );
    }

    #[test]
    fn shaping_stays_within_its_budget() {
        // A chain where every node is referenced twice: 2^40 paths.
        let mut ttl = String::new();
        for i in 0..40 {
            ttl.push_str(&format!(
                "<urn:n:{i}> <urn:p:a> <urn:n:{n}> ; <urn:p:b> <urn:n:{n}> .\n",
                n = i + 1
            ));
        }
        ttl.push_str("<urn:n:40> <urn:p:c> \"end\" .\n");
        let d = Dataset::parse_turtle(&ttl, None).unwrap();
        assert!(matches!(
            d.to_json_ld(),
            Err(RdfError::OverBudget(
                Exceeded::Depth(32) | Exceeded::Output(_)
            ))
        ));
        // One node with many literals, referenced from thousands of places: a small
        // document, a huge tree; refused on output size, not grown.
        let mut ttl = String::from("<urn:hub> ");
        for i in 0..200 {
            ttl.push_str(&format!("<urn:p:{i}> \"{}\" ; ", "x".repeat(40)));
        }
        ttl.push_str("<urn:p:end> 1 .\n");
        for i in 0..3000 {
            ttl.push_str(&format!("<urn:s:{i}> <urn:p> <urn:hub> .\n"));
        }
        let d = Dataset::parse_turtle(&ttl, None).unwrap();
        assert!(ttl.len() < 150_000, "{}", ttl.len());
        assert_eq!(
            d.to_json_ld(),
            Err(RdfError::OverBudget(Exceeded::Output(4 * 1024 * 1024)))
        );
        // A chain of named nodes deeper than the budget is refused, not recursed into.
        let mut ttl = String::new();
        for i in 0..50_000 {
            ttl.push_str(&format!("_:n{i} <urn:p> _:n{} .\n", i + 1));
        }
        let budget = Budget {
            max_triples: 100_000,
            max_time: std::time::Duration::from_secs(60),
            ..Budget::default()
        };
        let d = Dataset::parse_turtle_within(&ttl, None, &budget).unwrap();
        assert_eq!(
            d.to_json_ld_within(&budget),
            Err(RdfError::OverBudget(Exceeded::Depth(32)))
        );
        // A cycle is cut, and nothing is lost.
        let d = Dataset::parse_turtle("<urn:a> <urn:p> <urn:b> . <urn:b> <urn:p> <urn:a> .", None)
            .unwrap();
        let j = d.to_json_ld().unwrap();
        assert_eq!(j["@id"], "urn:a");
        assert_eq!(j["urn:p"][0]["urn:p"][0], json!({"@id": "urn:a"}));
    }

    #[test]
    fn turtle_parsing_stays_within_its_budget() {
        let budget = Budget {
            max_triples: 100,
            ..Budget::default()
        };
        let many: String = (0..101)
            .map(|i| format!("<urn:s> <urn:p> {i} .\n"))
            .collect();
        assert_eq!(
            Dataset::parse_turtle_within(&many, None, &budget),
            Err(RdfError::OverBudget(Exceeded::Triples(100)))
        );
        let deep = format!(
            "<urn:s> <urn:p> {}1{} .",
            "[ <urn:p> ".repeat(40_000),
            " ]".repeat(40_000)
        );
        assert_eq!(
            Dataset::parse_turtle(&deep, None),
            Err(RdfError::OverBudget(Exceeded::Depth(32)))
        );
    }

    #[test]
    fn malformed_text_is_an_error() {
        assert!(matches!(
            Dataset::parse_turtle("<a> <b> .", None),
            Err(RdfError::Syntax { .. })
        ));
        assert!(matches!(
            Dataset::parse_nquads("<a> <b>"),
            Err(RdfError::Syntax { .. })
        ));
        assert!(matches!(
            Dataset::parse_turtle("<a> <b> <c> .", Some("not absolute")),
            Err(RdfError::Base(_))
        ));
    }
}
