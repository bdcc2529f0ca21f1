//! `notification_links`: the URIs a notification mentions, by role, hashed for indexing
//! (URIs can be longer than MySQL can index).

use sea_orm::entity::prelude::*;

/// One (notification, role, URI) triple.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "notification_links")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub notification: i64,
    /// `origin`, `target`, `actor`, `resource`, `in-reply-to`.
    pub role: String,
    #[sea_orm(column_type = "Text")]
    pub uri: String,
    /// SHA-256 of `uri`, lower-case hex.
    pub uri_hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
