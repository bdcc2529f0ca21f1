//! `signing_keys`: the installation's own keys for signing what it sends.

use sea_orm::entity::prelude::*;

/// One key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The `keyid` signatures carry (its RFC 7638 thumbprint).
    #[sea_orm(unique)]
    pub kid: String,
    /// `ed25519` or `rsa-pss-sha512`.
    pub alg: String,
    /// The PKCS#8 private key, base64.
    #[sea_orm(column_type = "Text")]
    pub private_pkcs8: String,
    /// `active` for the key in use, `None` once retired.
    pub slot: Option<String>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
