//! A minimal generic LDN inbox for any ActivityStreams activity, kept in memory.
//!
//! ```sh
//! cargo run -p coar-ldn --example generic_inbox -- 127.0.0.1:8090
//! curl -i -X POST -H 'Content-Type: application/ld+json' \
//!   -d '{"@context":"https://www.w3.org/ns/activitystreams","type":"Like","actor":"https://a.example/me","object":"https://b.example/post"}' \
//!   http://127.0.0.1:8090/inbox
//! curl -H 'Accept: text/turtle' http://127.0.0.1:8090/inbox
//! ```
//!
//! POST answers 201 with `Location`; GET lists with `ldp:contains`; each notification is
//! served as JSON-LD, Turtle, N-Triples or N-Quads by content negotiation; OPTIONS gives
//! `Allow` and `Accept-Post`. axum is used here only, as a dev-dependency.

use std::sync::{Arc, RwLock};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use coar_ldn::{
    ACCEPT_POST, Contexts, Listing, RdfFormat, Received, Receiver, ReceiverConfig, negotiate,
};

/// The inbox: its public URL and what it received.
pub struct Inbox {
    base: String,
    receiver: Receiver,
    items: RwLock<Vec<Received>>,
}

/// The example's routes, for a server reachable at `base` (e.g. `http://127.0.0.1:8090`).
pub fn app(base: &str) -> Router {
    let inbox = Arc::new(Inbox {
        base: base.trim_end_matches('/').to_owned(),
        receiver: Receiver::new(Contexts::default(), ReceiverConfig::default()),
        items: RwLock::new(Vec::new()),
    });
    Router::new()
        .route("/inbox", get(list).post(receive).options(options))
        .route("/inbox/{n}", get(one))
        .with_state(inbox)
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = serde_json::json!({"type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail});
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

async fn receive(State(inbox): State<Arc<Inbox>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let n = inbox.items.read().unwrap_or_else(|p| p.into_inner()).len();
    let location = format!("{}/inbox/{n}", inbox.base);
    match inbox.receiver.receive(content_type, &body, Some(&location)) {
        Ok(received) => {
            let mut items = inbox.items.write().unwrap_or_else(|p| p.into_inner());
            let location = format!("{}/inbox/{}", inbox.base, items.len());
            items.push(received);
            (StatusCode::CREATED, [(header::LOCATION, location)]).into_response()
        }
        Err(err) => {
            let mut response = problem(err.status(), err.title(), &err.to_string());
            if err.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                response
                    .headers_mut()
                    .insert("accept-post", HeaderValue::from_static(ACCEPT_POST));
            }
            response
        }
    }
}

async fn list(State(inbox): State<Arc<Inbox>>, headers: HeaderMap) -> Response {
    let Ok(format) = negotiate(accept(&headers), &RdfFormat::ALL) else {
        return problem(
            StatusCode::NOT_ACCEPTABLE,
            "Not acceptable",
            "JSON-LD, Turtle, N-Triples or N-Quads",
        );
    };
    let count = inbox.items.read().unwrap_or_else(|p| p.into_inner()).len();
    let listing = Listing {
        id: format!("{}/inbox", inbox.base),
        contains: (0..count)
            .map(|n| format!("{}/inbox/{n}", inbox.base))
            .collect(),
        ..Listing::default()
    };
    match listing.serialize(format) {
        Ok(body) => {
            let mut response =
                ([(header::CONTENT_TYPE, format.content_type())], body).into_response();
            for link in listing.link_headers() {
                if let Ok(v) = HeaderValue::from_str(&link) {
                    response.headers_mut().append(header::LINK, v);
                }
            }
            response
        }
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Serialization failed",
            &e.to_string(),
        ),
    }
}

async fn one(
    State(inbox): State<Arc<Inbox>>,
    Path(n): Path<usize>,
    headers: HeaderMap,
) -> Response {
    let Ok(format) = negotiate(accept(&headers), &RdfFormat::ALL) else {
        return problem(
            StatusCode::NOT_ACCEPTABLE,
            "Not acceptable",
            "JSON-LD, Turtle, N-Triples or N-Quads",
        );
    };
    let items = inbox.items.read().unwrap_or_else(|p| p.into_inner());
    let Some(item) = items.get(n) else {
        return problem(StatusCode::NOT_FOUND, "Not found", "no such notification");
    };
    let body = match (format, item.format) {
        // JSON-LD as received, byte for byte.
        (RdfFormat::JsonLd, coar_ldn::BodyFormat::JsonLd) => {
            Ok(String::from_utf8_lossy(&item.original).into_owned())
        }
        (RdfFormat::JsonLd, _) => Ok(item.json.to_string()),
        (other, _) => item.dataset.serialize(other),
    };
    match body {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Serialization failed",
            &e.to_string(),
        ),
    }
}

async fn options() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ALLOW, "GET, HEAD, OPTIONS, POST"),
            (HeaderName::from_static("accept-post"), ACCEPT_POST),
        ],
    )
        .into_response()
}

use axum::http::HeaderName;

#[allow(dead_code)] // `main` is unused when the test suite includes this file as a module.
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("generic LDN inbox at {base}/inbox");
    axum::serve(listener, app(&base)).await
}
