//! The inbox as an LDP container: the listing of notification IRIs (`ldp:contains`), its
//! pages, and their serializations.
//!
//! LDN leaves paging open; this crate pages in LDP Paging style: `Link` headers with
//! `rel="first"`, `"next"` and `"prev"`, and the same links in the body. A page that is not
//! the last always links to the next one: a listing is never cut off silently.

use serde_json::{Value, json};

use crate::{
    conneg::RdfFormat,
    link::{LDP_CONSTRAINED_BY, link_value},
};

const LDP: &str = "http://www.w3.org/ns/ldp#";
const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
const IANA: &str = "http://www.iana.org/assignments/relation/";

/// One page of an inbox listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The subject IRI: the inbox URL exactly as requested for the first page, or the page's
    /// URL for later pages.
    pub id: String,
    /// The notification IRIs on this page.
    pub contains: Vec<String>,
    /// Where the inbox's constraints are described (`ldp:constrainedBy`).
    pub constrained_by: Option<String>,
    /// The first page's URL.
    pub first: Option<String>,
    /// The next page's URL, when there is one.
    pub next: Option<String>,
    /// The previous page's URL, when there is one.
    pub prev: Option<String>,
}

impl Listing {
    fn relations(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("first", &self.first),
            ("next", &self.next),
            ("prev", &self.prev),
        ]
        .into_iter()
        .filter_map(|(rel, url)| url.as_deref().map(|u| (rel, u)))
    }

    /// The `Link` header values for this page: paging links and `ldp:constrainedBy`, plus the
    /// container types (`rel="type"`).
    pub fn link_headers(&self) -> Vec<String> {
        let mut out = vec![
            format!("<{LDP}BasicContainer>; rel=\"type\""),
            format!("<{LDP}Resource>; rel=\"type\""),
        ];
        for (rel, url) in self.relations() {
            out.push(link_value(url, rel));
        }
        if let Some(c) = &self.constrained_by {
            out.push(link_value(c, LDP_CONSTRAINED_BY));
        }
        out
    }

    /// JSON-LD with an inline context: a consumer needs no remote context to read it.
    pub fn to_json_ld(&self) -> Value {
        let mut doc = json!({
            "@context": {
                "ldp": LDP,
                "iana": IANA,
                "contains": {"@id": "ldp:contains", "@type": "@id", "@container": "@set"},
                "constrainedBy": {"@id": "ldp:constrainedBy", "@type": "@id"},
                "first": {"@id": "iana:first", "@type": "@id"},
                "next": {"@id": "iana:next", "@type": "@id"},
                "prev": {"@id": "iana:prev", "@type": "@id"},
            },
            "@id": self.id,
            "@type": ["ldp:Container", "ldp:BasicContainer"],
            "contains": self.contains,
        });
        if let Some(c) = &self.constrained_by {
            doc["constrainedBy"] = json!(c);
        }
        for (rel, url) in self.relations() {
            doc[rel] = json!(url);
        }
        doc
    }

    /// The listing's triples, subject–predicate–object, all IRIs.
    pub fn triples(&self) -> Vec<(&str, String, &str)> {
        let mut out = vec![
            (
                self.id.as_str(),
                RDF_TYPE.to_owned(),
                "http://www.w3.org/ns/ldp#Container",
            ),
            (
                self.id.as_str(),
                RDF_TYPE.to_owned(),
                "http://www.w3.org/ns/ldp#BasicContainer",
            ),
        ];
        if let Some(c) = &self.constrained_by {
            out.push((self.id.as_str(), format!("{LDP}constrainedBy"), c.as_str()));
        }
        for (rel, url) in self.relations() {
            out.push((self.id.as_str(), format!("{IANA}{rel}"), url));
        }
        for item in &self.contains {
            out.push((self.id.as_str(), format!("{LDP}contains"), item.as_str()));
        }
        out
    }

    /// The listing in `format`.
    pub fn serialize(&self, format: RdfFormat) -> String {
        match format {
            RdfFormat::JsonLd => self.to_json_ld().to_string(),
            RdfFormat::NTriples | RdfFormat::NQuads => self
                .triples()
                .into_iter()
                .map(|(s, p, o)| format!("{} {} {} .\n", iri(s), iri(&p), iri(o)))
                .collect(),
            RdfFormat::Turtle => {
                let mut out = format!(
                    "@prefix ldp: <{LDP}> .\n\n{} a ldp:Container, ldp:BasicContainer",
                    iri(&self.id)
                );
                for (s, p, o) in self.triples().into_iter().skip(2) {
                    debug_assert_eq!(s, self.id);
                    let p = p
                        .strip_prefix(LDP)
                        .map_or_else(|| iri(&p), |local| format!("ldp:{local}"));
                    out.push_str(&format!(" ;\n    {p} {}", iri(o)));
                }
                out.push_str(" .\n");
                out
            }
        }
    }
}

/// An IRI in N-Triples/Turtle syntax, with the characters those syntaxes forbid escaped.
pub(crate) fn iri(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('<');
    for c in s.chars() {
        match c {
            '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`' | '\\' | '\u{0}'..='\u{20}' => {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            _ => out.push(c),
        }
    }
    out.push('>');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing() -> Listing {
        Listing {
            id: "https://repo.example/inbox/".into(),
            contains: vec![
                "https://repo.example/inbox/1".into(),
                "https://repo.example/inbox/2".into(),
            ],
            constrained_by: Some("https://repo.example/inbox/constraints".into()),
            first: Some("https://repo.example/inbox/".into()),
            next: Some("https://repo.example/inbox/?after=1".into()),
            prev: None,
        }
    }

    #[test]
    fn json_ld_needs_no_remote_context() {
        let doc = listing().to_json_ld();
        assert!(doc["@context"].is_object());
        assert_eq!(doc["@id"], "https://repo.example/inbox/");
        assert_eq!(doc["contains"][1], "https://repo.example/inbox/2");
        assert_eq!(doc["next"], "https://repo.example/inbox/?after=1");
        assert!(doc.get("prev").is_none());
        assert_eq!(doc["@context"]["contains"]["@id"], "ldp:contains");
    }

    #[test]
    fn n_triples_and_turtle() {
        let nt = listing().serialize(RdfFormat::NTriples);
        assert!(nt.contains("<https://repo.example/inbox/> <http://www.w3.org/ns/ldp#contains> <https://repo.example/inbox/1> .\n"));
        assert_eq!(nt.lines().count(), 7);
        let ttl = listing().serialize(RdfFormat::Turtle);
        assert!(ttl.starts_with("@prefix ldp: <http://www.w3.org/ns/ldp#> .\n\n<https://repo.example/inbox/> a ldp:Container, ldp:BasicContainer"));
        assert!(ttl.contains("ldp:contains <https://repo.example/inbox/2>"));
        assert!(ttl.ends_with(" .\n"));
        assert_eq!(iri("http://x/a b>"), "<http://x/a\\u0020b\\u003E>");
    }

    #[test]
    fn link_headers() {
        let links = listing().link_headers();
        assert!(links.contains(&"<https://repo.example/inbox/?after=1>; rel=\"next\"".to_owned()));
        assert!(links.iter().any(|l| l.contains("ldp#constrainedBy")));
        assert!(!links.iter().any(|l| l.contains("\"prev\"")));
    }
}
