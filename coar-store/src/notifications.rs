//! Storing notifications idempotently, and the queries over them.

use chrono::{DateTime, Utc};
use coar_model::Notification;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::NotSet,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set, SqlErr, TryIntoModel,
    sea_query::{Expr, OnConflict, Query},
};

use crate::{
    Attempt, Direction, Filter, Page, Record, State, Stats, Store, StoreError,
    entity::{attempt, link, notification},
    model::to_micros,
    sha256_hex,
};

/// A notification to store.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    /// Which way it travels.
    pub direction: Direction,
    /// The parsed notification (for the indexed columns).
    pub notification: &'a Notification,
    /// The body exactly as received or to be sent.
    pub body: &'a [u8],
    /// The body's media type.
    pub media_type: &'a str,
    /// The sender's address (inbound), after trusted proxies.
    pub remote_addr: Option<String>,
    /// SHA-256 (hex, [`crate::sha256_hex`]) of the bearer token the sender presented
    /// (inbound), kept as evidence for re-attribution; never the token itself.
    pub bearer_sha256: Option<String>,
    /// The registered service it is attributed to.
    pub service: Option<i64>,
    /// The initial state: `Queued` to process, `Quarantined` to hold, `Processed` to only
    /// keep a record.
    pub state: State,
    /// When it was received; `None` means now.
    pub received_at: Option<DateTime<Utc>>,
}

impl<'a> NewNotification<'a> {
    /// An inbound notification, queued for processing.
    pub fn inbound(notification: &'a Notification, body: &'a [u8], media_type: &'a str) -> Self {
        NewNotification {
            direction: Direction::Inbound,
            notification,
            body,
            media_type,
            remote_addr: None,
            bearer_sha256: None,
            service: None,
            state: State::Queued,
            received_at: None,
        }
    }

    /// An outbound notification, queued for delivery.
    pub fn outbound(notification: &'a Notification, body: &'a [u8]) -> Self {
        NewNotification {
            direction: Direction::Outbound,
            ..NewNotification::inbound(notification, body, "application/ld+json")
        }
    }
}

/// What [`Store::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Stored now.
    New(Record),
    /// The very same body was already stored: here is the first record.
    Duplicate(Record),
}

impl Inserted {
    /// The record, new or first.
    pub fn record(&self) -> &Record {
        match self {
            Inserted::New(r) | Inserted::Duplicate(r) => r,
        }
    }
}

/// A notification ready to be written: its idempotency key, body hash, row and links.
struct Prepared {
    key: String,
    sha: String,
    model: notification::ActiveModel,
    links: Vec<(&'static str, String)>,
}

/// Refuses a notification whose identifiers (the indexed columns and links) hold a NUL
/// character: no IRI may, PostgreSQL cannot store one in text, and SQLite's functions stop
/// at it. The body itself (stored as bytes) may hold anything.
fn storable(new: &NewNotification<'_>) -> Result<(), StoreError> {
    let n = new.notification;
    let named = [
        ("id", n.id()),
        ("origin.id", n.origin().and_then(|o| o.id())),
        ("origin.inbox", n.origin().and_then(|o| o.inbox())),
        ("target.id", n.target().and_then(|o| o.id())),
        ("target.inbox", n.target().and_then(|o| o.inbox())),
        ("actor.id", n.actor().and_then(|o| o.id())),
        ("object.id", n.object_id()),
        ("context.id", n.context_id()),
        ("inReplyTo", n.in_reply_to()),
    ];
    let types = n.types().into_iter().map(|t| ("type", Some(t)));
    let resources = n
        .resource_uris()
        .into_iter()
        .map(|u| ("a resource URI", Some(u)));
    for (field, value) in named.into_iter().chain(types).chain(resources) {
        if value.is_some_and(|v| v.contains('\0')) {
            return Err(StoreError::Invalid {
                field: "notification",
                message: format!("{field} contains a NUL character, which no IRI may hold"),
            });
        }
    }
    Ok(())
}

fn prepare(new: &NewNotification<'_>) -> Prepared {
    let n = new.notification;
    let origin = n.origin().and_then(|o| o.id()).unwrap_or("");
    let sha = sha256_hex(new.body);
    // An activity without an id is keyed by its body, so that a repeat is still a repeat.
    let id = n
        .id()
        .map_or_else(|| format!("urn:sha256:{sha}"), str::to_owned);
    let key = dedup_key(new.direction, origin, &id);
    let now = new.received_at.unwrap_or_else(Utc::now);
    let cite_as: Vec<&str> = [n.object(), n.context()]
        .into_iter()
        .flatten()
        .filter_map(|node| node.cite_as())
        .collect();
    let model = notification::ActiveModel {
        id: NotSet,
        direction: Set(new.direction.as_str().to_owned()),
        dedup_key: Set(key.clone()),
        notification_id: Set(id),
        pattern: Set(n.pattern().map(|p| p.slug().to_owned())),
        types: Set(n.types().join(" ")),
        origin_id: Set(n.origin().and_then(|o| o.id()).map(str::to_owned)),
        origin_inbox: Set(n.origin().and_then(|o| o.inbox()).map(str::to_owned)),
        target_id: Set(n.target().and_then(|o| o.id()).map(str::to_owned)),
        target_inbox: Set(n.target().and_then(|o| o.inbox()).map(str::to_owned)),
        actor_id: Set(n.actor().and_then(|o| o.id()).map(str::to_owned)),
        object_id: Set(n.object_id().map(str::to_owned)),
        context_id: Set(n.context_id().map(str::to_owned)),
        cite_as: Set(cite_as.join(" ")),
        in_reply_to: Set(n.in_reply_to().map(str::to_owned)),
        body: Set(new.body.to_vec()),
        media_type: Set(new.media_type.chars().take(255).collect()),
        sha256: Set(sha.clone()),
        received_at: Set(to_micros(now)),
        received_day: Set(now.format("%Y-%m-%d").to_string()),
        remote_addr: Set(new.remote_addr.clone()),
        bearer_sha256: Set(new.bearer_sha256.clone()),
        service_id: Set(new.service),
        state: Set(new.state.as_str().to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(None),
        lease_until: Set(None),
        lease_owner: Set(None),
        last_error: Set(None),
        updated_at: Set(to_micros(now)),
    };
    Prepared {
        key,
        sha,
        model,
        links: links(n),
    }
}

/// Inserts a prepared notification and its links in `txn`.
async fn write(
    txn: &sea_orm::DatabaseTransaction,
    backend: crate::Backend,
    p: &Prepared,
) -> Result<Inserted, StoreError> {
    let inserted = p.model.clone().insert(txn).await?;
    let rows: Vec<LinkRow<'_>> = p
        .links
        .iter()
        .map(|(role, uri)| (inserted.id, *role, uri.as_str()))
        .collect();
    insert_links(txn, backend, &rows).await?;
    Ok(Inserted::New(inserted.into()))
}

fn dedup_key(direction: Direction, origin: &str, id: &str) -> String {
    sha256_hex(format!("{}\n{origin}\n{id}", direction.as_str()).as_bytes())
}

/// The links a notification gets: (role, URI).
fn links(n: &Notification) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut push = |role: &'static str, uri: Option<&str>| {
        if let Some(uri) = uri.filter(|u| !u.is_empty()) {
            let pair = (role, uri.to_owned());
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
    };
    push("origin", n.origin().and_then(|o| o.id()));
    push("target", n.target().and_then(|t| t.id()));
    push("actor", n.actor().and_then(|a| a.id()));
    push("in-reply-to", n.in_reply_to());
    for uri in n.resource_uris() {
        push("resource", Some(uri));
    }
    out
}

/// One `notification_links` row: the notification's key, the role, the URI.
type LinkRow<'a> = (i64, &'static str, &'a str);

/// Inserts link rows. On SQLite as one JSON parameter that SQLite unpacks itself: binding
/// thousands of separate parameters through the driver cost more than SQLite's whole insert
/// (the links were a third of the batch's time); `jsonb_each` hands each row over in
/// SQLite's binary form, so the four `->>` read it without parsing text again.
async fn insert_links(
    txn: &sea_orm::DatabaseTransaction,
    backend: crate::Backend,
    rows: &[LinkRow<'_>],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    if backend == crate::Backend::Sqlite {
        let json: Vec<serde_json::Value> = rows
            .iter()
            .map(|(key, role, uri)| serde_json::json!([key, role, uri, sha256_hex(uri.as_bytes())]))
            .collect();
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Sqlite,
            "INSERT INTO notification_links (notification, role, uri, uri_hash) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM jsonb_each(?)",
            [serde_json::Value::Array(json).to_string().into()],
        ))
        .await?;
        return Ok(());
    }
    for chunk in rows.chunks(1000) {
        link::Entity::insert_many(chunk.iter().map(|(key, role, uri)| link::ActiveModel {
            id: NotSet,
            notification: Set(*key),
            role: Set((*role).to_owned()),
            uri_hash: Set(sha256_hex(uri.as_bytes())),
            uri: Set((*uri).to_owned()),
        }))
        .exec(txn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Stores a notification with its queue state, in one transaction.
    ///
    /// Idempotent on (direction, origin id, notification id): the same body again returns
    /// [`Inserted::Duplicate`] with the first record; a different body under the same id is
    /// [`StoreError::Conflict`].
    pub async fn insert(&self, new: NewNotification<'_>) -> Result<Inserted, StoreError> {
        crate::retry!(self.insert_once(&new).await)
    }

    async fn insert_once(&self, new: &NewNotification<'_>) -> Result<Inserted, StoreError> {
        storable(new)?;
        let prepared = prepare(new);
        if let Some(existing) = self.by_dedup_key(&prepared.key).await? {
            return self.resolve_duplicate(existing, &prepared.sha);
        }
        let (_turn, txn) = self.begin_write().await?;
        match write(&txn, self.backend, &prepared).await {
            Ok(inserted) => {
                txn.commit().await?;
                Ok(inserted)
            }
            Err(StoreError::Database(err))
                if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
            {
                // A concurrent insert of the same id won the race.
                txn.rollback().await?;
                let existing = self
                    .by_dedup_key(&prepared.key)
                    .await?
                    .ok_or(StoreError::Database(err))?;
                self.resolve_duplicate(existing, &prepared.sha)
            }
            Err(e) => Err(e),
        }
    }

    /// Stores several notifications in one transaction (group commit: one durable commit for
    /// all), with the same per-notification results as [`insert`](Self::insert). If the
    /// database refuses the batch (a concurrent writer won a race on an id, say), each
    /// notification is stored on its own instead.
    pub async fn insert_many(
        &self,
        batch: &[NewNotification<'_>],
    ) -> Vec<Result<Inserted, StoreError>> {
        // One at a time when there is one, or when one cannot be stored (it gets its error,
        // the others are stored).
        if batch.len() == 1 || batch.iter().any(|n| storable(n).is_err()) {
            let mut out = Vec::with_capacity(batch.len());
            for new in batch {
                out.push(self.insert(new.clone()).await);
            }
            return out;
        }
        match self.try_batch(batch).await {
            Ok(results) => results,
            Err(_) => {
                let mut out = Vec::with_capacity(batch.len());
                for new in batch {
                    out.push(self.insert(new.clone()).await);
                }
                out
            }
        }
    }

    async fn try_batch(
        &self,
        batch: &[NewNotification<'_>],
    ) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
        let prepared: Vec<Prepared> = batch.iter().map(prepare).collect();
        let (_turn, txn) = self.begin_write().await?;
        let stored = |keys: Vec<String>| {
            let txn = &txn;
            async move {
                Ok::<_, StoreError>(
                    notification::Entity::find()
                        .filter(notification::Column::DedupKey.is_in(keys))
                        .all(txn)
                        .await?
                        .into_iter()
                        .map(|m| (m.dedup_key.clone(), m)),
                )
            }
        };
        // MariaDB/MySQL first ask what was stored before. Elsewhere the INSERT skips those
        // itself (`ON CONFLICT DO NOTHING`) and only what it skipped is read afterwards: one
        // statement less per batch when, as usual, nothing is a repeat.
        let mut known: std::collections::HashMap<String, notification::Model> =
            if self.backend == crate::Backend::MySql {
                stored(prepared.iter().map(|p| p.key.clone()).collect())
                    .await?
                    .collect()
            } else {
                std::collections::HashMap::new()
            };
        // The first occurrence of each new key is inserted; the rest resolve against it.
        let mut fresh: Vec<&Prepared> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for p in &prepared {
            if !known.contains_key(&p.key) && seen.insert(p.key.as_str()) {
                fresh.push(p);
            }
        }
        let by_key: std::collections::HashMap<&str, &Prepared> =
            fresh.iter().map(|p| (p.key.as_str(), *p)).collect();
        let mut inserted_keys = std::collections::HashSet::new();
        if !fresh.is_empty() {
            let rows: Vec<notification::Model> = if self.backend == crate::Backend::MySql {
                // No RETURNING on MariaDB/MySQL: one INSERT each, still one commit.
                let mut rows = Vec::with_capacity(fresh.len());
                for p in &fresh {
                    rows.push(p.model.clone().insert(&txn).await?);
                }
                rows
            } else {
                // Only the keys come back (not the bodies just sent); rows are matched to
                // their notification by dedup key, as RETURNING promises no order.
                use notification::Column as C;
                let mut insert =
                    notification::Entity::insert_many(fresh.iter().map(|p| p.model.clone()));
                let statement = insert
                    .query()
                    .on_conflict(OnConflict::column(C::DedupKey).do_nothing().to_owned())
                    .returning(Query::returning().columns([C::Id, C::DedupKey]))
                    .to_owned();
                let mut rows = Vec::with_capacity(fresh.len());
                for returned in txn.query_all(&statement).await? {
                    let id: i64 = returned.try_get("", "id")?;
                    let key: String = returned.try_get("", "dedup_key")?;
                    let p = by_key.get(key.as_str()).ok_or(StoreError::Unavailable(
                        "a batched row came back unrecognised".into(),
                    ))?;
                    let mut model = p.model.clone();
                    model.id = Set(id);
                    rows.push(model.try_into_model()?);
                }
                rows
            };
            let mut links = Vec::new();
            for row in rows {
                let p = by_key
                    .get(row.dedup_key.as_str())
                    .ok_or(StoreError::Unavailable(
                        "a batched row came back unrecognised".into(),
                    ))?;
                links.extend(
                    p.links
                        .iter()
                        .map(|(role, uri)| (row.id, *role, uri.as_str())),
                );
                inserted_keys.insert(row.dedup_key.clone());
                known.insert(row.dedup_key.clone(), row);
            }
            insert_links(&txn, self.backend, &links).await?;
        }
        // What the INSERT skipped was stored before (or by a concurrent writer since).
        let skipped: Vec<String> = fresh
            .iter()
            .filter(|p| !known.contains_key(&p.key))
            .map(|p| p.key.clone())
            .collect();
        if !skipped.is_empty() {
            known.extend(stored(skipped).await?);
        }
        txn.commit().await?;
        let mut answered_new = std::collections::HashSet::new();
        Ok(prepared
            .iter()
            .map(|p| {
                let row = known
                    .get(&p.key)
                    .cloned()
                    .ok_or(StoreError::Unavailable("a batched row is missing".into()))?;
                if inserted_keys.contains(&p.key) && answered_new.insert(p.key.clone()) {
                    Ok(Inserted::New(row.into()))
                } else {
                    self.resolve_duplicate(row, &p.sha)
                }
            })
            .collect())
    }

    fn resolve_duplicate(
        &self,
        existing: notification::Model,
        sha: &str,
    ) -> Result<Inserted, StoreError> {
        if existing.sha256 == sha {
            Ok(Inserted::Duplicate(existing.into()))
        } else {
            Err(StoreError::Conflict {
                key: existing.id,
                notification_id: existing.notification_id,
                origin: existing.origin_id.unwrap_or_default(),
            })
        }
    }

    async fn by_dedup_key(&self, key: &str) -> Result<Option<notification::Model>, StoreError> {
        Ok(notification::Entity::find()
            .filter(notification::Column::DedupKey.eq(key))
            .one(&self.db)
            .await?)
    }

    /// One record by key.
    pub async fn get(&self, key: i64) -> Result<Option<Record>, StoreError> {
        Ok(notification::Entity::find_by_id(key)
            .one(&self.db)
            .await?
            .map(Record::from))
    }

    /// The records with this activity id (in either direction, from any origin).
    pub async fn find_by_notification_id(&self, id: &str) -> Result<Vec<Record>, StoreError> {
        Ok(notification::Entity::find()
            .filter(notification::Column::NotificationId.eq(id))
            .order_by_asc(notification::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Record::from)
            .collect())
    }

    /// Every attempt made on a notification, oldest first.
    pub async fn attempts(&self, key: i64) -> Result<Vec<Attempt>, StoreError> {
        Ok(attempt::Entity::find()
            .filter(attempt::Column::Notification.eq(key))
            .order_by_asc(attempt::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Attempt::from)
            .collect())
    }

    /// A page of records matching `filter`, newest first. `after` is the `next` cursor of the
    /// previous page; `limit` is capped at 1000. The page says whether more follow: nothing
    /// is ever cut off silently.
    pub async fn list(
        &self,
        filter: &Filter,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Page<Record>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut query = notification::Entity::find().filter(condition(filter, self.backend));
        if let Some(after) = after {
            query = query.filter(notification::Column::Id.lt(after));
        }
        let mut items: Vec<Record> = query
            .order_by_desc(notification::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Record::from)
            .collect();
        let next = if items.len() as u64 > limit {
            items.truncate(limit as usize);
            items.last().map(|r| r.key)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// How many records match `filter`.
    pub async fn count(&self, filter: &Filter) -> Result<u64, StoreError> {
        Ok(notification::Entity::find()
            .filter(condition(filter, self.backend))
            .count(&self.db)
            .await?)
    }

    /// Counts by pattern, state, direction and day, for the records matching `filter`.
    pub async fn stats(&self, filter: &Filter) -> Result<Stats, StoreError> {
        use notification::Column as C;
        Ok(Stats {
            by_pattern: self.counts_by(C::Pattern, filter, "unrecognised").await?,
            by_state: self.counts_by(C::State, filter, "").await?,
            by_direction: self.counts_by(C::Direction, filter, "").await?,
            by_day: self.counts_by(C::ReceivedDay, filter, "").await?,
        })
    }

    /// `SELECT col, COUNT(id) … GROUP BY col ORDER BY col`; a NULL key is named `none`.
    pub(crate) async fn counts_by(
        &self,
        col: notification::Column,
        filter: &Filter,
        none: &str,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(Option<String>, i64)> = notification::Entity::find()
            .select_only()
            .column(col)
            .column_as(notification::Column::Id.count(), "n")
            .filter(condition(filter, self.backend))
            .group_by(col)
            .order_by_asc(col)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(k, n)| {
                (
                    k.unwrap_or_else(|| none.to_owned()),
                    u64::try_from(n).unwrap_or(0),
                )
            })
            .collect())
    }
}

/// The SQL condition of a filter.
fn condition(filter: &Filter, backend: crate::Backend) -> Condition {
    use notification::Column as C;
    let mut cond = Condition::all();
    if let Some(d) = filter.direction {
        cond = cond.add(C::Direction.eq(d.as_str()));
    }
    match &filter.pattern {
        Some(Some(p)) => cond = cond.add(C::Pattern.eq(p.slug())),
        Some(None) => cond = cond.add(C::Pattern.is_null()),
        None => {}
    }
    if let Some(s) = filter.state {
        cond = cond.add(C::State.eq(s.as_str()));
    }
    for (uri, roles) in [
        (&filter.origin, &["origin"][..]),
        (&filter.target, &["target"][..]),
        (&filter.source, &["origin", "actor"][..]),
        (&filter.resource, &["resource"][..]),
    ] {
        if let Some(uri) = uri {
            cond = cond.add(C::Id.in_subquery(linked(uri, roles)));
        }
    }
    if let Some(since) = filter.since {
        cond = cond.add(C::ReceivedAt.gte(to_micros(since)));
    }
    if let Some(until) = filter.until {
        cond = cond.add(C::ReceivedAt.lt(to_micros(until)));
    }
    if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
        cond = cond.add(contains_text(text, backend));
    }
    if filter.attributed_only {
        cond = cond.add(C::ServiceId.is_not_null());
    }
    cond
}

/// Body, notification id or last error containing `text`, ASCII case-insensitively. Bodies
/// are bytes in every backend (kept byte for byte); they are read as UTF-8 text here, which
/// every stored body is (the inbox only stores JSON and Turtle it parsed).
fn contains_text(text: &str, backend: crate::Backend) -> Condition {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    // sea-query numbers `$1` afresh for PostgreSQL and takes `?` for the others.
    let body = match backend {
        crate::Backend::Sqlite => "LOWER(CAST(body AS TEXT)) LIKE ? ESCAPE '\\'",
        crate::Backend::Postgres => "LOWER(convert_from(body, 'UTF8')) LIKE $1 ESCAPE '\\'",
        crate::Backend::MySql => "LOWER(CONVERT(body USING utf8mb4)) LIKE ? ESCAPE '\\\\'",
    };
    let column = |c: notification::Column| {
        Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(c)))
            .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\'))
    };
    Condition::any()
        .add(Expr::cust_with_values(body, [pattern.clone()]))
        .add(column(notification::Column::NotificationId))
        .add(column(notification::Column::LastError))
}

/// `SELECT notification FROM notification_links WHERE uri_hash = … AND role IN (…)`.
pub(crate) fn linked(uri: &str, roles: &[&str]) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(link::Column::Notification)
        .from(link::Entity)
        .and_where(Expr::col(link::Column::UriHash).eq(sha256_hex(uri.as_bytes())))
        .and_where(Expr::col(link::Column::Role).is_in(roles.iter().copied()))
        .to_owned()
}
