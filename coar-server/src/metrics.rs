//! Prometheus metrics: requests by route and status, notifications received by pattern and
//! outcome; queue depth is read from the store when scraped.

use std::{collections::BTreeMap, fmt::Write, sync::Mutex};

/// Counters, shared by all requests.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    received: Mutex<BTreeMap<(String, String), u64>>,
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
