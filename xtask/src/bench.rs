//! `cargo xtask bench`: measured speed and memory, in one run on this machine.
//!
//! Builds release binaries, then drives them with the load generator below (64 concurrent
//! keep-alive connections POSTing unique notifications for a fixed time):
//! - the ceiling: an axum endpoint that only parses JSON (examples/ceiling.rs);
//! - `coar-notify serve` on SQLite (and on PostgreSQL when `COAR_BENCH_POSTGRES_URL` is set);
//!   ingest throughput, latency percentiles, errors, the ratio to the ceiling, the time the
//!   workers take to drain the queue, start-up time, idle and peak memory;
//! - outbound: notifications delivered per second to a local sink inbox.
//!
//! Writes `target/bench/report.json` and prints a table.

use std::{
    net::TcpListener as StdListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const CONNECTIONS: usize = 64;
const ADMIN: &str = "bench-admin-token-0123456789";

/// Load-test results.
#[derive(Debug, Clone)]
struct Load {
    requests: u64,
    created: u64,
    errors: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
}

impl Load {
    fn rate(&self) -> f64 {
        self.created as f64 / self.seconds
    }

    fn json(&self) -> Value {
        json!({
            "requests": self.requests, "created": self.created, "errors": self.errors, "seconds": self.seconds,
            "per_second": self.rate(), "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "p999_ms": self.p999_ms,
        })
    }
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Resident memory (VmRSS) and its peak (VmHWM) of a process, in MiB.
pub(crate) fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

/// One HTTP/1.1 request on a keep-alive connection; returns the status.
pub(crate) async fn roundtrip(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    request: &[u8],
) -> Result<u16> {
    stream.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

/// POSTs unique notifications from `CONNECTIONS` connections for `duration`.
async fn load(addr: &str, template: &str, duration: Duration) -> Result<Load> {
    let counter = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let (addr, template, counter, stop) = (
            addr.to_owned(),
            template.to_owned(),
            counter.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut created, mut errors) = (0u64, 0u64);
            let mut stream = TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let mut buf = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let body = template.replace("BENCH-ID", &format!("{c:04x}{n:08x}"));
                let request = format!(
                    "POST /inbox HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/ld+json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let t = Instant::now();
                match roundtrip(&mut stream, &mut buf, request.as_bytes()).await {
                    Ok(201) => created += 1,
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        stream = TcpStream::connect(&addr).await?;
                    }
                }
                latencies.push(t.elapsed());
            }
            anyhow::Ok((latencies, created, errors))
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let (mut created, mut errors) = (0, 0);
    for t in tasks {
        let (l, c, e) = t.await??;
        all.extend(l);
        created += c;
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(Load {
        requests: all.len() as u64,
        created,
        errors,
        seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        p999_ms: pct(0.999),
    })
}

pub(crate) async fn wait_ready(addr: &str, deadline: Duration) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > deadline {
            bail!("{addr} did not start");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn get_json(addr: &str, path: &str) -> Result<Value> {
    let mut stream = TcpStream::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok(serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn post_json(addr: &str, path: &str, body: &str) -> Result<u16> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut buf = Vec::new();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    roundtrip(&mut stream, &mut buf, req.as_bytes()).await
}

fn count(stats: &Value, group: &str, key: &str) -> u64 {
    stats[group][key].as_u64().unwrap_or(0)
}

struct ServerRun {
    json: Value,
    load: Load,
}

async fn run_server(
    root: &Path,
    bin: &Path,
    database_url: &str,
    label: &str,
    duration: Duration,
    template: &str,
    sink: &str,
) -> Result<ServerRun> {
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let dir = root.join("target/bench").join(label);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let launched = Instant::now();
    let child = Command::new(bin)
        .arg("serve")
        .current_dir(&dir)
        .env("COAR_BIND", &addr)
        .env("COAR_DATABASE_URL", database_url)
        .env("COAR_TRUST", "accept")
        .env("COAR_ADMIN_TOKEN", ADMIN)
        .env("COAR_ALLOW_PRIVATE_TARGETS", "true")
        // The load comes from one address, as fast as the server takes it.
        .env("COAR_RATE_LIMIT", "off")
        .env("COAR_SERVICE_RATE_LIMIT", "off")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let proc = Proc(child);
    let pid = proc.0.id();
    let startup = wait_ready(&addr, Duration::from_secs(60)).await?;
    let _ = launched;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle_mb, _) = memory(pid);
    let load = load(&addr, template, duration).await?;
    let after_load = Instant::now();
    if std::env::var("COAR_WORKERS").is_ok_and(|w| w.trim() == "0") {
        // Ingest alone (no workers): nothing drains, nothing is delivered.
        let (_, peak_mb) = memory(pid);
        let json = json!({"database": label, "ingest": load.json(), "workers": 0, "startup_ms": startup.as_secs_f64() * 1000.0, "memory_mb": {"idle": idle_mb, "peak": peak_mb}});
        return Ok(ServerRun { json, load });
    }
    // Drain: the workers process what was queued.
    let drain = loop {
        let stats = get_json(&addr, "/api/stats").await?;
        let pending = count(&stats, "by_state", "queued")
            + count(&stats, "by_state", "processing")
            + count(&stats, "by_state", "retry_scheduled");
        if pending == 0 {
            break after_load.elapsed();
        }
        if after_load.elapsed() > Duration::from_secs(600) {
            bail!("the queue did not drain");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Outbound: deliveries to the sink.
    let outbound_n = 2000u64;
    let started = Instant::now();
    for i in 0..outbound_n {
        let body = json!({
            "pattern": "request-review",
            "id": format!("urn:uuid:00000000-0000-4000-9000-{i:012}"),
            "target": {"id": "https://sink.example/", "inbox": sink, "type": "Service"},
            "object": {"id": "https://repo.example/item/1/", "type": ["Page", "sorg:AboutPage"], "ietf:cite-as": "https://doi.org/10.5555/1",
                       "ietf:item": {"id": "https://repo.example/item/1/a.pdf", "mediaType": "application/pdf", "type": ["Article", "sorg:ScholarlyArticle"]}},
        });
        let status = post_json(&addr, "/api/outbox", &body.to_string()).await?;
        if status != 202 {
            bail!("outbox answered {status}");
        }
    }
    let queued_in = started.elapsed();
    loop {
        let stats = get_json(&addr, "/api/stats").await?;
        if count(&stats, "by_direction", "outbound") >= outbound_n
            && count(&stats, "by_state", "queued")
                + count(&stats, "by_state", "processing")
                + count(&stats, "by_state", "retry_scheduled")
                == 0
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("outbound did not finish");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let outbound_secs = started.elapsed().as_secs_f64();
    let (rss_mb, peak_mb) = memory(pid);
    drop(proc);
    let json = json!({
        "database": label,
        "ingest": load.json(),
        "drain_seconds": drain.as_secs_f64(),
        "processing_per_second": load.created as f64 / (load.seconds + drain.as_secs_f64()),
        "outbound": {"notifications": outbound_n, "seconds": outbound_secs, "per_second": outbound_n as f64 / outbound_secs, "queued_seconds": queued_in.as_secs_f64()},
        "startup_ms": startup.as_secs_f64() * 1000.0,
        "memory_mb": {"idle": idle_mb, "peak": peak_mb, "end": rss_mb},
    });
    Ok(ServerRun { json, load })
}

/// The benchmark.
pub fn bench(root: &Path, seconds: u64) -> Result<()> {
    println!("$ cargo build --release -p coar-server --bin coar-notify --example ceiling");
    let status = Command::new("cargo")
        .args([
            "build",
            "--release",
            "-p",
            "coar-server",
            "--bin",
            "coar-notify",
            "--example",
            "ceiling",
        ])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("release build failed");
    }
    let release = root.join("target/release");
    let bin = release.join("coar-notify");
    let ceiling_bin: PathBuf = release.join("examples/ceiling");
    let template = std::fs::read_to_string(root.join("fixtures/spec/request-review.json"))?
        .replace(
            "urn:uuid:0370c0fb-bb78-4a9b-87f5-bed307a509dd",
            "urn:uuid:00000000-0000-4000-8000-BENCH-ID",
        );
    let duration = Duration::from_secs(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // The ceiling, which is also the sink of the outbound measurement.
        let port = free_port()?;
        let ceiling_addr = format!("127.0.0.1:{port}");
        let _ceiling = Proc(Command::new(&ceiling_bin).arg(&ceiling_addr).stdout(Stdio::null()).spawn()?);
        wait_ready(&ceiling_addr, Duration::from_secs(30)).await?;
        let ceiling = load(&ceiling_addr, &template, duration).await?;
        let sink = format!("http://{ceiling_addr}/inbox");

        let mut runs = Vec::new();
        let sqlite = run_server(root, &bin, "sqlite://coar-notify.db", "sqlite", duration, &template, &sink).await?;
        runs.push(sqlite);
        if let Ok(url) = std::env::var("COAR_BENCH_POSTGRES_URL") {
            runs.push(run_server(root, &bin, &url, "postgres", duration, &template, &sink).await?);
        }
        let report = json!({
            "machine": {"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
            "connections": CONNECTIONS,
            "seconds": seconds,
            "ceiling": ceiling.json(),
            "runs": runs.iter().map(|r| {
                let mut j = r.json.clone();
                j["ratio_to_ceiling"] = json!(r.load.rate() / ceiling.rate());
                j
            }).collect::<Vec<_>>(),
        });
        let out = root.join("target/bench/report.json");
        std::fs::create_dir_all(out.parent().unwrap_or(root))?;
        std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
        println!("\n{:<28} {:>12} {:>9} {:>9} {:>9} {:>7}", "", "201/s", "p50 ms", "p99 ms", "p99.9 ms", "errors");
        println!("{:<28} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>7}", "ceiling (parse JSON, 201)", ceiling.rate(), ceiling.p50_ms, ceiling.p99_ms, ceiling.p999_ms, ceiling.errors);
        for r in &runs {
            let j = &r.json;
            println!(
                "{:<28} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>7}",
                format!("coar-notify ({})", j["database"].as_str().unwrap_or("")),
                r.load.rate(),
                r.load.p50_ms,
                r.load.p99_ms,
                r.load.p999_ms,
                r.load.errors
            );
            println!(
                "  ratio to ceiling {:.3}; drain {:.2} s; processing {:.0}/s; outbound {:.0}/s; start-up {:.0} ms; memory idle {:.1} MiB, peak {:.1} MiB",
                r.load.rate() / ceiling.rate(),
                j["drain_seconds"].as_f64().unwrap_or(0.0),
                j["processing_per_second"].as_f64().unwrap_or(0.0),
                j["outbound"]["per_second"].as_f64().unwrap_or(0.0),
                j["startup_ms"].as_f64().unwrap_or(0.0),
                j["memory_mb"]["idle"].as_f64().unwrap_or(0.0),
                j["memory_mb"]["peak"].as_f64().unwrap_or(0.0),
            );
        }
        println!("\nwritten to {}", out.display());
        anyhow::Ok(())
    })
}
