//! The settings as one source gives them ([`Layer`]), declared once for clap and serde.

use std::path::Path;

use serde::Deserialize;

use super::{ConfigError, bad};

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

            pub(super) fn or(self, other: Layer) -> Layer {
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
    /// The bearer token /metrics requires, at least 16 characters [default: none: /metrics is
    /// open]
    metrics_token: String, "COAR_METRICS_TOKEN", [long, env = "COAR_METRICS_TOKEN", hide_env_values = true];
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
    /// Deliveries in flight at once to one inbox, 1 to 64; order is kept within a thread
    /// [default: 4]
    deliveries_per_inbox: toml::Value, "COAR_DELIVERIES_PER_INBOX", [long, env = "COAR_DELIVERIES_PER_INBOX", value_parser = scalar];
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
    /// Origins whose web pages may POST to the inbox (CORS, with preflight), comma-separated,
    /// or * for any [default: none]
    cors_post_origins: String, "COAR_CORS_POST_ORIGINS", [long, env = "COAR_CORS_POST_ORIGINS"];
    /// The private key what this server sends is signed with (HTTP Message Signatures): a
    /// PKCS#8 PEM file, Ed25519 or RSA [default: an Ed25519 key generated on first start and
    /// kept in the database]
    signing_key_file: String, "COAR_SIGNING_KEY_FILE", [long, env = "COAR_SIGNING_KEY_FILE"];
    /// How old a sender's HTTP Message Signature may be (its `created`), and so how long
    /// signatures are remembered to refuse replays; 10s to 1h [default: 5m]
    signature_window: String, "COAR_SIGNATURE_WINDOW", [long, env = "COAR_SIGNATURE_WINDOW"];
    /// Certificate authorities of HTTPS peers: system+bundled, system or bundled
    /// [default: system+bundled]
    tls_roots: String, "COAR_TLS_ROOTS", [long, env = "COAR_TLS_ROOTS"];
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

impl Layer {
    /// A TOML file with the same keys in lower case (`bind = "0.0.0.0:8080"`, …).
    pub fn from_file(path: &Path) -> Result<Layer, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad("--config", format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| bad("--config", format!("{}: {e}", path.display())))
    }
}
