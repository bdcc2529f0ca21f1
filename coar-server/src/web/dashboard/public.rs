//! The inbox for people: `GET /inbox` and `GET /inbox/{key}` answer a browser (an `Accept`
//! that prefers `text/html` to every RDF syntax) with a page rendered here, from the
//! dashboard's templates, without script. They show what the JSON-LD shows, nothing more:
//! no queue state, sender address or error.

use axum::{http::StatusCode, response::Response};
use coar_store::Record;
use serde_json::{Value, json};

use crate::web::App;

/// Whether a request with this `Accept` prefers an HTML page to every RDF syntax (ties go
/// to RDF: `*/*` alone is answered with JSON-LD).
pub(crate) fn prefers_html(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    match coar_ldn::quality(accept, "text/html") {
        None => false,
        Some(html) => {
            coar_ldn::best_quality(accept, &coar_ldn::RdfFormat::ALL).is_none_or(|rdf| html > rdf)
        }
    }
}

fn item(app: &App, r: &Record) -> Value {
    json!({
        "url": app.notification_url(r.key),
        "title": r.pattern.map_or("Unrecognised activity", |p| p.title()),
        "received": r.received_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        "origin": r.origin_id,
        "object": r.object_id,
    })
}

/// A page of the inbox's listing; `next` is the next page's URL.
pub(crate) fn inbox(app: &App, items: &[Record], next: Option<String>, paged: bool) -> Response {
    let context = json!({
        "inbox": app.inbox_url(),
        "items": items.iter().map(|r| item(app, r)).collect::<Vec<_>>(),
        "next": next,
        "paged": paged,
    });
    super::render(app, None, StatusCode::OK, "inbox.html", context)
}

/// One notification: what it says, and its body as received (pretty-printed when JSON).
pub(crate) fn notification(app: &App, record: &Record) -> Response {
    let payload = serde_json::from_slice::<Value>(&record.body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&record.body).into_owned());
    let context = json!({
        "inbox": app.inbox_url(),
        "m": item(app, record),
        "record": {
            "notification_id": record.notification_id,
            "types": record.types,
            "origin_id": record.origin_id,
            "target_id": record.target_id,
            "actor_id": record.actor_id,
            "object_id": record.object_id,
            "context_id": record.context_id,
            "in_reply_to": record.in_reply_to,
        },
        "payload": payload,
    });
    super::render(app, None, StatusCode::OK, "notification.html", context)
}
