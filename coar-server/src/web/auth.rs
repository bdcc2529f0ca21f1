//! Authentication: the admin token (`Authorization: Bearer $COAR_ADMIN_TOKEN`) as an
//! extractor. Its comparisons go through [`crate::secrets`].

use axum::http::{HeaderMap, StatusCode, header};

use crate::{
    secrets::constant_time_eq,
    web::{App, problem::ProblemDetails},
};

use std::sync::Arc;

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};

/// Proof that a request carries the admin token. As an extractor, it puts "admin only" in
/// a handler's signature, and it runs before the body is read or parsed (axum runs the
/// extractors of request parts before the one of the body). Wrong tokens count against the
/// address's sign-in budget (10 a minute, shared with the dashboard): past it, 429 without
/// a check.
#[derive(Debug, Clone, Copy)]
pub struct AdminToken;

impl FromRequestParts<Arc<App>> for AdminToken {
    type Rejection = ProblemDetails;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ProblemDetails> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        let from = app.sender_addr(peer, &parts.headers);
        let key = crate::limits::address_key(from);
        if let Err(wait) = app.sign_in_limit.check(&key) {
            return Err(ProblemDetails::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed attempts",
                "too many requests with a wrong token from this address; try again later",
            )
            .with_header_value(
                header::RETRY_AFTER,
                axum::http::HeaderValue::from(wait.as_secs().saturating_add(1)),
            ));
        }
        require_admin(app, &parts.headers)
            .map(|()| AdminToken)
            .inspect_err(|problem| {
                if problem.status == StatusCode::FORBIDDEN {
                    let _ = app.sign_in_limit.take(&key);
                }
            })
    }
}

/// Proof that a request may read the inbox and the feed: anyone while `COAR_INBOX_PUBLIC`
/// is true (the default), otherwise only the admin, as [`AdminToken`] checks it.
#[derive(Debug, Clone, Copy)]
pub struct Reader {
    /// The request also carries the admin token, which shows what no registered service
    /// vouches for.
    pub admin: bool,
}

impl FromRequestParts<Arc<App>> for Reader {
    type Rejection = ProblemDetails;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ProblemDetails> {
        if !app.config().inbox_public {
            return AdminToken::from_request_parts(parts, app)
                .await
                .map(|_| Reader { admin: true });
        }
        let admin = parts.headers.contains_key(header::AUTHORIZATION)
            && require_admin(app, &parts.headers).is_ok();
        Ok(Reader { admin })
    }
}

/// `/metrics` with a token configured: 401 without it, 403 with a wrong one.
pub fn require_metrics(app: &App, headers: &HeaderMap) -> Result<(), ProblemDetails> {
    match &app.config().metrics_token {
        None => Ok(()),
        Some(expected) => require_bearer(headers, expected, "metrics token"),
    }
}

/// 401 without `Authorization: Bearer`, 403 when its token is not `expected` (the `what`).
fn require_bearer(headers: &HeaderMap, expected: &str, what: &str) -> Result<(), ProblemDetails> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => Err(ProblemDetails::new(
            StatusCode::UNAUTHORIZED,
            "Authentication required",
            format!("send Authorization: Bearer <{what}>"),
        )
        .with_header(header::WWW_AUTHENTICATE, "Bearer")),
        Some(t) if constant_time_eq(t.trim().as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ProblemDetails::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("the token is not the {what}"),
        )),
    }
}

/// 401 without credentials, 403 with wrong ones, 404 when no admin token is configured.
pub fn require_admin(app: &App, headers: &HeaderMap) -> Result<(), ProblemDetails> {
    let Some(expected) = &app.config().admin_token else {
        return Err(ProblemDetails::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "the admin API is disabled: no admin token is configured",
        ));
    };
    require_bearer(headers, expected, "admin token")
}
