//! Storing notifications idempotently: what is stored of each, the URIs it links, one
//! transaction per notification or per batch. The queries over them are in `queries.rs`.

use chrono::{DateTime, Utc};
use coar_model::Notification;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::NotSet,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryTrait, Set, SqlErr, TryIntoModel,
    sea_query::{OnConflict, Query},
};

use crate::{
    Claim, Delivery, Direction, Record, State, Store, StoreError,
    entity::{link, notification},
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
    /// Thumbprint of the key its sender's HTTP Message Signature verified with (inbound).
    pub signature_key: Option<String>,
    /// SHA-256 (hex) of that signature's parameters and value: a later request carrying
    /// the same signature is a replay.
    pub signature_hash: Option<String>,
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
            signature_key: None,
            signature_hash: None,
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

impl Prepared {
    /// An inbound notification to be stored `queued`: one a [`HandOver`] may claim.
    fn claimable(&self) -> bool {
        matches!(&self.model.direction, Set(d) if d == Direction::Inbound.as_str())
            && matches!(&self.model.state, Set(s) if s == State::Queued.as_str())
    }

    /// Stores it claimed under `token` until `lease_until`, as a claim would leave it.
    fn claim(&mut self, token: &str, lease_until: i64, now: i64) {
        self.model.state = Set(State::Processing.as_str().to_owned());
        self.model.lease_until = Set(Some(lease_until));
        self.model.lease_owner = Set(Some(token.to_owned()));
        self.model.attempts = Set(1);
        self.model.updated_at = Set(now);
    }
}

/// Claims, in the transaction that stores them, the inbound notifications a
/// [`Store::write_batch`] stores as `queued`, for a worker of the same process.
#[derive(Debug, Clone, Copy)]
pub struct HandOver<'a> {
    /// Recorded as each attempt's worker (the inbox writer names this process).
    pub worker: &'a str,
    /// The most to claim.
    pub limit: usize,
}

/// What [`Store::write_batch`] did.
#[derive(Debug)]
pub struct Written {
    /// One result per notification, in order, as [`Store::insert_many`] gives them.
    pub inserted: Vec<Result<Inserted, StoreError>>,
    /// What was claimed for the [`HandOver`]'s worker, oldest first.
    pub claims: Vec<Claim>,
    /// One result per completion, in order, as [`Store::complete_many`] gives them.
    pub completed: Vec<Result<(), StoreError>>,
}

/// What one batch transaction did: per notification, the claims made, per completion.
type BatchOutcome = (
    Vec<Result<Inserted, StoreError>>,
    Vec<Claim>,
    Vec<Result<(), StoreError>>,
);

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
    // An activity without an id (or with `"@id": ""`, the document itself, as the W3C LDN
    // test suite sends) is keyed by its body, so that a repeat is still a repeat and another
    // body is another notification.
    let id = n
        .id()
        .filter(|id| !id.is_empty())
        .map_or_else(|| format!("urn:sha256:{sha}"), str::to_owned);
    let key = dedup_key(new.direction, origin, &id);
    let id_for_thread = id.clone();
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
        signature_key: Set(new.signature_key.clone()),
        signature_hash: Set(new.signature_hash.clone()),
        thread_key: Set((new.direction == Direction::Outbound).then(|| {
            thread_key(
                n.target().and_then(|t| t.inbox().or(t.id())).unwrap_or(""),
                n.in_reply_to().unwrap_or(&id_for_thread),
            )
        })),
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

/// The delivery thread of an outbound notification to `lane` (its target inbox, or the
/// target's id without one) that answers `thread` (its `inReplyTo`, or its own id): an
/// Offer and its Undo, a request and each reply to it, share one. Deliveries keep their
/// order within a thread only.
pub(crate) fn thread_key(lane: &str, thread: &str) -> String {
    sha256_hex(format!("{lane}\n{thread}").as_bytes())
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
        self.write_batch(batch, None, &[]).await.inserted
    }

    /// [`insert_many`](Self::insert_many) and [`complete_many`](Self::complete_many) in one
    /// transaction, one durable commit: what an inbox writer does with what has accumulated,
    /// the workers' completions included. With a [`HandOver`], the inbound notifications it
    /// stores as `queued` (at most `limit`) are stored claimed instead, for the hand-over's
    /// worker, exactly as [`claim`](Self::claim) would have claimed them (state
    /// `processing` under a lease, an attempt recorded), and come back in
    /// [`Written::claims`]: the worker needs no claim of its own, and a worker that dies
    /// lets the lease expire like any other.
    ///
    /// If the database refuses the batch as a whole (a concurrent writer won a race on an
    /// id, say), each notification is stored on its own, none claimed, and the completions
    /// are made in their own transaction.
    pub async fn write_batch(
        &self,
        batch: &[NewNotification<'_>],
        hand_over: Option<HandOver<'_>>,
        done: &[(&Claim, Option<Delivery>)],
    ) -> Written {
        // One that cannot be stored gets its error; the others are stored together.
        let mut inserted: Vec<Option<Result<Inserted, StoreError>>> =
            batch.iter().map(|n| storable(n).err().map(Err)).collect();
        let storable: Vec<NewNotification<'_>> = batch
            .iter()
            .zip(&inserted)
            .filter(|(_, refused)| refused.is_none())
            .map(|(n, _)| n.clone())
            .collect();
        if storable.is_empty() && done.is_empty() {
            return Written {
                inserted: inserted.into_iter().flatten().collect(),
                claims: Vec::new(),
                completed: Vec::new(),
            };
        }
        let (stored, claims, completed) = match self.try_batch(&storable, hand_over, done).await {
            Ok(written) => written,
            Err(_) => {
                let mut stored = Vec::with_capacity(storable.len());
                for new in &storable {
                    stored.push(self.insert(new.clone()).await);
                }
                let completed = if done.is_empty() {
                    Vec::new()
                } else {
                    self.complete_many(done).await
                };
                (stored, Vec::new(), completed)
            }
        };
        let mut stored = stored.into_iter();
        for slot in &mut inserted {
            if slot.is_none() {
                *slot = stored.next();
            }
        }
        Written {
            inserted: inserted
                .into_iter()
                .map(|r| {
                    r.unwrap_or(Err(StoreError::Unavailable(
                        "a batched row is missing".into(),
                    )))
                })
                .collect(),
            claims,
            completed,
        }
    }

    async fn try_batch(
        &self,
        batch: &[NewNotification<'_>],
        hand_over: Option<HandOver<'_>>,
        done: &[(&Claim, Option<Delivery>)],
    ) -> Result<BatchOutcome, StoreError> {
        let mut prepared: Vec<Prepared> = batch.iter().map(prepare).collect();
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
            if self.backend == crate::Backend::MySql && !prepared.is_empty() {
                stored(prepared.iter().map(|p| p.key.clone()).collect())
                    .await?
                    .collect()
            } else {
                std::collections::HashMap::new()
            };
        // The first occurrence of each new key is inserted (claimed, if handed over); the
        // rest resolve against it.
        let now = Utc::now();
        let lease_until =
            now + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::minutes(5));
        let token = uuid::Uuid::new_v4().to_string();
        let mut room = hand_over.map_or(0, |h| h.limit);
        let mut seen = std::collections::HashSet::new();
        let mut fresh_at = Vec::new();
        for (i, p) in prepared.iter_mut().enumerate() {
            if known.contains_key(&p.key) || !seen.insert(p.key.clone()) {
                continue;
            }
            fresh_at.push(i);
            if room > 0 && p.claimable() {
                room -= 1;
                p.claim(&token, to_micros(lease_until), to_micros(now));
            }
        }
        let fresh: Vec<&Prepared> = fresh_at.iter().map(|&i| &prepared[i]).collect();
        // Completions read before they write: on SQLite the write lock must be taken first
        // when no INSERT takes it.
        if fresh.is_empty() && !done.is_empty() {
            self.take_write_lock(&txn).await?;
        }
        let by_key: std::collections::HashMap<&str, &Prepared> =
            fresh.iter().map(|p| (p.key.as_str(), *p)).collect();
        let mut inserted_keys = std::collections::HashSet::new();
        let mut claimed: Vec<Record> = Vec::new();
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
                if row.lease_owner.as_deref() == Some(token.as_str()) {
                    claimed.push(row.clone().into());
                }
                inserted_keys.insert(row.dedup_key.clone());
                known.insert(row.dedup_key.clone(), row);
            }
            insert_links(&txn, self.backend, &links).await?;
        }
        if let Some(h) = hand_over {
            claimed.sort_unstable_by_key(|r| r.key);
            crate::queue::start_attempts(&txn, &claimed, h.worker, to_micros(now)).await?;
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
        let completed = if done.is_empty() {
            Vec::new()
        } else {
            self.complete_in(&txn, done).await?
        };
        txn.commit().await?;
        let mut answered_new = std::collections::HashSet::new();
        let inserted = prepared
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
            .collect();
        Ok((
            inserted,
            Claim::all(claimed, lease_until, &token),
            completed,
        ))
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
}

pub(crate) use crate::queries::linked;
