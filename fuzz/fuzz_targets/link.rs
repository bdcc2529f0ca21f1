//! What a target answers to discovery: `Link` headers (RFC 8288) and HTML `<link>`
//! elements, as `coar_ldn` reads them. Input: the first byte picks which, the rest is the
//! header value or the page. Never panics; what is found is a URL that reads back as itself.

#![no_main]

use coar_ldn::{LDP_INBOX, discovery, link};
use libfuzzer_sys::fuzz_target;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let base = Url::parse("https://peer.example/item/1").expect("a valid base");
    let found = match selector % 3 {
        0 => {
            for l in link::parse_link_header(&text) {
                let _ = l.has_rel(LDP_INBOX);
                let _ = l.param("type");
            }
            link::find_link([text.as_ref()], LDP_INBOX, &base)
        }
        1 => discovery::inbox_from_html(&text, &base),
        _ => discovery::inbox_from_link_headers(&base, text.split('\n')),
    };
    // What is found is a URL that reads back as itself (the client then refuses any but
    // http and https).
    if let Some(url) = found {
        assert_eq!(Url::parse(url.as_str()).as_ref(), Ok(&url), "{url}");
    }
});
