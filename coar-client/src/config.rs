//! Client settings.

use std::time::Duration;

use crate::retry::random_unit;

/// The default of [`ClientConfig::max_retry_after`]: one day.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Timeout of each request (default 10 s).
    pub timeout: Duration,
    /// `User-Agent`.
    pub user_agent: String,
    /// Redirects followed at most (default 5). POSTs follow only 307 and 308.
    pub max_redirects: usize,
    /// Largest response body read (default 1 MiB); longer bodies are cut off.
    pub max_response_bytes: usize,
    /// Allow loopback, private and link-local targets (default false; for tests and closed
    /// networks; `COAR_ALLOW_PRIVATE_TARGETS=true`).
    pub allow_private: bool,
    /// How long a discovered inbox is remembered (default 10 min).
    pub discovery_ttl: Duration,
    /// Bearer tokens to send, by inbox URL prefix.
    pub tokens: Vec<(String, String)>,
    /// The longest `Retry-After` honoured (default 1 day); a peer's longer value is cut to
    /// this before any arithmetic.
    pub max_retry_after: Duration,
    /// Which certificate authorities HTTPS peers are checked against (default: the
    /// operating system's and the bundled Mozilla roots).
    pub tls_roots: TlsRoots,
    /// The key every POST is signed with (RFC 9421): `Content-Digest`, then
    /// `Signature-Input` and `Signature` over [`coar_ldn::signature::COVERED`], each
    /// redirect hop signed for its own URI. `None` (the default) sends unsigned requests.
    pub signing: Option<std::sync::Arc<coar_ldn::signature::SigningKey>>,
    /// How long a signature is valid: its `expires` is `created` plus this (default 5 min).
    pub signature_ttl: Duration,
}

/// The certificate authorities an HTTPS peer's certificate may chain to.
///
/// The operating system's trust store is where an institution installs its own authority
/// (`update-ca-certificates`, or the files `SSL_CERT_FILE` and `SSL_CERT_DIR` name); the
/// bundled Mozilla roots keep a minimal container without a store working.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsRoots {
    /// The operating system's store and the bundled roots (the default).
    #[default]
    SystemAndBundled,
    /// The operating system's store only: what the administrator trusts, nothing more.
    System,
    /// The bundled Mozilla roots only, whatever the machine trusts.
    Bundled,
}

impl std::str::FromStr for TlsRoots {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "system+bundled" => Ok(TlsRoots::SystemAndBundled),
            "system" => Ok(TlsRoots::System),
            "bundled" => Ok(TlsRoots::Bundled),
            other => Err(format!(
                "{other:?} is not system+bundled, system or bundled"
            )),
        }
    }
}

impl TlsRoots {
    /// Whether the operating system's store is used.
    pub fn system(self) -> bool {
        matches!(self, TlsRoots::SystemAndBundled | TlsRoots::System)
    }

    /// Whether the bundled roots are used.
    pub fn bundled(self) -> bool {
        matches!(self, TlsRoots::SystemAndBundled | TlsRoots::Bundled)
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(10),
            user_agent: concat!("coar-notify-rs/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_redirects: 5,
            max_response_bytes: 1024 * 1024,
            allow_private: false,
            discovery_ttl: Duration::from_secs(600),
            tokens: Vec::new(),
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            tls_roots: TlsRoots::default(),
            signing: None,
            signature_ttl: Duration::from_secs(300),
        }
    }
}

impl ClientConfig {
    /// A random duration in `0..=ceiling` (full jitter), for callers that schedule their own
    /// retries.
    pub fn retry_jitter(&self, ceiling: Duration) -> Duration {
        ceiling.mul_f64(random_unit())
    }

    /// Defaults, with `COAR_ALLOW_PRIVATE_TARGETS` and `COAR_TLS_ROOTS` read from the
    /// environment (an unreadable `COAR_TLS_ROOTS` keeps the default).
    pub fn from_env() -> ClientConfig {
        let allow = std::env::var("COAR_ALLOW_PRIVATE_TARGETS")
            .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
        let tls_roots = std::env::var("COAR_TLS_ROOTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        ClientConfig {
            allow_private: allow,
            tls_roots,
            ..ClientConfig::default()
        }
    }
}
