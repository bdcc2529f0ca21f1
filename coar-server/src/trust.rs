//! Attributing a notification to a registered service.

use std::net::IpAddr;

use coar_model::Notification;
use coar_store::{Service, StoreError};

use crate::App;

/// The enabled service the notification comes from, when its `origin.id` is registered,
/// its `origin.inbox` (if both are known) is the service's, the sender's address is in the
/// service's ranges (if it has any), the bearer token matches (if it has tokens), and it
/// may send this pattern. Otherwise `None`: the sender is untrusted.
pub async fn attribute(
    app: &App,
    n: &Notification,
    peer: IpAddr,
    bearer: Option<&str>,
) -> Result<Option<Service>, StoreError> {
    let Some(origin) = n.origin().and_then(|o| o.id()) else {
        return Ok(None);
    };
    let Some(service) = app.store.service_by_id(origin).await? else {
        return Ok(None);
    };
    let inbox_ok = match (n.origin().and_then(|o| o.inbox()), service.inbox.as_deref()) {
        (Some(claimed), Some(registered)) => claimed == registered,
        _ => true,
    };
    let token_ok =
        service.token_hashes.is_empty() || bearer.is_some_and(|t| service.token_matches(t));
    let trusted = service.enabled
        && inbox_ok
        && service.address_allowed(peer)
        && token_ok
        && service.accepts_inbound(n.pattern());
    if !trusted {
        tracing::info!(
            origin,
            enabled = service.enabled,
            inbox_ok,
            token_ok,
            "sender matches a registered service but is not trusted"
        );
    }
    Ok(trusted.then_some(service))
}
