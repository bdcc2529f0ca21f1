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
        }
    }
}

impl ClientConfig {
    /// A random duration in `0..=ceiling` (full jitter), for callers that schedule their own
    /// retries.
    pub fn retry_jitter(&self, ceiling: Duration) -> Duration {
        ceiling.mul_f64(random_unit())
    }

    /// Defaults, with `COAR_ALLOW_PRIVATE_TARGETS` read from the environment.
    pub fn from_env() -> ClientConfig {
        let allow = std::env::var("COAR_ALLOW_PRIVATE_TARGETS")
            .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
        ClientConfig {
            allow_private: allow,
            ..ClientConfig::default()
        }
    }
}
