//! Schema migrations, applied by [`crate::Store::open`] and by `coar-notify migrate`.
//!
//! Each migration is forward-only and additive; a database created by any earlier version is
//! brought up to date without losing rows.

use sea_orm::DatabaseBackend;
use sea_orm_migration::prelude::*;

/// Every migration, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(M0001Initial), Box::new(M0002SenderEvidence)]
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

#[derive(DeriveMigrationName)]
struct M0001Initial;

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0001Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
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

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Services::Table.into_iden(),
            Attempts::Table.into_iden(),
            NotificationLinks::Table.into_iden(),
            Notifications::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// What a sender proved at receipt, beyond its address (kept since M0001): the SHA-256 of
/// the bearer token it presented, so that releasing quarantine re-checks it against the
/// service's tokens of the day.
struct M0002SenderEvidence;

/// Named by hand: `DeriveMigrationName` names a migration after its file, which would give
/// every migration here the first one's name (`migration`, which M0001 keeps).
impl MigrationName for M0002SenderEvidence {
    fn name(&self) -> &str {
        "m0002_sender_evidence"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for M0002SenderEvidence {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
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

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .drop_column(Notifications::BearerSha256)
                    .to_owned(),
            )
            .await
    }
}
