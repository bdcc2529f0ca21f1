//! One test definition, three real databases: SQLite (always), PostgreSQL and MariaDB (when
//! `COAR_TEST_POSTGRES_URL` / `COAR_TEST_MYSQL_URL` are set; required when `CI` is set).
//! Each test gets a database of its own, dropped at the end.

#![allow(dead_code)]

use std::{future::Future, path::PathBuf};

use coar_store::{QueuePolicy, Store, StoreConfig};
use sea_orm::{ConnectionTrait, Database};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
    MySql,
}

/// A test's own database.
pub struct TestDb {
    pub kind: Kind,
    pub url: String,
    pub store: Store,
    admin_url: Option<String>,
    name: String,
    _dir: Option<TempDir>,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn create() -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("coar-store-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The queue policy tests use: 3 attempts, 10 s doubling, 2 deliveries at once per inbox.
pub fn policy() -> QueuePolicy {
    QueuePolicy {
        max_attempts: 3,
        base_delay: std::time::Duration::from_secs(10),
        max_delay: std::time::Duration::from_secs(60),
        per_inbox: 2,
    }
}

fn config(url: &str) -> StoreConfig {
    let mut c = StoreConfig::new(url);
    c.policy = policy();
    c.lease = std::time::Duration::from_secs(60);
    c
}

impl TestDb {
    /// Another store on the same database: a separate connection pool, as another process
    /// would have.
    pub async fn open_another(&self) -> Store {
        Store::open_with(config(&self.url)).await.unwrap()
    }
}

fn env_url(kind: Kind) -> Option<(String, &'static str)> {
    let var = match kind {
        Kind::Sqlite => return None,
        Kind::Postgres => "COAR_TEST_POSTGRES_URL",
        Kind::MySql => "COAR_TEST_MYSQL_URL",
    };
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some((url, var)),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("{var} is not set, and CI is: the {kind:?} tests must run in CI");
            }
            eprintln!("SKIPPED: {kind:?} tests ({var} not set)");
            None
        }
    }
}

/// Replaces the database name (the URL's last path segment).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

pub async fn create(kind: Kind) -> Option<TestDb> {
    let name = format!("coar_t_{}", uuid::Uuid::new_v4().simple());
    if kind == Kind::Sqlite {
        let dir = TempDir::create();
        let url = format!("sqlite://{}", dir.0.join("store.db").display());
        let store = Store::open_with(config(&url)).await.unwrap();
        return Some(TestDb {
            kind,
            url,
            store,
            admin_url: None,
            name,
            _dir: Some(dir),
        });
    }
    let (admin_url, var) = env_url(kind)?;
    let admin = match Database::connect(&admin_url).await {
        Ok(db) => db,
        Err(err) => {
            if std::env::var_os("CI").is_some() {
                panic!("{var}={admin_url} is unreachable: {err}");
            }
            eprintln!("SKIPPED: {kind:?} tests ({admin_url} unreachable: {err})");
            return None;
        }
    };
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    admin.close().await.unwrap();
    let url = with_database(&admin_url, &name);
    let store = Store::open_with(config(&url)).await.unwrap();
    Some(TestDb {
        kind,
        url,
        store,
        admin_url: Some(admin_url),
        name,
        _dir: None,
    })
}

pub async fn drop_db(db: TestDb) {
    let TestDb {
        kind,
        store,
        admin_url,
        name,
        ..
    } = db;
    store.close().await.unwrap();
    if let Some(admin_url) = admin_url {
        let admin = Database::connect(&admin_url).await.unwrap();
        let sql = match kind {
            Kind::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            _ => format!("DROP DATABASE IF EXISTS {name}"),
        };
        admin.execute_unprepared(&sql).await.unwrap();
        admin.close().await.unwrap();
    }
}

/// Runs one test body against a fresh database of `kind`, then drops it.
pub async fn run<F, Fut>(kind: Kind, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = TestDb>,
{
    let Some(db) = create(kind).await else { return };
    let db = body(db).await;
    drop_db(db).await;
}

/// Defines `name::sqlite`, `name::postgres` and `name::mysql` from one body. The body gets a
/// `TestDb` and must give it back for clean-up.
#[macro_export]
macro_rules! store_test {
    ($name:ident, |$db:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($db: common::TestDb) -> common::TestDb {
                $body
                $db
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                common::run(common::Kind::Sqlite, body).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                common::run(common::Kind::Postgres, body).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                common::run(common::Kind::MySql, body).await
            }
        }
    };
}

/// The spec example `name`, with a fresh id (the examples reuse ids) unless `keep_id`.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/spec")
        .join(format!("{name}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

pub fn with_new_id(mut doc: serde_json::Value) -> serde_json::Value {
    doc["id"] = serde_json::json!(coar_model::new_id());
    doc
}

/// The bytes and parsed form of a document.
pub fn parsed(doc: &serde_json::Value) -> (Vec<u8>, coar_model::Notification) {
    let bytes = serde_json::to_vec_pretty(doc).unwrap();
    let n = coar_model::Notification::from_slice(&bytes).unwrap();
    (bytes, n)
}

pub const SPEC_1_0_1: [&str; 12] = [
    "accept",
    "announce-endorsement",
    "announce-relationship",
    "announce-resource",
    "announce-review",
    "reject",
    "request-endorsement",
    "request-review",
    "tentative-accept",
    "tentative-reject",
    "undo-offer",
    "unprocessable",
];

/// Stores `n` Announce Endorsements with fresh ids; their keys.
pub async fn insert_many(db: &TestDb, n: usize) -> Vec<i64> {
    let mut keys = Vec::new();
    for _ in 0..n {
        let (bytes, note) = parsed(&with_new_id(fixture("announce-endorsement")));
        keys.push(
            db.store
                .insert(coar_store::NewNotification::inbound(
                    &note,
                    &bytes,
                    "application/ld+json",
                ))
                .await
                .unwrap()
                .record()
                .key,
        );
    }
    keys
}
