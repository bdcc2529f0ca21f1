//! `cargo xtask fuzz`: the fuzz targets of `fuzz/fuzz_targets/` under libFuzzer, through
//! `cargo +nightly fuzz`, one for each parser of bytes a peer controls:
//! - `inbound`: a POSTed body, JSON-LD or Turtle, through the receiver and the COAR model;
//! - `shaping`: Turtle shaped into the JSON-LD tree, within small budgets;
//! - `link`: `Link` headers and HTML `<link>` discovery;
//! - `retry_after`: `Retry-After` values and HTTP dates, through the clamp and the backoff.
//!
//! Each corpus lives in `target/fuzz/corpus/NAME` and grows from run to run. Each run seeds
//! it with every input that once broke the target, or was written to reach it
//! (`fixtures/fuzz/NAME/`); `inbound` also with the specification's payloads
//! (`fixtures/spec`, as JSON-LD, and `fixtures/rdf/1.0.1`, as Turtle) and the hostile corpus
//! (`fixtures/hostile`), in its encoding: one byte for the `Content-Type`, then the body;
//! `shaping` also with the Turtle of `fixtures/rdf/1.0.1`.
//!
//! `--seconds=N` fuzzes each target for N seconds; `--target=NAME` runs only that one;
//! `--replay` runs each seed once and stops (what `cargo xtask ci` does: deterministic, and
//! it keeps the targets building). A crash is left in `fuzz/artifacts/NAME/`; add it to
//! `fixtures/fuzz/NAME/` with a line in its README once fixed.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail, ensure};

/// Selector bytes of the target's encoding (see `fixtures/fuzz/README.md`).
const JSON_LD: u8 = 0;
const TURTLE: u8 = 2;

/// How to run the target.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Each seed once.
    Replay,
    /// Fuzz for this many seconds.
    Seconds(u64),
}

/// Whether `cargo +nightly` works here (the fuzzer needs nightly's sanitizer flags).
pub fn nightly_available(root: &Path) -> bool {
    Command::new("cargo")
        .args(["+nightly", "--version"])
        .current_dir(root)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The fuzz targets, in the order they run.
pub const TARGETS: [&str; 5] = ["inbound", "shaping", "link", "retry_after", "signature"];

/// Runs the targets (all, or `only`); fails if one finds a crash.
pub fn fuzz(root: &Path, mode: Mode, only: Option<&str>) -> Result<()> {
    if let Some(t) = only {
        ensure!(
            TARGETS.contains(&t),
            "no fuzz target {t:?}; they are {TARGETS:?}"
        );
    }
    for target in TARGETS.iter().filter(|t| only.is_none_or(|o| o == **t)) {
        fuzz_one(root, mode, target)?;
    }
    Ok(())
}

fn fuzz_one(root: &Path, mode: Mode, target: &str) -> Result<()> {
    ensure!(
        nightly_available(root),
        "the fuzzer needs a nightly toolchain (`rustup toolchain install nightly`)"
    );
    let has_cargo_fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_cargo_fuzz {
        println!("$ cargo install cargo-fuzz --locked");
        let status = Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked"])
            .status()?;
        ensure!(status.success(), "cargo install cargo-fuzz failed");
    }
    let corpus = root.join("target/fuzz/corpus").join(target);
    let seeds = seed(root, &corpus, target)?;
    let mut args: Vec<String> = ["+nightly", "fuzz", "run", target]
        .map(String::from)
        .to_vec();
    args.push(corpus.display().to_string());
    args.extend(["--", "-max_len=65536", "-rss_limit_mb=2048", "-timeout=10"].map(String::from));
    match mode {
        Mode::Replay => args.push("-runs=0".into()),
        Mode::Seconds(s) => args.push(format!("-max_total_time={s}")),
    }
    println!("$ cargo {} ({seeds} seeds)", args.join(" "));
    let status = Command::new("cargo")
        .args(&args)
        .current_dir(root.join("fuzz"))
        .status()
        .context("cannot run cargo fuzz")?;
    if !status.success() {
        bail!(
            "the fuzz target {target} failed; the input is in fuzz/artifacts/{target}/ \
             (reproduce with `cd fuzz && cargo +nightly fuzz run {target} <file>`)"
        );
    }
    Ok(())
}

/// Writes `target`'s seeds into `corpus` (creating it); returns how many.
fn seed(root: &Path, corpus: &Path, target: &str) -> Result<usize> {
    std::fs::create_dir_all(corpus)?;
    let fixtures = root.join("fixtures");
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: String, selector: Option<u8>, path: &Path| -> Result<()> {
        let body = std::fs::read(path).with_context(|| path.display().to_string())?;
        let data = match selector {
            Some(s) => [vec![s], body].concat(),
            None => body,
        };
        seeds.push((name, data));
        Ok(())
    };
    if target == "inbound" {
        for dir in ["spec", "spec/0.9.0", "spec/workflows", "hostile"] {
            for path in files(&fixtures.join(dir), "json")? {
                if path.ends_with("manifest.json") {
                    continue;
                }
                add(seed_name(dir, &path), Some(JSON_LD), &path)?;
            }
        }
    }
    if matches!(target, "inbound" | "shaping") {
        let selector = (target == "inbound").then_some(TURTLE);
        for path in files(&fixtures.join("rdf/1.0.1"), "nq")? {
            add(seed_name("rdf", &path), selector, &path)?;
        }
    }
    for path in files(&fixtures.join("fuzz").join(target), "")? {
        add(seed_name("regression", &path), None, &path)?;
    }
    for (name, data) in &seeds {
        std::fs::write(corpus.join(name), data)?;
    }
    Ok(seeds.len())
}

fn seed_name(dir: &str, path: &Path) -> String {
    let file = path
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    format!("seed-{}-{file}", dir.replace('/', "-"))
}

/// The files of `dir` whose name ends with `.{ext}` (every file for an empty `ext`), sorted.
fn files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| dir.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| ext.is_empty() || p.extension().is_some_and(|e| e == ext))
        .filter(|p| p.file_name().is_none_or(|f| f != "README.md"))
        .collect();
    out.sort();
    Ok(out)
}
