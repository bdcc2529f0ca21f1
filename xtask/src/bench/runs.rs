//! The systems under load: the ceiling and durable-limit examples, `coar-notify serve`, the
//! Python reference inbox, and what is measured of each beyond the load itself.

use std::collections::HashMap;

use super::*;

/// A server process under test, listening on `addr`.
pub(super) struct Server {
    pub(super) proc: Proc,
    pub(super) addr: String,
    pub(super) startup: Duration,
}

impl Server {
    fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    /// Resident memory now and its peak so far, in MiB.
    pub(super) fn memory(&self) -> (f64, f64) {
        memory(self.pid())
    }
}

/// Starts `command` listening on `addr` and waits until it accepts connections.
pub(super) async fn start(mut command: Command, addr: String) -> Result<Server> {
    let launched = Instant::now();
    let proc = Proc(
        command
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {command:?}"))?,
    );
    wait_ready(&addr, Duration::from_secs(60)).await?;
    Ok(Server {
        proc,
        addr,
        startup: launched.elapsed(),
    })
}

/// `coar-notify serve` on `database_url` in a fresh directory, with `workers` workers and
/// the given extra settings (`--config` for the configuration file's flag, the rest
/// variables).
pub(super) async fn coar_notify(
    bin: &Path,
    dir: &Path,
    database_url: &str,
    workers: usize,
    extra: &[(&str, &str)],
) -> Result<Server> {
    std::fs::create_dir_all(dir)?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let mut command = Command::new(bin);
    command.arg("serve");
    for (flag, value) in extra.iter().filter(|(k, _)| k.starts_with("--")) {
        command.args([flag, value]);
    }
    command
        .current_dir(dir)
        .env("COAR_BIND", &addr)
        .env("COAR_DATABASE_URL", database_url)
        .env("COAR_WORKERS", workers.to_string())
        .env("COAR_TRUST", "accept")
        .env("COAR_ADMIN_TOKEN", ADMIN)
        .env("COAR_ALLOW_PRIVATE_TARGETS", "true")
        // The load comes from one address, as fast as the server takes it.
        .env("COAR_RATE_LIMIT", "off")
        .env("COAR_SERVICE_RATE_LIMIT", "off")
        .env("RUST_LOG", "warn")
        .stderr(std::fs::File::create(dir.join("stderr.log"))?);
    for (k, v) in extra.iter().filter(|(k, _)| !k.starts_with("--")) {
        command.env(k, v);
    }
    start(command, addr).await
}

pub(super) async fn get_json(addr: &str, path: &str) -> Result<Value> {
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

/// How many inbound notifications are processed, and how many still wait (queued, in
/// processing or scheduled for a retry).
pub(super) async fn progress(addr: &str) -> Result<(u64, u64)> {
    let stats = get_json(addr, "/api/stats").await?;
    let count = |key: &str| stats["by_state"][key].as_u64().unwrap_or(0);
    Ok((
        count("processed"),
        count("queued") + count("processing") + count("retry_scheduled"),
    ))
}

/// Waits until nothing waits any more; returns how long it took.
pub(super) async fn drain(addr: &str) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if progress(addr).await?.1 == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the queue did not drain in 600 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sustained run with the workers on: what was accepted and what was processed while
/// the load ran.
pub(super) struct Sustained {
    pub(super) load: Load,
    /// Processed per second while the load ran.
    pub(super) processed_per_second: f64,
    pub(super) drain: Duration,
}

impl Sustained {
    /// Processed per second as a part of accepted per second.
    pub(super) fn keeping_up(&self) -> f64 {
        self.processed_per_second / self.load.rate().max(f64::MIN_POSITIVE)
    }

    /// Prints its row of the table and what was processed.
    pub(super) fn print(&self, name: &str, limit: Option<(&str, f64)>) {
        row(name, &self.load, limit);
        println!(
            "{:<44} processed {:.0}/s while the load ran ({:.2} of accepted), drained {:.1} s after",
            "",
            self.processed_per_second,
            self.keeping_up(),
            self.drain.as_secs_f64()
        );
    }

    pub(super) fn json(&self) -> Value {
        json!({
            "ingest": self.load.json(),
            "processed_per_second": self.processed_per_second,
            "processed_to_accepted": self.keeping_up(),
            "drain_seconds": self.drain.as_secs_f64(),
        })
    }
}

/// Loads `servers` for `duration` with the workers on, counting what got processed while
/// the load ran, then lets the queue drain.
pub(super) async fn sustained(
    servers: &[String],
    template: &str,
    duration: Duration,
) -> Result<Sustained> {
    let (before, _) = progress(&servers[0]).await?;
    let load = load(servers, template, duration).await?;
    let (after, _) = progress(&servers[0]).await?;
    let drain = drain(&servers[0]).await?;
    Ok(Sustained {
        processed_per_second: after.saturating_sub(before) as f64 / load.seconds,
        load,
        drain,
    })
}

/// The reference Python inbox (coarnotify's test server under gunicorn, 2 processes × 4
/// threads, storing each notification as a JSON file), or why it could not be run.
pub(super) async fn python_reference(root: &Path) -> Result<Result<Server, String>> {
    let venv = root.join("target/bench/venv");
    let gunicorn = venv.join("bin/gunicorn");
    if !gunicorn.exists() {
        println!("$ python3 -m venv target/bench/venv && pip install coarnotify gunicorn flask");
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map_err(|e| e.to_string())
            .and_then(|s| s.success().then_some(()).ok_or("venv failed".to_owned()))
            .and_then(|()| {
                Command::new(venv.join("bin/pip"))
                    .args(["install", "-q", "coarnotify==1.0.1.4", "gunicorn", "flask"])
                    .status()
                    .map_err(|e| e.to_string())
            });
        match made {
            Ok(s) if s.success() => {}
            Ok(s) => return Ok(Err(format!("pip install failed ({s})"))),
            Err(e) => return Ok(Err(e)),
        }
    }
    let dir = root.join("target/bench/python");
    let _ = std::fs::remove_dir_all(&dir);
    let store = dir.join("store");
    std::fs::create_dir_all(&store)?;
    let settings = dir.join("settings.py");
    std::fs::write(
        &settings,
        format!(
            "STORE_DIR = {:?}\nDEBUG = False\nRESPONSE_STATUS = 201\nVALIDATE_INCOMING = True\n",
            store.display().to_string()
        ),
    )?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let mut command = Command::new(gunicorn);
    command
        .args(["--workers", "2", "--threads", "4", "--bind", &addr])
        .args(["--log-level", "warning", "coarnotify.test.server.inbox:app"])
        .current_dir(&dir)
        .env("COARNOTIFY_SETTINGS", &settings)
        .stderr(std::fs::File::create(dir.join("stderr.log"))?);
    Ok(Ok(start(command, addr).await?))
}

/// The durable-limit example on `database_url` under the same load.
pub(super) async fn durable_limit(
    release: &Path,
    database_url: &str,
    template: &str,
    duration: Duration,
) -> Result<Load> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    let mut command = Command::new(release.join("examples/durable"));
    command.arg(database_url).arg(&addr);
    let durable = start(command, addr).await?;
    load(std::slice::from_ref(&durable.addr), template, duration).await
}

/// Two `coar-notify serve` processes on one PostgreSQL database, the load spread over
/// both, every notification handed to a webhook that counts it: how many were accepted,
/// and how many the webhook saw once, twice or never.
pub(super) struct TwoProcesses {
    pub(super) sustained: Sustained,
    pub(super) accepted: u64,
    pub(super) handled_once: u64,
    pub(super) handled_more_than_once: u64,
    pub(super) never_handled: u64,
}

impl TwoProcesses {
    pub(super) fn exactly_once(&self) -> bool {
        self.handled_more_than_once == 0 && self.never_handled == 0
    }

    pub(super) fn json(&self) -> Value {
        json!({
            "load": self.sustained.json(),
            "accepted": self.accepted,
            "handled_once": self.handled_once,
            "handled_more_than_once": self.handled_more_than_once,
            "never_handled": self.never_handled,
        })
    }
}

pub(super) async fn two_processes(
    bin: &Path,
    dir: &Path,
    database_url: &str,
    template: &str,
    duration: Duration,
) -> Result<TwoProcesses> {
    let (sink, counts) = crate::faults::counting_sink().await?;
    std::fs::create_dir_all(dir)?;
    let config = crate::faults::webhook_config(dir, &sink)?;
    let settings = [("--config", config.as_str())];
    let one = coar_notify(bin, &dir.join("one"), database_url, 2, &settings).await?;
    let two = coar_notify(bin, &dir.join("two"), database_url, 2, &settings).await?;
    let servers = [one.addr.clone(), two.addr.clone()];
    let sustained = sustained(&servers, template, duration).await?;
    let counts: HashMap<String, u32> = counts.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let accepted = sustained.load.created;
    let handled_once = counts.values().filter(|n| **n == 1).count() as u64;
    let handled_more_than_once = counts.values().filter(|n| **n > 1).count() as u64;
    Ok(TwoProcesses {
        never_handled: accepted.saturating_sub(counts.len() as u64),
        sustained,
        accepted,
        handled_once,
        handled_more_than_once,
    })
}
