//! In the repository, `docs/patterns.md`'s Rust examples run as this crate's doc tests
//! (`cfg(patterns_guide)`); a packaged crate has no `docs/`, and runs its own only.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(patterns_guide)");
    let guide = std::path::Path::new("../docs/patterns.md");
    println!("cargo::rerun-if-changed=../docs/patterns.md");
    if guide.exists() {
        println!("cargo::rustc-cfg=patterns_guide");
    }
}
