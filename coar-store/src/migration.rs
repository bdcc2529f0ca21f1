//! Schema migrations, applied by [`crate::Store::open`] and by `coar-notify migrate`.
//!
//! Each migration is forward-only, additive and idempotent; a database created by any earlier
//! version is brought up to date without losing rows. Which ran is recorded in
//! `seaql_migrations` (`version`, `applied_at`), the table and names sea-orm-migration used
//! before this small runner replaced it (it pulled a logging subscriber into the library),
//! so databases it migrated carry on.

use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, DeriveIden, ExprTrait, Statement,
    sea_query::{
        ColumnDef, Index, IndexCreateStatement, IntoIden, Query, Table, TableAlterStatement,
        TableCreateStatement,
    },
};

/// Every migration's name, in order.
const MIGRATIONS: [&str; 5] = [
    // Named `migration` by sea-orm-migration's derive, after the file it was in.
    "migration",
    "m0002_sender_evidence",
    "m0003_delivery_threads",
    "m0004_signing_keys",
    "m0005_sender_signatures",
];

/// The schema a database is at once every migration ran: the last migration's name.
pub(crate) const SCHEMA: &str = MIGRATIONS[MIGRATIONS.len() - 1];

async fn run_one(name: &str, schema: &Schema<'_>) -> Result<(), DbErr> {
    match name {
        "migration" => m0001_initial(schema).await,
        "m0002_sender_evidence" => m0002_sender_evidence(schema).await,
        "m0003_delivery_threads" => m0003_delivery_threads(schema).await,
        "m0004_signing_keys" => m0004_signing_keys(schema).await,
        "m0005_sender_signatures" => m0005_sender_signatures(schema).await,
        other => unreachable!("no migration {other}"),
    }
}

#[derive(DeriveIden)]
enum SeaqlMigrations {
    Table,
    Version,
    AppliedAt,
}

/// Applies the migrations not yet recorded, in order. The caller makes sure one process
/// at a time runs this ([`crate::Store::migrate`]).
pub(crate) async fn up(db: &DatabaseConnection) -> Result<(), DbErr> {
    let schema = Schema { db };
    schema
        .create_table(
            Table::create()
                .table(SeaqlMigrations::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(SeaqlMigrations::Version)
                        .string_len(255)
                        .not_null()
                        .primary_key(),
                )
                .col(int64(SeaqlMigrations::AppliedAt))
                .to_owned(),
        )
        .await?;
    let applied: Vec<String> = db
        .query_all(
            &Query::select()
                .column(SeaqlMigrations::Version)
                .from(SeaqlMigrations::Table)
                .to_owned(),
        )
        .await?
        .iter()
        .map(|row| row.try_get::<String>("", "version"))
        .collect::<Result<_, _>>()?;
    for name in MIGRATIONS {
        if applied.iter().any(|a| a == name) {
            continue;
        }
        run_one(name, &schema).await?;
        db.execute(
            &Query::insert()
                .into_table(SeaqlMigrations::Table)
                .columns([SeaqlMigrations::Version, SeaqlMigrations::AppliedAt])
                .values_panic([name.into(), chrono::Utc::now().timestamp().into()])
                .to_owned(),
        )
        .await?;
    }
    Ok(())
}

/// The schema operations the migrations use: sea-query statements, built for the database's
/// backend.
struct Schema<'a> {
    db: &'a DatabaseConnection,
}

impl Schema<'_> {
    fn get_database_backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    async fn create_table(&self, statement: TableCreateStatement) -> Result<(), DbErr> {
        self.db.execute(&statement).await.map(drop)
    }

    async fn create_index(&self, statement: IndexCreateStatement) -> Result<(), DbErr> {
        self.db.execute(&statement).await.map(drop)
    }

    async fn alter_table(&self, statement: TableAlterStatement) -> Result<(), DbErr> {
        self.db.execute(&statement).await.map(drop)
    }

    /// Whether `table` has `column`, from the database's catalog.
    async fn has_column(&self, table: &str, column: &str) -> Result<bool, DbErr> {
        let backend = self.get_database_backend();
        let sql = match backend {
            DatabaseBackend::Sqlite => {
                "SELECT COUNT(*) AS n FROM pragma_table_info(?) WHERE name = ?"
            }
            DatabaseBackend::Postgres => {
                "SELECT COUNT(*) AS n FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2"
            }
            _ => {
                "SELECT COUNT(*) AS n FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?"
            }
        };
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [table.into(), column.into()],
            ))
            .await?;
        Ok(row
            .map(|r| r.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0)
            > 0)
    }
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    Direction,
    DedupKey,
    NotificationId,
    Pattern,
    Types,
    OriginId,
    OriginInbox,
    TargetId,
    TargetInbox,
    ActorId,
    ObjectId,
    ContextId,
    CiteAs,
    InReplyTo,
    Body,
    MediaType,
    Sha256,
    ReceivedAt,
    ReceivedDay,
    RemoteAddr,
    BearerSha256,
    SignatureKey,
    SignatureHash,
    ThreadKey,
    ServiceId,
    State,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    LeaseOwner,
    LastError,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum NotificationLinks {
    Table,
    Id,
    Notification,
    Role,
    Uri,
    UriHash,
}

#[derive(DeriveIden)]
enum Attempts {
    Table,
    Id,
    Notification,
    Attempt,
    Worker,
    StartedAt,
    FinishedAt,
    Outcome,
    Error,
    HttpStatus,
    ResponseExcerpt,
}

#[derive(DeriveIden)]
enum Services {
    Table,
    Id,
    Name,
    ServiceUri,
    ServiceUriHash,
    InboxUrl,
    Enabled,
    InboundPatterns,
    OutboundPatterns,
    Cidrs,
    TokenHashes,
    SignaturePolicy,
    PublicKeys,
    KeySetUrl,
    FetchedKeys,
    KeysFetchedAt,
    CreatedAt,
    UpdatedAt,
}

fn pk(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .take()
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().not_null().take()
}

fn text_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().null().take()
}

fn short(col: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(col).string_len(len).not_null().take()
}

fn short_null(col: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(col).string_len(len).null().take()
}

fn int64(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().take()
}

fn int64_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().null().take()
}

/// The tables and indexes of the first release.
async fn m0001_initial(manager: &Schema<'_>) -> Result<(), DbErr> {
    // Bodies up to the server's limit and beyond: MySQL's BLOB stops at 64 KiB.
    let body = match manager.get_database_backend() {
        DatabaseBackend::MySql => ColumnDef::new(Notifications::Body)
            .custom("LONGBLOB")
            .not_null()
            .take(),
        _ => ColumnDef::new(Notifications::Body).blob().not_null().take(),
    };
    manager
        .create_table(
            Table::create()
                .table(Notifications::Table)
                .if_not_exists()
                .col(pk(Notifications::Id))
                .col(short(Notifications::Direction, 16))
                .col(short(Notifications::DedupKey, 64))
                .col(text(Notifications::NotificationId))
                .col(short_null(Notifications::Pattern, 64))
                .col(text(Notifications::Types))
                .col(text_null(Notifications::OriginId))
                .col(text_null(Notifications::OriginInbox))
                .col(text_null(Notifications::TargetId))
                .col(text_null(Notifications::TargetInbox))
                .col(text_null(Notifications::ActorId))
                .col(text_null(Notifications::ObjectId))
                .col(text_null(Notifications::ContextId))
                .col(text(Notifications::CiteAs))
                .col(text_null(Notifications::InReplyTo))
                .col(body)
                .col(short(Notifications::MediaType, 255))
                .col(short(Notifications::Sha256, 64))
                .col(int64(Notifications::ReceivedAt))
                .col(short(Notifications::ReceivedDay, 10))
                .col(short_null(Notifications::RemoteAddr, 64))
                .col(int64_null(Notifications::ServiceId))
                .col(short(Notifications::State, 32))
                .col(
                    ColumnDef::new(Notifications::Attempts)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(int64_null(Notifications::NextAttemptAt))
                .col(int64_null(Notifications::LeaseUntil))
                .col(short_null(Notifications::LeaseOwner, 64))
                .col(text_null(Notifications::LastError))
                .col(int64(Notifications::UpdatedAt))
                .to_owned(),
        )
        .await?;
    for (name, cols, unique) in [
        (
            "ux_notifications_dedup",
            vec![Notifications::DedupKey],
            true,
        ),
        (
            "ix_notifications_queue",
            vec![
                Notifications::State,
                Notifications::Direction,
                Notifications::Id,
            ],
            false,
        ),
        (
            "ix_notifications_received",
            vec![Notifications::ReceivedAt],
            false,
        ),
        (
            "ix_notifications_day",
            vec![Notifications::ReceivedDay],
            false,
        ),
    ] {
        let mut index = Index::create()
            .name(name)
            .table(Notifications::Table)
            .if_not_exists()
            .to_owned();
        for c in cols {
            index.col(c);
        }
        if unique {
            index.unique();
        }
        manager.create_index(index).await?;
    }

    manager
        .create_table(
            Table::create()
                .table(NotificationLinks::Table)
                .if_not_exists()
                .col(pk(NotificationLinks::Id))
                .col(int64(NotificationLinks::Notification))
                .col(short(NotificationLinks::Role, 32))
                .col(text(NotificationLinks::Uri))
                .col(short(NotificationLinks::UriHash, 64))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("ix_links_uri")
                .table(NotificationLinks::Table)
                .col(NotificationLinks::UriHash)
                .col(NotificationLinks::Role)
                .col(NotificationLinks::Notification)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("ix_links_notification")
                .table(NotificationLinks::Table)
                .col(NotificationLinks::Notification)
                .if_not_exists()
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(Attempts::Table)
                .if_not_exists()
                .col(pk(Attempts::Id))
                .col(int64(Attempts::Notification))
                .col(ColumnDef::new(Attempts::Attempt).integer().not_null())
                .col(short(Attempts::Worker, 128))
                .col(int64(Attempts::StartedAt))
                .col(int64_null(Attempts::FinishedAt))
                .col(short(Attempts::Outcome, 32))
                .col(text_null(Attempts::Error))
                .col(ColumnDef::new(Attempts::HttpStatus).integer().null())
                .col(text_null(Attempts::ResponseExcerpt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("ix_attempts_notification")
                .table(Attempts::Table)
                .col(Attempts::Notification)
                .col(Attempts::Attempt)
                .if_not_exists()
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(Services::Table)
                .if_not_exists()
                .col(pk(Services::Id))
                .col(short(Services::Name, 255))
                .col(text(Services::ServiceUri))
                .col(short(Services::ServiceUriHash, 64))
                .col(text_null(Services::InboxUrl))
                .col(ColumnDef::new(Services::Enabled).boolean().not_null())
                .col(text(Services::InboundPatterns))
                .col(text(Services::OutboundPatterns))
                .col(text(Services::Cidrs))
                .col(text(Services::TokenHashes))
                .col(int64(Services::CreatedAt))
                .col(int64(Services::UpdatedAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("ux_services_uri")
                .table(Services::Table)
                .col(Services::ServiceUriHash)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await
}

/// What a sender proved at receipt, beyond its address (kept since M0001): the SHA-256 of
/// the bearer token it presented, so that releasing quarantine re-checks it against the
/// service's tokens of the day.
async fn m0002_sender_evidence(manager: &Schema<'_>) -> Result<(), DbErr> {
    if manager.has_column("notifications", "bearer_sha256").await? {
        return Ok(());
    }
    manager
        .alter_table(
            Table::alter()
                .table(Notifications::Table)
                .add_column(short_null(Notifications::BearerSha256, 64))
                .to_owned(),
        )
        .await
}

#[derive(DeriveIden)]
enum QueueLocks {
    Table,
    Name,
}

/// Outbound order within a thread only (was: one lane per target inbox). Each outbound
/// notification gets a thread key (its target inbox and the activity it answers, hashed:
/// [`crate::notifications::thread_key`]), indexed so that a claim finds an older pending
/// notification of the same thread in one lookup; pending ones stored before are keyed
/// here. `queue_locks` holds the row outbound claims lock on PostgreSQL and MariaDB, so that
/// two claimers never both fill an inbox's last delivery slot.
async fn m0003_delivery_threads(manager: &Schema<'_>) -> Result<(), DbErr> {
    if !manager.has_column("notifications", "thread_key").await? {
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .add_column(short_null(Notifications::ThreadKey, 64))
                    .to_owned(),
            )
            .await?;
    }
    manager
        .create_index(
            Index::create()
                .name("ix_notifications_thread")
                .table(Notifications::Table)
                .col(Notifications::ThreadKey)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table(QueueLocks::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(QueueLocks::Name)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .to_owned(),
        )
        .await?;
    let db = manager.db;
    let backend = manager.get_database_backend();
    let exists = db
        .query_one(
            &Query::select()
                .column(QueueLocks::Name)
                .from(QueueLocks::Table)
                .and_where(sea_orm::sea_query::Expr::col(QueueLocks::Name).eq("outbound"))
                .to_owned(),
        )
        .await?
        .is_some();
    if !exists {
        db.execute(
            &Query::insert()
                .into_table(QueueLocks::Table)
                .columns([QueueLocks::Name])
                .values_panic(["outbound".into()])
                .to_owned(),
        )
        .await?;
    }
    // Pending outbound notifications stored before this migration.
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT id, target_inbox, target_id, in_reply_to, notification_id FROM notifications \
             WHERE direction = 'outbound' AND thread_key IS NULL \
             AND state IN ('queued', 'retry_scheduled', 'processing')",
        ))
        .await?;
    for row in rows {
        let id: i64 = row.try_get("", "id")?;
        let inbox: Option<String> = row.try_get("", "target_inbox")?;
        let target: Option<String> = row.try_get("", "target_id")?;
        let in_reply_to: Option<String> = row.try_get("", "in_reply_to")?;
        let own: String = row.try_get("", "notification_id")?;
        let key = crate::notifications::thread_key(
            inbox.or(target).as_deref().unwrap_or(""),
            in_reply_to.as_deref().unwrap_or(&own),
        );
        db.execute(
            &Query::update()
                .table(Notifications::Table)
                .value(Notifications::ThreadKey, key)
                .and_where(sea_orm::sea_query::Expr::col(Notifications::Id).eq(id))
                .to_owned(),
        )
        .await?;
    }
    Ok(())
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Id,
    Kid,
    Alg,
    PrivatePkcs8,
    Slot,
    CreatedAt,
    RetiredAt,
}

/// The installation's own signing keys (HTTP Message Signatures on what it sends), shared by
/// every process on the database: `slot` is `active` for the one in use (a unique index:
/// two processes starting together cannot both make one) and `NULL` once retired.
async fn m0004_signing_keys(manager: &Schema<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(SigningKeys::Table)
                .if_not_exists()
                .col(pk(SigningKeys::Id))
                .col(short(SigningKeys::Kid, 128))
                .col(short(SigningKeys::Alg, 32))
                .col(text(SigningKeys::PrivatePkcs8))
                .col(short_null(SigningKeys::Slot, 16))
                .col(int64(SigningKeys::CreatedAt))
                .col(int64_null(SigningKeys::RetiredAt))
                .to_owned(),
        )
        .await?;
    for (name, col) in [
        ("ux_signing_keys_kid", SigningKeys::Kid),
        ("ux_signing_keys_slot", SigningKeys::Slot),
    ] {
        manager
            .create_index(
                Index::create()
                    .name(name)
                    .table(SigningKeys::Table)
                    .col(col)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// Senders that sign (HTTP Message Signatures): a service's signature policy, its public
/// keys (registered, and fetched from its key-set URL), and with each notification the
/// thumbprint of the key that verified its signature and the signature's hash (evidence
/// re-checked on release; the hash also recognises a replay of the same request).
async fn m0005_sender_signatures(manager: &Schema<'_>) -> Result<(), DbErr> {
    let services = [
        (
            "signature_policy",
            short_null(Services::SignaturePolicy, 32),
        ),
        ("public_keys", text_null(Services::PublicKeys)),
        ("key_set_url", text_null(Services::KeySetUrl)),
        ("fetched_keys", text_null(Services::FetchedKeys)),
        ("keys_fetched_at", int64_null(Services::KeysFetchedAt)),
    ];
    for (name, column) in services {
        if !manager.has_column("services", name).await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(Services::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
    }
    let notifications = [
        ("signature_key", short_null(Notifications::SignatureKey, 64)),
        (
            "signature_hash",
            short_null(Notifications::SignatureHash, 64),
        ),
    ];
    for (name, column) in notifications {
        if !manager.has_column("notifications", name).await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(Notifications::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
    }
    Ok(())
}
