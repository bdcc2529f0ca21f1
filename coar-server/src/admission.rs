//! Admission: the one gate every received notification goes through, whatever framework
//! carried it. Bytes and the sender's evidence in; a [`Admitted`] (durably stored) or a
//! [`Rejection`] (nothing stored) out.
//!
//! In order: the media type and the address's rate ([`Core::screen`], before the body is
//! read); the body within the receiver's budgets; one activity; the pattern's validation
//! (or `accept_unrecognised`); attribution to a registered service on the evidence
//! ([`coar_store::Store::attribute`]); the service's rate; the trust policy, mapped to a
//! queue state (quarantine has a cap per address and per claimed origin); the group commit.
//! The HTTP inbox, the fuzz target and `examples/embedded.rs` all call it.

use std::{net::IpAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use coar_ldn::BodyFormat;
use coar_model::{Notification, Pattern, Report};
use coar_store::{Attribution, Evidence, Inserted, State, StoreError};
use http::StatusCode;

use crate::{
    Core, batch::Pending, config::TrustPolicy, engine::BodyError, limits::address_key,
    signatures::SignedRequest,
};

/// What the sender gives besides the body, as evidence of who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its address: the connection's, or the one trusted proxies forwarded
    /// ([`crate::trust::client_addr`]).
    pub addr: IpAddr,
    /// The bearer token it presented, if any. Only its SHA-256 is stored.
    pub bearer_token: Option<String>,
    /// Its request, when it carries an HTTP Message Signature
    /// ([`SignedRequest::of`]).
    pub signed: Option<SignedRequest>,
}

impl Peer {
    /// A sender at `addr` with no token and no signature.
    pub fn at(addr: IpAddr) -> Peer {
        Peer {
            addr,
            bearer_token: None,
            signed: None,
        }
    }
}

/// A notification admitted: committed to the store before this is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Its key in the store.
    pub key: i64,
    /// Its URL (`Location` of the 201).
    pub location: String,
    /// Its pattern, `None` for an activity that names none.
    pub pattern: Option<Pattern>,
    /// It had been received before (same id, same body): nothing new was stored.
    pub duplicate: bool,
    /// It is held until an admin trusts its sender, rather than queued for processing.
    pub quarantined: bool,
}

/// Why a notification was not admitted. Nothing was stored. Each has the HTTP status an
/// LDN inbox answers with ([`Rejection::status`]); the messages name only what the sender
/// sent or this inbox's published limits, never internals.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The body is refused by the receiver: media type, syntax, size, budgets, contexts.
    #[error(transparent)]
    Body(#[from] coar_ldn::ReceiveError),
    /// The body is larger than this inbox accepts (seen before reading it all).
    #[error("notifications are limited to {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The sender's address or service has sent more than its rate allows.
    #[error("{whom} has sent more than its rate allows; try again in {} s", retry_after(*.wait))]
    RateLimited {
        /// `"this address"` or `"this service"`.
        whom: &'static str,
        /// How long until it may send again.
        wait: Duration,
    },
    /// Every parsing slot stayed busy: the sender should come back shortly.
    #[error("{0}; try again shortly")]
    Busy(crate::parse::Busy),
    /// The JSON-LD is not one activity.
    #[error("{0}")]
    NotAnActivity(String),
    /// It breaks the rules of its pattern (or names none, where that is refused).
    #[error("{} problem(s) must be fixed", .0.errors().count())]
    Invalid(Report),
    /// No registered service vouches for it and the policy is `reject`.
    #[error("this inbox accepts notifications from registered services only")]
    Untrusted,
    /// The quarantine holds as many from this sender as it may.
    #[error(
        "this inbox holds at most {cap} notifications from an unregistered sender until an admin trusts it"
    )]
    QuarantineFull {
        /// The cap per address and per claimed origin.
        cap: u64,
    },
    /// It carries an HTTP Message Signature that does not hold: nothing else about the
    /// sender is believed.
    #[error("{0}")]
    Signature(coar_ldn::signature::SignatureError),
    /// Its signature was accepted before: the same request again.
    #[error("this signature was accepted before; a sender signs each request anew")]
    Replayed,
    /// The store refused it (a different notification under the same id) or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Seconds to wait, rounded up, for `Retry-After`.
pub fn retry_after(wait: Duration) -> u64 {
    wait.as_secs().saturating_add(1)
}

impl From<BodyError> for Rejection {
    fn from(e: BodyError) -> Rejection {
        match e {
            BodyError::Refused(e) => Rejection::Body(e),
            BodyError::Busy(b) => Rejection::Busy(b),
        }
    }
}

impl Rejection {
    /// The HTTP status an LDN inbox answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Body(e) => e.status(),
            Rejection::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::RateLimited { .. } | Rejection::QuarantineFull { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Rejection::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::NotAnActivity(_) | Rejection::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Rejection::Untrusted => StatusCode::FORBIDDEN,
            Rejection::Signature(_) | Rejection::Replayed => StatusCode::UNAUTHORIZED,
            Rejection::Store(StoreError::Conflict { .. }) => StatusCode::CONFLICT,
            Rejection::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The outcome label of `coar_received_total`.
    pub fn label(&self) -> &'static str {
        match self.status().as_u16() {
            401 => "bad_signature",
            403 => "rejected",
            409 => "conflict",
            429 => "rate_limited",
            413 => "too_large",
            415 => "unsupported_media_type",
            422 => "invalid",
            500.. => "error",
            _ => "malformed",
        }
    }
}

/// A sender that passed [`Core::screen`]: its body may be read and handed to
/// [`Core::admit_screened`]. Only `screen` makes one, so the address's rate is taken once.
#[derive(Debug)]
pub struct Screened {
    media_type: Option<String>,
    peer: Peer,
}

impl Core {
    /// Receives one notification: [`Core::screen`], then [`Core::admit_screened`]. The one
    /// call a framework needs when it has the whole body.
    pub async fn admit(
        self: &Arc<Self>,
        media_type: Option<&str>,
        body: Bytes,
        peer: Peer,
    ) -> Result<Admitted, Rejection> {
        let screened = self.screen(media_type, peer, Some(body.len()))?;
        self.admit_screened(screened, body).await
    }

    /// What can be refused before the body is read: a media type no syntax is known for,
    /// an address over its rate, a declared length over `max_body`.
    pub fn screen(
        &self,
        media_type: Option<&str>,
        peer: Peer,
        declared_length: Option<usize>,
    ) -> Result<Screened, Rejection> {
        let checks = || {
            if media_type.and_then(coar_ldn::body_format).is_none() {
                return Err(Rejection::Body(
                    coar_ldn::ReceiveError::UnsupportedMediaType {
                        found: media_type.map(str::to_owned),
                    },
                ));
            }
            if let Some(limit) = &self.address_limit
                && let Err(wait) = limit.take(&address_key(peer.addr))
            {
                return Err(Rejection::RateLimited {
                    whom: "this address",
                    wait,
                });
            }
            if declared_length.is_some_and(|l| l > self.config().max_body) {
                return Err(self.too_large());
            }
            Ok(())
        };
        match checks() {
            Ok(()) => Ok(Screened {
                media_type: media_type.map(str::to_owned),
                peer,
            }),
            Err(rejection) => Err(self.refused(None, rejection)),
        }
    }

    /// The rejection of a body over `max_body`, for a framework that finds out while reading
    /// it (count it in `/metrics` with [`Core::refused`], as the HTTP inbox does).
    pub fn too_large(&self) -> Rejection {
        Rejection::TooLarge {
            limit: self.config().max_body,
        }
    }

    /// Counts a rejection in `/metrics` (under `pattern`'s slug once known) and returns it.
    pub fn refused(&self, pattern: Option<&str>, rejection: Rejection) -> Rejection {
        self.metrics()
            .received(pattern.unwrap_or("none"), rejection.label());
        rejection
    }

    /// Reads, checks, attributes and stores a screened sender's body.
    pub async fn admit_screened(
        self: &Arc<Self>,
        screened: Screened,
        body: Bytes,
    ) -> Result<Admitted, Rejection> {
        let Screened { media_type, peer } = screened;
        if body.len() > self.config().max_body {
            return Err(self.refused(None, self.too_large()));
        }
        let checked = self
            .check_body(media_type.as_deref(), body.clone())
            .await
            .map_err(|e| self.refused(None, e.into()))?;
        let notification = Notification::from_value(checked.json)
            .map_err(|e| self.refused(None, Rejection::NotAnActivity(e.to_string())))?;
        let slug = notification.pattern().map_or("unrecognised", |p| p.slug());
        let result = self
            .admit_checked(notification, checked.format, media_type, body, peer)
            .await;
        match result {
            Ok((receipt, label)) => {
                self.metrics().received(slug, label);
                Ok(receipt)
            }
            Err(rejection) => Err(self.refused(Some(slug), rejection)),
        }
    }

    async fn admit_checked(
        &self,
        notification: Notification,
        format: BodyFormat,
        media_type: Option<String>,
        body: Bytes,
        peer: Peer,
    ) -> Result<(Admitted, &'static str), Rejection> {
        let report = notification.validate();
        let recognised = notification.pattern().is_some();
        if (recognised && !report.is_valid()) || (!recognised && !self.config().accept_unrecognised)
        {
            return Err(Rejection::Invalid(report));
        }
        // A document that claims COAR Notify (its context, a COAR type) but names no pattern
        // we know is held to what every COAR notification must have (id, an ActivityStreams
        // activity type, origin, target with its inbox, object) before it is accepted as
        // unrecognised, for forward compatibility; other LDN notifications are not.
        if !recognised && notification.claims_coar() {
            let common = notification.validate_common();
            if !common.is_valid() {
                return Err(Rejection::Invalid(common));
            }
        }
        let bearer_sha256 = peer
            .bearer_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| coar_store::sha256_hex(t.as_bytes()));
        // The service the origin names (one lookup, for the signature and the attribution);
        // a signature is checked against its keys.
        let mut named = match notification.origin().and_then(|o| o.id()) {
            Some(origin) => self.store().service_by_id(origin).await?,
            None => None,
        };
        let verified = match &peer.signed {
            None => None,
            Some(signed) => self.check_signature(signed, &body, &mut named).await?,
        };
        // The same signed request again, to this process, is refused before it spends
        // anything (the service's rate, a place in quarantine); to another process, or
        // racing the first, it is found when it is stored, below.
        let now = chrono::Utc::now().timestamp();
        if let Some(v) = &verified
            && self.recent_signatures.seen(&v.replay_key, now)
        {
            return Err(Rejection::Replayed);
        }
        let signature_key = verified.as_ref().map(|v| v.key.thumbprint());
        let evidence = Evidence {
            remote_addr: Some(peer.addr),
            bearer_sha256: bearer_sha256.as_deref(),
            signature_key: signature_key.as_deref(),
        };
        let service = match Attribution::of(&notification, named, &evidence) {
            Attribution::Service(s) => Some(*s),
            Attribution::NotVouched(key, why) => {
                tracing::info!(service = key, %why, "sender names a registered service that does not vouch for it");
                None
            }
            Attribution::NoOrigin | Attribution::Unregistered => None,
        };
        if let (Some(s), Some(limit)) = (&service, &self.service_limit)
            && let Err(wait) = limit.take(&s.key.to_string())
        {
            return Err(Rejection::RateLimited {
                whom: "this service",
                wait,
            });
        }
        let state = match (&service, self.config().trust) {
            (Some(_), _) | (None, TrustPolicy::Accept) => State::Queued,
            (None, TrustPolicy::Quarantine) => State::Quarantined,
            (None, TrustPolicy::Reject) => return Err(Rejection::Untrusted),
        };
        let sender = peer.addr.to_string();
        let quarantined = state == State::Quarantined;
        if quarantined {
            let origin = notification.origin().and_then(|o| o.id());
            self.quarantine_room(&sender, origin).await?;
        }
        let media_type = media_type.unwrap_or_else(|| {
            match format {
                BodyFormat::JsonLd => "application/ld+json",
                BodyFormat::Turtle => "text/turtle",
            }
            .to_owned()
        });
        let pattern = notification.pattern();
        let pending = Pending {
            notification,
            body: body.to_vec(),
            media_type,
            remote_addr: Some(sender.clone()),
            bearer_sha256,
            signature_key,
            signature_hash: verified.as_ref().map(|v| v.replay_key.clone()),
            service: service.map(|s| s.key),
            state,
        };
        let inserted = self.inserter.insert(pending).await?;
        let duplicate = matches!(inserted, Inserted::Duplicate(_));
        // The same signed request again finds the notification it stored, with its
        // signature: a replay. (A sender's honest resend is signed anew; its duplicate is
        // answered as any other.)
        if duplicate
            && let Some(v) = &verified
            && inserted.record().signature_hash.as_deref() == Some(v.replay_key.as_str())
        {
            return Err(Rejection::Replayed);
        }
        if let Some(v) = verified {
            self.recent_signatures
                .remember(v.replay_key, v.remember_until, now);
        }
        let label = match (duplicate, quarantined) {
            (true, _) => "duplicate",
            (false, true) => "quarantined",
            (false, false) => "created",
        };
        if quarantined && !duplicate {
            self.quarantined.add(&format!("addr {sender}"));
            if let Some(origin) = inserted.record().origin_id.as_deref() {
                self.quarantined.add(&format!("origin {origin}"));
            }
        }
        let key = inserted.record().key;
        let receipt = Admitted {
            key,
            location: self.notification_url(key),
            pattern,
            duplicate,
            quarantined,
        };
        Ok((receipt, label))
    }

    /// Whether the quarantine may hold one more from `addr` naming `origin`: this process's
    /// counts when it knows them and they are below the cap, the database's otherwise.
    async fn quarantine_room(&self, addr: &str, origin: Option<&str>) -> Result<(), Rejection> {
        let cap = self.config().quarantine_limit;
        let (addr_key, origin_key) = (
            format!("addr {addr}"),
            origin.map(|o| format!("origin {o}")),
        );
        // Room by this process's counts, if it knows both keys.
        let room = |key: &str| self.quarantined.get(key).is_some_and(|n| n < cap);
        if room(&addr_key) && origin_key.as_deref().is_none_or(room) {
            return Ok(());
        }
        let (by_addr, by_origin) = self.store().quarantined_from(addr, origin).await?;
        self.quarantined.set(&addr_key, by_addr);
        if let Some(k) = &origin_key {
            self.quarantined.set(k, by_origin);
        }
        if by_addr >= cap || by_origin >= cap {
            return Err(Rejection::QuarantineFull { cap });
        }
        Ok(())
    }
}
