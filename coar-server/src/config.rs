//! Configuration: flags, then environment, then an optional TOML file, then defaults (the
//! first that gives a value wins). Every bad value is reported with the setting's name.

use std::{net::SocketAddr, path::Path, str::FromStr};

use serde::Deserialize;

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
    /// `COAR_FORWARDED_HEADER`: the header the trusted proxies write the client's address to,
    /// `x-forwarded-for` (default) or `forwarded`; the other is never read.
    pub forwarded_header: crate::trust::ForwardedHeader,
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

/// Declares [`Layer`], one line per setting: its doc (the `--help` text, with the default
/// and the allowed values), its TOML key (the field), its type as given, its environment
/// variable, and clap's attributes for its flag. Adding a setting means one line here, its
/// check in [`Config::resolve`] and its field of [`Config`].
macro_rules! settings {
    ($( $(#[doc = $doc:literal])* $field:ident: $ty:ty, $env:literal, [$($arg:tt)*]; )*) => {
        /// The settings as one source gives them, not yet checked: the flags and `COAR_*`
        /// variables (through clap, feature `cli`), or the configuration file (through serde,
        /// with the same keys in lower case).
        #[derive(Debug, Clone, Default, Deserialize)]
        #[cfg_attr(feature = "cli", derive(clap::Args))]
        #[serde(deny_unknown_fields)]
        pub struct Layer {
            $(
                $(#[doc = $doc])*
                #[cfg_attr(feature = "cli", arg($($arg)*))]
                pub $field: Option<$ty>,
            )*
        }

        impl Layer {
            /// The `COAR_*` environment variables, read through `get`.
            pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Layer {
                Layer {
                    $( $field: if $env.is_empty() { None } else { get($env).and_then(Given::from_text) }, )*
                }
            }

            fn or(self, other: Layer) -> Layer {
                Layer {
                    $( $field: self.$field.or(other.$field), )*
                }
            }
        }
    };
}

/// A type a setting is given as: a string, or a TOML scalar (`max_body = 262144`,
/// `inbox_public = false`) that flags and variables give as a string.
trait Given: Sized {
    fn from_text(text: String) -> Option<Self>;
}

impl Given for String {
    fn from_text(text: String) -> Option<String> {
        Some(text)
    }
}

impl Given for toml::Value {
    fn from_text(text: String) -> Option<toml::Value> {
        Some(toml::Value::String(text))
    }
}

impl Given for Vec<crate::pipeline::builtin::HandlerSpec> {
    fn from_text(_: String) -> Option<Self> {
        None // the configuration file only
    }
}

/// clap's parser of a TOML scalar given on the command line.
#[cfg(feature = "cli")]
fn scalar(text: &str) -> Result<toml::Value, std::convert::Infallible> {
    Ok(toml::Value::String(text.to_owned()))
}

settings! {
    /// Listening address [default: 127.0.0.1:8080]
    bind: String, "COAR_BIND", [long, env = "COAR_BIND"];
    /// sqlite://FILE, postgres://… or mysql://… [default: sqlite://coar-notify.db]
    database_url: String, "COAR_DATABASE_URL", [long, env = "COAR_DATABASE_URL"];
    /// Public base URL of ids and Locations [default: http:// and the bind address]
    base_url: String, "COAR_BASE_URL", [long, env = "COAR_BASE_URL"];
    /// The admin API's and dashboard's bearer token, 16 characters or more [default: none,
    /// the admin API is disabled]
    admin_token: String, "COAR_ADMIN_TOKEN", [long, env = "COAR_ADMIN_TOKEN", hide_env_values = true];
    /// A file holding the admin token (systemd and Docker credentials)
    admin_token_file: String, "COAR_ADMIN_TOKEN_FILE", [long, env = "COAR_ADMIN_TOKEN_FILE"];
    /// What to do with unregistered senders: accept, quarantine or reject [default: quarantine]
    trust: String, "COAR_TRUST", [long, env = "COAR_TRUST"];
    /// Largest notification, e.g. 262144 or 256KiB [default: 256KiB]
    max_body: toml::Value, "COAR_MAX_BODY", [long, env = "COAR_MAX_BODY", value_parser = scalar];
    /// Whether GET on the inbox is public: true or false [default: true]
    inbox_public: toml::Value, "COAR_INBOX_PUBLIC", [long, env = "COAR_INBOX_PUBLIC", value_parser = scalar];
    /// Log lines: text or json [default: text]
    log_format: String, "COAR_LOG_FORMAT", [long, env = "COAR_LOG_FORMAT"];
    /// Store activities that name no COAR pattern: true or false [default: true]
    accept_unrecognised: toml::Value, "COAR_ACCEPT_UNRECOGNISED", [long, env = "COAR_ACCEPT_UNRECOGNISED", value_parser = scalar];
    /// Background workers in `serve`, 0 to 256 [default: 2]
    workers: toml::Value, "COAR_WORKERS", [long, env = "COAR_WORKERS", value_parser = scalar];
    /// Attempts before a notification is dead, 1 to 100 [default: 8]
    max_attempts: toml::Value, "COAR_MAX_ATTEMPTS", [long, env = "COAR_MAX_ATTEMPTS", value_parser = scalar];
    /// First retry delay, doubled each time up to an hour, e.g. 500ms, 30s, 1m [default: 30s]
    retry_base: String, "COAR_RETRY_BASE", [long, env = "COAR_RETRY_BASE"];
    /// Allow sending to loopback and private addresses: true or false [default: false]
    allow_private_targets: toml::Value, "COAR_ALLOW_PRIVATE_TARGETS", [long, env = "COAR_ALLOW_PRIVATE_TARGETS", value_parser = scalar];
    /// This service's name in what it sends [default: coar-notify]
    name: String, "COAR_NAME", [id = "service_name", long = "service-name", env = "COAR_NAME"];
    /// How long one delivery may take, e.g. 10s [default: 30s]
    send_timeout: String, "COAR_SEND_TIMEOUT", [long, env = "COAR_SEND_TIMEOUT"];
    /// How long a worker holds a notification, at least 8 × send_timeout [default: 5m]
    lease: String, "COAR_LEASE", [long, env = "COAR_LEASE"];
    /// The longest peer Retry-After honoured; longer ones are cut to it [default: 1d]
    max_retry_after: String, "COAR_MAX_RETRY_AFTER", [long, env = "COAR_MAX_RETRY_AFTER"];
    /// Address ranges of reverse proxies whose forwarded header is believed, comma-separated
    /// [default: none]
    trusted_proxies: String, "COAR_TRUSTED_PROXIES", [long, env = "COAR_TRUSTED_PROXIES"];
    /// The header the trusted proxies write: x-forwarded-for or forwarded
    /// [default: x-forwarded-for]
    forwarded_header: String, "COAR_FORWARDED_HEADER", [long, env = "COAR_FORWARDED_HEADER"];
    /// List notifications no registered service vouches for in /inbox and /feed: true or
    /// false [default: false]
    publish_untrusted: toml::Value, "COAR_PUBLISH_UNTRUSTED", [long, env = "COAR_PUBLISH_UNTRUSTED", value_parser = scalar];
    /// POSTs to the inbox per sender address: N/s, N/min, N/h or off [default: 600/min]
    rate_limit: String, "COAR_RATE_LIMIT", [long, env = "COAR_RATE_LIMIT"];
    /// Notifications per registered service: N/s, N/min, N/h or off [default: 6000/min]
    service_rate_limit: String, "COAR_SERVICE_RATE_LIMIT", [long, env = "COAR_SERVICE_RATE_LIMIT"];
    /// Most notifications held in quarantine per unregistered origin and per address
    /// [default: 1000]
    quarantine_limit: toml::Value, "COAR_QUARANTINE_LIMIT", [long, env = "COAR_QUARANTINE_LIMIT", value_parser = scalar];
    /// `[[pipeline]]` entries: the handlers run per pattern (configuration file only)
    pipeline: Vec<crate::pipeline::builtin::HandlerSpec>, "", [skip];
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

fn bad(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_owned(),
        message: message.into(),
    }
}

impl Layer {
    /// A TOML file with the same keys in lower case (`bind = "0.0.0.0:8080"`, …).
    pub fn from_file(path: &Path) -> Result<Layer, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad("--config", format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| bad("--config", format!("{}: {e}", path.display())))
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
        let trusted_proxies = merged
            .trusted_proxies
            .unwrap_or_default()
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| {
                c.parse::<coar_store::Cidr>()
                    .map_err(|m| bad(&name("trusted_proxies"), m))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let publish_untrusted = parse_bool(merged.publish_untrusted, false, "publish_untrusted")?;
        let forwarded_header = match merged.forwarded_header {
            Some(h) => h
                .parse()
                .map_err(|m: String| bad(&name("forwarded_header"), m))?,
            None => crate::trust::ForwardedHeader::default(),
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
            retry_base,
            allow_private_targets,
            name: service_name,
            send_timeout,
            pipeline,
            lease,
            max_retry_after,
            trusted_proxies,
            forwarded_header,
            publish_untrusted,
            rate_limit,
            service_rate_limit,
            quarantine_limit,
        })
    }
}

/// A boolean setting: TOML `true`/`false`, or the strings true/false, 1/0, yes/no.
fn parse_bool(value: Option<toml::Value>, default: bool, key: &str) -> Result<bool, ConfigError> {
    match value {
        None => Ok(default),
        Some(toml::Value::Boolean(b)) => Ok(b),
        Some(toml::Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            other => Err(bad(&name(key), format!("{other:?} is not true or false"))),
        },
        Some(other) => Err(bad(&name(key), format!("{other} is not true or false"))),
    }
}

/// A whole number within bounds.
fn parse_count(
    value: Option<toml::Value>,
    default: usize,
    min: usize,
    max: usize,
    key: &str,
) -> Result<usize, ConfigError> {
    let n = match value {
        None => return Ok(default),
        Some(toml::Value::Integer(n)) => usize::try_from(n).ok(),
        Some(toml::Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    n.filter(|n| (min..=max).contains(n)).ok_or_else(|| {
        bad(
            &name(key),
            format!("must be a whole number from {min} to {max}"),
        )
    })
}

/// `500ms`, `30s`, `2m`, `1h`, `1d`, or plain seconds: every duration of the configuration
/// and of the command line is read here.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    match unit.trim() {
        "ms" => Some(std::time::Duration::from_millis(n)),
        "" | "s" => Some(std::time::Duration::from_secs(n)),
        "m" | "min" => Some(std::time::Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(std::time::Duration::from_secs(n.checked_mul(3600)?)),
        "d" => Some(std::time::Duration::from_secs(n.checked_mul(86_400)?)),
        _ => None,
    }
}

/// `262144`, `256KiB`, `256K`, `1MiB`, `1M`.
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: usize = n.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor)
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
        ];
        for (var, value, setting) in cases {
            let err = Config::resolve(Layer::default(), env(&[(var, value)]), None).unwrap_err();
            assert_eq!(err.setting, setting, "{var}={value}: {err}");
        }
        assert!(toml::from_str::<Layer>("unknown = 1").is_err());
    }
}
