//! Prometheus metrics (OpenMetrics text, through `prometheus-client`): what an operator
//! alerts on. Requests by route, status and latency; notifications received by pattern and
//! outcome; the time from receipt to processing or delivery; each delivery's duration by
//! outcome; worker liveness; and, read from the store at each scrape, the queue's depth and
//! the age of its oldest notification per state. Example alert rules are in
//! `docs/configuration.md`.

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::Histogram,
        info::Info,
    },
    registry::{Registry, Unit},
};

/// The bounds of request and delivery durations, in seconds: a millisecond to half a minute.
const FAST: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The bounds of the time from receipt to an end (processed, delivered, failed): a
/// hundredth of a second to a day, as retries stretch it.
const SLOW: [f64; 14] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReceivedLabels {
    pattern: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndLabels {
    direction: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    direction: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn fast() -> Histogram {
    Histogram::new(FAST)
}

fn slow() -> Histogram {
    Histogram::new(SLOW)
}

/// What one queue state holds, as the store counts it at a scrape.
#[derive(Debug, Clone, Copy)]
pub struct QueueState {
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// The state's name.
    pub state: &'static str,
    /// How many notifications are in it.
    pub count: u64,
    /// How long the one longest in it has been there.
    pub oldest: Duration,
}

/// The metrics of one process, shared by requests and workers.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histograms<RouteLabels>,
    received: Family<ReceivedLabels, Counter>,
    ended: Histograms<EndLabels>,
    deliveries: Histograms<OutcomeLabels>,
    queue_depth: Family<QueueLabels, Gauge>,
    queue_oldest: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    /// One scrape at a time sets the queue gauges and encodes them.
    scrape: Mutex<()>,
    /// The workers' liveness, restarts and caught panics.
    pub workers: Arc<Workers>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "coar_http_requests",
            "HTTP requests by method, route (its pattern, never the raw path) and status",
            requests.clone(),
        );
        let latency: Histograms<RouteLabels> = Family::new_with_constructor(fast);
        registry.register_with_unit(
            "coar_http_request_duration",
            "Time from a request's arrival to its response, by method and route",
            Unit::Seconds,
            latency.clone(),
        );
        let received = Family::<ReceivedLabels, Counter>::default();
        registry.register(
            "coar_notifications_received",
            "Notifications POSTed to the inbox, by pattern and outcome (created, duplicate, \
             invalid, rejected, ...)",
            received.clone(),
        );
        let ended: Histograms<EndLabels> = Family::new_with_constructor(slow);
        registry.register_with_unit(
            "coar_notification_end_latency",
            "Time from a notification's receipt (or creation, outbound) to its end: processed, \
             delivered, failed or dead, by direction and outcome",
            Unit::Seconds,
            ended.clone(),
        );
        let deliveries: Histograms<OutcomeLabels> = Family::new_with_constructor(fast);
        registry.register_with_unit(
            "coar_delivery_duration",
            "Duration of each delivery attempt (discovery, redirects and the POST), by outcome: \
             delivered, retry, failed, dead",
            Unit::Seconds,
            deliveries.clone(),
        );
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "coar_queue_depth",
            "Notifications by direction and queue state, read from the store at the scrape",
            queue_depth.clone(),
        );
        let queue_oldest = Family::<QueueLabels, Gauge<f64, AtomicU64>>::default();
        registry.register_with_unit(
            "coar_queue_oldest_age",
            "How long the notification longest in each state has been in it",
            Unit::Seconds,
            queue_oldest.clone(),
        );
        let workers = Arc::new(Workers::default());
        registry.register_collector(Box::new(workers.clone()));
        registry.register(
            "coar_build",
            "The running version",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        Metrics {
            registry,
            requests,
            latency,
            received,
            ended,
            deliveries,
            queue_depth,
            queue_oldest,
            scrape: Mutex::new(()),
            workers,
        }
    }
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

/// The workers' numbers, read at each scrape from the atomics `/healthz` reads.
impl Collector for Workers {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let gauge = |n: &AtomicUsize| {
            ConstGauge::new(i64::try_from(n.load(Ordering::SeqCst)).unwrap_or(i64::MAX))
        };
        for (name, help, value) in [
            (
                "coar_workers_expected",
                "Worker loops meant to run",
                gauge(&self.expected),
            ),
            (
                "coar_workers_running",
                "Worker loops running",
                gauge(&self.running),
            ),
        ] {
            value.encode(encoder.encode_descriptor(name, help, None, value.metric_type())?)?;
        }
        for (name, help, value) in [
            (
                "coar_worker_restarts",
                "Worker loops that stopped on their own and were started again",
                &self.restarts,
            ),
            (
                "coar_worker_panics",
                "Notifications whose handling panicked (each recorded as a failed attempt)",
                &self.panics,
            ),
        ] {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

impl Metrics {
    /// Counts one request and its duration.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts one POSTed notification: its pattern (or `unrecognised`/`none`) and what
    /// happened (`created`, `duplicate`, `invalid`, `rejected`, …).
    pub fn received(&self, pattern: &str, outcome: &str) {
        self.received
            .get_or_create(&ReceivedLabels {
                pattern: pattern.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// A notification reached an end (`processed`, `delivered`, `failed`, `dead`) `age`
    /// after it was received or created.
    pub fn ended(&self, direction: &'static str, outcome: &'static str, age: Duration) {
        self.ended
            .get_or_create(&EndLabels { direction, outcome })
            .observe(age.as_secs_f64());
    }

    /// One delivery attempt took `took` and ended as `outcome` (`delivered`, `retry`,
    /// `failed`, `dead`).
    pub fn delivery(&self, outcome: &'static str, took: Duration) {
        self.deliveries
            .get_or_create(&OutcomeLabels { outcome })
            .observe(took.as_secs_f64());
    }

    /// The exposition text (OpenMetrics), with the queue as the store counts it now.
    pub fn render(&self, queue: &[QueueState]) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        // States that emptied since the last scrape are gone, not stuck at their old value.
        self.queue_depth.clear();
        self.queue_oldest.clear();
        for q in queue {
            let labels = QueueLabels {
                direction: q.direction,
                state: q.state,
            };
            self.queue_depth
                .get_or_create(&labels)
                .set(i64::try_from(q.count).unwrap_or(i64::MAX));
            self.queue_oldest
                .get_or_create(&labels)
                .set(q.oldest.as_secs_f64());
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
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
    }

    #[test]
    fn the_exposition_has_every_family_with_its_type() {
        let m = Metrics::default();
        m.workers.expect(2);
        m.request("POST", "/inbox", 201, Duration::from_millis(3));
        m.received("request-review", "created");
        m.ended("inbound", "processed", Duration::from_secs(2));
        m.delivery("retry", Duration::from_millis(40));
        let queue = [QueueState {
            direction: "outbound",
            state: "retry_scheduled",
            count: 3,
            oldest: Duration::from_secs(90),
        }];
        let text = m.render(&queue);
        for line in [
            "# TYPE coar_http_requests counter",
            "coar_http_requests_total{method=\"POST\",route=\"/inbox\",status=\"201\"} 1",
            "# TYPE coar_http_request_duration_seconds histogram",
            "coar_http_request_duration_seconds_bucket{le=\"0.005\",method=\"POST\",route=\"/inbox\"} 1",
            "coar_notifications_received_total{pattern=\"request-review\",outcome=\"created\"} 1",
            "coar_notification_end_latency_seconds_count{direction=\"inbound\",outcome=\"processed\"} 1",
            "coar_delivery_duration_seconds_sum{outcome=\"retry\"} 0.04",
            "coar_queue_depth{direction=\"outbound\",state=\"retry_scheduled\"} 3",
            "coar_queue_oldest_age_seconds{direction=\"outbound\",state=\"retry_scheduled\"} 90.0",
            "coar_workers_expected 2",
            "coar_workers_running 2",
            "coar_worker_restarts_total 0",
            "coar_worker_panics_total 0",
            "coar_build_info{version=\"",
            "# EOF",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        // A state that emptied is dropped at the next scrape.
        let text = m.render(&[]);
        assert!(!text.contains("coar_queue_depth{"), "{text}");
    }
}
