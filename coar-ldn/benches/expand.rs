//! JSON-LD expansion of the spec's Announce Review example: the json-ld crate's own path
//! (the context processed for every document) against the cached path (processed once).
//! Run with `cargo bench -p coar-ldn --bench expand`; prints µs per document and the ratio.

use std::{hint::black_box, time::Instant};

use coar_ldn::Contexts;

fn per_doc(iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f(); // warm-up
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
}

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures");
    let read = |p: &str| std::fs::read_to_string(format!("{root}/{p}")).unwrap();
    let mut contexts = Contexts::default();
    contexts
        .register(
            "https://coar-notify.net",
            &read("contexts/coar-notify-1.0.1.json"),
        )
        .unwrap();
    let doc = read("spec/announce-review.json");
    // `cargo bench` passes --bench; `cargo test --all-targets` does not: then this is only a
    // quick check that the benchmark still runs.
    let iterations = if std::env::args().any(|a| a == "--bench") {
        2_000
    } else {
        10
    };
    if std::env::var_os("COAR_BENCH_CACHED_ONLY").is_some() {
        // For profiling the cached path alone.
        let cached = per_doc(iterations * 5, || {
            black_box(contexts.expand(black_box(&doc)).unwrap());
        });
        println!("expand announce-review, cached: {cached:.1} µs/doc");
        return;
    }
    let naive = per_doc(iterations, || {
        black_box(contexts.expand_uncached(black_box(&doc)).unwrap());
    });
    let cached = per_doc(iterations, || {
        black_box(contexts.expand(black_box(&doc)).unwrap());
    });
    let rdf = per_doc(iterations, || {
        black_box(contexts.to_dataset(black_box(&doc)).unwrap());
    });
    println!("expand announce-review, uncached: {naive:>8.1} µs/doc");
    println!("expand announce-review, cached:   {cached:>8.1} µs/doc");
    println!("to RDF dataset (cached expansion): {rdf:>7.1} µs/doc");
    println!("speed-up of the context cache: {:.1}x", naive / cached);
}
