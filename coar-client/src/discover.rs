//! Reading from peers: LDN inbox discovery, documents, inbox listings.

use std::time::Instant;

use coar_ldn::discovery;
use coar_model::Notification;
use reqwest::{Method, header};
use url::Url;

use crate::*;

impl Client {
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
            let accept = if cfg!(feature = "rdf") {
                "application/ld+json, text/turtle;q=0.9, text/html;q=0.8, application/xhtml+xml;q=0.8, */*;q=0.1"
            } else {
                "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
            };
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
            #[cfg(feature = "rdf")]
            {
                found = discovery::discover(
                    &subject,
                    l.iter().map(String::as_str),
                    Some((&content_type, &text)),
                    &self.contexts,
                );
            }
            #[cfg(not(feature = "rdf"))]
            {
                let html = content_type.starts_with("text/html")
                    || content_type.starts_with("application/xhtml+xml");
                found = discovery::inbox_from_link_headers(&subject, l.iter().map(String::as_str))
                    .or_else(|| {
                        html.then(|| discovery::inbox_from_html(&text, &subject))
                            .flatten()
                    });
            }
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
    /// (in the body or in `Link` headers) across pages. Feature `rdf`.
    #[cfg(feature = "rdf")]
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
