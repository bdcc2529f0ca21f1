//! An outbound target down, then back: every notification delivered, in order per inbox,
//! none twice.

use super::*;

/// The outbound target is down (connection refused), then up but overloaded (a 503 with
/// `Retry-After` to the first delivery on each lane), then well: every queued notification
/// is delivered, in order of creation per target inbox, and none is accepted twice.
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
    let mut created: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let total = size.outbound;
    let down_since = Instant::now();
    for n in 0..total {
        let lane = lanes[n as usize % lanes.len()];
        let mut doc = template.clone();
        let id = format!("urn:uuid:00000000-0000-4000-8abc-{n:012x}");
        doc["id"] = json!(id);
        doc["target"]["inbox"] = json!(format!("http://127.0.0.1:{port}/inbox/{lane}"));
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
        created.entry(lane.to_owned()).or_default().push(id);
    }
    // Down long enough for every lane's head to fail a few times.
    let down = Duration::from_secs(3);
    tokio::time::sleep(down.saturating_sub(down_since.elapsed())).await;
    let (failed_while_down, tried) = outbound_attempts(&addr).await?;
    ensure!(
        failed_while_down > 0 && tried <= lanes.len(),
        "while the target was down, {tried} notifications were tried ({failed_while_down} attempts); only each lane's head should be"
    );

    // Back: (lane, id, status) of every delivery the target saw.
    type Seen = Arc<Mutex<Vec<(String, String, u16)>>>;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    http_sink(
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
            let first_on_lane = !log.iter().any(|(l, _, _)| *l == lane);
            let status = if first_on_lane { 503 } else { 201 };
            log.push((lane, id, status));
            if status == 503 {
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
                    .to_vec()
            } else {
                b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".to_vec()
            }
        }),
    );
    let back = Instant::now();
    let deadline = back + Duration::from_secs(120);
    loop {
        let accepted = seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, _, s)| *s == 201)
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
    for (lane, ids) in &created {
        let accepted: Vec<&String> = seen
            .iter()
            .filter(|(l, _, s)| l == lane && *s == 201)
            .map(|(_, id, _)| id)
            .collect();
        ensure!(
            accepted.len() == ids.len() && accepted.iter().zip(ids).all(|(a, b)| *a == b),
            "lane {lane}: delivered {} of {}, or out of order: first differences {:?}",
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
    let stats = admin_get(&addr, "/api/stats").await?;
    ensure!(
        stats["by_state"]["processed"].as_u64() == Some(total),
        "not every notification is marked processed: {stats}"
    );
    drop(proc);
    Ok(format!(
        "{total} notifications on {} lanes; while down, {failed_while_down} attempts, all on the lanes' heads; \
         after a 503 per lane, all delivered in order of creation, none twice, {drained:.1?} after the target came back",
        lanes.len()
    ))
}
