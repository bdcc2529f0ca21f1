//! Developer tasks for coar-notify-rs, run as `cargo xtask <task>`.
//!
//! - `ci`: the one gate. `cargo fmt --check`, `cargo clippy -D warnings`, then every test of
//!   the workspace, with the storage tests pointed at the local PostgreSQL and MariaDB, then
//!   the fault suite at its small size, then the fuzz targets over their seeds (when a nightly
//!   toolchain is installed).
//! - `bench`: measured speed and memory (`bench.rs`).
//! - `faults`: the server under faults (`faults.rs`).
//! - `fuzz`: the fuzz targets under libFuzzer (`fuzz.rs`).
//!
//! This is a developer tool: nothing in the product depends on it.

use std::{
    env,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail};

mod bench;
mod faults;
mod fuzz;

/// PostgreSQL on the project's development and CI machines (trust auth).
pub(crate) const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// MariaDB on the project's development and CI machines (root, empty password).
const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => {
            let option = |name: &str, default: u64| {
                args.iter()
                    .find_map(|a| a.strip_prefix(name))
                    .map_or(Ok(default), str::parse)
                    .with_context(|| format!("{name}N"))
            };
            let options = bench::Options {
                seconds: option("--seconds=", 10)?,
                sustained: option("--sustained=", 30)?,
                sqlite_only: match args.iter().find_map(|a| a.strip_prefix("--only=")) {
                    None => false,
                    Some("sqlite") => true,
                    Some(other) => anyhow::bail!("--only={other}: the one choice is sqlite"),
                },
            };
            bench::bench(&workspace_root(), &options)
        }
        Some("faults") => {
            let passed = faults::faults(&workspace_root(), args.iter().any(|a| a == "--large"))?;
            println!("{passed} passed, 0 failed");
            Ok(())
        }
        Some("fuzz") => {
            let mode = if args.iter().any(|a| a == "--replay") {
                fuzz::Mode::Replay
            } else {
                fuzz::Mode::Seconds(
                    args.iter()
                        .find_map(|a| a.strip_prefix("--seconds="))
                        .map_or(Ok(300), str::parse)
                        .context("--seconds=N")?,
                )
            };
            let only = args.iter().find_map(|a| a.strip_prefix("--target="));
            fuzz::fuzz(&workspace_root(), mode, only)
        }
        Some("help") | Some("--help") | Some("-h") | None => {
            print_help();
            Ok(())
        }
        Some(other) => {
            print_help();
            bail!("unknown task `{other}`")
        }
    }
}

fn print_help() {
    eprintln!(
        "cargo xtask <task>

tasks:
  bench  [--seconds=N] [--sustained=N] release build, then load tests (64 connections, N s
         each, default 10; with workers on, --sustained, default 30): the HTTP ceiling, the
         durable-write limits (examples/durable.rs), coar-notify on SQLite and PostgreSQL
         (COAR_BENCH_POSTGRES_URL, default the test database's server; skipped when
         unreachable), the Python reference inbox (a venv under target/bench), outbound to
         slow inboxes; writes target/bench/report.json and one line per goal;
         --only=sqlite stops after SQLite's limit, ingest and default runs (quick A/B);
         COAR_BENCH_BIN=PATH measures another build
  faults [--large] the server under faults: kill -9 during ingest (every 201 kept byte for
         byte), the hostile corpus in fixtures/hostile (each a 4xx), a never-ending body,
         thousands of idle connections, an outbound target down then back (in order per
         thread), peers that lie (an absurd Retry-After, a forged origin, a webhook down), two
         processes on one PostgreSQL; --large runs more rounds and connections;
         COAR_FAULTS_BIN=PATH tests another build, COAR_FAULTS_ONLY=NAME one scenario
    fuzz   [--seconds=N | --replay] [--target=NAME] the fuzz targets (cargo +nightly fuzz):
         inbound, shaping, link, retry_after, seeded from fixtures/fuzz/NAME (inbound also
         with the spec payloads); N seconds each, default 300; --replay runs each seed once
  ci     cargo fmt --check, cargo clippy -D warnings, then every test of the workspace
         (storage tests use COAR_TEST_POSTGRES_URL and COAR_TEST_MYSQL_URL, defaulting to
         {DEFAULT_POSTGRES_URL} and {DEFAULT_MYSQL_URL}), the fault suite, fuzz --replay"
    );
}

/// The CI gate. Each step is printed before it runs; the first failure stops the run.
fn ci() -> Result<()> {
    let root = workspace_root();
    let started = Instant::now();
    step(&root, "cargo", &["fmt", "--all", "--", "--check"], &[])?;
    step(
        &root,
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    layering(&root)?;
    // What crates.io users get: each library crate packages and builds alone (no path into
    // the rest of the repository), and its documentation builds without a warning.
    package(&root)?;
    step(
        &root,
        "cargo",
        &["doc", "--workspace", "--exclude", "xtask", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    let postgres =
        env::var("COAR_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let mysql = env::var("COAR_TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_MYSQL_URL.to_owned());
    let mut totals = TestTotals::default();
    test_step(
        &root,
        &["test", "--workspace", "--all-targets"],
        &[
            ("COAR_TEST_POSTGRES_URL", postgres.as_str()),
            ("COAR_TEST_MYSQL_URL", mysql.as_str()),
        ],
        &mut totals,
    )?;
    test_step(&root, &["test", "--workspace", "--doc"], &[], &mut totals)?;
    println!("$ cargo xtask faults");
    match faults::faults(&root, false) {
        Ok(passed) => totals.passed += passed,
        Err(e) => {
            println!("{} passed, {} failed", totals.passed, totals.failed + 1);
            return Err(e.context("cargo xtask faults"));
        }
    }
    println!("$ cargo xtask fuzz --replay");
    if fuzz::nightly_available(&root) {
        match fuzz::fuzz(&root, fuzz::Mode::Replay, None) {
            Ok(()) => totals.passed += 1,
            Err(e) => {
                println!("{} passed, {} failed", totals.passed, totals.failed + 1);
                return Err(e.context("cargo xtask fuzz --replay"));
            }
        }
    } else {
        // Not a failure even under CI: the fuzzer needs nightly, which a machine may lack,
        // and the inputs that once broke the target are replayed over HTTP on stable by
        // coar-server's inbox tests anyway.
        println!(
            "fuzz --replay: SKIPPED (no nightly toolchain; `rustup toolchain install nightly`)"
        );
    }
    println!("xtask ci: all steps passed in {:.0?}", started.elapsed());
    // One closing line for the whole run, whatever the last test binary printed.
    println!("{} passed, {} failed", totals.passed, totals.failed);
    Ok(())
}

/// `cargo package` of every library crate, each built from its tarball (in a target
/// directory of its own). The tarballs of the workspace's own crates stand in for crates.io,
/// and cargo never unpacks or rebuilds a registry crate of the same version again, so the
/// last run's unpacked sources and builds of ours are removed first: otherwise a crate would
/// be checked against its dependencies as they were then.
fn package(root: &Path) -> Result<()> {
    // Cargo also unpacks those tarballs once into CARGO_HOME, under a directory named for the
    // temporary registry (it starts with `-`), and never again for the same version.
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    if let Some(Ok(registries)) = cargo_home.map(|h| std::fs::read_dir(h.join("registry/src"))) {
        for registry in registries.flatten() {
            if !registry.file_name().to_string_lossy().starts_with('-') {
                continue;
            }
            for unpacked in std::fs::read_dir(registry.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if unpacked.file_name().to_string_lossy().starts_with("coar-") {
                    let _ = std::fs::remove_dir_all(unpacked.path());
                }
            }
        }
    }
    let target = root.join("target/package-verify");
    for dir in ["debug/.fingerprint", "debug/deps", "debug/build"] {
        let Ok(entries) = std::fs::read_dir(target.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("coar-")
                || name.starts_with("coar_")
                || name.starts_with("libcoar_")
            {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            }
        }
    }
    step(
        root,
        "cargo",
        &[
            "package",
            "--workspace",
            "--exclude",
            "xtask",
            "--allow-dirty",
            "--target-dir",
            "target/package-verify",
        ],
        &[],
    )
}

/// The layers stand apart: coar-server without its default features (the engine) compiles
/// no axum, minijinja or clap, and hyper only as reqwest's client, and its library tests and
/// the `embedded` example (built and run as a test) pass that way; coar-client without its
/// `rdf` feature (a plain sender) compiles no JSON-LD or RDF crate.
fn layering(root: &Path) -> Result<()> {
    let engine = dependency_tree(root, "coar-server", "normal,features")?;
    let forbidden = lines_starting(
        &engine,
        &["axum ", "minijinja ", "clap ", "hyper feature \"server\""],
    );
    if !forbidden.is_empty() {
        bail!(
            "the engine (coar-server --no-default-features) pulls in an HTTP server or CLI crate: {}",
            forbidden.join("; ")
        );
    }
    println!("engine without HTTP: no axum, minijinja, clap or hyper server");
    // A plain sender compiles no JSON-LD or RDF stack.
    let sender = dependency_tree(root, "coar-client", "normal")?;
    let rdf = lines_starting(&sender, &["json-ld ", "sophia ", "json-syntax "]);
    if !rdf.is_empty() {
        bail!(
            "coar-client without its rdf feature still pulls in: {}",
            rdf.join("; ")
        );
    }
    println!("coar-client without rdf: no json-ld, json-syntax or sophia");
    step(
        root,
        "cargo",
        &["check", "-p", "coar-client", "--no-default-features"],
        &[],
    )?;
    step(
        root,
        "cargo",
        &[
            "test",
            "-p",
            "coar-server",
            "--no-default-features",
            "--lib",
            "--example",
            "embedded",
        ],
        &[],
    )
}

/// `cargo tree` of `package` without its default features, one crate (or feature) a line.
fn dependency_tree(root: &Path, package: &str, edges: &str) -> Result<String> {
    let args = [
        "tree",
        "-p",
        package,
        "--no-default-features",
        "-e",
        edges,
        "--prefix",
        "none",
    ];
    println!("$ cargo {}", args.join(" "));
    let out = Command::new("cargo")
        .args(args)
        .current_dir(root)
        .output()
        .context("cannot run cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The lines of `text` that start with any of `prefixes`.
fn lines_starting<'a>(text: &'a str, prefixes: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
        .collect()
}

/// Tests counted over every `test result:` line cargo printed.
#[derive(Default)]
struct TestTotals {
    passed: u64,
    failed: u64,
}

/// Runs `cargo test …`, echoing its output and adding its `test result:` lines to `totals`.
fn test_step(
    dir: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    totals: &mut TestTotals,
) -> Result<()> {
    let shown_env: String = envs.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    println!("$ {shown_env}cargo {}", args.join(" "));
    let mut child = Command::new("cargo")
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start cargo")?;
    let stdout = child.stdout.take().context("no stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.trim().strip_prefix("test result: ") {
            totals.passed += count_before(rest, " passed");
            totals.failed += count_before(rest, " failed");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        println!("{} passed, {} failed", totals.passed, totals.failed.max(1));
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// In `ok. 8 passed; 0 failed; …`, the number before `label`.
fn count_before(text: &str, label: &str) -> u64 {
    text.split(';')
        .find_map(|part| part.trim().strip_suffix(label.trim_start()).map(str::trim))
        .and_then(|n| n.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Runs one command in `dir`, echoing it first; fails when the command does.
fn step(dir: &Path, program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<()> {
    let shown_env: String = envs.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    println!("$ {shown_env}{program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .status()
        .with_context(|| format!("cannot start `{program}`"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_cargo_test_summaries() {
        let line =
            "ok. 8 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s";
        assert_eq!(super::count_before(line, " passed"), 8);
        assert_eq!(super::count_before(line, " failed"), 2);
    }
}
