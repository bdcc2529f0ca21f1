//! Rate limits: a token bucket per key (a sender's address, an attributed service), and the
//! quarantine's cap per unattributed origin and address.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// A rate: `per` requests a `period`, with a burst of as many.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per period, and the bucket's size.
    pub per: u32,
    /// The period.
    pub period: Duration,
}

impl Rate {
    /// `N/s`, `N/min`, `N/h`, or `off` (`None`).
    pub fn parse(s: &str) -> Result<Option<Rate>, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let err = || format!("{s:?} is not a rate such as 10/s, 600/min or 1000/h, or off");
        let (n, unit) = s.split_once('/').ok_or_else(err)?;
        let per: u32 = n.trim().parse().ok().filter(|n| *n > 0).ok_or_else(err)?;
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "min" | "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(err()),
        };
        Ok(Some(Rate { per, period }))
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The key a sender's address is limited under: an IPv4 address, or the /64 an IPv6
/// address is in (one host is given a whole /64, and may rotate through it).
pub fn address_key(ip: std::net::IpAddr) -> String {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    }
}

/// Token buckets by key, with bounded memory: past [`MAX_KEYS`] keys, the buckets that have
/// refilled (which say nothing) are forgotten, and if that is not enough, all of them.
#[derive(Debug)]
pub struct Limiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// The most keys a limiter remembers.
pub const MAX_KEYS: usize = 100_000;

impl Limiter {
    /// A limiter at `rate`.
    pub fn new(rate: Rate) -> Limiter {
        Limiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` has a token now, without taking it; `Err` is how long until one is.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match buckets.get(key) {
            Some(b) => self.wait(self.tokens(b, now)),
            None => Ok(()),
        }
    }

    /// The tokens a bucket holds at `now`, refilled since it was last used.
    fn tokens(&self, b: &Bucket, now: Instant) -> f64 {
        let size = f64::from(self.rate.per);
        let per_second = size / self.rate.period.as_secs_f64();
        (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second).min(size)
    }

    /// `Ok` with a token there, or how long until one is.
    fn wait(&self, tokens: f64) -> Result<(), Duration> {
        if tokens >= 1.0 {
            return Ok(());
        }
        let per_second = f64::from(self.rate.per) / self.rate.period.as_secs_f64();
        Err(Duration::from_secs_f64((1.0 - tokens) / per_second))
    }

    /// Takes a token for `key`; `Err` is how long until one is there.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        self.take_at(key, Instant::now())
    }

    /// [`Limiter::take`] at `now` (monotonic: never before a previous call's `now`).
    fn take_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let size = f64::from(self.rate.per);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| self.tokens(b, now) < size);
            if buckets.len() >= MAX_KEYS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: size,
            at: now,
        });
        bucket.tokens = self.tokens(bucket, now);
        bucket.at = now;
        let result = self.wait(bucket.tokens);
        if result.is_ok() {
            bucket.tokens -= 1.0;
        }
        result
    }
}

/// How many notifications each unattributed origin and address holds in quarantine: read
/// from the database the first time this process meets the key, counted here after that,
/// and read again when the count reaches the cap (so another replica or a release is
/// accounted for). Only a new sender, or one at the cap, costs a query.
#[derive(Debug, Default)]
pub struct QuarantineCounts {
    counts: Mutex<HashMap<String, u64>>,
}

impl QuarantineCounts {
    /// This process's count for `key`, `None` if it has not met it yet.
    pub fn get(&self, key: &str) -> Option<u64> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(key).copied()
    }

    /// Sets `key`'s count (from the database).
    pub fn set(&self, key: &str, n: u64) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() >= MAX_KEYS && !counts.contains_key(key) {
            counts.clear(); // the database has the truth; start counting again
        }
        counts.insert(key.to_owned(), n);
    }

    /// One more for `key`, if it is known (an unknown key is read from the database when
    /// next needed, which counts this one).
    pub fn add(&self, key: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(key) {
            *n = n.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            Rate::parse("600/min").unwrap(),
            Some(Rate {
                per: 600,
                period: Duration::from_secs(60)
            })
        );
        assert_eq!(Rate::parse("off").unwrap(), None);
        for bad in ["", "10", "0/s", "x/s", "10/week"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let l = Limiter::new(Rate {
            per: 3,
            period: Duration::from_secs(3600),
        });
        for _ in 0..3 {
            l.take("a").unwrap();
        }
        let wait = l.take("a").unwrap_err();
        assert!(
            wait > Duration::from_secs(1100) && wait <= Duration::from_secs(1200),
            "{wait:?}"
        );
        l.take("b").unwrap();
        // At a fixed moment (no refill in between), then 2.5 ms later (2.5 tokens back).
        let fast = Limiter::new(Rate {
            per: 1000,
            period: Duration::from_secs(1),
        });
        let at = Instant::now();
        for _ in 0..1000 {
            fast.take_at("a", at).unwrap();
        }
        assert!(fast.take_at("a", at).is_err());
        let later = at + Duration::from_micros(2500);
        fast.take_at("a", later).unwrap();
        fast.take_at("a", later).unwrap();
        assert!(fast.take_at("a", later).is_err());
    }
}
