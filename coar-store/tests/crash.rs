//! A notification acknowledged as stored survives the process dying without any clean-up
//! (SQLite file; PostgreSQL and MariaDB guarantee this themselves).

mod common;

use std::process::Command;

use coar_store::{NewNotification, Store};

const CHILD_ENV: &str = "COAR_STORE_CRASH_CHILD_DB";

/// Run by the parent test in a child process: stores notifications, reports each key once
/// the insert returned, then aborts (no destructors, no pool close, no checkpoint).
#[tokio::test]
async fn crash_child() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return; // Only meaningful as the child of `acknowledged_rows_survive_a_crash`.
    };
    let store = Store::open(&url).await.unwrap();
    for _ in 0..20 {
        let (bytes, n) = common::parsed(&common::with_new_id(common::fixture("request-review")));
        let key = store
            .insert(NewNotification::inbound(&n, &bytes, "application/ld+json"))
            .await
            .unwrap()
            .record()
            .key;
        println!("STORED {key} {}", coar_store_sha(&bytes));
    }
    std::process::abort();
}

fn coar_store_sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn acknowledged_rows_survive_a_crash() {
    let dir = common::TempDir::create();
    let url = format!("sqlite://{}", dir.0.join("crash.db").display());
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &url)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child should have aborted");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stored: Vec<(i64, String)> = stdout
        .lines()
        .filter_map(|l| l.split_once("STORED ").map(|(_, rest)| rest))
        .map(|l| {
            let (k, sha) = l.split_once(' ').unwrap();
            (k.parse().unwrap(), sha.to_owned())
        })
        .collect();
    assert_eq!(stored.len(), 20, "child output:\n{stdout}");
    let store = Store::open(&url).await.unwrap();
    for (key, sha) in stored {
        let r = store
            .get(key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("row {key} lost"));
        assert_eq!(r.sha256, sha);
        assert_eq!(coar_store_sha(&r.body), sha);
    }
}
