//! `cargo xtask faults`: the server under faults, as a user's deployment would meet them.
//!
//! - **kill -9 during ingest**: a load of unique notifications; the server is killed with
//!   SIGKILL at a random moment, restarted on the same database; every notification that was
//!   answered 201 must be there, byte for byte, and everything stored must be whole. Several
//!   rounds on one database.
//! - **hostile input** (`fixtures/hostile/manifest.json`): each case gets a 4xx and
//!   `/healthz` stays 200; a chunked body that never ends is cut off by the request timeout;
//!   thousands of idle connections do not stop the server from answering; memory stays
//!   bounded.
//! - **outbound target down, then back**: notifications queued to three inboxes of a target
//!   whose port is closed, which then answers 503 once per inbox, then 201: every one is
//!   delivered, in order of creation per inbox, none twice; while it is down only each
//!   inbox's oldest notification is tried.
//! - **peers that lie**: a target that answers `503` with `Retry-After: 10000000000000`
//!   (the worker goes on, the next delivery is made, the retry is at most a day away); a
//!   notification that claims a real service's origin from outside its range, followed by
//!   the service's registration with that range (it stays quarantined); a webhook that is
//!   down (the notification goes dead after its retries, and its sender hears nothing).
//! - **two processes on one PostgreSQL** (`coar-notify serve` and `coar-notify worker`):
//!   under load, every notification is processed, and its handler (a webhook to a counting
//!   sink) runs exactly once; both processes take part.
//!
//! `--large` runs more rounds and more connections. The debug binary is used: correctness
//! under faults does not need release speed, and CI has built it already.

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::bench::{Proc, free_port, memory, roundtrip, wait_ready};

const ADMIN: &str = "faults-admin-token-0123456789";

/// How hard to push.
#[derive(Debug, Clone, Copy)]
struct Size {
    kill_rounds: u32,
    connections: usize,
    idle_connections: usize,
    notifications: u64,
    outbound: u64,
}

/// The fault suite; the number of scenarios that passed (it stops at the first failure).
pub fn faults(root: &Path, large: bool) -> Result<u64> {
    let size = if large {
        Size {
            kill_rounds: 10,
            connections: 32,
            idle_connections: 5000,
            notifications: 3000,
            outbound: 600,
        }
    } else {
        Size {
            kill_rounds: 3,
            connections: 16,
            idle_connections: 1000,
            notifications: 400,
            outbound: 60,
        }
    };
    // `COAR_FAULTS_BIN` runs the suite against another build (an older release, to check
    // that a new scenario fails there); `COAR_FAULTS_ONLY` runs the scenarios whose names
    // contain it (kill, hostile, outbound, peers, postgres).
    let bin = match std::env::var_os("COAR_FAULTS_BIN") {
        Some(b) => std::path::PathBuf::from(b),
        None => {
            println!("$ cargo build -p coar-server --bin coar-notify");
            let status = Command::new("cargo")
                .args(["build", "-p", "coar-server", "--bin", "coar-notify"])
                .current_dir(root)
                .status()?;
            ensure!(status.success(), "cargo build failed");
            root.join("target/debug/coar-notify")
        }
    };
    let only = std::env::var("COAR_FAULTS_ONLY").unwrap_or_default();
    let runs = |name: &str| name.contains(only.as_str());
    let work = root.join("target/faults");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let started = Instant::now();
        let mut passed = 0;
        if runs("kill") {
            let killed = kill_during_ingest(root, &bin, &work, size).await?;
            println!("faults: kill -9 during ingest: {killed}");
            passed += 1;
        }
        if runs("hostile") {
            let hostile = hostile_input(root, &bin, &work, size).await?;
            println!("faults: hostile input: {hostile}");
            passed += 1;
        }
        if runs("outbound") {
            let outbound = target_down_then_back(root, &bin, &work, size).await?;
            println!("faults: outbound target down, then back: {outbound}");
            passed += 1;
        }
        if runs("peers") {
            let lying = peers_that_lie(root, &bin, &work).await?;
            println!("faults: peers that lie: {lying}");
            passed += 1;
        }
        if runs("postgres") {
            match two_processes(root, &bin, &work, size).await? {
                Some(report) => {
                    println!("faults: two processes on PostgreSQL: {report}");
                    passed += 1;
                }
                None => println!("faults: two processes on PostgreSQL: SKIPPED (no PostgreSQL)"),
            }
        }
        println!("xtask faults: all passed in {:.0?}", started.elapsed());
        Ok(passed)
    })
}

/// A `coar-notify serve` on `database_url` with `env` on top of the defaults.
async fn serve(
    bin: &Path,
    dir: &Path,
    database_url: &str,
    env: &[(&str, &str)],
) -> Result<(Proc, String)> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    let mut command = Command::new(bin);
    command.arg("serve");
    // `COAR_CONFIG` here stands for the global `--config` flag.
    if let Some((_, file)) = env.iter().find(|(k, _)| *k == "COAR_CONFIG") {
        command.args(["--config", file]);
    }
    command
        .current_dir(dir)
        .env("COAR_BIND", &addr)
        .env("COAR_DATABASE_URL", database_url)
        .env("COAR_TRUST", "accept")
        .env("COAR_ADMIN_TOKEN", ADMIN)
        // One address sends everything here, much faster than a real sender would.
        .env("COAR_RATE_LIMIT", "off")
        .env("COAR_SERVICE_RATE_LIMIT", "off")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log_file(dir, "serve")?);
    for (k, v) in env.iter().filter(|(k, _)| *k != "COAR_CONFIG") {
        command.env(k, v);
    }
    let proc = Proc(command.spawn().context("cannot start coar-notify")?);
    wait_ready(&addr, Duration::from_secs(60)).await?;
    Ok((proc, addr))
}

/// The server's log, kept in its directory for when a scenario fails.
fn log_file(dir: &Path, name: &str) -> Result<Stdio> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))?;
    Ok(Stdio::from(file))
}

/// A response: status, lower-cased head, body.
struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// One request on a fresh connection.
async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    // The server may answer (413, 415) and close before reading all of a large body.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no response")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    Ok(Response {
        status,
        head,
        body: raw[end + 4..].to_vec(),
    })
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

async fn healthy(addr: &str) -> Result<()> {
    let r = request(addr, "GET", "/healthz", &[], b"").await?;
    ensure!(r.status == 200, "/healthz answered {}", r.status);
    Ok(())
}

/// A GET of the admin API, as JSON.
async fn admin_get(addr: &str, path: &str) -> Result<Value> {
    let r = request(
        addr,
        "GET",
        path,
        &[("Authorization", &format!("Bearer {ADMIN}"))],
        b"",
    )
    .await?;
    ensure!(r.status == 200, "GET {path} answered {}", r.status);
    Ok(serde_json::from_slice(&r.body)?)
}

/// The spec's Request Review with id `urn:uuid:…{n}`.
fn notification(template: &Value, round: u32, n: u64) -> Vec<u8> {
    let mut doc = template.clone();
    doc["id"] = json!(format!("urn:uuid:00000000-0000-4000-8{round:03x}-{n:012x}"));
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// Notifications answered 201: their key and the bytes posted.
type Acknowledged = Vec<(i64, Vec<u8>)>;

/// Counts of deliveries by notification id.
type Counts = Arc<Mutex<std::collections::HashMap<String, u32>>>;

/// A cheap pseudo-random number from the clock, for the moment of the kill.
fn jitter(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(nanos) % max.max(1)
}

async fn kill_during_ingest(root: &Path, bin: &Path, work: &Path, size: Size) -> Result<String> {
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

/// Every stored notification's summary, through the admin API's pages.
async fn all_notifications(addr: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(a) => format!("/api/notifications?limit=1000&after={a}"),
            None => "/api/notifications?limit=1000".to_owned(),
        };
        let page = admin_get(addr, &path).await?;
        out.extend(
            page["items"]
                .as_array()
                .context("no items")?
                .iter()
                .cloned(),
        );
        after = page["next"]
            .as_str()
            .and_then(|n| n.rsplit("after=").next())
            .and_then(|a| a.parse().ok());
        if after.is_none() {
            return Ok(out);
        }
    }
}

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

async fn hostile_input(root: &Path, bin: &Path, work: &Path, size: Size) -> Result<String> {
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

/// An admin POST of JSON.
async fn post_json(addr: &str, path: &str, doc: &Value) -> Result<Response> {
    request(
        addr,
        "POST",
        path,
        &[
            ("Authorization", &format!("Bearer {ADMIN}")),
            ("Content-Type", "application/json"),
        ],
        &serde_json::to_vec(doc)?,
    )
    .await
}

/// Waits up to 60 s for `check` to give a value.
async fn within_a_minute<T>(
    what: &str,
    mut check: impl AsyncFnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        ensure!(Instant::now() < deadline, "{what}: not within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn peers_that_lie(root: &Path, bin: &Path, work: &Path) -> Result<String> {
    let dir = work.join("lying-peers");
    std::fs::create_dir_all(&dir)?;
    // The sender's own inbox: it must hear nothing about our webhook.
    type Heard = Arc<Mutex<Vec<Value>>>;
    let heard: Heard = Arc::default();
    let log = heard.clone();
    let sender = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sender_inbox = format!("http://{}/inbox", sender.local_addr()?);
    http_sink(
        sender,
        Arc::new(move |_, body| {
            if let Ok(v) = serde_json::from_slice(body) {
                log.lock().unwrap_or_else(|e| e.into_inner()).push(v);
            }
            b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".to_vec()
        }),
    );
    // A target that asks to be left alone for 300 000 years, and one that accepts.
    let absurd = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let absurd_inbox = format!("http://{}/inbox", absurd.local_addr()?);
    http_sink(
        absurd,
        Arc::new(|_, _| {
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 10000000000000\r\nContent-Length: 0\r\n\r\n"
                .to_vec()
        }),
    );
    let (fine, fine_counts) = counting_sink().await?;
    let fine_inbox = format!("http://{fine}/inbox");
    // A webhook whose port is closed.
    let config = dir.join("coar-notify.toml");
    std::fs::write(
        &config,
        format!(
            "[[pipeline]]\npatterns = [\"*\"]\nhandler = \"webhook\"\nurl = \"http://127.0.0.1:{}/hook\"\n",
            free_port()?
        ),
    )?;
    let database_url = format!("sqlite://{}?mode=rwc", dir.join("coar.db").display());
    let config_path = config.display().to_string();
    let (proc, addr) = serve(
        bin,
        &dir,
        &database_url,
        &[
            ("COAR_CONFIG", config_path.as_str()),
            ("COAR_TRUST", "quarantine"),
            ("COAR_WORKERS", "2"),
            ("COAR_ALLOW_PRIVATE_TARGETS", "true"),
            ("COAR_RETRY_BASE", "100ms"),
            ("COAR_MAX_ATTEMPTS", "3"),
            ("COAR_SEND_TIMEOUT", "5s"),
        ],
    )
    .await?;
    let template: Value = serde_json::from_slice(&std::fs::read(
        root.join("fixtures/spec/request-review.json"),
    )?)?;

    // 1. The absurd Retry-After, then a delivery elsewhere.
    let mut keys = Vec::new();
    for (n, inbox) in [&absurd_inbox, &fine_inbox].into_iter().enumerate() {
        let mut doc = template.clone();
        doc["id"] = json!(format!("urn:uuid:00000000-0000-4000-8def-{n:012x}"));
        doc["target"]["inbox"] = json!(inbox);
        let r = post_json(&addr, "/api/outbox", &doc).await?;
        ensure!(r.status == 202, "the outbox answered {}", r.status);
        let v: Value = serde_json::from_slice(&r.body)?;
        keys.push(v["key"].as_i64().context("no key")?);
    }
    within_a_minute("the delivery after the absurd Retry-After", async || {
        Ok((fine_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum::<u32>()
            > 0)
        .then_some(()))
    })
    .await?;
    let held = admin_get(&addr, &format!("/api/notifications/{}", keys[0])).await?;
    let next = held["record"]["next_attempt_at"]
        .as_str()
        .or(held["next_attempt_at"].as_str())
        .unwrap_or_default()
        .to_owned();
    ensure!(
        held.to_string().contains("retry_scheduled"),
        "the target that said 10000000000000 s is not retried later: {held}"
    );
    healthy(&addr)
        .await
        .context("after the absurd Retry-After")?;

    // 2. A forged origin, then the real service registered with its range.
    let mut forged = template.clone();
    forged["id"] = json!("urn:uuid:00000000-0000-4000-8def-0000000000f0");
    let origin = forged["origin"]["id"]
        .as_str()
        .context("origin")?
        .to_owned();
    let r = request(
        &addr,
        "POST",
        "/inbox",
        &[("Content-Type", "application/ld+json")],
        &serde_json::to_vec(&forged)?,
    )
    .await?;
    ensure!(r.status == 201, "the forged notification got {}", r.status);
    let real = json!({"name": "Real", "id": origin, "cidrs": ["192.0.2.0/24"]});
    let r = post_json(&addr, "/api/services", &real).await?;
    ensure!(r.status == 201, "registering answered {}", r.status);
    let registered: Value = serde_json::from_slice(&r.body)?;
    ensure!(
        registered["quarantine"] == json!({"released": 0, "kept": 1}),
        "registering with a range released what came from outside it: {registered}"
    );

    // 3. A registered sender (any address) whose notification meets a webhook that is down.
    let sender_id = "https://sender.example/";
    let r = post_json(
        &addr,
        "/api/services",
        &json!({"name": "Sender", "id": sender_id}),
    )
    .await?;
    ensure!(
        r.status == 201,
        "registering the sender answered {}",
        r.status
    );
    let mut doc = template.clone();
    doc["id"] = json!("urn:uuid:00000000-0000-4000-8def-0000000000f1");
    doc["origin"] = json!({"id": sender_id, "inbox": sender_inbox, "type": "Service"});
    let r = request(
        &addr,
        "POST",
        "/inbox",
        &[("Content-Type", "application/ld+json")],
        &serde_json::to_vec(&doc)?,
    )
    .await?;
    ensure!(
        r.status == 201,
        "the sender's notification got {}",
        r.status
    );
    within_a_minute("the notification to go dead on the webhook", async || {
        let dead = admin_get(&addr, "/api/notifications?direction=inbound&state=dead").await?;
        Ok((dead["items"].as_array().is_some_and(|i| !i.is_empty())).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let told = heard.lock().unwrap_or_else(|e| e.into_inner()).len();
    ensure!(
        told == 0,
        "the sender was told about our webhook: {told} message(s)"
    );
    healthy(&addr).await?;
    drop(proc);
    Ok(format!(
        "a Retry-After of 10000000000000 s held one delivery (next attempt {next}) and not the next; \
         a forged origin stayed quarantined when the real service was registered with its range; \
         a notification dead on a down webhook, its sender told nothing"
    ))
}

/// A fresh PostgreSQL database for the suite (`COAR_TEST_POSTGRES_URL`, else the local
/// server), made with `psql`; `None` when there is none and `CI` is not set.
fn postgres_database() -> Result<Option<String>> {
    let admin = std::env::var("COAR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| crate::DEFAULT_POSTGRES_URL.to_owned());
    let name = "coar_notify_faults";
    let made = Command::new("psql")
        .arg(&admin)
        .args([
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match made {
        Ok(out) if out.status.success() => {
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            Ok(Some(format!("{base}/{name}")))
        }
        other => {
            let why = match other {
                Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                Err(e) => e.to_string(),
            };
            ensure!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is required in CI: {why}"
            );
            Ok(None)
        }
    }
}

/// What a sink answers to one request (lower-cased head, body): the whole raw response.
type Respond = Arc<dyn Fn(&str, &[u8]) -> Vec<u8> + Send + Sync>;

/// A keep-alive HTTP/1.1 server on `listener` that answers every request with `respond`.
fn http_sink(listener: tokio::net::TcpListener, respond: Respond) {
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let respond = respond.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    // One request: head, then Content-Length bytes.
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length: usize = header(&head, "content-length")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let response = respond(&head, &buf[end..end + length]);
                    buf.drain(..end + length);
                    if stream.write_all(&response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// An HTTP sink that answers 204 and counts POSTs by the notification id in their body (a
/// webhook event's `id`, or a delivered notification's own).
async fn counting_sink() -> Result<(String, Counts)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let counts: Counts = Arc::default();
    let seen = counts.clone();
    http_sink(
        listener,
        Arc::new(move |_head, body| {
            let id = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_owned))
                .unwrap_or_default();
            *seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(id)
                .or_default() += 1;
            b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n".to_vec()
        }),
    );
    Ok((addr, counts))
}

/// The outbound target is down (connection refused), then up but overloaded (a 503 with
/// `Retry-After` to the first delivery on each lane), then well: every queued notification
/// is delivered, in order of creation per target inbox, and none is accepted twice.
async fn target_down_then_back(root: &Path, bin: &Path, work: &Path, size: Size) -> Result<String> {
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

/// How many delivery attempts the outbox has made so far, and on how many notifications.
async fn outbound_attempts(addr: &str) -> Result<(u64, usize)> {
    let (mut attempts, mut tried) = (0, 0);
    for item in all_notifications(addr).await? {
        let key = item["key"].as_i64().context("no key")?;
        let detail = admin_get(addr, &format!("/api/notifications/{key}")).await?;
        let n = detail["attempts"].as_array().map_or(0, Vec::len);
        attempts += n as u64;
        tried += usize::from(n > 0);
    }
    Ok((attempts, tried))
}

async fn two_processes(root: &Path, bin: &Path, work: &Path, size: Size) -> Result<Option<String>> {
    let Some(database_url) = postgres_database()? else {
        return Ok(None);
    };
    let dir = work.join("two-processes");
    std::fs::create_dir_all(&dir)?;
    let (sink, counts) = counting_sink().await?;
    let config = dir.join("coar-notify.toml");
    std::fs::write(
        &config,
        format!(
            "[[pipeline]]\npatterns = [\"*\"]\nhandler = \"webhook\"\nurl = \"http://{sink}/hook\"\n"
        ),
    )?;
    let config = config.display().to_string();
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
