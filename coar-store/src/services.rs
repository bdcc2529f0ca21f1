//! The service registry: the peers we know and trust.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::Utc;
use coar_model::Pattern;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, SqlErr, sea_query::Expr,
};

use crate::{
    Cidr, Direction, State, Store, StoreError,
    entity::{notification, service},
    model::{from_micros, to_micros},
    sha256_hex,
};

/// A registered service, as read back. Not serializable: what is shown of it is a view's
/// choice (its token hashes must never be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredService {
    /// The registry's key.
    pub key: i64,
    /// A display name.
    pub name: String,
    /// The service's id URI (`origin.id` / `target.id` in notifications).
    pub id: String,
    /// Its LDN inbox.
    pub inbox: Option<String>,
    /// Disabled services are treated as unknown.
    pub enabled: bool,
    /// Patterns accepted from it (empty: all).
    pub inbound_patterns: Vec<Pattern>,
    /// Patterns we send it (empty: all).
    pub outbound_patterns: Vec<Pattern>,
    /// Addresses it may send from (empty: any).
    pub cidrs: Vec<String>,
    /// SHA-256 hashes of its bearer tokens (empty: no token required).
    pub token_hashes: Vec<String>,
    /// When it was registered.
    pub created_at: chrono::DateTime<Utc>,
    /// Last change.
    pub updated_at: chrono::DateTime<Utc>,
}

/// What a sender proved when its notification arrived, kept with the notification: the
/// evidence attribution is decided on, at receipt and again whenever quarantine is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Evidence<'a> {
    /// The address it connected from (after trusted proxies).
    pub remote_addr: Option<std::net::IpAddr>,
    /// SHA-256 (hex) of the bearer token it presented.
    pub bearer_sha256: Option<&'a str>,
}

/// What a notification claims, as far as attribution cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Claims<'a> {
    /// Its `origin.inbox`.
    pub origin_inbox: Option<&'a str>,
    /// Its pattern.
    pub pattern: Option<Pattern>,
}

/// Why a registered service does not vouch for a notification that names it as origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    /// The service is disabled.
    #[error("the service is disabled")]
    Disabled,
    /// `origin.inbox` is not the service's registered inbox.
    #[error("origin.inbox is not the service's registered inbox")]
    InboxMismatch,
    /// The sender's address is outside the service's ranges (or unknown).
    #[error("the sender's address is outside the service's ranges")]
    AddressOutsideRanges,
    /// The service requires a token and none of its tokens was presented.
    #[error("the sender did not present one of the service's tokens")]
    TokenMissing,
    /// The service may not send this pattern.
    #[error("the service may not send this pattern")]
    PatternNotAccepted,
}

/// Who a received notification is attributed to ([`Store::attribute`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Attribution {
    /// The registered service it names as origin vouches for it.
    Service(RegisteredService),
    /// It names no `origin.id`.
    NoOrigin,
    /// No service is registered under its `origin.id`.
    Unregistered,
    /// The service registered under its `origin.id` (this key) does not vouch for it.
    NotVouched(i64, Untrusted),
}

impl Attribution {
    /// The service, when one vouches.
    pub fn service(self) -> Option<RegisteredService> {
        match self {
            Attribution::Service(s) => Some(s),
            _ => None,
        }
    }
}

impl RegisteredService {
    /// Whether `token` is one of the service's tokens (compared by hash, in constant time).
    pub fn token_matches(&self, token: &str) -> bool {
        self.token_hash_matches(&sha256_hex(token.as_bytes()))
    }

    /// Whether `hash` (SHA-256 hex of a token) is one of the service's token hashes, in
    /// constant time (every hash is compared, and each comparison takes the same time).
    pub fn token_hash_matches(&self, hash: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.token_hashes.iter().fold(0u8, |found, h| {
            found | h.as_bytes().ct_eq(hash.as_bytes()).unwrap_u8()
        }) == 1
    }

    /// Whether `ip` is in one of the service's ranges (true when it has none).
    pub fn address_allowed(&self, ip: std::net::IpAddr) -> bool {
        self.cidrs.is_empty()
            || self
                .cidrs
                .iter()
                .filter_map(|c| c.parse::<Cidr>().ok())
                .any(|c| c.contains(ip))
    }

    /// Whether the service may send us `pattern` (true when no list is set).
    pub fn accepts_inbound(&self, pattern: Option<Pattern>) -> bool {
        self.inbound_patterns.is_empty()
            || pattern.is_some_and(|p| self.inbound_patterns.contains(&p))
    }

    /// The attribution rule: whether this service vouches for a notification that names it
    /// as origin, given what the notification claims and what its sender proved. The
    /// service must be enabled; a claimed `origin.inbox` must be the registered one (when
    /// both are known); the sender's address must be in the ranges (when there are any; an
    /// unknown address is in none); one of the tokens must have been presented (when there
    /// are any); and the pattern must be allowed. The same rule decides at receipt and at
    /// every release from quarantine, on the evidence recorded at receipt.
    pub fn vouches_for(
        &self,
        claims: &Claims<'_>,
        evidence: &Evidence<'_>,
    ) -> Result<(), Untrusted> {
        if !self.enabled {
            return Err(Untrusted::Disabled);
        }
        if let (Some(claimed), Some(registered)) = (claims.origin_inbox, self.inbox.as_deref())
            && claimed != registered
        {
            return Err(Untrusted::InboxMismatch);
        }
        if !self.cidrs.is_empty()
            && !evidence
                .remote_addr
                .is_some_and(|ip| self.address_allowed(ip))
        {
            return Err(Untrusted::AddressOutsideRanges);
        }
        if !self.token_hashes.is_empty()
            && !evidence
                .bearer_sha256
                .is_some_and(|h| self.token_hash_matches(h))
        {
            return Err(Untrusted::TokenMissing);
        }
        if !self.accepts_inbound(claims.pattern) {
            return Err(Untrusted::PatternNotAccepted);
        }
        Ok(())
    }
}

/// A service to register or the new state of one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceInput {
    /// A display name.
    pub name: String,
    /// The service's id URI.
    pub id: String,
    /// Its LDN inbox.
    pub inbox: Option<String>,
    /// Whether it is trusted now.
    pub enabled: bool,
    /// Patterns accepted from it (empty: all).
    pub inbound_patterns: Vec<Pattern>,
    /// Patterns we send it (empty: all).
    pub outbound_patterns: Vec<Pattern>,
    /// CIDR ranges it may send from (empty: any).
    pub cidrs: Vec<String>,
    /// Bearer tokens, in clear: only their hashes are stored. `None` keeps the current ones.
    pub tokens: Option<Vec<String>>,
}

fn slugs(patterns: &[Pattern]) -> String {
    serde_json::to_string(&patterns.iter().map(|p| p.slug()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

fn parse_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

impl From<service::Model> for RegisteredService {
    fn from(m: service::Model) -> RegisteredService {
        let patterns = |s: &str| {
            parse_list(s)
                .iter()
                .filter_map(|p| Pattern::from_slug(p))
                .collect()
        };
        RegisteredService {
            key: m.id,
            name: m.name,
            id: m.service_uri,
            inbox: m.inbox_url,
            enabled: m.enabled,
            inbound_patterns: patterns(&m.inbound_patterns),
            outbound_patterns: patterns(&m.outbound_patterns),
            cidrs: parse_list(&m.cidrs),
            token_hashes: parse_list(&m.token_hashes),
            created_at: from_micros(m.created_at),
            updated_at: from_micros(m.updated_at),
        }
    }
}

impl ServiceInput {
    fn check(&self) -> Result<(), StoreError> {
        if !coar_model::is_http_uri(&self.id) {
            return Err(StoreError::Invalid {
                field: "id",
                message: format!("{:?} is not an HTTP URI", self.id),
            });
        }
        if let Some(inbox) = &self.inbox
            && !coar_model::is_http_uri(inbox)
        {
            return Err(StoreError::Invalid {
                field: "inbox",
                message: format!("{inbox:?} is not an HTTP URI"),
            });
        }
        if self.name.trim().is_empty() || self.name.len() > 255 {
            return Err(StoreError::Invalid {
                field: "name",
                message: "a name of 1 to 255 bytes is required".into(),
            });
        }
        for c in &self.cidrs {
            c.parse::<Cidr>().map_err(|message| StoreError::Invalid {
                field: "cidrs",
                message,
            })?;
        }
        if let Some(tokens) = &self.tokens
            && tokens.iter().any(|t| t.len() < 16)
        {
            return Err(StoreError::Invalid {
                field: "tokens",
                message: "tokens must be at least 16 characters".into(),
            });
        }
        Ok(())
    }
}

/// A unique-key violation on the service id is the caller's mistake, said as such.
fn already_registered(err: sea_orm::DbErr, id: &str) -> StoreError {
    if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        StoreError::Invalid {
            field: "id",
            message: format!("a service with id {id:?} is already registered"),
        }
    } else {
        err.into()
    }
}

fn hashes(tokens: &[String]) -> String {
    serde_json::to_string(
        &tokens
            .iter()
            .map(|t| sha256_hex(t.as_bytes()))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_else(|_| "[]".into())
}

/// A sender whose notifications wait in quarantine and that no registered service names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSender {
    /// Its `origin.id`.
    pub id: String,
    /// How many of its notifications are quarantined.
    pub count: u64,
    /// The key of the latest.
    pub latest: i64,
    /// Every distinct (claimed `origin.inbox`, sender address) its notifications came
    /// with, most frequent first: what an admin must look at before registering it, since
    /// anyone can claim any origin.
    pub seen: Vec<Sighting>,
}

/// One (claimed inbox, address) pair an unknown sender's notifications came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// The `origin.inbox` claimed.
    pub inbox: Option<String>,
    /// The address it came from.
    pub remote_addr: Option<String>,
    /// How many quarantined notifications came so.
    pub count: u64,
}

/// What releasing quarantine for a service did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Released {
    /// Queued for processing, attributed to the service.
    pub released: u64,
    /// Left in quarantine: their evidence does not meet the service's rules.
    pub kept: u64,
}

/// A quarantined notification's claims and evidence as stored: key, `origin.inbox`,
/// pattern slug, remote address, SHA-256 of the bearer token.
type EvidenceRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// One group of the quarantine: origin, claimed inbox, address, count, latest key.
type SightingRow = (String, Option<String>, Option<String>, i64, i64);

impl RegisteredService {
    /// [`RegisteredService::vouches_for`] on a stored row's claims and evidence.
    fn vouches_for_row(&self, row: &EvidenceRow) -> Result<(), Untrusted> {
        let (_, inbox, pattern, addr, bearer) = row;
        let claims = Claims {
            origin_inbox: inbox.as_deref(),
            pattern: pattern.as_deref().and_then(Pattern::from_slug),
        };
        let evidence = Evidence {
            remote_addr: addr.as_deref().and_then(|a| a.parse().ok()),
            bearer_sha256: bearer.as_deref(),
        };
        self.vouches_for(&claims, &evidence)
    }
}

/// Queues the quarantined notifications among `keys`, attributed to `service`; how many.
async fn queue_attributed(
    db: &impl sea_orm::ConnectionTrait,
    keys: &[i64],
    service: i64,
) -> Result<u64, StoreError> {
    use notification::Column as C;
    let now = to_micros(Utc::now());
    let mut queued = 0;
    for chunk in keys.chunks(500) {
        let result = notification::Entity::update_many()
            .col_expr(C::State, Expr::value(State::Queued.as_str()))
            .col_expr(C::ServiceId, Expr::value(service))
            .col_expr(C::NextAttemptAt, Expr::value(Option::<i64>::None))
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(C::Id.is_in(chunk.iter().copied()))
            .filter(C::State.eq(State::Quarantined.as_str()))
            .exec(db)
            .await?;
        queued += result.rows_affected;
    }
    Ok(queued)
}

/// Why [`Store::release_one`] left a notification where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotReleased {
    /// It is not quarantined.
    #[error("it is not quarantined")]
    NotQuarantined,
    /// No registered service has its `origin.id`.
    #[error("no registered service has its origin id; register the service first")]
    NoService,
    /// The service does not vouch for it.
    #[error("{0}")]
    Untrusted(Untrusted),
}

/// Services recently looked up by id (the inbox asks once per request), with a generation
/// so that a lookup racing a change never caches what the change replaced.
#[derive(Debug)]
pub(crate) struct ServiceCache {
    ttl: Duration,
    clock: crate::Clock,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    generation: u64,
    entries: HashMap<String, (Instant, Option<RegisteredService>)>,
}

/// The most ids remembered (unknown senders included); past it, expired entries go, and
/// if none had expired, all.
const CACHE_CAPACITY: usize = 4096;

impl ServiceCache {
    pub(crate) fn new(ttl: Duration, clock: crate::Clock) -> ServiceCache {
        ServiceCache {
            ttl,
            clock,
            inner: Mutex::default(),
        }
    }

    fn fresh(&self, at: Instant) -> bool {
        self.clock.now().saturating_duration_since(at) < self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh entry, or the generation to store a looked-up one under.
    fn get(&self, hash: &str) -> Result<Option<RegisteredService>, u64> {
        let inner = self.lock();
        match inner.entries.get(hash) {
            Some((at, service)) if self.fresh(*at) => Ok(service.clone()),
            _ => Err(inner.generation),
        }
    }

    fn put(&self, hash: String, service: Option<RegisteredService>, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != generation {
            return; // the registry changed while this was read
        }
        if inner.entries.len() >= CACHE_CAPACITY {
            inner.entries.retain(|_, (at, _)| self.fresh(*at));
            if inner.entries.len() >= CACHE_CAPACITY {
                inner.entries.clear();
            }
        }
        inner.entries.insert(hash, (self.clock.now(), service));
    }

    /// Forgets everything: the registry changed.
    fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }
}

impl Store {
    /// Registers a service. Its id must not be registered already.
    pub async fn add_service(&self, input: &ServiceInput) -> Result<RegisteredService, StoreError> {
        input.check()?;
        let now = to_micros(Utc::now());
        let model = service::ActiveModel {
            id: NotSet,
            name: Set(input.name.trim().to_owned()),
            service_uri: Set(input.id.clone()),
            service_uri_hash: Set(sha256_hex(input.id.as_bytes())),
            inbox_url: Set(input.inbox.clone()),
            enabled: Set(input.enabled),
            inbound_patterns: Set(slugs(&input.inbound_patterns)),
            outbound_patterns: Set(slugs(&input.outbound_patterns)),
            cidrs: Set(serde_json::to_string(&input.cidrs).unwrap_or_else(|_| "[]".into())),
            token_hashes: Set(hashes(input.tokens.as_deref().unwrap_or_default())),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let added = model
            .insert(&self.db)
            .await
            .map(RegisteredService::from)
            .map_err(|e| already_registered(e, &input.id));
        self.services.clear();
        added
    }

    /// Replaces a service's settings (tokens only when `input.tokens` is given).
    pub async fn update_service(
        &self,
        key: i64,
        input: &ServiceInput,
    ) -> Result<RegisteredService, StoreError> {
        input.check()?;
        let current = service::Entity::find_by_id(key)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound(key))?;
        let mut model: service::ActiveModel = current.into();
        model.name = Set(input.name.trim().to_owned());
        model.service_uri = Set(input.id.clone());
        model.service_uri_hash = Set(sha256_hex(input.id.as_bytes()));
        model.inbox_url = Set(input.inbox.clone());
        model.enabled = Set(input.enabled);
        model.inbound_patterns = Set(slugs(&input.inbound_patterns));
        model.outbound_patterns = Set(slugs(&input.outbound_patterns));
        model.cidrs = Set(serde_json::to_string(&input.cidrs).unwrap_or_else(|_| "[]".into()));
        if let Some(tokens) = &input.tokens {
            model.token_hashes = Set(hashes(tokens));
        }
        model.updated_at = Set(to_micros(Utc::now()));
        let updated = model
            .update(&self.db)
            .await
            .map(RegisteredService::from)
            .map_err(|e| already_registered(e, &input.id));
        self.services.clear();
        updated
    }

    /// Enables or disables a service.
    pub async fn set_service_enabled(
        &self,
        key: i64,
        enabled: bool,
    ) -> Result<RegisteredService, StoreError> {
        let current = service::Entity::find_by_id(key)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound(key))?;
        let mut model: service::ActiveModel = current.into();
        model.enabled = Set(enabled);
        model.updated_at = Set(to_micros(Utc::now()));
        let updated = model.update(&self.db).await;
        self.services.clear();
        Ok(updated?.into())
    }

    /// Removes a service; false when there was none.
    pub async fn remove_service(&self, key: i64) -> Result<bool, StoreError> {
        let removed = service::Entity::delete_by_id(key).exec(&self.db).await;
        self.services.clear();
        Ok(removed?.rows_affected == 1)
    }

    /// One service by key.
    pub async fn service(&self, key: i64) -> Result<Option<RegisteredService>, StoreError> {
        Ok(service::Entity::find_by_id(key)
            .one(&self.db)
            .await?
            .map(RegisteredService::from))
    }

    /// The service registered under this id URI. Answered from memory for up to
    /// [`StoreConfig::service_cache_ttl`](crate::StoreConfig::service_cache_ttl) (unknown ids too),
    /// since the inbox asks on every request.
    pub async fn service_by_id(&self, id: &str) -> Result<Option<RegisteredService>, StoreError> {
        let hash = sha256_hex(id.as_bytes());
        let generation = match self.services.get(&hash) {
            Ok(cached) => return Ok(cached),
            Err(generation) => generation,
        };
        let service = service::Entity::find()
            .filter(service::Column::ServiceUriHash.eq(hash.clone()))
            .one(&self.db)
            .await?
            .map(RegisteredService::from);
        self.services.put(hash, service.clone(), generation);
        Ok(service)
    }

    /// The enabled service `n` comes from: the one registered under its `origin.id`, if it
    /// vouches for `n` ([`RegisteredService::vouches_for`]) on the sender's `evidence`. `Ok(None)`
    /// means the sender is untrusted: no origin, no service under it, or one that does not
    /// vouch (the caller may log the [`Attribution`]). The same rule, on the same evidence
    /// (stored with the notification), decides again when quarantine is released.
    pub async fn attribute(
        &self,
        n: &coar_model::Notification,
        evidence: &Evidence<'_>,
    ) -> Result<Attribution, StoreError> {
        let Some(origin) = n.origin().and_then(|o| o.id()) else {
            return Ok(Attribution::NoOrigin);
        };
        let Some(service) = self.service_by_id(origin).await? else {
            return Ok(Attribution::Unregistered);
        };
        let claims = Claims {
            origin_inbox: n.origin().and_then(|o| o.inbox()),
            pattern: n.pattern(),
        };
        Ok(match service.vouches_for(&claims, evidence) {
            Ok(()) => Attribution::Service(service),
            Err(why) => Attribution::NotVouched(service.key, why),
        })
    }

    /// The senders of quarantined notifications that are not registered, by id, with every
    /// (claimed inbox, address) they came with: one grouped query over the quarantine,
    /// however large.
    pub async fn unknown_senders(&self) -> Result<Vec<UnknownSender>, StoreError> {
        use notification::Column as C;
        let groups: Vec<SightingRow> = notification::Entity::find()
            .select_only()
            .column(C::OriginId)
            .column(C::OriginInbox)
            .column(C::RemoteAddr)
            .column_as(C::Id.count(), "n")
            .column_as(C::Id.max(), "latest")
            .filter(C::State.eq(State::Quarantined.as_str()))
            .filter(C::Direction.eq(Direction::Inbound.as_str()))
            .filter(C::OriginId.is_not_null())
            .group_by(C::OriginId)
            .group_by(C::OriginInbox)
            .group_by(C::RemoteAddr)
            .into_tuple()
            .all(&self.db)
            .await?;
        let registered: std::collections::HashSet<String> =
            self.services().await?.into_iter().map(|s| s.id).collect();
        let mut senders: std::collections::BTreeMap<String, UnknownSender> = Default::default();
        for (id, inbox, remote_addr, n, latest) in groups {
            if registered.contains(&id) {
                continue;
            }
            let count = u64::try_from(n).unwrap_or(0);
            let sender = senders.entry(id.clone()).or_insert_with(|| UnknownSender {
                id,
                count: 0,
                latest,
                seen: Vec::new(),
            });
            sender.count += count;
            sender.latest = sender.latest.max(latest);
            sender.seen.push(Sighting {
                inbox,
                remote_addr,
                count,
            });
        }
        Ok(senders
            .into_values()
            .map(|mut s| {
                s.seen
                    .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.inbox.cmp(&b.inbox)));
                s
            })
            .collect())
    }

    /// Releases the quarantined notifications that name `service` as origin and that it
    /// vouches for ([`RegisteredService::vouches_for`], on the evidence each recorded at receipt):
    /// they are queued, attributed to it, in one transaction. The others stay quarantined.
    /// Call it whenever a service is registered, enabled or changed.
    pub async fn release_for(&self, service: &RegisteredService) -> Result<Released, StoreError> {
        use notification::Column as C;
        let mut outcome = Released::default();
        if !service.enabled {
            return Ok(outcome);
        }
        let (_turn, txn) = self.begin_write().await?;
        let rows: Vec<EvidenceRow> = notification::Entity::find()
            .select_only()
            .column(C::Id)
            .column(C::OriginInbox)
            .column(C::Pattern)
            .column(C::RemoteAddr)
            .column(C::BearerSha256)
            .filter(C::State.eq(State::Quarantined.as_str()))
            .filter(C::Direction.eq(Direction::Inbound.as_str()))
            .filter(C::Id.in_subquery(crate::notifications::linked(&service.id, &["origin"])))
            .into_tuple()
            .all(&txn)
            .await?;
        let mut vouched = Vec::new();
        for row in &rows {
            match service.vouches_for_row(row) {
                Ok(()) => vouched.push(row.0),
                Err(_) => outcome.kept += 1,
            }
        }
        outcome.released = queue_attributed(&txn, &vouched, service.key).await?;
        txn.commit().await?;
        Ok(outcome)
    }

    /// Releases one quarantined notification, if the service it names as origin vouches for
    /// it on the evidence recorded at receipt. Anyone can claim any origin: an admin's
    /// click is not evidence, so what fails the rule stays quarantined (register the
    /// service, or change its rules, first).
    pub async fn release_one(&self, key: i64) -> Result<Result<(), NotReleased>, StoreError> {
        let Some(row) = notification::Entity::find_by_id(key).one(&self.db).await? else {
            return Err(StoreError::NotFound(key));
        };
        if row.state != State::Quarantined.as_str() {
            return Ok(Err(NotReleased::NotQuarantined));
        }
        let Some(origin) = row.origin_id.as_deref() else {
            return Ok(Err(NotReleased::NoService));
        };
        let Some(service) = self.service_by_id(origin).await? else {
            return Ok(Err(NotReleased::NoService));
        };
        let evidence: EvidenceRow = (
            row.id,
            row.origin_inbox,
            row.pattern,
            row.remote_addr,
            row.bearer_sha256,
        );
        if let Err(why) = service.vouches_for_row(&evidence) {
            return Ok(Err(NotReleased::Untrusted(why)));
        }
        let released = queue_attributed(&self.db, &[key], service.key).await?;
        Ok(if released == 1 {
            Ok(())
        } else {
            Err(NotReleased::NotQuarantined)
        })
    }

    /// How many inbound notifications wait in quarantine from `remote_addr` and naming
    /// `origin` as origin: the figures the quarantine's cap is checked against.
    pub async fn quarantined_from(
        &self,
        remote_addr: &str,
        origin: Option<&str>,
    ) -> Result<(u64, u64), StoreError> {
        use notification::Column as C;
        use sea_orm::PaginatorTrait;
        let quarantined = || {
            notification::Entity::find()
                .filter(C::State.eq(State::Quarantined.as_str()))
                .filter(C::Direction.eq(Direction::Inbound.as_str()))
        };
        let by_addr = quarantined()
            .filter(C::RemoteAddr.eq(remote_addr))
            .count(&self.db)
            .await?;
        let by_origin = match origin {
            Some(o) => {
                quarantined()
                    .filter(C::Id.in_subquery(crate::notifications::linked(o, &["origin"])))
                    .count(&self.db)
                    .await?
            }
            None => 0,
        };
        Ok((by_addr, by_origin))
    }

    /// Every service, by name.
    pub async fn services(&self) -> Result<Vec<RegisteredService>, StoreError> {
        Ok(service::Entity::find()
            .order_by_asc(service::Column::Name)
            .order_by_asc(service::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(RegisteredService::from)
            .collect())
    }
}
