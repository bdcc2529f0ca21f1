//! `Retry-After` as a target sends it (delay-seconds or an HTTP-date), through what the
//! client and the workers do with it: parse, cut to the maximum, add to a backoff and to
//! now. Never panics, and the wait never passes the maximum plus the backoff's ceiling.

#![no_main]

use std::time::{Duration, Instant, SystemTime};

use coar_client::{DEFAULT_MAX_RETRY_AFTER, RetryPolicy, parse_retry_after};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&attempt, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(rest) else {
        return;
    };
    let Some(peer) = parse_retry_after(value) else {
        return;
    };
    let clamped = peer.min(DEFAULT_MAX_RETRY_AFTER);
    let policy = RetryPolicy::default();
    let wait = policy.delay(u32::from(attempt), Some(clamped));
    assert!(wait <= DEFAULT_MAX_RETRY_AFTER.max(policy.max_delay), "{wait:?}");
    let _ = Instant::now().checked_add(wait);
    let _ = SystemTime::now().checked_add(wait);
    let _ = Duration::from_secs(1).saturating_add(wait);
});
