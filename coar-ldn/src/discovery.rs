//! Inbox discovery without I/O: the caller fetches, these functions read.
//!
//! LDN: look in the `Link` headers and in an RDF representation of the resource; if the
//! first method finds nothing the second must be tried. Link headers are skipped for
//! resource URIs with a fragment (LDN §Discovery).

use url::Url;

use crate::link::{LDP_INBOX, find_link};

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
        let name = tag[name_start..i].to_ascii_lowercase();
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
                value = tag[v_start..i.min(tag.len())].to_owned();
                i += 1;
            } else {
                let v_start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = tag[v_start..i].to_owned();
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
