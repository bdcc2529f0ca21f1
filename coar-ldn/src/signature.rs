//! HTTP Message Signatures (RFC 9421) over requests, with `Content-Digest` (RFC 9530): what
//! an LDN sender proves its identity with, and what a receiver checks.
//!
//! The subset is the one an inbox needs, held to budgets because every byte of the two
//! headers comes from the peer:
//! - algorithms `ed25519` (the default) and `rsa-pss-sha512`, through ring;
//! - derived components `@method`, `@target-uri`, `@authority`, `@scheme`, `@path`,
//!   `@query`, `@request-target`, and header fields without component parameters;
//! - parameters `created`, `expires`, `keyid`, `alg`, `nonce`, `tag`;
//! - keys as JWKs (RFC 7517: `OKP`/`Ed25519`, `RSA`), and JWK Sets.
//!
//! [`sign_request`] writes `Signature-Input` and `Signature` for the components
//! [`COVERED`]; [`verify_request`] checks one signature against keys the caller resolves by
//! `keyid`, the digest against the body, and the time window, and names what is wrong
//! ([`SignatureError::reason`]). Remembering signatures to refuse replays is the caller's
//! ([`Verified::replay_key`]).

use std::fmt::Write as _;

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use http::HeaderMap;
use ring::{
    rand::SystemRandom,
    signature::{self as sig, Ed25519KeyPair, KeyPair, RsaKeyPair},
};
use serde_json::{Value, json};

/// The components a request is signed over: what it does, where, and the body (by its
/// digest and media type).
pub const COVERED: [&str; 4] = ["@method", "@target-uri", "content-digest", "content-type"];

/// The components a verified signature must cover, whatever else it does: without them a
/// signature could be moved to another request or another body.
pub const REQUIRED: [&str; 3] = ["@method", "@target-uri", "content-digest"];

/// The most signatures read from one request, components covered by one, and bytes of
/// either header: budgets on what a peer makes a receiver parse.
pub const MAX_SIGNATURES: usize = 4;
/// See [`MAX_SIGNATURES`].
pub const MAX_COMPONENTS: usize = 16;
/// See [`MAX_SIGNATURES`].
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// A signature algorithm (RFC 9421 §3.3, the IANA registry's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// EdDSA over Curve25519: `ed25519`.
    Ed25519,
    /// RSASSA-PSS with SHA-512: `rsa-pss-sha512`.
    RsaPssSha512,
}

impl Algorithm {
    /// The `alg` parameter's value.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::RsaPssSha512 => "rsa-pss-sha512",
        }
    }

    /// The algorithm an `alg` parameter names.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "ed25519" => Some(Algorithm::Ed25519),
            "rsa-pss-sha512" => Some(Algorithm::RsaPssSha512),
            _ => None,
        }
    }
}

/// A key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

enum Private {
    Ed25519(Ed25519KeyPair),
    Rsa(Box<RsaKeyPair>),
}

/// A private key with its `keyid`.
pub struct SigningKey {
    key_id: String,
    private: Private,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh Ed25519 key, and its PKCS#8 document to keep.
    pub fn generate_ed25519(key_id: impl Into<String>) -> Result<(SigningKey, Vec<u8>), KeyError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| KeyError("the system's random source failed".into()))?;
        let der = pkcs8.as_ref().to_vec();
        Ok((SigningKey::from_pkcs8(key_id, &der)?, der))
    }

    /// A key from its PKCS#8 (DER) document: Ed25519 or RSA (2048 to 4096 bits, what ring
    /// signs with).
    pub fn from_pkcs8(key_id: impl Into<String>, der: &[u8]) -> Result<SigningKey, KeyError> {
        let private = match Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            Ok(k) => Private::Ed25519(k),
            Err(ed) => match RsaKeyPair::from_pkcs8(der) {
                Ok(k) => Private::Rsa(Box::new(k)),
                Err(rsa) => {
                    return Err(KeyError(format!(
                        "not an Ed25519 ({ed}) or RSA ({rsa}) PKCS#8 private key"
                    )));
                }
            },
        };
        Ok(SigningKey {
            key_id: key_id.into(),
            private,
        })
    }

    /// A key from a PEM file's text (`-----BEGIN PRIVATE KEY-----`, PKCS#8).
    pub fn from_pem(key_id: impl Into<String>, pem: &str) -> Result<SigningKey, KeyError> {
        SigningKey::from_pkcs8(key_id, &pem_decode(pem, "PRIVATE KEY")?)
    }

    /// An Ed25519 key from its 32-byte seed (a JWK's `d`; RFC 9421's test key).
    pub fn ed25519_from_seed(
        key_id: impl Into<String>,
        seed: &[u8],
    ) -> Result<SigningKey, KeyError> {
        let k = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|e| KeyError(format!("not an Ed25519 seed: {e}")))?;
        Ok(SigningKey {
            key_id: key_id.into(),
            private: Private::Ed25519(k),
        })
    }

    /// Its `keyid`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The same key under another `keyid`.
    pub fn with_key_id(self, key_id: impl Into<String>) -> SigningKey {
        SigningKey {
            key_id: key_id.into(),
            ..self
        }
    }

    /// The same key named by its RFC 7638 thumbprint, which names the key itself.
    pub fn named_by_thumbprint(self) -> SigningKey {
        let thumbprint = self.verifying_key().thumbprint();
        self.with_key_id(thumbprint)
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.private {
            Private::Ed25519(_) => Algorithm::Ed25519,
            Private::Rsa(_) => Algorithm::RsaPssSha512,
        }
    }

    /// Its public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        let public = match &self.private {
            Private::Ed25519(k) => {
                let mut x = [0u8; 32];
                x.copy_from_slice(k.public_key().as_ref());
                Public::Ed25519(x)
            }
            Private::Rsa(k) => {
                let c: sig::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                Public::Rsa { n: c.n, e: c.e }
            }
        };
        VerifyingKey {
            key_id: self.key_id.clone(),
            public,
        }
    }

    /// Signs `message` (a signature base).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.private {
            Private::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            Private::Rsa(k) => {
                let mut out = vec![0u8; k.public().modulus_len()];
                k.sign(
                    &sig::RSA_PSS_SHA512,
                    &SystemRandom::new(),
                    message,
                    &mut out,
                )
                .map_err(|_| KeyError("RSA signing failed".into()))?;
                Ok(out)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Public {
    Ed25519([u8; 32]),
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// A public key with its `keyid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    key_id: String,
    public: Public,
}

impl VerifyingKey {
    /// Its `keyid`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.public {
            Public::Ed25519(_) => Algorithm::Ed25519,
            Public::Rsa { .. } => Algorithm::RsaPssSha512,
        }
    }

    /// Whether `signature` is this key's over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.public {
            Public::Ed25519(x) => sig::UnparsedPublicKey::new(&sig::ED25519, x)
                .verify(message, signature)
                .is_ok(),
            Public::Rsa { n, e } => sig::RsaPublicKeyComponents { n, e }
                .verify(&sig::RSA_PSS_2048_8192_SHA512, message, signature)
                .is_ok(),
        }
    }

    /// A key from a JWK (RFC 7517): `{"kty": "OKP", "crv": "Ed25519", "x", "kid"}` or
    /// `{"kty": "RSA", "n", "e", "kid"}`. Its `kid` is the `keyid`; an `alg` other than
    /// the key type's is refused.
    pub fn from_jwk(jwk: &Value) -> Result<VerifyingKey, KeyError> {
        let field = |name: &str| {
            jwk.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| KeyError(format!("the JWK has no {name}")))
        };
        let bytes = |name: &str| {
            URL_SAFE_NO_PAD
                .decode(field(name)?)
                .map_err(|e| KeyError(format!("the JWK's {name} is not base64url: {e}")))
        };
        let key_id = field("kid")?.to_owned();
        if key_id.is_empty() || key_id.len() > 256 {
            return Err(KeyError("the JWK's kid is empty or longer than 256".into()));
        }
        let public = match (field("kty")?, jwk.get("crv").and_then(Value::as_str)) {
            ("OKP", Some("Ed25519")) => {
                let x: [u8; 32] = bytes("x")?
                    .try_into()
                    .map_err(|_| KeyError("an Ed25519 key is 32 bytes".into()))?;
                Public::Ed25519(x)
            }
            ("RSA", _) => {
                let (n, e) = (bytes("n")?, bytes("e")?);
                if !(256..=1024).contains(&n.len()) || e.is_empty() || e.len() > 8 {
                    return Err(KeyError("an RSA key has 2048 to 8192 bits".into()));
                }
                Public::Rsa { n, e }
            }
            (kty, crv) => {
                return Err(KeyError(format!(
                    "unsupported key type {kty} {}",
                    crv.unwrap_or_default()
                )));
            }
        };
        let key = VerifyingKey { key_id, public };
        if let Some(alg) = jwk.get("alg").and_then(Value::as_str) {
            let expected = match key.algorithm() {
                Algorithm::Ed25519 => ["ed25519", "EdDSA"],
                Algorithm::RsaPssSha512 => ["rsa-pss-sha512", "PS512"],
            };
            if !expected.contains(&alg) {
                return Err(KeyError(format!("the JWK's alg {alg} is not its key's")));
            }
        }
        Ok(key)
    }

    /// The JWK of this key, with `kid` and `alg` (the RFC 9421 name).
    pub fn to_jwk(&self) -> Value {
        match &self.public {
            Public::Ed25519(x) => json!({
                "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(x),
                "kid": self.key_id, "alg": Algorithm::Ed25519.name(), "use": "sig",
            }),
            Public::Rsa { n, e } => json!({
                "kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e),
                "kid": self.key_id, "alg": Algorithm::RsaPssSha512.name(), "use": "sig",
            }),
        }
    }

    /// The RFC 7638 thumbprint (SHA-256, base64url): names the key itself, whatever `kid`
    /// it is published under, for recording which key verified a request.
    pub fn thumbprint(&self) -> String {
        let canonical = match &self.public {
            Public::Ed25519(x) => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(x)
            ),
            Public::Rsa { n, e } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(e),
                URL_SAFE_NO_PAD.encode(n)
            ),
        };
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ))
    }
}

/// A JWK Set (`{"keys": [...]}`) of `keys`.
pub fn jwk_set<'a>(keys: impl IntoIterator<Item = &'a VerifyingKey>) -> Value {
    json!({"keys": keys.into_iter().map(VerifyingKey::to_jwk).collect::<Vec<_>>()})
}

/// The keys of a JWK Set this module can use; others (encryption keys, other curves) are
/// skipped. At most 32 are read.
pub fn parse_jwk_set(set: &Value) -> Result<Vec<VerifyingKey>, KeyError> {
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| KeyError("a JWK Set is an object with a keys array".into()))?;
    Ok(keys
        .iter()
        .filter(|k| {
            k.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "sig")
        })
        .take(32)
        .filter_map(|k| VerifyingKey::from_jwk(k).ok())
        .collect())
}

fn pem_decode(pem: &str, label: &str) -> Result<Vec<u8>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| KeyError(format!("no {begin} line")))?
        + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| KeyError(format!("no {end} line")))?;
    let body: String = pem[start..start + stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD
        .decode(body)
        .map_err(|e| KeyError(format!("the PEM body is not base64: {e}")))
}

/// The PKCS#8 document (DER) of a PEM file's `PRIVATE KEY` block.
pub fn pem_pkcs8(pem: &str) -> Result<Vec<u8>, KeyError> {
    pem_decode(pem, "PRIVATE KEY")
}

/// A PEM document (`-----BEGIN PRIVATE KEY-----`) of a PKCS#8 key, to write to a file.
pub fn pkcs8_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

/// `Content-Digest` of a body (RFC 9530): `sha-256=:…:`.
pub fn content_digest(body: &[u8]) -> String {
    format!(
        "sha-256=:{}:",
        STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, body))
    )
}

/// Why a signature, or its request, is not accepted. [`reason`](Self::reason) is a stable
/// code for problem details and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `Signature-Input` or `Signature` cannot be read, or names no signature the other has.
    #[error("the signature headers cannot be read: {0}")]
    Malformed(String),
    /// The signature covers a component this receiver does not read (or with parameters).
    #[error("the signature covers {0}, which this receiver does not support")]
    UnsupportedComponent(String),
    /// A covered component is absent from the request.
    #[error("the signature covers {0}, which the request does not have")]
    MissingComponent(String),
    /// The signature does not cover a component a receiver requires.
    #[error("the signature must cover {0}")]
    NotCovered(&'static str),
    /// `Content-Digest` does not match the body, or names no algorithm this receiver reads.
    #[error("Content-Digest does not match the body")]
    DigestMismatch,
    /// `created` is missing.
    #[error("the signature has no created time")]
    NoCreated,
    /// Its `expires` has passed, or it was created longer ago than the receiver accepts.
    #[error("the signature has expired")]
    Expired,
    /// It was created in the future, past the clock skew allowed.
    #[error("the signature was created in the future")]
    NotYetValid,
    /// No `keyid`, or no key is known by it.
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    /// `alg` names another algorithm than the key's, or one this receiver does not know.
    #[error("the signature's algorithm {0:?} is not its key's")]
    WrongAlgorithm(String),
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
}

impl SignatureError {
    /// A stable code: `malformed`, `unsupported-component`, `missing-component`,
    /// `not-covered`, `digest-mismatch`, `no-created`, `expired`, `not-yet-valid`,
    /// `unknown-key`, `wrong-algorithm`, `bad-signature`.
    pub fn reason(&self) -> &'static str {
        match self {
            SignatureError::Malformed(_) => "malformed",
            SignatureError::UnsupportedComponent(_) => "unsupported-component",
            SignatureError::MissingComponent(_) => "missing-component",
            SignatureError::NotCovered(_) => "not-covered",
            SignatureError::DigestMismatch => "digest-mismatch",
            SignatureError::NoCreated => "no-created",
            SignatureError::Expired => "expired",
            SignatureError::NotYetValid => "not-yet-valid",
            SignatureError::UnknownKey(_) => "unknown-key",
            SignatureError::WrongAlgorithm(_) => "wrong-algorithm",
            SignatureError::BadSignature => "bad-signature",
        }
    }
}

/// What a signer or a verifier reads of a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The full target URI, as the sender addressed it (a receiver behind a proxy uses its
    /// public URL).
    pub target_uri: &'a str,
    /// The header fields.
    pub headers: &'a HeaderMap,
}

/// What a verifier demands beyond a valid signature.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// The oldest `created` accepted, in seconds before now (also how long a receiver must
    /// remember signatures to refuse replays).
    pub max_age: i64,
    /// How far in the future `created` may be (clock skew), in seconds.
    pub skew: i64,
    /// The components a signature must cover ([`REQUIRED`]).
    pub required: &'static [&'static str],
}

impl Default for Policy {
    /// Five minutes old at most, a minute of clock skew, [`REQUIRED`] covered.
    fn default() -> Policy {
        Policy {
            max_age: 300,
            skew: 60,
            required: &REQUIRED,
        }
    }
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Its label in the headers.
    pub label: String,
    /// The key that verified it.
    pub key: VerifyingKey,
    /// Its `created` (Unix seconds).
    pub created: i64,
    /// Its `expires`, if given.
    pub expires: Option<i64>,
    /// SHA-256 (hex) of its parameters and signature value: what a receiver remembers until
    /// [`remember_until`](Self::remember_until) to refuse the same signature again.
    pub replay_key: String,
    /// Until when (Unix seconds) this signature would be accepted again: `created` plus the
    /// policy's `max_age`, or its `expires` if sooner.
    pub remember_until: i64,
}

/// One parsed signature: its label, covered components, parameters (serialized) and value.
#[derive(Debug, Clone)]
struct Parsed {
    label: String,
    components: Vec<String>,
    params_serialized: String,
    created: Option<i64>,
    expires: Option<i64>,
    key_id: Option<String>,
    alg: Option<String>,
    value: Vec<u8>,
}

fn header_value(headers: &HeaderMap, name: &str) -> Result<Option<String>, SignatureError> {
    let mut values = Vec::new();
    let mut total = 0;
    for v in headers.get_all(name) {
        let v = v
            .to_str()
            .map_err(|_| SignatureError::Malformed(format!("{name} is not visible ASCII")))?;
        total += v.len();
        if total > MAX_HEADER_BYTES {
            return Err(SignatureError::Malformed(format!(
                "{name} is longer than {MAX_HEADER_BYTES} bytes"
            )));
        }
        values.push(v.trim());
    }
    Ok((!values.is_empty()).then(|| values.join(", ")))
}

/// The signatures of a request, or `None` when it carries neither header.
fn parse_signatures(headers: &HeaderMap) -> Result<Option<Vec<Parsed>>, SignatureError> {
    let (input, signature) = (
        header_value(headers, "signature-input")?,
        header_value(headers, "signature")?,
    );
    let (input, signature) = match (input, signature) {
        (None, None) => return Ok(None),
        (Some(i), Some(s)) => (i, s),
        _ => {
            return Err(SignatureError::Malformed(
                "Signature-Input and Signature come together".into(),
            ));
        }
    };
    let bad = |what: &str, e: sfv::Error| SignatureError::Malformed(format!("{what}: {e}"));
    let inputs: sfv::Dictionary = sfv::Parser::new(&input)
        .parse()
        .map_err(|e| bad("Signature-Input", e))?;
    let values: sfv::Dictionary = sfv::Parser::new(&signature)
        .parse()
        .map_err(|e| bad("Signature", e))?;
    if inputs.len() > MAX_SIGNATURES {
        return Err(SignatureError::Malformed(format!(
            "more than {MAX_SIGNATURES} signatures"
        )));
    }
    let mut out = Vec::new();
    for (label, entry) in &inputs {
        let sfv::ListEntry::InnerList(list) = entry else {
            return Err(SignatureError::Malformed(format!(
                "{} is not an inner list of components",
                label.as_str()
            )));
        };
        if list.items.len() > MAX_COMPONENTS {
            return Err(SignatureError::Malformed(format!(
                "more than {MAX_COMPONENTS} components"
            )));
        }
        let mut components = Vec::new();
        for item in &list.items {
            let name = item
                .bare_item
                .as_string()
                .ok_or_else(|| SignatureError::Malformed("a component is not a string".into()))?;
            if !item.params.is_empty() {
                return Err(SignatureError::UnsupportedComponent(format!(
                    "{} with parameters",
                    name.as_str()
                )));
            }
            if components.iter().any(|c| c == name.as_str()) {
                return Err(SignatureError::Malformed(format!(
                    "{} is covered twice",
                    name.as_str()
                )));
            }
            components.push(name.as_str().to_owned());
        }
        let mut parsed = Parsed {
            label: label.as_str().to_owned(),
            components,
            params_serialized: serialize_inner_list(list)?,
            created: None,
            expires: None,
            key_id: None,
            alg: None,
            value: Vec::new(),
        };
        for (key, value) in &list.params {
            let int = || {
                value.as_integer().map(i64::from).ok_or_else(|| {
                    SignatureError::Malformed(format!("{} is not an integer", key.as_str()))
                })
            };
            let string = || {
                value
                    .as_string()
                    .map(|s| s.as_str().to_owned())
                    .ok_or_else(|| {
                        SignatureError::Malformed(format!("{} is not a string", key.as_str()))
                    })
            };
            match key.as_str() {
                "created" => parsed.created = Some(int()?),
                "expires" => parsed.expires = Some(int()?),
                "keyid" => parsed.key_id = Some(string()?),
                "alg" => parsed.alg = Some(string()?),
                "nonce" | "tag" => {
                    string()?;
                }
                other => {
                    return Err(SignatureError::Malformed(format!(
                        "unknown signature parameter {other}"
                    )));
                }
            }
        }
        parsed.value = match values.get(label.as_str()) {
            Some(sfv::ListEntry::Item(item)) => item
                .bare_item
                .as_byte_sequence()
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    SignatureError::Malformed("a signature is a byte sequence".into())
                })?,
            _ => {
                return Err(SignatureError::Malformed(format!(
                    "Signature has no {}",
                    label.as_str()
                )));
            }
        };
        out.push(parsed);
    }
    Ok(Some(out))
}

/// The canonical serialization of a signature's inner list with its parameters: the value
/// of `@signature-params` in the signature base.
fn serialize_inner_list(list: &sfv::InnerList) -> Result<String, SignatureError> {
    let mut ser = sfv::ListSerializer::new();
    ser.members([&sfv::ListEntry::InnerList(list.clone())]);
    ser.finish()
        .ok_or_else(|| SignatureError::Malformed("an empty signature".into()))
}

/// The `keyid`s of a request's signatures, for a caller that fetches keys before
/// verifying. `None` when the request carries no signature.
pub fn key_ids(headers: &HeaderMap) -> Result<Option<Vec<String>>, SignatureError> {
    Ok(parse_signatures(headers)?.map(|sigs| sigs.into_iter().filter_map(|s| s.key_id).collect()))
}

/// The value of one covered component.
fn component(req: &Request<'_>, name: &str) -> Result<String, SignatureError> {
    let uri = || {
        url::Url::parse(req.target_uri)
            .map_err(|e| SignatureError::Malformed(format!("the target URI: {e}")))
    };
    Ok(match name {
        // As received: RFC 9421 §2.2.1 changes no case.
        "@method" => req.method.to_owned(),
        "@target-uri" => req.target_uri.to_owned(),
        "@authority" => {
            let u = uri()?;
            let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
            match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        }
        "@scheme" => uri()?.scheme().to_owned(),
        "@path" => uri()?.path().to_owned(),
        "@query" => format!("?{}", uri()?.query().unwrap_or("")),
        "@request-target" => {
            let u = uri()?;
            match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_owned(),
            }
        }
        derived if derived.starts_with('@') => {
            return Err(SignatureError::UnsupportedComponent(derived.to_owned()));
        }
        field => {
            if field.is_empty()
                || field.bytes().any(|b| {
                    !(b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b"-_.!#$%&'*+^`|~".contains(&b))
                })
            {
                return Err(SignatureError::UnsupportedComponent(field.to_owned()));
            }
            header_value(req.headers, field)?
                .ok_or_else(|| SignatureError::MissingComponent(field.to_owned()))?
        }
    })
}

/// The signature base (RFC 9421 §2.5) of `components` with the serialized parameters.
fn signature_base(
    req: &Request<'_>,
    components: &[String],
    params: &str,
) -> Result<String, SignatureError> {
    let mut base = String::new();
    for name in components {
        let value = component(req, name)?;
        if value.contains(['\n', '\r']) {
            return Err(SignatureError::Malformed(format!("{name} spans lines")));
        }
        let _ = writeln!(base, "\"{name}\": {value}");
    }
    let _ = write!(base, "\"@signature-params\": {params}");
    Ok(base)
}

fn sf_string(value: &str) -> Result<String, SignatureError> {
    if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(SignatureError::Malformed(format!(
            "{value:?} is not printable ASCII"
        )));
    }
    Ok(format!(
        "\"{}\"",
        value.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// The `Signature-Input` and `Signature` values of `key`'s signature `label` over
/// [`COVERED`] of `req` (which must already carry `Content-Digest` and `Content-Type`),
/// created at `created` and expiring at `expires` (Unix seconds), with a random `nonce`.
pub fn sign_request(
    key: &SigningKey,
    req: &Request<'_>,
    label: &str,
    created: i64,
    expires: Option<i64>,
) -> Result<(String, String), SignatureError> {
    if label.is_empty()
        || !label.starts_with(|c: char| c.is_ascii_lowercase())
        || !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b))
    {
        return Err(SignatureError::Malformed(format!(
            "{label:?} is not a label"
        )));
    }
    // Structured-field integers have at most 15 digits.
    const MAX_SF_INTEGER: i64 = 999_999_999_999_999;
    if !(0..=MAX_SF_INTEGER).contains(&created)
        || expires.is_some_and(|e| !(0..=MAX_SF_INTEGER).contains(&e))
    {
        return Err(SignatureError::Malformed(
            "created and expires are seconds since 1970 of at most 15 digits".into(),
        ));
    }
    let components: Vec<String> = COVERED.iter().map(|c| (*c).to_owned()).collect();
    let mut params = format!(
        "({})",
        components
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = write!(params, ";created={created}");
    if let Some(expires) = expires {
        let _ = write!(params, ";expires={expires}");
    }
    // A nonce makes each signature unique, even two of the same body in the same second: a
    // receiver that refuses replays must not refuse a sender's honest retry.
    let mut nonce = [0u8; 16];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut nonce)
        .map_err(|_| SignatureError::Malformed("no randomness for a nonce".into()))?;
    let _ = write!(params, ";nonce=\"{}\"", URL_SAFE_NO_PAD.encode(nonce));
    let _ = write!(
        params,
        ";keyid={};alg=\"{}\"",
        sf_string(key.key_id())?,
        key.algorithm().name()
    );
    let base = signature_base(req, &components, &params)?;
    let value = key
        .sign(base.as_bytes())
        .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    Ok((
        format!("{label}={params}"),
        format!("{label}=:{}:", STANDARD.encode(value)),
    ))
}

/// Whether `Content-Digest` holds a digest of `body` this module reads (`sha-256`,
/// `sha-512`) and every one it reads matches.
fn digest_matches(headers: &HeaderMap, body: &[u8]) -> Result<bool, SignatureError> {
    let Some(value) = header_value(headers, "content-digest")? else {
        return Ok(false);
    };
    let dict: sfv::Dictionary = sfv::Parser::new(&value)
        .parse()
        .map_err(|e| SignatureError::Malformed(format!("Content-Digest: {e}")))?;
    let mut checked = false;
    for (alg, entry) in &dict {
        let algorithm = match alg.as_str() {
            "sha-256" => &ring::digest::SHA256,
            "sha-512" => &ring::digest::SHA512,
            _ => continue,
        };
        let sfv::ListEntry::Item(item) = entry else {
            return Ok(false);
        };
        let Some(given) = item.bare_item.as_byte_sequence() else {
            return Ok(false);
        };
        if ring::digest::digest(algorithm, body).as_ref() != given {
            return Ok(false);
        }
        checked = true;
    }
    Ok(checked)
}

/// Verifies a request's signature: `Ok(None)` when it carries none (the caller's other rules
/// apply), `Ok(Some)` with the key that verified it, or why it is refused. With several
/// signatures, the first that verifies is taken; if none does, the first one's error is
/// given. `resolve` gives the key of a `keyid`; `now` is Unix seconds.
///
/// Besides the signature itself: it must cover `policy.required`, `Content-Digest` must
/// match `body` when it is covered, `created` must be within the policy's window (and
/// `expires`, if given, ahead), and `alg`, if given, must be the key's.
pub fn verify_request(
    req: &Request<'_>,
    body: &[u8],
    now: i64,
    policy: Policy,
    mut resolve: impl FnMut(&str) -> Option<VerifyingKey>,
) -> Result<Option<Verified>, SignatureError> {
    let Some(signatures) = parse_signatures(req.headers)? else {
        return Ok(None);
    };
    let mut first_error = None;
    for s in signatures {
        match verify_one(req, body, now, policy, &mut resolve, s) {
            Ok(v) => return Ok(Some(v)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| SignatureError::Malformed("no signature".into())))
}

fn verify_one(
    req: &Request<'_>,
    body: &[u8],
    now: i64,
    policy: Policy,
    resolve: &mut impl FnMut(&str) -> Option<VerifyingKey>,
    s: Parsed,
) -> Result<Verified, SignatureError> {
    for &required in policy.required {
        if !s.components.iter().any(|c| c == required) {
            return Err(SignatureError::NotCovered(required));
        }
    }
    let created = s.created.ok_or(SignatureError::NoCreated)?;
    if created > now.saturating_add(policy.skew) {
        return Err(SignatureError::NotYetValid);
    }
    if created < now.saturating_sub(policy.max_age) || s.expires.is_some_and(|e| e <= now) {
        return Err(SignatureError::Expired);
    }
    let key_id = s.key_id.clone().unwrap_or_default();
    let key = resolve(&key_id).ok_or(SignatureError::UnknownKey(key_id))?;
    if let Some(alg) = &s.alg
        && Algorithm::from_name(alg) != Some(key.algorithm())
    {
        return Err(SignatureError::WrongAlgorithm(alg.clone()));
    }
    if s.components.iter().any(|c| c == "content-digest") && !digest_matches(req.headers, body)? {
        return Err(SignatureError::DigestMismatch);
    }
    let base = signature_base(req, &s.components, &s.params_serialized)?;
    if !key.verify(base.as_bytes(), &s.value) {
        return Err(SignatureError::BadSignature);
    }
    let mut seen = ring::digest::Context::new(&ring::digest::SHA256);
    seen.update(&(s.params_serialized.len() as u64).to_be_bytes());
    seen.update(s.params_serialized.as_bytes());
    seen.update(&s.value);
    let replay_key = seen
        .finish()
        .as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
    // Accepted while now is at most created + max_age and before expires: remembered that
    // long, it cannot be accepted twice.
    let remember_until = created
        .saturating_add(policy.max_age)
        .min(s.expires.unwrap_or(i64::MAX));
    Ok(Verified {
        label: s.label,
        key,
        created,
        expires: s.expires,
        replay_key,
        remember_until,
    })
}
