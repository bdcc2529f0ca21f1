//! The built-in pipeline handlers, and the pipeline configured in the TOML file.
//!
//! Request tracking and resource links need no handler: a thread's status and what is known
//! about a resource are derived from the stored notifications (`inReplyTo`, object, context,
//! cite-as) whenever they are read, so they are always consistent with what was received.

use std::sync::Arc;

use coar_model::{Acknowledgement, Notification, Pattern};
use coar_store::Record;
use serde::Deserialize;

use crate::{
    Core,
    pipeline::{Handler, HandlerError, HandlerFuture, Pipeline},
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
    /// webhook: the signing secret of the Standard Webhooks signature (`whsec_` and base64,
    /// as Standard Webhooks libraries generate, or any string of 16 or more characters).
    pub secret: Option<String>,
    /// webhook: which events to POST: `received` (an inbound notification of `patterns`,
    /// in the pipeline; the default), `delivered` and `dead` (an outbound notification of
    /// `patterns` delivered, or given up on).
    #[serde(default)]
    pub events: Vec<String>,
    /// auto-reply: `accept`, `reject`, `tentative-accept` or `tentative-reject`.
    pub reply: Option<String>,
    /// auto-reply: the reply's summary.
    pub summary: Option<String>,
}

impl HandlerSpec {
    /// Whether a webhook posts `received` events (the default when no event is named).
    fn receives(&self) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == "received")
    }

    /// Whether this is a webhook for `event` of an outbound notification of `pattern`.
    pub fn posts(&self, event: &str, pattern: Option<Pattern>) -> bool {
        self.handler == "webhook"
            && self.events.iter().any(|e| e == event)
            && self.patterns().is_ok_and(|ps| ps.contains(&pattern))
    }

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
                if let Some(s) = self
                    .secret
                    .as_deref()
                    .and_then(|s| s.strip_prefix("whsec_"))
                    && base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s)
                        .is_err()
                {
                    return Err("a secret that starts with whsec_ must be base64 after it".into());
                }
                if let Some(e) = self
                    .events
                    .iter()
                    .find(|e| !matches!(e.as_str(), "received" | "delivered" | "dead"))
                {
                    return Err(format!("unknown event {e:?} (received, delivered or dead)"));
                }
                Ok(())
            }
            "auto-reply" => {
                let reply = self.reply.as_deref().ok_or("an auto-reply needs reply")?;
                if Acknowledgement::from_slug(reply).is_none() {
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
pub fn from_specs(specs: &[HandlerSpec]) -> Result<Pipeline, String> {
    let mut pipeline = Pipeline::default();
    for spec in specs {
        spec.check()?;
        let handler: Arc<dyn Handler> = match spec.handler.as_str() {
            // Only `delivered`/`dead`: no step of the inbound pipeline.
            "webhook" if !spec.receives() => continue,
            "webhook" => Arc::new(Webhook {
                url: spec.url.clone().unwrap_or_default(),
                secret: spec.secret.clone(),
            }),
            _ => Arc::new(AutoReply {
                reply: spec
                    .reply
                    .as_deref()
                    .and_then(Acknowledgement::from_slug)
                    .ok_or("auto-reply needs reply = accept, reject, tentative-accept or tentative-reject")?,
                summary: spec.summary.clone(),
            }),
        };
        pipeline = pipeline.add(&spec.patterns()?, handler);
    }
    Ok(pipeline)
}

/// The signing key of a Standard Webhooks secret: `whsec_` + base64 is decoded, anything
/// else is used as its bytes.
fn webhook_key(secret: &str) -> Vec<u8> {
    use base64::Engine;
    secret
        .strip_prefix("whsec_")
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// The Standard Webhooks signature of a message: `v1,` + base64 of the HMAC-SHA256 of
/// `{id}.{timestamp}.{body}`, keyed with the secret (`whsec_` and base64 decoded, any other string as its bytes).
pub fn webhook_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&webhook_key(secret))
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// The event of a webhook about `record`, as JSON: what happened, the notification's
/// indexed fields and the notification itself.
fn webhook_event(core: &Core, event: &str, record: &Record, n: Option<&Notification>) -> Vec<u8> {
    serde_json::json!({
        "type": format!("notification.{event}"),
        "event": format!("notification.{event}"),
        "key": record.key,
        "direction": record.direction.as_str(),
        "url": core.notification_url(record.key),
        "id": record.notification_id,
        "pattern": record.pattern,
        "origin": record.origin_id,
        "target": record.target_id,
        "object": record.object_id,
        "context": record.context_id,
        "in_reply_to": record.in_reply_to,
        "received_at": record.received_at,
        "state": record.state.as_str(),
        "notification": n.map(Notification::to_value),
    })
    .to_string()
    .into_bytes()
}

/// POSTs one webhook event, signed as Standard Webhooks say (`webhook-id`, stable across
/// retries so the receiver can drop repeats; `webhook-timestamp`, so it can drop replays;
/// `webhook-signature`), through the operator's client.
async fn post_webhook(
    core: &Core,
    url: &str,
    secret: Option<&str>,
    event: &str,
    record: &Record,
    body: &[u8],
) -> Result<(), coar_client::ClientError> {
    let id = format!("msg_{}_{event}", record.key);
    let timestamp = chrono::Utc::now().timestamp();
    let mut headers = vec![
        ("webhook-id", id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        ("x-coar-event", format!("notification.{event}")),
    ];
    if let Some(secret) = secret {
        headers.push((
            "webhook-signature",
            webhook_signature(secret, &id, timestamp, body),
        ));
    }
    core.webhooks()
        .post_json(url, body, &headers)
        .await
        .map(|_| ())
}

/// Posts the `delivered` or `dead` event of an outbound notification to every webhook that
/// asks for it. Best effort, off the worker: three tries over about five seconds; the
/// durable record of the delivery is its attempts.
pub fn outbound_event(core: &Arc<Core>, event: &'static str, record: &Record) {
    for spec in core
        .config()
        .pipeline
        .iter()
        .filter(|s| s.posts(event, record.pattern))
    {
        let (core, record) = (core.clone(), record.clone());
        let (url, secret) = (spec.url.clone().unwrap_or_default(), spec.secret.clone());
        tokio::spawn(async move {
            let body = webhook_event(&core, event, &record, None);
            for wait in [1, 4, 0] {
                match post_webhook(&core, &url, secret.as_deref(), event, &record, &body).await {
                    Ok(()) => return,
                    Err(e) if wait > 0 => {
                        tracing::info!(key = record.key, %e, "webhook {event} event failed; trying again");
                        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                    }
                    Err(e) => {
                        tracing::warn!(key = record.key, %e, "webhook {event} event not delivered")
                    }
                }
            }
        });
    }
}

/// POSTs a `received` event for each notification, signed as Standard Webhooks say when
/// a secret is set. Its URL is the operator's, so it may be private, and no redirect is
/// followed. Any failure is ours, never the sender's: it is retried with the queue's
/// backoff until the notification is dead, and the sender is not told.
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
        core: &'a Core,
        record: &'a Record,
        n: &'a Notification,
    ) -> HandlerFuture<'a> {
        Box::pin(async move {
            let body = webhook_event(core, "received", record, Some(n));
            post_webhook(
                core,
                &self.url,
                self.secret.as_deref(),
                "received",
                record,
                &body,
            )
            .await
            // Our own endpoint failing is never the sender's fault: retried with the
            // queue's backoff until the notification is dead, for the admin to see.
            .map_err(|e| HandlerError::transient(format!("webhook {}: {e}", self.url)))
        })
    }
}

/// Answers an incoming Offer with a configured acknowledgement, queued in the outbox. The
/// reply's id is derived from the Offer's, so running again queues nothing new.
pub struct AutoReply {
    reply: Acknowledgement,
    summary: Option<String>,
}

impl Handler for AutoReply {
    fn name(&self) -> &str {
        "auto-reply"
    }

    fn handle<'a>(
        &'a self,
        core: &'a Core,
        _record: &'a Record,
        n: &'a Notification,
    ) -> HandlerFuture<'a> {
        Box::pin(async move {
            let Some(built) = n.acknowledge(self.reply, self.summary.as_deref()) else {
                return Ok(()); // not an Offer
            };
            let reply = built.map_err(|e| {
                HandlerError::refused(
                    crate::pipeline::Refusal::Invalid,
                    format!("cannot answer this Offer: {e}"),
                )
            })?;
            core.queue_outbound(&reply)
                .await
                .map(|_| ())
                .map_err(|e| HandlerError::transient(format!("could not queue the reply: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            webhook_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
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
