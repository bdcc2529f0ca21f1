//! The LDN inbox: POST to receive, GET to list and to read, OPTIONS to describe.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use coar_ldn::{ACCEPT_POST, BodyFormat, Listing, RdfFormat, body_format, negotiate};
use coar_store::{Direction, Filter};

use crate::{
    Peer,
    config::TrustPolicy,
    web::dashboard::public,
    web::{App, auth::Reader, problem::ProblemDetails},
};

/// The Link headers every inbox response carries: the inbox and its constraints.
pub(crate) fn inbox_links(app: &App, headers: &mut HeaderMap) {
    for value in [
        coar_ldn::inbox_link_header(&app.inbox_url()),
        coar_ldn::link::constrained_by_link_header(&app.urls().constraints()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.append(header::LINK, v);
        }
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `POST /inbox`: [`Core::screen`](crate::Core::screen) before the body is read, then
/// [`Core::admit_screened`](crate::Core::admit_screened); 201 with `Location` once stored.
pub async fn post(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ProblemDetails> {
    let config = app.config();
    // The URI the sender addressed: this server's public base URL (a proxy in front may
    // have rewritten the request's host and scheme), then the path it asked for (`/inbox`
    // or `/inbox/`) and the query.
    let target_uri = app
        .urls()
        .public_uri(uri.path_and_query().map_or("/inbox", |p| p.as_str()));
    let peer = Peer {
        addr: app.sender_addr(peer.ip(), &headers),
        bearer_token: header_str(&headers, header::AUTHORIZATION)
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::to_owned),
        signed: crate::signatures::SignedRequest::of("POST", target_uri, &headers),
    };
    let declared =
        header_str(&headers, header::CONTENT_LENGTH).and_then(|l| l.parse::<usize>().ok());
    let screened = match app.screen(header_str(&headers, header::CONTENT_TYPE), peer, declared) {
        Ok(screened) => screened,
        Err(rejection) => {
            // A sender being rate limited gets no more of our reading time.
            if rejection.status() != StatusCode::TOO_MANY_REQUESTS {
                drain(body, declared).await;
            }
            return Err(rejection.into());
        }
    };
    let bytes = match read_within(body, config.max_body).await {
        Ok(bytes) => bytes,
        Err(BodyRead::TooLarge) => return Err(app.refused(None, app.too_large()).into()),
        Err(BodyRead::Broken) => {
            app.metrics().received("none", "malformed");
            return Err(ProblemDetails::new(
                StatusCode::BAD_REQUEST,
                "Unreadable body",
                "the request body could not be read to its end (broken framing or a stalled sender)",
            ));
        }
    };
    let receipt = app.core().admit_screened(screened, bytes).await?;
    let mut response =
        (StatusCode::CREATED, [(header::LOCATION, receipt.location)]).into_response();
    inbox_links(&app, response.headers_mut());
    Ok(response)
}

/// How much of a refused body is read and thrown away before the answer, and for how long.
/// A server that answers before reading the body and then closes the connection makes the
/// kernel reset it, and the reset can destroy the answer before the sender (or a reverse
/// proxy, which then answers 502) reads it: nginx's lingering close, for the inbox.
const DRAIN_BYTES: usize = 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and discards what is left of a body that will be refused, within [`DRAIN_BYTES`]
/// and [`DRAIN_TIME`]; one declared larger is not read at all.
async fn drain(body: Body, declared: Option<usize>) {
    if declared.is_none_or(|l| l <= DRAIN_BYTES) {
        discard(&mut body.into_data_stream(), DRAIN_BYTES).await;
    }
}

/// Reads and throws away up to `budget` more bytes of `stream`, for at most [`DRAIN_TIME`].
async fn discard(stream: &mut axum::body::BodyDataStream, budget: usize) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut read = 0usize;
        while let Some(Ok(chunk)) = futures_util::StreamExt::next(stream).await {
            read += chunk.len();
            if read > budget {
                break;
            }
        }
    })
    .await;
}

/// Why a body was not read whole.
enum BodyRead {
    /// It is longer than the limit (the rest was drained, so that the 413 reaches the sender).
    TooLarge,
    /// It broke off: framing the HTTP layer refused, or a read that failed or timed out.
    Broken,
}

/// The whole body, within `limit` bytes.
async fn read_within(body: Body, limit: usize) -> Result<Bytes, BodyRead> {
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk = chunk.map_err(|_| BodyRead::Broken)?;
        if buf.len() + chunk.len() > limit {
            discard(&mut stream, DRAIN_BYTES).await;
            return Err(BodyRead::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Items on a page of `GET /inbox` when no `limit` is given.
const DEFAULT_PAGE: u64 = 100;

/// `GET /inbox` (and `HEAD`): the listing, newest first, paged.
pub async fn list(
    State(app): State<Arc<App>>,
    _reader: Reader,
    headers: HeaderMap,
    page: crate::web::paging::Cursor,
    uri: axum::http::Uri,
) -> Result<Response, ProblemDetails> {
    let html = public::prefers_html(header_str(&headers, header::ACCEPT));
    let format = match html {
        true => RdfFormat::JsonLd,
        false => negotiate(header_str(&headers, header::ACCEPT), &RdfFormat::ALL).map_err(|e| {
            ProblemDetails::new(StatusCode::NOT_ACCEPTABLE, "Not acceptable", e.to_string())
        })?,
    };
    let (after, limit) = (page.after, page.limit_or(DEFAULT_PAGE));
    let filter = Filter {
        direction: Some(Direction::Inbound),
        attributed_only: app.publishes_attributed_only(),
        ..Filter::default()
    };
    let items = app.store().list(&filter, after, limit).await?;
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
        constrained_by: Some(app.urls().constraints()),
        first: Some(inbox.clone()),
        next: items
            .next
            .map(|n| format!("{inbox}?after={n}{limit_param}")),
        prev: None,
    };
    if html {
        let page = public::inbox(&app, &items.items, listing.next.clone(), after.is_some());
        return Ok(varied(&app, page));
    }
    let body = listing
        .serialize(format)
        .map_err(ProblemDetails::internal)?;
    let mut response = (
        [(header::CONTENT_TYPE, content_type(format, &headers))],
        body,
    )
        .into_response();
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
    reader: Reader,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ProblemDetails> {
    let not_found = || {
        ProblemDetails::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "no such notification in this inbox",
        )
    };
    let key: i64 = key.parse().map_err(|_| not_found())?;
    let record = app
        .store()
        .get(key)
        .await?
        .filter(|r| r.direction == Direction::Inbound)
        // What no registered service vouches for is not published here either (a forger
        // would get a URL on this inbox for its "review by X"), except to the admin.
        .filter(|r| r.service.is_some() || !app.publishes_attributed_only() || reader.admin)
        .ok_or_else(not_found)?;
    if public::prefers_html(header_str(&headers, header::ACCEPT)) {
        return Ok(varied(&app, public::notification(&app, &record)));
    }
    let format = negotiate(header_str(&headers, header::ACCEPT), &RdfFormat::ALL).map_err(|e| {
        ProblemDetails::new(StatusCode::NOT_ACCEPTABLE, "Not acceptable", e.to_string())
    })?;
    let stored_format = body_format(&record.media_type);
    let body = match (format, stored_format) {
        (RdfFormat::JsonLd, Some(BodyFormat::JsonLd)) => record.body.clone(),
        _ => {
            // It was read when it arrived: failing now is our bug, not the client's.
            let received = app
                .core()
                .receive_body(
                    &record.media_type,
                    record.body.clone(),
                    // Relative IRIs (`"@id": ""`) name the notification's own URL.
                    Some(app.urls().notification(record.key)),
                )
                .await
                .map_err(ProblemDetails::from)
                .map_err(|p| match p.status.is_client_error() {
                    true => ProblemDetails::internal(p.detail),
                    false => p,
                })?;
            match format {
                RdfFormat::JsonLd => received.json.to_string().into_bytes(),
                other => received
                    .dataset
                    .serialize(other)
                    .map_err(ProblemDetails::internal)?
                    .into_bytes(),
            }
        }
    };
    Ok(negotiated(&app, format, &headers, body))
}

/// The `Content-Type` of a negotiated document: JSON-LD goes as `application/json` to a
/// client that asked for that rather than `application/ld+json`.
fn content_type(format: RdfFormat, headers: &HeaderMap) -> &'static str {
    match format {
        RdfFormat::JsonLd => coar_ldn::json_ld_content_type(header_str(headers, header::ACCEPT)),
        other => other.content_type(),
    }
}

/// A negotiated RDF document: its media type, `Vary: Accept` and the inbox's links.
fn negotiated(
    app: &App,
    format: RdfFormat,
    headers: &HeaderMap,
    body: impl Into<Body>,
) -> Response {
    let response = (
        [(header::CONTENT_TYPE, content_type(format, headers))],
        body.into(),
    )
        .into_response();
    varied(app, response)
}

/// A representation chosen by `Accept` (an RDF syntax or a page): `Vary: Accept` and the
/// inbox's links.
fn varied(app: &App, mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    inbox_links(app, response.headers_mut());
    response
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
    let policy = match app.config().trust {
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
        app.config().max_body,
        if app.config().accept_unrecognised {
            "stored and listed"
        } else {
            "refused"
        },
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// `GET /keys`: the JWK Set of the keys this server signs what it sends with (HTTP Message
/// Signatures): the key in use, and those retired within the grace period. Named by
/// `jwks_uri` in the service description; a peer registers it as this server's key set.
pub async fn keys(State(app): State<Arc<App>>) -> Result<Response, ProblemDetails> {
    let keys = app.core().published_keys().await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        coar_ldn::signature::jwk_set(&keys).to_string(),
    )
        .into_response())
}

/// `GET /`: the service description (JSON-LD with an inline context, or Turtle, N-Triples,
/// N-Quads), naming its inbox; the inbox is also in a `Link` header, so that a sender that
/// knows only this server's URL discovers it.
pub async fn description(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ProblemDetails> {
    let format = negotiate(header_str(&headers, header::ACCEPT), &RdfFormat::ALL).map_err(|e| {
        ProblemDetails::new(StatusCode::NOT_ACCEPTABLE, "Not acceptable", e.to_string())
    })?;
    let doc = serde_json::json!({
        "@context": {
            "as": "https://www.w3.org/ns/activitystreams#",
            "ldp": "http://www.w3.org/ns/ldp#",
            "inbox": {"@id": "ldp:inbox", "@type": "@id"},
            "constrainedBy": {"@id": "ldp:constrainedBy", "@type": "@id"},
            "name": "as:name",
            "feed": "http://www.w3.org/ns/hydra/core#template",
            // RFC 8414's name for the URL of a JWK Set (IANA OAuth metadata registry).
            "jwks_uri": {"@id": "https://www.iana.org/assignments/oauth-parameters#jwks_uri", "@type": "@id"},
        },
                "@id": app.urls().service(),
        "@type": "as:Service",
        "name": "COAR Notify inbox (coar-notify-rs)",
        "inbox": app.inbox_url(),
                "constrainedBy": app.urls().constraints(),
        "feed": format!("{}{}", app.urls().feed(), crate::web::feed::TEMPLATE),
        "jwks_uri": app.urls().keys(),
    });
    let body = match format {
        RdfFormat::JsonLd => doc.to_string(),
        other => app
            .receiver()
            .contexts()
            .to_dataset(&doc.to_string())
            .map_err(ProblemDetails::internal)?
            .serialize(other)
            .map_err(ProblemDetails::internal)?,
    };
    Ok(negotiated(&app, format, &headers, body))
}
