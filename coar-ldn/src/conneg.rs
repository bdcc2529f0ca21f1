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

/// The q-value `accept` gives `media_type` (`type/subtype`): that of the most specific
/// range that matches it (exact, then `type/*+suffix` such as `application/*+json`, then
/// `type/*`, then `*/*`). `None` when no range matches, or the one that decides says `q=0`.
pub fn quality(accept: &str, media_type: &str) -> Option<f32> {
    quality_in(&parse_accept(accept), media_type, 0)
}

/// [`quality`], counting only ranges at least `specific` (0 `*/*`, 1 `type/*`, 2
/// `type/*+suffix`, 3 exact).
fn quality_in(ranges: &[Range<'_>], media_type: &str, specific: u8) -> Option<f32> {
    let (kind, subtype) = media_type.split_once('/')?;
    let suffix = subtype.rsplit_once('+').map(|(_, s)| s);
    ranges
        .iter()
        .filter_map(|r| {
            let same_type = r.kind.eq_ignore_ascii_case(kind);
            let specificity = if same_type && r.subtype.eq_ignore_ascii_case(subtype) {
                3
            } else if same_type
                && suffix.is_some_and(|s| {
                    r.subtype
                        .strip_prefix("*+")
                        .is_some_and(|want| want.eq_ignore_ascii_case(s))
                })
            {
                2
            } else if same_type && r.subtype == "*" {
                1
            } else if r.kind == "*" && r.subtype == "*" {
                0
            } else {
                return None;
            };
            (specificity >= specific).then_some((specificity, r.q))
        })
        .max_by_key(|(s, _)| *s)
        .map(|(_, q)| q)
        .filter(|q| *q > 0.0)
}

/// The names a format answers to, its own first: JSON-LD is JSON, and clients that ask for
/// `application/json` (many do by default) read it as such.
fn names(format: RdfFormat) -> &'static [&'static str] {
    match format {
        RdfFormat::JsonLd => &["application/ld+json", "application/json"],
        RdfFormat::Turtle => &["text/turtle"],
        RdfFormat::NTriples => &["application/n-triples"],
        RdfFormat::NQuads => &["application/n-quads"],
    }
}

/// The q-value `accept` gives `format` under any of its names; a format's other names
/// count only where asked for by name (a client that refuses `application/ld+json` and
/// accepts `*/*` gets another format).
fn format_quality(ranges: &[Range<'_>], format: RdfFormat) -> Option<f32> {
    names(format)
        .iter()
        .enumerate()
        .filter_map(|(i, name)| quality_in(ranges, name, if i == 0 { 0 } else { 3 }))
        .max_by(f32::total_cmp)
}

/// The highest q-value `accept` gives any of `available`: what another kind of answer (an
/// HTML page, say) must beat to be preferred. `None` when none is acceptable.
pub fn best_quality(accept: &str, available: &[RdfFormat]) -> Option<f32> {
    let ranges = parse_accept(accept);
    available
        .iter()
        .filter_map(|f| format_quality(&ranges, *f))
        .max_by(f32::total_cmp)
}

/// Picks the format to answer with. No `Accept` (or an empty one) and `*/*` give JSON-LD;
/// otherwise the available format with the highest q-value ([`quality`] of any of its
/// names: JSON-LD is also `application/json` and `application/*+json`), ties going to the
/// order of `available`.
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
        let q = format_quality(&ranges, format);
        if let Some(q) = q
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

/// The `Content-Type` to answer JSON-LD with: `application/json` for a client that accepts
/// that but not `application/ld+json` (or prefers it), `application/ld+json` otherwise.
pub fn json_ld_content_type(accept: Option<&str>) -> &'static str {
    let ranges = parse_accept(accept.unwrap_or_default());
    let ld = quality_in(&ranges, "application/ld+json", 0).unwrap_or(0.0);
    match quality_in(&ranges, "application/json", 3) {
        Some(plain) if plain > ld => "application/json",
        _ => RdfFormat::JsonLd.content_type(),
    }
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
            (Some("application/json"), Some(JsonLd)),
            (Some("application/json, application/*+json"), Some(JsonLd)),
            (Some("application/*+json"), Some(JsonLd)),
            (
                Some("application/ld+json;q=0, application/json"),
                Some(JsonLd),
            ),
            (
                Some("application/json;q=0.2, text/turtle;q=0.5"),
                Some(Turtle),
            ),
            (Some("application/*+xml"), None),
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
    fn json_ld_answers_as_json_to_whom_asks_for_json() {
        for (accept, want) in [
            (None, "application/ld+json"),
            (Some("*/*"), "application/ld+json"),
            (Some("application/ld+json"), "application/ld+json"),
            (Some("application/json"), "application/json"),
            (
                Some("application/ld+json;q=0, application/json"),
                "application/json",
            ),
            // Spring's default: both are fine, the precise one is sent.
            (
                Some("application/json, application/*+json"),
                "application/ld+json",
            ),
            (
                Some("application/json;q=0.5, application/ld+json"),
                "application/ld+json",
            ),
        ] {
            assert_eq!(json_ld_content_type(accept), want, "{accept:?}");
        }
        assert_eq!(
            quality("application/*+json;q=0.4", "application/ld+json"),
            Some(0.4)
        );
        assert_eq!(quality("application/*+json", "application/json"), None);
        assert_eq!(quality("text/html;q=0, */*", "text/html"), None);
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(quality(browser, "text/html"), Some(1.0));
        assert_eq!(best_quality(browser, &RdfFormat::ALL), Some(0.8));
        assert_eq!(best_quality("text/html", &RdfFormat::ALL), None);
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
