//! The benchmark's durable-write limit: the least a durable inbox must do, and nothing else.
//!
//! Bare axum parses the JSON body and hands (a unique dedup key, the raw body) to a writer,
//! which commits whatever has accumulated in one transaction (group commit) and only then
//! lets each request answer 201. No JSON-LD, no validation, no trust, no queue, no links:
//! `cargo xtask bench` reports `coar-notify serve` as a ratio of this, measured in the same
//! run.
//!
//! - `durable sqlite://FILE ADDR`: one writer thread on one connection, WAL and
//!   `synchronous=FULL` (what the server promises before a 2xx).
//! - `durable postgres://… ADDR`: four writers on a pool of four connections, as the server
//!   runs its PostgreSQL inbox writers.

use std::{sync::Arc, time::Duration};

use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use sha2::{Digest, Sha256};
use sqlx::{Connection, QueryBuilder};
use tokio::sync::{Mutex, mpsc, oneshot};

/// The most rows committed together (as the server's inbox writer).
const MAX_BATCH: usize = 256;

/// A row to commit and the request waiting for it.
type Job = ((String, Bytes), oneshot::Sender<bool>);

/// Takes what has accumulated, at most [`MAX_BATCH`].
async fn next_batch(rx: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let mut rx = rx.lock().await;
    let mut jobs = vec![rx.recv().await?];
    while jobs.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    Some(jobs)
}

/// Answers each request of a batch with whether its commit succeeded.
fn answer(jobs: Vec<Job>, committed: bool) {
    for (_, reply) in jobs {
        let _ = reply.send(committed);
    }
}

async fn sqlite_writer(
    url: String,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
) -> Result<(), sqlx::Error> {
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
    let options = options
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY, \
         dedup_key TEXT NOT NULL UNIQUE, body BLOB NOT NULL)",
    )
    .execute(&mut conn)
    .await?;
    while let Some(jobs) = next_batch(&rx).await {
        let committed = insert::<sqlx::Sqlite>(&mut conn, &jobs).await.is_ok();
        answer(jobs, committed);
    }
    Ok(())
}

async fn postgres_writer(pool: sqlx::PgPool, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    while let Some(jobs) = next_batch(&rx).await {
        let committed = match pool.acquire().await {
            Ok(mut conn) => insert::<sqlx::Postgres>(&mut conn, &jobs).await.is_ok(),
            Err(_) => false,
        };
        answer(jobs, committed);
    }
}

/// One transaction: a multi-row INSERT that skips repeats, then the commit.
async fn insert<DB>(conn: &mut DB::Connection, jobs: &[Job]) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DB::Arguments: sqlx::IntoArguments<DB>,
{
    let mut tx = sqlx::Connection::begin(conn).await?;
    let mut insert = QueryBuilder::<DB>::new("INSERT INTO inbox (dedup_key, body) ");
    insert.push_values(jobs, |mut row, ((key, body), _)| {
        row.push_bind(key.clone()).push_bind(body.to_vec());
    });
    insert.push(" ON CONFLICT (dedup_key) DO NOTHING");
    insert.build().execute(&mut *tx).await?;
    tx.commit().await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: durable DATABASE_URL [ADDR]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8092".into());
    let (tx, rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
    let rx = Arc::new(Mutex::new(rx));
    if url.starts_with("sqlite:") {
        // One writer thread, as SQLite has one writer anyway.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (rx, url) = (rx.clone(), url.clone());
        std::thread::spawn(move || {
            if let Err(e) = runtime.block_on(sqlite_writer(url, rx)) {
                eprintln!("the SQLite writer stopped: {e}");
                std::process::exit(1);
            }
        });
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await?;
        sqlx::query("DROP TABLE IF EXISTS inbox")
            .execute(&pool)
            .await?;
        sqlx::query(
            "CREATE TABLE inbox (id BIGSERIAL PRIMARY KEY, \
             dedup_key TEXT NOT NULL UNIQUE, body BYTEA NOT NULL)",
        )
        .execute(&pool)
        .await?;
        for _ in 0..4 {
            tokio::spawn(postgres_writer(pool.clone(), rx.clone()));
        }
    }
    let app = Router::new().route("/inbox", post(receive)).with_state(tx);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// Parses the body, keys it by its origin and id, and waits for its commit.
async fn receive(State(writer): State<mpsc::Sender<Job>>, body: Bytes) -> StatusCode {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let (Some(id), origin) = (doc["id"].as_str(), doc["origin"]["id"].as_str()) else {
        return StatusCode::BAD_REQUEST;
    };
    let key = hex::encode(Sha256::digest(
        format!("inbound\n{}\n{id}", origin.unwrap_or("")).as_bytes(),
    ));
    let (reply, committed) = oneshot::channel();
    if writer.send(((key, body), reply)).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match committed.await {
        Ok(true) => StatusCode::CREATED,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}
