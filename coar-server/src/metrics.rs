//! Prometheus metrics: requests by route and status, notifications received by pattern and
//! outcome; queue depth is read from the store when scraped.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

/// Counters, shared by all requests.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    received: Mutex<BTreeMap<(String, String), u64>>,
    /// The workers' liveness, restarts and caught panics.
    pub workers: Workers,
}

/// How many worker loops should run, how many do, and what went wrong with them.
#[derive(Debug, Default)]
pub struct Workers {
    expected: AtomicUsize,
    running: AtomicUsize,
    restarts: AtomicU64,
    panics: AtomicU64,
}

/// A running worker loop; dropping it (on return or unwinding) counts it as stopped.
#[derive(Debug)]
pub struct Running<'a>(&'a Workers);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Workers {
    /// `count` more loops are meant to run, and count as running from now (each takes its
    /// guard with [`adopt`](Self::adopt) when it starts), so that `/healthz` never sees a
    /// loop that was spawned but has not started yet as missing.
    pub fn expect(&self, count: usize) {
        self.expected.fetch_add(count, Ordering::SeqCst);
        self.running.fetch_add(count, Ordering::SeqCst);
    }

    /// The guard of a loop counted by [`expect`](Self::expect).
    pub fn adopt(&self) -> Running<'_> {
        Running(self)
    }

    /// A loop starts again; it counts as running until the guard is dropped.
    pub fn started(&self) -> Running<'_> {
        self.running.fetch_add(1, Ordering::SeqCst);
        Running(self)
    }

    /// A loop that stopped on its own was started again.
    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// A notification's handling panicked (caught, recorded as its failed attempt).
    pub fn panicked(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// Loops meant to run that are not running.
    pub fn missing(&self) -> usize {
        self.expected
            .load(Ordering::SeqCst)
            .saturating_sub(self.running.load(Ordering::SeqCst))
    }

    /// Stops expecting `count` loops (they were asked to stop).
    pub fn retire(&self, count: usize) {
        let _ = self
            .expected
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |e| {
                Some(e.saturating_sub(count))
            });
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one request.
    pub fn request(&self, method: &str, route: &str, status: u16) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
    }

    /// Counts one POSTed notification: its pattern (or `unrecognised`/`none`) and what
    /// happened (`created`, `duplicate`, `invalid`, `rejected`, …).
    pub fn received(&self, pattern: &str, outcome: &str) {
        *self
            .received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((pattern.to_owned(), outcome.to_owned()))
            .or_default() += 1;
    }

    /// The exposition text, with the queue depth given.
    pub fn render(&self, queue: &[(&str, &str, u64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP coar_http_requests_total HTTP requests by method, route and status.\n# TYPE coar_http_requests_total counter\n");
        for ((m, r, s), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "coar_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{s}\"}} {n}",
                escape(m),
                escape(r)
            );
        }
        out.push_str("# HELP coar_notifications_received_total Notifications POSTed to the inbox by pattern and outcome.\n# TYPE coar_notifications_received_total counter\n");
        for ((p, o), n) in self
            .received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "coar_notifications_received_total{{pattern=\"{}\",outcome=\"{}\"}} {n}",
                escape(p),
                escape(o)
            );
        }
        let w = &self.workers;
        let _ = write!(
            out,
            "# HELP coar_workers_expected Worker loops meant to run.\n# TYPE coar_workers_expected gauge\ncoar_workers_expected {}\n\
             # HELP coar_workers_running Worker loops running.\n# TYPE coar_workers_running gauge\ncoar_workers_running {}\n\
             # HELP coar_worker_restarts_total Worker loops that stopped on their own and were started again.\n# TYPE coar_worker_restarts_total counter\ncoar_worker_restarts_total {}\n\
             # HELP coar_worker_panics_total Notifications whose handling panicked (each recorded as a failed attempt).\n# TYPE coar_worker_panics_total counter\ncoar_worker_panics_total {}\n",
            w.expected.load(Ordering::SeqCst),
            w.running.load(Ordering::SeqCst),
            w.restarts.load(Ordering::Relaxed),
            w.panics.load(Ordering::Relaxed),
        );
        out.push_str("# HELP coar_queue_depth Notifications by direction and queue state.\n# TYPE coar_queue_depth gauge\n");
        for (direction, state, n) in queue {
            let _ = writeln!(
                out,
                "coar_queue_depth{{direction=\"{direction}\",state=\"{state}\"}} {n}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_that_stops_is_missing_until_it_runs_again() {
        let w = Workers::default();
        w.expect(2);
        assert_eq!(w.missing(), 0, "spawned loops count as running at once");
        let first = w.adopt();
        let second = w.adopt();
        drop(first); // it panicked, or returned
        assert_eq!(w.missing(), 1);
        let again = w.started();
        w.restarted();
        assert_eq!(w.missing(), 0);
        drop((second, again));
        w.retire(2);
        assert_eq!(w.missing(), 0, "loops asked to stop are not missing");
        let text = Metrics::default().render(&[]);
        assert!(text.contains("coar_worker_restarts_total 0"), "{text}");
    }
}
