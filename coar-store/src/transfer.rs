//! Moving an installation between databases: every row of every table, as JSON Lines, and
//! back into an empty database of any backend; and a consistent online copy of a SQLite
//! database.
//!
//! The export is the database, not a view of it: notifications with their raw bodies
//! (base64, byte for byte), queue states, leases, evidence and thread keys; every attempt;
//! every link; every service with its hashed tokens; each row with its key. One line per row
//! (`{"kind": "notification", …}`), in a fixed order (services, notifications, attempts,
//! links, signing keys, each by key), between a header naming the format and schema and a trailer
//! counting the rows, so that a cut-off file is refused rather than half imported. Exporting
//! what was imported gives the same bytes, whichever backends it went through.

use std::io::{BufRead, Write};

use sea_orm::{
    ConnectionTrait, DatabaseBackend, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use serde::{Deserialize, Serialize};

use crate::{Backend, Store, StoreError, entity};

/// The export format's name, in its header line.
pub const FORMAT: &str = "coar-notify-export";
/// The export format's version.
pub const VERSION: u32 = 1;

/// Rows read or written per statement.
const PAGE: u64 = 200;

/// How many rows of each kind an export or import moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Registered services.
    pub services: u64,
    /// Notifications, both directions.
    pub notifications: u64,
    /// Processing and delivery attempts.
    pub attempts: u64,
    /// Indexed links (the URIs each notification names).
    pub links: u64,
    /// The installation's signing keys (private keys: keep an export as safe as the
    /// database).
    #[serde(default)]
    pub signing_keys: u64,
}

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line {
    Header {
        format: String,
        version: u32,
        schema: String,
    },
    Service(entity::service::Model),
    Notification(Box<entity::notification::Model>),
    Attempt(entity::attempt::Model),
    Link(entity::link::Model),
    SigningKey(entity::signing_key::Model),
    End(Counts),
}

/// Serde for raw bytes as standard base64.
pub(crate) mod base64_bytes {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field: "import",
        message: message.into(),
    }
}

fn io_error(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot write the export: {e}"))
}

fn write_line(out: &mut impl Write, line: &Line) -> Result<(), StoreError> {
    serde_json::to_writer(&mut *out, line).map_err(|e| io_error(e.into()))?;
    out.write_all(b"\n").map_err(io_error)
}

/// Writes every row of `E`, by key, a page at a time.
macro_rules! export_table {
    ($store:expr, $out:expr, $module:ident, $variant:ident) => {{
        let mut after = i64::MIN;
        let mut count = 0u64;
        loop {
            let rows = entity::$module::Entity::find()
                .filter(sea_orm::ColumnTrait::gt(
                    &entity::$module::Column::Id,
                    after,
                ))
                .order_by_asc(entity::$module::Column::Id)
                .limit(PAGE)
                .all(&$store.db)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            for row in rows {
                write_line($out, &Line::$variant(row.into()))?;
                count += 1;
            }
        }
        count
    }};
}

impl Store {
    /// Writes every row of the database to `out` as JSON Lines (see the module's
    /// documentation), and returns how many of each kind. Run it on a quiet installation
    /// (the server stopped) for a consistent copy: rows are read a page at a time, not in
    /// one snapshot.
    pub async fn export(&self, out: &mut impl Write) -> Result<Counts, StoreError> {
        write_line(
            out,
            &Line::Header {
                format: FORMAT.into(),
                version: VERSION,
                schema: crate::migration::SCHEMA.into(),
            },
        )?;
        let counts = Counts {
            services: export_table!(self, out, service, Service),
            notifications: export_table!(self, out, notification, Notification),
            attempts: export_table!(self, out, attempt, Attempt),
            links: export_table!(self, out, link, Link),
            signing_keys: export_table!(self, out, signing_key, SigningKey),
        };
        write_line(out, &Line::End(counts))?;
        out.flush().map_err(io_error)?;
        Ok(counts)
    }

    /// Reads an [`export`](Self::export) into this database, which must be empty (migrated,
    /// with no services or notifications), in one transaction: all of it or, on any error,
    /// none. Keys are kept, and the key sequences continue after the highest imported.
    /// Refused: another format or version, another schema, lines out of order, a missing
    /// trailer or counts that disagree with it.
    pub async fn import(&self, input: impl BufRead) -> Result<Counts, StoreError> {
        if entity::service::Entity::find().count(&self.db).await? > 0
            || entity::notification::Entity::find().count(&self.db).await? > 0
        {
            return Err(invalid(
                "the database is not empty: import into a new, migrated database",
            ));
        }
        let (_turn, txn) = self.begin_write().await?;
        let mut lines = input.lines();
        let header = lines
            .next()
            .ok_or_else(|| invalid("the file is empty"))?
            .map_err(|e| invalid(e.to_string()))?;
        match serde_json::from_str(&header) {
            Ok(Line::Header {
                format,
                version,
                schema,
            }) if format == FORMAT && version == VERSION => {
                if schema != crate::migration::SCHEMA {
                    return Err(invalid(format!(
                        "the export is of schema {schema:?}, this database of {:?}: import with \
                         the version of coar-notify that exported it",
                        crate::migration::SCHEMA
                    )));
                }
            }
            _ => {
                return Err(invalid(format!(
                    "line 1 is not a {FORMAT} version {VERSION} header"
                )));
            }
        }
        let mut counts = Counts::default();
        let mut batch = Batch::default();
        // Kinds must come in the export's order: 0 services, 1 notifications, 2 attempts,
        // 3 links, 4 signing keys.
        let mut stage = 0;
        let mut end = None;
        for (n, line) in lines.enumerate() {
            let number = n + 2;
            let line = line.map_err(|e| invalid(format!("line {number}: {e}")))?;
            if end.is_some() {
                return Err(invalid(format!("line {number}: rows after the trailer")));
            }
            let parsed: Line =
                serde_json::from_str(&line).map_err(|e| invalid(format!("line {number}: {e}")))?;
            let kind = match &parsed {
                Line::Service(_) => 0,
                Line::Notification(_) => 1,
                Line::Attempt(_) => 2,
                Line::Link(_) => 3,
                Line::SigningKey(_) => 4,
                Line::End(_) => 5,
                Line::Header { .. } => {
                    return Err(invalid(format!("line {number}: a second header")));
                }
            };
            if kind < stage {
                return Err(invalid(format!("line {number}: out of order")));
            }
            if kind > stage {
                batch.flush(&txn).await?;
                stage = kind;
                if kind == 4 {
                    // The installation keeps its identity: its keys replace any the new
                    // database made for itself when a server first opened it.
                    entity::signing_key::Entity::delete_many()
                        .exec(&txn)
                        .await?;
                }
            }
            match parsed {
                Line::Service(m) => {
                    counts.services += 1;
                    batch.services.push(m.into_active_model());
                }
                Line::Notification(m) => {
                    counts.notifications += 1;
                    batch.notifications.push((*m).into_active_model());
                }
                Line::Attempt(m) => {
                    counts.attempts += 1;
                    batch.attempts.push(m.into_active_model());
                }
                Line::Link(m) => {
                    counts.links += 1;
                    batch.links.push(m.into_active_model());
                }
                Line::SigningKey(m) => {
                    counts.signing_keys += 1;
                    batch.signing_keys.push(m.into_active_model());
                }
                Line::End(expected) => end = Some(expected),
                Line::Header { .. } => unreachable!("refused above"),
            }
            if batch.len() as u64 >= PAGE {
                batch.flush(&txn).await?;
            }
        }
        batch.flush(&txn).await?;
        match end {
            None => return Err(invalid("the file ends without its trailer: it was cut off")),
            Some(expected) if expected != counts => {
                return Err(invalid(format!(
                    "the trailer counts {expected:?}, the file holds {counts:?}"
                )));
            }
            Some(_) => {}
        }
        if self.backend == Backend::Postgres {
            // Explicit keys leave PostgreSQL's sequences behind; move each past its highest.
            for table in [
                "services",
                "notifications",
                "attempts",
                "notification_links",
                "signing_keys",
            ] {
                txn.execute_raw(Statement::from_string(
                    DatabaseBackend::Postgres,
                    format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                         COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                    ),
                ))
                .await?;
            }
        }
        txn.commit().await?;
        self.services.clear();
        Ok(counts)
    }

    /// A consistent copy of a SQLite database at `path` (which must not exist), taken while
    /// the server runs: SQLite's `VACUUM INTO`, one read transaction, so the copy is the
    /// database as of one moment, compacted. Other databases have their own tools
    /// (`pg_dump`, `mariadb-dump`), or [`export`](Self::export).
    pub async fn backup(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Invalid {
                field: "backup",
                message: "backup copies SQLite databases; use pg_dump or mariadb-dump, or \
                          `coar-notify export`"
                    .into(),
            });
        }
        if path.exists() {
            return Err(StoreError::Invalid {
                field: "backup",
                message: format!("{} exists already", path.display()),
            });
        }
        let target = path.to_str().ok_or_else(|| StoreError::Invalid {
            field: "backup",
            message: format!("{} is not a UTF-8 path", path.display()),
        })?;
        self.db
            .execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Sqlite,
                "VACUUM INTO ?",
                [target.into()],
            ))
            .await?;
        Ok(())
    }
}

/// Rows waiting to be inserted, of one kind at a time.
#[derive(Default)]
struct Batch {
    services: Vec<entity::service::ActiveModel>,
    notifications: Vec<entity::notification::ActiveModel>,
    attempts: Vec<entity::attempt::ActiveModel>,
    links: Vec<entity::link::ActiveModel>,
    signing_keys: Vec<entity::signing_key::ActiveModel>,
}

impl Batch {
    fn len(&self) -> usize {
        self.services.len()
            + self.notifications.len()
            + self.attempts.len()
            + self.links.len()
            + self.signing_keys.len()
    }

    async fn flush(&mut self, txn: &impl ConnectionTrait) -> Result<(), StoreError> {
        if !self.services.is_empty() {
            entity::service::Entity::insert_many(std::mem::take(&mut self.services))
                .exec_without_returning(txn)
                .await?;
        }
        if !self.notifications.is_empty() {
            entity::notification::Entity::insert_many(std::mem::take(&mut self.notifications))
                .exec_without_returning(txn)
                .await?;
        }
        if !self.attempts.is_empty() {
            entity::attempt::Entity::insert_many(std::mem::take(&mut self.attempts))
                .exec_without_returning(txn)
                .await?;
        }
        if !self.links.is_empty() {
            entity::link::Entity::insert_many(std::mem::take(&mut self.links))
                .exec_without_returning(txn)
                .await?;
        }
        if !self.signing_keys.is_empty() {
            entity::signing_key::Entity::insert_many(std::mem::take(&mut self.signing_keys))
                .exec_without_returning(txn)
                .await?;
        }
        Ok(())
    }
}
