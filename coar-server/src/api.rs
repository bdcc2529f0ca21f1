//! The admin API (bearer token): the outbox, notification details, replay.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use coar_model::{Notification, Pattern};
use coar_store::{Inserted, NewNotification};
use serde_json::{Value, json};

use crate::{
    App,
    auth::AdminToken,
    feed::absolute_uri,
    paging::{Page, bad},
    problem::Problem,
};

/// `POST /api/outbox`: a notification to send. Either a full notification, or a `pattern`
/// (slug) with the notification's other properties; `@context`, `id`, `origin` and `actor`
/// default to the standard context, a fresh `urn:uuid` and this server's identity. It is
/// validated, stored, and delivered by the workers; 202 with its API URL.
pub async fn outbox(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    Json(doc): Json<Value>,
) -> Result<Response, Problem> {
    let (n, report) = prepare_outbound(&app, doc).await?;
    if n.pattern().is_none() || !report.is_valid() {
        return Err(Problem::invalid(&report));
    }
    let inserted = store_outbound(&app, &n).await?;
    let record = inserted.record();
    let location = app.urls.api_notification(record.key);
    let status = match inserted {
        Inserted::New(_) => StatusCode::ACCEPTED,
        Inserted::Duplicate(_) => StatusCode::OK,
    };
    Ok((status, [(header::LOCATION, location.clone())], Json(json!({"key": record.key, "id": record.notification_id, "state": record.state, "url": location}))).into_response())
}

/// Completes a notification to send: a `pattern` slug becomes its `type`; `@context`, `id`,
/// `origin` and `actor` default to the standard context, a fresh `urn:uuid` and this
/// server's identity; a target given by its id alone gets the inbox it advertises (LDN
/// discovery). Returns it parsed, with its validation report (the caller decides what an
/// invalid one means: a 422 for the API, inline problems for the dashboard).
pub(crate) async fn prepare_outbound(
    app: &App,
    mut doc: Value,
) -> Result<(Notification, coar_model::Report), Problem> {
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
    let target_id = map
        .get("target")
        .and_then(|t| t.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let (Some(id), Some(target)) = (
        target_id,
        map.get_mut("target").and_then(Value::as_object_mut),
    ) && !target.contains_key("inbox")
    {
        let inbox = app.client.discover(&id).await.map_err(|e| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "No inbox for the target",
                format!("target.inbox is not given and discovery from {id} failed: {e}"),
            )
        })?;
        target.insert("inbox".into(), json!(inbox.as_str()));
    }
    let n = Notification::from_value(doc)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "Not a notification", e.to_string()))?;
    let report = n.validate();
    Ok((n, report))
}

/// Stores a valid notification in the outbox, where the workers deliver it.
pub(crate) async fn store_outbound(app: &App, n: &Notification) -> Result<Inserted, Problem> {
    let body = n.to_json_string().into_bytes();
    Ok(app
        .store
        .insert(NewNotification::outbound(n, &body))
        .await?)
}

/// `GET /api/notifications/{key}`: a notification with its attempts and thread.
pub async fn notification(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    Path(key): Path<String>,
) -> Result<Response, Problem> {
    let not_found = || Problem::new(StatusCode::NOT_FOUND, "Not found", "no such notification");
    let key: i64 = key.parse().map_err(|_| not_found())?;
    let record = app.store.get(key).await?.ok_or_else(not_found)?;
    let attempts = app.store.attempts(key).await?;
    let thread = app.store.thread_of(&record).await?;
    let payload: Value = serde_json::from_slice(&record.body).unwrap_or(Value::Null);
    Ok(Json(json!({
                "record": crate::views::RecordView::from(&record),
        "payload": payload,
        "attempts": crate::views::attempts(&attempts),
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
    _admin: AdminToken,
    Path(key): Path<String>,
) -> Result<Response, Problem> {
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

/// Filters of `GET /api/notifications` (the feed's, plus direction, pattern, state, origin,
/// target).
#[derive(Debug, serde::Deserialize)]
pub struct ListQuery {
    pub(crate) direction: Option<String>,
    pub(crate) pattern: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) ro: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) origin: Option<String>,
    pub(crate) target: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    /// Free text: in the body, the notification id or the last error.
    pub(crate) q: Option<String>,
}

/// A record as listings show it.
pub(crate) fn summary(app: &App, r: &coar_store::Record) -> Value {
    json!({
        "key": r.key,
                "url": app.urls.api_notification(r.key),
        "id": r.notification_id,
        "direction": r.direction,
        "pattern": r.pattern,
        "state": r.state,
        "attempts": r.attempts,
        "origin": r.origin_id,
        "target": r.target_id,
        "object": r.object_id,
        "context": r.context_id,
        "in_reply_to": r.in_reply_to,
        "received_at": r.received_at,
        "last_error": r.last_error,
    })
}

/// The store filter of a listing's query parameters; 400 naming a bad one.
pub(crate) fn filter_from(q: &ListQuery) -> Result<coar_store::Filter, Problem> {
    let get = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let uri = |name: &str, v: &Option<String>| get(v).map(|v| absolute_uri(name, &v)).transpose();
    let range = crate::paging::range(q.from.as_deref(), q.to.as_deref())?;
    Ok(coar_store::Filter {
        direction: get(&q.direction)
            .map(|d| d.parse().map_err(|m: String| bad("direction", m)))
            .transpose()?,
        pattern: match get(&q.pattern).as_deref() {
            None => None,
            Some("unrecognised") => Some(None),
            Some(slug) => {
                Some(Some(Pattern::from_slug(slug).ok_or_else(|| {
                    bad("pattern", format!("unknown pattern {slug:?}"))
                })?))
            }
        },
        state: get(&q.state)
            .map(|s| s.parse().map_err(|m: String| bad("state", m)))
            .transpose()?,
        resource: uri("ro", &q.ro)?,
        source: uri("source", &q.source)?,
        origin: uri("origin", &q.origin)?,
        target: uri("target", &q.target)?,
        since: range.since,
        until: range.until,
        text: get(&q.q),
        attributed_only: false,
    })
}

/// `GET /api/notifications`: both directions, filtered, newest first, with a cursor.
pub async fn list(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    page: Page,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
    uri: axum::http::Uri,
) -> Result<Response, Problem> {
    let filter = filter_from(&q)?;
    let page = app
        .store
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
        format!("{}?{query}after={n}", app.urls.api_notifications())
    });
    Ok(Json(json!({
        "items": page.items.iter().map(|r| summary(&app, r)).collect::<Vec<_>>(),
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
) -> Result<Response, Problem> {
    let uri = absolute_uri("uri", q.uri.as_deref().unwrap_or(""))?;
    Ok(Json(resource_view(&app, &uri).await?).into_response())
}

/// Everything known about the resource `uri`: `requests` (threads with their status and
/// replies), `links` (reviews, endorsements, relationships, service results) and every
/// `notifications` naming it.
pub(crate) async fn resource_view(app: &App, uri: &str) -> Result<Value, Problem> {
    let threads = app.store.threads_for_resource(uri).await?;
    let filter = coar_store::Filter {
        resource: Some(uri.to_owned()),
        ..coar_store::Filter::default()
    };
    let mut notifications = Vec::new();
    let mut cursor = None;
    loop {
        let page = app.store.list(&filter, cursor, 1000).await?;
        notifications.extend(page.items.iter().map(|r| summary(app, r)));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let links: Vec<Value> = notifications
        .iter()
        .filter(|n| n["direction"] == "inbound")
        .filter_map(|n| {
            let kind = match n["pattern"].as_str()? {
                "announce-review" => "review",
                "announce-endorsement" => "endorsement",
                "announce-relationship" => "relationship",
                "announce-service-result" => "service-result",
                _ => return None,
            };
            Some(json!({"kind": kind, "resource": n["object"], "about": n["context"], "from": n["origin"], "notification": n["url"]}))
        })
        .collect();
    Ok(json!({
        "uri": uri,
        "requests": threads.iter().map(|t| json!({
            "offer": summary(app, &t.offer),
            "status": t.status,
            "replies": t.replies.iter().map(|r| summary(app, r)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "links": links,
        "notifications": notifications,
    }))
}

/// `GET /api/stats`: counts by direction, pattern, state and day, and the queue depth.
pub async fn stats(State(app): State<Arc<App>>, _admin: AdminToken) -> Result<Response, Problem> {
    let stats = app.store.stats(&coar_store::Filter::default()).await?;
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

fn service_json(s: &coar_store::Service) -> Value {
    json!(crate::views::ServiceView::from(s))
}

/// `GET /api/services`.
pub async fn services(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
) -> Result<Response, Problem> {
    let all = app.store.services().await?;
    Ok(Json(all.iter().map(service_json).collect::<Vec<_>>()).into_response())
}

/// `POST /api/services`: register; 201.
pub async fn add_service(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    Json(body): Json<ServiceBody>,
) -> Result<Response, Problem> {
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
    let s = app.store.add_service(&input).await?;
    let released = app.store.release_for(&s).await?;
    let location = app.urls.api_service(s.key);
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
) -> Result<Response, Problem> {
    let current = app
        .store
        .service(key)
        .await?
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "Not found", "no such service"))?;
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
    let s = app.store.update_service(key, &input).await?;
    // Its rules may now vouch for more of what waits (never for less than its evidence).
    let released = app.store.release_for(&s).await?;
    let mut body = service_json(&s);
    body["quarantine"] = json!(crate::views::ReleasedView::from(released));
    Ok(Json(body).into_response())
}

/// `DELETE /api/services/{key}`: 204, or 404.
pub async fn remove_service(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    Path(key): Path<i64>,
) -> Result<Response, Problem> {
    if app.store.remove_service(key).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::new(
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
                "servers": [{"url": app.urls.base()}],
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
