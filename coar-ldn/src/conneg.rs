//! Content negotiation: which RDF serialization to answer with (RFC 9110 `Accept`, with
//! q-values), and which request bodies an inbox accepts (`Content-Type`, `Accept-Post`).

use std::fmt;

/// The RDF serializations this crate reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RdfFormat {
    /// `application/ld+json` (the LDN default; required for every resource).
    JsonLd,
    /// `text/turtle`.
    Turtle,
    /// `application/n-triples`.
    NTriples,
    /// `application/n-quads`.
    NQuads,
}

impl RdfFormat {
    /// Every format, JSON-LD first (the default).
    pub const ALL: [RdfFormat; 4] = [
        RdfFormat::JsonLd,
        RdfFormat::Turtle,
        RdfFormat::NTriples,
        RdfFormat::NQuads,
    ];

    /// The media type.
    pub fn media_type(self) -> &'static str {
        match self {
            RdfFormat::JsonLd => "application/ld+json",
            RdfFormat::Turtle => "text/turtle",
            RdfFormat::NTriples => "application/n-triples",
            RdfFormat::NQuads => "application/n-quads",
        }
    }

    /// The `Content-Type` to send, with a charset for the text formats.
    pub fn content_type(self) -> &'static str {
        match self {
            RdfFormat::JsonLd => "application/ld+json",
            RdfFormat::Turtle => "text/turtle; charset=utf-8",
            RdfFormat::NTriples => "application/n-triples; charset=utf-8",
            RdfFormat::NQuads => "application/n-quads; charset=utf-8",
        }
    }
}

impl fmt::Display for RdfFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.media_type())
    }
}

/// Nothing the client accepts is available: answer 406.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("none of the acceptable media types ({accept}) is available; available: {available}")]
pub struct NotAcceptable {
    /// The client's `Accept`.
    pub accept: String,
    /// What could have been sent.
    pub available: String,
}

/// One media range of an `Accept` header.
#[derive(Debug, Clone, PartialEq)]
struct Range<'a> {
    kind: &'a str,
    subtype: &'a str,
    q: f32,
}

fn parse_accept(accept: &str) -> Vec<Range<'_>> {
    accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let (kind, subtype) = pieces.next()?.trim().split_once('/')?;
            let (kind, subtype) = (kind.trim(), subtype.trim());
            if kind.is_empty() || subtype.is_empty() {
                return None;
            }
            let mut q = 1.0;
            for p in pieces {
                if let Some((name, value)) = p.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    q = value
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))?;
                }
            }
            Some(Range { kind, subtype, q })
        })
        .collect()
}

/// Picks the format to answer with. No `Accept` (or an empty one) and `*/*` give JSON-LD;
/// otherwise the available format with the highest q-value, where the most specific range
/// that matches a format decides its q-value, and ties go to the order of `available`.
pub fn negotiate(
    accept: Option<&str>,
    available: &[RdfFormat],
) -> Result<RdfFormat, NotAcceptable> {
    let Some(first) = available.first().copied() else {
        return Err(NotAcceptable {
            accept: accept.unwrap_or_default().into(),
            available: String::new(),
        });
    };
    let accept = accept.map(str::trim).filter(|a| !a.is_empty());
    let Some(accept) = accept else {
        return Ok(first);
    };
    let ranges = parse_accept(accept);
    let mut best: Option<(RdfFormat, f32)> = None;
    for &format in available {
        let (kind, subtype) = format.media_type().split_once('/').unwrap_or_default();
        // Specificity: exact (2) > type/* (1) > */* (0).
        let q = ranges
            .iter()
            .filter_map(|r| {
                let exact =
                    r.kind.eq_ignore_ascii_case(kind) && r.subtype.eq_ignore_ascii_case(subtype);
                let by_type = r.kind.eq_ignore_ascii_case(kind) && r.subtype == "*";
                let any = r.kind == "*" && r.subtype == "*";
                let specificity = if exact {
                    2
                } else if by_type {
                    1
                } else if any {
                    0
                } else {
                    return None;
                };
                Some((specificity, r.q))
            })
            .max_by_key(|(s, _)| *s)
            .map(|(_, q)| q);
        if let Some(q) = q
            && q > 0.0
            && best.is_none_or(|(_, b)| q > b)
        {
            best = Some((format, q));
        }
    }
    best.map(|(f, _)| f).ok_or_else(|| NotAcceptable {
        accept: accept.to_owned(),
        available: available
            .iter()
            .map(|f| f.media_type())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// How an inbox reads a POSTed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/ld+json` (any `profile`/`charset`), or `application/json` read as JSON-LD.
    JsonLd,
    /// `text/turtle`.
    Turtle,
}

/// The media types an inbox accepts, for `Accept-Post` (exactly those [`body_format`] reads).
pub const ACCEPT_POST: &str = "application/ld+json, application/json, text/turtle";

/// The body format of a `Content-Type`, or `None` for one an inbox does not accept (415).
pub fn body_format(content_type: &str) -> Option<BodyFormat> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/ld+json")
        || essence.eq_ignore_ascii_case("application/json")
    {
        Some(BodyFormat::JsonLd)
    } else if essence.eq_ignore_ascii_case("text/turtle") {
        Some(BodyFormat::Turtle)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RdfFormat::*;

    #[test]
    fn table() {
        let cases: &[(Option<&str>, Option<RdfFormat>)] = &[
            (None, Some(JsonLd)),
            (Some(""), Some(JsonLd)),
            (Some("*/*"), Some(JsonLd)),
            (Some("application/ld+json"), Some(JsonLd)),
            (
                Some("application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\""),
                Some(JsonLd),
            ),
            (Some("text/turtle"), Some(Turtle)),
            (Some("TEXT/Turtle"), Some(Turtle)),
            (Some("text/*"), Some(Turtle)),
            (Some("application/n-triples"), Some(NTriples)),
            (Some("application/n-quads"), Some(NQuads)),
            (
                Some("text/turtle;q=0.5, application/ld+json;q=0.9"),
                Some(JsonLd),
            ),
            (
                Some("text/turtle;q=0.9, application/ld+json;q=0.5"),
                Some(Turtle),
            ),
            (Some("application/ld+json;q=0, */*"), Some(Turtle)),
            (Some("text/html, */*;q=0.1"), Some(JsonLd)),
            (
                Some("text/html;q=1, application/*;q=0.2, text/turtle;q=0.3"),
                Some(Turtle),
            ),
            (Some("text/html"), None),
            (Some("application/ld+json;q=0"), None),
            (Some("text/turtle;q=2"), None),
            (Some("garbage"), None),
            (Some("image/png, text/plain"), None),
        ];
        for (accept, want) in cases {
            assert_eq!(
                negotiate(*accept, &RdfFormat::ALL).ok(),
                *want,
                "{accept:?}"
            );
        }
        let err = negotiate(Some("text/html"), &[JsonLd, Turtle]).unwrap_err();
        assert_eq!(err.available, "application/ld+json, text/turtle");
    }

    #[test]
    fn post_media_types() {
        assert_eq!(body_format("application/ld+json"), Some(BodyFormat::JsonLd));
        assert_eq!(
            body_format(
                "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"; charset=utf-8"
            ),
            Some(BodyFormat::JsonLd)
        );
        assert_eq!(body_format("application/json"), Some(BodyFormat::JsonLd));
        assert_eq!(
            body_format("text/turtle; charset=utf-8"),
            Some(BodyFormat::Turtle)
        );
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
            "application/ld+jsonx",
        ] {
            assert_eq!(body_format(bad), None, "{bad}");
        }
        for listed in ACCEPT_POST.split(", ") {
            assert!(body_format(listed).is_some(), "{listed}");
        }
    }
}
