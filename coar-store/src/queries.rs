//! The queries over stored notifications: by key and id, filtered and paged listings,
//! counts and statistics, and the links table's subqueries.

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, Query},
};

use crate::{
    Attempt, Filter, Page, Record, Stats, Store, StoreError,
    entity::{attempt, link, notification},
    model::to_micros,
    sha256_hex,
};

impl Store {
    /// One record by key.
    pub async fn get(&self, key: i64) -> Result<Option<Record>, StoreError> {
        Ok(notification::Entity::find_by_id(key)
            .one(&self.db)
            .await?
            .map(Record::from))
    }

    /// The records with this activity id (in either direction, from any origin).
    pub async fn find_by_notification_id(&self, id: &str) -> Result<Vec<Record>, StoreError> {
        Ok(notification::Entity::find()
            .filter(notification::Column::NotificationId.eq(id))
            .order_by_asc(notification::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Record::from)
            .collect())
    }

    /// Every attempt made on a notification, oldest first.
    pub async fn attempts(&self, key: i64) -> Result<Vec<Attempt>, StoreError> {
        Ok(attempt::Entity::find()
            .filter(attempt::Column::Notification.eq(key))
            .order_by_asc(attempt::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Attempt::from)
            .collect())
    }

    /// A page of records matching `filter`, newest first. `after` is the `next` cursor of the
    /// previous page; `limit` is capped at 1000. The page says whether more follow: nothing
    /// is ever cut off silently.
    pub async fn list(
        &self,
        filter: &Filter,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Page<Record>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut query = notification::Entity::find().filter(condition(filter, self.backend));
        if let Some(after) = after {
            query = query.filter(notification::Column::Id.lt(after));
        }
        let mut items: Vec<Record> = query
            .order_by_desc(notification::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Record::from)
            .collect();
        let next = if items.len() as u64 > limit {
            items.truncate(limit as usize);
            items.last().map(|r| r.key)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// How many records match `filter`.
    pub async fn count(&self, filter: &Filter) -> Result<u64, StoreError> {
        Ok(notification::Entity::find()
            .filter(condition(filter, self.backend))
            .count(&self.db)
            .await?)
    }

    /// Counts by pattern, state, direction and day, for the records matching `filter`.
    pub async fn stats(&self, filter: &Filter) -> Result<Stats, StoreError> {
        use notification::Column as C;
        Ok(Stats {
            by_pattern: self.counts_by(C::Pattern, filter, "unrecognised").await?,
            by_state: self.counts_by(C::State, filter, "").await?,
            by_direction: self.counts_by(C::Direction, filter, "").await?,
            by_day: self.counts_by(C::ReceivedDay, filter, "").await?,
        })
    }

    /// `SELECT col, COUNT(id) … GROUP BY col ORDER BY col`; a NULL key is named `none`.
    pub(crate) async fn counts_by(
        &self,
        col: notification::Column,
        filter: &Filter,
        none: &str,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(Option<String>, i64)> = notification::Entity::find()
            .select_only()
            .column(col)
            .column_as(notification::Column::Id.count(), "n")
            .filter(condition(filter, self.backend))
            .group_by(col)
            .order_by_asc(col)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(k, n)| {
                (
                    k.unwrap_or_else(|| none.to_owned()),
                    u64::try_from(n).unwrap_or(0),
                )
            })
            .collect())
    }
}

/// The SQL condition of a filter.
fn condition(filter: &Filter, backend: crate::Backend) -> Condition {
    use notification::Column as C;
    let mut cond = Condition::all();
    if let Some(d) = filter.direction {
        cond = cond.add(C::Direction.eq(d.as_str()));
    }
    match &filter.pattern {
        Some(Some(p)) => cond = cond.add(C::Pattern.eq(p.slug())),
        Some(None) => cond = cond.add(C::Pattern.is_null()),
        None => {}
    }
    if let Some(s) = filter.state {
        cond = cond.add(C::State.eq(s.as_str()));
    }
    for (uri, roles) in [
        (&filter.origin, &["origin"][..]),
        (&filter.target, &["target"][..]),
        (&filter.source, &["origin", "actor"][..]),
        (&filter.resource, &["resource"][..]),
    ] {
        if let Some(uri) = uri {
            cond = cond.add(C::Id.in_subquery(linked(uri, roles)));
        }
    }
    if let Some(since) = filter.since {
        cond = cond.add(C::ReceivedAt.gte(to_micros(since)));
    }
    if let Some(until) = filter.until {
        cond = cond.add(C::ReceivedAt.lt(to_micros(until)));
    }
    if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
        cond = cond.add(contains_text(text, backend));
    }
    if filter.attributed_only {
        cond = cond.add(C::ServiceId.is_not_null());
    }
    cond
}

/// Body, notification id or last error containing `text`, ASCII case-insensitively. Bodies
/// are bytes in every backend (kept byte for byte); they are read as UTF-8 text here, which
/// every stored body is (the inbox only stores JSON and Turtle it parsed).
fn contains_text(text: &str, backend: crate::Backend) -> Condition {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    // sea-query numbers `$1` afresh for PostgreSQL and takes `?` for the others.
    let body = match backend {
        crate::Backend::Sqlite => "LOWER(CAST(body AS TEXT)) LIKE ? ESCAPE '\\'",
        crate::Backend::Postgres => "LOWER(convert_from(body, 'UTF8')) LIKE $1 ESCAPE '\\'",
        crate::Backend::MySql => "LOWER(CONVERT(body USING utf8mb4)) LIKE ? ESCAPE '\\\\'",
    };
    let column = |c: notification::Column| {
        Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(c)))
            .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\'))
    };
    Condition::any()
        .add(Expr::cust_with_values(body, [pattern.clone()]))
        .add(column(notification::Column::NotificationId))
        .add(column(notification::Column::LastError))
}

/// `SELECT notification FROM notification_links WHERE uri_hash = … AND role IN (…)`.
pub(crate) fn linked(uri: &str, roles: &[&str]) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(link::Column::Notification)
        .from(link::Entity)
        .and_where(Expr::col(link::Column::UriHash).eq(sha256_hex(uri.as_bytes())))
        .and_where(Expr::col(link::Column::Role).is_in(roles.iter().copied()))
        .to_owned()
}
