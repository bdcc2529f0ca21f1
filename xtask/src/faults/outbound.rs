//! An outbound target down, then back: every notification delivered, in order within its
//! thread, none twice, never more at once per inbox than allowed.

use super::*;

/// The outbound target is down (connection refused), then up but overloaded (a 503 with
/// `Retry-After` to the first delivery on each inbox), then well: every queued notification
/// is delivered, in order of creation within its delivery thread (per inbox, six threads of
/// an activity and replies to it), none is accepted twice, and never more than
/// `deliveries_per_inbox` (the default, 4) are in hand at once per inbox. While the target
/// is down, only the threads' heads are tried.
pub(super) async fn target_down_then_back(
    root: &Path,
    bin: &Path,
    work: &Path,
    size: Size,
) -> Result<String> {
    let dir = work.join("target-down");
    std::fs::create_dir_all(&dir)?;
    let database_url = format!("sqlite://{}?mode=rwc", dir.join("coar.db").display());
    let (proc, addr) = serve(
        bin,
        &dir,
        &database_url,
        &[
            ("COAR_WORKERS", "2"),
            ("COAR_ALLOW_PRIVATE_TARGETS", "true"),
            ("COAR_RETRY_BASE", "200ms"),
            ("COAR_MAX_ATTEMPTS", "30"),
            ("COAR_SEND_TIMEOUT", "5s"),
        ],
    )
    .await?;
    // The target's port, closed for now: connections are refused.
    let port = free_port()?;
    let lanes = ["a", "b", "c"];
    let template: Value = serde_json::from_slice(&std::fs::read(
        root.join("fixtures/spec/request-review.json"),
    )?)?;
    const THREADS: u64 = 6;
    const PER_INBOX: u64 = 4;
    // Per (inbox, thread): the ids in order of creation; the first is what the rest answer.
    let mut created: std::collections::BTreeMap<(String, u64), Vec<String>> = Default::default();
    let total = size.outbound;
    let down_since = Instant::now();
    for n in 0..total {
        let lane = lanes[n as usize % lanes.len()];
        let thread = (n / lanes.len() as u64) % THREADS;
        let mut doc = template.clone();
        let id = format!("urn:uuid:00000000-0000-4000-8abc-{n:012x}");
        doc["id"] = json!(id);
        doc["target"]["inbox"] = json!(format!("http://127.0.0.1:{port}/inbox/{lane}"));
        let ids = created.entry((lane.to_owned(), thread)).or_default();
        if let Some(first) = ids.first() {
            doc["inReplyTo"] = json!(first);
        }
        let r = request(
            &addr,
            "POST",
            "/api/outbox",
            &[
                ("Authorization", &format!("Bearer {ADMIN}")),
                ("Content-Type", "application/json"),
            ],
            &serde_json::to_vec(&doc)?,
        )
        .await?;
        ensure!(
            r.status == 202,
            "the outbox answered {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        created
            .get_mut(&(lane.to_owned(), thread))
            .context("the thread was made above")?
            .push(id);
    }
    // Down long enough for every thread's head to fail a few times.
    let down = Duration::from_secs(3);
    tokio::time::sleep(down.saturating_sub(down_since.elapsed())).await;
    let (failed_while_down, tried) = outbound_attempts(&addr).await?;
    ensure!(
        failed_while_down > 0 && tried <= created.len(),
        "while the target was down, {tried} notifications were tried ({failed_while_down} attempts); only the {} threads' heads should be",
        created.len()
    );

    // Back: (lane, id, status, arrival) of every delivery the target saw. It answers each
    // after `HOLD`, so a window of `HOLD` holds no more arrivals per inbox than the
    // deliveries that were in hand at once.
    const HOLD: Duration = Duration::from_millis(50);
    type Seen = Arc<Mutex<Vec<(String, String, u16, Instant)>>>;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    slow_sink(
        listener,
        Arc::new(move |head, body| {
            let lane = head
                .split(' ')
                .nth(1)
                .and_then(|p| p.strip_prefix("/inbox/"))
                .unwrap_or("?")
                .to_owned();
            let id = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|d| d["id"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
            let first_on_lane = !log.iter().any(|(l, ..)| *l == lane);
            let status = if first_on_lane { 503 } else { 201 };
            log.push((lane, id, status, Instant::now()));
            if status == 503 {
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
                    .to_vec()
            } else {
                b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".to_vec()
            }
        }),
        HOLD,
    );
    let back = Instant::now();
    let deadline = back + Duration::from_secs(120);
    loop {
        let accepted = seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, _, s, _)| *s == 201)
            .count() as u64;
        if accepted >= total {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "only {accepted} of {total} delivered 120 s after the target came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = back.elapsed();
    // Let anything that would be sent twice arrive, then check.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for ((lane, thread), ids) in &created {
        let accepted: Vec<&String> = seen
            .iter()
            .filter(|(l, id, s, _)| l == lane && *s == 201 && ids.contains(id))
            .map(|(_, id, ..)| id)
            .collect();
        ensure!(
            accepted.len() == ids.len() && accepted.iter().zip(ids).all(|(a, b)| *a == b),
            "inbox {lane}, thread {thread}: delivered {} of {}, or out of order: first differences {:?}",
            accepted.len(),
            ids.len(),
            accepted
                .iter()
                .zip(ids)
                .filter(|(a, b)| **a != *b)
                .take(3)
                .collect::<Vec<_>>()
        );
    }
    let mut most = 0;
    for lane in lanes {
        let arrivals: Vec<Instant> = seen
            .iter()
            .filter(|(l, ..)| l == lane)
            .map(|(.., at)| *at)
            .collect();
        for (i, at) in arrivals.iter().enumerate() {
            let together = arrivals[..=i]
                .iter()
                .filter(|a| *at - **a < HOLD * 9 / 10)
                .count() as u64;
            most = most.max(together);
        }
    }
    ensure!(
        most <= PER_INBOX,
        "{most} deliveries to one inbox were in hand at once; at most {PER_INBOX} may be"
    );
    let stats = admin_get(&addr, "/api/stats").await?;
    ensure!(
        stats["by_state"]["processed"].as_u64() == Some(total),
        "not every notification is marked processed: {stats}"
    );
    drop(proc);
    Ok(format!(
        "{total} notifications to {} inboxes in {} threads; while down, {failed_while_down} attempts on {tried} \
         (the threads' heads); after a 503 per inbox, at most {most} at once per inbox, all delivered in order within each thread, none twice, \
         {drained:.1?} after the target came back",
        lanes.len(),
        created.len()
    ))
}
