//! The outbox: notifications this service composes (admin API, dashboard), completed with
//! coar-model's defaults and this server's identity, their target's inbox found by LDN
//! discovery when not given, and queued for the workers to deliver.

use coar_model::{CompleteError, Notification, Report};
use coar_store::{Inserted, NewNotification, StoreError};
use serde_json::{Value, json};

use crate::Core;

/// Why a composed notification cannot be queued.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Not an object, or an unknown `pattern`.
    #[error(transparent)]
    Complete(#[from] CompleteError),
    /// `target.inbox` is not given and discovery from `target.id` failed.
    #[error("target.inbox is not given and discovery from {target} failed: {error}")]
    NoInbox {
        /// The target's id.
        target: String,
        /// Why discovery failed.
        error: coar_client::ClientError,
    },
    /// The completed document is not a notification.
    #[error("{0}")]
    NotANotification(String),
    /// Looking up the Offer a reply answers failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An acknowledgement or Undo composed with only the id of the Offer it answers
/// (`inReplyTo`, or an `object` that is just `{id, type}`) gets the whole Offer as its
/// `object` when `store` holds one that may supply it ([`may_supply_offer`]). One that names
/// no such Offer is left as it is, and validation refuses it (`object.offer.complete`). The
/// outbox, the compose page and the CLI's `send` all fill replies in this way.
pub async fn embed_stored_offer(
    store: &coar_store::Store,
    doc: &mut Value,
) -> Result<(), StoreError> {
    let Some(id) = coar_model::offer_wanted(doc).map(str::to_owned) else {
        return Ok(());
    };
    let retracts = retracts(doc);
    for record in store.find_by_notification_id(&id).await? {
        if !may_supply_offer(&record, retracts) {
            continue;
        }
        if let Ok(offer) = Notification::from_slice(&record.body)
            && coar_model::embed_offer(doc, &offer)
        {
            break;
        }
    }
    Ok(())
}

/// Whether the composed reply `doc` is an Undo (it retracts an Offer sent from here) rather
/// than an acknowledgement (which answers one received).
pub fn retracts(doc: &Value) -> bool {
    Notification::from_value(doc.clone())
        .is_ok_and(|n| n.pattern() == Some(coar_model::Pattern::UndoOffer))
}

/// Whether a stored notification may be the Offer a composed reply embeds: for an Undo, one
/// sent from here; for an acknowledgement, one received here and not quarantined (no
/// registered service vouches for a quarantined one: anyone could have stored an "Offer"
/// under the id a reply names).
pub fn may_supply_offer(record: &coar_store::Record, retracts: bool) -> bool {
    let sent = record.direction == coar_store::Direction::Outbound;
    sent == retracts && record.state != coar_store::State::Quarantined
}

impl Core {
    /// Completes a notification to send ([`coar_model::complete_outbound`] with
    /// [`Core::identity`]); a target given by its id alone gets the inbox it advertises.
    /// Returns it parsed, with its validation report: the caller decides what an invalid one
    /// means (a 422 for the API, inline problems for the dashboard).
    pub async fn prepare_outbound(
        &self,
        mut doc: Value,
    ) -> Result<(Notification, Report), OutboxError> {
        coar_model::complete_outbound(&mut doc, &self.identity())?;
        let target_id = doc
            .get("target")
            .and_then(|t| t.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let (Some(id), Some(target)) = (
            target_id,
            doc.get_mut("target").and_then(Value::as_object_mut),
        ) && !target.contains_key("inbox")
        {
            let inbox = self
                .client()
                .discover(&id)
                .await
                .map_err(|error| OutboxError::NoInbox { target: id, error })?;
            target.insert("inbox".into(), json!(inbox.as_str()));
        }
        embed_stored_offer(self.store(), &mut doc).await?;
        let n = Notification::from_value(doc)
            .map_err(|e| OutboxError::NotANotification(e.to_string()))?;
        let report = n.validate();
        Ok((n, report))
    }

    /// Stores a notification in the outbox, where the workers deliver it. A repeat of one
    /// queued before (same id, same body) is recognised.
    pub async fn queue_outbound(&self, n: &Notification) -> Result<Inserted, StoreError> {
        let body = n.to_json_string().into_bytes();
        self.store()
            .insert(NewNotification::outbound(n, &body))
            .await
    }
}
