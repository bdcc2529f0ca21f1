//! Requests: URLs checked against the address policy, redirects followed by hand (each hop
//! checked), bodies read within a limit, failures classified.

use reqwest::{Method, StatusCode, header};
use url::Url;

use crate::*;

impl Client {
    pub(crate) fn parse_url(&self, url: &str) -> Result<Url, ClientError> {
        let u = Url::parse(url).map_err(|_| ClientError::BadUrl(url.to_owned()))?;
        if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
            return Err(ClientError::BadUrl(url.to_owned()));
        }
        Ok(u)
    }

    /// Checks an IP literal host against the policy (names are checked when resolved).
    pub(crate) fn check_host(&self, url: &Url) -> Result<(), ClientError> {
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

    pub(crate) fn token_for(&self, url: &Url) -> Option<&str> {
        self.config
            .tokens
            .iter()
            .find(|(prefix, _)| url.as_str().starts_with(prefix.as_str()))
            .map(|(_, t)| t.as_str())
    }

    /// The headers of a request body: its media type and, with a signing key, its digest
    /// and the signature over this hop's method and URI.
    fn body_headers(
        &self,
        method: &Method,
        url: &Url,
        body: &[u8],
    ) -> Result<header::HeaderMap, ClientError> {
        use coar_ldn::signature::{Request, content_digest, sign_request};
        let mut headers = header::HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(CONTENT_TYPE),
        );
        let Some(key) = &self.config.signing else {
            return Ok(headers);
        };
        let value = |v: String| {
            header::HeaderValue::from_str(&v).map_err(|e| ClientError::Signing(e.to_string()))
        };
        headers.insert("content-digest", value(content_digest(body))?);
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let ttl = i64::try_from(self.config.signature_ttl.as_secs()).unwrap_or(i64::MAX);
        let (input, signature) = sign_request(
            key,
            &Request {
                method: method.as_str(),
                target_uri: url.as_str(),
                headers: &headers,
            },
            "coar",
            created,
            Some(created.saturating_add(ttl)),
        )
        .map_err(|e| ClientError::Signing(e.to_string()))?;
        headers.insert("signature-input", value(input)?);
        headers.insert("signature", value(signature)?);
        Ok(headers)
    }

    /// One request, following redirects by hand: every hop is checked against the address
    /// policy, and a POST is repeated only on 307 and 308.
    pub(crate) async fn request(
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
                    .headers(self.body_headers(&method, &url, b)?)
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
                // A signed POST is signed again for each hop's URI: only within the origin it
                // was sent to, or an inbox could have our signature over its body for any
                // other inbox.
                if method == Method::POST
                    && self.config.signing.is_some()
                    && next.origin() != url.origin()
                {
                    return Err(ClientError::Redirect(format!(
                        "{url} redirected a signed POST to another origin ({next}); it is not \
                         signed for another server"
                    )));
                }
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

    pub(crate) fn transport_error(&self, url: &Url, e: reqwest::Error) -> ClientError {
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

    pub(crate) fn status_error(&self, fetched: &Fetched) -> ClientError {
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
}
