//! Retries for callers without a durable queue, and `Retry-After`.

use std::time::{Duration, Instant};

/// Retries for callers without a durable queue: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (default 5).
    pub max_attempts: u32,
    /// The first backoff ceiling (default 1 s), doubled after each failure.
    pub base_delay: Duration,
    /// The largest backoff ceiling (default 60 s).
    pub max_delay: Duration,
    /// Give up when the next wait would pass this much time in all (default 5 min).
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_total: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (after `attempt` failures): uniformly random in
    /// `0..=min(max_delay, base × 2^(attempt−1))`, but at least the peer's `Retry-After`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)))
            .min(self.max_delay);
        let jitter = ceiling.mul_f64(random_unit());
        retry_after.map_or(jitter, |r| jitter.max(r))
    }
}

/// `Retry-After`: delay-seconds, or an HTTP-date (a date in the past means now). The value
/// is the peer's and is not clamped here: cut it to a maximum before adding it to anything
/// (the client does, with [`ClientConfig::max_retry_after`](crate::ClientConfig::max_retry_after)).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A random number in [0, 1) from the standard library's randomly keyed hasher.
pub(crate) fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        let later =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
        let d = parse_retry_after(&later).unwrap();
        assert!(
            d > Duration::from_secs(3500) && d <= Duration::from_secs(3600),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn full_jitter_stays_within_its_ceiling() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        for attempt in 1..10 {
            let ceiling =
                Duration::from_millis(100 * 2u64.pow(attempt - 1)).min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(p.delay(attempt, None) <= ceiling);
            }
        }
        assert!(p.delay(1, Some(Duration::from_secs(5))) >= Duration::from_secs(5));
        let spread: std::collections::BTreeSet<u128> =
            (0..50).map(|_| p.delay(5, None).as_micros()).collect();
        assert!(spread.len() > 40, "jitter is random: {spread:?}");
    }
}
