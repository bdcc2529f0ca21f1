//! `services`: the registry of known peers.

use sea_orm::entity::prelude::*;

/// One registered service.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "services")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub service_uri: String,
    /// SHA-256 of `service_uri`: unique.
    #[sea_orm(unique)]
    pub service_uri_hash: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub inbox_url: Option<String>,
    pub enabled: bool,
    /// JSON array of pattern slugs accepted from the service.
    #[sea_orm(column_type = "Text")]
    pub inbound_patterns: String,
    /// JSON array of pattern slugs sent to the service.
    #[sea_orm(column_type = "Text")]
    pub outbound_patterns: String,
    /// JSON array of CIDR ranges.
    #[sea_orm(column_type = "Text")]
    pub cidrs: String,
    /// JSON array of SHA-256 hashes of bearer tokens.
    #[sea_orm(column_type = "Text")]
    pub token_hashes: String,
    /// `rules`, `signature-or-range-or-token` or `signature-required`; `NULL` is `rules`.
    pub signature_policy: Option<String>,
    /// JSON array of `{"thumbprint", "jwk"}`: the public keys registered for the service.
    #[sea_orm(column_type = "Text", nullable)]
    pub public_keys: Option<String>,
    /// Where the service publishes its JWK Set.
    #[sea_orm(column_type = "Text", nullable)]
    pub key_set_url: Option<String>,
    /// JSON array of `{"thumbprint", "jwk"}`: the keys last fetched from `key_set_url`.
    #[sea_orm(column_type = "Text", nullable)]
    pub fetched_keys: Option<String>,
    /// When `fetched_keys` was fetched.
    pub keys_fetched_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
