//! The syntax of values: absolute URIs (RFC 3986), media types, JSON pointer tokens.

/// The longest URI accepted (RFC 9110 recommends supporting at least 8000 octets).
pub const MAX_URI_LEN: usize = 8 * 1024;

/// Escapes one reference token of a JSON pointer (RFC 6901: `~` → `~0`, `/` → `~1`).
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Whether `s` is an absolute URI by RFC 3986: a scheme, `:`, and only URI characters
/// (unreserved, reserved, or `%` followed by two hex digits).
pub fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut sc = scheme.chars();
    if !sc.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !sc.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        || rest.is_empty()
    {
        return false;
    }
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(|c| c.is_ascii_hexdigit());
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b)) {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `s` is an absolute `http` or `https` URI with a host.
pub fn is_http_uri(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &s[8..]
    } else if lower.starts_with("http://") {
        &s[7..]
    } else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    is_uri(s) && !host.is_empty() && !host.starts_with(':')
}

pub(super) fn is_media_type(s: &str) -> bool {
    let essence = s.split(';').next().unwrap_or("").trim();
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(essence.split_once('/'), Some((a, b)) if token(a) && token(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        for ok in [
            "urn:uuid:0370c0fb-bb78-4a9b-87f5-bed307a509dd",
            "urn:uuid:74FFB356-0632-44D9-B176-888DA85758DC",
            "mailto:josiah.carberry@example.com",
            "https://example.org/a%20b?x=1#f",
            "tag:example.org,2026:x",
        ] {
            assert!(is_uri(ok), "{ok}");
        }
        for bad in [
            "",
            "no-scheme",
            "1http://x",
            "http://exa mple.org",
            "https://x/%zz",
            "urn:",
            "é:x",
        ] {
            assert!(!is_uri(bad), "{bad}");
        }
        assert!(is_http_uri("HTTPS://example.org"));
        assert!(is_http_uri("http://user@example.org:8080/x"));
        assert!(!is_http_uri("https://"));
        assert!(!is_http_uri("https:///path"));
        assert!(!is_http_uri("ftp://example.org"));
        assert!(!is_http_uri("urn:uuid:1"));
    }

    #[test]
    fn media_types() {
        assert!(is_media_type("application/pdf"));
        assert!(is_media_type("text/html; charset=utf-8"));
        assert!(!is_media_type("pdf"));
        assert!(!is_media_type("application/"));
    }

    #[test]
    fn pointer_escaping() {
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
    }
}
