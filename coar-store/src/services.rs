//! The service registry's types and its one trust rule ([`RegisteredService::vouches_for`]),
//! and the cache of lookups by id. The operations on the registry are in `registry.rs`.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::Utc;
use coar_model::Pattern;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, SqlErr, sea_query::Expr};

use crate::{
    Cidr, State, StoreError,
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
    /// What its notifications must prove ([`RegisteredService::vouches_for`]).
    pub signature_policy: SignaturePolicy,
    /// The public keys registered for it (its HTTP Message Signatures verify with these).
    pub keys: Vec<ServiceKey>,
    /// Where it publishes its JWK Set; the keys found there are [`fetched_keys`](Self::fetched_keys).
    pub key_set_url: Option<String>,
    /// The keys last fetched from `key_set_url`.
    pub fetched_keys: Vec<ServiceKey>,
    /// When `fetched_keys` was fetched.
    pub keys_fetched_at: Option<chrono::DateTime<Utc>>,
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
    /// JWK thumbprint (RFC 7638) of the key its HTTP Message Signature verified with.
    pub signature_key: Option<&'a str>,
}

/// What a service's notifications must prove, beyond an enabled service, the registered
/// inbox and an allowed pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignaturePolicy {
    /// The address ranges and the tokens, each when the service has any (a signature,
    /// when valid, is recorded but not needed).
    #[default]
    Rules,
    /// Any one of: a signature by one of its keys, an address in its ranges (when it has
    /// ranges), one of its tokens (when it has tokens). With neither ranges nor tokens,
    /// that is a signature.
    SignatureOrRangeOrToken,
    /// A signature by one of its keys, and the ranges and tokens as under `Rules`.
    SignatureRequired,
}

impl SignaturePolicy {
    /// Every policy, in the order a form lists them.
    pub const ALL: [SignaturePolicy; 3] = [
        SignaturePolicy::Rules,
        SignaturePolicy::SignatureOrRangeOrToken,
        SignaturePolicy::SignatureRequired,
    ];

    /// Its name: `rules`, `signature-or-range-or-token`, `signature-required`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignaturePolicy::Rules => "rules",
            SignaturePolicy::SignatureOrRangeOrToken => "signature-or-range-or-token",
            SignaturePolicy::SignatureRequired => "signature-required",
        }
    }
}

impl std::str::FromStr for SignaturePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<SignaturePolicy, String> {
        SignaturePolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| {
                format!("{s:?} is not rules, signature-or-range-or-token or signature-required")
            })
    }
}

/// A service's public key: the JWK as registered or published, and its RFC 7638
/// thumbprint (what evidence names it by). The caller that parses keys computes the
/// thumbprint (`coar_ldn::signature::VerifyingKey::thumbprint`); the store keeps both.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceKey {
    /// Its JWK thumbprint (base64url SHA-256).
    pub thumbprint: String,
    /// The public JWK.
    pub jwk: serde_json::Value,
}

impl ServiceKey {
    /// Its `kid`, if the JWK has one.
    pub fn kid(&self) -> Option<&str> {
        self.jwk.get("kid").and_then(|k| k.as_str())
    }
}

/// The most keys a service may have registered, and kept from its key set.
pub const MAX_SERVICE_KEYS: usize = 32;

/// The most bytes a service's keys take stored (a `TEXT` column holds 64 KiB on MariaDB).
pub const MAX_KEYS_BYTES: usize = 60_000;

/// How long keys fetched from a service's key-set URL count without being fetched again.
pub const FETCHED_KEYS_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

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
    /// Its policy requires a signature by one of its keys and none verified.
    #[error("the service requires an HTTP Message Signature by one of its keys")]
    SignatureMissing,
    /// Its policy wants a signature, an address in its ranges or a token, and none was given.
    #[error(
        "the sender gave neither a signature by the service's keys, nor an address in its ranges, nor one of its tokens"
    )]
    NoEvidence,
}

/// Who a received notification is attributed to ([`Store::attribute`](crate::Store::attribute)).
#[derive(Debug, Clone, PartialEq)]
pub enum Attribution {
    /// The registered service it names as origin vouches for it.
    Service(Box<RegisteredService>),
    /// It names no `origin.id`.
    NoOrigin,
    /// No service is registered under its `origin.id`.
    Unregistered,
    /// The service registered under its `origin.id` (this key) does not vouch for it.
    NotVouched(i64, Untrusted),
}

impl Attribution {
    /// [`Store::attribute`](crate::Store::attribute) when the caller has looked up `named`,
    /// the service registered under `n`'s `origin.id` (if any) already.
    pub fn of(
        n: &coar_model::Notification,
        named: Option<RegisteredService>,
        evidence: &Evidence<'_>,
    ) -> Attribution {
        if n.origin().and_then(|o| o.id()).is_none() {
            return Attribution::NoOrigin;
        }
        let Some(service) = named else {
            return Attribution::Unregistered;
        };
        let claims = Claims {
            origin_inbox: n.origin().and_then(|o| o.inbox()),
            pattern: n.pattern(),
        };
        match service.vouches_for(&claims, evidence) {
            Ok(()) => Attribution::Service(Box::new(service)),
            Err(why) => Attribution::NotVouched(service.key, why),
        }
    }

    /// The service, when one vouches.
    pub fn service(self) -> Option<RegisteredService> {
        match self {
            Attribution::Service(s) => Some(*s),
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

    /// Whether `thumbprint` names one of its keys, registered or fetched
    /// ([`all_keys`](Self::all_keys)).
    pub fn has_key(&self, thumbprint: &str) -> bool {
        self.all_keys().any(|k| k.thumbprint == thumbprint)
    }

    /// Whether its notifications' signatures can be checked: it has keys, or a key-set URL
    /// to fetch them from.
    pub fn verifies_signatures(&self) -> bool {
        !self.keys.is_empty() || self.key_set_url.is_some()
    }

    /// Its settings as input to change them: tokens and keys kept (`None`).
    pub fn to_input(&self) -> ServiceInput {
        ServiceInput {
            name: self.name.clone(),
            id: self.id.clone(),
            inbox: self.inbox.clone(),
            enabled: self.enabled,
            inbound_patterns: self.inbound_patterns.clone(),
            outbound_patterns: self.outbound_patterns.clone(),
            cidrs: self.cidrs.clone(),
            tokens: None,
            signature_policy: self.signature_policy,
            keys: None,
            key_set_url: self.key_set_url.clone(),
        }
    }

    /// Its keys: the registered ones, then those fetched from its key-set URL if they were
    /// fetched within [`FETCHED_KEYS_LIFETIME`] (a key set that cannot be fetched again for
    /// that long vouches for nothing more).
    pub fn all_keys(&self) -> impl Iterator<Item = &ServiceKey> {
        let fresh = self.keys_fetched_at.is_some_and(|at| {
            Utc::now()
                .signed_duration_since(at)
                .to_std()
                .unwrap_or_default()
                <= FETCHED_KEYS_LIFETIME
        });
        let fetched: &[ServiceKey] = if fresh { &self.fetched_keys } else { &[] };
        self.keys.iter().chain(fetched)
    }

    /// Whether `ip` is in one of the service's ranges (true when it has none).
    pub fn accepts_inbound(&self, pattern: Option<Pattern>) -> bool {
        self.inbound_patterns.is_empty()
            || pattern.is_some_and(|p| self.inbound_patterns.contains(&p))
    }

    /// The attribution rule: whether this service vouches for a notification that names it
    /// as origin, given what the notification claims and what its sender proved. The
    /// service must be enabled; a claimed `origin.inbox` must be the registered one (when
    /// both are known); the pattern must be allowed; and its [`SignaturePolicy`] must be
    /// met. Under `Rules`, the sender's address must be in the ranges (when there are any;
    /// an unknown address is in none) and one of the tokens must have been presented (when
    /// there are any); `SignatureRequired` adds a signature by one of its keys; under
    /// `SignatureOrRangeOrToken` any one of those suffices. The same rule decides at receipt
    /// and at every release from quarantine, on the evidence recorded at receipt and the
    /// service's keys, ranges and tokens of the day.
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
        if !self.accepts_inbound(claims.pattern) {
            return Err(Untrusted::PatternNotAccepted);
        }
        let signed = evidence.signature_key.is_some_and(|t| self.has_key(t));
        let in_range = evidence
            .remote_addr
            .is_some_and(|ip| self.address_allowed(ip));
        let with_token = evidence
            .bearer_sha256
            .is_some_and(|h| self.token_hash_matches(h));
        let rules = || {
            if !self.cidrs.is_empty() && !in_range {
                return Err(Untrusted::AddressOutsideRanges);
            }
            if !self.token_hashes.is_empty() && !with_token {
                return Err(Untrusted::TokenMissing);
            }
            Ok(())
        };
        match self.signature_policy {
            SignaturePolicy::Rules => rules(),
            SignaturePolicy::SignatureRequired if !signed => Err(Untrusted::SignatureMissing),
            SignaturePolicy::SignatureRequired => rules(),
            SignaturePolicy::SignatureOrRangeOrToken => {
                let by_range = !self.cidrs.is_empty() && in_range;
                let by_token = !self.token_hashes.is_empty() && with_token;
                if signed || by_range || by_token {
                    Ok(())
                } else {
                    Err(Untrusted::NoEvidence)
                }
            }
        }
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
    /// What its notifications must prove.
    pub signature_policy: SignaturePolicy,
    /// Its public keys. `None` keeps the current ones.
    pub keys: Option<Vec<ServiceKey>>,
    /// Where it publishes its JWK Set (an HTTP URI). Changing it forgets the keys fetched
    /// from the old one.
    pub key_set_url: Option<String>,
}

pub(crate) fn slugs(patterns: &[Pattern]) -> String {
    serde_json::to_string(&patterns.iter().map(|p| p.slug()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

fn parse_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

/// A stored list of keys; what cannot be read (never written so) is no key.
pub(crate) fn parse_keys(s: Option<&str>) -> Vec<ServiceKey> {
    s.and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

pub(crate) fn keys_json(keys: &[ServiceKey]) -> Option<String> {
    (!keys.is_empty()).then(|| serde_json::to_string(keys).unwrap_or_else(|_| "[]".into()))
}

/// The first of `keys` that fit, stored, in [`MAX_KEYS_BYTES`] (at most [`MAX_SERVICE_KEYS`]).
pub(crate) fn keys_within_limits(keys: &[ServiceKey]) -> &[ServiceKey] {
    let mut bytes = 2;
    let mut n = 0;
    for k in keys.iter().take(MAX_SERVICE_KEYS) {
        bytes += serde_json::to_string(k).map_or(usize::MAX / 2, |s| s.len() + 1);
        if bytes > MAX_KEYS_BYTES {
            break;
        }
        n += 1;
    }
    &keys[..n]
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
            signature_policy: m
                .signature_policy
                .as_deref()
                .and_then(|p| p.parse().ok())
                .unwrap_or_default(),
            keys: parse_keys(m.public_keys.as_deref()),
            key_set_url: m.key_set_url,
            fetched_keys: parse_keys(m.fetched_keys.as_deref()),
            keys_fetched_at: m.keys_fetched_at.map(from_micros),
            created_at: from_micros(m.created_at),
            updated_at: from_micros(m.updated_at),
        }
    }
}

impl ServiceInput {
    pub(crate) fn check(&self) -> Result<(), StoreError> {
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
        if let Some(url) = &self.key_set_url
            && !coar_model::is_http_uri(url)
        {
            return Err(StoreError::Invalid {
                field: "key_set_url",
                message: format!("{url:?} is not an HTTP URI"),
            });
        }
        if let Some(keys) = &self.keys {
            if keys.len() > MAX_SERVICE_KEYS {
                return Err(StoreError::Invalid {
                    field: "keys",
                    message: format!("a service has at most {MAX_SERVICE_KEYS} keys"),
                });
            }
            if keys_within_limits(keys).len() < keys.len() {
                return Err(StoreError::Invalid {
                    field: "keys",
                    message: format!("a service's keys take at most {MAX_KEYS_BYTES} bytes"),
                });
            }
            if keys
                .iter()
                .any(|k| k.thumbprint.is_empty() || !k.jwk.is_object())
            {
                return Err(StoreError::Invalid {
                    field: "keys",
                    message: "each key needs its thumbprint and a JWK object".into(),
                });
            }
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
pub(crate) fn already_registered(err: sea_orm::DbErr, id: &str) -> StoreError {
    if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        StoreError::Invalid {
            field: "id",
            message: format!("a service with id {id:?} is already registered"),
        }
    } else {
        err.into()
    }
}

pub(crate) fn hashes(tokens: &[String]) -> String {
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
/// pattern slug, remote address, SHA-256 of the bearer token, thumbprint of the key its
/// signature verified with.
pub(crate) type EvidenceRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// One group of the quarantine: origin, claimed inbox, address, count, latest key.
pub(crate) type SightingRow = (String, Option<String>, Option<String>, i64, i64);

impl RegisteredService {
    /// [`RegisteredService::vouches_for`] on a stored row's claims and evidence.
    pub(crate) fn vouches_for_row(&self, row: &EvidenceRow) -> Result<(), Untrusted> {
        let (_, inbox, pattern, addr, bearer, signature_key) = row;
        let claims = Claims {
            origin_inbox: inbox.as_deref(),
            pattern: pattern.as_deref().and_then(Pattern::from_slug),
        };
        let evidence = Evidence {
            remote_addr: addr.as_deref().and_then(|a| a.parse().ok()),
            bearer_sha256: bearer.as_deref(),
            signature_key: signature_key.as_deref(),
        };
        self.vouches_for(&claims, &evidence)
    }
}

/// Queues the quarantined notifications among `keys`, attributed to `service`; how many.
pub(crate) async fn queue_attributed(
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

/// Why [`Store::release_one`](crate::Store::release_one) left a notification where it was.
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
    pub(crate) fn get(&self, hash: &str) -> Result<Option<RegisteredService>, u64> {
        let inner = self.lock();
        match inner.entries.get(hash) {
            Some((at, service)) if self.fresh(*at) => Ok(service.clone()),
            _ => Err(inner.generation),
        }
    }

    pub(crate) fn put(&self, hash: String, service: Option<RegisteredService>, generation: u64) {
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
    pub(crate) fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }
}
