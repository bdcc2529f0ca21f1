//! The admin dashboard at `/admin`: server-rendered HTML for repository managers.
//!
//! Sign-in takes the admin token once and gives an HttpOnly, `SameSite=Strict` session
//! cookie; every form carries a CSRF token derived from the session. Pages are rendered with
//! minijinja templates compiled into the binary (`templates/`), with HTML autoescaping: what a
//! peer sent is always text. It works without JavaScript.
//!
//! Sessions are stateless (an HMAC over the session id and expiry, keyed by the admin
//! token), so that every replica on one database accepts them and changing the admin token
//! ends them all. Signing out revokes the session in the process that served it and drops the
//! cookie.

mod chart;
mod compose;
mod pages;
pub(crate) mod public;
mod services;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use crate::{
    secrets::{constant_time_eq, hmac_sha256_hex},
    web::{App, problem::ProblemDetails},
};

/// How long a session lasts.
const SESSION_SECONDS: i64 = 8 * 3600;
const SESSION_COOKIE: &str = "coar_admin";
const LOGIN_COOKIE: &str = "coar_login_csrf";

/// The dashboard's templates and revoked sessions.
pub struct Dashboard {
    templates: minijinja::Environment<'static>,
    revoked: Mutex<HashMap<String, i64>>,
}

impl Default for Dashboard {
    fn default() -> Self {
        let mut templates = minijinja::Environment::new();
        for (name, source) in [
            ("base.html", include_str!("../../../templates/base.html")),
            ("login.html", include_str!("../../../templates/login.html")),
            (
                "overview.html",
                include_str!("../../../templates/overview.html"),
            ),
            (
                "messages.html",
                include_str!("../../../templates/messages.html"),
            ),
            (
                "message.html",
                include_str!("../../../templates/message.html"),
            ),
            (
                "services.html",
                include_str!("../../../templates/services.html"),
            ),
            (
                "service.html",
                include_str!("../../../templates/service.html"),
            ),
            ("token.html", include_str!("../../../templates/token.html")),
            ("trust.html", include_str!("../../../templates/trust.html")),
            (
                "compose.html",
                include_str!("../../../templates/compose.html"),
            ),
            ("inbox.html", include_str!("../../../templates/inbox.html")),
            (
                "notification.html",
                include_str!("../../../templates/notification.html"),
            ),
            (
                "resources.html",
                include_str!("../../../templates/resources.html"),
            ),
            ("error.html", include_str!("../../../templates/error.html")),
        ] {
            templates
                .add_template(name, source)
                .unwrap_or_else(|e| unreachable!("the bundled template {name} is valid: {e}"));
        }
        Dashboard {
            templates,
            revoked: Mutex::new(HashMap::new()),
        }
    }
}

/// The dashboard's routes, under `/admin`.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/admin", get(pages::overview))
        .route("/admin/", get(pages::overview))
        .route("/admin/login", get(login_form).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/static/admin.css", get(stylesheet))
        .route("/admin/messages", get(pages::messages))
        .route("/admin/messages/{key}", get(pages::message))
        .route("/admin/messages/{key}/replay", post(pages::replay))
        .route("/admin/messages/{key}/release", post(pages::release))
        .route("/admin/resources", get(pages::resources))
        .route(
            "/admin/services",
            get(services::list).post(services::create),
        )
        .route("/admin/services/new", get(services::new_form))
        .route("/admin/services/trust", post(services::trust))
        .route(
            "/admin/services/{key}",
            get(services::edit_form).post(services::update),
        )
        .route("/admin/services/{key}/enabled", post(services::set_enabled))
        .route("/admin/services/{key}/delete", post(services::delete))
        .route("/admin/services/{key}/token", post(services::rotate_token))
        .route("/admin/compose", get(compose::form).post(compose::submit))
}

/// The dashboard's URL path (`/admin`, below the base URL's own path).
pub(crate) fn root(app: &App) -> String {
    app.urls().admin_path()
}

/// A signed-in administrator; the rejection sends anyone else to the sign-in page.
pub(crate) struct Admin {
    session: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
}

impl Admin {
    /// The refusal of a form without this session's CSRF token; `None` when it has it.
    pub(crate) fn refusal(&self, app: &App, form: &Form) -> Option<Response> {
        match form.get("_csrf") {
            Some(t) if constant_time_eq(t.as_bytes(), self.csrf.as_bytes()) => None,
            _ => Some(error_page(
                app,
                Some(self),
                StatusCode::FORBIDDEN,
                "Form refused",
                "The form did not carry this session's CSRF token. Reload the page and try again.",
            )),
        }
    }
}

fn session_key(app: &App) -> Vec<u8> {
    let token = app.config().admin_token.as_deref().unwrap_or_default();
    hmac_sha256_hex(token.as_bytes(), b"coar-notify dashboard session key").into_bytes()
}

fn session_signature(app: &App, id: &str, expires: i64) -> String {
    hmac_sha256_hex(&session_key(app), format!("{id}.{expires}").as_bytes())
}

fn csrf_of(app: &App, session: &str) -> String {
    hmac_sha256_hex(&session_key(app), format!("csrf.{session}").as_bytes())[..40].to_owned()
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session the request's cookie proves, if any.
fn session(app: &App, headers: &HeaderMap) -> Option<Admin> {
    app.config().admin_token.as_ref()?;
    let value = cookie(headers, SESSION_COOKIE)?;
    let mut parts = value.split('.');
    let (id, expires, signature) = (parts.next()?, parts.next()?, parts.next()?);
    let expires_at: i64 = expires.parse().ok()?;
    let expected = session_signature(app, id, expires_at);
    if !constant_time_eq(signature.as_bytes(), expected.as_bytes())
        || expires_at <= chrono::Utc::now().timestamp()
    {
        return None;
    }
    let revoked = app
        .dashboard
        .revoked
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if revoked.contains_key(id) {
        return None;
    }
    Some(Admin {
        session: id.to_owned(),
        csrf: csrf_of(app, id),
    })
}

fn cookie_header(app: &App, name: &str, value: &str, max_age: i64) -> String {
    let secure = if app.config().base_url.starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{name}={value}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
        root(app)
    )
}

impl FromRequestParts<Arc<App>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        if app.config().admin_token.is_none() {
            return Err(disabled(app));
        }
        if let Some(admin) = session(app, &parts.headers) {
            return Ok(admin);
        }
        let next = parts
            .uri
            .path_and_query()
            .map_or_else(|| root(app), |p| p.as_str().to_owned());
        let next = if parts.method == axum::http::Method::GET {
            next
        } else {
            root(app)
        };
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next)
            .finish();
        Err(redirect(&format!("{}/login?{query}", root(app))))
    }
}

/// A signed-in administrator's form: the extractor for every state-changing dashboard
/// route. It refuses (403, nothing changed) a form without this session's CSRF token, and
/// sends a visitor without a session to sign in, as [`Admin`] does. It reads the body, so it
/// comes last among a handler's arguments.
pub(crate) struct CheckedForm {
    /// Who sent it.
    pub admin: Admin,
    /// Its fields.
    pub form: Form,
}

impl axum::extract::FromRequest<Arc<App>> for CheckedForm {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        app: &Arc<App>,
    ) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let admin = Admin::from_request_parts(&mut parts, app).await?;
        let bytes =
            axum::body::Bytes::from_request(axum::extract::Request::from_parts(parts, body), app)
                .await
                .map_err(IntoResponse::into_response)?;
        let form = Form::parse(&bytes);
        match admin.refusal(app, &form) {
            Some(refused) => Err(refused),
            None => Ok(CheckedForm { admin, form }),
        }
    }
}

fn disabled(app: &App) -> Response {
    error_page(
        app,
        None,
        StatusCode::NOT_FOUND,
        "Dashboard disabled",
        "No admin token is configured. Set COAR_ADMIN_TOKEN (at least 16 characters) and restart the server.",
    )
}

/// 303 See Other to `location` (a path on this server).
pub(crate) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// A form body: every `name=value` pair in order, so that repeated names (checkboxes) keep
/// all their values.
#[derive(Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Form {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }

    /// The first value of `name`, trimmed; `None` when empty.
    pub(crate) fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Every value of `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Renders `template` with `context` plus what every page needs (`root`, `csrf`, the
/// server's name); the security headers every dashboard page carries.
pub(crate) fn render(
    app: &App,
    admin: Option<&Admin>,
    status: StatusCode,
    template: &str,
    mut context: Value,
) -> Response {
    if let Some(map) = context.as_object_mut() {
        map.insert("root".into(), json!(root(app)));
        map.insert("server_name".into(), json!(app.config().name));
        map.insert("base_url".into(), json!(app.config().base_url));
        map.insert("signed_in".into(), json!(admin.is_some()));
        if let Some(admin) = admin {
            map.insert("csrf".into(), json!(admin.csrf));
        }
    }
    let html = app
        .dashboard
        .templates
        .get_template(template)
        .and_then(|t| t.render(minijinja::Value::from_serialize(&context)));
    let mut response = match html {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, template, "dashboard template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the dashboard page failed to render; this is a bug",
            )
                .into_response()
        }
    };
    let h = response.headers_mut();
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A page that says what went wrong.
pub(crate) fn error_page(
    app: &App,
    admin: Option<&Admin>,
    status: StatusCode,
    title: &str,
    detail: &str,
) -> Response {
    render(
        app,
        admin,
        status,
        "error.html",
        json!({"title": title, "detail": detail, "status": status.as_u16()}),
    )
}

/// A store or other server error as a page (the same statuses the API gives).
pub(crate) fn problem_page(app: &App, admin: &Admin, problem: ProblemDetails) -> Response {
    error_page(
        app,
        Some(admin),
        problem.status,
        &problem.title,
        &problem.detail,
    )
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../static/admin.css"),
    )
        .into_response()
}

/// `GET /admin/login`: the sign-in form, with a CSRF token in a cookie and in the form.
async fn login_form(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    if app.config().admin_token.is_none() {
        return disabled(&app);
    }
    if session(&app, &headers).is_some() {
        return redirect(&root(&app));
    }
    login_page(
        &app,
        StatusCode::OK,
        query.get("next").map(String::as_str),
        None,
    )
}

fn login_page(app: &App, status: StatusCode, next: Option<&str>, error: Option<&str>) -> Response {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut response = render(
        app,
        None,
        status,
        "login.html",
        json!({"login_csrf": token, "next": safe_next(app, next), "error": error}),
    );
    if let Ok(v) = HeaderValue::from_str(&cookie_header(app, LOGIN_COOKIE, &token, 3600)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Only a path of the dashboard itself may follow sign-in (no open redirect).
fn safe_next(app: &App, next: Option<&str>) -> String {
    let root = root(app);
    match next {
        Some(n)
            if (n == root
                || n.starts_with(&format!("{root}/"))
                || n.starts_with(&format!("{root}?")))
                && !n.contains("//")
                && !n.contains('\\') =>
        {
            n.to_owned()
        }
        _ => root,
    }
}

/// `POST /admin/login`.
async fn login(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(expected) = app.config().admin_token.clone() else {
        return disabled(&app);
    };
    let from = app.sender_addr(peer.ip(), &headers);
    if let Err(wait) = app.sign_in_limit.take(&crate::limits::address_key(from)) {
        tracing::warn!(%from, "dashboard sign-in attempts throttled");
        let mut page = login_page(
            &app,
            StatusCode::TOO_MANY_REQUESTS,
            None,
            Some("Too many sign-in attempts from this address. Wait a minute and try again."),
        );
        page.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().saturating_add(1)),
        );
        return page;
    }
    let form = Form::parse(&body);
    let next = form.get("next");
    let csrf_ok = match (cookie(&headers, LOGIN_COOKIE), form.get("_csrf")) {
        (Some(c), Some(f)) => !c.is_empty() && constant_time_eq(c.as_bytes(), f.as_bytes()),
        _ => false,
    };
    if !csrf_ok {
        return login_page(
            &app,
            StatusCode::FORBIDDEN,
            next,
            Some("The sign-in form expired or did not come from this server. Try again."),
        );
    }
    let given = form.get("token").unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        tracing::warn!("dashboard sign-in with a wrong token");
        return login_page(
            &app,
            StatusCode::UNAUTHORIZED,
            next,
            Some("That is not the admin token."),
        );
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let expires = chrono::Utc::now().timestamp() + SESSION_SECONDS;
    let value = format!("{id}.{expires}.{}", session_signature(&app, &id, expires));
    let mut response = redirect(&safe_next(&app, next));
    let h = response.headers_mut();
    for c in [
        cookie_header(&app, SESSION_COOKIE, &value, SESSION_SECONDS),
        cookie_header(&app, LOGIN_COOKIE, "", 0),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    response
}

/// `POST /admin/logout`: revokes the session and drops the cookie.
async fn logout(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    CheckedForm { admin, .. }: CheckedForm,
) -> Response {
    {
        let now = chrono::Utc::now().timestamp();
        let mut revoked = app
            .dashboard
            .revoked
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Forget revocations of sessions that have expired anyway.
        revoked.retain(|_, signed_out| *signed_out + SESSION_SECONDS > now);
        revoked.insert(admin.session.clone(), now);
    }
    let mut response = redirect(&format!("{}/login", root(&app)));
    if let Ok(v) = HeaderValue::from_str(&cookie_header(&app, SESSION_COOKIE, "", 0)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
