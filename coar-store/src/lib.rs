//! Persistence for a COAR Notify service.
//!
//! This crate owns every SQL statement of the project: notifications in both directions with
//! their raw bodies and indexed columns, the durable processing queue with its state machine
//! and attempt history, the service registry, and request threads. It runs on SQLite (the
//! embedded default), PostgreSQL (many server processes on one database) and MariaDB/MySQL,
//! through SeaORM, with migrations applied at open.
//!
//! It deliberately does no HTTP, no JSON-LD processing and no validation: it stores what the
//! layers above have parsed (a [`coar_model::Notification`]) and answers their queries.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use coar_model::{Item, Notification, RequestReview, Resource, Service};
//! use coar_store::{Direction, Inserted, NewNotification, State, Store};
//! // `sqlite://coar-notify.db?mode=rwc` for a file; `postgres://…` or `mysql://…` alike.
//! let store = Store::open("sqlite::memory:").await?;
//! let n: Notification = RequestReview::builder(
//!     Service::new("https://repo.example/", "https://repo.example/inbox/"),
//!     Service::new("https://review.example/", "https://review.example/inbox/"),
//!     Resource::landing_page("https://repo.example/item/1/")
//!         .item(Item::new("https://repo.example/item/1/paper.pdf", "application/pdf")),
//! )
//! .build()
//! .unwrap()
//! .into();
//! let body = n.to_json_string().into_bytes();
//! let stored = store
//!     .insert(NewNotification::inbound(&n, &body, "application/ld+json"))
//!     .await?;
//! assert!(matches!(stored, Inserted::New(_)));
//! // The same body again is recognised, not stored twice.
//! let again = store
//!     .insert(NewNotification::inbound(&n, &body, "application/ld+json"))
//!     .await?;
//! assert!(matches!(again, Inserted::Duplicate(_)));
//! // A worker claims what is due, handles it, and records the outcome.
//! let claims = store.claim(Direction::Inbound, "worker-1", 10).await?;
//! assert_eq!(claims.len(), 1);
//! for claim in &claims {
//!     store.complete(claim, None).await?;
//! }
//! let record = store.get(stored.record().key).await?.unwrap();
//! assert_eq!(record.state, State::Processed);
//! assert_eq!(record.body, body, "the raw body is kept byte for byte");
//! # Ok::<(), coar_store::StoreError>(())
//! # }).unwrap();
//! ```
//!
//! # Durability
//! SQLite runs in WAL mode with `synchronous=FULL`: a transaction that returned is on disk,
//! even across power loss, at the cost of one fsync per commit (NORMAL would risk the last
//! commits). PostgreSQL and MariaDB use their own durable defaults.

mod cidr;
mod entity;
mod keys;
pub mod migration;
mod model;
mod notifications;
mod queries;
mod queue;
mod registry;
mod services;
mod threads;
mod transfer;

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

pub use cidr::Cidr;
pub use keys::{NewSigningKey, StoredSigningKey};
pub use model::{Attempt, Direction, Filter, Page, QueuePolicy, Record, State, Stats};
pub use notifications::{HandOver, Inserted, NewNotification, Written};
pub use queue::{Claim, Delivery, Failure};
pub use services::{
    Attribution, Claims, Evidence, FETCHED_KEYS_LIFETIME, MAX_KEYS_BYTES, MAX_SERVICE_KEYS,
    NotReleased, RegisteredService, Released, ServiceInput, ServiceKey, Sighting, SignaturePolicy,
    UnknownSender, Untrusted,
};
pub use threads::{Thread, ThreadStatus};
pub use transfer::{Counts as TransferCounts, FORMAT as EXPORT_FORMAT, VERSION as EXPORT_VERSION};

/// What went wrong in the store. Every variant but [`StoreError::Database`] is the caller's
/// to act on; `Database` means the database itself failed (unreachable, full, …).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another notification with the same id from the same origin is already stored, with a
    /// different body.
    #[error(
        "a different notification with id {notification_id:?} from {origin:?} is already stored"
    )]
    Conflict {
        /// The stored one's key.
        key: i64,
        /// The notification id.
        notification_id: String,
        /// The origin id.
        origin: String,
    },
    /// No such record.
    #[error("no record {0}")]
    NotFound(i64),
    /// The claim's lease expired and another worker holds the notification now.
    #[error("the lease on notification {0} was lost: another worker has it")]
    LeaseLost(i64),
    /// An input value is not acceptable.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// Which input.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The URL names no supported database.
    #[error("unsupported database URL {0:?}: use sqlite://, postgres:// or mysql://")]
    UnsupportedUrl(String),
    /// The URL names a database this build leaves out (its cargo feature is off).
    #[error("this build of coar-store cannot open {0} databases: enable its `{0}` feature")]
    NotBuilt(&'static str),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    /// The store cannot take the request now (e.g. its writer task has stopped).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, one file, the embedded default.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MariaDB or MySQL.
    MySql,
}

impl Backend {
    /// The cargo feature that builds it in: `sqlite`, `postgres` or `mysql`.
    pub fn feature(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }

    /// Whether this build of coar-store can open it.
    pub fn built(self) -> bool {
        match self {
            Backend::Sqlite => cfg!(feature = "sqlite"),
            Backend::Postgres => cfg!(feature = "postgres"),
            Backend::MySql => cfg!(feature = "mysql"),
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://path.db`, `postgres://…` or `mysql://…`.
    pub url: String,
    /// Retry behaviour of the queue.
    pub policy: QueuePolicy,
    /// How long a claim holds a notification before another worker may take it.
    pub lease: Duration,
    /// Apply migrations when opening (default true).
    pub migrate: bool,
    /// Connection pool size (default 8; SQLite still has one writer at a time).
    pub max_connections: u32,
    /// How long [`Store::service_by_id`] may answer from memory (default 2 s; zero turns
    /// the cache off). Changes made through this `Store` (or its clones) are seen at once;
    /// changes made by another process on the same database, within this time.
    pub service_cache_ttl: Duration,
    /// The clock of the in-memory caches (the system's; tests move a manual one).
    pub clock: Clock,
}

/// The monotonic clock the store's in-memory caches read: the system's, or a manual one
/// that moves only when told ([`Clock::advance`]), so that a test of a time-to-live never
/// sleeps. Times written to the database are wall-clock times, given explicitly where the
/// queue is tested (`claim_at`).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<std::sync::Arc<(std::time::Instant, std::sync::atomic::AtomicU64)>>,
}

impl Clock {
    /// The system's monotonic clock (the default).
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that stands still until [`Clock::advance`]d; clones share it.
    pub fn manual() -> Clock {
        Clock {
            manual: Some(std::sync::Arc::new((
                std::time::Instant::now(),
                std::sync::atomic::AtomicU64::new(0),
            ))),
        }
    }

    /// Now.
    pub fn now(&self) -> std::time::Instant {
        match &self.manual {
            None => std::time::Instant::now(),
            Some(m) => m.0 + Duration::from_nanos(m.1.load(std::sync::atomic::Ordering::SeqCst)),
        }
    }

    /// Moves a manual clock forward by `by` (the system's cannot be moved: no effect).
    pub fn advance(&self, by: Duration) {
        if let Some(m) = &self.manual {
            let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            m.1.fetch_add(nanos, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl StoreConfig {
    /// Defaults for a URL.
    pub fn new(url: impl Into<String>) -> StoreConfig {
        StoreConfig {
            url: url.into(),
            policy: QueuePolicy::default(),
            lease: Duration::from_secs(300),
            migrate: true,
            max_connections: 8,
            service_cache_ttl: Duration::from_secs(2),
            clock: Clock::system(),
        }
    }
}

/// The store: a connection pool and the queue policy. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    backend: Backend,
    policy: QueuePolicy,
    lease: Duration,
    services: std::sync::Arc<services::ServiceCache>,
    /// SQLite's one writer, taken in this process: write transactions queue here in order
    /// instead of meeting SQLite's busy handler, which sleeps (1 ms, 2 ms, 5 ms, … 100 ms)
    /// between tries and made the inbox wait behind the workers for up to seconds.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Where write transactions run. On SQLite, a pool of its own with one connection:
    /// SQLite has one writer anyway, and a connection that only this process's writes use
    /// keeps its page cache across transactions (a write on another connection of the pool
    /// makes each reader drop its cache and read the pages again). Elsewhere, `db`.
    writes: DatabaseConnection,
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates, with default settings.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(StoreConfig::new(url)).await
    }

    /// Opens with explicit settings.
    pub async fn open_with(config: StoreConfig) -> Result<Store, StoreError> {
        let backend = if config.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if config.url.starts_with("postgres://") || config.url.starts_with("postgresql://") {
            Backend::Postgres
        } else if config.url.starts_with("mysql://") || config.url.starts_with("mariadb://") {
            Backend::MySql
        } else {
            return Err(StoreError::UnsupportedUrl(config.url));
        };
        if !backend.built() {
            return Err(StoreError::NotBuilt(backend.feature()));
        }
        let url = config.url.replacen("mariadb://", "mysql://", 1);
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(config.max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        #[cfg(feature = "sqlite")]
        if backend == Backend::Sqlite {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            // A connection to a local file cannot go stale: checking each one out with a
            // round trip to its thread only delays every transaction.
            options.test_before_acquire(false);
            options.map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
            });
        }
        let db = Database::connect(options.clone()).await?;
        // An in-memory database is one per connection: it must keep the one pool.
        let in_memory = config.url.contains(":memory:") || config.url.contains("mode=memory");
        let writes = if backend == Backend::Sqlite && !in_memory {
            options.max_connections(1).min_connections(1);
            Database::connect(options).await?
        } else {
            db.clone()
        };
        let store = Store {
            db,
            writes,
            backend,
            policy: config.policy,
            lease: config.lease,
            services: std::sync::Arc::new(services::ServiceCache::new(
                config.service_cache_ttl,
                config.clock,
            )),
            writer: std::sync::Arc::default(),
        };
        if config.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Begins a transaction that will write. On SQLite it first waits for this process's
    /// turn to write (the guard, held until the transaction ends); other databases lock rows,
    /// not the whole database, and need no turn.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<
        (
            Option<tokio::sync::OwnedMutexGuard<()>>,
            sea_orm::DatabaseTransaction,
        ),
        DbErr,
    > {
        let turn = match self.backend {
            Backend::Sqlite => Some(self.writer.clone().lock_owned().await),
            Backend::Postgres | Backend::MySql => None,
        };
        Ok((turn, sea_orm::TransactionTrait::begin(&self.writes).await?))
    }

    /// Applies every pending migration. Safe to run any number of times, from several
    /// processes at once: on PostgreSQL and MariaDB a database lock lets one process migrate
    /// while the others wait, then find nothing to do (two replicas starting together on a
    /// fresh database otherwise race in the catalog and one fails); SQLite's write lock does
    /// the same.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        use sea_orm::{ConnectionTrait, TransactionTrait};
        // The lock is held by one connection (a transaction keeps it) while the migrations
        // run on others of the pool.
        const LOCK: &str = "coar_notify_migrations";
        match self.backend {
            Backend::Sqlite => migration::up(&self.db).await?,
            Backend::Postgres => {
                let lock = self.db.begin().await?;
                // Released when the transaction ends, whatever happens below.
                lock.execute_unprepared(&format!(
                    "SELECT pg_advisory_xact_lock(hashtext('{LOCK}'))"
                ))
                .await?;
                let result = migration::up(&self.db).await;
                lock.commit().await?;
                result?;
            }
            Backend::MySql => {
                let lock = self.db.begin().await?;
                lock.execute_unprepared(&format!("DO GET_LOCK('{LOCK}', 600)"))
                    .await?;
                let result = migration::up(&self.db).await;
                // GET_LOCK belongs to the connection, which goes back to the pool: release it.
                lock.execute_unprepared(&format!("DO RELEASE_LOCK('{LOCK}')"))
                    .await?;
                lock.commit().await?;
                result?;
            }
        }
        Ok(())
    }

    /// The database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The queue policy.
    pub fn policy(&self) -> QueuePolicy {
        self.policy
    }

    /// Checks that the database answers (for health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await?;
        self.writes.close().await?;
        Ok(())
    }
}

/// Whether an error is a deadlock or serialization failure that the database resolved by
/// rolling our transaction back (SQLSTATE 40001 or 40P01): running it again is correct.
fn is_transient(err: &StoreError) -> bool {
    let StoreError::Database(db) = err else {
        return false;
    };
    let code = match db {
        DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e))
        | DbErr::Query(sea_orm::RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|d| d.code().map(|c| c.into_owned())),
        _ => None,
    };
    matches!(code.as_deref(), Some("40001" | "40P01"))
}

/// Evaluates a transaction's expression again (up to 10 times) when the database rolled it
/// back to break a deadlock, as InnoDB does under concurrent claiming. (A macro rather than
/// a function taking an async closure: the futures must stay `Send`.)
macro_rules! retry {
    ($run:expr) => {{
        let mut tries = 0;
        loop {
            match $run {
                Err(err) if $crate::is_transient(&err) && tries < 10 => tries += 1,
                other => break other,
            }
        }
    }};
}
pub(crate) use retry;

/// SHA-256 of `bytes`, lower-case hex: how tokens, dedup keys and bodies are hashed here.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
