//! kill -9 during ingest: every notification answered 201 is there after a restart, byte
//! for byte.

use super::*;

pub(super) async fn kill_during_ingest(
    root: &Path,
    bin: &Path,
    work: &Path,
    size: Size,
) -> Result<String> {
    let dir = work.join("kill");
    std::fs::create_dir_all(&dir)?;
    let database_url = format!("sqlite://{}/faults.db?mode=rwc", dir.display());
    let template: Value = serde_json::from_slice(&std::fs::read(
        root.join("fixtures/spec/request-review.json"),
    )?)?;
    let acked: Arc<Mutex<Acknowledged>> = Arc::default();
    for round in 0..size.kill_rounds {
        let (proc, addr) = serve(bin, &dir, &database_url, &[("COAR_WORKERS", "1")]).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let counter = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..size.connections {
            let (addr, stop, counter, acked, template) = (
                addr.clone(),
                stop.clone(),
                counter.clone(),
                acked.clone(),
                template.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let Ok(mut stream) = TcpStream::connect(&addr).await else { return };
                let mut buf = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let body = notification(&template, round, n);
                    let mut req = format!(
                        "POST /inbox HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/ld+json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    req.extend_from_slice(&body);
                    match roundtrip(&mut stream, &mut buf, &req).await {
                        Ok(201) => {
                            let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                            let key = header(&head, "location")
                                .and_then(|l| l.rsplit('/').next())
                                .and_then(|k| k.parse::<i64>().ok());
                            if let Some(key) = key {
                                acked.lock().unwrap_or_else(|e| e.into_inner()).push((key, body));
                            }
                        }
                        Ok(_) => {}
                        Err(_) => return, // the server is gone
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(300 + jitter(700))).await;
        drop(proc); // SIGKILL, then reaped
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
    }
    // Restart and check what was promised.
    let (proc, addr) = serve(bin, &dir, &database_url, &[("COAR_WORKERS", "0")]).await?;
    let acked = std::mem::take(&mut *acked.lock().unwrap_or_else(|e| e.into_inner()));
    ensure!(
        !acked.is_empty(),
        "no notification was acknowledged before the kills"
    );
    let mut checked = 0;
    for (key, body) in &acked {
        let r = request(
            &addr,
            "GET",
            &format!("/inbox/{key}"),
            &[("Accept", "application/ld+json")],
            b"",
        )
        .await?;
        ensure!(
            r.status == 200,
            "notification {key} was answered 201 but is gone ({})",
            r.status
        );
        ensure!(
            &r.body == body,
            "notification {key} differs from what was posted"
        );
        checked += 1;
    }
    // Everything stored is whole: every listed notification reads back as a JSON object.
    let mut stored = 0;
    for item in all_notifications(&addr).await? {
        let key = item["key"].as_i64().context("no key")?;
        let r = request(&addr, "GET", &format!("/inbox/{key}"), &[], b"").await?;
        let doc: Value = serde_json::from_slice(&r.body)
            .with_context(|| format!("notification {key} is not whole"))?;
        ensure!(
            doc["id"] == item["id"],
            "notification {key} reads back with another id"
        );
        stored += 1;
    }
    ensure!(
        stored >= checked,
        "{stored} stored, fewer than the {checked} acknowledged"
    );
    drop(proc);
    Ok(format!(
        "{} rounds, {checked} acknowledged notifications all present and byte-identical, {stored} stored and whole",
        size.kill_rounds
    ))
}
