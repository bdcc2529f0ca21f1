//! The `coar-notify` server: a thin axum adapter over the project's library crates.
//!
//! It turns HTTP requests into calls to `coar-model`, `coar-ldn` and `coar-store` and their
//! results into responses: the LDN inbox (POST, GET, HEAD, OPTIONS), trust attribution,
//! health and metrics. Cross-cutting concerns (request ids, tracing, timeouts, CORS,
//! compression) are tower layers.
//!
//! It deliberately holds no protocol or storage logic of its own: if a rule about COAR, LDN or
//! SQL appears here, it belongs in the crate below.

pub mod admin;
pub mod config;
mod inbox;
pub mod metrics;
pub mod problem;
mod trust;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use coar_ldn::{Contexts, Receiver, ReceiverConfig};
use coar_store::{Direction, Store};
use tokio::net::TcpListener;
use tower_http::{
    compression::CompressionLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

pub use config::{Config, ConfigError, TrustPolicy};

/// Everything a request handler needs.
pub struct App {
    /// The settings.
    pub config: Config,
    /// The database.
    pub store: Store,
    /// The LDN receiver, with the ActivityStreams and COAR Notify contexts registered.
    pub receiver: Receiver,
    /// Counters for `/metrics`.
    pub metrics: metrics::Metrics,
}

impl App {
    /// The inbox URL.
    pub fn inbox_url(&self) -> String {
        format!("{}/inbox", self.config.base_url)
    }

    /// A stored notification's URL.
    pub fn notification_url(&self, key: i64) -> String {
        format!("{}/inbox/{key}", self.config.base_url)
    }
}

/// The JSON-LD contexts a COAR Notify server knows: ActivityStreams (bundled in coar-ldn)
/// and COAR Notify 1.0.1 and 0.9.0 (from coar-model).
pub fn contexts() -> Contexts {
    let mut contexts = Contexts::default();
    for (iri, document) in coar_model::vocab::context_documents() {
        contexts
            .register(iri, document)
            .unwrap_or_else(|e| unreachable!("coar-model's context documents are valid: {e}"));
    }
    contexts
}

/// Opens the store (migrating it) and builds the application.
pub async fn app(config: Config) -> Result<Arc<App>, coar_store::StoreError> {
    let store = Store::open(&config.database_url).await?;
    let receiver = Receiver::new(
        contexts(),
        ReceiverConfig {
            max_bytes: config.max_body,
            compact_context: Some(serde_json::json!(coar_model::vocab::STANDARD_CONTEXT)),
            ..ReceiverConfig::default()
        },
    );
    Ok(Arc::new(App {
        config,
        store,
        receiver,
        metrics: metrics::Metrics::default(),
    }))
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
        .route("/", get(inbox::service))
        .route("/inbox/{key}", get(inbox::read))
        .route("/constraints", get(inbox::constraints))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .layer(middleware::from_fn_with_state(app.clone(), count_requests))
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn(cors))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(app)
}

async fn count_requests(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    app.metrics
        .request(&method, &route, response.status().as_u16());
    response
}

/// CORS for reading: any origin may GET, HEAD and OPTIONS, and see `Location`, `Link` and
/// `Accept-Post`. (A middleware rather than tower-http's layer, which would answer every
/// OPTIONS itself and hide the inbox's own `Allow` and `Accept-Post`.)
async fn cors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let preflight_headers = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let mut response = next.run(request).await;
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let h = response.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Location, Link, Accept-Post"),
        );
        if method == Method::OPTIONS {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            if let Some(requested) = preflight_headers {
                h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
            }
        }
    }
    response
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
        }
    }
}

async fn metrics_text(State(app): State<Arc<App>>) -> Result<Response, problem::Problem> {
    let mut queue = Vec::new();
    for direction in [Direction::Inbound, Direction::Outbound] {
        for (state, n) in app.store.queue_depth(direction).await? {
            queue.push((direction.as_str(), state.as_str(), n));
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(&queue),
    )
        .into_response())
}

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
