//! A real server on an ephemeral loopback port, over a fresh database of each kind (the
//! database harness is coar-store's, shared by path).

#![allow(dead_code, missing_docs)]

#[path = "../../../coar-store/tests/common/mod.rs"]
pub mod db;
pub mod webdriver;

use std::{path::PathBuf, sync::Arc};

use coar_server::{App, Config, config::Layer};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// A running server.
pub struct Server {
    pub base: String,
    pub app: Arc<App>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// Starts a server on `database_url`; `settings` are (key, value) pairs of the TOML keys.
pub async fn start(database_url: &str, settings: &[(&str, &str)]) -> Server {
    start_with(
        database_url,
        settings,
        coar_server::pipeline::Pipeline::default(),
    )
    .await
}

/// [`start`] with a pipeline of handlers.
pub async fn start_with(
    database_url: &str,
    settings: &[(&str, &str)],
    pipeline: coar_server::pipeline::Pipeline,
) -> Server {
    // `bind` in the settings: that address (a restart at the same URL); any port otherwise.
    let bind = settings
        .iter()
        .find(|(k, _)| *k == "bind")
        .map_or("127.0.0.1:0", |(_, v)| *v);
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut pairs: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| (format!("COAR_{}", k.to_ascii_uppercase()), v.to_string()))
        .collect();
    // No background workers unless a test asks: the inbox tests look at queue states.
    if !pairs.iter().any(|(k, _)| k == "COAR_WORKERS") {
        pairs.push(("COAR_WORKERS".into(), "0".into()));
    }
    // Tests post from one address, faster than any sender should: no limit unless asked.
    for k in ["COAR_RATE_LIMIT", "COAR_SERVICE_RATE_LIMIT"] {
        if !pairs.iter().any(|(n, _)| n == k) {
            pairs.push((k.into(), "off".into()));
        }
    }
    let env = Layer::from_env(move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()));
    let flags = Layer {
        bind: Some(addr.to_string()),
        database_url: Some(database_url.to_owned()),
        ..Layer::default()
    };
    let config = Config::resolve(flags, env, None).unwrap();
    let base = config.base_url.clone();
    let app = coar_server::app_with(config, pipeline).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(coar_server::serve(listener, app.clone(), async move {
        let _ = stopped.await;
    }));
    Server {
        base,
        app,
        client: reqwest::Client::new(),
        stop: Some(stop),
        task: Some(task),
    }
}

/// Defines `name::sqlite`, `name::postgres` and `name::mysql`: the body gets a fresh
/// database's URL.
#[macro_export]
macro_rules! server_test {
    ($name:ident, |$url:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run(kind: common::db::Kind) {
                let Some(db) = common::db::create(kind).await else {
                    return;
                };
                {
                    let $url: &str = &db.url;
                    $body
                }
                common::db::drop_db(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(common::db::Kind::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(common::db::Kind::Postgres).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                run(common::db::Kind::MySql).await
            }
        }
    };
}

pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(rel)
}

/// Every spec payload: (relative path, bytes).
pub fn spec_payloads() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["spec", "spec/0.9.0", "spec/workflows"] {
        for entry in std::fs::read_dir(fixture_path(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let rel = path
                    .strip_prefix(fixture_path(""))
                    .unwrap()
                    .display()
                    .to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

pub const LD_JSON: &str = "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";

/// Polls `check` until it gives `Some`, for at most 20 s.
pub async fn eventually<T, F: AsyncFnMut() -> Option<T>>(what: &str, mut check: F) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A client that keeps cookies and does not follow redirects, as a person's browser session.
pub fn http_session() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The HTML's text where minijinja escaped `/` (as `&#x2f;`).
pub fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
}

pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    unescape(&html[start..start + html[start..].find('"').unwrap()])
}

/// Signs in to the dashboard over HTTP with the admin `token`; returns the session's CSRF token.
pub async fn sign_in(s: &Server, http: &reqwest::Client, token: &str) -> String {
    let login = http
        .get(s.url("/admin/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = http
        .post(s.url("/admin/login"))
        .form(&[
            ("_csrf", hidden(&login, "_csrf").as_str()),
            ("token", token),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    let overview = http.get(s.url("/admin")).send().await.unwrap();
    assert_eq!(overview.status(), reqwest::StatusCode::OK);
    hidden(&overview.text().await.unwrap(), "_csrf")
}
