//! The built-in pipeline handlers, and the pipeline configured in the TOML file.
//!
//! Request tracking and resource links need no handler: a thread's status and what is known
//! about a resource are derived from the stored notifications (`inReplyTo`, object, context,
//! cite-as) whenever they are read, so they are always consistent with what was received.

use std::sync::Arc;

use coar_model::{Notification, Offer, Pattern};
use coar_store::{NewNotification, Record};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{
    App,
    worker::{Handler, HandlerError, HandlerFuture, Pipeline},
};

/// One `[[pipeline]]` entry of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerSpec {
    /// Pattern slugs the handler runs for; `"*"` for all (and unrecognised activities).
    pub patterns: Vec<String>,
    /// `webhook` or `auto-reply`.
    pub handler: String,
    /// webhook: where to POST the event.
    pub url: Option<String>,
    /// webhook: the HMAC-SHA256 key of the `X-Coar-Signature` header.
    pub secret: Option<String>,
    /// auto-reply: `accept`, `reject`, `tentative-accept` or `tentative-reject`.
    pub reply: Option<String>,
    /// auto-reply: the reply's summary.
    pub summary: Option<String>,
}

impl HandlerSpec {
    fn patterns(&self) -> Result<Vec<Option<Pattern>>, String> {
        let mut out = Vec::new();
        for p in &self.patterns {
            if p == "*" {
                out.extend(Pattern::ALL.into_iter().map(Some).chain([None]));
            } else {
                out.push(Some(
                    Pattern::from_slug(p).ok_or_else(|| format!("unknown pattern {p:?}"))?,
                ));
            }
        }
        if out.is_empty() {
            return Err("patterns is empty".into());
        }
        Ok(out)
    }

    /// Checks the entry; the message names what is wrong.
    pub fn check(&self) -> Result<(), String> {
        let patterns = self.patterns()?;
        match self.handler.as_str() {
            "webhook" => {
                let url = self.url.as_deref().ok_or("a webhook needs url")?;
                if !coar_model::is_http_uri(url) {
                    return Err(format!("url {url:?} is not an http(s) URL"));
                }
                if self.secret.as_deref().is_some_and(|s| s.len() < 16) {
                    return Err("secret must be at least 16 characters".into());
                }
                Ok(())
            }
            "auto-reply" => {
                let reply = self.reply.as_deref().ok_or("an auto-reply needs reply")?;
                if !matches!(
                    reply,
                    "accept" | "reject" | "tentative-accept" | "tentative-reject"
                ) {
                    return Err(format!(
                        "reply {reply:?} is not accept, reject, tentative-accept or tentative-reject"
                    ));
                }
                if patterns.iter().any(|p| {
                    !matches!(
                        p,
                        Some(Pattern::RequestReview | Pattern::RequestEndorsement)
                    )
                }) {
                    return Err(
                        "auto-reply answers Offers: use request-review and/or request-endorsement"
                            .into(),
                    );
                }
                Ok(())
            }
            other => Err(format!("unknown handler {other:?} (webhook or auto-reply)")),
        }
    }
}

/// The pipeline the configuration file describes.
pub fn pipeline(specs: &[HandlerSpec]) -> Result<Pipeline, String> {
    let mut pipeline = Pipeline::default();
    for spec in specs {
        spec.check()?;
        let handler: Arc<dyn Handler> = match spec.handler.as_str() {
            "webhook" => Arc::new(Webhook {
                url: spec.url.clone().unwrap_or_default(),
                secret: spec.secret.clone(),
            }),
            _ => Arc::new(AutoReply {
                reply: spec.reply.clone().unwrap_or_default(),
                summary: spec.summary.clone(),
            }),
        };
        pipeline = pipeline.add(&spec.patterns()?, handler);
    }
    Ok(pipeline)
}

/// HMAC-SHA256 (RFC 2104), lower-case hex.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(BLOCK, 0);
    let pad = |byte: u8| k.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize(),
    )
}

/// POSTs a JSON event for each notification, signed with `X-Coar-Signature:
/// sha256=<HMAC of the body>` when a secret is set. Its URL is the operator's, so it may be
/// private, and no redirect is followed. Any failure is ours, never the sender's: it is
/// retried with the queue's backoff until the notification is dead, and the sender is not
/// told.
pub struct Webhook {
    url: String,
    secret: Option<String>,
}

impl Handler for Webhook {
    fn name(&self) -> &str {
        "webhook"
    }

    fn handle<'a>(
        &'a self,
        app: &'a App,
        record: &'a Record,
        n: &'a Notification,
    ) -> HandlerFuture<'a> {
        Box::pin(async move {
            let event = serde_json::json!({
                "event": "notification.received",
                "key": record.key,
                "url": app.notification_url(record.key),
                "id": record.notification_id,
                "pattern": record.pattern,
                "origin": record.origin_id,
                "target": record.target_id,
                "object": record.object_id,
                "context": record.context_id,
                "in_reply_to": record.in_reply_to,
                "received_at": record.received_at,
                "notification": n.to_value(),
            });
            let body = event.to_string().into_bytes();
            let mut headers = vec![
                ("x-coar-event", "notification.received".to_owned()),
                ("x-coar-delivery", record.notification_id.clone()),
            ];
            if let Some(secret) = &self.secret {
                headers.push((
                    "x-coar-signature",
                    format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &body)),
                ));
            }
            app.webhooks
                .post_json(&self.url, &body, &headers)
                .await
                .map(|_| ())
                // Our own endpoint failing is never the sender's fault: retried with the
                // queue's backoff until the notification is dead, for the admin to see.
                .map_err(|e| HandlerError::transient(format!("webhook {}: {e}", self.url)))
        })
    }
}

/// Answers an incoming Offer with a configured acknowledgement, queued in the outbox. The
/// reply's id is derived from the Offer's, so running again queues nothing new.
pub struct AutoReply {
    reply: String,
    summary: Option<String>,
}

impl Handler for AutoReply {
    fn name(&self) -> &str {
        "auto-reply"
    }

    fn handle<'a>(
        &'a self,
        app: &'a App,
        _record: &'a Record,
        n: &'a Notification,
    ) -> HandlerFuture<'a> {
        Box::pin(async move {
            let offer_id = n.id().unwrap_or_default();
            let id = format!(
                "urn:uuid:{}",
                uuid::Uuid::new_v5(
                    &uuid::Uuid::NAMESPACE_URL,
                    format!("{offer_id}#{}", self.reply).as_bytes()
                )
            );
            macro_rules! reply {
                ($offer:expr) => {{
                    let offer = $offer;
                    let built = match self.reply.as_str() {
                        "accept" => {
                            finish(offer.accept(), &id, &self.summary).map(Notification::from)
                        }
                        "reject" => {
                            finish(offer.reject(), &id, &self.summary).map(Notification::from)
                        }
                        "tentative-accept" => finish(offer.tentative_accept(), &id, &self.summary)
                            .map(Notification::from),
                        _ => finish(offer.tentative_reject(), &id, &self.summary)
                            .map(Notification::from),
                    };
                    built
                }};
            }
            let built = match n.clone() {
                Notification::RequestReview(o) => reply!(o),
                Notification::RequestEndorsement(o) => reply!(o),
                _ => return Ok(()),
            };
            let reply = built.map_err(|e| {
                HandlerError::refused(
                    crate::worker::Refusal::Invalid,
                    format!("cannot answer this Offer: {e}"),
                )
            })?;
            let body = reply.to_json_string().into_bytes();
            app.store
                .insert(NewNotification::outbound(&reply, &body))
                .await
                .map(|_| ())
                .map_err(|e| HandlerError::transient(format!("could not queue the reply: {e}")))
        })
    }
}

fn finish<P: coar_model::Buildable>(
    builder: coar_model::Builder<P>,
    id: &str,
    summary: &Option<String>,
) -> Result<P, coar_model::BuildError> {
    let builder = builder.id(id);
    match summary {
        Some(s) => builder.summary(s.clone()).build(),
        None => builder.build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn specs_are_checked() {
        let ok: HandlerSpec = toml::from_str(
            "patterns = [\"*\"]\nhandler = \"webhook\"\nurl = \"https://repo.example/hook\"",
        )
        .unwrap();
        assert!(ok.check().is_ok());
        for bad in [
            "patterns = []\nhandler = \"webhook\"\nurl = \"https://x.example/\"",
            "patterns = [\"nope\"]\nhandler = \"webhook\"\nurl = \"https://x.example/\"",
            "patterns = [\"*\"]\nhandler = \"webhook\"",
            "patterns = [\"*\"]\nhandler = \"webhook\"\nurl = \"ftp://x\"",
            "patterns = [\"*\"]\nhandler = \"mail\"",
            "patterns = [\"request-review\"]\nhandler = \"auto-reply\"\nreply = \"maybe\"",
            "patterns = [\"announce-review\"]\nhandler = \"auto-reply\"\nreply = \"accept\"",
        ] {
            let spec: HandlerSpec = toml::from_str(bad).unwrap();
            assert!(spec.check().is_err(), "{bad}");
        }
    }
}
