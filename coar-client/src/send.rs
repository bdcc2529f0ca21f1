//! Sending: notifications (validated first), other JSON, with retries.

use std::time::{Duration, Instant};

use coar_model::Notification;
use reqwest::{Method, header};
use url::Url;

use crate::*;

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

impl Client {
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
}
