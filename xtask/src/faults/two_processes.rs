//! Two processes on one PostgreSQL: every notification processed once, both taking part.

use super::*;

pub(super) async fn two_processes(
    root: &Path,
    bin: &Path,
    work: &Path,
    size: Size,
) -> Result<Option<String>> {
    let Some(database_url) = postgres_database()? else {
        return Ok(None);
    };
    let dir = work.join("two-processes");
    std::fs::create_dir_all(&dir)?;
    let (sink, counts) = counting_sink().await?;
    let config = webhook_config(&dir, &sink)?;
    let common = [
        ("COAR_WORKERS", "2"),
        ("COAR_ALLOW_PRIVATE_TARGETS", "true"),
        ("COAR_CONFIG", config.as_str()),
    ];
    let (web, addr) = serve(bin, &dir, &database_url, &common).await?;
    // The second process: workers only, on the same database.
    let mut worker = Command::new(bin);
    worker
        .args(["worker", "--config", &config])
        .current_dir(&dir)
        .env("COAR_DATABASE_URL", &database_url)
        .env("COAR_ALLOW_PRIVATE_TARGETS", "true")
        .env("COAR_WORKERS", "2")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log_file(&dir, "worker")?);
    let worker = Proc(worker.spawn().context("cannot start coar-notify worker")?);

    let template: Value = serde_json::from_slice(&std::fs::read(
        root.join("fixtures/spec/announce-review.json"),
    )?)?;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..size.connections {
        let (addr, next, template) = (addr.clone(), next.clone(), template.clone());
        let total = size.notifications;
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(&addr).await?;
            let mut buf = Vec::new();
            let mut ids = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return anyhow::Ok(ids);
                }
                let body = notification(&template, 0xfff, n);
                let mut req = format!(
                    "POST /inbox HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/ld+json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                req.extend_from_slice(&body);
                let status = roundtrip(&mut stream, &mut buf, &req).await?;
                ensure!(status == 201, "the inbox answered {status}");
                let doc: Value = serde_json::from_slice(&body)?;
                ids.push(doc["id"].as_str().unwrap_or_default().to_owned());
            }
        }));
    }
    let mut posted = Vec::new();
    for t in tasks {
        posted.extend(t.await??);
    }
    // Every notification processed.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let stats = admin_get(&addr, "/api/stats").await?;
        let processed = stats["by_state"]["processed"].as_u64().unwrap_or(0);
        if processed >= size.notifications {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "only {processed} of {} processed in 300 s: {stats}",
            size.notifications
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Exactly once each, by both processes.
    let counts = counts.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    ensure!(twice.is_empty(), "handled more than once: {twice:?}");
    let missing = posted.iter().filter(|id| !counts.contains_key(*id)).count();
    ensure!(
        missing == 0,
        "{missing} notifications were never handled (the sink saw {} ids, e.g. {:?})",
        counts.len(),
        counts.keys().next()
    );
    let mut workers = std::collections::HashSet::new();
    for item in all_notifications(&addr).await?.iter().step_by(7) {
        let key = item["key"].as_i64().context("no key")?;
        let detail = admin_get(&addr, &format!("/api/notifications/{key}")).await?;
        for a in detail["attempts"].as_array().into_iter().flatten() {
            // worker-PID-N: the process is what matters.
            if let Some(w) = a["worker"].as_str() {
                workers.insert(w.rsplit_once('-').map_or(w, |(p, _)| p).to_owned());
            }
        }
    }
    ensure!(
        workers.len() >= 2,
        "only {workers:?} processed notifications"
    );
    drop(worker);
    drop(web);
    Ok(Some(format!(
        "{} notifications, each handled exactly once, by {} processes",
        posted.len(),
        workers.len()
    )))
}
