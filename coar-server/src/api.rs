//! The admin API (bearer token): the outbox, notification details, replay.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use coar_model::{Notification, Pattern};
use coar_store::{Inserted, NewNotification};
use serde_json::{Value, json};

use crate::{App, admin::require_admin, problem::Problem};

/// `POST /api/outbox`: a notification to send. Either a full notification, or a `pattern`
/// (slug) with the notification's other properties; `@context`, `id`, `origin` and `actor`
/// default to the standard context, a fresh `urn:uuid` and this server's identity. It is
/// validated, stored, and delivered by the workers; 202 with its API URL.
pub async fn outbox(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(mut doc): Json<Value>,
) -> Result<Response, Problem> {
    require_admin(&app, &headers)?;
    let Some(map) = doc.as_object_mut() else {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "Not an object",
            "send a JSON object",
        ));
    };
    if let Some(slug) = map.remove("pattern") {
        let slug = slug.as_str().unwrap_or_default().to_owned();
        let pattern = Pattern::from_slug(&slug)
            .filter(|p| !p.is_legacy())
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "Unknown pattern",
                    format!("{slug:?} is not a COAR Notify 1.0.1 pattern"),
                )
            })?;
        map.insert("type".into(), pattern.type_value());
    }
    map.entry("@context")
        .or_insert_with(|| json!(coar_model::vocab::STANDARD_CONTEXT));
    map.entry("id")
        .or_insert_with(|| json!(coar_model::new_id()));
    map.entry("origin").or_insert_with(|| app.identity());
    map.entry("actor").or_insert_with(|| {
        let mut me = app.identity();
        me.as_object_mut().map(|m| m.remove("inbox"));
        me
    });
    let n = Notification::from_value(doc)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "Not a notification", e.to_string()))?;
    let report = n.validate();
    if n.pattern().is_none() || !report.is_valid() {
        return Err(Problem::invalid(&report));
    }
    let body = n.to_json_string().into_bytes();
    let inserted = app
        .store
        .insert(NewNotification::outbound(&n, &body))
        .await?;
    let record = inserted.record();
    let location = format!("{}/api/notifications/{}", app.config.base_url, record.key);
    let status = match inserted {
        Inserted::New(_) => StatusCode::ACCEPTED,
        Inserted::Duplicate(_) => StatusCode::OK,
    };
    Ok((status, [(header::LOCATION, location.clone())], Json(json!({"key": record.key, "id": record.notification_id, "state": record.state, "url": location}))).into_response())
}

/// `GET /api/notifications/{key}`: a notification with its attempts and thread.
pub async fn notification(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, Problem> {
    require_admin(&app, &headers)?;
    let not_found = || Problem::new(StatusCode::NOT_FOUND, "Not found", "no such notification");
    let key: i64 = key.parse().map_err(|_| not_found())?;
    let record = app.store.get(key).await?.ok_or_else(not_found)?;
    let attempts = app.store.attempts(key).await?;
    let thread = app.store.thread_of(&record).await?;
    let payload: Value = serde_json::from_slice(&record.body).unwrap_or(Value::Null);
    Ok(Json(json!({
        "record": record,
        "payload": payload,
        "attempts": attempts,
        "thread": thread.map(|t| json!({
            "offer": t.offer.key,
            "status": t.status,
            "replies": t.replies.iter().map(|r| json!({"key": r.key, "pattern": r.pattern, "direction": r.direction})).collect::<Vec<_>>(),
        })),
    }))
    .into_response())
}

/// `POST /api/notifications/{key}/replay`: queue a dead, failed or processed notification
/// again with a fresh attempt budget.
pub async fn replay(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, Problem> {
    require_admin(&app, &headers)?;
    let key: i64 = key
        .parse()
        .map_err(|_| Problem::new(StatusCode::NOT_FOUND, "Not found", "no such notification"))?;
    if app.store.replay(key).await? {
        Ok((StatusCode::OK, Json(json!({"key": key, "state": "queued"}))).into_response())
    } else {
        Err(Problem::new(
            StatusCode::CONFLICT,
            "Not replayable",
            "only dead, failed or processed notifications are replayed",
        ))
    }
}
