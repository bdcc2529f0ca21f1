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
    QuerySelect, Set, SqlErr,
};
use serde::Serialize;

use crate::{
    Cidr, Direction, State, Store, StoreError,
    entity::{notification, service},
    model::{from_micros, to_micros},
    sha256_hex,
};

/// A registered service, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
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
    #[serde(skip)]
    pub token_hashes: Vec<String>,
    /// When it was registered.
    pub created_at: chrono::DateTime<Utc>,
    /// Last change.
    pub updated_at: chrono::DateTime<Utc>,
}

impl Service {
    /// Whether `token` is one of the service's tokens (compared by hash, in constant time).
    pub fn token_matches(&self, token: &str) -> bool {
        let hash = sha256_hex(token.as_bytes());
        self.token_hashes.iter().fold(false, |found, h| {
            found | constant_time_eq(h.as_bytes(), hash.as_bytes())
        })
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
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

impl From<service::Model> for Service {
    fn from(m: service::Model) -> Service {
        let patterns = |s: &str| {
            parse_list(s)
                .iter()
                .filter_map(|p| Pattern::from_slug(p))
                .collect()
        };
        Service {
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownSender {
    /// Its `origin.id`.
    pub id: String,
    /// The `origin.inbox` of its latest quarantined notification.
    pub inbox: Option<String>,
    /// How many of its notifications are quarantined.
    pub count: u64,
    /// The key of the latest.
    pub latest: i64,
}

/// Services recently looked up by id (the inbox asks once per request), with a generation
/// so that a lookup racing a change never caches what the change replaced.
#[derive(Debug)]
pub(crate) struct ServiceCache {
    ttl: Duration,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    generation: u64,
    entries: HashMap<String, (Instant, Option<Service>)>,
}

/// The most ids remembered (unknown senders included); past it, expired entries go, and
/// if none had expired, all.
const CACHE_CAPACITY: usize = 4096;

impl ServiceCache {
    pub(crate) fn new(ttl: Duration) -> ServiceCache {
        ServiceCache {
            ttl,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh entry, or the generation to store a looked-up one under.
    fn get(&self, hash: &str) -> Result<Option<Service>, u64> {
        let inner = self.lock();
        match inner.entries.get(hash) {
            Some((at, service)) if at.elapsed() < self.ttl => Ok(service.clone()),
            _ => Err(inner.generation),
        }
    }

    fn put(&self, hash: String, service: Option<Service>, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut inner = self.lock();
        if inner.generation != generation {
            return; // the registry changed while this was read
        }
        if inner.entries.len() >= CACHE_CAPACITY {
            let ttl = self.ttl;
            inner.entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if inner.entries.len() >= CACHE_CAPACITY {
                inner.entries.clear();
            }
        }
        inner.entries.insert(hash, (Instant::now(), service));
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
    pub async fn add_service(&self, input: &ServiceInput) -> Result<Service, StoreError> {
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
            .map(Service::from)
            .map_err(|e| already_registered(e, &input.id));
        self.services.clear();
        added
    }

    /// Replaces a service's settings (tokens only when `input.tokens` is given).
    pub async fn update_service(
        &self,
        key: i64,
        input: &ServiceInput,
    ) -> Result<Service, StoreError> {
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
            .map(Service::from)
            .map_err(|e| already_registered(e, &input.id));
        self.services.clear();
        updated
    }

    /// Enables or disables a service.
    pub async fn set_service_enabled(
        &self,
        key: i64,
        enabled: bool,
    ) -> Result<Service, StoreError> {
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
    pub async fn service(&self, key: i64) -> Result<Option<Service>, StoreError> {
        Ok(service::Entity::find_by_id(key)
            .one(&self.db)
            .await?
            .map(Service::from))
    }

    /// The service registered under this id URI. Answered from memory for up to
    /// [`Config::service_cache_ttl`](crate::Config::service_cache_ttl) (unknown ids too),
    /// since the inbox asks on every request.
    pub async fn service_by_id(&self, id: &str) -> Result<Option<Service>, StoreError> {
        let hash = sha256_hex(id.as_bytes());
        let generation = match self.services.get(&hash) {
            Ok(cached) => return Ok(cached),
            Err(generation) => generation,
        };
        let service = service::Entity::find()
            .filter(service::Column::ServiceUriHash.eq(hash.clone()))
            .one(&self.db)
            .await?
            .map(Service::from);
        self.services.put(hash, service.clone(), generation);
        Ok(service)
    }

    /// The senders of quarantined notifications that are not registered, by id: one grouped
    /// query over the quarantine, however large, and one for the inboxes.
    pub async fn unknown_senders(&self) -> Result<Vec<UnknownSender>, StoreError> {
        use notification::Column as C;
        let groups: Vec<(String, i64, i64)> = notification::Entity::find()
            .select_only()
            .column(C::OriginId)
            .column_as(C::Id.count(), "n")
            .column_as(C::Id.max(), "latest")
            .filter(C::State.eq(State::Quarantined.as_str()))
            .filter(C::Direction.eq(Direction::Inbound.as_str()))
            .filter(C::OriginId.is_not_null())
            .group_by(C::OriginId)
            .order_by_asc(C::OriginId)
            .into_tuple()
            .all(&self.db)
            .await?;
        let registered: std::collections::HashSet<String> =
            self.services().await?.into_iter().map(|s| s.id).collect();
        let groups: Vec<_> = groups
            .into_iter()
            .filter(|(origin, _, _)| !registered.contains(origin))
            .collect();
        let mut inboxes: HashMap<i64, Option<String>> = HashMap::new();
        for chunk in groups.chunks(500) {
            let latest: Vec<i64> = chunk.iter().map(|(_, _, l)| *l).collect();
            let rows: Vec<(i64, Option<String>)> = notification::Entity::find()
                .select_only()
                .column(C::Id)
                .column(C::OriginInbox)
                .filter(C::Id.is_in(latest))
                .into_tuple()
                .all(&self.db)
                .await?;
            inboxes.extend(rows);
        }
        Ok(groups
            .into_iter()
            .map(|(id, count, latest)| UnknownSender {
                inbox: inboxes.remove(&latest).flatten(),
                id,
                count: u64::try_from(count).unwrap_or(0),
                latest,
            })
            .collect())
    }

    /// Every service, by name.
    pub async fn services(&self) -> Result<Vec<Service>, StoreError> {
        Ok(service::Entity::find()
            .order_by_asc(service::Column::Name)
            .order_by_asc(service::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Service::from)
            .collect())
    }
}
