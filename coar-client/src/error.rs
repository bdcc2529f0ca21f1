//! Why a call failed, and whether trying again makes sense.

use std::time::Duration;

use coar_model::Report;

/// Why sending (or discovering, or reading) failed, and whether trying again makes sense.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The notification is invalid; it was not sent.
    #[error("the notification is invalid and was not sent:\n{0}")]
    Invalid(Report),
    /// The URL is not an absolute http(s) URL.
    #[error("invalid URL {0:?}")]
    BadUrl(String),
    /// The address policy refused the target.
    #[error("refused by the address policy: {0}")]
    Forbidden(String),
    /// The peer could not be reached, or did not answer in time.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The peer answered with an error status.
    #[error("{0}")]
    Status(Box<StatusError>),
    /// A redirect that cannot be followed (a POST redirected by 301/302/303, a loop, too many).
    #[error("redirect not followed: {0}")]
    Redirect(String),
    /// No inbox is advertised for the resource.
    #[error("no LDN inbox is advertised for {0}")]
    NoInbox(String),
    /// The response was larger than the limit.
    #[error("the response from {0} is larger than the limit")]
    TooLarge(String),
    /// The request could not be signed (a key id that is not printable ASCII, say).
    #[error("the request cannot be signed: {0}")]
    Signing(String),
    /// The response could not be read as what was expected.
    #[error("unexpected response from {url}: {message}")]
    BadResponse {
        /// The URL.
        url: String,
        /// What was wrong.
        message: String,
    },
}

/// An error status from a peer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{url} answered {status}{}", problem_summary(.problem, .excerpt))]
pub struct StatusError {
    /// The URL that answered.
    pub url: String,
    /// The status.
    pub status: u16,
    /// `Retry-After`, for 429 and 503, at most [`ClientConfig::max_retry_after`](crate::ClientConfig::max_retry_after).
    pub retry_after: Option<Duration>,
    /// The peer's problem details, when it sent `application/problem+json`.
    pub problem: Option<serde_json::Value>,
    /// The start of the body.
    pub excerpt: String,
}

pub(crate) fn problem_summary(problem: &Option<serde_json::Value>, excerpt: &str) -> String {
    match problem {
        Some(p) => format!(
            ": {}",
            p.get("detail")
                .or(p.get("title"))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
        ),
        None if !excerpt.is_empty() => {
            format!(": {}", excerpt.chars().take(200).collect::<String>())
        }
        None => String::new(),
    }
}

impl ClientError {
    /// Whether a later attempt may succeed: connection failures, timeouts, 5xx, 408, 425
    /// and 429. A 4xx, an invalid notification or a refused address will fail again.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Unreachable(_) => true,
            ClientError::Status(e) => e.status >= 500 || matches!(e.status, 408 | 425 | 429),
            _ => false,
        }
    }

    /// The peer's `Retry-After`, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Status(e) => e.retry_after,
            _ => None,
        }
    }

    /// The HTTP status, when the peer answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status(e) => Some(e.status),
            _ => None,
        }
    }
}
