//! `cargo xtask fuzz`: the `inbound` fuzz target (`fuzz/fuzz_targets/inbound.rs`) under
//! libFuzzer, through `cargo +nightly fuzz`.
//!
//! The corpus lives in `target/fuzz/corpus/inbound` and grows from run to run. Each run seeds
//! it with the specification's payloads (`fixtures/spec`, as JSON-LD, and
//! `fixtures/rdf/1.0.1`, as Turtle), the hostile corpus (`fixtures/hostile`) and every input
//! that once broke the target (`fixtures/fuzz/inbound`), in the target's encoding: one byte
//! for the `Content-Type`, then the body.
//!
//! `--seconds=N` fuzzes for N seconds; `--replay` runs each seed once and stops (what
//! `cargo xtask ci` does: deterministic, and it keeps the target building). A crash is left
//! in `fuzz/artifacts/inbound/`; add it to `fixtures/fuzz/inbound/` with a line in its
//! README once fixed.

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

/// Runs the `inbound` target; fails if it finds a crash.
pub fn fuzz(root: &Path, mode: Mode) -> Result<()> {
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
    let corpus = root.join("target/fuzz/corpus/inbound");
    let seeds = seed(root, &corpus)?;
    let mut args: Vec<String> = ["+nightly", "fuzz", "run", "inbound"]
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
            "the fuzz target failed; the input is in fuzz/artifacts/inbound/ (reproduce with \
             `cd fuzz && cargo +nightly fuzz run inbound <file>`)"
        );
    }
    Ok(())
}

/// Writes the seeds into `corpus` (creating it); returns how many.
fn seed(root: &Path, corpus: &Path) -> Result<usize> {
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
    for dir in ["spec", "spec/0.9.0", "spec/workflows", "hostile"] {
        for path in files(&fixtures.join(dir), "json")? {
            if path.ends_with("manifest.json") {
                continue;
            }
            add(seed_name(dir, &path), Some(JSON_LD), &path)?;
        }
    }
    for path in files(&fixtures.join("rdf/1.0.1"), "nq")? {
        add(seed_name("rdf", &path), Some(TURTLE), &path)?;
    }
    for path in files(&fixtures.join("fuzz/inbound"), "")? {
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
