//! Outbound: how fast a server delivers to peers that take their time to answer.

use std::sync::Mutex;

use super::*;

/// Deliveries of `notifications` spread over `inboxes` inboxes of one sink that answers
/// each POST after `delay`.
pub(super) struct Outbound {
    pub(super) notifications: u64,
    pub(super) inboxes: usize,
    pub(super) delay: Duration,
    /// From the sink's first request to its last.
    pub(super) seconds: f64,
    /// How many requests the sink had in hand at once, at most.
    pub(super) most_at_once: u64,
}

impl Outbound {
    pub(super) fn rate(&self) -> f64 {
        self.notifications.saturating_sub(1) as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }

    pub(super) fn json(&self) -> Value {
        json!({
            "notifications": self.notifications,
            "inboxes": self.inboxes,
            "peer_delay_ms": self.delay.as_secs_f64() * 1000.0,
            "seconds": self.seconds,
            "per_second": self.rate(),
            "most_in_flight": self.most_at_once,
        })
    }
}

/// What the sink saw: when each request came, and the distinct ids.
#[derive(Default)]
struct Seen {
    arrivals: Vec<Instant>,
    ids: std::collections::HashSet<String>,
}

/// The most requests in hand at once, each held for `delay` from its arrival.
fn most_at_once(arrivals: &[Instant], delay: Duration) -> u64 {
    let mut most = 0;
    let mut from = 0;
    for (i, t) in arrivals.iter().enumerate() {
        while *t - arrivals[from] >= delay {
            from += 1;
        }
        most = most.max(i + 1 - from);
    }
    most as u64
}

/// Queues `notifications` through `POST /api/outbox` of the server at `addr` (16 at a
/// time), round-robin over `inboxes` inboxes of a sink that answers after `delay`, and
/// times their delivery at the sink.
pub(super) async fn outbound(
    addr: &str,
    notifications: u64,
    inboxes: usize,
    delay: Duration,
) -> Result<Outbound> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sink = listener.local_addr()?.to_string();
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let at_sink = seen.clone();
    crate::faults::slow_sink(
        listener,
        Arc::new(move |_head, body| {
            let id = crate::faults::body_id(body);
            let mut seen = at_sink.lock().unwrap_or_else(|e| e.into_inner());
            seen.arrivals.push(Instant::now());
            seen.ids.insert(id);
            b"HTTP/1.1 201 Created\r\nLocation: /inbox/1\r\nContent-Length: 0\r\n\r\n".to_vec()
        }),
        delay,
    );
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (addr, next, sink) = (addr.to_owned(), next.clone(), sink.clone());
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(&addr).await?;
            let mut buf = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= notifications {
                    return anyhow::Ok(());
                }
                let body = json!({
                    "pattern": "request-review",
                    "id": format!("urn:uuid:00000000-0000-4000-9{inboxes:03}-{i:012}"),
                    "target": {"id": format!("https://sink{}.example/", i as usize % inboxes), "inbox": format!("http://{sink}/inbox/{}", i as usize % inboxes), "type": "Service"},
                    "object": {"id": format!("https://repo.example/item/{i}/"), "type": ["Page", "sorg:AboutPage"], "ietf:cite-as": "https://doi.org/10.5555/1",
                               "ietf:item": {"id": format!("https://repo.example/item/{i}/a.pdf"), "mediaType": "application/pdf", "type": ["Article", "sorg:ScholarlyArticle"]}},
                })
                .to_string();
                let request = format!(
                    "POST /api/outbox HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let status = roundtrip(&mut stream, &mut buf, request.as_bytes()).await?;
                if status != 202 {
                    bail!("the outbox answered {status}");
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let started = Instant::now();
    loop {
        let delivered = seen.lock().unwrap_or_else(|e| e.into_inner()).ids.len() as u64;
        if delivered >= notifications {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {delivered} of {notifications} delivered in 600 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    let seconds = match (seen.arrivals.first(), seen.arrivals.last()) {
        (Some(first), Some(last)) => (*last - *first).as_secs_f64(),
        _ => 0.0,
    };
    Ok(Outbound {
        notifications,
        inboxes,
        delay,
        seconds,
        most_at_once: most_at_once(&seen.arrivals, delay),
    })
}
