//! The admin API (bearer token): the outbox, notification details, replay.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use coar_model::Pattern;
use coar_store::Inserted;
use serde_json::{Value, json};

use crate::views::{resource_view, summary};
use crate::web::{
    App,
    auth::AdminToken,
    feed::absolute_uri,
    paging::{Cursor, ListQuery, bad, filter_from},
    problem::ProblemDetails,
};

/// `POST /api/outbox`: a notification to send. Either a full notification, or a `pattern`
/// (slug) with the notification's other properties; `@context`, `id`, `origin` and `actor`
/// default to the standard context, a fresh `urn:uuid` and this server's identity. It is
/// validated, stored, and delivered by the workers; 202 with its API URL.
pub async fn outbox(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    Json(doc): Json<Value>,
) -> Result<Response, ProblemDetails> {
    let (n, report) = app.prepare_outbound(doc).await?;
    if n.pattern().is_none() || !report.is_valid() {
        return Err(ProblemDetails::invalid(&report));
    }
    let inserted = app.queue_outbound(&n).await?;
    let record = inserted.record();
    let location = app.urls().api_notification(record.key);
    let status = match inserted {
        Inserted::New(_) => StatusCode::ACCEPTED,
        Inserted::Duplicate(_) => StatusCode::OK,
    };
    Ok((status, [(header::LOCATION, location.clone())], Json(json!({"key": record.key, "id": record.notification_id, "state": record.state.as_str(), "url": location}))).into_response())
}

/// `GET /api/notifications/{key}`: a notification with its attempts and thread.
pub async fn notification(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    Path(key): Path<String>,
) -> Result<Response, ProblemDetails> {
    let not_found =
        || ProblemDetails::new(StatusCode::NOT_FOUND, "Not found", "no such notification");
    let key: i64 = key.parse().map_err(|_| not_found())?;
    let record = app.store().get(key).await?.ok_or_else(not_found)?;
    let attempts = app.store().attempts(key).await?;
    let thread = app.store().thread_of(&record).await?;
    let payload: Value = serde_json::from_slice(&record.body).unwrap_or(Value::Null);
    Ok(Json(json!({
                "record": crate::views::RecordView::from(&record),
        "payload": payload,
        "attempts": crate::views::attempts(&attempts),
        "thread": thread.map(|t| json!({
            "offer": t.offer.key,
            "status": t.status,
            "replies": t.replies.iter().map(|r| json!({"key": r.key, "pattern": r.pattern, "direction": r.direction.as_str()})).collect::<Vec<_>>(),
        })),
    }))
    .into_response())
}

/// `POST /api/notifications/{key}/replay`: queue a dead, failed or processed notification
/// again with a fresh attempt budget.
pub async fn replay(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    Path(key): Path<String>,
) -> Result<Response, ProblemDetails> {
    let key: i64 = key.parse().map_err(|_| {
        ProblemDetails::new(StatusCode::NOT_FOUND, "Not found", "no such notification")
    })?;
    if app.store().replay(key).await? {
        Ok((StatusCode::OK, Json(json!({"key": key, "state": "queued"}))).into_response())
    } else {
        Err(ProblemDetails::new(
            StatusCode::CONFLICT,
            "Not replayable",
            "only dead, failed or processed notifications are replayed",
        ))
    }
}

/// `GET /api/notifications`: both directions, filtered, newest first, with a cursor.
pub async fn list(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    page: Cursor,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
    uri: axum::http::Uri,
) -> Result<Response, ProblemDetails> {
    let filter = filter_from(&q)?;
    let page = app
        .store()
        .list(&filter, page.after, page.limit_or(50))
        .await?;
    let next = page.next.map(|n| {
        let kept: Vec<&str> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("after="))
            .collect();
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        format!("{}?{query}after={n}", app.urls().api_notifications())
    });
    Ok(Json(json!({
        "items": page.items.iter().map(|r| summary(app.urls(), r)).collect::<Vec<_>>(),
        "next": next,
    }))
    .into_response())
}

/// The `uri` of `GET /api/resources`.
#[derive(Debug, serde::Deserialize)]
pub struct ResourceQuery {
    uri: Option<String>,
}

/// `GET /api/resources?uri=X`: everything known about a resource: the requests sent about it
/// with their status, and every notification that names it (reviews, endorsements,
/// relationships, service results, replies).
pub async fn resource(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    axum::extract::Query(q): axum::extract::Query<ResourceQuery>,
) -> Result<Response, ProblemDetails> {
    let uri = absolute_uri("uri", q.uri.as_deref().unwrap_or(""))?;
    Ok(Json(resource_view(&app, &uri).await?).into_response())
}

/// `GET /api/stats`: counts by direction, pattern, state and day, and the queue depth.
pub async fn stats(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
) -> Result<Response, ProblemDetails> {
    let stats = app.store().stats(&coar_store::Filter::default()).await?;
    let to_map = |pairs: &[(String, u64)]| {
        pairs
            .iter()
            .map(|(k, n)| (k.clone(), json!(n)))
            .collect::<serde_json::Map<_, _>>()
    };
    Ok(Json(json!({
        "by_direction": to_map(&stats.by_direction),
        "by_pattern": to_map(&stats.by_pattern),
        "by_state": to_map(&stats.by_state),
        "by_day": to_map(&stats.by_day),
    }))
    .into_response())
}

/// A service as the API reads and writes it.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceBody {
    name: Option<String>,
    id: Option<String>,
    inbox: Option<String>,
    enabled: Option<bool>,
    inbound_patterns: Option<Vec<Pattern>>,
    outbound_patterns: Option<Vec<Pattern>>,
    cidrs: Option<Vec<String>>,
    tokens: Option<Vec<String>>,
}

fn service_json(s: &coar_store::RegisteredService) -> Value {
    json!(crate::views::ServiceView::from(s))
}

/// `GET /api/services`.
pub async fn services(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
) -> Result<Response, ProblemDetails> {
    let all = app.store().services().await?;
    Ok(Json(all.iter().map(service_json).collect::<Vec<_>>()).into_response())
}

/// `POST /api/services`: register; 201.
pub async fn add_service(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    Json(body): Json<ServiceBody>,
) -> Result<Response, ProblemDetails> {
    let input = coar_store::ServiceInput {
        name: body.name.ok_or_else(|| bad("name", "name is required"))?,
        id: body.id.ok_or_else(|| bad("id", "id is required"))?,
        inbox: body.inbox,
        enabled: body.enabled.unwrap_or(true),
        inbound_patterns: body.inbound_patterns.unwrap_or_default(),
        outbound_patterns: body.outbound_patterns.unwrap_or_default(),
        cidrs: body.cidrs.unwrap_or_default(),
        tokens: body.tokens,
    };
    let s = app.store().add_service(&input).await?;
    let released = app.store().release_for(&s).await?;
    let location = app.urls().api_service(s.key);
    let mut body = service_json(&s);
    body["quarantine"] = json!(crate::views::ReleasedView::from(released));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

/// `PATCH /api/services/{key}`: change the fields given (tokens replace the old ones).
pub async fn update_service(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    Path(key): Path<i64>,
    Json(body): Json<ServiceBody>,
) -> Result<Response, ProblemDetails> {
    let current = app.store().service(key).await?.ok_or_else(|| {
        ProblemDetails::new(StatusCode::NOT_FOUND, "Not found", "no such service")
    })?;
    let input = coar_store::ServiceInput {
        name: body.name.unwrap_or(current.name),
        id: body.id.unwrap_or(current.id),
        inbox: body.inbox.or(current.inbox),
        enabled: body.enabled.unwrap_or(current.enabled),
        inbound_patterns: body.inbound_patterns.unwrap_or(current.inbound_patterns),
        outbound_patterns: body.outbound_patterns.unwrap_or(current.outbound_patterns),
        cidrs: body.cidrs.unwrap_or(current.cidrs),
        tokens: body.tokens,
    };
    let s = app.store().update_service(key, &input).await?;
    // Its rules may now vouch for more of what waits (never for less than its evidence).
    let released = app.store().release_for(&s).await?;
    let mut body = service_json(&s);
    body["quarantine"] = json!(crate::views::ReleasedView::from(released));
    Ok(Json(body).into_response())
}

/// `DELETE /api/services/{key}`: 204, or 404.
pub async fn remove_service(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    Path(key): Path<i64>,
) -> Result<Response, ProblemDetails> {
    if app.store().remove_service(key).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ProblemDetails::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "no such service",
        ))
    }
}

/// `GET /api/openapi.json`: the admin API described in OpenAPI 3.1.
pub async fn openapi(State(app): State<Arc<App>>) -> Response {
    let secured = json!([{"bearer": []}]);
    let op = |summary: &str| json!({"summary": summary, "security": secured, "responses": {"200": {"description": "OK"}, "401": {"description": "No token"}, "403": {"description": "Wrong token"}}});
    Json(json!({
        "openapi": "3.1.0",
        "info": {"title": "coar-notify admin API", "version": env!("CARGO_PKG_VERSION")},
                "servers": [{"url": app.urls().base()}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/api/outbox": {"post": op("Send a notification (full, or a pattern with its properties); 202")},
            "/api/notifications": {"get": op("List notifications: direction, pattern, state, ro, source, origin, target, from, to, q (free text), limit, after")},
            "/api/notifications/{key}": {"get": op("A notification with its attempts and thread")},
            "/api/notifications/{key}/replay": {"post": op("Queue a dead, failed or processed notification again")},
            "/api/resources": {"get": op("Everything known about a resource (?uri=)")},
            "/api/stats": {"get": op("Counts by direction, pattern, state and day")},
            "/api/services": {"get": op("List registered services"), "post": op("Register a service; 201")},
            "/api/services/{key}": {"patch": op("Change a service"), "delete": op("Remove a service; 204")},
        },
    }))
    .into_response()
}
