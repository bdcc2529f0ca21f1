//! The engine's state: what admission, the workers and every adapter share.

use std::{sync::Arc, time::Duration};

use coar_ldn::{Contexts, Receiver, ReceiverConfig};
use coar_store::Store;

use crate::{
    batch, config::Config, config::TrustPolicy, limits, metrics, parse, pipeline::Pipeline,
    urls::Urls,
};

/// The engine: the store, the clients, the receiver, the pipeline and the URLs, built once
/// from a [`Config`]. Admission ([`Core::admit`]) and the workers ([`crate::worker`]) run on
/// it; the HTTP adapter (feature `http`) and any other framework hold it in an `Arc`.
pub struct Core {
    config: Config,
    urls: Urls,
    signing: std::sync::Arc<coar_ldn::signature::SigningKey>,
    /// The last read of [`Core::published_keys`], and when.
    published:
        std::sync::Mutex<Option<(std::time::Instant, Vec<coar_ldn::signature::VerifyingKey>)>>,
    store: Store,
    receiver: Receiver,
    metrics: metrics::Metrics,
    client: coar_client::Client,
    webhooks: coar_client::Client,
    pipeline: Pipeline,
    pub(crate) inserter: batch::Inserter,
    parsers: parse::ParsePool,
    pub(crate) address_limit: Option<limits::Limiter>,
    pub(crate) service_limit: Option<limits::Limiter>,
    pub(crate) quarantined: limits::QuarantineCounts,
    pub(crate) key_refresh: crate::signatures::KeyRefresh,
    pub(crate) recent_signatures: crate::signatures::RecentSignatures,
}

/// How long a retired signing key stays published.
pub const KEY_GRACE: chrono::Duration = chrono::Duration::days(7);

/// The key of `signing_key_file`, or the database's key in use (an Ed25519 key made now if
/// there is none); its `keyid` is its RFC 7638 thumbprint.
async fn signing_key(
    config: &Config,
    store: &Store,
) -> Result<std::sync::Arc<coar_ldn::signature::SigningKey>, coar_store::StoreError> {
    use coar_ldn::signature::SigningKey;
    let invalid = |message: String| coar_store::StoreError::Invalid {
        field: "signing_key_file",
        message,
    };
    let key = match &config.signing_key_file {
        Some(file) => {
            let pem = std::fs::read_to_string(file)
                .map_err(|e| invalid(format!("{}: {e}", file.display())))?;
            SigningKey::from_pem("", &pem)
                .map_err(|e| invalid(format!("{}: {e}", file.display())))?
                .named_by_thumbprint()
        }
        None => {
            let fresh = new_signing_key().map_err(coar_store::StoreError::Unavailable)?;
            let stored = store.active_signing_key(|| fresh).await?;
            SigningKey::from_pkcs8(&stored.kid, &stored.pkcs8).map_err(|e| {
                coar_store::StoreError::Invalid {
                    field: "signing key",
                    message: format!("the stored key {}: {e}", stored.kid),
                }
            })?
        }
    };
    Ok(std::sync::Arc::new(key))
}

/// A fresh Ed25519 key to store, named by its thumbprint.
pub fn new_signing_key() -> Result<coar_store::NewSigningKey, String> {
    use coar_ldn::signature::SigningKey;
    let (key, pkcs8) = SigningKey::generate_ed25519("").map_err(|e| e.to_string())?;
    let key = key.named_by_thumbprint();
    Ok(coar_store::NewSigningKey {
        kid: key.key_id().to_owned(),
        alg: key.algorithm().name().to_owned(),
        pkcs8,
    })
}

/// Building a [`Core`] failed: the database could not be opened or migrated, or an HTTP
/// client could not be built.
pub type OpenError = coar_store::StoreError;

impl Core {
    /// Opens the store (migrating it) and builds the engine, with `pipeline` run on each
    /// inbound notification.
    pub async fn open(config: Config, pipeline: Pipeline) -> Result<Core, OpenError> {
        let mut store_config = coar_store::StoreConfig::new(config.database_url.clone());
        store_config.lease = config.lease;
        store_config.policy = coar_store::QueuePolicy {
            max_attempts: config.max_attempts,
            base_delay: config.retry_base,
            max_delay: Duration::from_secs(3600).max(config.retry_base),
            per_inbox: config.deliveries_per_inbox,
        };
        let store = Store::open_with(store_config).await?;
        let signing = signing_key(&config, &store).await?;
        let client_config = coar_client::ClientConfig {
            signing: Some(signing.clone()),
            allow_private: config.allow_private_targets,
            timeout: config.send_timeout,
            user_agent: format!(
                "coar-notify-rs/{} ({})",
                env!("CARGO_PKG_VERSION"),
                config.base_url
            ),
            max_retry_after: config.max_retry_after,
            tls_roots: config.tls_roots,
            ..coar_client::ClientConfig::default()
        };
        // Operator-configured URLs (webhooks): the configuration file is their allow-list,
        // so private addresses are allowed, but no redirect is followed, so a webhook
        // reaches only the URL written there.
        let webhook_config = coar_client::ClientConfig {
            allow_private: true,
            max_redirects: 0,
            ..client_config.clone()
        };
        let client_error = |e: coar_client::ClientError| coar_store::StoreError::Invalid {
            field: "client",
            message: e.to_string(),
        };
        let client = coar_client::Client::new(client_config, contexts()).map_err(client_error)?;
        let webhooks =
            coar_client::Client::new(webhook_config, contexts()).map_err(client_error)?;
        let receiver = Receiver::new(
            contexts(),
            ReceiverConfig {
                max_bytes: config.max_body,
                compact_context: Some(serde_json::json!(coar_model::vocab::STANDARD_CONTEXT)),
                ..ReceiverConfig::default()
            },
        );
        Ok(Core {
            receiver,
            metrics: metrics::Metrics::default(),
            inserter: batch::Inserter::spawn(store.clone()),
            store,
            client,
            webhooks,
            pipeline,
            parsers: parse::ParsePool::per_core(),
            address_limit: config.rate_limit.map(limits::Limiter::new),
            service_limit: config.service_rate_limit.map(limits::Limiter::new),
            quarantined: limits::QuarantineCounts::default(),
            urls: Urls::new(&config.base_url),
            signing,
            published: std::sync::Mutex::default(),
            key_refresh: crate::signatures::KeyRefresh::default(),
            recent_signatures: crate::signatures::RecentSignatures::default(),
            config,
        })
    }

    /// The key what this server sends is signed with.
    pub fn signing_key(&self) -> &coar_ldn::signature::SigningKey {
        &self.signing
    }

    /// The public keys peers verify this server's signatures with: the key in use, and
    /// those retired less than [`KEY_GRACE`] ago (what they signed may still be in flight
    /// or in a peer's retry queue).
    ///
    /// Read from the store at most once a minute: `/keys` is public, and each read decodes
    /// the retired private keys to derive their public halves.
    pub async fn published_keys(
        &self,
    ) -> Result<Vec<coar_ldn::signature::VerifyingKey>, coar_store::StoreError> {
        const FRESH: std::time::Duration = std::time::Duration::from_secs(60);
        if let Some((at, keys)) = &*self.published.lock().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < FRESH
        {
            return Ok(keys.clone());
        }
        let keys = self.read_published_keys().await?;
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), keys.clone()));
        Ok(keys)
    }

    async fn read_published_keys(
        &self,
    ) -> Result<Vec<coar_ldn::signature::VerifyingKey>, coar_store::StoreError> {
        let mut keys = vec![self.signing.verifying_key()];
        let since = chrono::Utc::now() - KEY_GRACE;
        for stored in self.store.signing_keys().await? {
            // The key in use here is first already. A stored key in use that is not this
            // process's is the database's newer one (rotated since this process started: the
            // others sign with it), published unless a key file replaces the database's keys.
            let skip = match stored.retired_at {
                _ if stored.kid == self.signing.key_id() => true,
                None => self.config.signing_key_file.is_some(),
                Some(at) => at < since,
            };
            if skip {
                continue;
            }
            if let Ok(k) = coar_ldn::signature::SigningKey::from_pkcs8(&stored.kid, &stored.pkcs8) {
                keys.push(k.verifying_key());
            }
        }
        Ok(keys)
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every URL this server names.
    pub fn urls(&self) -> &Urls {
        &self.urls
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The LDN receiver, with the ActivityStreams and COAR Notify contexts registered.
    pub fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    /// Counters for `/metrics`.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// The client deliveries go through: to peer-chosen targets, always under the address
    /// policy (unless `allow_private_targets` is set, for development).
    pub fn client(&self) -> &coar_client::Client {
        &self.client
    }

    /// The client for operator-configured URLs (webhooks): private addresses allowed, no
    /// redirect followed.
    pub fn webhooks(&self) -> &coar_client::Client {
        &self.webhooks
    }

    /// The inbound processing pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The bounded pool that reads peers' bodies off the async runtime.
    pub fn parsers(&self) -> &parse::ParsePool {
        &self.parsers
    }

    /// The inbox URL.
    pub fn inbox_url(&self) -> String {
        self.urls.inbox()
    }

    /// A stored notification's URL.
    pub fn notification_url(&self, key: i64) -> String {
        self.urls.notification(key)
    }

    /// This server's identity in what it sends: `id` (its base URL), `inbox`, `name`.
    pub fn identity(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.urls.service(),
            "inbox": self.inbox_url(),
            "name": self.config.name,
            "type": "Service",
        })
    }

    /// Whether public listings (`GET /inbox`, `/feed`) show only notifications attributed
    /// to a registered service: unless this is an open inbox (`COAR_TRUST=accept`) or
    /// `COAR_PUBLISH_UNTRUSTED` is set, a forged "review by X" is never published.
    pub fn publishes_attributed_only(&self) -> bool {
        self.config.trust != TrustPolicy::Accept && !self.config.publish_untrusted
    }

    /// Checks a body as the inbox does ([`Receiver::check`]), on the parsing pool unless it
    /// is small JSON.
    pub async fn check_body(
        self: &Arc<Self>,
        content_type: Option<&str>,
        body: bytes::Bytes,
    ) -> Result<coar_ldn::Checked, BodyError> {
        let json =
            content_type.and_then(coar_ldn::body_format) == Some(coar_ldn::BodyFormat::JsonLd);
        if json && body.len() <= parse::INLINE_JSON_BYTES {
            return Ok(self.receiver.check(content_type, &body, None)?);
        }
        let (core, content_type) = (self.clone(), content_type.map(str::to_owned));
        Ok(self
            .parsers
            .run(move || core.receiver.check(content_type.as_deref(), &body, None))
            .await??)
    }

    /// Reads a body fully, with its RDF dataset ([`Receiver::receive`]), on the parsing pool;
    /// `base` resolves relative IRIs (the notification's own URL, once it has one).
    pub async fn receive_body(
        self: &Arc<Self>,
        content_type: &str,
        body: Vec<u8>,
        base: Option<String>,
    ) -> Result<coar_ldn::Received, BodyError> {
        let (core, content_type) = (self.clone(), content_type.to_owned());
        Ok(self
            .parsers
            .run(move || {
                core.receiver
                    .receive(Some(&content_type), &body, base.as_deref())
            })
            .await??)
    }
}

/// Reading a body failed: it is not what the receiver accepts, or no parsing slot came free.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is refused (media type, syntax, budgets, contexts).
    #[error(transparent)]
    Refused(#[from] coar_ldn::ReceiveError),
    /// Every parsing slot stayed busy.
    #[error(transparent)]
    Busy(#[from] parse::Busy),
}

/// The JSON-LD contexts a COAR Notify server knows: ActivityStreams (bundled in coar-ldn)
/// and COAR Notify 1.0.1 and 0.9.0 (from coar-model).
pub fn contexts() -> Contexts {
    let mut contexts = Contexts::default();
    for (iri, document) in coar_model::vocab::context_documents() {
        contexts
            .register(iri, document)
            .unwrap_or_else(|e| unreachable!("coar-model's context documents are valid: {e}"));
    }
    contexts
}
