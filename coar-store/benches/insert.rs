//! The inbox's write path on SQLite: `insert_many` of batches as the group commit forms
//! them, against SQLite's own cost for the same rows (the floor: what no code above SQLite
//! can go below on this machine), against one `insert` per notification, plus the trust
//! lookup the inbox makes per request (`service_by_id`). Run with
//! `cargo bench -p coar-store --bench insert`; prints µs per notification. (`cargo test --all-targets` runs it once, briefly, as a check.)

use std::time::Instant;

use coar_model::Notification;
use coar_store::{NewNotification, Store, StoreConfig};

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
    let store = Store::open_with(StoreConfig::new(format!(
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
    let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
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

    let per_floor = floor(&dir, &template, &sizes).await;

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
         SQLite alone, same batches:   {per_floor:.0} µs per notification ({:.2}x)\n\
         insert, one at a time:       {per_single:.0} µs per notification ({:.1}x)\n\
         service_by_id:               {per_lookup:.0} µs per lookup",
        batch - batch / 2,
        batch + batch / 2 - 1,
        per_grouped / per_floor,
        per_single / per_grouped
    );
    store.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// SQLite's own cost for the same rows: each batch's notifications and links written by
/// statements SQLite evaluates itself (no parameters, nothing from Rust but the SQL text),
/// in a transaction with the store's settings (WAL, `synchronous=FULL`), on the store's
/// schema, with random dedup keys as real ones are. What the write path cannot go below on
/// this machine; µs per notification.
async fn floor(dir: &std::path::Path, template: &serde_json::Value, sizes: &[usize]) -> f64 {
    use sea_orm::{ConnectionTrait, Database};
    use sha2::Digest;
    let path = dir.join("floor.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    Store::open(&url).await.unwrap().close().await.unwrap();
    let db = Database::connect(
        sea_orm::ConnectOptions::new(url)
            .max_connections(1)
            .to_owned(),
    )
    .await
    .unwrap();
    db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL")
        .await
        .unwrap();
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let body = quote(&serde_json::to_string(template).unwrap());
    let n = Notification::from_value(template.clone()).unwrap();
    let id =
        |node: Option<coar_model::Node<'_>>| node.and_then(|o| o.id()).unwrap_or("").to_owned();
    let mut links = vec![
        ("origin", id(n.origin())),
        ("target", id(n.target())),
        ("actor", id(n.actor())),
    ];
    links.extend(
        n.resource_uris()
            .into_iter()
            .map(|u| ("resource", u.to_owned())),
    );
    let links: Vec<String> = links
        .iter()
        .map(|(role, uri)| {
            let hash = hex::encode(sha2::Sha256::digest(uri.as_bytes()));
            format!("SELECT '{role}', {}, '{hash}'", quote(uri))
        })
        .collect();
    let link_count = links.len();
    let links = links.join(" UNION ALL ");
    let text = |s: Option<&str>| s.map_or("NULL".to_owned(), quote);
    let columns = format!(
        "'inbound', lower(hex(randomblob(32))), 'urn:uuid:' || lower(hex(randomblob(16))), {}, {}, \
         {}, {}, {}, {}, {}, {}, NULL, '', NULL, CAST({body} AS BLOB), 'application/ld+json', \
         lower(hex(randomblob(32))), 1, '2026-01-01', NULL, NULL, 'queued', 0, NULL, NULL, NULL, \
         NULL, 1",
        text(n.pattern().map(|p| p.slug())),
        quote(&n.types().join(" ")),
        text(n.origin().and_then(|o| o.id())),
        text(n.origin().and_then(|o| o.inbox())),
        text(n.target().and_then(|o| o.id())),
        text(n.target().and_then(|o| o.inbox())),
        text(n.actor().and_then(|o| o.id())),
        text(n.object_id()),
    );
    let start = Instant::now();
    for &size in sizes {
        db.execute_unprepared(&format!(
            "BEGIN; \
             INSERT INTO notifications (direction, dedup_key, notification_id, pattern, types, \
             origin_id, origin_inbox, target_id, target_inbox, actor_id, object_id, context_id, \
             cite_as, in_reply_to, body, media_type, sha256, received_at, received_day, \
             remote_addr, service_id, state, attempts, next_attempt_at, lease_until, lease_owner, \
             last_error, updated_at) \
             WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {size}) \
             SELECT {columns} FROM s; \
             INSERT INTO notification_links (notification, role, uri, uri_hash) \
             SELECT n.id, l.* FROM (SELECT id FROM notifications ORDER BY id DESC LIMIT {size}) n, \
             ({links}) l; \
             COMMIT"
        ))
        .await
        .unwrap();
    }
    let total: usize = sizes.iter().sum();
    let per = start.elapsed().as_secs_f64() * 1e6 / total as f64;
    // The floor wrote what the store writes: every row, every link.
    let count = |sql: &str| {
        let db = &db;
        let sql = sql.to_owned();
        async move {
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    sql,
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<i64>(0).unwrap() as usize
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM notifications").await, total);
    assert_eq!(
        count("SELECT COUNT(*) FROM notification_links").await,
        total * link_count
    );
    db.close().await.unwrap();
    per
}
