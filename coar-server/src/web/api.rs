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
#[utoipa::path(
    post,
    path = "/api/outbox",
    tag = "admin",
    request_body(
        content = Object,
        content_type = "application/json",
        description = "A whole notification, or `{\"pattern\": slug, ...}` with the notification's other properties; `@context`, `id`, `origin` and `actor` default to this server's. A reply naming its Offer only by `inReplyTo` gets the stored Offer as its object."
    ),
    responses(
        (status = 202, description = "Stored; the workers deliver it", body = crate::web::openapi::Queued, headers(("Location" = String, description = "Its record in this API"))),
        (status = 200, description = "The same notification was queued before", body = crate::web::openapi::Queued),
        (status = 400, description = "Not a JSON object, an unknown pattern, or not a notification", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No bearer token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address; Retry-After says when to try again", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another notification with this id is already queued", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over the size limit", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not application/json"),
        (status = 422, description = "Invalid: each problem with its pointer and rule, or no inbox found for the target", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/notifications/{key}",
    tag = "admin",
    params(("key" = i64, Path, description = "The notification's key")),
    responses(
        (status = 200, description = "The record, payload, attempts and thread", body = crate::web::openapi::NotificationDetail),
        (status = 401, description = "No bearer token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address; Retry-After says when to try again", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such notification", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
    )
)]
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
#[utoipa::path(
    post,
    path = "/api/notifications/{key}/replay",
    tag = "admin",
    params(("key" = i64, Path, description = "The notification's key")),
    responses(
        (status = 200, description = "Queued again with a fresh attempt budget", body = crate::web::openapi::Replayed),
        (status = 401, description = "No bearer token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address; Retry-After says when to try again", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such notification", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not dead, failed or processed", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/notifications",
    tag = "admin",
    params(crate::web::openapi::ListParams),
    responses(
        (status = 200, description = "A page, newest first", body = crate::web::openapi::NotificationList),
        (status = 400, description = "A bad parameter, named", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No bearer token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address; Retry-After says when to try again", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
    )
)]
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
#[utoipa::path(
    get,
    path = "/api/resources",
    tag = "admin",
    params(("uri" = String, Query, description = "The resource's absolute URI")),
    responses(
        (status = 200, description = "`requests` (threads with their status and replies), `links` (reviews, endorsements, relationships, service results) and every `notifications` naming it", body = Object),
        (status = 400, description = "No uri, or not an absolute URI", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No bearer token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address; Retry-After says when to try again", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resource(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    axum::extract::Query(q): axum::extract::Query<ResourceQuery>,
) -> Result<Response, ProblemDetails> {
    let uri = absolute_uri("uri", q.uri.as_deref().unwrap_or(""))?;
    Ok(Json(resource_view(&app, &uri).await?).into_response())
}

/// `GET /api/stats`: counts by direction, pattern, state and day, and the queue depth.
#[utoipa::path(
    get,
    path = "/api/stats",
    tag = "admin",
    responses(
        (status = 200, description = "Counts by direction, pattern, state and day", body = crate::web::openapi::Stats),
        (status = 401, description = "No bearer token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address; Retry-After says when to try again", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
    )
)]
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
    signature_policy: Option<coar_store::SignaturePolicy>,
    keys: Option<Value>,
    key_set_url: Option<String>,
}

/// The keys a body gives, parsed (`None`: not given).
fn body_keys(keys: Option<&Value>) -> Result<Option<Vec<coar_store::ServiceKey>>, ProblemDetails> {
    keys.map(|k| crate::signatures::service_keys(k).map_err(|m| bad("keys", m)))
        .transpose()
}

/// A key-set URL as given: `""` is none.
fn body_url(url: Option<String>) -> Option<Option<String>> {
    url.map(|u| Some(u.trim().to_owned()).filter(|u| !u.is_empty()))
}

/// The answer to a saved service: the service, what was released, why its key set could
/// not be fetched.
fn saved_json(saved: &crate::signatures::SavedService) -> Value {
    let mut body = service_json(&saved.service);
    body["quarantine"] = json!(crate::views::ReleasedView::from(saved.released));
    if let Some(e) = &saved.key_set_error {
        body["key_set_error"] = json!(e);
    }
    body
}

fn service_json(s: &coar_store::RegisteredService) -> Value {
    json!(crate::views::ServiceView::from(s))
}

/// `GET /api/services`.
#[utoipa::path(
    get,
    path = "/api/services",
    tag = "admin",
    responses(
        (status = 200, description = "Every registered service (tokens are never shown)", body = Vec<crate::views::ServiceView>),
        (status = 401, description = "No bearer token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address; Retry-After says when to try again", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn services(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
) -> Result<Response, ProblemDetails> {
    let all = app.store().services().await?;
    Ok(Json(all.iter().map(service_json).collect::<Vec<_>>()).into_response())
}

/// `POST /api/services`: register; 201.
#[utoipa::path(
    post,
    path = "/api/services",
    tag = "admin",
    request_body(content = crate::web::openapi::ServiceInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered; the quarantined notifications its rules vouch for are released", body = crate::web::openapi::ServiceChanged, headers(("Location" = String, description = "The service in this API"))),
        (status = 400, description = "A missing or bad field, named", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No bearer token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address; Retry-After says when to try again", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A service with this id is registered", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is not a service (unknown field, wrong type)", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
    )
)]
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
        signature_policy: body.signature_policy.unwrap_or_default(),
        keys: body_keys(body.keys.as_ref())?,
        key_set_url: body_url(body.key_set_url).flatten(),
    };
    let saved = app.save_service(None, &input).await?;
    let location = app.urls().api_service(saved.service.key);
    let body = saved_json(&saved);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

/// `PATCH /api/services/{key}`: change the fields given (tokens replace the old ones).
#[utoipa::path(
    patch,
    path = "/api/services/{key}",
    tag = "admin",
    params(("key" = i64, Path, description = "The service's key")),
    request_body(content = crate::web::openapi::ServiceInput, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed; what its rules now vouch for is released", body = crate::web::openapi::ServiceChanged),
        (status = 400, description = "A bad field, named", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No bearer token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address; Retry-After says when to try again", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another service has this id", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is not a service (unknown field, wrong type)", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_service(
    State(app): State<Arc<App>>,
    _admin: AdminToken,
    Path(key): Path<i64>,
    Json(body): Json<ServiceBody>,
) -> Result<Response, ProblemDetails> {
    let current = app.store().service(key).await?.ok_or_else(|| {
        ProblemDetails::new(StatusCode::NOT_FOUND, "Not found", "no such service")
    })?;
    let keys = body_keys(body.keys.as_ref())?;
    let input = coar_store::ServiceInput {
        name: body.name.unwrap_or(current.name),
        id: body.id.unwrap_or(current.id),
        inbox: body.inbox.or(current.inbox),
        enabled: body.enabled.unwrap_or(current.enabled),
        inbound_patterns: body.inbound_patterns.unwrap_or(current.inbound_patterns),
        outbound_patterns: body.outbound_patterns.unwrap_or(current.outbound_patterns),
        cidrs: body.cidrs.unwrap_or(current.cidrs),
        tokens: body.tokens,
        signature_policy: body.signature_policy.unwrap_or(current.signature_policy),
        keys,
        key_set_url: body_url(body.key_set_url).unwrap_or(current.key_set_url),
    };
    // Its rules may now vouch for more of what waits (never for less than its evidence).
    let saved = app.save_service(Some(key), &input).await?;
    Ok(Json(saved_json(&saved)).into_response())
}

/// `DELETE /api/services/{key}`: 204, or 404.
#[utoipa::path(
    delete,
    path = "/api/services/{key}",
    tag = "admin",
    params(("key" = i64, Path, description = "The service's key")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No bearer token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another token", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong tokens from this address; Retry-After says when to try again", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service", body = crate::web::openapi::Problem, content_type = "application/problem+json"),
    )
)]
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

/// `GET /api/openapi.json`: the admin API described in OpenAPI 3.1, generated from the
/// handlers ([`crate::web::openapi`]).
pub async fn openapi(State(app): State<Arc<App>>) -> Response {
    Json(crate::web::openapi::document(app.urls().base())).into_response()
}
