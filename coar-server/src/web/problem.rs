//! RFC 9457 problem details: the one place where errors become HTTP responses.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use coar_model::Report;
use serde_json::{Value, json};

/// An error response: `application/problem+json`, with every validation problem listed.
#[derive(Debug, Clone)]
pub struct ProblemDetails {
    /// The status.
    pub status: StatusCode,
    /// A short, stable summary.
    pub title: String,
    /// What happened this time.
    pub detail: String,
    /// Each problem found: `pointer`, `rule`, `severity`, `message`.
    pub errors: Vec<Value>,
    /// Extra headers (`Accept-Post` on 415, `Allow` on 405, …).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ProblemDetails {
    /// A problem with no itemised errors.
    pub fn new(
        status: StatusCode,
        title: impl Into<String>,
        detail: impl Into<String>,
    ) -> ProblemDetails {
        ProblemDetails {
            status,
            title: title.into(),
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// A 422 listing every validation problem (errors and warnings).
    pub fn invalid(report: &Report) -> ProblemDetails {
        let count = report.errors().count();
        let mut p = ProblemDetails::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid COAR Notify notification",
            format!(
                "{count} problem{} must be fixed",
                if count == 1 { "" } else { "s" }
            ),
        );
        p.errors = report
            .problems
            .iter()
            .map(|e| json!({"pointer": e.pointer, "rule": e.rule, "severity": e.severity, "message": e.message}))
            .collect();
        p
    }

    /// A 401 for an HTTP Message Signature that does not hold: `reason` is its stable code
    /// (`digest-mismatch`, `expired`, `unknown-key`, `bad-signature`, `replayed`, …), given
    /// as the one error's `rule`. `Accept-Signature` says what a signature must cover.
    pub fn signature(reason: &'static str, detail: String) -> ProblemDetails {
        let mut p = ProblemDetails::new(StatusCode::UNAUTHORIZED, "Bad signature", detail.clone());
        p.errors = vec![json!({
            "pointer": "",
            "rule": format!("signature.{reason}"),
            "severity": "error",
            "message": detail,
        })];
        p.with_header(header::WWW_AUTHENTICATE, "Signature")
            .with_header(
                header::HeaderName::from_static("accept-signature"),
                r#"coar=("@method" "@target-uri" "content-digest" "content-type");created;keyid"#,
            )
    }

    /// Adds a header.
    pub fn with_header(mut self, name: header::HeaderName, value: &'static str) -> ProblemDetails {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    /// Adds a header whose value is built at run time.
    pub fn with_header_value(
        mut self,
        name: header::HeaderName,
        value: HeaderValue,
    ) -> ProblemDetails {
        self.headers.push((name, value));
        self
    }

    /// An internal error: logged in full, answered without details.
    pub fn internal(err: impl std::fmt::Display) -> ProblemDetails {
        tracing::error!(error = %err, "internal error");
        ProblemDetails::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            "the server failed; this is a bug or the database is unavailable",
        )
    }
}

impl IntoResponse for ProblemDetails {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if !self.errors.is_empty() {
            body["errors"] = Value::Array(self.errors);
        }
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<coar_ldn::ReceiveError> for ProblemDetails {
    fn from(err: coar_ldn::ReceiveError) -> ProblemDetails {
        use coar_ldn::ReceiveError as E;
        let mut p = ProblemDetails::new(err.status(), err.title(), err.to_string());
        match &err {
            E::UnsupportedMediaType { .. } => {
                p = p.with_header(
                    header::HeaderName::from_static("accept-post"),
                    coar_ldn::ACCEPT_POST,
                );
            }
            E::DuplicateKey { key, pointer } => p.errors.push(json!({
                "pointer": pointer,
                "rule": "json.duplicate-member",
                "severity": "error",
                "message": format!("the member {key:?} appears more than once in this object"),
            })),
            E::OverBudget(exceeded) => p.errors.push(json!({
                "budget": exceeded.name(),
                "message": exceeded.to_string(),
            })),
            E::TooDeep { limit } => p.errors.push(json!({
                "budget": "depth",
                "message": format!("nested deeper than {limit} levels"),
            })),
            _ => {}
        }
        p
    }
}

impl From<crate::parse::Busy> for ProblemDetails {
    fn from(err: crate::parse::Busy) -> ProblemDetails {
        ProblemDetails::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            format!("{err}; try again shortly"),
        )
        .with_header(header::RETRY_AFTER, "1")
    }
}

impl From<coar_store::StoreError> for ProblemDetails {
    fn from(err: coar_store::StoreError) -> ProblemDetails {
        match err {
            coar_store::StoreError::Conflict {
                notification_id,
                origin,
                ..
            } => ProblemDetails::new(
                StatusCode::CONFLICT,
                "Conflicting notification id",
                format!(
                    "a different notification with id {notification_id:?} from {origin:?} was received before"
                ),
            ),
            coar_store::StoreError::NotFound(_) => {
                ProblemDetails::new(StatusCode::NOT_FOUND, "Not found", "no such notification")
            }
            coar_store::StoreError::Invalid { field, message } => {
                ProblemDetails::new(StatusCode::BAD_REQUEST, format!("Invalid {field}"), message)
            }
            other => ProblemDetails::internal(other),
        }
    }
}

impl From<crate::Rejection> for ProblemDetails {
    fn from(rejection: crate::Rejection) -> ProblemDetails {
        use crate::Rejection as R;
        let status = rejection.status();
        let detail = rejection.to_string();
        match rejection {
            R::Body(e) => ProblemDetails::from(e),
            R::Busy(b) => ProblemDetails::from(b),
            R::Invalid(report) => ProblemDetails::invalid(&report),
            R::Store(e) => ProblemDetails::from(e),
            R::TooLarge { .. } => ProblemDetails::new(status, "Payload too large", detail),
            R::NotAnActivity(_) => ProblemDetails::new(status, "Not a single activity", detail),
            R::Untrusted => ProblemDetails::new(status, "Untrusted sender", detail),
            R::RateLimited { wait, .. } => ProblemDetails::new(status, "Too many requests", detail)
                .with_header_value(
                    header::RETRY_AFTER,
                    HeaderValue::from(crate::admission::retry_after(wait)),
                ),
            R::QuarantineFull { .. } => ProblemDetails::new(status, "Quarantine full", detail)
                .with_header(header::RETRY_AFTER, "3600"),
            R::Signature(e) => ProblemDetails::signature(e.reason(), detail),
            R::Replayed => ProblemDetails::signature("replayed", detail),
        }
    }
}

impl From<crate::BodyError> for ProblemDetails {
    fn from(err: crate::BodyError) -> ProblemDetails {
        match err {
            crate::BodyError::Refused(e) => ProblemDetails::from(e),
            crate::BodyError::Busy(b) => ProblemDetails::from(b),
        }
    }
}

impl From<crate::outbox::OutboxError> for ProblemDetails {
    fn from(err: crate::outbox::OutboxError) -> ProblemDetails {
        use crate::outbox::OutboxError as E;
        let detail = err.to_string();
        match err {
            E::Complete(coar_model::CompleteError::NotAnObject) => ProblemDetails::new(
                StatusCode::BAD_REQUEST,
                "Not an object",
                "send a JSON object",
            ),
            E::Complete(coar_model::CompleteError::UnknownPattern(_)) => {
                ProblemDetails::new(StatusCode::BAD_REQUEST, "Unknown pattern", detail)
            }
            E::NoInbox { .. } => ProblemDetails::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "No inbox for the target",
                detail,
            ),
            E::NotANotification(_) => {
                ProblemDetails::new(StatusCode::BAD_REQUEST, "Not a notification", detail)
            }
            E::Store(e) => ProblemDetails::from(e),
        }
    }
}
