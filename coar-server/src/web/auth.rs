//! Authentication: the admin token (`Authorization: Bearer $COAR_ADMIN_TOKEN`) as an
//! extractor. Its comparisons go through [`crate::secrets`].

use axum::http::{HeaderMap, StatusCode, header};

use crate::{
    secrets::constant_time_eq,
    web::{App, problem::Problem},
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
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Problem> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        let from = crate::trust::client_addr(
            peer,
            &parts.headers,
            &app.config().trusted_proxies,
            app.config().forwarded_header,
        );
        let key = crate::limits::address_key(from);
        if let Err(wait) = app.sign_in_limit.check(&key) {
            return Err(Problem::new(
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

/// 401 without credentials, 403 with wrong ones, 404 when no admin token is configured.
pub fn require_admin(app: &App, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(expected) = &app.config().admin_token else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "the admin API is disabled: no admin token is configured",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "Authentication required",
            "send Authorization: Bearer <admin token>",
        )
        .with_header(header::WWW_AUTHENTICATE, "Bearer")),
        Some(t) if constant_time_eq(t.trim().as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "the token is not the admin token",
        )),
    }
}
