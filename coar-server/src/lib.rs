//! The `coar-notify` server: a thin axum adapter over the project's library crates.
//!
//! It turns HTTP requests into calls to `coar-model`, `coar-ldn` and `coar-store` and their
//! results into responses: the LDN inbox (POST, GET, HEAD, OPTIONS), trust attribution,
//! the outbox and workers, the Atom feed, the admin API and the admin dashboard (`/admin`),
//! health and metrics. Cross-cutting concerns (request ids, tracing, timeouts, CORS,
//! compression) are tower layers.
//!
//! It deliberately holds no protocol or storage logic of its own: if a rule about COAR, LDN or
//! SQL appears here, it belongs in the crate below.

mod api;
pub mod auth;
pub mod batch;
pub mod config;
pub mod dashboard;
mod feed;
pub mod handlers;
mod inbox;
pub mod limits;
pub mod metrics;
pub mod paging;
pub mod parse;
pub mod problem;
pub mod trust;
pub mod urls;
pub mod views;
pub mod worker;

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
    catch_panic::CatchPanicLayer,
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
    /// Every URL this server names.
    pub urls: urls::Urls,
    /// The database.
    pub store: Store,
    /// The LDN receiver, with the ActivityStreams and COAR Notify contexts registered.
    pub receiver: Receiver,
    /// Counters for `/metrics`.
    pub metrics: metrics::Metrics,
    /// The client deliveries go through: to peer-chosen targets, always under the address
    /// policy (unless `allow_private_targets` is set, for development).
    pub client: coar_client::Client,
    /// The client for operator-configured URLs (webhooks): the configuration file is their
    /// allow-list, so private addresses are allowed, but no redirect is followed, so it
    /// reaches only the URL written there.
    pub webhooks: coar_client::Client,
    /// The inbound processing pipeline.
    pub pipeline: worker::Pipeline,
    /// Group commit of received notifications.
    pub inserter: batch::Inserter,
    /// The admin dashboard's templates and sessions.
    pub dashboard: dashboard::Dashboard,
    /// The bounded pool that reads peers' bodies off the async runtime.
    pub parsers: parse::ParsePool,
    /// POSTs to the inbox per sender address.
    pub address_limit: Option<limits::Limiter>,
    /// Notifications per attributed service.
    pub service_limit: Option<limits::Limiter>,
    /// Quarantined notifications per unattributed origin and address.
    pub quarantined: limits::QuarantineCounts,
    /// Dashboard sign-in attempts per address: 10 a minute, so a token cannot be guessed
    /// online.
    pub sign_in_limit: limits::Limiter,
}

impl App {
    /// The inbox URL.
    pub fn inbox_url(&self) -> String {
        self.urls.inbox()
    }

    /// This server's identity in what it sends: `id` (its base URL), `inbox`, `name`.
    pub fn identity(&self) -> serde_json::Value {
        serde_json::json!({
                        "id": self.urls.service(),
            "inbox": self.inbox_url(),
            "name": self.config.name,
            "type": "Service",
        })
    }

    /// Checks a body as the inbox does ([`Receiver::check`]), on the parsing pool unless it
    /// is small JSON.
    pub async fn check_body(
        self: &Arc<Self>,
        content_type: Option<&str>,
        body: axum::body::Bytes,
    ) -> Result<coar_ldn::Checked, problem::Problem> {
        let json =
            content_type.and_then(coar_ldn::body_format) == Some(coar_ldn::BodyFormat::JsonLd);
        if json && body.len() <= parse::INLINE_JSON_BYTES {
            return Ok(self.receiver.check(content_type, &body, None)?);
        }
        let (app, content_type) = (self.clone(), content_type.map(str::to_owned));
        Ok(self
            .parsers
            .run(move || app.receiver.check(content_type.as_deref(), &body, None))
            .await??)
    }

    /// Reads a body fully, with its RDF dataset ([`Receiver::receive`]), on the parsing pool.
    pub async fn receive_body(
        self: &Arc<Self>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<coar_ldn::Received, problem::Problem> {
        let (app, content_type) = (self.clone(), content_type.to_owned());
        Ok(self
            .parsers
            .run(move || app.receiver.receive(Some(&content_type), &body, None))
            .await??)
    }

    /// Whether public listings (`GET /inbox`, `/feed`) show only notifications attributed
    /// to a registered service: unless this is an open inbox (`COAR_TRUST=accept`) or
    /// `COAR_PUBLISH_UNTRUSTED` is set, a forged "review by X" is never published.
    pub fn publishes_attributed_only(&self) -> bool {
        self.config.trust != TrustPolicy::Accept && !self.config.publish_untrusted
    }

    /// A stored notification's URL.
    pub fn notification_url(&self, key: i64) -> String {
        self.urls.notification(key)
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

/// Opens the store (migrating it) and builds the application, with the default pipeline.
pub async fn app(config: Config) -> Result<Arc<App>, coar_store::StoreError> {
    app_with(config, worker::Pipeline::default()).await
}

/// [`app`] with a pipeline of the embedding application's handlers.
pub async fn app_with(
    config: Config,
    pipeline: worker::Pipeline,
) -> Result<Arc<App>, coar_store::StoreError> {
    let mut store_config = coar_store::Config::new(config.database_url.clone());
    store_config.lease = config.lease;
    store_config.policy = coar_store::QueuePolicy {
        max_attempts: config.max_attempts,
        base_delay: config.retry_base,
        max_delay: Duration::from_secs(3600).max(config.retry_base),
    };
    let store = Store::open_with(store_config).await?;
    let client_config = coar_client::ClientConfig {
        allow_private: config.allow_private_targets,
        timeout: config.send_timeout,
        user_agent: format!(
            "coar-notify-rs/{} ({})",
            env!("CARGO_PKG_VERSION"),
            config.base_url
        ),
        max_retry_after: config.max_retry_after,
        ..coar_client::ClientConfig::default()
    };
    let webhook_config = coar_client::ClientConfig {
        allow_private: true,
        max_redirects: 0,
        ..client_config.clone()
    };
    let client_error = |e: coar_client::ClientError| coar_store::StoreError::Invalid {
        field: "client",
        message: e.to_string(),
    };
    let client = coar_client::Client::new(client_config, contexts()).map_err(client_error)?;
    let webhooks = coar_client::Client::new(webhook_config, contexts()).map_err(client_error)?;
    let receiver = Receiver::new(
        contexts(),
        ReceiverConfig {
            max_bytes: config.max_body,
            compact_context: Some(serde_json::json!(coar_model::vocab::STANDARD_CONTEXT)),
            ..ReceiverConfig::default()
        },
    );
    Ok(Arc::new(App {
        receiver,
        metrics: metrics::Metrics::default(),
        inserter: batch::Inserter::spawn(store.clone()),
        store,
        client,
        webhooks,
        pipeline,
        dashboard: dashboard::Dashboard::default(),
        parsers: parse::ParsePool::per_core(),
        address_limit: config.rate_limit.map(limits::Limiter::new),
        service_limit: config.service_rate_limit.map(limits::Limiter::new),
        quarantined: limits::QuarantineCounts::default(),
        urls: urls::Urls::new(&config.base_url),
        sign_in_limit: limits::Limiter::new(limits::Rate {
            per: 10,
            period: Duration::from_secs(60),
        }),
        config,
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
        .route("/", get(inbox::service))
        .route("/inbox/{key}", get(inbox::read))
        .route("/constraints", get(inbox::constraints))
        .route("/feed", get(feed::feed))
        .route("/healthz", get(healthz))
        .route("/api/openapi.json", get(api::openapi))
        .merge(api_routes())
        .route("/metrics", get(metrics_text))
        .merge(dashboard::routes())
        .layer(CatchPanicLayer::custom(panicked))
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

/// A handler panicked (a bug, never the client's fault): log it and answer 500 with problem
/// details rather than dropping the connection. Nothing was stored, as storing comes last.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = worker::panic_message(payload.as_ref());
    tracing::error!(panic = %message, "a request handler panicked");
    problem::Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal error",
        "the server failed on this request; the failure is logged",
    )
    .into_response()
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
    let missing = app.metrics.workers.missing();
    if missing > 0 {
        tracing::error!(missing, "health check failed: worker loops are not running");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{missing} worker loop(s) not running\n"),
        )
            .into_response();
    }
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

/// Serves until `shutdown` completes, with `config.workers` background workers; then
/// finishes in-flight requests and lets the workers finish the notification in hand (the
/// rest of their claims go back to the queue).
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = worker::spawn(app.clone(), app.config.workers, stopped);
    let result = axum::serve(
        listener,
        router(app.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    let _ = stop.send(true);
    while workers.join_next().await.is_some() {}
    app.metrics.workers.retire(app.config.workers);
    result
}

/// Runs workers only (no HTTP) until `shutdown` completes: `coar-notify worker`, for
/// deployments that scale web and workers separately on PostgreSQL.
pub async fn work(app: Arc<App>, count: usize, shutdown: impl Future<Output = ()>) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = worker::spawn(app.clone(), count.max(1), stopped);
    shutdown.await;
    let _ = stop.send(true);
    while workers.join_next().await.is_some() {}
    app.metrics.workers.retire(count.max(1));
}
