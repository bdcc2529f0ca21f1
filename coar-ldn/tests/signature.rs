//! HTTP Message Signatures: RFC 9421's own Ed25519 vector, every way a signed request can be
//! wrong, and an independent implementation on the other side (pyauth's
//! http-message-signatures, from the venv `.ci/run` makes): it signs requests we verify, and
//! verifies requests we sign, with Ed25519 and RSA-PSS-SHA512.

use std::path::{Path, PathBuf};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use coar_ldn::signature::{
    self, Policy, Request, SignatureError, SigningKey, VerifyingKey, content_digest, sign_request,
    verify_request,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

/// RFC 9421 Appendix B.2.6: the test key `test-key-ed25519` (Appendix B.1.4) over the test
/// request. Ed25519 is deterministic: our signature is the RFC's, byte for byte, and our
/// signature base is the one it verifies against.
#[test]
fn rfc9421_ed25519_test_vector() {
    let seed = URL_SAFE_NO_PAD
        .decode("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU")
        .unwrap();
    let key = SigningKey::ed25519_from_seed("test-key-ed25519", &seed).unwrap();
    let public = VerifyingKey::from_jwk(&json!({
        "kty": "OKP", "crv": "Ed25519", "kid": "test-key-ed25519",
        "x": "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
    }))
    .unwrap();
    assert_eq!(key.verifying_key(), public);
    let base = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@method\": POST\n\"@path\": /foo\n\
                \"@authority\": example.com\n\"content-type\": application/json\n\
                \"content-length\": 18\n\"@signature-params\": (\"date\" \"@method\" \"@path\" \
                \"@authority\" \"content-type\" \"content-length\");created=1618884473;\
                keyid=\"test-key-ed25519\"";
    let expected =
        "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==";
    let signed = key.sign(base.as_bytes()).unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(&signed),
        expected
    );
    // The base our verifier builds from the request is the RFC's.
    let h = headers(&[
        ("Host", "example.com"),
        ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("Content-Type", "application/json"),
        ("Content-Length", "18"),
        (
            "Signature-Input",
            "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \
             \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"",
        ),
        ("Signature", &format!("sig-b26=:{expected}:")),
    ]);
    let req = Request {
        method: "POST",
        target_uri: "http://example.com/foo?param=Value&Pet=dog",
        headers: &h,
    };
    let policy = Policy {
        max_age: 60,
        skew: 60,
        required: &[],
    };
    let verified = verify_request(
        &req,
        br#"{"hello": "world"}"#,
        1_618_884_473,
        policy,
        |id| (id == "test-key-ed25519").then(|| public.clone()),
    )
    .unwrap()
    .expect("a signature");
    assert_eq!(
        (verified.label.as_str(), verified.created),
        ("sig-b26", 1_618_884_473)
    );
    // Our own default policy refuses it: it covers neither the target URI nor the body.
    assert_eq!(
        verify_request(&req, b"", 1_618_884_473, Policy::default(), |_| Some(
            public.clone()
        )),
        Err(SignatureError::NotCovered("@target-uri"))
    );
}

/// A request we sign, as coar-client does (expiring five minutes after `created`).
fn signed(key: &SigningKey, uri: &str, body: &[u8], created: i64) -> HeaderMap {
    signed_until(key, uri, body, created, Some(created + 300))
}

fn signed_until(
    key: &SigningKey,
    uri: &str,
    body: &[u8],
    created: i64,
    expires: Option<i64>,
) -> HeaderMap {
    let mut h = headers(&[
        ("Content-Type", "application/ld+json"),
        ("Content-Digest", &content_digest(body)),
    ]);
    let req = Request {
        method: "POST",
        target_uri: uri,
        headers: &h,
    };
    let (input, value) = sign_request(key, &req, "coar", created, expires).unwrap();
    h.insert("signature-input", HeaderValue::from_str(&input).unwrap());
    h.insert("signature", HeaderValue::from_str(&value).unwrap());
    h
}

#[test]
fn every_way_a_signed_request_can_be_wrong_is_named() {
    let (key, pkcs8) = SigningKey::generate_ed25519("https://sender.example/#key-1").unwrap();
    let public = key.verifying_key();
    assert_eq!(
        SigningKey::from_pem("again", &signature::pkcs8_pem(&pkcs8))
            .unwrap()
            .verifying_key()
            .to_jwk()["x"],
        public.to_jwk()["x"],
        "a key written as PEM reads back"
    );
    let uri = "https://inbox.example/inbox";
    let body = br#"{"type": "Announce"}"#;
    let now = 1_796_000_000;
    let known = |id: &str| (id == public.key_id()).then(|| public.clone());
    let check = |h: &HeaderMap, uri: &str, body: &[u8], at: i64| {
        verify_request(
            &Request {
                method: "POST",
                target_uri: uri,
                headers: h,
            },
            body,
            at,
            Policy::default(),
            known,
        )
    };
    let h = signed(&key, uri, body, now);
    let ok = check(&h, uri, body, now).unwrap().unwrap();
    assert_eq!(ok.key.key_id(), public.key_id());
    assert_eq!(ok.replay_key.len(), 64);
    assert_eq!(
        check(&h, uri, body, now + 10).unwrap().unwrap().replay_key,
        ok.replay_key,
        "the same signature has the same replay key: the caller refuses it the second time"
    );
    assert_eq!(
        ok.remember_until,
        now + 300,
        "as long as it would be accepted"
    );
    assert_ne!(
        check(&signed(&key, uri, body, now + 1), uri, body, now + 1)
            .unwrap()
            .unwrap()
            .replay_key,
        ok.replay_key,
        "another signature, another replay key"
    );
    let reason = |r: Result<Option<signature::Verified>, SignatureError>| r.unwrap_err().reason();
    assert_eq!(
        reason(check(&h, uri, br#"{"type": "Undo"}"#, now)),
        "digest-mismatch"
    );
    assert_eq!(
        reason(check(&h, "https://inbox.example/other", body, now)),
        "bad-signature"
    );
    // Too old with no expires; expired though recent; each alone.
    let no_expiry = signed_until(&key, uri, body, now - 400, None);
    assert_eq!(reason(check(&no_expiry, uri, body, now)), "expired");
    assert!(check(&no_expiry, uri, body, now - 200).unwrap().is_some());
    let short = signed_until(&key, uri, body, now, Some(now + 10));
    assert!(check(&short, uri, body, now + 5).unwrap().is_some());
    assert_eq!(reason(check(&short, uri, body, now + 20)), "expired");
    assert_eq!(
        reason(check(&signed(&key, uri, body, now + 120), uri, body, now)),
        "not-yet-valid"
    );
    let (stranger, _) = SigningKey::generate_ed25519("https://stranger.example/#key").unwrap();
    assert_eq!(
        reason(check(&signed(&stranger, uri, body, now), uri, body, now)),
        "unknown-key"
    );
    // A key published under the right id that did not make the signature.
    let (impostor, _) = SigningKey::generate_ed25519(public.key_id()).unwrap();
    assert_eq!(
        reason(check(&signed(&impostor, uri, body, now), uri, body, now)),
        "bad-signature"
    );
    // The algorithm claimed is not the key's.
    let mut wrong_alg = h.clone();
    let input = h["signature-input"]
        .to_str()
        .unwrap()
        .replace("ed25519", "rsa-pss-sha512");
    wrong_alg.insert("signature-input", HeaderValue::from_str(&input).unwrap());
    assert_eq!(reason(check(&wrong_alg, uri, body, now)), "wrong-algorithm");
    // Headers that do not parse, or come alone; and no signature at all.
    let mut broken = h.clone();
    broken.insert("signature", HeaderValue::from_static("coar=not-bytes"));
    assert_eq!(reason(check(&broken, uri, body, now)), "malformed");
    let mut alone = h.clone();
    alone.remove("signature");
    assert_eq!(reason(check(&alone, uri, body, now)), "malformed");
    let mut plain = h.clone();
    plain.remove("signature");
    plain.remove("signature-input");
    assert_eq!(check(&plain, uri, body, now), Ok(None));
    // Covering too little: a signature over the method alone proves nothing of the body.
    let mut thin = headers(&[("Content-Type", "application/ld+json")]);
    let base = "\"@method\": POST\n\"@signature-params\": (\"@method\");created=1796000000;keyid=\"https://sender.example/#key-1\"";
    let value =
        base64::engine::general_purpose::STANDARD.encode(key.sign(base.as_bytes()).unwrap());
    thin.insert(
        "signature-input",
        HeaderValue::from_static(
            "s=(\"@method\");created=1796000000;keyid=\"https://sender.example/#key-1\"",
        ),
    );
    thin.insert(
        "signature",
        HeaderValue::from_str(&format!("s=:{value}:")).unwrap(),
    );
    assert_eq!(reason(check(&thin, uri, body, now)), "not-covered");
    // Budgets, each on headers that are otherwise well formed: more signatures than read,
    // more components than read, a header past its size; and a component covered twice.
    let message =
        |r: Result<Option<signature::Verified>, SignatureError>| r.unwrap_err().to_string();
    let input = h["signature-input"].to_str().unwrap().to_owned();
    let value = h["signature"].to_str().unwrap().to_owned();
    let relabel = |text: &str, label: &str| text.replacen("coar=", &format!("{label}="), 1);
    let mut many = h.clone();
    let labels = ["a", "b", "c", "d", "e"];
    many.insert(
        "signature-input",
        HeaderValue::from_str(&labels.map(|l| relabel(&input, l)).join(", ")).unwrap(),
    );
    many.insert(
        "signature",
        HeaderValue::from_str(&labels.map(|l| relabel(&value, l)).join(", ")).unwrap(),
    );
    assert!(message(check(&many, uri, body, now)).contains("more than 4 signatures"));
    many.insert(
        "signature-input",
        HeaderValue::from_str(
            &labels[..4]
                .iter()
                .map(|l| relabel(&input, l))
                .collect::<Vec<_>>()
                .join(", "),
        )
        .unwrap(),
    );
    assert!(
        check(&many, uri, body, now).unwrap().is_some(),
        "four are read"
    );
    let mut wide = h.clone();
    let seventeen: Vec<String> = (0..17).map(|i| format!("\"x-{i}\"")).collect();
    wide.insert(
        "signature-input",
        HeaderValue::from_str(&format!("coar=({});created={now}", seventeen.join(" "))).unwrap(),
    );
    assert!(message(check(&wide, uri, body, now)).contains("more than 16 components"));
    let mut huge = h.clone();
    let padding = format!(", pad=:{}:", "A".repeat(8192));
    huge.insert(
        "signature",
        HeaderValue::from_str(&format!("{value}{padding}")).unwrap(),
    );
    assert!(message(check(&huge, uri, body, now)).contains("longer than"));
    let mut twice = h.clone();
    twice.insert(
        "signature-input",
        HeaderValue::from_str(&input.replacen("\"@method\"", "\"@method\" \"@method\"", 1))
            .unwrap(),
    );
    assert!(message(check(&twice, uri, body, now)).contains("covered twice"));
}

#[test]
fn jwk_sets_carry_the_keys_a_verifier_needs() {
    let (a, _) = SigningKey::generate_ed25519("a").unwrap();
    let (b, _) = SigningKey::generate_ed25519("b").unwrap();
    let set = signature::jwk_set([&a.verifying_key(), &b.verifying_key()]);
    let mut with_others = set.clone();
    with_others["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "EC", "crv": "P-256", "kid": "c", "x": "", "y": ""}));
    let keys = signature::parse_jwk_set(&with_others).unwrap();
    assert_eq!(
        keys,
        [a.verifying_key(), b.verifying_key()],
        "an unsupported key is skipped"
    );
    assert_ne!(
        a.verifying_key().thumbprint(),
        b.verifying_key().thumbprint()
    );
    assert!(
        VerifyingKey::from_jwk(&json!({"kty": "OKP", "crv": "Ed25519", "kid": "x", "x": "AAAA"}))
            .is_err()
    );
    assert!(
        VerifyingKey::from_jwk(
            &json!({"kty": "OKP", "crv": "Ed25519", "kid": "x", "alg": "PS512",
            "x": a.verifying_key().to_jwk()["x"]})
        )
        .is_err(),
        "an alg that is not the key's"
    );
}

/// The venv's Python, with http-message-signatures, or `None` (said) outside CI.
fn python() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ci-venv/bin/python");
    let ready = python.exists()
        && std::process::Command::new(&python)
            .args(["-c", "import http_message_signatures, requests"])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Some(python);
    }
    let message = "signature interop SKIPPED: target/ci-venv lacks http-message-signatures \
                   (.ci/run installs it)";
    assert!(
        std::env::var_os("CI").is_none(),
        "{message}; CI must run it"
    );
    eprintln!("{message}");
    None
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop_signatures.py")
}

#[test]
fn an_independent_implementation_signs_what_we_verify_and_verifies_what_we_sign() {
    let Some(python) = python() else { return };
    let dir = std::env::temp_dir().join(format!("coar-sig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = br#"{"@context": "https://www.w3.org/ns/activitystreams", "type": "Announce"}"#;
    std::fs::write(dir.join("body.json"), body).unwrap();
    let uri = "https://inbox.example/inbox";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for alg in ["ed25519", "rsa-pss-sha512"] {
        // Python signs; we verify, and refuse it tampered.
        let out = std::process::Command::new(&python)
            .arg(script())
            .args(["sign", alg, uri])
            .arg(dir.join("body.json"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let given: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut h = HeaderMap::new();
        for pair in given["headers"].as_array().unwrap() {
            h.append(
                HeaderName::from_bytes(pair[0].as_str().unwrap().as_bytes()).unwrap(),
                HeaderValue::from_str(pair[1].as_str().unwrap()).unwrap(),
            );
        }
        let public = VerifyingKey::from_jwk(&given["jwk"]).unwrap();
        let req = Request {
            method: "POST",
            target_uri: given["url"].as_str().unwrap(),
            headers: &h,
        };
        let verified = verify_request(&req, body, now, Policy::default(), |id| {
            (id == public.key_id()).then(|| public.clone())
        })
        .unwrap_or_else(|e| panic!("{alg}: {e}"))
        .expect("signed");
        assert_eq!(verified.key.algorithm().name(), alg);
        assert_eq!(
            verify_request(&req, b"{}", now, Policy::default(), |_| Some(
                public.clone()
            ))
            .unwrap_err()
            .reason(),
            "digest-mismatch"
        );
        // We sign with the same key (Python wrote it as PKCS#8); Python verifies.
        let key = SigningKey::from_pem(
            public.key_id(),
            given["private_pkcs8_pem"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(key.algorithm().name(), alg);
        let ours = signed(&key, uri, body, now);
        let request = json!({
            "method": "POST",
            "url": uri,
            "headers": ours.iter().map(|(k, v)| json!([k.as_str(), v.to_str().unwrap()])).collect::<Vec<_>>(),
            "body": base64::engine::general_purpose::STANDARD.encode(body),
            "jwk": key.verifying_key().to_jwk(),
        });
        let file = dir.join(format!("ours-{alg}.json"));
        std::fs::write(&file, request.to_string()).unwrap();
        let out = std::process::Command::new(&python)
            .arg(script())
            .arg("verify")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{alg}: Python refused our signature: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
