//! RFC 8288 `Link` headers: parsing (for discovery) and writing (for advertising an inbox).
//!
//! The parser is total and linear: any input gives a list of the links it could read, never
//! a panic, and malformed parts are skipped rather than guessed at.

use url::Url;

/// The LDN inbox relation.
pub const LDP_INBOX: &str = "http://www.w3.org/ns/ldp#inbox";
/// The LDP constraints relation.
pub const LDP_CONSTRAINED_BY: &str = "http://www.w3.org/ns/ldp#constrainedBy";

/// One link of a `Link` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The target URI reference, as written between `<` and `>`.
    pub target: String,
    /// The relation types (`rel` may hold several, space-separated).
    pub rels: Vec<String>,
    /// Every parameter, names lower-cased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Link {
    /// Whether the link has relation `rel` (compared case-insensitively, as RFC 8288 says
    /// for registered types; extension types are URIs and compared as written too).
    pub fn has_rel(&self, rel: &str) -> bool {
        self.rels
            .iter()
            .any(|r| r == rel || r.eq_ignore_ascii_case(rel))
    }

    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one `Link` header value, which may hold several comma-separated links.
pub fn parse_link_header(value: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let mut chars = value.char_indices();
    // Where a link starts when the previous one ended at its `<`.
    let mut pending: Option<usize> = None;
    loop {
        // Skip to the next `<`.
        let start = pending.take().or_else(|| {
            loop {
                match chars.next() {
                    Some((i, '<')) => break Some(i + 1),
                    Some(_) => continue,
                    None => break None,
                }
            }
        });
        let Some(start) = start else { break };
        let end = loop {
            match chars.next() {
                Some((i, '>')) => break Some(i),
                Some(_) => continue,
                None => break None,
            }
        };
        let Some(end) = end else { break };
        let target = value[start..end].trim().to_owned();
        // Parameters until a comma outside a quoted string, or the end.
        let mut params = Vec::new();
        let mut name = String::new();
        let mut val = String::new();
        let mut in_value = false;
        let mut quoted = false;
        let mut valid = true;
        let finish = |name: &mut String, val: &mut String, params: &mut Vec<(String, String)>| {
            let n = name.trim().to_ascii_lowercase();
            if !n.is_empty() {
                params.push((n, val.trim().to_owned()));
            }
            name.clear();
            val.clear();
        };
        while let Some((i, c)) = chars.next() {
            if quoted {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            val.push(escaped);
                        }
                    }
                    '"' => quoted = false,
                    _ => val.push(c),
                }
                continue;
            }
            match c {
                ';' => {
                    finish(&mut name, &mut val, &mut params);
                    in_value = false;
                }
                ',' => break,
                '=' if !in_value => in_value = true,
                '"' if in_value && val.trim().is_empty() => quoted = true,
                '<' => {
                    // A new link began without a comma: the previous one was malformed.
                    pending = Some(i + 1);
                    valid = false;
                    break;
                }
                _ if in_value => val.push(c),
                _ => name.push(c),
            }
        }
        finish(&mut name, &mut val, &mut params);
        if !valid {
            continue;
        }
        let rels = params
            .iter()
            .filter(|(n, _)| n == "rel")
            .take(1) // RFC 8288: only the first rel parameter counts
            .flat_map(|(_, v)| v.split_ascii_whitespace().map(str::to_owned))
            .collect();
        links.push(Link {
            target,
            rels,
            params,
        });
    }
    links
}

/// The first target with relation `rel` across several `Link` header values, resolved
/// against `base` (relative targets are allowed).
pub fn find_link<'a>(
    headers: impl IntoIterator<Item = &'a str>,
    rel: &str,
    base: &Url,
) -> Option<Url> {
    headers
        .into_iter()
        .flat_map(parse_link_header)
        .filter(|l| l.has_rel(rel))
        .find_map(|l| base.join(&l.target).ok())
}

/// A `Link` header value: `<target>; rel="rel"` (`<` and `>` in the target escaped).
pub fn link_value(target: &str, rel: &str) -> String {
    format!(
        "<{}>; rel=\"{rel}\"",
        target.replace('>', "%3E").replace('<', "%3C")
    )
}

/// The `Link` header value that advertises `inbox` as the LDN inbox of a resource.
pub fn inbox_link_header(inbox: &str) -> String {
    link_value(inbox, LDP_INBOX)
}

/// The `Link` header value that points at the constraints of an inbox.
pub fn constrained_by_link_header(constraints: &str) -> String {
    link_value(constraints, LDP_CONSTRAINED_BY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(value: &str, rel: &str) -> Vec<String> {
        parse_link_header(value)
            .into_iter()
            .filter(|l| l.has_rel(rel))
            .map(|l| l.target)
            .collect()
    }

    #[test]
    fn table() {
        let inbox = LDP_INBOX;
        let cases: &[(&str, &[&str])] = &[
            (
                r#"<https://a.example/inbox>; rel="http://www.w3.org/ns/ldp#inbox""#,
                &["https://a.example/inbox"],
            ),
            (
                r#"<https://a.example/inbox>; rel=http://www.w3.org/ns/ldp#inbox"#,
                &["https://a.example/inbox"],
            ),
            (
                r#"<x>; rel="next", <https://a.example/i>; rel="describedby http://www.w3.org/ns/ldp#inbox""#,
                &["https://a.example/i"],
            ),
            (
                r#"<https://a.example/i>;rel="http://www.w3.org/ns/ldp#inbox";title="a, b; c""#,
                &["https://a.example/i"],
            ),
            (
                r#"<https://a.example/i>; title="say \"hi\", ok"; rel="http://www.w3.org/ns/ldp#inbox""#,
                &["https://a.example/i"],
            ),
            (
                r#"<https://a.example/i>; REL="http://www.w3.org/ns/ldp#inbox""#,
                &["https://a.example/i"],
            ),
            (
                r#"<https://a.example/1>; rel="other" , <https://a.example/2>; rel="http://www.w3.org/ns/ldp#inbox""#,
                &["https://a.example/2"],
            ),
            (
                r#"</inbox/>; rel="http://www.w3.org/ns/ldp#inbox""#,
                &["/inbox/"],
            ),
            // Only the first rel counts.
            (
                r#"<https://a.example/i>; rel="next"; rel="http://www.w3.org/ns/ldp#inbox""#,
                &[],
            ),
            // Hostile and malformed inputs.
            ("", &[]),
            ("garbage", &[]),
            ("<", &[]),
            ("<https://a.example/i", &[]),
            (
                r#"<https://a.example/i>; rel="http://www.w3.org/ns/ldp#inbox"#,
                &["https://a.example/i"],
            ),
            (
                r#"<a> <https://a.example/i>; rel="http://www.w3.org/ns/ldp#inbox""#,
                &["https://a.example/i"],
            ),
            (";;;,,,<>;=;=\"", &[]),
        ];
        for (value, want) in cases {
            assert_eq!(targets(value, inbox), *want, "{value}");
        }
    }

    #[test]
    fn hostile_sizes_are_linear() {
        let many = "<a>; rel=x, ".repeat(100_000);
        assert_eq!(parse_link_header(&many).len(), 100_000);
        let open = "<".repeat(1_000_000);
        assert!(parse_link_header(&open).is_empty());
        let quotes = format!("<a>; rel=\"{}", "\\".repeat(1_000_001));
        assert_eq!(parse_link_header(&quotes).len(), 1);
    }

    #[test]
    fn several_headers_and_relative_targets() {
        let base = Url::parse("https://repo.example/items/1?x=1").unwrap();
        let headers = [
            r#"<https://repo.example/>; rel="home""#,
            r#"<../inbox/>; rel="http://www.w3.org/ns/ldp#inbox""#,
        ];
        assert_eq!(
            find_link(headers, LDP_INBOX, &base).unwrap().as_str(),
            "https://repo.example/inbox/"
        );
        assert_eq!(find_link([r#"<x>; rel="home""#], LDP_INBOX, &base), None);
    }

    #[test]
    fn advertising_round_trips() {
        let value = inbox_link_header("https://repo.example/inbox");
        assert_eq!(
            value,
            r#"<https://repo.example/inbox>; rel="http://www.w3.org/ns/ldp#inbox""#
        );
        assert_eq!(targets(&value, LDP_INBOX), ["https://repo.example/inbox"]);
        let c = constrained_by_link_header("https://repo.example/constraints");
        assert_eq!(
            targets(&c, LDP_CONSTRAINED_BY),
            ["https://repo.example/constraints"]
        );
    }
}
