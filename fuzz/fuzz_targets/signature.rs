//! What a sender puts in `Signature-Input`, `Signature` and `Content-Digest`, through the
//! inbox's verifier (`coar_ldn::signature::verify_request`). Input: the three header values
//! and the body, separated by newlines. Never panics; a request that verifies does not
//! verify with its body changed, nor once its window has passed.

#![no_main]

use coar_ldn::signature::{Policy, Request, SigningKey, verify_request};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// The seeds are signed at this time (Unix seconds) with this key.
const NOW: i64 = 1_767_225_600;
const SEED: [u8; 32] = [7; 32];

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let (Some(input), Some(signature), Some(digest)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let body = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("signature-input", input),
        ("signature", signature),
        ("content-digest", digest),
    ] {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(name, v);
        }
    }
    headers.insert("content-type", HeaderValue::from_static("application/ld+json"));
    let key = SigningKey::ed25519_from_seed("fuzz", &SEED).expect("a key from a seed");
    let public = key.verifying_key();
    let req = Request {
        method: "POST",
        target_uri: "https://inbox.example/inbox",
        headers: &headers,
    };
    let resolve = |id: &str| (id == "fuzz").then(|| public.clone());
    let Ok(Some(verified)) = verify_request(&req, body, NOW, Policy::default(), resolve) else {
        return;
    };
    assert!(verified.remember_until >= NOW, "{verified:?}");
    let mut changed = body.to_vec();
    changed.push(b' ');
    assert!(
        verify_request(&req, &changed, NOW, Policy::default(), resolve).is_err(),
        "verified with another body"
    );
    assert!(
        verify_request(&req, body, verified.remember_until + 1, Policy::default(), resolve)
            .is_err(),
        "verified after it should be forgotten"
    );
});
