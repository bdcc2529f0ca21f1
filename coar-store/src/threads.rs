//! Request threads: an Offer and every reply to it, with the status they add up to
//! ([`ThreadStatus`], whose rules are coar-model's).

use coar_model::Pattern;
pub use coar_model::ThreadStatus;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::{Direction, Record, Store, StoreError, entity::notification, notifications::linked};

/// An Offer, the replies that name it in `inReplyTo` (and the announcements that answer it
/// without naming it), and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// The Offer.
    pub offer: Record,
    /// Replies in the order they were stored.
    pub replies: Vec<Record>,
    /// What the replies add up to.
    pub status: ThreadStatus,
}

impl Store {
    /// The thread of the Offer stored under `key`.
    pub async fn thread(&self, key: i64) -> Result<Option<Thread>, StoreError> {
        let Some(offer) = self.get(key).await? else {
            return Ok(None);
        };
        let mut replies: Vec<Record> = notification::Entity::find()
            .filter(
                notification::Column::Id
                    .in_subquery(linked(&offer.notification_id, &["in-reply-to"])),
            )
            .filter(notification::Column::Id.ne(offer.key))
            .order_by_asc(notification::Column::ReceivedAt)
            .order_by_asc(notification::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Record::from)
            .collect();
        // Announcements that do not say inReplyTo still complete the request when they come
        // from the service asked, about the resource offered, after the Offer.
        if let (Some(target), Some(resource)) = (&offer.target_id, &offer.object_id) {
            let filter = crate::Filter {
                direction: Some(Direction::Inbound),
                origin: Some(target.clone()),
                resource: Some(resource.clone()),
                since: Some(offer.received_at),
                ..crate::Filter::default()
            };
            let mut cursor = None;
            loop {
                let page = self.list(&filter, cursor, 1000).await?;
                for r in page.items {
                    if ThreadStatus::completes(r.pattern, offer.pattern)
                        && !replies.iter().any(|x| x.key == r.key)
                    {
                        replies.push(r);
                    }
                }
                match page.next {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
            replies.sort_by_key(|r| (r.received_at, r.key));
        }
        let status = ThreadStatus::of(replies.iter().filter_map(|r| r.pattern));
        Ok(Some(Thread {
            offer,
            replies,
            status,
        }))
    }

    /// The thread a notification belongs to: its own if it is an Offer, else that of the
    /// Offer its `inReplyTo` names.
    pub async fn thread_of(&self, record: &Record) -> Result<Option<Thread>, StoreError> {
        if matches!(record.pattern, Some(p) if p.category() == coar_model::Category::Request) {
            return self.thread(record.key).await;
        }
        let Some(irt) = &record.in_reply_to else {
            return Ok(None);
        };
        let offers = self.find_by_notification_id(irt).await?;
        match offers
            .into_iter()
            .find(|r| matches!(r.pattern, Some(p) if p.category() == coar_model::Category::Request))
        {
            Some(offer) => self.thread(offer.key).await,
            None => Ok(None),
        }
    }

    /// Every request we sent about `resource` (object, context or cite-as), with its status.
    pub async fn threads_for_resource(&self, resource: &str) -> Result<Vec<Thread>, StoreError> {
        let offers = notification::Entity::find()
            .filter(notification::Column::Id.in_subquery(linked(resource, &["resource"])))
            .filter(notification::Column::Direction.eq(Direction::Outbound.as_str()))
            .filter(
                notification::Column::Pattern.is_in(
                    Pattern::ALL
                        .iter()
                        .filter(|p| p.category() == coar_model::Category::Request)
                        .map(|p| p.slug()),
                ),
            )
            .order_by_asc(notification::Column::Id)
            .all(&self.db)
            .await?;
        let mut out = Vec::new();
        for offer in offers {
            if let Some(t) = self.thread(offer.id).await? {
                out.push(t);
            }
        }
        Ok(out)
    }
}
