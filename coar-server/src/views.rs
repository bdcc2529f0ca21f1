//! What the admin API, the dashboard and the CLI show of the registry: views with their
//! fields written out, so that nothing reaches a response because a store type happens to
//! be serializable (a service's token hashes are never one missing `#[serde(skip)]` away).

use chrono::{DateTime, Utc};
use coar_model::Pattern;
use serde::Serialize;

/// A registered service as shown: everything but its tokens, of which only whether it has
/// any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    pub inbound_patterns: Vec<Pattern>,
    /// Patterns sent to it (empty: all).
    pub outbound_patterns: Vec<Pattern>,
    /// Address ranges it may send from (empty: any).
    pub cidrs: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Its last change.
    pub updated_at: DateTime<Utc>,
    /// Whether it must present a bearer token.
    pub has_tokens: bool,
}

impl From<&coar_store::Service> for ServiceView {
    fn from(s: &coar_store::Service) -> ServiceView {
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
