//! The forms a setting's value takes: booleans, counts, durations, sizes.

use super::{ConfigError, bad, name};

/// A boolean setting: TOML `true`/`false`, or the strings true/false, 1/0, yes/no.
pub(super) fn parse_bool(
    value: Option<toml::Value>,
    default: bool,
    key: &str,
) -> Result<bool, ConfigError> {
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
pub(super) fn parse_count(
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
pub(super) fn parse_size(s: &str) -> Option<usize> {
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
