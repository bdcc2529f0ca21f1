//! `attempts`: every processing or delivery attempt of a notification.

use sea_orm::entity::prelude::*;

/// One attempt.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub notification: i64,
    /// 1 for the first attempt.
    pub attempt: i32,
    pub worker: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// `running`, `succeeded`, `failed`, `abandoned` (lease expired), `released`.
    pub outcome: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub http_status: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub response_excerpt: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
