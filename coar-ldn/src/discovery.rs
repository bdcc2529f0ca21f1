//! Inbox discovery without I/O: the caller fetches, these functions read.
//!
//! LDN: look in the `Link` headers and in an RDF representation of the resource; if the
//! first method finds nothing the second must be tried. Link headers are skipped for
//! resource URIs with a fragment (LDN §Discovery).

use url::Url;

use crate::link::{LDP_INBOX, find_link};
#[cfg(feature = "rdf")]
use crate::{
    conneg::{BodyFormat, body_format},
    jsonld::Contexts,
    rdf::Dataset,
};

/// The inbox a representation of `resource` names (feature `rdf`): the triple `<resource> ldp:inbox <x>`
/// in JSON-LD (processed with `contexts`) or Turtle, or an HTML `<link>`. Relative IRIs
/// resolve against the resource URL.
#[cfg(feature = "rdf")]
pub fn inbox_from_body(
    resource: &Url,
    content_type: &str,
    body: &str,
    contexts: &Contexts,
) -> Option<Url> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "text/html" || essence == "application/xhtml+xml" {
        return inbox_from_html(body, resource);
    }
    let dataset = match body_format(content_type)? {
        BodyFormat::JsonLd => contexts
            .to_dataset_with_base(body, Some(resource.as_str()))
            .ok()?,
        BodyFormat::Turtle => Dataset::parse_turtle(body, Some(resource.as_str())).ok()?,
    };
    // The resource as written, and without a fragment (a document describing `#it`).
    let mut subjects = vec![resource.as_str().to_owned()];
    if resource.fragment().is_some() {
        let mut doc = resource.clone();
        doc.set_fragment(None);
        subjects.push(doc.to_string());
    }
    subjects.iter().find_map(|s| {
        dataset
            .objects(s, LDP_INBOX)
            .first()
            .and_then(|i| Url::parse(i).ok())
    })
}

/// LDN discovery over what the caller fetched: the `Link` headers first (skipped for a
/// resource with a fragment), then, when they name no inbox, the body (feature `rdf`).
#[cfg(feature = "rdf")]
pub fn discover<'a>(
    resource: &Url,
    link_headers: impl IntoIterator<Item = &'a str>,
    body: Option<(&str, &str)>,
    contexts: &Contexts,
) -> Option<Url> {
    inbox_from_link_headers(resource, link_headers).or_else(|| {
        body.and_then(|(content_type, text)| {
            inbox_from_body(resource, content_type, text, contexts)
        })
    })
}

/// The inbox advertised in `Link` headers for `resource`, unless the URI has a fragment.
pub fn inbox_from_link_headers<'a>(
    resource: &Url,
    headers: impl IntoIterator<Item = &'a str>,
) -> Option<Url> {
    if resource.fragment().is_some() {
        return None;
    }
    find_link(headers, LDP_INBOX, resource)
}

/// The inbox an HTML page advertises with `<link rel="http://www.w3.org/ns/ldp#inbox"
/// href="…">` (attributes in any order, quoted or not), resolved against `base`.
pub fn inbox_from_html(html: &str, base: &Url) -> Option<Url> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("<link") {
        let start = from + pos + 5;
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        let attrs = parse_attributes(&html[start..end]);
        let rel = attrs
            .iter()
            .find(|(n, _)| n == "rel")
            .map(|(_, v)| v.as_str());
        let href = attrs
            .iter()
            .find(|(n, _)| n == "href")
            .map(|(_, v)| v.as_str());
        if let (Some(rel), Some(href)) = (rel, href)
            && rel.split_ascii_whitespace().any(|r| r == LDP_INBOX)
            && let Ok(url) = base.join(href.trim())
        {
            return Some(url);
        }
        from = end;
    }
    None
}

/// Attributes of an HTML start tag (names lower-cased; values unquoted, entities `&amp;`
/// decoded).
fn parse_attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let bytes = tag.as_bytes();
    // The scan steps over bytes, so a malformed tag can leave it inside a multi-byte
    // character: slices are taken from bytes and decoded leniently, never from `str`.
    let text = |from: usize, to: usize| {
        String::from_utf8_lossy(&bytes[from.min(bytes.len())..to.min(bytes.len())]).into_owned()
    };
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && bytes[i] != b'='
            && bytes[i] != b'/'
        {
            i += 1;
        }
        let name = text(name_start, i).to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let v_start = i + 1;
                i = v_start;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                value = text(v_start, i);
                i += 1;
            } else {
                let v_start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = text(v_start, i);
            }
        }
        if !name.is_empty() {
            out.push((name, value.replace("&amp;", "&")));
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tags_never_panic() {
        let base = Url::parse("https://repo.example/").unwrap();
        for html in [
            "<link =\"a\"é>",
            "<link ='a'éé href=x>",
            "<link rel=\"é",
            "<link é=é>",
            "<LINK\u{301}>",
        ] {
            assert_eq!(inbox_from_html(html, &base), None, "{html}");
        }
    }

    #[test]
    fn link_headers_skip_fragments() {
        let header = [r#"</inbox/>; rel="http://www.w3.org/ns/ldp#inbox""#];
        let r = Url::parse("https://repo.example/item/1").unwrap();
        assert_eq!(
            inbox_from_link_headers(&r, header).unwrap().as_str(),
            "https://repo.example/inbox/"
        );
        let with_fragment = Url::parse("https://repo.example/item/1#x").unwrap();
        assert_eq!(inbox_from_link_headers(&with_fragment, header), None);
    }

    #[test]
    fn rdf_bodies() {
        let contexts = Contexts::default();
        let r = Url::parse("https://repo.example/item/1").unwrap();
        let cases: &[(&str, &str, Option<&str>)] = &[
            // LDN's own example shape: the LDP context, a relative inbox.
            (
                "application/ld+json",
                r#"{"@context": "http://www.w3.org/ns/ldp", "@id": "https://repo.example/item/1", "inbox": "/inbox/"}"#,
                Some("https://repo.example/inbox/"),
            ),
            (
                "application/ld+json",
                r#"{"@context": "https://www.w3.org/ns/activitystreams", "id": "", "inbox": "https://x.example/in"}"#,
                Some("https://x.example/in"),
            ),
            (
                "application/ld+json",
                r#"{"@id": "https://repo.example/item/1", "http://www.w3.org/ns/ldp#inbox": {"@id": "https://y.example/in"}}"#,
                Some("https://y.example/in"),
            ),
            (
                "application/ld+json",
                r#"{"@id": "https://other.example/", "http://www.w3.org/ns/ldp#inbox": {"@id": "https://y.example/in"}}"#,
                None,
            ),
            (
                "application/ld+json",
                r#"{"@context": "https://unknown.example/ctx", "inbox": "x"}"#,
                None,
            ),
            (
                "text/turtle",
                "<> <http://www.w3.org/ns/ldp#inbox> <inbox/> .",
                Some("https://repo.example/item/inbox/"),
            ),
            (
                "text/turtle; charset=utf-8",
                "@prefix ldp: <http://www.w3.org/ns/ldp#> .\n<https://repo.example/item/1> ldp:inbox <https://z.example/> .",
                Some("https://z.example/"),
            ),
            ("text/turtle", "not turtle", None),
            (
                "text/html",
                r#"<link rel="http://www.w3.org/ns/ldp#inbox" href="/h">"#,
                Some("https://repo.example/h"),
            ),
            ("image/png", "", None),
        ];
        for (ct, body, want) in cases {
            assert_eq!(
                inbox_from_body(&r, ct, body, &contexts)
                    .map(|u| u.to_string())
                    .as_deref(),
                *want,
                "{ct} {body}"
            );
        }
    }

    #[test]
    fn links_first_then_body() {
        let contexts = Contexts::default();
        let r = Url::parse("https://repo.example/item/1").unwrap();
        let body = Some((
            "text/turtle",
            "<> <http://www.w3.org/ns/ldp#inbox> <https://body.example/> .",
        ));
        let header = [r#"<https://header.example/>; rel="http://www.w3.org/ns/ldp#inbox""#];
        assert_eq!(
            discover(&r, header, body, &contexts).unwrap().as_str(),
            "https://header.example/"
        );
        assert_eq!(
            discover(&r, [r#"<x>; rel="next""#], body, &contexts)
                .unwrap()
                .as_str(),
            "https://body.example/"
        );
        let fragment = Url::parse("https://repo.example/item/1#it").unwrap();
        let body = Some((
            "text/turtle",
            "<#it> <http://www.w3.org/ns/ldp#inbox> <https://body.example/> .",
        ));
        assert_eq!(
            discover(&fragment, header, body, &contexts)
                .unwrap()
                .as_str(),
            "https://body.example/"
        );
        assert_eq!(discover(&r, [], None, &contexts), None);
    }

    #[test]
    fn html_link_elements() {
        let base = Url::parse("https://repo.example/item/1/").unwrap();
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"<html><head><link rel="http://www.w3.org/ns/ldp#inbox" href="https://x.example/inbox"></head>"#,
                Some("https://x.example/inbox"),
            ),
            (
                r#"<LINK HREF='../../inbox/?a=1&amp;b=2' REL='http://www.w3.org/ns/ldp#inbox'/>"#,
                Some("https://repo.example/inbox/?a=1&b=2"),
            ),
            (
                r#"<link rel=stylesheet href=a.css><link href=/inbox rel="alternate http://www.w3.org/ns/ldp#inbox">"#,
                Some("https://repo.example/inbox"),
            ),
            (r#"<link rel="http://www.w3.org/ns/ldp#inbox">"#, None),
            (
                r#"<a rel="http://www.w3.org/ns/ldp#inbox" href="/no">"#,
                None,
            ),
            ("<link", None),
            ("<link rel=\"unterminated", None),
            ("", None),
        ];
        for (html, want) in cases {
            assert_eq!(
                inbox_from_html(html, &base)
                    .map(|u| u.to_string())
                    .as_deref(),
                *want,
                "{html}"
            );
        }
    }
}
