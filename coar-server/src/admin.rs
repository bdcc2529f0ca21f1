//! Admin authentication: `Authorization: Bearer $COAR_ADMIN_TOKEN`, compared in constant time.

use axum::http::{HeaderMap, StatusCode, header};

use crate::{App, problem::Problem};

/// Whether `a` and `b` are equal, in time that does not depend on where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 401 without credentials, 403 with wrong ones, 404 when no admin token is configured.
pub fn require_admin(app: &App, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(expected) = &app.config.admin_token else {
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
