//! The files in `deploy/`, as an operator installs them: nginx runs the site in front of the
//! real binary started with the systemd environment file, the units pass `systemd-analyze
//! verify`, and the PostgreSQL setup script gives a database the server migrates.
//!
//! nginx and psql are Debian packages that `.ci/run` installs: missing, the tests say that
//! they skipped, and fail when `CI` is set. `systemd-analyze` is checked where it exists.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_coar-notify");

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

fn read(file: &str) -> String {
    std::fs::read_to_string(deploy(file)).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coar-deploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tool from a Debian package: its path, or `None` (said) when it is missing outside CI.
fn tool(path: &str, package: &str) -> Option<PathBuf> {
    let path = PathBuf::from(path);
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "deploy test SKIPPED: {} is missing (apt-get install {package})",
        path.display()
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "{message}; CI must run it"
    );
    eprintln!("{message}");
    None
}

/// The `KEY=VALUE` lines of an environment file.
fn environment(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for(url: &str, client: &reqwest::Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The nginx site in front of coar-notify with the systemd environment file's settings:
/// TLS, the HTTP redirect, the sender's address through `X-Forwarded-For` (and a forged one
/// ignored), and an oversized body answered by coar-notify's own 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_site_fronts_the_server_as_configured() {
    let Some(nginx) = tool("/usr/sbin/nginx", "nginx-light") else {
        return;
    };
    let dir = temp_dir("nginx");
    let site = read("nginx/coar-notify.conf");
    let env = environment(&read("systemd/coar-notify.env"));
    let setting = |key: &str| {
        env.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("coar-notify.env sets no {key}"))
    };

    // What the two files must agree on.
    let bind = setting("COAR_BIND");
    assert!(
        site.contains(&format!("server {bind};")),
        "the nginx upstream is not COAR_BIND ({bind})"
    );
    assert!(
        setting("COAR_TRUSTED_PROXIES")
            .split(',')
            .any(|r| r == "127.0.0.1/32"),
        "COAR_TRUSTED_PROXIES must name nginx's address"
    );
    assert_eq!(setting("COAR_FORWARDED_HEADER"), "x-forwarded-for");
    assert!(site.contains("proxy_set_header X-Forwarded-For $remote_addr;"));

    // The server, with the file's settings on ports and paths of this test.
    let (app_port, https_port, http_port) = (free_port(), free_port(), free_port());
    let base = format!("https://127.0.0.1:{https_port}");
    let mut server = Command::new(BIN);
    server.arg("serve").current_dir(&dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("COAR_") {
            server.env_remove(k);
        }
    }
    for (k, v) in &env {
        server.env(k, v);
    }
    let token = "an-admin-token-for-the-deploy-test";
    server
        .env("COAR_BIND", format!("127.0.0.1:{app_port}"))
        .env("COAR_BASE_URL", &base)
        .env(
            "COAR_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("coar.db").display()),
        )
        .env("COAR_TRUST", "accept")
        .env("COAR_ADMIN_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _server = Running(server.spawn().unwrap());

    // nginx with the site, its ports and certificate replaced, IPv4 only.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![
        "notify.repository.example".to_owned(),
        "127.0.0.1".to_owned(),
    ])
    .unwrap()
    .self_signed(&key)
    .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let site = site
        .replace(&bind, &format!("127.0.0.1:{app_port}"))
        .replace(
            "/etc/letsencrypt/live/notify.repository.example/fullchain.pem",
            &dir.join("cert.pem").display().to_string(),
        )
        .replace(
            "/etc/letsencrypt/live/notify.repository.example/privkey.pem",
            &dir.join("key.pem").display().to_string(),
        )
        .replace("listen 443 ssl", &format!("listen {https_port} ssl"))
        .replace("listen 80;", &format!("listen {http_port};"))
        .lines()
        .filter(|l| !l.trim_start().starts_with("listen [::]"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(site.contains(&format!("listen {https_port} ssl http2;")));
    std::fs::write(dir.join("site.conf"), site).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  \
             client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/site.conf;\n}}\n"
        ),
    )
    .unwrap();
    let conf = dir.join("nginx.conf");
    let check = Command::new(&nginx)
        .arg("-t")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _nginx = Running(
        Command::new(&nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // A sender on 127.0.0.2 (another loopback address), which forges X-Forwarded-For.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    wait_for(&format!("{base}/healthz"), &client).await;
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/spec/announce-review.json"),
    )
    .unwrap();
    let r = client
        .post(format!("{base}/inbox"))
        .header("content-type", "application/ld+json")
        .header("x-forwarded-for", "203.0.113.9")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{base}/inbox/")),
        "{location}"
    );
    let key = location.rsplit('/').next().unwrap();
    let stored: serde_json::Value = client
        .get(format!("{base}/api/notifications/{key}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stored["record"]["remote_addr"], "127.0.0.2",
        "the sender's address, not nginx's nor the forged one: {stored}"
    );

    // Refused before the body is read (over COAR_MAX_BODY but under nginx's limit; a media
    // type the inbox does not take): coar-notify's problem details every time, never a
    // 502 from nginx because the connection was reset under the answer.
    let big = format!("{{\"summary\": \"{}\"}}", "x".repeat(300 * 1024));
    let text = "x".repeat(200 * 1024);
    for round in 0..20 {
        for (content_type, body, status) in [
            ("application/ld+json", big.clone(), 413),
            ("text/plain", text.clone(), 415),
        ] {
            let r = client
                .post(format!("{base}/inbox"))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), status, "round {round}, {content_type}");
            assert_eq!(
                r.headers()["content-type"].to_str().unwrap(),
                "application/problem+json"
            );
        }
    }
    // Plain HTTP is redirected to HTTPS.
    let r = client
        .get(format!("http://127.0.0.1:{http_port}/inbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    // /metrics is for this machine only: the sender on 127.0.0.2 is refused by nginx.
    let r = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each unit passes `systemd-analyze verify` (unknown keys, bad values and a missing
/// executable are all reported), with the built binary in place of /usr/local/bin's.
#[test]
fn systemd_units_verify() {
    let analyze = PathBuf::from("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        eprintln!("systemd unit test SKIPPED: systemd-analyze is not installed here");
        return;
    }
    let dir = temp_dir("systemd");
    for (unit, as_name) in [
        ("coar-notify.service", "coar-notify.service"),
        ("coar-notify-worker.service", "coar-notify-worker.service"),
        ("coar-notify@.service", "coar-notify@8081.service"),
    ] {
        let text = read(&format!("systemd/{unit}")).replace("/usr/local/bin/coar-notify", BIN);
        let path = dir.join(as_name);
        std::fs::write(&path, text).unwrap();
        let out = Command::new(&analyze)
            .args(["verify", "--man=no"])
            .arg(&path)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{unit}: {said}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The PostgreSQL setup script, run as the operator would, gives a database and role that
/// `coar-notify migrate` can use; then both are dropped again.
#[test]
fn postgres_setup_script_gives_a_database_the_server_migrates() {
    let Some(psql) = tool("/usr/bin/psql", "postgresql-client") else {
        return;
    };
    let admin = std::env::var("COAR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let psql_run = |args: &[&str]| {
        Command::new(&psql)
            .arg(&admin)
            .args(["-v", "ON_ERROR_STOP=1", "-q"])
            .args(args)
            .output()
            .unwrap()
    };
    let reachable = psql_run(&["-c", "select 1"]);
    if !reachable.status.success() {
        let message = format!(
            "PostgreSQL setup test SKIPPED: {admin} is unreachable: {}",
            String::from_utf8_lossy(&reachable.stderr)
        );
        assert!(
            std::env::var_os("CI").is_none(),
            "{message}; CI must run it"
        );
        eprintln!("{message}");
        return;
    }
    let clean = || {
        psql_run(&[
            "-c",
            "DROP DATABASE IF EXISTS coar_notify WITH (FORCE)",
            "-c",
            "DROP ROLE IF EXISTS coar_notify",
        ])
    };
    let _ = clean();
    let script = deploy("postgres/setup.sql").display().to_string();
    let out = psql_run(&["-v", "password='a-deploy-test-password'", "-f", &script]);
    assert!(
        out.status.success(),
        "setup.sql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let host = admin
        .split('@')
        .nth(1)
        .and_then(|h| h.split('/').next())
        .unwrap_or("127.0.0.1:5432");
    let url = format!("postgres://coar_notify:a-deploy-test-password@{host}/coar_notify");
    let mut migrate = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("COAR_") {
            migrate.env_remove(k);
        }
    }
    let out = migrate
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    let cleaned = clean();
    assert!(
        out.status.success(),
        "migrate as coar_notify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        cleaned.status.success(),
        "{}",
        String::from_utf8_lossy(&cleaned.stderr)
    );
}
