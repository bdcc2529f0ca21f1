//! The LDN inbox: POST to receive, GET to list and to read, OPTIONS to describe.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use coar_ldn::{ACCEPT_POST, BodyFormat, Listing, RdfFormat, body_format, negotiate};
use coar_model::Notification;
use coar_store::{Direction, Filter, Inserted, State as QueueState};

use crate::{App, config::TrustPolicy, problem::Problem, trust};

/// The Link headers every inbox response carries: the inbox and its constraints.
pub(crate) fn inbox_links(app: &App, headers: &mut HeaderMap) {
    for value in [
        coar_ldn::inbox_link_header(&app.inbox_url()),
        coar_ldn::link::constrained_by_link_header(&app.urls.constraints()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.append(header::LINK, v);
        }
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `POST /inbox`.
pub async fn post(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let outcome = receive(&app, peer, &headers, body).await;
    let (pattern, result) = match outcome {
        Ok((pattern, label, response)) => {
            app.metrics.received(&pattern, label);
            return Ok(response);
        }
        Err((pattern, problem)) => (pattern, problem),
    };
    let label = match result.status.as_u16() {
        403 => "rejected",
        409 => "conflict",
        429 => "rate_limited",
        413 => "too_large",
        415 => "unsupported_media_type",
        422 => "invalid",
        500.. => "error",
        _ => "malformed",
    };
    app.metrics.received(&pattern, label);
    Err(result)
}

type Received = (String, &'static str, Response);

async fn receive(
    app: &Arc<App>,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Received, (String, Problem)> {
    let none = || "none".to_owned();
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            format!("notifications are limited to {} bytes", app.config.max_body),
        )
    };
    let content_type = header_str(headers, header::CONTENT_TYPE);
    // Refuse early what can be refused without reading the body.
    if content_type.and_then(body_format).is_none() {
        return Err((
            none(),
            coar_ldn::ReceiveError::UnsupportedMediaType {
                found: content_type.map(str::to_owned),
            }
            .into(),
        ));
    }
    let sender = trust::client_addr(
        peer.ip(),
        headers,
        &app.config.trusted_proxies,
        app.config.forwarded_header,
    );
    if let Some(limit) = &app.address_limit
        && let Err(wait) = limit.take(&crate::limits::address_key(sender))
    {
        return Err((none(), too_many("this address", wait)));
    }
    let declared =
        header_str(headers, header::CONTENT_LENGTH).and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > app.config.max_body) {
        return Err((none(), too_large()));
    }
    let bytes: Bytes = axum::body::to_bytes(body, app.config.max_body)
        .await
        .map_err(|_| (none(), too_large()))?;
    let received = app
        .check_body(content_type, bytes.clone())
        .await
        .map_err(|p| (none(), p))?;
    let notification = Notification::from_value(received.json).map_err(|e| {
        (
            none(),
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Not a single activity",
                e.to_string(),
            ),
        )
    })?;
    let pattern = notification
        .pattern()
        .map_or_else(|| "unrecognised".to_owned(), |p| p.slug().to_owned());
    let report = notification.validate();
    if notification.pattern().is_some() && !report.is_valid() {
        return Err((pattern, Problem::invalid(&report)));
    }
    if notification.pattern().is_none() && !app.config.accept_unrecognised {
        return Err((pattern, Problem::invalid(&report)));
    }
    let bearer_sha256 = header_str(headers, header::AUTHORIZATION)
        .and_then(|a| a.strip_prefix("Bearer ").map(str::trim))
        .filter(|t| !t.is_empty())
        .map(|t| coar_store::sha256_hex(t.as_bytes()));
    let service = trust::attribute(app, &notification, sender, bearer_sha256.as_deref())
        .await
        .map_err(|e| (pattern.clone(), Problem::from(e)))?;
    if let (Some(s), Some(limit)) = (&service, &app.service_limit)
        && let Err(wait) = limit.take(&s.key.to_string())
    {
        return Err((pattern, too_many("this service", wait)));
    }
    let state = match (&service, app.config.trust) {
        (Some(_), _) | (None, TrustPolicy::Accept) => QueueState::Queued,
        (None, TrustPolicy::Quarantine) => QueueState::Quarantined,
        (None, TrustPolicy::Reject) => {
            return Err((
                pattern,
                Problem::new(
                    StatusCode::FORBIDDEN,
                    "Untrusted sender",
                    "this inbox accepts notifications from registered services only",
                ),
            ));
        }
    };
    if state == QueueState::Quarantined {
        let origin = notification.origin().and_then(|o| o.id());
        quarantine_room(app, &sender.to_string(), origin)
            .await
            .map_err(|p| (pattern.clone(), p))?;
    }
    let media_type = content_type.unwrap_or(match received.format {
        BodyFormat::JsonLd => "application/ld+json",
        BodyFormat::Turtle => "text/turtle",
    });
    let pending = crate::batch::Pending {
        notification,
        body: bytes.to_vec(),
        media_type: media_type.to_owned(),
        remote_addr: Some(sender.to_string()),
        bearer_sha256,
        service: service.map(|s| s.key),
        state,
    };
    let inserted = app
        .inserter
        .insert(pending)
        .await
        .map_err(|e| (pattern.clone(), Problem::from(e)))?;
    let (status, label) = match &inserted {
        Inserted::New(_) => (
            StatusCode::CREATED,
            if state == QueueState::Quarantined {
                "quarantined"
            } else {
                "created"
            },
        ),
        Inserted::Duplicate(_) => (StatusCode::CREATED, "duplicate"),
    };
    if state == QueueState::Quarantined && matches!(inserted, Inserted::New(_)) {
        app.quarantined.add(&format!("addr {sender}"));
        if let Some(origin) = inserted.record().origin_id.as_deref() {
            app.quarantined.add(&format!("origin {origin}"));
        }
    }
    let location = app.notification_url(inserted.record().key);
    let mut response = (status, [(header::LOCATION, location)]).into_response();
    inbox_links(app, response.headers_mut());
    Ok((pattern, label, response))
}

/// 429 with `Retry-After`, for a rate limit of `whom`.
fn too_many(whom: &str, wait: std::time::Duration) -> Problem {
    let seconds = wait.as_secs().saturating_add(1);
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests",
        format!("{whom} has sent more than its rate allows; try again in {seconds} s"),
    )
    .with_header_value(header::RETRY_AFTER, HeaderValue::from(seconds))
}

/// Whether the quarantine may hold one more from `addr` naming `origin`: this process's
/// counts when it knows them and they are below the cap, the database's otherwise.
async fn quarantine_room(app: &App, addr: &str, origin: Option<&str>) -> Result<(), Problem> {
    let cap = app.config.quarantine_limit;
    let (addr_key, origin_key) = (
        format!("addr {addr}"),
        origin.map(|o| format!("origin {o}")),
    );
    // Room by this process's counts, if it knows both keys.
    let room = |key: &str| app.quarantined.get(key).is_some_and(|n| n < cap);
    if room(&addr_key) && origin_key.as_deref().is_none_or(room) {
        return Ok(());
    }
    let (by_addr, by_origin) = app.store.quarantined_from(addr, origin).await?;
    app.quarantined.set(&addr_key, by_addr);
    if let Some(k) = &origin_key {
        app.quarantined.set(k, by_origin);
    }
    if by_addr >= cap || by_origin >= cap {
        return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Quarantine full",
            format!(
                "this inbox holds at most {cap} notifications from an unregistered sender until an admin trusts it"
            ),
        )
        .with_header(header::RETRY_AFTER, "3600"));
    }
    Ok(())
}

/// Items on a page of `GET /inbox` when no `limit` is given.
const DEFAULT_PAGE: u64 = 100;

fn authorize_read(app: &App, headers: &HeaderMap) -> Result<(), Problem> {
    if app.config.inbox_public {
        return Ok(());
    }
    crate::auth::require_admin(app, headers)
}

/// `GET /inbox` (and `HEAD`): the listing, newest first, paged.
pub async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    page: crate::paging::Page,
    uri: axum::http::Uri,
) -> Result<Response, Problem> {
    authorize_read(&app, &headers)?;
    let format = negotiate(header_str(&headers, header::ACCEPT), &RdfFormat::ALL)
        .map_err(|e| Problem::new(StatusCode::NOT_ACCEPTABLE, "Not acceptable", e.to_string()))?;
    let (after, limit) = (page.after, page.limit_or(DEFAULT_PAGE));
    let filter = Filter {
        direction: Some(Direction::Inbound),
        attributed_only: app.publishes_attributed_only(),
        ..Filter::default()
    };
    let items = app.store.list(&filter, after, limit).await?;
    let inbox = app.inbox_url();
    let requested = match uri.query() {
        Some(q) => format!("{inbox}?{q}"),
        None => inbox.clone(),
    };
    let limit_param = if page.limit.is_some() {
        format!("&limit={limit}")
    } else {
        String::new()
    };
    let listing = Listing {
        id: requested,
        contains: items
            .items
            .iter()
            .map(|r| app.notification_url(r.key))
            .collect(),
        constrained_by: Some(app.urls.constraints()),
        first: Some(inbox.clone()),
        next: items
            .next
            .map(|n| format!("{inbox}?after={n}{limit_param}")),
        prev: None,
    };
    let body = listing.serialize(format).map_err(Problem::internal)?;
    let mut response = ([(header::CONTENT_TYPE, format.content_type())], body).into_response();
    for link in listing.link_headers() {
        if let Ok(v) = HeaderValue::from_str(&link) {
            response.headers_mut().append(header::LINK, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&coar_ldn::inbox_link_header(&inbox)) {
        response.headers_mut().append(header::LINK, v);
    }
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}

/// `GET /inbox/{key}` (and `HEAD`): one notification, as received or in another RDF syntax.
pub async fn read(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    authorize_read(&app, &headers)?;
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "no such notification in this inbox",
        )
    };
    let key: i64 = key.parse().map_err(|_| not_found())?;
    let record = app
        .store
        .get(key)
        .await?
        .filter(|r| r.direction == Direction::Inbound)
        // What no registered service vouches for is not published here either (a forger
        // would get a URL on this inbox for its "review by X"), except to the admin.
        .filter(|r| {
            r.service.is_some()
                || !app.publishes_attributed_only()
                || crate::auth::require_admin(&app, &headers).is_ok()
        })
        .ok_or_else(not_found)?;
    let format = negotiate(header_str(&headers, header::ACCEPT), &RdfFormat::ALL)
        .map_err(|e| Problem::new(StatusCode::NOT_ACCEPTABLE, "Not acceptable", e.to_string()))?;
    let stored_format = body_format(&record.media_type);
    let body = match (format, stored_format) {
        (RdfFormat::JsonLd, Some(BodyFormat::JsonLd)) => record.body.clone(),
        _ => {
            // It was read when it arrived: failing now is our bug, not the client's.
            let received = app
                .receive_body(&record.media_type, record.body.clone())
                .await
                .map_err(|p| match p.status.is_client_error() {
                    true => Problem::internal(p.detail),
                    false => p,
                })?;
            match format {
                RdfFormat::JsonLd => received.json.to_string().into_bytes(),
                other => received
                    .dataset
                    .serialize(other)
                    .map_err(Problem::internal)?
                    .into_bytes(),
            }
        }
    };
    let mut response = ([(header::CONTENT_TYPE, format.content_type())], body).into_response();
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    inbox_links(&app, response.headers_mut());
    Ok(response)
}

/// `OPTIONS /inbox`.
pub async fn options(State(app): State<Arc<App>>) -> Response {
    let mut response = (
        StatusCode::NO_CONTENT,
        [
            (header::ALLOW, "GET, HEAD, OPTIONS, POST"),
            (header::HeaderName::from_static("accept-post"), ACCEPT_POST),
        ],
    )
        .into_response();
    inbox_links(&app, response.headers_mut());
    response
}

/// `GET /constraints`: what this inbox accepts, for people and for `ldp:constrainedBy`.
pub async fn constraints(State(app): State<Arc<App>>) -> Response {
    let mut rows = String::new();
    for p in coar_model::Pattern::ALL.iter().filter(|p| !p.is_legacy()) {
        rows.push_str(&format!(
            "<li>{} (<code>{}</code>)</li>\n",
            p.title(),
            p.slug()
        ));
    }
    let policy = match app.config.trust {
        TrustPolicy::Accept => {
            "Notifications from unregistered senders are accepted and processed."
        }
        TrustPolicy::Quarantine => {
            "Notifications from unregistered senders are stored but not processed until the sender is trusted."
        }
        TrustPolicy::Reject => {
            "Only registered services may send notifications; others are refused with 403."
        }
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Inbox constraints</title></head><body>\n\
<h1>What this inbox accepts</h1>\n<p>COAR Notify 1.0.1 notifications as JSON-LD (<code>{ACCEPT_POST}</code>), at most {} bytes, \
validated against the specification; every problem is reported with a JSON pointer. Activities that are valid JSON-LD but no \
COAR Notify pattern are {}. Remote JSON-LD contexts other than ActivityStreams 2.0 and COAR Notify are refused.</p>\n\
<p>{policy}</p>\n<h2>Patterns</h2>\n<ul>\n{rows}</ul>\n</body></html>\n",
        app.config.max_body,
        if app.config.accept_unrecognised {
            "stored and listed"
        } else {
            "refused"
        },
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// `GET /`: the service description (JSON-LD with an inline context, or Turtle, N-Triples,
/// N-Quads), naming its inbox; the inbox is also in a `Link` header, so that a sender that
/// knows only this server's URL discovers it.
pub async fn service(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Problem> {
    let format = negotiate(header_str(&headers, header::ACCEPT), &RdfFormat::ALL)
        .map_err(|e| Problem::new(StatusCode::NOT_ACCEPTABLE, "Not acceptable", e.to_string()))?;
    let doc = serde_json::json!({
        "@context": {
            "as": "https://www.w3.org/ns/activitystreams#",
            "ldp": "http://www.w3.org/ns/ldp#",
            "inbox": {"@id": "ldp:inbox", "@type": "@id"},
            "constrainedBy": {"@id": "ldp:constrainedBy", "@type": "@id"},
            "name": "as:name",
            "feed": "http://www.w3.org/ns/hydra/core#template",
        },
                "@id": app.urls.service(),
        "@type": "as:Service",
        "name": "COAR Notify inbox (coar-notify-rs)",
        "inbox": app.inbox_url(),
                "constrainedBy": app.urls.constraints(),
        "feed": format!("{}{}", app.urls.feed(), crate::feed::TEMPLATE),
    });
    let body = match format {
        RdfFormat::JsonLd => doc.to_string(),
        other => app
            .receiver
            .contexts()
            .to_dataset(&doc.to_string())
            .map_err(Problem::internal)?
            .serialize(other)
            .map_err(Problem::internal)?,
    };
    let mut response = ([(header::CONTENT_TYPE, format.content_type())], body).into_response();
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    inbox_links(&app, response.headers_mut());
    Ok(response)
}
