//! Senders' HTTP Message Signatures (RFC 9421) at admission: the keys a registered service
//! verifies with (registered by an admin, or fetched from its key-set URL), and the check
//! that turns a signed request into evidence ([`coar_store::Evidence::signature_key`]).
//!
//! A signature is checked against the keys of the service the notification names as its
//! origin, and only those: a key proves who sent it, the origin says who it claims to be,
//! and [`coar_store::RegisteredService::vouches_for`] decides whether the two agree.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use coar_ldn::signature::{self, SignatureError, Verified, VerifyingKey};
use coar_store::{RegisteredService, Released, ServiceInput, ServiceKey, StoreError};
use http::HeaderMap;
use serde_json::Value;

use crate::{Core, Rejection};

/// What a signed request carried besides its body, for its signature to be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The method (`POST`).
    pub method: String,
    /// The URI the sender addressed: this inbox's public URL, with the request's query.
    pub target_uri: String,
    /// The request's header fields.
    pub headers: HeaderMap,
}

impl SignedRequest {
    /// The request to check, or `None` when it carries neither `Signature-Input` nor
    /// `Signature` (then the other rules apply alone).
    pub fn of(method: &str, target_uri: String, headers: &HeaderMap) -> Option<SignedRequest> {
        (headers.contains_key("signature-input") || headers.contains_key("signature")).then(|| {
            SignedRequest {
                method: method.to_owned(),
                target_uri,
                headers: headers.clone(),
            }
        })
    }
}

/// The keys an admin gives for a service: a JWK Set (`{"keys": [...]}`), an array of JWKs,
/// or one JWK. Each must be an Ed25519 or RSA public key with a `kid`; the first that is
/// not is named in the error.
pub fn service_keys(value: &Value) -> Result<Vec<ServiceKey>, String> {
    let jwks: Vec<&Value> = match value {
        Value::Object(o) if o.contains_key("keys") => o["keys"]
            .as_array()
            .ok_or("a JWK Set's keys is an array")?
            .iter()
            .collect(),
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![value],
        _ => return Err("give a JWK Set, an array of JWKs or one JWK".into()),
    };
    if jwks.len() > coar_store::MAX_SERVICE_KEYS {
        return Err(format!(
            "a service has at most {} keys",
            coar_store::MAX_SERVICE_KEYS
        ));
    }
    if jwks.iter().any(|k| k.get("d").is_some()) {
        return Err("that is a private key: give the public JWK (without \"d\")".into());
    }
    jwks.iter()
        .enumerate()
        .map(|(i, jwk)| {
            VerifyingKey::from_jwk(jwk)
                .map(|k| service_key(&k))
                .map_err(|e| format!("key {}: {e}", i + 1))
        })
        .collect()
}

/// A verifying key as the registry keeps it.
pub fn service_key(key: &VerifyingKey) -> ServiceKey {
    ServiceKey {
        thumbprint: key.thumbprint(),
        jwk: key.to_jwk(),
    }
}

/// The key of `service` that `keyid` names: by its `kid`, else by its thumbprint. A stored
/// key whose JWK is not the key its thumbprint names (an edited import) is no key.
fn resolve(service: &RegisteredService, keyid: &str) -> Option<VerifyingKey> {
    let by_kid = service.all_keys().find(|k| k.kid() == Some(keyid));
    by_kid
        .or_else(|| service.all_keys().find(|k| k.thumbprint == keyid))
        .and_then(|k| {
            VerifyingKey::from_jwk(&k.jwk)
                .ok()
                .filter(|v| v.thumbprint() == k.thumbprint)
        })
}

/// How often at most a service's key set is fetched because a request named a key it does
/// not have: a sender cannot make this server fetch more often than that by naming keys.
const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// How long fetched keys are used before they are fetched again (when a request needs them):
/// a key the service stops publishing is forgotten within this.
pub const KEY_SET_TTL: Duration = Duration::from_secs(3600);

/// When each service's key set was last fetched by this process.
#[derive(Debug, Default)]
pub(crate) struct KeyRefresh {
    last: Mutex<HashMap<i64, Instant>>,
}

impl KeyRefresh {
    /// Whether `service`'s key set may be fetched now; if so, the fetch is counted.
    fn take(&self, service: i64) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last
            .get(&service)
            .is_some_and(|at| now.duration_since(*at) < REFRESH_INTERVAL)
        {
            return false;
        }
        if last.len() > 10_000 {
            last.retain(|_, at| now.duration_since(*at) < REFRESH_INTERVAL);
        }
        last.insert(service, now);
        true
    }
}

/// Signatures this process accepted lately, until they expire: a replay to this process is
/// refused before it spends anything (the service's rate, a place in quarantine). The store
/// is what decides (a replay to another process, or one racing the first, is found when its
/// notification is stored); this only spares the work. Bounded: past [`REPLAY_CACHE`]
/// entries the expired go, and if none had, all (the store still decides).
#[derive(Debug, Default)]
pub(crate) struct RecentSignatures {
    seen: Mutex<HashMap<String, i64>>,
}

/// The most signatures [`RecentSignatures`] remembers.
const REPLAY_CACHE: usize = 100_000;

impl RecentSignatures {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `replay_key` was accepted here and has not expired by `now`.
    pub(crate) fn seen(&self, replay_key: &str, now: i64) -> bool {
        self.lock()
            .get(replay_key)
            .is_some_and(|until| *until >= now)
    }

    /// Remembers an accepted signature until `until` (Unix seconds).
    pub(crate) fn remember(&self, replay_key: String, until: i64, now: i64) {
        let mut seen = self.lock();
        if seen.len() >= REPLAY_CACHE {
            seen.retain(|_, u| *u >= now);
            if seen.len() >= REPLAY_CACHE {
                seen.clear();
            }
        }
        seen.insert(replay_key, until);
    }
}

/// What [`Core::save_service`] did.
#[derive(Debug)]
pub struct SavedService {
    /// The service as saved (with the keys just fetched from its key-set URL).
    pub service: RegisteredService,
    /// What its rules now vouch for in the quarantine, released.
    pub released: Released,
    /// Why its key set could not be fetched, if it has a URL and that failed (the service
    /// is saved all the same).
    pub key_set_error: Option<String>,
}

impl Core {
    /// Registers a service (`key` `None`) or changes one, as the API and the dashboard do:
    /// its key-set URL checked ([`Core::check_key_set_url`]), the service stored, its key set
    /// fetched, then what its rules now vouch for released from quarantine.
    pub async fn save_service(
        &self,
        key: Option<i64>,
        input: &ServiceInput,
    ) -> Result<SavedService, StoreError> {
        if let Some(url) = &input.key_set_url {
            self.check_key_set_url(url)
                .map_err(|message| StoreError::Invalid {
                    field: "key_set_url",
                    message,
                })?;
        }
        let mut service = match key {
            Some(k) => self.store().update_service(k, input).await?,
            None => self.store().add_service(input).await?,
        };
        let mut key_set_error = None;
        if service.key_set_url.is_some() {
            match self.refresh_service_keys(&service).await {
                Ok(updated) => service = updated,
                Err(e) => key_set_error = Some(e),
            }
        }
        let released = self.store().release_for(&service).await?;
        Ok(SavedService {
            service,
            released,
            key_set_error,
        })
    }

    /// Whether `url` may be a service's key-set URL: `https`, since whoever can change what
    /// it answers can sign as the service (`http` too with `COAR_ALLOW_PRIVATE_TARGETS`,
    /// for development).
    pub fn check_key_set_url(&self, url: &str) -> Result<(), String> {
        let https = url::Url::parse(url).is_ok_and(|u| u.scheme() == "https");
        if https || (self.config().allow_private_targets && coar_model::is_http_uri(url)) {
            Ok(())
        } else {
            Err(format!(
                "{url:?} is not an https URL: whoever can change what it answers could sign as the service"
            ))
        }
    }

    /// Fetches `service`'s JWK Set from its key-set URL (through the outbound address
    /// policy and size limit) and records the keys found; the service as it is then.
    pub async fn refresh_service_keys(
        &self,
        service: &RegisteredService,
    ) -> Result<RegisteredService, String> {
        let Some(url) = service.key_set_url.as_deref() else {
            return Err("the service has no key-set URL".into());
        };
        self.check_key_set_url(url)?;
        let set = self
            .client()
            .fetch(url)
            .await
            .map_err(|e| format!("fetching {url}: {e}"))?;
        let keys = signature::parse_jwk_set(&set).map_err(|e| format!("{url}: {e}"))?;
        let keys: Vec<ServiceKey> = keys.iter().map(service_key).collect();
        tracing::info!(
            service = service.key,
            url,
            keys = keys.len(),
            "fetched the service's key set"
        );
        self.store()
            .set_fetched_keys(service.key, url, &keys)
            .await
            .map_err(|e| e.to_string())
    }

    /// Checks a signed request against the keys of `service` (the one its notification
    /// names as origin, if registered; updated when its key set is fetched again). `Ok(None)`: no signature to count, either none was
    /// sent or it names a key while the origin names no service that has keys (an unknown
    /// sender's signature, or a registered peer's that is not trusted by signature, cannot
    /// be checked; the other rules decide, as for an unsigned one; every coar-notify server
    /// signs what it sends). A signature that is present and wrong otherwise is an error.
    pub(crate) async fn check_signature(
        &self,
        signed: &SignedRequest,
        body: &[u8],
        service: &mut Option<RegisteredService>,
    ) -> Result<Option<Verified>, Rejection> {
        // Fetch the key set when a named key is not in it, or it is old; at most every
        // REFRESH_INTERVAL per service.
        if let Some(s) = &service
            && s.key_set_url.is_some()
        {
            let ids = signature::key_ids(&signed.headers)
                .ok()
                .flatten()
                .unwrap_or_default();
            let unknown = ids.iter().any(|id| resolve(s, id).is_none());
            let stale = s.keys_fetched_at.is_none_or(|at| {
                chrono::Utc::now()
                    .signed_duration_since(at)
                    .to_std()
                    .unwrap_or_default()
                    > KEY_SET_TTL
            });
            if (unknown || stale) && self.key_refresh.take(s.key) {
                match self.refresh_service_keys(s).await {
                    Ok(updated) => *service = Some(updated),
                    Err(e) => {
                        tracing::warn!(service = s.key, error = %e, "the service's key set could not be fetched")
                    }
                }
            }
        }
        let request = signature::Request {
            method: &signed.method,
            target_uri: &signed.target_uri,
            headers: &signed.headers,
        };
        let policy = signature::Policy {
            max_age: i64::try_from(self.config().signature_window.as_secs()).unwrap_or(300),
            ..signature::Policy::default()
        };
        let now = chrono::Utc::now().timestamp();
        let verified = signature::verify_request(&request, body, now, policy, |id| {
            service.as_ref().and_then(|s| resolve(s, id))
        });
        match verified {
            Ok(v) => Ok(v),
            Err(SignatureError::UnknownKey(_))
                if !service.as_ref().is_some_and(|s| s.verifies_signatures()) =>
            {
                Ok(None)
            }
            Err(e) => Err(Rejection::Signature(e)),
        }
    }
}
