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
//!   delivered, in order of creation within its thread, none twice; while it is down at
//!   most four of each inbox are tried, each a thread's oldest.
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

mod hostile;
mod kill;
mod lie;
mod outbound;
mod two_processes;

use crate::bench::{Proc, free_port, memory, roundtrip, wait_ready};
use hostile::hostile_input;
use kill::kill_during_ingest;
use lie::peers_that_lie;
use outbound::target_down_then_back;
use two_processes::two_processes;

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
pub(crate) type Counts = Arc<Mutex<std::collections::HashMap<String, u32>>>;

/// A cheap pseudo-random number from the clock, for the moment of the kill.
fn jitter(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(nanos) % max.max(1)
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

/// A fresh PostgreSQL database for the suite (`COAR_TEST_POSTGRES_URL`, else the local
/// server), made with `psql`; `None` when there is none and `CI` is not set.
fn postgres_database() -> Result<Option<String>> {
    let admin = std::env::var("COAR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| crate::DEFAULT_POSTGRES_URL.to_owned());
    match fresh_postgres(&admin, "coar_notify_faults") {
        Ok(url) => Ok(Some(url)),
        Err(why) => {
            ensure!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is required in CI: {why}"
            );
            Ok(None)
        }
    }
}

/// A fresh, empty PostgreSQL database named `name` on `admin_url`'s server (through
/// `psql`), or why there is none.
pub(crate) fn fresh_postgres(admin_url: &str, name: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .arg(admin_url)
        .args([
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// Writes `dir/coar-notify.toml` with one pipeline step: every inbound notification to a
/// webhook at `sink`. Returns the file's path.
pub(crate) fn webhook_config(dir: &Path, sink: &str) -> Result<String> {
    let config = dir.join("coar-notify.toml");
    std::fs::write(
        &config,
        format!(
            "[[pipeline]]\npatterns = [\"*\"]\nhandler = \"webhook\"\nurl = \"http://{sink}/hook\"\n"
        ),
    )?;
    Ok(config.display().to_string())
}

/// The `id` of a JSON body (a webhook event's, or a delivered notification's own), or "".
pub(crate) fn body_id(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// What a sink answers to one request (lower-cased head, body): the whole raw response.
pub(crate) type Respond = Arc<dyn Fn(&str, &[u8]) -> Vec<u8> + Send + Sync>;

/// A keep-alive HTTP/1.1 server on `listener` that answers every request with `respond`.
fn http_sink(listener: tokio::net::TcpListener, respond: Respond) {
    slow_sink(listener, respond, Duration::ZERO);
}

/// [`http_sink`], answering each request only after `delay` (a slow peer; the connection's
/// next request waits, as HTTP/1.1 has no pipelining in practice).
pub(crate) fn slow_sink(listener: tokio::net::TcpListener, respond: Respond, delay: Duration) {
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
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
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
pub(crate) async fn counting_sink() -> Result<(String, Counts)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let counts: Counts = Arc::default();
    let seen = counts.clone();
    http_sink(
        listener,
        Arc::new(move |_head, body| {
            let id = body_id(body);
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
