//! The inbox's write path on SQLite: `insert_many` of batches as the group commit forms
//! them, against one `insert` per notification, plus the trust lookup the inbox makes per
//! request (`service_by_id`). Run with `cargo bench -p coar-store --bench insert`; prints
//! µs per notification. (`cargo test --all-targets` runs it once, briefly, as a check.)

use std::time::Instant;

use coar_model::Notification;
use coar_store::{Config, NewNotification, Store};

fn notification(template: &serde_json::Value, n: usize) -> (Vec<u8>, Notification) {
    let mut doc = template.clone();
    doc["id"] = serde_json::json!(format!("urn:uuid:00000000-0000-4000-8000-{n:012x}"));
    let bytes = serde_json::to_vec(&doc).unwrap();
    let parsed = Notification::from_slice(&bytes).unwrap();
    (bytes, parsed)
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (batches, batch) = if full { (100, 64) } else { (2, 8) };
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures");
    let template: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{root}/spec/request-review.json")).unwrap())
            .unwrap();
    let dir = std::env::temp_dir().join(format!("coar-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open_with(Config::new(format!(
        "sqlite://{}?mode=rwc",
        dir.join("bench.db").display()
    )))
    .await
    .unwrap();
    let docs: Vec<_> = (0..batches * batch * 2)
        .map(|n| notification(&template, n))
        .collect();
    let (grouped, single) = docs.split_at(batches * batch);

    // Batches of varying sizes around `batch`, as the inbox's group commit forms them.
    let mut chunks = Vec::new();
    let mut rest = grouped;
    for i in 0.. {
        if rest.is_empty() {
            break;
        }
        let size = (batch - batch / 2 + (i * 7) % batch).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        chunks.push(chunk);
        rest = tail;
    }
    let start = Instant::now();
    for chunk in chunks {
        let news: Vec<_> = chunk
            .iter()
            .map(|(b, n)| NewNotification::inbound(n, b, "application/ld+json"))
            .collect();
        for r in store.insert_many(&news).await {
            r.unwrap();
        }
    }
    let per_grouped = start.elapsed().as_secs_f64() * 1e6 / grouped.len() as f64;

    let start = Instant::now();
    for (b, n) in single.iter().take(batch * 4) {
        store
            .insert(NewNotification::inbound(n, b, "application/ld+json"))
            .await
            .unwrap();
    }
    let per_single = start.elapsed().as_secs_f64() * 1e6 / (batch * 4) as f64;

    let origin = template["origin"]["id"].as_str().unwrap();
    let lookups = batch * 10;
    let start = Instant::now();
    for _ in 0..lookups {
        store.service_by_id(origin).await.unwrap();
    }
    let per_lookup = start.elapsed().as_secs_f64() * 1e6 / lookups as f64;

    println!(
        "insert_many, batches of {}-{}: {per_grouped:.0} µs per notification\n\
         insert, one at a time:       {per_single:.0} µs per notification ({:.1}x)\n\
         service_by_id:               {per_lookup:.0} µs per lookup",
        batch - batch / 2,
        batch + batch / 2 - 1,
        per_single / per_grouped
    );
    store.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
