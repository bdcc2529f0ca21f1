//! The thin axum adapter (feature `http`): routes and tower layers over the engine.
//!
//! Each handler turns a request into a call to [`Core`] (admission, the store's queries,
//! the outbox) and the result into a response; errors become RFC 9457 problems in
//! [`problem`]. Cross-cutting concerns (request ids, tracing, timeouts, CORS, compression)
//! are tower layers. Nothing here decides a COAR, LDN, trust or storage rule.
//!
//! - [`inbox`]: the LDN inbox (POST, GET, HEAD, OPTIONS), `/` and `/constraints`;
//! - [`feed`]: the Atom feed;
//! - [`api`]: the admin API; [`dashboard`]: the admin dashboard at `/admin`;
//! - [`auth`]: the admin token as an extractor; [`paging`]: paging and date ranges.

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod feed;
pub mod inbox;
pub mod openapi;
pub mod paging;
pub mod problem;

use std::{net::SocketAddr, ops::Deref, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use coar_store::Direction;
use tokio::net::TcpListener;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{Config, Core, limits, pipeline::Pipeline, worker};

/// The state of the HTTP adapter: the engine, and what only HTTP needs (the dashboard's
/// templates and sessions, the sign-in budget). Derefs to [`Core`].
pub struct App {
    core: Arc<Core>,
    /// The admin dashboard's templates and sessions.
    pub(crate) dashboard: dashboard::Dashboard,
    /// Sign-in attempts (dashboard and admin API) per address: 10 a minute, so a token
    /// cannot be guessed online.
    pub(crate) sign_in_limit: limits::Limiter,
}

impl App {
    /// The adapter over `core`.
    pub fn new(core: Arc<Core>) -> App {
        App {
            core,
            dashboard: dashboard::Dashboard::default(),
            sign_in_limit: limits::Limiter::new(limits::Rate {
                per: 10,
                period: Duration::from_secs(60),
            }),
        }
    }

    /// The address a request with these headers comes from, its connection being from
    /// `peer`: through the trusted proxies, as [`trust::client_addr`](crate::trust::client_addr)
    /// reads it with this server's settings.
    pub(crate) fn sender_addr(
        &self,
        peer: std::net::IpAddr,
        headers: &axum::http::HeaderMap,
    ) -> std::net::IpAddr {
        let config = self.config();
        crate::trust::client_addr(
            peer,
            headers,
            &config.trusted_proxies,
            config.forwarded_header,
        )
    }

    /// The engine, to share with workers or another adapter.
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }
}

impl Deref for App {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

/// Opens the store (migrating it) and builds the application, with the default pipeline.
pub async fn app(config: Config) -> Result<Arc<App>, crate::OpenError> {
    app_with(config, Pipeline::default()).await
}

/// [`app`] with a pipeline of the embedding application's handlers.
pub async fn app_with(config: Config, pipeline: Pipeline) -> Result<Arc<App>, crate::OpenError> {
    let core = Core::open(config, pipeline).await?;
    Ok(Arc::new(App::new(Arc::new(core))))
}

/// A tower layer for applications that embed these crates (a repository's item pages, say):
/// it adds `Link: <inbox>; rel="http://www.w3.org/ns/ldp#inbox"` to every response, so
/// that LDN senders discover the inbox from the resource. Wrap the routes of the resources
/// that the inbox serves.
pub fn inbox_link_layer(
    inbox_url: &str,
) -> Result<SetResponseHeaderLayer<HeaderValue>, header::InvalidHeaderValue> {
    let value = HeaderValue::from_str(&coar_ldn::inbox_link_header(inbox_url))?;
    Ok(SetResponseHeaderLayer::appending(header::LINK, value))
}

/// The admin API: each handler takes an [`auth::AdminToken`], checked before any body is
/// read.
fn api_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/outbox", axum::routing::post(api::outbox))
        .route("/api/notifications", get(api::list))
        .route("/api/resources", get(api::resource))
        .route("/api/stats", get(api::stats))
        .route("/api/services", get(api::services).post(api::add_service))
        .route(
            "/api/services/{key}",
            axum::routing::patch(api::update_service).delete(api::remove_service),
        )
        .route("/api/notifications/{key}", get(api::notification))
        .route(
            "/api/notifications/{key}/replay",
            axum::routing::post(api::replay),
        )
}

/// The routes and layers.
pub fn router(app: Arc<App>) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route(
            "/inbox",
            get(inbox::list).post(inbox::post).options(inbox::options),
        )
        .route(
            "/inbox/",
            get(inbox::list).post(inbox::post).options(inbox::options),
        )
        .route("/", get(inbox::description))
        .route("/inbox/{key}", get(inbox::read))
        .route("/constraints", get(inbox::constraints))
        .route("/keys", get(inbox::keys))
        .route("/feed", get(feed::feed))
        .route("/healthz", get(healthz))
        .route("/api/openapi.json", get(api::openapi))
        .merge(api_routes())
        .route("/metrics", get(metrics_text))
        .merge(dashboard::routes())
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn_with_state(app.clone(), count_requests))
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(app.clone(), cors))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(middleware::from_fn_with_state(app.clone(), access_log))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(app)
}

/// A handler panicked (a bug, never the client's fault): log it and answer 500 with problem
/// details rather than dropping the connection. Nothing was stored, as storing comes last.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = worker::panic_message(payload.as_ref());
    tracing::error!(panic = %message, "a request handler panicked");
    problem::ProblemDetails::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal error",
        "the server failed on this request; the failure is logged",
    )
    .into_response()
}

/// The route a request matched (its pattern, such as `/inbox/{key}`), or `unmatched`.
fn route(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned())
}

/// The access log: one line per request at INFO (target `coar_server::access`), with
/// method, route (the pattern matched, never the raw path with its ids and query), status,
/// latency, the request id (`X-Request-Id`, the sender's or ours) and the sender's address
/// (through the trusted proxies, as the inbox reads it). Structured fields in JSON mode.
/// `RUST_LOG=info,coar_server::access=off` silences it.
async fn access_log(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = route(&request);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let remote = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| app.sender_addr(info.0.ip(), request.headers()).to_string())
        .unwrap_or_default();
    let response = next.run(request).await;
    tracing::info!(
        target: "coar_server::access",
        method = %method,
        route,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id,
        remote,
        "{method} {route} {}",
        response.status().as_u16()
    );
    response
}

async fn count_requests(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    // A label per method the server knows: any token is a method to hyper, and a label
    // per peer-chosen name would grow without bound.
    let method = match request.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let route = route(&request);
    let response = next.run(request).await;
    app.metrics().request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// CORS. Reading is open: any origin may GET, HEAD and OPTIONS, and see `Location`, `Link`
/// and `Accept-Post`. Writing is not: only pages of the configured origins
/// ([`Config::cors_allows_post`](crate::Config::cors_allows_post)) may POST, to the inbox
/// alone, after a preflight that names POST for them; never to the admin API. No credentials
/// (cookies) are ever allowed cross-origin; a sender proves itself as it would anywhere
/// (a token, its address). A middleware rather than tower-http's layer, which would answer
/// every OPTIONS itself and hide the inbox's own `Allow` and `Accept-Post`.
async fn cors(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let preflight_headers = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let inbox = matches!(request.uri().path(), "/inbox" | "/inbox/");
    // The origin, when its pages may POST here.
    let poster = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| inbox && app.config().cors_allows_post(o))
        .and_then(|o| HeaderValue::from_str(o).ok());
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    if inbox {
        // Whether CORS headers are sent depends on the Origin: caches must know.
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    let reading = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let granted_post = method == Method::POST && poster.is_some();
    if !(reading || granted_post) {
        return response;
    }
    let allow_origin = match &poster {
        Some(origin) => origin.clone(),
        None => HeaderValue::from_static("*"),
    };
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Link, Accept-Post"),
    );
    if method == Method::OPTIONS {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(match poster {
                Some(_) => "GET, HEAD, OPTIONS, POST",
                None => "GET, HEAD, OPTIONS",
            }),
        );
        if let Some(requested) = preflight_headers {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
        }
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let missing = app.metrics().workers.missing();
    if missing > 0 {
        tracing::error!(missing, "health check failed: worker loops are not running");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{missing} worker loop(s) not running\n"),
        )
            .into_response();
    }
    match app.store().ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
        }
    }
}

async fn metrics_text(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, problem::ProblemDetails> {
    auth::require_metrics(&app, &headers)?;
    let mut queue = Vec::new();
    let now = chrono::Utc::now();
    for direction in [Direction::Inbound, Direction::Outbound] {
        for (state, count, since) in app.store().queue_ages(direction).await? {
            queue.push(crate::metrics::QueueState {
                direction: direction.as_str(),
                state: state.as_str(),
                count,
                oldest: (now - since).to_std().unwrap_or_default(),
            });
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics().render(&queue),
    )
        .into_response())
}

/// Serves until `shutdown` completes, with `config.workers` background workers; then
/// finishes in-flight requests and lets the workers finish the notification in hand (the
/// rest of their claims go back to the queue).
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let workers = worker::Workers::start(app.core().clone(), app.config().workers);
    let result = axum::serve(
        listener,
        router(app.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    workers.stop().await;
    result
}
