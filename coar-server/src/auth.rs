//! Authentication: the admin token (`Authorization: Bearer $COAR_ADMIN_TOKEN`) as an
//! extractor, and the constant-time comparisons and HMACs every secret goes through.

use axum::http::{HeaderMap, StatusCode, header};

use crate::{App, problem::Problem};

use std::sync::Arc;

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};
use subtle::ConstantTimeEq;

/// Whether `a` and `b` are equal, in time that depends neither on where they differ nor on
/// their lengths: their SHA-256 digests are compared with `subtle`.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    Sha256::digest(a)
        .as_slice()
        .ct_eq(Sha256::digest(b).as_slice())
        .into()
}

/// HMAC-SHA256 (RFC 2104) with the `hmac` crate, lower-case hex.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

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
            &app.config.trusted_proxies,
            app.config.forwarded_header,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn equality_does_not_depend_on_length() {
        assert!(constant_time_eq(b"same token", b"same token"));
        assert!(!constant_time_eq(b"same token", b"same toke"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
