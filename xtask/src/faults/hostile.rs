//! Hostile input: the manifest's cases, at once and one by one, endless bodies, idle
//! connections; every one a 4xx, `/healthz` 200, memory bounded.

use super::*;

/// The bytes of a manifest case.
fn case_body(dir: &Path, case: &Value) -> Result<Vec<u8>> {
    if let Some(file) = case["file"].as_str() {
        return Ok(std::fs::read(dir.join(file))?);
    }
    let g = &case["generate"];
    let times = usize::try_from(g["times"].as_u64().context("times")?)?;
    let item = g["item"].as_str().context("item")?;
    let mut out = String::with_capacity(item.len() * times + 256);
    out.push_str(g["prefix"].as_str().unwrap_or(""));
    for _ in 0..times {
        out.push_str(item);
    }
    out.push_str(g["suffix"].as_str().unwrap_or(""));
    if let Some(close) = g["close"].as_str() {
        for _ in 0..times {
            out.push_str(close);
        }
    }
    Ok(out.into_bytes())
}

/// The `concurrent` cases, 64 at a time (cycled), while `/healthz` is asked every 100 ms:
/// each gets a 4xx within a few seconds, `/healthz` answers 200 every time, and resident
/// memory stays under 256 MB. Returns (requests, slowest answer, slowest health check,
/// peak resident MiB during the phase).
async fn hostile_at_once(
    addr: &str,
    pid: u32,
    bodies: Vec<(String, Option<String>, Vec<u8>)>,
) -> Result<(usize, Duration, Duration, f64)> {
    const AT_ONCE: usize = 64;
    ensure!(!bodies.is_empty(), "no concurrent cases in the manifest");
    let done = Arc::new(AtomicBool::new(false));
    let watch = {
        let (addr, done) = (addr.to_owned(), done.clone());
        tokio::spawn(async move {
            let (mut slowest, mut peak) = (Duration::ZERO, 0f64);
            while !done.load(Ordering::SeqCst) {
                let t = Instant::now();
                healthy(&addr)
                    .await
                    .context("/healthz during the hostile burst")?;
                slowest = slowest.max(t.elapsed());
                peak = peak.max(memory(pid).0);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok((slowest, peak))
        })
    };
    let bodies = Arc::new(bodies);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..AT_ONCE {
        let (addr, bodies) = (addr.to_owned(), bodies.clone());
        tasks.spawn(async move {
            let (name, ct, body) = &bodies[i % bodies.len()];
            let mut headers = Vec::new();
            if let Some(ct) = ct {
                headers.push(("Content-Type", ct.as_str()));
            }
            let t = Instant::now();
            let r = request(&addr, "POST", "/inbox", &headers, body)
                .await
                .with_context(|| format!("{name} (concurrent): no answer"))?;
            let took = t.elapsed();
            ensure!(
                (400..500).contains(&r.status),
                "{name} (concurrent): answered {}",
                r.status
            );
            ensure!(
                took < Duration::from_secs(10),
                "{name} (concurrent): answered after {took:.1?}"
            );
            anyhow::Ok(took)
        });
    }
    let mut slowest = Duration::ZERO;
    while let Some(r) = tasks.join_next().await {
        slowest = slowest.max(r??);
    }
    done.store(true, Ordering::SeqCst);
    let (health, peak) = watch.await??;
    ensure!(
        peak < 256.0,
        "resident memory reached {peak:.0} MiB under the hostile burst"
    );
    Ok((AT_ONCE, slowest, health, peak))
}

pub(super) async fn hostile_input(
    root: &Path,
    bin: &Path,
    work: &Path,
    size: Size,
) -> Result<String> {
    let dir = work.join("hostile");
    std::fs::create_dir_all(&dir)?;
    let database_url = format!("sqlite://{}/faults.db?mode=rwc", dir.display());
    let (proc, addr) = serve(
        bin,
        &dir,
        &database_url,
        &[("COAR_ACCEPT_UNRECOGNISED", "false")],
    )
    .await?;
    let pid = proc.0.id();
    let corpus = root.join("fixtures/hostile");
    let manifest: Value = serde_json::from_slice(&std::fs::read(corpus.join("manifest.json"))?)?;
    let cases = manifest["cases"].as_array().context("no cases")?;

    // A chunked body that never ends, sent alongside the rest.
    let slow = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut stream = TcpStream::connect(&addr).await?;
            let head = format!(
                "POST /inbox HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/ld+json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            // The answer (408) or the connection's end, whichever comes first.
            let mut raw = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(60), async {
                let mut chunk = [0u8; 1024];
                loop {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => raw.extend_from_slice(&chunk[..n]),
                    }
                    if raw.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            })
            .await;
            ensure!(
                read.is_ok(),
                "a never-ending body was not cut off within 60 s"
            );
            let status = parse_response(&raw).map(|r| r.status).unwrap_or(0);
            ensure!(
                status == 0 || (400..500).contains(&status),
                "a never-ending body got {status}"
            );
            anyhow::Ok(started.elapsed())
        })
    };

    let mut refused = 0;
    let mut concurrent = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let body = case_body(&corpus, case)?;
        if case["concurrent"].as_bool() == Some(true) {
            let ct = case["content_type"].as_str().map(str::to_owned);
            concurrent.push((name.to_owned(), ct, body.clone()));
        }
        let mut headers = Vec::new();
        if let Some(ct) = case["content_type"].as_str() {
            headers.push(("Content-Type", ct));
        }
        let r = request(&addr, "POST", "/inbox", &headers, &body)
            .await
            .with_context(|| format!("{name}: no answer"))?;
        ensure!(
            (400..500).contains(&r.status),
            "{name}: answered {} ({})",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        ensure!(
            header(&r.head, "content-type") == Some("application/problem+json"),
            "{name}: a {} without problem details",
            r.status
        );
        healthy(&addr)
            .await
            .with_context(|| format!("after {name}"))?;
        refused += 1;
    }

    let (burst, burst_slowest, burst_health, burst_peak) =
        hostile_at_once(&addr, pid, concurrent).await?;

    // Thousands of idle connections: the server still answers.
    let mut idle = Vec::with_capacity(size.idle_connections);
    for i in 0..size.idle_connections {
        let mut s = TcpStream::connect(&addr)
            .await
            .with_context(|| format!("idle connection {i}"))?;
        if i % 2 == 0 {
            // Half of them start a request and stop.
            s.write_all(b"POST /inbox HTTP/1.1\r\nHost: x\r\n").await?;
        }
        idle.push(s);
    }
    let t = Instant::now();
    healthy(&addr).await.context("with idle connections open")?;
    let health_ms = t.elapsed().as_secs_f64() * 1000.0;
    let (rss, peak) = memory(pid);
    drop(idle);
    let slow_cut = slow.await??;
    healthy(&addr).await?;
    ensure!(peak < 512.0, "peak memory {peak:.0} MiB");
    drop(proc);
    Ok(format!(
        "{refused} cases refused with problem details; {burst} hostile bodies at once, all refused \
         within {:.1} s, /healthz at most {:.0} ms meanwhile, resident at most {burst_peak:.0} MiB; \
         a never-ending body cut off after {:.1} s; \
         /healthz in {health_ms:.1} ms with {} idle connections open; memory {rss:.0} MiB, peak {peak:.0} MiB",
        burst_slowest.as_secs_f64(),
        burst_health.as_secs_f64() * 1000.0,
        slow_cut.as_secs_f64(),
        size.idle_connections
    ))
}
