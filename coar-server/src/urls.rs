//! Every URL this server names, built in one place from its base URL (`COAR_BASE_URL`,
//! without a trailing slash), so that a route and the links to it cannot drift apart.

/// The URLs of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    base: String,
    /// The base URL's own path (`/notify` for `https://x.example/notify`), empty at the root.
    path: String,
}

impl Urls {
    /// The URLs below `base_url` (a trailing slash is dropped).
    pub fn new(base_url: &str) -> Urls {
        let base = base_url.trim_end_matches('/').to_owned();
        let path = url::Url::parse(&base)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Urls { base, path }
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `{base}/`: the service description, and this service's id in what it sends.
    pub fn service(&self) -> String {
        format!("{}/", self.base)
    }

    /// The LDN inbox.
    pub fn inbox(&self) -> String {
        format!("{}/inbox", self.base)
    }

    /// The URI a sender addressed when this server got `path_and_query` (e.g. `/inbox/?a=b`,
    /// as the request line has it below the base URL's path): the base URL normalised as a
    /// client normalises what it requests (scheme and host lower-cased, a default port
    /// dropped), then the path and query. What an HTTP Message Signature's `@target-uri`
    /// is checked against, whatever a proxy in front rewrote.
    pub fn public_uri(&self, path_and_query: &str) -> String {
        let base = url::Url::parse(&self.base)
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_else(|_| self.base.clone());
        let origin = base.strip_suffix(self.path.as_str()).unwrap_or(&base);
        format!("{origin}{}{path_and_query}", self.path)
    }

    /// One received notification in the inbox.
    pub fn notification(&self, key: i64) -> String {
        format!("{}/inbox/{key}", self.base)
    }

    /// What the inbox accepts (`ldp:constrainedBy`).
    pub fn constraints(&self) -> String {
        format!("{}/constraints", self.base)
    }

    /// The JWK Set of the keys this server signs with.
    pub fn keys(&self) -> String {
        format!("{}/keys", self.base)
    }

    /// The Atom feed.
    pub fn feed(&self) -> String {
        format!("{}/feed", self.base)
    }

    /// The admin API's list of notifications.
    pub fn api_notifications(&self) -> String {
        format!("{}/api/notifications", self.base)
    }

    /// One notification in the admin API.
    pub fn api_notification(&self, key: i64) -> String {
        format!("{}/api/notifications/{key}", self.base)
    }

    /// One registered service in the admin API.
    pub fn api_service(&self, key: i64) -> String {
        format!("{}/api/services/{key}", self.base)
    }

    /// The dashboard's URL path (`/admin` below the base URL's own path), for links and
    /// redirects within the site.
    pub fn admin_path(&self) -> String {
        format!("{}/admin", self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_below_a_base_with_a_path() {
        let u = Urls::new("https://x.example/notify/");
        assert_eq!(u.base(), "https://x.example/notify");
        assert_eq!(u.service(), "https://x.example/notify/");
        assert_eq!(u.inbox(), "https://x.example/notify/inbox");
        assert_eq!(u.notification(7), "https://x.example/notify/inbox/7");
        assert_eq!(u.api_service(2), "https://x.example/notify/api/services/2");
        assert_eq!(u.admin_path(), "/notify/admin");
        assert_eq!(Urls::new("http://127.0.0.1:8080").admin_path(), "/admin");
    }

    #[test]
    fn the_uri_a_sender_addressed_is_normalised_as_clients_normalise() {
        let u = Urls::new("HTTPS://X.Example:443/notify/");
        assert_eq!(u.public_uri("/inbox"), "https://x.example/notify/inbox");
        assert_eq!(
            u.public_uri("/inbox/?a=b"),
            "https://x.example/notify/inbox/?a=b"
        );
        let plain = Urls::new("http://127.0.0.1:8080");
        assert_eq!(plain.public_uri("/inbox/"), "http://127.0.0.1:8080/inbox/");
        assert_eq!(plain.public_uri("/inbox"), plain.inbox());
    }
}
