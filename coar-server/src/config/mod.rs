//! Configuration: flags, then environment, then an optional TOML file, then defaults (the
//! first that gives a value wins). Every bad value is reported with the setting's name.

use std::{net::SocketAddr, str::FromStr};

use serde::Deserialize;

mod layer;
mod values;

pub use layer::Layer;
pub use values::parse_duration;
use values::{parse_bool, parse_count, parse_size};

/// What to do with a notification from a sender that matches no enabled registered service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustPolicy {
    /// Store and process it.
    Accept,
    /// Store and list it, but do not process it until the sender is trusted (default).
    Quarantine,
    /// Refuse it with 403.
    Reject,
}

impl FromStr for TrustPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "accept" => Ok(TrustPolicy::Accept),
            "quarantine" => Ok(TrustPolicy::Quarantine),
            "reject" => Ok(TrustPolicy::Reject),
            other => Err(format!("{other:?} is not accept, quarantine or reject")),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not text or json")),
        }
    }
}

/// The server's settings, complete and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `COAR_BIND`: the listening address (default `127.0.0.1:8080`).
    pub bind: SocketAddr,
    /// `COAR_DATABASE_URL` (default `sqlite://coar-notify.db`).
    pub database_url: String,
    /// `COAR_BASE_URL`: the public base of ids and `Location`s, without a trailing slash
    /// (default `http://` + the bind address).
    pub base_url: String,
    /// `COAR_ADMIN_TOKEN`: the admin API's bearer token (none: admin API disabled).
    pub admin_token: Option<String>,
    /// `COAR_METRICS_TOKEN`: the bearer token `/metrics` requires (none: `/metrics` is open,
    /// for a scraper on a private network).
    pub metrics_token: Option<String>,
    /// `COAR_TRUST`: the policy for unattributed senders (default quarantine).
    pub trust: TrustPolicy,
    /// `COAR_MAX_BODY`: the largest notification accepted, in bytes (default 256 KiB).
    pub max_body: usize,
    /// `COAR_INBOX_PUBLIC`: whether GET on the inbox is open to all (default true); if not,
    /// it needs the admin token.
    pub inbox_public: bool,
    /// `COAR_LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// `COAR_ACCEPT_UNRECOGNISED`: whether activities that are valid JSON-LD but name no COAR
    /// Notify pattern are stored and listed (default true, as LDN allows any notification)
    /// or refused with 422.
    pub accept_unrecognised: bool,
    /// `COAR_WORKERS`: background workers in `serve` (default 2; 0 runs none, for
    /// deployments that run `coar-notify worker` separately).
    pub workers: usize,
    /// `COAR_MAX_ATTEMPTS`: attempts before a notification is dead (default 8).
    pub max_attempts: u32,
    /// `COAR_DELIVERIES_PER_INBOX`: deliveries in flight at once to one inbox (default 4,
    /// 1 to 64). Order is kept only within a delivery thread (an Offer before its Undo, a
    /// reply after what it answers).
    pub deliveries_per_inbox: u32,
    /// `COAR_RETRY_BASE`: the first retry delay, doubled each time up to an hour (default
    /// 30s; `500ms`, `2s`, `1m`).
    pub retry_base: std::time::Duration,
    /// `COAR_ALLOW_PRIVATE_TARGETS`: allow sending to loopback and private addresses
    /// (default false).
    pub allow_private_targets: bool,
    /// `COAR_NAME`: this service's name in the notifications it sends (default `coar-notify`).
    pub name: String,
    /// `COAR_SEND_TIMEOUT`: how long one delivery may take (default 30s).
    pub send_timeout: std::time::Duration,
    /// `[[pipeline]]` entries of the configuration file: the handlers run per pattern.
    pub pipeline: Vec<crate::pipeline::builtin::HandlerSpec>,
    /// `COAR_MAX_RETRY_AFTER`: the longest `Retry-After` of a peer that is honoured
    /// (default 1d); longer values are cut to it.
    pub max_retry_after: std::time::Duration,
    /// `COAR_TRUSTED_PROXIES`: address ranges of reverse proxies whose `Forwarded` and
    /// `X-Forwarded-For` headers are believed (default none: the connection's address is
    /// the sender's).
    pub trusted_proxies: Vec<coar_store::Cidr>,
    /// `COAR_CORS_POST_ORIGINS`: the origins (`https://host[:port]`) whose web pages may POST
    /// to the inbox, an in-browser LDN sender's; `*` for any (default none). GET, HEAD and
    /// OPTIONS are open to every origin regardless.
    pub cors_post_origins: Vec<String>,
    /// `COAR_FORWARDED_HEADER`: the header the trusted proxies write the client's address to,
    /// `x-forwarded-for` (default) or `forwarded`; the other is never read.
    pub forwarded_header: crate::trust::ForwardedHeader,
    /// `COAR_TLS_ROOTS`: the certificate authorities HTTPS peers (inboxes, discovery,
    /// webhooks) are checked against: `system+bundled` (default: the operating system's
    /// store, where an institution installs its own authority, and the bundled Mozilla
    /// roots), `system` or `bundled`.
    pub tls_roots: coar_client::TlsRoots,
    /// `COAR_SIGNING_KEY_FILE`: a PKCS#8 PEM private key (Ed25519, or RSA for
    /// RSA-PSS-SHA512) that what this server sends is signed with. Default: an Ed25519 key
    /// generated on first start and kept in the database, shared by every process on it.
    pub signing_key_file: Option<std::path::PathBuf>,
    /// `COAR_SIGNATURE_WINDOW`: how old a sender's HTTP Message Signature may be (its
    /// `created`; a minute of clock skew ahead is allowed), 10 s to 1 h (default 5 min).
    pub signature_window: std::time::Duration,
    /// `COAR_PUBLISH_UNTRUSTED`: whether notifications attributed to no registered service
    /// are shown in the public inbox listing and feed (default false; with `COAR_TRUST=accept`,
    /// an open inbox, everything is published).
    pub publish_untrusted: bool,
    /// `COAR_RATE_LIMIT`: POSTs to the inbox per sender address (default `600/min`: a
    /// bucket of 600, refilled at 10 a second; `off` for none).
    pub rate_limit: Option<crate::limits::Rate>,
    /// `COAR_SERVICE_RATE_LIMIT`: notifications per attributed service (default
    /// `6000/min`; `off` for none).
    pub service_rate_limit: Option<crate::limits::Rate>,
    /// `COAR_QUARANTINE_LIMIT`: the most notifications held in quarantine per unattributed
    /// origin and per sender address (default 1000); past it, 429.
    pub quarantine_limit: u64,
    /// `COAR_LEASE`: how long a worker holds a notification before another may take it
    /// over (default 5m; it must outlast a worker's batch: eight runs of the slowest
    /// pipeline, or four of the slowest deliveries).
    pub lease: std::time::Duration,
}

/// A setting with a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {message}")]
pub struct ConfigError {
    /// The setting's name as the user wrote it (`COAR_TRUST`, `--trust`, `trust` in the file).
    pub setting: String,
    /// What is wrong.
    pub message: String,
}

/// The items of a list setting, separated by commas, spaces or new lines.
fn items(value: Option<&str>) -> impl Iterator<Item = &str> {
    value
        .unwrap_or_default()
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// `*`, or a web origin as browsers send it in `Origin` (`scheme://host[:port]`, lower case,
/// the scheme's default port left out).
fn web_origin(value: &str) -> Result<String, String> {
    if value == "*" {
        return Ok(value.to_owned());
    }
    let url = url::Url::parse(value).map_err(|e| format!("{value:?} is not an origin: {e}"))?;
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare {
        return Err(format!(
            "{value:?} is not an origin such as https://editor.example (scheme, host, port only)"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

impl Config {
    /// Whether a page of `origin` (an `Origin` header) may POST to the inbox.
    pub fn cors_allows_post(&self, origin: &str) -> bool {
        self.cors_post_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }
}

fn bad(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_owned(),
        message: message.into(),
    }
}

/// Which source gave a setting, for error messages.
fn name(key: &str) -> String {
    format!("{key} (COAR_{})", key.to_ascii_uppercase())
}

impl Config {
    /// Merges the sources, first one wins: flags, environment, file; then defaults.
    pub fn resolve(flags: Layer, env: Layer, file: Option<Layer>) -> Result<Config, ConfigError> {
        let merged = flags.or(env).or(file.unwrap_or_default());
        let bind: SocketAddr = merged
            .bind
            .as_deref()
            .unwrap_or("127.0.0.1:8080")
            .parse()
            .map_err(|_| bad(&name("bind"), "expected an address such as 127.0.0.1:8080"))?;
        let database_url = merged
            .database_url
            .unwrap_or_else(|| "sqlite://coar-notify.db".into());
        if ![
            "sqlite:",
            "postgres://",
            "postgresql://",
            "mysql://",
            "mariadb://",
        ]
        .iter()
        .any(|p| database_url.starts_with(p))
        {
            return Err(bad(
                &name("database_url"),
                "use sqlite://FILE, postgres://… or mysql://…",
            ));
        }
        let base_url = match merged.base_url {
            Some(b) => {
                let parsed =
                    url::Url::parse(&b).map_err(|e| bad(&name("base_url"), e.to_string()))?;
                if !matches!(parsed.scheme(), "http" | "https")
                    || parsed.query().is_some()
                    || parsed.fragment().is_some()
                {
                    return Err(bad(
                        &name("base_url"),
                        "expected an http(s) URL without query or fragment",
                    ));
                }
                b.trim_end_matches('/').to_owned()
            }
            None => format!("http://{bind}"),
        };
        let admin_token = match (
            merged.admin_token.filter(|t| !t.is_empty()),
            merged.admin_token_file,
        ) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    &name("admin_token_file"),
                    "give the admin token or a file that holds it, not both",
                ));
            }
            (token, None) => token,
            (None, Some(file)) => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| bad(&name("admin_token_file"), format!("{file}: {e}")))?;
                Some(text.trim().to_owned()).filter(|t| !t.is_empty())
            }
        };
        if admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(bad(&name("admin_token"), "use at least 16 characters"));
        }
        let metrics_token = merged.metrics_token.filter(|t| !t.is_empty());
        if metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(bad(&name("metrics_token"), "use at least 16 characters"));
        }
        let trust = match merged.trust {
            Some(t) => t.parse().map_err(|m: String| bad(&name("trust"), m))?,
            None => TrustPolicy::Quarantine,
        };
        let max_body = match merged.max_body {
            None => 256 * 1024,
            Some(toml::Value::Integer(n)) => {
                usize::try_from(n).map_err(|_| bad(&name("max_body"), "must be positive"))?
            }
            Some(toml::Value::String(s)) => parse_size(&s).ok_or_else(|| {
                bad(
                    &name("max_body"),
                    format!("{s:?} is not a size such as 262144, 256KiB or 1MiB"),
                )
            })?,
            Some(other) => return Err(bad(&name("max_body"), format!("{other} is not a size"))),
        };
        if max_body < 1024 {
            return Err(bad(&name("max_body"), "must be at least 1024 bytes"));
        }
        let inbox_public = parse_bool(merged.inbox_public, true, "inbox_public")?;
        let accept_unrecognised =
            parse_bool(merged.accept_unrecognised, true, "accept_unrecognised")?;
        let workers = parse_count(merged.workers, 2, 0, 256, "workers")?;
        let max_attempts = parse_count(merged.max_attempts, 8, 1, 100, "max_attempts")? as u32;
        let deliveries_per_inbox = parse_count(
            merged.deliveries_per_inbox,
            4,
            1,
            64,
            "deliveries_per_inbox",
        )? as u32;
        let retry_base = match merged.retry_base {
            None => std::time::Duration::from_secs(30),
            Some(s) => parse_duration(&s).ok_or_else(|| {
                bad(
                    &name("retry_base"),
                    format!("{s:?} is not a duration such as 500ms, 30s or 1m"),
                )
            })?,
        };
        let send_timeout = match merged.send_timeout {
            None => std::time::Duration::from_secs(30),
            Some(s) => parse_duration(&s).filter(|d| !d.is_zero()).ok_or_else(|| {
                bad(
                    &name("send_timeout"),
                    format!("{s:?} is not a duration such as 500ms, 30s or 1m"),
                )
            })?,
        };
        let lease = match merged.lease {
            None => std::time::Duration::from_secs(300),
            Some(s) => parse_duration(&s).filter(|d| !d.is_zero()).ok_or_else(|| {
                bad(
                    &name("lease"),
                    format!("{s:?} is not a duration such as 30s or 5m"),
                )
            })?,
        };
        // One notification's handling is cut at an eighth of the lease (it may start only
        // while that much remains); one request of the slowest kind must fit in that.
        let cap = crate::worker::time_cap(lease);
        if cap < send_timeout {
            return Err(bad(
                &name("lease"),
                format!(
                    "{lease:?} is too short: a delivery may take send_timeout ({send_timeout:?}), and must fit in an eighth of the lease; use at least {:?}",
                    send_timeout.saturating_mul(8)
                ),
            ));
        }
        let max_retry_after = match merged.max_retry_after {
            None => coar_client::DEFAULT_MAX_RETRY_AFTER,
            Some(s) => parse_duration(&s).ok_or_else(|| {
                bad(
                    &name("max_retry_after"),
                    format!("{s:?} is not a duration such as 1h or 1d"),
                )
            })?,
        };
        let signature_window = match merged.signature_window {
            None => std::time::Duration::from_secs(300),
            Some(s) => parse_duration(&s)
                .filter(|d| (10..=3600).contains(&d.as_secs()))
                .ok_or_else(|| {
                    bad(
                        &name("signature_window"),
                        format!("{s:?} is not a duration from 10s to 1h, such as 5m"),
                    )
                })?,
        };
        let trusted_proxies = items(merged.trusted_proxies.as_deref())
            .map(|c| {
                c.parse::<coar_store::Cidr>()
                    .map_err(|m| bad(&name("trusted_proxies"), m))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cors_post_origins = items(merged.cors_post_origins.as_deref())
            .map(|o| web_origin(o).map_err(|m| bad(&name("cors_post_origins"), m)))
            .collect::<Result<Vec<_>, _>>()?;
        let publish_untrusted = parse_bool(merged.publish_untrusted, false, "publish_untrusted")?;
        let forwarded_header = match merged.forwarded_header {
            Some(h) => h
                .parse()
                .map_err(|m: String| bad(&name("forwarded_header"), m))?,
            None => crate::trust::ForwardedHeader::default(),
        };
        let tls_roots = match merged.tls_roots {
            Some(r) => r.parse().map_err(|m: String| bad(&name("tls_roots"), m))?,
            None => coar_client::TlsRoots::default(),
        };
        let rate = |value: Option<String>, default: &str, key: &str| {
            crate::limits::Rate::parse(value.as_deref().unwrap_or(default))
                .map_err(|m| bad(&name(key), m))
        };
        let rate_limit = rate(merged.rate_limit, "600/min", "rate_limit")?;
        let service_rate_limit = rate(merged.service_rate_limit, "6000/min", "service_rate_limit")?;
        let quarantine_limit = parse_count(
            merged.quarantine_limit,
            1000,
            1,
            100_000_000,
            "quarantine_limit",
        )? as u64;
        let pipeline = merged.pipeline.unwrap_or_default();
        for (i, spec) in pipeline.iter().enumerate() {
            spec.check().map_err(|m| {
                bad(
                    &format!("pipeline entry {} in the configuration file", i + 1),
                    m,
                )
            })?;
        }
        let allow_private_targets =
            parse_bool(merged.allow_private_targets, false, "allow_private_targets")?;
        let service_name = merged
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "coar-notify".into());
        let log_format = match merged.log_format {
            Some(f) => f.parse().map_err(|m: String| bad(&name("log_format"), m))?,
            None => LogFormat::Text,
        };
        Ok(Config {
            bind,
            database_url,
            base_url,
            admin_token,
            trust,
            max_body,
            inbox_public,
            log_format,
            accept_unrecognised,
            workers,
            max_attempts,
            deliveries_per_inbox,
            retry_base,
            allow_private_targets,
            name: service_name,
            send_timeout,
            pipeline,
            lease,
            max_retry_after,
            trusted_proxies,
            cors_post_origins,
            metrics_token,
            forwarded_header,
            tls_roots,
            signing_key_file: merged.signing_key_file.map(std::path::PathBuf::from),
            signature_window,
            publish_untrusted,
            rate_limit,
            service_rate_limit,
            quarantine_limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Layer {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Layer::from_env(move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults() {
        let c = Config::resolve(Layer::default(), Layer::default(), None).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://coar-notify.db");
        assert_eq!(c.base_url, "http://127.0.0.1:8080");
        assert_eq!(
            (c.trust, c.max_body, c.inbox_public, c.admin_token),
            (TrustPolicy::Quarantine, 262_144, true, None)
        );
    }

    #[test]
    fn precedence_flags_env_file() {
        let file: Layer = toml::from_str(
            "trust = \"reject\"\nmax_body = 2048\nbind = \"127.0.0.1:9000\"\ninbox_public = false",
        )
        .unwrap();
        let e = env(&[("COAR_TRUST", "accept"), ("COAR_MAX_BODY", "1MiB")]);
        let flags = Layer {
            trust: Some("quarantine".into()),
            ..Layer::default()
        };
        let c = Config::resolve(flags, e, Some(file)).unwrap();
        assert_eq!(c.trust, TrustPolicy::Quarantine);
        assert_eq!(c.max_body, 1024 * 1024);
        assert_eq!(c.bind.to_string(), "127.0.0.1:9000");
        assert!(!c.inbox_public);
        assert_eq!(c.base_url, "http://127.0.0.1:9000");
    }

    #[test]
    fn bad_values_name_their_setting() {
        let cases = [
            ("COAR_BIND", "nowhere", "bind (COAR_BIND)"),
            ("COAR_TRUST", "maybe", "trust (COAR_TRUST)"),
            ("COAR_MAX_BODY", "lots", "max_body (COAR_MAX_BODY)"),
            ("COAR_MAX_BODY", "10", "max_body (COAR_MAX_BODY)"),
            (
                "COAR_INBOX_PUBLIC",
                "perhaps",
                "inbox_public (COAR_INBOX_PUBLIC)",
            ),
            (
                "COAR_DATABASE_URL",
                "oracle://x",
                "database_url (COAR_DATABASE_URL)",
            ),
            ("COAR_BASE_URL", "ftp://x", "base_url (COAR_BASE_URL)"),
            (
                "COAR_ADMIN_TOKEN",
                "short",
                "admin_token (COAR_ADMIN_TOKEN)",
            ),
            ("COAR_LOG_FORMAT", "xml", "log_format (COAR_LOG_FORMAT)"),
            (
                "COAR_ACCEPT_UNRECOGNISED",
                "sometimes",
                "accept_unrecognised (COAR_ACCEPT_UNRECOGNISED)",
            ),
            (
                "COAR_CORS_POST_ORIGINS",
                "https://editor.example/page",
                "cors_post_origins (COAR_CORS_POST_ORIGINS)",
            ),
            (
                "COAR_METRICS_TOKEN",
                "short",
                "metrics_token (COAR_METRICS_TOKEN)",
            ),
            (
                "COAR_CORS_POST_ORIGINS",
                "editor.example",
                "cors_post_origins (COAR_CORS_POST_ORIGINS)",
            ),
        ];
        for (var, value, setting) in cases {
            let err = Config::resolve(Layer::default(), env(&[(var, value)]), None).unwrap_err();
            assert_eq!(err.setting, setting, "{var}={value}: {err}");
        }
        assert!(toml::from_str::<Layer>("unknown = 1").is_err());
    }
}
