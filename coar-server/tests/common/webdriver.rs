//! A small W3C WebDriver client over reqwest, enough to drive headless Chromium through
//! chromedriver: navigate, find, click, type, read text, take screenshots, see dialogs and
//! cookies.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and a browser session; both end on drop.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    base: String,
    driver: Child,
    _profile: super::db::TempDir,
    shots: PathBuf,
}

/// An element of the current page.
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

/// Where chromedriver and Chromium are: `CHROMEDRIVER`/`CHROMIUM` or the Debian packages'
/// paths. `None` (with the reason printed) when they are not installed; a panic when `CI` is
/// set, because CI installs them (`.ci/run`).
pub fn find() -> Option<(PathBuf, PathBuf)> {
    let driver = std::env::var_os("CHROMEDRIVER")
        .map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from);
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if driver.exists() && chromium.exists() {
        return Some((driver, chromium));
    }
    let message = format!(
        "browser test SKIPPED: {} or {} is missing (apt-get install chromium chromium-driver)",
        driver.display(),
        chromium.display()
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "{message}; CI must run it"
    );
    eprintln!("{message}");
    None
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session; screenshots go
    /// to `shots`.
    pub async fn start(driver: &Path, chromium: &Path, shots: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = super::db::TempDir::create();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,1500",
                    format!("--user-data-dir={}", profile.0.display()),
                ],
            },
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        std::fs::create_dir_all(shots).unwrap();
        // Finding an element waits up to 5 s for it to appear.
        http.post(format!("{base}/session/{session}/timeouts"))
            .json(&json!({"implicit": 5000}))
            .send()
            .await
            .unwrap();
        Browser {
            http,
            session,
            base,
            driver: child,
            _profile: profile,
            shots: shots.to_owned(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let ok = response.status().is_success();
        let v: Value = response.json().await.unwrap();
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(v["value"].clone())
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("WebDriver POST {path}: {e}"))
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None)
            .await
            .unwrap_or_else(|e| panic!("WebDriver GET {path}: {e}"))
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits (up to 10 s) until the current URL contains `part`: a click that navigates
    /// may return before the new page is there.
    pub async fn wait_url(&self, part: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url().await;
            if url.contains(part) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the browser stayed at {url}, not {part}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to 10 s) until the page's HTML contains `text`.
    pub async fn wait_text(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.source().await.contains(text) {
                return;
            }
            assert!(Instant::now() < deadline, "the page never showed {text:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's HTML as the browser has it.
    pub async fn source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page title.
    pub async fn title(&self) -> String {
        self.get("/title")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching a CSS selector; panics when there is none.
    pub async fn find(&self, css: &str) -> Element<'_> {
        self.try_find(css)
            .await
            .unwrap_or_else(|| panic!("no element {css} on this page"))
    }

    /// The first element matching a CSS selector.
    pub async fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .ok()?;
        Some(Element {
            browser: self,
            id: found[ELEMENT].as_str()?.to_owned(),
        })
    }

    /// How many elements match a CSS selector.
    pub async fn count(&self, css: &str) -> usize {
        self.post("/elements", json!({"using": "css selector", "value": css}))
            .await
            .as_array()
            .map_or(0, Vec::len)
    }

    /// The text of an open `alert`/`confirm`/`prompt` dialog, if one is open.
    pub async fn dialog(&self) -> Option<String> {
        self.call(reqwest::Method::GET, "/alert/text", None)
            .await
            .ok()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
    }

    /// The value of cookie `name` (HttpOnly ones too).
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.get("/cookie")
            .await
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["value"].as_str())
            .map(str::to_owned)
    }

    /// Saves a screenshot of the viewport as `name`.png.
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let data = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }
}

impl Element<'_> {
    /// Clicks it (and waits for a navigation it starts).
    pub async fn click(&self) {
        self.browser
            .post(&format!("/element/{}/click", self.id), json!({}))
            .await;
    }

    /// Replaces its value with `text`.
    pub async fn fill(&self, text: &str) {
        self.browser
            .post(&format!("/element/{}/clear", self.id), json!({}))
            .await;
        self.browser
            .post(
                &format!("/element/{}/value", self.id),
                json!({"text": text}),
            )
            .await;
    }

    /// Its rendered text.
    pub async fn text(&self) -> String {
        self.browser
            .get(&format!("/element/{}/text", self.id))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Browser {
    /// Ends the session, so that Chromium exits, even when a test panicked: a blocking
    /// `DELETE /session/{id}` over a plain socket (no async in `drop`); then chromedriver.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://").to_owned();
        if let Ok(mut stream) = std::net::TcpStream::connect(&addr) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
