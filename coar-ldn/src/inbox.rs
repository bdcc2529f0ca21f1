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
    rdf::{Dataset, RdfError, iri},
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

    /// The listing as an RDF dataset (all IRIs, default graph).
    pub fn to_dataset(&self) -> Dataset {
        let mut triples = vec![
            (RDF_TYPE.to_owned(), format!("{LDP}Container")),
            (RDF_TYPE.to_owned(), format!("{LDP}BasicContainer")),
        ];
        if let Some(c) = &self.constrained_by {
            triples.push((format!("{LDP}constrainedBy"), c.clone()));
        }
        for (rel, url) in self.relations() {
            triples.push((format!("{IANA}{rel}"), url.to_owned()));
        }
        for item in &self.contains {
            triples.push((format!("{LDP}contains"), item.clone()));
        }
        Dataset::from_quads(
            triples
                .into_iter()
                .map(|(p, o)| ([iri(self.id.clone()), iri(p), iri(o)], None))
                .collect(),
        )
    }

    /// The listing in `format`: JSON-LD with an inline context, or the RDF serializations.
    pub fn serialize(&self, format: RdfFormat) -> Result<String, RdfError> {
        match format {
            RdfFormat::JsonLd => Ok(self.to_json_ld().to_string()),
            other => self.to_dataset().serialize(other),
        }
    }
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
    fn rdf_serializations_hold_the_same_graph() {
        let l = listing();
        let d = l.to_dataset();
        assert_eq!(d.len(), 7);
        assert_eq!(
            d.objects(
                "https://repo.example/inbox/",
                "http://www.w3.org/ns/ldp#contains"
            ),
            [
                "https://repo.example/inbox/1",
                "https://repo.example/inbox/2"
            ]
        );
        let ttl = l.serialize(RdfFormat::Turtle).unwrap();
        assert!(
            Dataset::parse_turtle(&ttl, None).unwrap().isomorphic(&d),
            "{ttl}"
        );
        for format in [RdfFormat::NTriples, RdfFormat::NQuads] {
            let text = l.serialize(format).unwrap();
            assert!(
                Dataset::parse_nquads(&text).unwrap().isomorphic(&d),
                "{text}"
            );
        }
        let json = l.serialize(RdfFormat::JsonLd).unwrap();
        assert!(
            crate::Contexts::default()
                .to_dataset(&json)
                .unwrap()
                .isomorphic(&d),
            "{json}"
        );
    }

    #[test]
    fn link_headers() {
        let links = listing().link_headers();
        assert!(links.contains(&"<https://repo.example/inbox/?after=1>; rel=\"next\"".to_owned()));
        assert!(links.iter().any(|l| l.contains("ldp#constrainedBy")));
        assert!(!links.iter().any(|l| l.contains("\"prev\"")));
    }
}
