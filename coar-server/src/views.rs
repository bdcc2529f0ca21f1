//! What the admin API, the dashboard and the CLI show of the registry: views with their
//! fields written out, so that nothing reaches a response because a store type happens to
//! be serializable (a service's token hashes are never one missing `#[serde(skip)]` away).

use chrono::{DateTime, Utc};
use coar_model::Pattern;
use serde::Serialize;
use serde_json::{Value, json};

/// A registered service as shown: everything but its tokens, of which only whether it has
/// any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct ServiceView {
    /// The registry's key.
    pub key: i64,
    /// The display name.
    pub name: String,
    /// Its id URI.
    pub id: String,
    /// Its LDN inbox.
    pub inbox: Option<String>,
    /// Whether it is trusted.
    pub enabled: bool,
    /// Patterns accepted from it (empty: all).
    #[cfg_attr(feature = "http", schema(value_type = Vec<String>, example = json!(["request-review"])))]
    pub inbound_patterns: Vec<Pattern>,
    /// Patterns sent to it (empty: all).
    #[cfg_attr(feature = "http", schema(value_type = Vec<String>))]
    pub outbound_patterns: Vec<Pattern>,
    /// Address ranges it may send from (empty: any).
    pub cidrs: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Its last change.
    pub updated_at: DateTime<Utc>,
    /// Whether it must present a bearer token.
    pub has_tokens: bool,
    /// What its notifications must prove: `rules`, `signature-or-range-or-token` or
    /// `signature-required`.
    #[cfg_attr(feature = "http", schema(value_type = String))]
    pub signature_policy: coar_store::SignaturePolicy,
    /// Its public keys as registered (JWKs).
    #[cfg_attr(feature = "http", schema(value_type = Vec<Object>))]
    pub keys: Vec<serde_json::Value>,
    /// Where it publishes its JWK Set.
    pub key_set_url: Option<String>,
    /// The keys last fetched from there (JWKs).
    #[cfg_attr(feature = "http", schema(value_type = Vec<Object>))]
    pub fetched_keys: Vec<serde_json::Value>,
    /// When they were fetched.
    pub keys_fetched_at: Option<DateTime<Utc>>,
}

/// A key as shown: its JWK with its RFC 7638 thumbprint (what evidence names it by).
fn key_json(k: &coar_store::ServiceKey) -> serde_json::Value {
    let mut jwk = k.jwk.clone();
    if let Some(o) = jwk.as_object_mut() {
        o.insert("thumbprint".into(), k.thumbprint.clone().into());
    }
    jwk
}

impl From<&coar_store::RegisteredService> for ServiceView {
    fn from(s: &coar_store::RegisteredService) -> ServiceView {
        ServiceView {
            key: s.key,
            name: s.name.clone(),
            id: s.id.clone(),
            inbox: s.inbox.clone(),
            enabled: s.enabled,
            inbound_patterns: s.inbound_patterns.clone(),
            outbound_patterns: s.outbound_patterns.clone(),
            cidrs: s.cidrs.clone(),
            created_at: s.created_at,
            updated_at: s.updated_at,
            has_tokens: !s.token_hashes.is_empty(),
            signature_policy: s.signature_policy,
            keys: s.keys.iter().map(key_json).collect(),
            key_set_url: s.key_set_url.clone(),
            fetched_keys: s.fetched_keys.iter().map(key_json).collect(),
            keys_fetched_at: s.keys_fetched_at,
        }
    }
}

/// A sender waiting in quarantine that no registered service names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownSenderView {
    /// Its `origin.id`.
    pub id: String,
    /// How many of its notifications wait.
    pub count: u64,
    /// The key of the latest.
    pub latest: i64,
    /// Every (claimed inbox, address) they came with, most frequent first.
    pub seen: Vec<SightingView>,
}

/// One (claimed inbox, address) pair of an unknown sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SightingView {
    /// The `origin.inbox` claimed.
    pub inbox: Option<String>,
    /// The address it came from.
    pub remote_addr: Option<String>,
    /// How many came so.
    pub count: u64,
}

impl From<&coar_store::UnknownSender> for UnknownSenderView {
    fn from(u: &coar_store::UnknownSender) -> UnknownSenderView {
        UnknownSenderView {
            id: u.id.clone(),
            count: u.count,
            latest: u.latest,
            seen: u
                .seen
                .iter()
                .map(|s| SightingView {
                    inbox: s.inbox.clone(),
                    remote_addr: s.remote_addr.clone(),
                    count: s.count,
                })
                .collect(),
        }
    }
}

/// What releasing quarantine did, as the admin API answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct ReleasedView {
    /// Queued, attributed to the service.
    pub released: u64,
    /// Left in quarantine.
    pub kept: u64,
}

impl From<coar_store::Released> for ReleasedView {
    fn from(r: coar_store::Released) -> ReleasedView {
        ReleasedView {
            released: r.released,
            kept: r.kept,
        }
    }
}

/// A stored notification's record as shown: its indexed fields and queue state, never its
/// body (shown, where it is, as the payload) or the evidence hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct RecordView {
    /// The store's key.
    pub key: i64,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// The activity id.
    pub notification_id: String,
    /// The pattern, `null` for none.
    #[cfg_attr(feature = "http", schema(value_type = Option<String>))]
    pub pattern: Option<Pattern>,
    /// Its `type` values.
    pub types: Vec<String>,
    /// `origin.id`.
    pub origin_id: Option<String>,
    /// `origin.inbox`.
    pub origin_inbox: Option<String>,
    /// `target.id`.
    pub target_id: Option<String>,
    /// `target.inbox`.
    pub target_inbox: Option<String>,
    /// `actor.id`.
    pub actor_id: Option<String>,
    /// `object.id`.
    pub object_id: Option<String>,
    /// `context.id`.
    pub context_id: Option<String>,
    /// `ietf:cite-as` values.
    pub cite_as: Vec<String>,
    /// `inReplyTo`.
    pub in_reply_to: Option<String>,
    /// The media type it came with.
    pub media_type: String,
    /// SHA-256 of the body.
    pub sha256: String,
    /// When it was received or created.
    pub received_at: DateTime<Utc>,
    /// The sender's address (inbound).
    pub remote_addr: Option<String>,
    /// Inbound: whether the sender presented a bearer token.
    pub bearer_token: bool,
    /// Inbound: the thumbprint of the key its HTTP Message Signature verified with.
    pub signature_key: Option<String>,
    /// The service it is attributed to.
    pub service: Option<i64>,
    /// Its queue state.
    pub state: &'static str,
    /// Attempts so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last error.
    pub last_error: Option<String>,
    /// Its last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&coar_store::Record> for RecordView {
    fn from(r: &coar_store::Record) -> RecordView {
        RecordView {
            key: r.key,
            direction: r.direction.as_str(),
            notification_id: r.notification_id.clone(),
            pattern: r.pattern,
            types: r.types.clone(),
            origin_id: r.origin_id.clone(),
            origin_inbox: r.origin_inbox.clone(),
            target_id: r.target_id.clone(),
            target_inbox: r.target_inbox.clone(),
            actor_id: r.actor_id.clone(),
            object_id: r.object_id.clone(),
            context_id: r.context_id.clone(),
            cite_as: r.cite_as.clone(),
            in_reply_to: r.in_reply_to.clone(),
            media_type: r.media_type.clone(),
            sha256: r.sha256.clone(),
            received_at: r.received_at,
            remote_addr: r.remote_addr.clone(),
            bearer_token: r.bearer_token,
            signature_key: r.signature_key.clone(),
            service: r.service,
            state: r.state.as_str(),
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error.clone(),
            updated_at: r.updated_at,
        }
    }
}

/// One processing or delivery attempt as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct AttemptView {
    /// 1 for the first.
    pub attempt: u32,
    /// The worker that made it.
    pub worker: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `succeeded`, `failed`, `abandoned`, `released`.
    pub outcome: String,
    /// The error of a failure.
    pub error: Option<String>,
    /// The peer's HTTP status.
    pub http_status: Option<u16>,
    /// The start of the peer's response.
    pub response_excerpt: Option<String>,
}

impl From<&coar_store::Attempt> for AttemptView {
    fn from(a: &coar_store::Attempt) -> AttemptView {
        AttemptView {
            attempt: a.attempt,
            worker: a.worker.clone(),
            started_at: a.started_at,
            finished_at: a.finished_at,
            outcome: a.outcome.clone(),
            error: a.error.clone(),
            http_status: a.http_status,
            response_excerpt: a.response_excerpt.clone(),
        }
    }
}

/// Views of a list of attempts.
pub fn attempts(all: &[coar_store::Attempt]) -> Vec<AttemptView> {
    all.iter().map(AttemptView::from).collect()
}

/// A record as listings show it.
pub fn summary(urls: &crate::urls::Urls, r: &coar_store::Record) -> Value {
    json!({
        "key": r.key,
                "url": urls.api_notification(r.key),
        "id": r.notification_id,
        "direction": r.direction.as_str(),
        "pattern": r.pattern,
        "state": r.state.as_str(),
        "attempts": r.attempts,
        "origin": r.origin_id,
        "target": r.target_id,
        "object": r.object_id,
        "context": r.context_id,
        "in_reply_to": r.in_reply_to,
        "received_at": r.received_at,
        "last_error": r.last_error,
    })
}

/// Everything known about the resource `uri`: `requests` (threads with their status and
/// replies), `links` (reviews, endorsements, relationships, service results) and every
/// `notifications` naming it.
pub async fn resource_view(core: &crate::Core, uri: &str) -> Result<Value, coar_store::StoreError> {
    let threads = core.store().threads_for_resource(uri).await?;
    let filter = coar_store::Filter {
        resource: Some(uri.to_owned()),
        ..coar_store::Filter::default()
    };
    let mut notifications = Vec::new();
    let mut cursor = None;
    loop {
        let page = core.store().list(&filter, cursor, 1000).await?;
        notifications.extend(page.items.iter().map(|r| summary(core.urls(), r)));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let links: Vec<Value> = notifications
        .iter()
        .filter(|n| n["direction"] == "inbound")
        .filter_map(|n| {
            let kind = Pattern::from_slug(n["pattern"].as_str()?)?.link_kind()?;
            Some(json!({"kind": kind, "resource": n["object"], "about": n["context"], "from": n["origin"], "notification": n["url"]}))
        })
        .collect();
    Ok(json!({
        "uri": uri,
        "requests": threads.iter().map(|t| json!({
            "offer": summary(core.urls(), &t.offer),
            "status": t.status,
            "replies": t.replies.iter().map(|r| summary(core.urls(), r)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "links": links,
        "notifications": notifications,
    }))
}

/// How a received notification's sender proved who it is, for a person: each piece of
/// evidence recorded with it, named against `service` (the one its origin names) where
/// that says more. Empty for an outbound notification.
pub fn authentication(
    r: &coar_store::Record,
    service: Option<&coar_store::RegisteredService>,
) -> Vec<String> {
    if r.direction != coar_store::Direction::Inbound {
        return Vec::new();
    }
    let mut said = Vec::new();
    if let Some(t) = &r.signature_key {
        let kid = service
            .and_then(|s| s.all_keys().find(|k| &k.thumbprint == t))
            .and_then(|k| k.kid().map(str::to_owned));
        said.push(match kid {
            Some(kid) => format!("HTTP Message Signature by its key {kid} (thumbprint {t})"),
            None => format!(
                "HTTP Message Signature by a key (thumbprint {t}) the service no longer has"
            ),
        });
    }
    if r.bearer_token {
        let matches = service.is_some_and(|s| !s.token_hashes.is_empty());
        said.push(if matches {
            "a bearer token".to_owned()
        } else {
            "a bearer token (the service has none registered)".to_owned()
        });
    }
    if let Some(addr) = &r.remote_addr {
        let ranged = service
            .filter(|s| !s.cidrs.is_empty())
            .map(|s| addr.parse().is_ok_and(|ip| s.address_allowed(ip)));
        said.push(match ranged {
            Some(true) => format!("its address {addr}, in the service's ranges"),
            Some(false) => format!("its address {addr}, outside the service's ranges"),
            None => format!("its address {addr}"),
        });
    }
    said
}
