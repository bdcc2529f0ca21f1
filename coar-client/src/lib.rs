//! Sending COAR Notify notifications over Linked Data Notifications.
//!
//! This crate is the only one of the project that opens outbound connections: inbox
//! discovery (LDN: `Link` header first, then the RDF or HTML body), POSTing notifications
//! (validated first: an invalid notification is never sent), retries with exponential
//! backoff and full jitter, and reading remote inboxes. Every hop, redirects included, goes
//! through an address policy that refuses loopback, private and link-local addresses unless
//! allowed.
//!
//! It deliberately keeps no state on disk: durable outboxes belong to `coar-store` and the
//! server, which call [`Client::send`] once per delivery attempt.

mod policy;

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use coar_ldn::{Contexts, discovery};
use coar_model::{Notification, Report};
use reqwest::{Method, StatusCode, header};
use url::Url;

pub use policy::is_restricted;

/// The media type notifications are sent with.
pub const CONTENT_TYPE: &str =
    "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";

/// The default of [`ClientConfig::max_retry_after`]: one day.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Timeout of each request (default 10 s).
    pub timeout: Duration,
    /// `User-Agent`.
    pub user_agent: String,
    /// Redirects followed at most (default 5). POSTs follow only 307 and 308.
    pub max_redirects: usize,
    /// Largest response body read (default 1 MiB); longer bodies are cut off.
    pub max_response_bytes: usize,
    /// Allow loopback, private and link-local targets (default false; for tests and closed
    /// networks; `COAR_ALLOW_PRIVATE_TARGETS=true`).
    pub allow_private: bool,
    /// How long a discovered inbox is remembered (default 10 min).
    pub discovery_ttl: Duration,
    /// Bearer tokens to send, by inbox URL prefix.
    pub tokens: Vec<(String, String)>,
    /// The longest `Retry-After` honoured (default 1 day); a peer's longer value is cut to
    /// this before any arithmetic.
    pub max_retry_after: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(10),
            user_agent: concat!("coar-notify-rs/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_redirects: 5,
            max_response_bytes: 1024 * 1024,
            allow_private: false,
            discovery_ttl: Duration::from_secs(600),
            tokens: Vec::new(),
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }
}

impl ClientConfig {
    /// A random duration in `0..=ceiling` (full jitter), for callers that schedule their own
    /// retries.
    pub fn retry_jitter(&self, ceiling: Duration) -> Duration {
        ceiling.mul_f64(random_unit())
    }

    /// Defaults, with `COAR_ALLOW_PRIVATE_TARGETS` read from the environment.
    pub fn from_env() -> ClientConfig {
        let allow = std::env::var("COAR_ALLOW_PRIVATE_TARGETS")
            .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
        ClientConfig {
            allow_private: allow,
            ..ClientConfig::default()
        }
    }
}

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
    /// `Retry-After`, for 429 and 503, at most [`ClientConfig::max_retry_after`].
    pub retry_after: Option<Duration>,
    /// The peer's problem details, when it sent `application/problem+json`.
    pub problem: Option<serde_json::Value>,
    /// The start of the body.
    pub excerpt: String,
}

fn problem_summary(problem: &Option<serde_json::Value>, excerpt: &str) -> String {
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

/// What the inbox answered to a delivered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The inbox it was POSTed to (after redirects).
    pub inbox: Url,
    /// 201, 202 or another 2xx.
    pub status: u16,
    /// `Location` of a 201.
    pub location: Option<String>,
    /// The body (a 202's status information), cut at the size limit.
    pub body: String,
    /// How long the delivery took.
    pub elapsed: Duration,
}

/// Retries for callers without a durable queue: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (default 5).
    pub max_attempts: u32,
    /// The first backoff ceiling (default 1 s), doubled after each failure.
    pub base_delay: Duration,
    /// The largest backoff ceiling (default 60 s).
    pub max_delay: Duration,
    /// Give up when the next wait would pass this much time in all (default 5 min).
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_total: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (after `attempt` failures): uniformly random in
    /// `0..=min(max_delay, base × 2^(attempt−1))`, but at least the peer's `Retry-After`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)))
            .min(self.max_delay);
        let jitter = ceiling.mul_f64(random_unit());
        retry_after.map_or(jitter, |r| jitter.max(r))
    }
}

/// `Retry-After`: delay-seconds, or an HTTP-date (a date in the past means now). The value
/// is the peer's and is not clamped here: cut it to a maximum before adding it to anything
/// (the client does, with [`ClientConfig::max_retry_after`]).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A random number in [0, 1) from the standard library's randomly keyed hasher.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The HTTP client for LDN senders and consumers.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
    contexts: Contexts,
    discovered: Mutex<HashMap<String, (Instant, Url)>>,
}

struct Fetched {
    url: Url,
    status: StatusCode,
    headers: header::HeaderMap,
    body: Vec<u8>,
    truncated: bool,
}

impl Client {
    /// A client. `contexts` are the JSON-LD contexts used to read RDF bodies in discovery
    /// (register COAR's for COAR resources).
    pub fn new(config: ClientConfig, contexts: Contexts) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(config.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the target itself, past the address policy; none is
            // used, whatever `HTTP(S)_PROXY` or `ALL_PROXY` say.
            .no_proxy()
            .dns_resolver(policy::resolver(config.allow_private))
            .build()
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        Ok(Client {
            http,
            config,
            contexts,
            discovered: Mutex::new(HashMap::new()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn parse_url(&self, url: &str) -> Result<Url, ClientError> {
        let u = Url::parse(url).map_err(|_| ClientError::BadUrl(url.to_owned()))?;
        if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
            return Err(ClientError::BadUrl(url.to_owned()));
        }
        Ok(u)
    }

    /// Checks an IP literal host against the policy (names are checked when resolved).
    fn check_host(&self, url: &Url) -> Result<(), ClientError> {
        if self.config.allow_private {
            return Ok(());
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        match ip {
            Some(ip) if is_restricted(ip) => Err(ClientError::Forbidden(format!(
                "{url}: {ip} is a loopback, private or link-local address"
            ))),
            _ => Ok(()),
        }
    }

    fn token_for(&self, url: &Url) -> Option<&str> {
        self.config
            .tokens
            .iter()
            .find(|(prefix, _)| url.as_str().starts_with(prefix.as_str()))
            .map(|(_, t)| t.as_str())
    }

    /// One request, following redirects by hand: every hop is checked against the address
    /// policy, and a POST is repeated only on 307 and 308.
    async fn request(
        &self,
        method: Method,
        url: Url,
        accept: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Fetched, ClientError> {
        let mut url = url;
        let mut hops = 0;
        loop {
            self.check_host(&url)?;
            let mut req = self.http.request(method.clone(), url.clone());
            if let Some(a) = accept {
                req = req.header(header::ACCEPT, a);
            }
            if let Some(token) = self.token_for(&url) {
                req = req.bearer_auth(token);
            }
            if let Some(b) = body {
                req = req
                    .header(header::CONTENT_TYPE, CONTENT_TYPE)
                    .body(b.to_vec());
            }
            let mut response = req
                .send()
                .await
                .map_err(|e| self.transport_error(&url, e))?;
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| {
                        ClientError::Redirect(format!("{url} answered {status} without Location"))
                    })?;
                let next = url
                    .join(location)
                    .map_err(|_| ClientError::Redirect(format!("bad Location {location:?}")))?;
                if method == Method::POST && !matches!(status.as_u16(), 307 | 308) {
                    return Err(ClientError::Redirect(format!(
                        "{url} answered {status} to a POST; only 307 and 308 are re-POSTed (to {next})"
                    )));
                }
                hops += 1;
                if hops > self.config.max_redirects {
                    return Err(ClientError::Redirect(format!(
                        "more than {} redirects from {url}",
                        self.config.max_redirects
                    )));
                }
                url = self.parse_url(next.as_str())?;
                continue;
            }
            let headers = response.headers().clone();
            let mut body = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| self.transport_error(&url, e))?
            {
                let room = self.config.max_response_bytes - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            return Ok(Fetched {
                url,
                status,
                headers,
                body,
                truncated,
            });
        }
    }

    fn transport_error(&self, url: &Url, e: reqwest::Error) -> ClientError {
        // The policy resolver's refusal surfaces as a connect error: say what it was.
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        while let Some(err) = source {
            if let Some(refused) = err.downcast_ref::<policy::Refused>() {
                return ClientError::Forbidden(refused.to_string());
            }
            source = err.source();
        }
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        ClientError::Unreachable(format!("{url}: {kind}: {detail}"))
    }

    fn status_error(&self, fetched: &Fetched) -> ClientError {
        let text = String::from_utf8_lossy(&fetched.body);
        let is_problem = fetched
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/problem+json"));
        let retry_after = fetched
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after)
            .map(|d| d.min(self.config.max_retry_after));
        ClientError::Status(Box::new(StatusError {
            url: fetched.url.to_string(),
            status: fetched.status.as_u16(),
            retry_after,
            problem: if is_problem {
                serde_json::from_str(&text).ok()
            } else {
                None
            },
            excerpt: text.chars().take(500).collect(),
        }))
    }

    /// The inbox of `resource`, by LDN discovery: `HEAD` for a `Link` header (skipped for
    /// URLs with a fragment), then `GET` with `Accept` for JSON-LD, Turtle and HTML, reading
    /// the `Link` headers again and then the body. Results are cached for the TTL.
    pub async fn discover(&self, resource: &str) -> Result<Url, ClientError> {
        let url = self.parse_url(resource)?;
        if let Some((at, inbox)) = self
            .discovered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url.as_str())
            && at.elapsed() < self.config.discovery_ttl
        {
            return Ok(inbox.clone());
        }
        let mut fetch_url = url.clone();
        fetch_url.set_fragment(None);
        let links = |h: &header::HeaderMap| -> Vec<String> {
            h.get_all(header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_owned)
                .collect()
        };
        let mut found = None;
        if url.fragment().is_none()
            && let Ok(head) = self
                .request(Method::HEAD, fetch_url.clone(), None, None)
                .await
            && head.status.is_success()
        {
            let l = links(&head.headers);
            found = discovery::inbox_from_link_headers(&head.url, l.iter().map(String::as_str));
        }
        if found.is_none() {
            let accept = "application/ld+json, text/turtle;q=0.9, text/html;q=0.8, application/xhtml+xml;q=0.8, */*;q=0.1";
            let got = self
                .request(Method::GET, fetch_url, Some(accept), None)
                .await?;
            if !got.status.is_success() {
                return Err(self.status_error(&got));
            }
            let l = links(&got.headers);
            let content_type = got
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let text = String::from_utf8_lossy(&got.body);
            // The resource as named (with its fragment) is the subject to look for.
            let mut subject = got.url.clone();
            subject.set_fragment(url.fragment());
            found = discovery::discover(
                &subject,
                l.iter().map(String::as_str),
                Some((&content_type, &text)),
                &self.contexts,
            );
        }
        let inbox = found.ok_or_else(|| ClientError::NoInbox(resource.to_owned()))?;
        self.discovered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url.to_string(), (Instant::now(), inbox.clone()));
        Ok(inbox)
    }

    /// The inbox `notification` goes to: its `target.inbox` when given, otherwise the inbox
    /// its `target.id` advertises ([`Client::discover`]).
    pub async fn target_inbox(&self, notification: &Notification) -> Result<String, ClientError> {
        let target = notification.target();
        match (target.and_then(|t| t.inbox()), target.and_then(|t| t.id())) {
            (Some(inbox), _) => Ok(inbox.to_owned()),
            (None, Some(id)) => self.discover(id).await.map(|u| u.to_string()),
            (None, None) => Err(ClientError::NoInbox(
                "a notification without a target".into(),
            )),
        }
    }

    /// Delivers `notification` to its target ([`Client::target_inbox`], then
    /// [`Client::send`]).
    pub async fn deliver(&self, notification: &Notification) -> Result<Receipt, ClientError> {
        let inbox = self.target_inbox(notification).await?;
        self.send(notification, &inbox).await
    }

    /// Validates the notification and POSTs it to `inbox`. Any 2xx is a delivery.
    pub async fn send(
        &self,
        notification: &Notification,
        inbox: &str,
    ) -> Result<Receipt, ClientError> {
        let report = notification.validate();
        if notification.pattern().is_none() || !report.is_valid() {
            return Err(ClientError::Invalid(report));
        }
        let url = self.parse_url(inbox)?;
        let body = notification.to_json_string().into_bytes();
        let started = Instant::now();
        let got = self.request(Method::POST, url, None, Some(&body)).await?;
        if !got.status.is_success() {
            return Err(self.status_error(&got));
        }
        Ok(Receipt {
            location: got
                .headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|l| {
                    got.url
                        .join(l)
                        .map_or_else(|_| l.to_owned(), |u| u.to_string())
                }),
            status: got.status.as_u16(),
            body: String::from_utf8_lossy(&got.body).into_owned(),
            inbox: got.url,
            elapsed: started.elapsed(),
        })
    }

    /// POSTs any JSON body (webhooks and other non-LDN calls), under the same address
    /// policy, redirect rules and limits as notifications. Any 2xx is success.
    pub async fn post_json(
        &self,
        url: &str,
        body: &[u8],
        headers: &[(&str, String)],
    ) -> Result<u16, ClientError> {
        let url = self.parse_url(url)?;
        self.check_host(&url)?;
        let mut req = self
            .http
            .post(url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let mut response = req
            .send()
            .await
            .map_err(|e| self.transport_error(&url, e))?;
        let status = response.status();
        let mut excerpt = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&url, e))?
        {
            excerpt.extend_from_slice(&chunk);
            if excerpt.len() > 2000 {
                break;
            }
        }
        let fetched = Fetched {
            url,
            status,
            headers: response.headers().clone(),
            body: excerpt,
            truncated: false,
        };
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(self.status_error(&fetched))
        }
    }

    /// [`send`](Self::send), retried with `policy` while the error is retryable.
    pub async fn send_with_retry(
        &self,
        notification: &Notification,
        inbox: &str,
        policy: &RetryPolicy,
    ) -> Result<Receipt, ClientError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send(notification, inbox).await {
                Ok(receipt) => return Ok(receipt),
                Err(e) if e.is_retryable() && attempt < policy.max_attempts => {
                    let wait = policy.delay(attempt, e.retry_after());
                    if started.elapsed().saturating_add(wait) > policy.max_total {
                        return Err(e);
                    }
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A notification (or any JSON-LD document) as JSON.
    pub async fn fetch(&self, url: &str) -> Result<serde_json::Value, ClientError> {
        let url = self.parse_url(url)?;
        let got = self
            .request(
                Method::GET,
                url,
                Some("application/ld+json, application/json;q=0.9"),
                None,
            )
            .await?;
        if !got.status.is_success() {
            return Err(self.status_error(&got));
        }
        if got.truncated {
            return Err(ClientError::TooLarge(got.url.to_string()));
        }
        serde_json::from_slice(&got.body).map_err(|e| ClientError::BadResponse {
            url: got.url.to_string(),
            message: e.to_string(),
        })
    }

    /// Every notification URI an inbox lists (`ldp:contains`), following its `next` links
    /// (in the body or in `Link` headers) across pages.
    pub async fn inbox_listing(&self, inbox: &str) -> Result<Vec<String>, ClientError> {
        const CONTAINS: &str = "http://www.w3.org/ns/ldp#contains";
        const NEXT: [&str; 2] = [
            "http://www.iana.org/assignments/relation/next",
            "http://www.w3.org/1999/xhtml/vocab#next",
        ];
        let mut out = Vec::new();
        let mut next = Some(self.parse_url(inbox)?);
        let mut seen = std::collections::HashSet::new();
        while let Some(page) = next.take() {
            if !seen.insert(page.to_string()) || seen.len() > 10_000 {
                break; // a loop in the paging links, or a runaway inbox
            }
            let got = self
                .request(
                    Method::GET,
                    page.clone(),
                    Some("application/ld+json, text/turtle;q=0.9"),
                    None,
                )
                .await?;
            if !got.status.is_success() {
                return Err(self.status_error(&got));
            }
            if got.truncated {
                return Err(ClientError::TooLarge(got.url.to_string()));
            }
            let text = String::from_utf8_lossy(&got.body);
            let content_type = got
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/ld+json");
            let bad = |m: String| ClientError::BadResponse {
                url: got.url.to_string(),
                message: m,
            };
            let dataset = if content_type.starts_with("text/turtle") {
                coar_ldn::Dataset::parse_turtle(&text, Some(got.url.as_str()))
                    .map_err(|e| bad(e.to_string()))?
            } else {
                self.contexts
                    .to_dataset_with_base(&text, Some(got.url.as_str()))
                    .map_err(|e| bad(e.to_string()))?
            };
            // The page describes itself (its URL, or the inbox URL for the first page).
            let subjects = [got.url.to_string(), page.to_string(), inbox.to_owned()];
            let subject = subjects.iter().find(|s| {
                !dataset.objects(s, CONTAINS).is_empty()
                    || NEXT.iter().any(|n| !dataset.objects(s, n).is_empty())
            });
            if let Some(s) = subject {
                out.extend(dataset.objects(s, CONTAINS).into_iter().map(str::to_owned));
                next = NEXT.iter().find_map(|n| {
                    dataset
                        .objects(s, n)
                        .first()
                        .and_then(|u| Url::parse(u).ok())
                });
            }
            if next.is_none() {
                let links: Vec<&str> = got
                    .headers
                    .get_all(header::LINK)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                next = coar_ldn::link::find_link(links, "next", &got.url);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        let later =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
        let d = parse_retry_after(&later).unwrap();
        assert!(
            d > Duration::from_secs(3500) && d <= Duration::from_secs(3600),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn full_jitter_stays_within_its_ceiling() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        for attempt in 1..10 {
            let ceiling =
                Duration::from_millis(100 * 2u64.pow(attempt - 1)).min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(p.delay(attempt, None) <= ceiling);
            }
        }
        assert!(p.delay(1, Some(Duration::from_secs(5))) >= Duration::from_secs(5));
        let spread: std::collections::BTreeSet<u128> =
            (0..50).map(|_| p.delay(5, None).as_micros()).collect();
        assert!(spread.len() > 40, "jitter is random: {spread:?}");
    }
}
