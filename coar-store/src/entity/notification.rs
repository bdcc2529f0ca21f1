//! `notifications`: every notification, inbound and outbound, with its queue state.

use sea_orm::entity::prelude::*;

/// One notification.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    /// Surrogate key; also the keyset cursor (newest = highest).
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// SHA-256 of direction, origin id and notification id: the idempotency key.
    #[sea_orm(unique)]
    pub dedup_key: String,
    /// The activity id.
    #[sea_orm(column_type = "Text")]
    pub notification_id: String,
    /// Pattern slug, `None` for unrecognised activities.
    pub pattern: Option<String>,
    /// Activity and COAR types, space-separated.
    #[sea_orm(column_type = "Text")]
    pub types: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub origin_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub origin_inbox: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub target_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub target_inbox: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub actor_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub object_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub context_id: Option<String>,
    /// `ietf:cite-as` values of object and context, space-separated.
    #[sea_orm(column_type = "Text")]
    pub cite_as: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub in_reply_to: Option<String>,
    /// The body exactly as received or sent.
    #[sea_orm(column_type = "Blob")]
    #[serde(with = "crate::transfer::base64_bytes")]
    pub body: Vec<u8>,
    pub media_type: String,
    /// SHA-256 of `body`, lower-case hex.
    pub sha256: String,
    pub received_at: i64,
    /// `YYYY-MM-DD` (UTC) of `received_at`, for per-day counts.
    pub received_day: String,
    pub remote_addr: Option<String>,
    /// SHA-256 (hex) of the bearer token the sender presented, if any: its evidence, with
    /// `remote_addr`, re-checked when quarantine is released.
    pub bearer_sha256: Option<String>,
    /// JWK thumbprint (RFC 7638) of the key that verified the request's HTTP Message
    /// Signature, if one did: evidence, re-checked against the service's keys on release.
    pub signature_key: Option<String>,
    /// SHA-256 (hex) of that signature's parameters and value: the same request again is a
    /// replay.
    pub signature_hash: Option<String>,
    /// Outbound: the delivery thread (target inbox and the activity answered, hashed), within
    /// which deliveries keep their order. `None` inbound.
    pub thread_key: Option<String>,
    /// The registered service it was attributed to.
    pub service_id: Option<i64>,
    /// Queue state (see `State`).
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<i64>,
    pub lease_until: Option<i64>,
    pub lease_owner: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
